#!/usr/bin/env python3
"""The log published as tiles (issue 16), measured as whole processes beside the obvious
alternatives, in one run:

    python3 bench/tiles.py              # 1,000,000 entries, then 1,000 more
    python3 bench/tiles.py --quick      # 20,000 entries, to check the script

  * `evident publish` of the whole log (first publication), beside `cp -r` + `sync` of the
    same tile directory (the disk's floor for writing those bytes);
  * `evident checkpoint` + `evident publish` after 1,000 more entries (incremental);
  * `evident verify --tiles` of the published log (peak RSS too), beside `evident verify` of
    the ledger itself (the same tree rebuilt from SQLite, plus its indexes and signatures);
  * the same two publications into a bucket (moto on loopback, from scripts/peers.sh),
    beside the directory's;
  * the tile directory's size beside the database's.
Medians of --runs repetitions. Needs python3, GNU time and cargo; uses bench/run.py's build
and append helpers and bench/objects.py's moto helpers. Results: stdout and
bench/work/tiles.json.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objects import SECRET, make_bucket, start_moto  # noqa: E402
from run import ROOT, WORK, Build, timed  # noqa: E402


def du_mib(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total / (1 << 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    entries = 20_000 if args.quick else 1_000_000
    more = 1_000
    os.makedirs(WORK, exist_ok=True)
    b = Build("tiles", ROOT)
    r = {}

    def add(key, v):
        r.setdefault(key, []).append(v)

    moto, port, py = start_moto()
    env = dict(os.environ, BENCH_BLOB_SECRET=SECRET)
    for run in range(args.runs):
        state, _ = b.ledger("tiles-ledger", entries, fresh=True)
        ev = [b.evident, "--quiet", "--state-dir", state]
        subprocess.run(ev + ["checkpoint"], check=True, capture_output=True)
        out = os.path.join(WORK, "tiles-pub")
        copy = os.path.join(WORK, "tiles-copy")
        for d in (out, copy):
            shutil.rmtree(d, ignore_errors=True)
        w, rss, o = timed(ev + ["--format", "json", "publish", "--to", out])
        add("publish_first_s", w)
        add("publish_first_rss_mib", rss)
        add("publish_first_objects", json.loads(o)["objects"])
        add("cp_sync_s", timed(["sh", "-c", f"cp -r {out} {copy} && sync"])[0])
        add("tiles_mib", du_mib(out))
        add("db_mib", os.path.getsize(os.path.join(state, "evident.db")) / (1 << 20))
        key = os.path.join(state, "verifier.vkey")
        w, rss, _ = timed([b.evident, "--quiet", "verify", "--tiles", out, "--key", key])
        add("verify_tiles_s", w)
        add("verify_tiles_rss_mib", rss)
        w, rss, _ = timed(ev + ["verify"])
        add("verify_ledger_s", w)
        add("verify_ledger_rss_mib", rss)
        # Incremental: 1,000 more entries, a checkpoint, then publication of what changed.
        subprocess.run([b.append, "--state", state, "--entries", str(more), "--from", str(entries)],
                       check=True, capture_output=True)
        w, _, o = timed(ev + ["--format", "json", "publish", "--to", out])
        add("publish_incremental_s", w)
        add("publish_incremental_objects", json.loads(o)["objects"])
        shutil.rmtree(copy, ignore_errors=True)
        # The same log into a bucket: first publication, then 1,000 more entries.
        bucket = f"tiles-{run}"
        make_bucket(py, port, bucket)
        cfg = os.path.join(WORK, "tiles-bucket.toml")
        with open(cfg, "w") as f:
            f.write(f'[ledger]\npath = "{state}"\norigin = "bench.evident.local/aims"\n\n'
                    f'[publish]\nurl = "s3://{bucket}/log"\nendpoint = "http://127.0.0.1:{port}"\n'
                    f'access_key_id = "AKIDBENCH"\nsecret_env = "BENCH_BLOB_SECRET"\n')
        # (The log has grown by 1,000 already: 0.1 % more than the directory's first.)
        evb = [b.evident, "--quiet", "--config", cfg, "--format", "json", "publish"]
        w, rss, o = timed(evb, env=env)
        add("bucket_first_s", w)
        add("bucket_first_rss_mib", rss)
        add("bucket_first_objects", json.loads(o)["objects"])
        subprocess.run([b.append, "--state", state, "--entries", str(more), "--from", str(entries + more)],
                       check=True, capture_output=True)
        w, _, o = timed(evb, env=env)
        add("bucket_incremental_s", w)
        add("bucket_incremental_objects", json.loads(o)["objects"])
    moto.terminate()
    moto.wait()

    med = {k: statistics.median(v) for k, v in r.items()}
    print(f"tiles of a {entries:,}-entry log (medians of {args.runs})")
    rows = [
        ("first publish", f"{med['publish_first_s']:.2f} s, {med['publish_first_objects']:.0f} objects, "
                          f"peak {med['publish_first_rss_mib']:.0f} MiB"),
        ("cp -r + sync of the same tiles", f"{med['cp_sync_s']:.2f} s "
                                           f"(publish / cp = {med['publish_first_s'] / med['cp_sync_s']:.2f}x)"),
        (f"incremental publish (+{more:,})", f"{med['publish_incremental_s'] * 1000:.0f} ms, "
                                             f"{med['publish_incremental_objects']:.0f} objects"),
        ("verify --tiles", f"{med['verify_tiles_s']:.2f} s, peak {med['verify_tiles_rss_mib']:.0f} MiB"),
        ("verify (the ledger)", f"{med['verify_ledger_s']:.2f} s, peak {med['verify_ledger_rss_mib']:.0f} MiB "
                                f"(tiles / ledger = {med['verify_tiles_s'] / med['verify_ledger_s']:.2f}x)"),
        ("first publish into a bucket", f"{med['bucket_first_s']:.2f} s, {med['bucket_first_objects']:.0f} objects, "
                                        f"peak {med['bucket_first_rss_mib']:.0f} MiB "
                                        f"(bucket / directory = {med['bucket_first_s'] / med['publish_first_s']:.2f}x)"),
        (f"incremental into a bucket (+{more:,})", f"{med['bucket_incremental_s'] * 1000:.0f} ms, "
                                                   f"{med['bucket_incremental_objects']:.0f} objects"),
        ("tiles on disk", f"{med['tiles_mib']:.0f} MiB (database {med['db_mib']:.0f} MiB)"),
    ]
    for k, v in rows:
        print(f"  {k:<34} {v}")
    with open(os.path.join(WORK, "tiles.json"), "w") as f:
        json.dump({"entries": entries, "runs": r, "medians": med}, f, indent=1)


if __name__ == "__main__":
    main()
