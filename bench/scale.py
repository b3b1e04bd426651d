#!/usr/bin/env python3
"""How far one sequencer goes (issue 16): one ledger grown to 1, 3 and 10 million entries
with the real writer (bench/append.rs, 1,000-entry batches, synchronous=FULL), measuring at
each size, as whole processes:

  * the append rate of the last step (entries/s);
  * the database's size per million entries;
  * `evident verify` of the whole ledger (wall time, peak RSS);
  * `evident publish` of what the step added (incremental tiles) and `evident verify --tiles`
    of the published log (wall time, peak RSS);
  * the tiles' size.

    python3 bench/scale.py                 # 1M, 3M, 10M (about 15 GB of disk at the end)
    python3 bench/scale.py --sizes 100000,300000   # a quick check of the script

Needs python3, GNU time and cargo; uses bench/run.py's helpers. Results: stdout and
bench/work/scale.json. The work tree is removed at the end unless --keep.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, WORK, Build, timed  # noqa: E402
from tiles import du_mib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,3000000,10000000")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.makedirs(WORK, exist_ok=True)
    b = Build("scale", ROOT)
    state = os.path.join(WORK, "scale-ledger")
    tiles = os.path.join(WORK, "scale-tiles")
    for d in (state, tiles):
        shutil.rmtree(d, ignore_errors=True)
    ev = [b.evident, "--quiet", "--state-dir", state]
    key = os.path.join(state, "verifier.vkey")
    rows = []
    have = 0
    for size in sizes:
        cmd = [b.append, "--state", state, "--entries", str(size - have)]
        if have:
            cmd += ["--from", str(have)]
        report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        have = size
        db = os.path.getsize(os.path.join(state, "evident.db")) / (1 << 20)
        verify_s, verify_rss, _ = timed(ev + ["verify"])
        pub_s, _, out = timed(ev + ["--format", "json", "publish", "--to", tiles])
        vt_s, vt_rss, _ = timed([b.evident, "--quiet", "verify", "--tiles", tiles, "--key", key])
        row = {
            "entries": size,
            "append_entries_per_s": report["entries_per_second"],
            "db_mib": db,
            "db_mib_per_million": db / (size / 1e6),
            "verify_s": verify_s,
            "verify_rss_mib": verify_rss,
            "publish_step_s": pub_s,
            "publish_step_objects": json.loads(out)["objects"],
            "verify_tiles_s": vt_s,
            "verify_tiles_rss_mib": vt_rss,
            "tiles_mib": du_mib(tiles),
        }
        rows.append(row)
        print(f"{size:>11,} entries: append {row['append_entries_per_s']:,.0f}/s, db {db:,.0f} MiB "
              f"({row['db_mib_per_million']:.0f} MiB/M), verify {verify_s:.1f} s ({verify_rss:.0f} MiB), "
              f"publish +{row['publish_step_objects']} objects {pub_s:.1f} s, "
              f"verify --tiles {vt_s:.1f} s ({vt_rss:.0f} MiB), tiles {row['tiles_mib']:,.0f} MiB", flush=True)
    with open(os.path.join(WORK, "scale.json"), "w") as f:
        json.dump(rows, f, indent=1)
    if not args.keep:
        for d in (state, tiles):
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
