//! The RFC 3161 verifier attacked with tokens OpenSSL made (`fixtures/tsa_chain.py`): a chain
//! through an intermediate, an unrelated root, a missing intermediate, a non-CA posing as
//! one, an expired signer, a non-critical or missing EKU, and a signer swapped for another
//! certificate of the same key (caught only by the ESS binding). Each verdict is compared with `openssl ts -verify`'s.

use std::path::Path;
use std::process::Command;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode, Sequence};
use evident::anchor::tsp::{self, TspError};
use x509_cert::Certificate;

const DATA: &[u8] = b"checkpoint\n";

/// Makes every fixture token in a fresh directory.
fn tokens() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tsa_chain.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

fn certs(dir: &Path, names: &[&str]) -> Vec<Vec<u8>> {
    names
        .iter()
        .flat_map(|n| tsp::pem_certs(&String::from_utf8(read(dir, n)).unwrap()))
        .collect()
}

fn verify(dir: &Path, token: &[u8], ca: &[&str]) -> Result<tsp::Stamp, TspError> {
    tsp::verify(token, DATA, Some(&certs(dir, ca)), None)
}

/// `openssl ts -verify` on the same token and trust: true when OpenSSL accepts it.
fn openssl_accepts(dir: &Path, token: &str, ca: &str, untrusted: Option<&str>) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args([
        "ts", "-verify", "-in", token, "-data", "data.txt", "-CAfile", ca,
    ]);
    if let Some(u) = untrusted {
        cmd.args(["-untrusted", u]);
    }
    cmd.output().unwrap().status.success()
}

fn err(r: Result<tsp::Stamp, TspError>) -> String {
    r.expect_err("the token must be refused").to_string()
}

#[derive(Sequence)]
struct Response {
    status: Any,
    token: ContentInfo,
}

/// `token` with its signer identifier pointing at `cert` (carried in the token too). The
/// identifier is not signed, so the signature still verifies for any certificate of the
/// same key: only the ESS attribute can tell.
fn swap_signer(token: &[u8], cert: &[u8]) -> Vec<u8> {
    let mut resp = Response::from_der(token).unwrap();
    let mut sd: SignedData = resp.token.content.decode_as().unwrap();
    let cert = Certificate::from_der(cert).unwrap();
    let mut signers = sd.signer_infos.0.into_vec();
    signers[0].sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
    });
    sd.signer_infos.0 = SetOfVec::try_from(signers).unwrap();
    let mut carried = sd.certificates.take().unwrap().0.into_vec();
    carried.push(CertificateChoices::Certificate(cert));
    sd.certificates = Some(cms::signed_data::CertificateSet(
        SetOfVec::try_from(carried).unwrap(),
    ));
    resp.token.content = Any::encode_from(&sd).unwrap();
    resp.to_der().unwrap()
}

#[test]
fn rfc3161_chains_validity_eku_and_ess_are_checked_as_openssl_does() {
    let dir = tokens();
    let d = dir.path();

    // Through the intermediate the token carries, to the configured root.
    let good = read(d, "good.tsr");
    let stamp = verify(d, &good, &["root.pem"]).unwrap();
    assert!(stamp.chain_checked);
    assert!(openssl_accepts(d, "good.tsr", "root.pem", None));
    // An unrelated root: refused by both.
    let e = err(verify(d, &good, &["other-root.pem"]));
    assert!(e.contains("not issued by the CA given"), "{e}");
    assert!(!openssl_accepts(d, "good.tsr", "other-root.pem", None));

    // Without the intermediate in the token, the root alone is not enough; the
    // intermediate in the CA file closes the chain (OpenSSL: -untrusted).
    let nochain = read(d, "nochain.tsr");
    let e = err(verify(d, &nochain, &["root.pem"]));
    assert!(e.contains("no issuer found"), "{e}");
    assert!(!openssl_accepts(d, "nochain.tsr", "root.pem", None));
    verify(d, &nochain, &["root.pem", "int.pem"]).unwrap();
    assert!(openssl_accepts(
        d,
        "nochain.tsr",
        "root.pem",
        Some("int.pem")
    ));

    // A signer that had expired before the token's time.
    let expired = read(d, "expired.tsr");
    let e = err(verify(d, &expired, &["root.pem"]));
    assert!(e.contains("was not valid at the token's time"), "{e}");
    assert!(!openssl_accepts(d, "expired.tsr", "root.pem", None));

    // A certificate of the CA file that is not a CA cannot issue a signer.
    let e = err(verify(d, &read(d, "underleaf.tsr"), &["leaf-ca.pem"]));
    assert!(e.contains("is not a CA"), "{e}");
    assert!(!openssl_accepts(d, "underleaf.tsr", "leaf-ca.pem", None));

    // EKU: not critical, or absent (RFC 3161 §2.3).
    let e = err(verify(d, &read(d, "noncrit.tsr"), &["root.pem"]));
    assert!(e.contains("extended key usage is not critical"), "{e}");
    assert!(!openssl_accepts(d, "noncrit.tsr", "root.pem", None));
    let e = err(verify(d, &read(d, "noeku.tsr"), &["root.pem"]));
    assert!(e.contains("no extended key usage"), "{e}");
    assert!(!openssl_accepts(d, "noeku.tsr", "root.pem", None));
    // Both are well signed: without a CA to check against, they pass as signed tokens.
    tsp::verify(&read(d, "noeku.tsr"), DATA, None, None).unwrap();

    // ESS: a second certificate for the TSA's key, issued by the same CA, is a valid signer
    // on its own; swapped in for the one the token names, it is refused.
    let other = read(d, "other.tsr");
    verify(d, &other, &["root.pem"]).unwrap();
    let swapped = swap_signer(&other, &read(d, "tsa.der"));
    let e = err(verify(d, &swapped, &["root.pem"]));
    assert!(
        e.contains("ESS signing-certificate attribute names another certificate"),
        "{e}"
    );
    let e = err(tsp::verify(&swapped, DATA, None, None));
    assert!(e.contains("ESS"), "{e}");
    std::fs::write(d.join("swapped.tsr"), &swapped).unwrap();
    assert!(!openssl_accepts(d, "swapped.tsr", "root.pem", None));

    // The imprint still binds the bytes.
    let e = err(tsp::verify(&good, b"another checkpoint\n", None, None));
    assert!(e.contains("over other bytes"), "{e}");
}
