#!/usr/bin/env python3
"""Re-derive an Evident bundle's populations and samples with Python's standard library.

    python3 scripts/check-sample.py BUNDLE_DIR

An auditor's second opinion, independent of Evident's own `verify` (docs/sampling.md):
for each populations/<id>.json it checks that the name is the SHA-256 of the bytes, that the
bytes are canonical JSON, that the leaves in populations/<id>.leaves hash (RFC 6962) to the
root of the population's checkpoint, and that its filter over those leaves gives exactly its
items. For each samples/<id>.json it redraws the sample from the seed. It does not check
signatures: `evident verify` (or the bundle README's openssl recipe) does that.
Prints one line per manifest and exits 1 on the first disagreement.
"""
import base64
import hashlib
import json
import os
import sys


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def canonical(obj):
    return (json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def mth(hashes):
    """RFC 6962 Merkle tree hash over leaf hashes."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def evidence_date(p):
    if "effectiveDate" in p:
        return p["effectiveDate"] + "T00:00:00Z", "effective"
    if "sourceUpdatedAt" in p:
        return p["sourceUpdatedAt"], "source"
    return p["collectedAt"], "collected"


def matches(f, p):
    kind = p["kind"]
    if f.get("kinds"):
        if kind not in f["kinds"]:
            return False
    elif kind == "collector_run" or kind.endswith("_removed"):
        return False
    elif p["source"] == "evident" and kind in ("population", "sample", "erasure"):
        return False
    if f.get("sources") and p["source"] not in f["sources"]:
        return False
    if f.get("controls") and not set(p["controls"]) & set(f["controls"]):
        return False
    day = evidence_date(p)[0][:10]
    return f["period"]["from"] <= day <= f["period"]["until"]


def main():
    root = sys.argv[1]
    populations = {}
    pdir = os.path.join(root, "populations")
    for name in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
        if not name.endswith(".json"):
            continue
        pid = name[:-5]
        raw = open(os.path.join(pdir, name), "rb").read()
        if hashlib.sha256(raw).hexdigest() != pid:
            fail(f"{name} is not named by its SHA-256")
        m = json.loads(raw)
        if canonical(m) != raw:
            fail(f"{name} is not canonical JSON")
        lines = open(os.path.join(pdir, pid + ".leaves"), "rb").read().split(b"\n")
        if lines[-1] != b"":
            fail(f"{pid}.leaves does not end with a newline")
        leaves = lines[:-1]
        origin, size, b64root = m["checkpoint"].split("\n")[:3]
        if len(leaves) != int(size):
            fail(f"{pid}.leaves has {len(leaves)} leaves, the checkpoint {size}")
        got = mth([hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves])
        if base64.b64encode(got).decode() != b64root:
            fail(f"{pid}.leaves does not hash to the checkpoint's root")
        want = [str(i) for i, leaf in enumerate(leaves) if matches(m["filter"], json.loads(leaf)["predicate"])]
        listed = [it["index"] for it in m["items"]]
        if want != listed:
            fail(f"population {pid}: the filter gives {len(want)} entries, the manifest lists {len(listed)}")
        populations[pid] = m
        print(f"population {pid}: {len(listed)} of {size} entries, complete")
    sdir = os.path.join(root, "samples")
    for name in sorted(os.listdir(sdir)) if os.path.isdir(sdir) else []:
        raw = open(os.path.join(sdir, name), "rb").read()
        s = json.loads(raw)
        if canonical(s) != raw or hashlib.sha256(raw).hexdigest() + ".json" != name:
            fail(f"{name} is not canonical or not named by its SHA-256")
        pid = s["population"]["id"]
        seed = s["seed"]["value"]
        ranked = sorted(
            (hashlib.sha256(f"evident-sample-v1\n{pid}\n{seed}\n{it['index']}".encode()).hexdigest(), it["index"])
            for it in populations[pid]["items"]
        )[: int(s["size"])]
        if [(it["key"], it["index"]) for it in s["items"]] != ranked:
            fail(f"sample {name}: the draw differs")
        print(f"sample {name[:-5]}: {len(ranked)} items redrawn with seed {seed!r}")


if __name__ == "__main__":
    main()
