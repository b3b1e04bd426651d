#!/usr/bin/env python3
"""Audit-readiness benchmark: export and offline verify of a bundle, and coverage, each
beside the obvious alternative, in one run.

    python3 bench/bundle.py            # 100,000 entries with 10,000 blobs; coverage over 1,000,000
    python3 bench/bundle.py --quick    # small sizes, to check the script itself

Measures, as whole processes (wall time, and peak RSS from GNU time), median of 3:
  * `evident export --out bundle.tar.gz` vs `tar -czf` of the state directory (what a
    bundle would be without proofs, index, report or OSCAL);
  * `evident verify bundle.tar.gz --key` vs `tar -xzf` + `sha256sum -c SHA256SUMS`
    (checksums only: no signature, proof or consistency check);
  * `evident coverage` over 1,000,000 entries vs the same answer computed by one SQL query
    over `entries` (no evidence index), through Python's sqlite3.
Needs python3, GNU time, tar, sha256sum and cargo. Results: stdout and bench/work/bundle.json.
"""
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import EVIDENT, ROOT, WORK, timed  # noqa: E402


def ledger(path, entries, blobs, days):
    if os.path.exists(os.path.join(path, "evident.db")):
        return
    shutil.rmtree(path, ignore_errors=True)
    args = ["--state", path, "--entries", str(entries), "--spread-days", str(days)]
    if blobs:
        args += ["--blobs", str(blobs), "--blob-size", "8192"]
    subprocess.run(["cargo", "bench", "--locked", "--quiet", "--bench", "append", "--"] + args,
                   cwd=ROOT, check=True, capture_output=True)


def med(runs, i):
    return statistics.median(r[i] for r in runs)


def main():
    quick = "--quick" in sys.argv
    n, blobs, cov_n = (5_000, 500, 50_000) if quick else (100_000, 10_000, 1_000_000)
    os.makedirs(WORK, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    state = os.path.join(WORK, f"bundle-ledger-{n}")
    ledger(state, n, blobs, 365)
    ev = [EVIDENT, "--state-dir", state, "--config", "/nonexistent", "--quiet"]
    bundle = os.path.join(WORK, "bundle.tar.gz")
    key = os.path.join(state, "verifier.vkey")
    res = {"entries": n, "blobs": blobs}

    exp, tarc, ver, shac = [], [], [], []
    for _ in range(3):
        if os.path.exists(bundle):
            os.remove(bundle)
        exp.append(timed(ev + ["export", "--out", bundle]))
        plain = os.path.join(WORK, "state.tar.gz")
        tarc.append(timed(["tar", "-czf", plain, "-C", state, "."]))
        ver.append(timed([EVIDENT, "verify", bundle, "--key", key]))
        x = os.path.join(WORK, "extracted")
        shutil.rmtree(x, ignore_errors=True)
        os.makedirs(x)
        shac.append(timed(["sh", "-c", f"tar -xzf {bundle} -C {x} && cd {x} && sha256sum -c --quiet SHA256SUMS"]))
    res["bundle_bytes"] = os.path.getsize(bundle)
    res["state_tar_bytes"] = os.path.getsize(os.path.join(WORK, "state.tar.gz"))
    res["export_s"], res["export_rss_mib"] = med(exp, 0), med(exp, 1)
    res["tar_czf_s"] = med(tarc, 0)
    res["verify_s"], res["verify_rss_mib"] = med(ver, 0), med(ver, 1)
    res["untar_sha256sum_s"] = med(shac, 0)

    cov_state = os.path.join(WORK, f"coverage-ledger-{cov_n}")
    ledger(cov_state, cov_n, 0, 365)
    cov = [timed([EVIDENT, "--state-dir", cov_state, "--config", "/nonexistent", "coverage", "--format", "json"]) for _ in range(5)]
    res["coverage_s"], res["coverage_rss_mib"] = med(cov, 0), med(cov, 1)
    # The same question without the index: newest date and items in a 90-day window per control.
    db = sqlite3.connect(f"file:{os.path.join(cov_state, 'evident.db')}?mode=ro", uri=True)
    sql = ("SELECT ec.value, MAX(COALESCE(e.effective_date, e.source_updated_at, e.collected_at)), "
           "SUM(COALESCE(e.effective_date, e.source_updated_at, e.collected_at) > '2026-08-24') "
           "FROM entries e, json_each('[\"' || replace(e.controls, ',', '\",\"') || '\"]') ec "
           "WHERE e.kind <> 'collector_run' AND e.controls <> '' GROUP BY ec.value")
    naive = []
    for _ in range(3):
        t = time.perf_counter()
        db.execute(sql).fetchall()
        naive.append(time.perf_counter() - t)
    res["coverage_without_index_s"] = statistics.median(naive)

    with open(os.path.join(WORK, "bundle.json"), "w") as f:
        json.dump(res, f, indent=2)
    mb = 1 << 20
    print(f"| measure ({n:,} entries, {blobs:,} blobs of 8 KiB) | Evident | alternative | ratio |")
    print("|---|---|---|---|")
    print(f"| export | {res['export_s']:.2f} s, {res['export_rss_mib']:.0f} MiB RSS, {res['bundle_bytes'] / mb:.0f} MiB | "
          f"`tar -czf` of the state dir: {res['tar_czf_s']:.2f} s, {res['state_tar_bytes'] / mb:.0f} MiB | {res['export_s'] / res['tar_czf_s']:.2f}x |")
    print(f"| verify | {res['verify_s']:.2f} s, {res['verify_rss_mib']:.0f} MiB RSS | "
          f"`tar -xzf` + `sha256sum -c`: {res['untar_sha256sum_s']:.2f} s | {res['verify_s'] / res['untar_sha256sum_s']:.2f}x |")
    print(f"| coverage, {cov_n:,} entries | {res['coverage_s'] * 1000:.0f} ms, {res['coverage_rss_mib']:.0f} MiB RSS | "
          f"one SQL query over entries: {res['coverage_without_index_s'] * 1000:.0f} ms | {res['coverage_s'] / res['coverage_without_index_s']:.3f}x |")


if __name__ == "__main__":
    main()
