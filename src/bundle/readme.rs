//! The bundle's README.txt: what the bundle is and how an auditor checks it, with evident
//! and by hand with stock tools.

use chrono::{DateTime, Utc};

use crate::ledger::rfc3339;

/// The README of a bundle of checkpoint `size`.
pub fn text(origin: &str, size: u64, scope: &str, as_of: DateTime<Utc>) -> String {
    let as_of = rfc3339(as_of);
    format!(
        r#"Evident audit bundle
====================

Ledger:   {origin}
Tree:     {size} entries, signed in ./checkpoint
Scope:    {scope}
Coverage: as of {as_of} (the checkpoint's signing time, or the end of the window),
          counting only the entries in this bundle

This bundle holds ISO/IEC 42001 evidence taken from a tamper-evident ledger: every entry is a
leaf of an RFC 6962 Merkle tree whose root the ledger signed (C2SP checkpoint, Ed25519).
Nothing in it needs to be taken on trust. Use the verifier key you were given by the
organisation (not the copy in log.vkey, which is only there for comparison).

1. With Evident (offline; nothing is written)
   evident verify bundle.tar.gz --key 'VKEY-LINE-OR-FILE'
   evident verify bundle.tar.gz --key KEYFILE --previous-checkpoint checkpoint-from-last-audit
   It checks SHA256SUMS and its signature, the checkpoint signature, every inclusion proof,
   every blob against the digest its entry records, index.csv against the entries, every
   consistency proof and, when present, the RFC 3161 timestamp (--tsa-ca PEM: the TSA's CA
   you trust); with --previous-checkpoint, that this tree extends the one you kept. Nothing is
   extracted. Exit 0: all good; exit 3: the failure is printed.

2. By hand
   mkdir bundle && tar -xzf bundle.tar.gz -C bundle && cd bundle
   sha256sum -c SHA256SUMS                 every member is as exported
   a) Signatures: ./checkpoint and SHA256SUMS.sig are C2SP signed notes: the text lines, a
      blank line, then "— <name> base64(4-byte key id || 64-byte Ed25519 signature)" lines.
      The key line is <name>+<key id hex>+base64(0x01 || 32-byte public key). With OpenSSL 3
      (compare log.vkey with the key you were given first, or use yours in its place), the
      signature checked is the one whose name and key ID are your key's:
        printf '\060\052\060\005\006\003\053\145\160\003\041\000' > vkey.der
        cut -d+ -f3- log.vkey | base64 -d | tail -c 32 >> vkey.der
        name=$(cut -d+ -f1 log.vkey); id=$(cut -d+ -f2 log.vkey)
        for n in checkpoint SHA256SUMS.sig; do
          sed '/^$/,$d' $n > $n.text; rm -f $n.bin
          for s in $(grep -F "— $name " $n | awk '{{print $3}}'); do
            [ "$(printf %s "$s" | base64 -d | head -c 4 | od -An -tx1 | tr -d ' \n')" = "$id" ] &&
              printf %s "$s" | base64 -d | tail -c 64 > $n.bin
          done
          openssl pkeyutl -verify -pubin -keyform DER -inkey vkey.der -rawin -in $n.text -sigfile $n.bin
        done
      The checkpoint text is origin, size and base64 root; the second line of SHA256SUMS.sig
      must equal the output of `sha256sum SHA256SUMS | cut -d' ' -f1`, so the checksums,
      and through them the report, CSVs and OSCAL, come from the holder of the log key.
   b) An entry: entries/<i>.json holds the leaf bytes verbatim. Its leaf hash is
      SHA-256(0x00 || bytes); proofs/<i>.tlog-proof (c2sp.org/tlog-proof@v1) lists the audit
      path, leaf side first, and ends with the same checkpoint. Interior nodes are
      SHA-256(0x01 || left || right); RFC 9162 section 2.1.3.2 gives the check.
   c) Content: blobs/sha256/<hex> must hash to <hex>, the subject digest in its entry:
        sha256sum blobs/sha256/*      (each name equals its digest)
      index.csv lists every entry with its content member, or says why the content is not
      included (kept as a hash only, an event without content, or erased).
      A v2 entry (predicateType .../evidence-entry/v2) carries no title or URI: its leaf's
      "meta" is the SHA-256 of meta/<i>.json, which holds them with a salt:
        sha256sum meta/<i>.json      (equals the leaf's predicate.meta)
      Without meta/<i>.json (erased), index.csv shows evident:artefact:<artefact>, and an
      erasure entry of entry <i> must be in the bundle.
   d) Earlier checkpoints: checkpoints/<m> with consistency/<m>-{size} (base64 hashes, RFC 9162
      section 2.1.4.2) prove the tree of size m is a prefix of this one: nothing was removed or
      rewritten since.
   e) The time anchor, when the bundle has checkpoint.tsr: an RFC 3161 timestamp over the
      exact bytes of ./checkpoint, signed by the timestamp authority:
        openssl ts -verify -data checkpoint -in checkpoint.tsr -CAfile tsa/ca.pem -untrusted tsa/certs.pem
      (use the TSA's CA certificate you trust in place of tsa/ca.pem; the reply text shows
      the time with `openssl ts -reply -in checkpoint.tsr -text`).
   f) Proofs with Go's own transparency-log code (golang.org/x/mod/sumdb, the checksum
      database's; on Debian: apt install golang-go golang-golang-x-mod-dev). Save the program
      between the scissors at the end of this file as tlogcheck.go, then, with your key:
        GO111MODULE=off GOPATH=/usr/share/gocode go run tlogcheck.go KEYFILE
      It opens ./checkpoint and every checkpoints/<m> with sumdb/note (signed by exactly your
      key: name and key ID), and checks every entry's inclusion proof (tlog.CheckRecord of
      SHA-256(0x00 || entry bytes)) and every consistency proof (tlog.CheckTree).

3. What to read
   report/index.html               readiness per control, with the evidence behind it
   coverage.csv                    fresh / stale / missing / not-applicable per control
   soa.csv                         Statement of Applicability
   oscal/assessment-results.json   NIST OSCAL 1.1 Assessment Results (observations, findings)

----8<---- tlogcheck.go
{TLOGCHECK}----8<----
"#
    )
}

/// The Go program of step 2 f), verbatim in every README.
const TLOGCHECK: &str = include_str!("tlogcheck.go");
