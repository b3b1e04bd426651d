#!/usr/bin/env python3
"""Evidence content on object storage (issue 16), each figure beside the local store's from
the same run:

    python3 bench/objects.py            # the 10,000-file tree (1 GiB); a 100,000-entry ledger with 10,000 blobs
    python3 bench/objects.py --quick    # 1,000 files (64 MiB); 5,000 entries with 500 blobs

  * the first `evident collect` of the tree into a bucket (`[blobs] url = "s3://…"`) beside
    the same collect into the state directory;
  * `evident blobs migrate` of the 10,000-blob ledger into a bucket;
  * `evident export` of the 100,000-entry ledger with its content in the bucket, beside the
    same export from the local store;
  * `evident verify` of that ledger (every blob re-hashed, here downloaded) beside the
    local verify;
  * `evident verify BUNDLE --key` of each export (the auditor's offline check).
The bucket is a real S3 server on loopback: moto (`scripts/peers.sh` installs it in
target/peers/moto), which keeps objects in memory, so the figures are the client's cost
plus moto's (a Python server), not a network's. Wall time and peak RSS (GNU time), median
of --runs. Results: stdout and bench/work/objects.json.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, WORK, Build, timed  # noqa: E402

SECRET = "bench-secret-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    venv = os.path.join(ROOT, "target", "peers", "moto")
    server = os.path.join(venv, "bin", "moto_server")
    if not os.path.exists(server):
        sys.exit("moto is not installed: run scripts/peers.sh first")
    port = free_port()
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    return proc, port, os.path.join(venv, "bin", "python")


def make_bucket(py, port, name):
    subprocess.run([py, "-c", (
        "import boto3\n"
        f"s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1',"
        f" aws_access_key_id='AKIDBENCH', aws_secret_access_key='{SECRET}')\n"
        f"s3.create_bucket(Bucket='{name}')\n")], check=True)


def blobs_table(port, bucket):
    return (f'\n[blobs]\nurl = "s3://{bucket}"\nendpoint = "http://127.0.0.1:{port}"\n'
            f'access_key_id = "AKIDBENCH"\nsecret_env = "BENCH_BLOB_SECRET"\n')


def write_config(path, tree, state, extra=""):
    with open(path, "w") as f:
        f.write(f'[ledger]\npath = "{state}"\norigin = "bench.evident.local/objects"\n\n'
                f'[[collectors]]\nname = "docs"\nkind = "filesystem"\nroot = "{tree}"\n'
                f'max_file_size = "1GiB"\n{extra}')


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    files, total, entries, nblobs = ((1_000, 64 << 20, 5_000, 500) if args.quick
                                     else (10_000, 1 << 30, 100_000, 10_000))
    os.makedirs(WORK, exist_ok=True)
    b = Build("objects", ROOT)
    env = dict(os.environ, BENCH_BLOB_SECRET=SECRET)
    tree = os.path.join(WORK, f"tree-{files}")
    if not os.path.isdir(tree):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_tree.py"), tree, str(files), str(total)],
                       check=True)
    res = {"files": files, "tree_bytes": total, "entries": entries, "blobs": nblobs}
    moto, port, py = start_moto()
    try:
        # 1. First collect of the tree: local store vs bucket.
        local_c, bucket_c = [], []
        for i in range(args.runs):
            for where in ("local", "bucket"):
                d = os.path.join(WORK, f"objects-collect-{where}")
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                extra = ""
                if where == "bucket":
                    name = f"collect-{i}"
                    make_bucket(py, port, name)
                    extra = blobs_table(port, name)
                cfg = os.path.join(d, "evident.toml")
                write_config(cfg, tree, os.path.join(d, "state"), extra)
                timed([b.evident, "--config", cfg, "--quiet", "init"], env=env)
                wall, rss, _ = timed([b.evident, "--config", cfg, "--quiet", "collect"], env=env)
                (local_c if where == "local" else bucket_c).append((wall, rss))
        res["collect_local_s"] = med([w for w, _ in local_c])
        res["collect_bucket_s"] = med([w for w, _ in bucket_c])
        res["collect_local_rss_mib"] = med([r for _, r in local_c])
        res["collect_bucket_rss_mib"] = med([r for _, r in bucket_c])

        # 2. The bundle ledger: local, and a copy migrated into a bucket.
        local_state, _ = b.ledger(f"objects-ledger-{entries}", entries, nblobs)
        bucket_state = os.path.join(WORK, "objects-ledger-bucket")
        shutil.rmtree(bucket_state, ignore_errors=True)
        shutil.copytree(local_state, bucket_state)
        make_bucket(py, port, "ledger")
        mcfg = os.path.join(WORK, "objects-migrate.toml")
        write_config(mcfg, tree, bucket_state, blobs_table(port, "ledger"))
        wall, rss, _ = timed([b.evident, "--config", mcfg, "--quiet", "blobs", "migrate", "--to", "s3://ledger"],
                             env=env)
        res["migrate_s"], res["migrate_rss_mib"] = wall, rss
        shutil.rmtree(os.path.join(bucket_state, "blobs", "sha256"))

        for label, state in (("local", local_state), ("bucket", bucket_state)):
            ev = [b.evident, "--state-dir", state, "--config", "/nonexistent", "--quiet"]
            exp, ver, bver = [], [], []
            vkey = os.path.join(state, "verifier.vkey")
            for _ in range(args.runs):
                out = os.path.join(WORK, f"objects-bundle-{label}.tar.gz")
                if os.path.exists(out):
                    os.remove(out)
                exp.append(timed(ev + ["export", "--out", out], env=env)[:2])
                ver.append(timed(ev + ["verify"], env=env)[:2])
                # The auditor's side: the bundle alone, offline.
                bver.append(timed([b.evident, "--quiet", "verify", out, "--key", vkey], env=env)[:2])
            res[f"export_{label}_s"] = med([w for w, _ in exp])
            res[f"export_{label}_rss_mib"] = med([r for _, r in exp])
            res[f"verify_{label}_s"] = med([w for w, _ in ver])
            res[f"verify_{label}_rss_mib"] = med([r for _, r in ver])
            res[f"bundle_verify_{label}_s"] = med([w for w, _ in bver])
            res[f"bundle_verify_{label}_rss_mib"] = med([r for _, r in bver])
    finally:
        moto.terminate()
        moto.wait()

    def ratio(a, c):
        return round(res[a] / res[c], 2) if res.get(a) and res.get(c) else None

    res["collect_ratio"] = ratio("collect_bucket_s", "collect_local_s")
    res["export_ratio"] = ratio("export_bucket_s", "export_local_s")
    res["verify_ratio"] = ratio("verify_bucket_s", "verify_local_s")
    res["bundle_verify_ratio"] = ratio("bundle_verify_bucket_s", "bundle_verify_local_s")
    with open(os.path.join(WORK, "objects.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(f"first collect of {files} files ({total >> 20} MiB): local {res['collect_local_s']:.2f} s "
          f"({res['collect_local_rss_mib']:.0f} MiB), bucket {res['collect_bucket_s']:.2f} s "
          f"({res['collect_bucket_rss_mib']:.0f} MiB): {res['collect_ratio']}x")
    print(f"blobs migrate of {nblobs} blobs: {res['migrate_s']:.2f} s ({res['migrate_rss_mib']:.0f} MiB)")
    print(f"export of {entries} entries: local {res['export_local_s']:.2f} s, bucket {res['export_bucket_s']:.2f} s "
          f"({res['export_bucket_rss_mib']:.0f} MiB): {res['export_ratio']}x")
    print(f"verify of {entries} entries: local {res['verify_local_s']:.2f} s, bucket {res['verify_bucket_s']:.2f} s "
          f"({res['verify_bucket_rss_mib']:.0f} MiB): {res['verify_ratio']}x")
    print(f"verify of the exported bundle: from the local store {res['bundle_verify_local_s']:.2f} s "
          f"({res['bundle_verify_local_rss_mib']:.0f} MiB), from the bucket {res['bundle_verify_bucket_s']:.2f} s "
          f"({res['bundle_verify_bucket_rss_mib']:.0f} MiB): {res['bundle_verify_ratio']}x")


if __name__ == "__main__":
    main()
