#!/usr/bin/env python3
"""Evident's benchmark, side by side with the obvious alternatives, in one run.

    python3 bench/run.py            # full run: 10,000 files / 1 GiB, 1,000,000 entries
    python3 bench/run.py --quick    # small sizes, to check the script itself

Measures, as whole processes (wall time and peak RSS from wait4):
  * first `evident collect` of the tree (content kept in the blob store, and digests only)
    vs `openssl dgst -sha256` over the same files vs `git add -A && git commit` into a fresh
    repository (evidence kept in git) vs `cp -r && sync` (a durable copy, the disk's floor);
  * re-`collect` of the unchanged tree;
  * appending 1,000,000 synthetic entries in 1,000-entry batches (entries/s);
  * `evident query` of one control and `evident verify` over that ledger.
Needs python3, GNU time, openssl, git and cargo. Results go to stdout and bench/work/results.json.
Files are read from the page cache in all three contenders (the tree was just written).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "work")
EVIDENT = os.path.join(ROOT, "target", "release", "evident")


def timed(cmd, **kw):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stdout).

    Peak RSS comes from GNU time (`/usr/bin/time -f %M`): the rusage of a child forked from
    this Python process would also count Python's own pages at fork time.
    """
    rss_file = os.path.join(WORK, ".rss")
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, capture_output=True, **kw)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"command failed: {cmd}\n{p.stderr.decode(errors='replace')}")
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    return wall, rss_kib / 1024, p.stdout


def median_of(runs):
    return statistics.median(runs)


def main():
    quick = "--quick" in sys.argv
    files, total, entries = (500, 20 << 20, 20_000) if quick else (10_000, 1 << 30, 1_000_000)
    reps = 3
    os.makedirs(WORK, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    tree = os.path.join(WORK, f"tree-{files}-{total}")
    if not os.path.isdir(tree):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_tree.py"), tree, str(files), str(total)], check=True)
    def write_config(name, max_size):
        path = os.path.join(WORK, f"{name}.toml")
        with open(path, "w") as f:
            f.write(f'[ledger]\npath = "{name}-state"\norigin = "bench.evident.local/aims"\n\n'
                    f'[[collectors]]\nname = "tree"\nkind = "filesystem"\nroot = "{tree}"\ncontrols = ["A.7.5"]\n'
                    f'max_file_size = "{max_size}"\n')
        return path, os.path.join(WORK, f"{name}-state")

    config, state = write_config("store", "1GiB")          # content kept in the blob store
    config_h, state_h = write_config("hashonly", "0B")     # digests only, no blobs
    ev = [EVIDENT, "--quiet", "--config", config]
    ev_h = [EVIDENT, "--quiet", "--config", config_h]
    results = {"files": files, "bytes": total, "entries": entries}

    # Warm the page cache once for everyone.
    subprocess.run(f"cat $(find {tree} -type f) > /dev/null", shell=True, check=True)

    collect, rss = [], []
    for _ in range(reps):
        shutil.rmtree(state, ignore_errors=True)
        subprocess.run(ev + ["init"], check=True, stdout=subprocess.DEVNULL)
        w, r, _ = timed(ev + ["collect"])
        collect.append(w)
        rss.append(r)
    recollect = [timed(ev + ["collect"])[0] for _ in range(5)]
    hashonly = []
    for _ in range(reps):
        shutil.rmtree(state_h, ignore_errors=True)
        subprocess.run(ev_h + ["init"], check=True, stdout=subprocess.DEVNULL)
        hashonly.append(timed(ev_h + ["collect"])[0])
    shutil.rmtree(state_h, ignore_errors=True)
    copy = []
    for _ in range(reps):
        dest = os.path.join(WORK, "copy-locker")
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(["sync"], check=True)
        copy.append(timed(["sh", "-c", f"cp -r {tree} {dest} && sync"])[0])
    shutil.rmtree(os.path.join(WORK, "copy-locker"), ignore_errors=True)
    openssl = [timed(["sh", "-c", f"find {tree} -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null"])[0] for _ in range(reps)]
    git = []
    for _ in range(reps):
        repo = os.path.join(WORK, "git-locker")
        shutil.rmtree(repo, ignore_errors=True)
        os.makedirs(repo)
        g = f"git -c user.name=bench -c user.email=bench@example.invalid --git-dir={repo}/.git --work-tree={tree}"
        git.append(timed(["sh", "-c", f"git init -q {repo} && {g} add -A && {g} commit -q -m evidence"])[0])
    shutil.rmtree(os.path.join(WORK, "git-locker"), ignore_errors=True)
    results["collect_first_s"] = median_of(collect)
    results["collect_first_runs_s"] = collect
    results["collect_hash_only_s"] = median_of(hashonly)
    results["cp_sync_s"] = median_of(copy)
    results["cp_sync_runs_s"] = copy
    results["hash_only_vs_openssl"] = results["collect_hash_only_s"] / median_of(openssl)
    results["collect_peak_rss_mib"] = max(rss)
    results["openssl_s"] = median_of(openssl)
    results["git_s"] = median_of(git)
    results["collect_vs_openssl"] = results["collect_first_s"] / results["openssl_s"]
    results["collect_vs_git"] = results["collect_first_s"] / results["git_s"]
    results["recollect_unchanged_s"] = median_of(recollect)

    synth = os.path.join(WORK, "synthetic")
    shutil.rmtree(synth, ignore_errors=True)
    out = subprocess.run(["cargo", "bench", "--locked", "--quiet", "--bench", "append", "--", "--state", synth, "--entries", str(entries)],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    append = json.loads(out.strip().splitlines()[-1])
    results["append_entries_per_s"] = append["entries_per_second"]
    sv = [EVIDENT, "--quiet", "--state-dir", synth, "--config", "/nonexistent"]
    q = [timed(sv + ["query", "A.2.2", "--format", "json"]) for _ in range(10)]
    results["query_sparse_ms"] = median_of([w for w, _, _ in q]) * 1000
    results["query_sparse_rows"] = len(json.loads(q[0][2]))
    dense = [timed(sv + ["query", "A.6.2.8", "--format", "json"]) for _ in range(3)]
    results["query_dense_ms"] = median_of([w for w, _, _ in dense]) * 1000
    results["query_dense_rows"] = len(json.loads(dense[0][2]))
    ver = [timed(sv + ["verify"]) for _ in range(reps)]
    results["verify_s"] = median_of([w for w, _, _ in ver])
    results["verify_peak_rss_mib"] = max(r for _, r, _ in ver)
    results["db_mib"] = os.path.getsize(os.path.join(synth, "evident.db")) / (1 << 20)

    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    print()
    print("| measure | result | target |")
    print("|---|---|---|")
    print(f"| first collect, {files} files / {total >> 20} MiB, content stored | {results['collect_first_s']:.2f} s | |")
    print(f"| first collect, digests only (max_file_size = 0) | {results['collect_hash_only_s']:.2f} s | |")
    print(f"| cp -r + sync of the same tree (durable copy) | {results['cp_sync_s']:.2f} s | |")
    print(f"| openssl dgst -sha256, same files | {results['openssl_s']:.2f} s | |")
    print(f"| git add -A && git commit, same files | {results['git_s']:.2f} s | |")
    print(f"| collect (stored) / openssl | {results['collect_vs_openssl']:.2f}x | <= 1.5x |")
    print(f"| collect (digests only) / openssl | {results['hash_only_vs_openssl']:.2f}x | <= 1.5x |")
    print(f"| collect / git | {results['collect_vs_git']:.2f}x | < 1x |")
    print(f"| re-collect, unchanged | {results['recollect_unchanged_s'] * 1000:.0f} ms | <= 500 ms |")
    print(f"| peak RSS during collect | {results['collect_peak_rss_mib']:.0f} MiB | <= 100 MB |")
    print(f"| append, 1,000-entry batches | {results['append_entries_per_s']:,.0f} entries/s | >= 100,000/s |")
    print(f"| query one control ({results['query_sparse_rows']} rows) | {results['query_sparse_ms']:.1f} ms | <= 20 ms |")
    print(f"| query a dense control ({results['query_dense_rows']} rows) | {results['query_dense_ms']:.0f} ms | |")
    print(f"| verify {entries:,} entries | {results['verify_s']:.2f} s | <= 5 s |")
    print(f"| peak RSS during verify | {results['verify_peak_rss_mib']:.0f} MiB | |")


if __name__ == "__main__":
    main()
