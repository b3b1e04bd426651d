#!/usr/bin/env python3
"""Evident's benchmark, side by side with the obvious alternatives and, with --baseline, with
another commit of Evident, in one run.

    python3 bench/run.py                      # full run: 10,000 files / 1 GiB, 1,000,000 entries
    python3 bench/run.py --baseline 888f3e1   # the same, REF built in its own work tree, interleaved
    python3 bench/run.py --baseline 888f3e1 --baseline aa12a20   # several baselines at once
    python3 bench/run.py --quick              # small sizes, to check the script itself (CI runs it)

Measures, as whole processes (wall time and peak RSS from GNU time):
  * first `evident collect` of the tree (content kept in the blob store, and digests only)
    vs `cp -r && sync` (a durable copy, the disk's floor) and `openssl dgst -sha256` over the
    same files, and `git add -A && git commit` of the same tree (evidence kept in git);
  * re-`collect` of the unchanged tree;
  * appending 1,000,000 synthetic entries in 1,000-entry batches (entries/s, bench/append.rs);
  * `evident query` of a sparse and a dense control, `coverage` of every control and
    `verify` over that ledger, and its database size;
  * `export` of a 100,000-entry bundle with 10,000 blobs and its offline `verify`.
With --baseline REF every Evident measure runs for both builds, one after the other in each
repetition (so a noisy minute hits both), and the table gives both figures and the ratio of
this tree's figure to each baseline's (--baseline may be given more than once).
Needs python3, GNU time, openssl, git and cargo. Results: stdout and bench/work/results.json.
Files are read from the page cache by every contender (the tree was just written and read).
"""
import argparse
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

# (key, what, goal as text, test on the measured value or None)
GOALS = [
    ("append_entries_per_s", "append, 1,000-entry batches, FULL sync", ">= 150,000 entries/s", lambda v: v >= 150_000),
    ("verify_s", "verify {entries} entries", "<= 2.0 s", lambda v: v <= 2.0),
    ("verify_peak_rss_mib", "peak RSS during verify", "<= 64 MiB", lambda v: v <= 64),
    ("query_sparse_ms", "query one control ({sparse_rows} rows), JSON", "<= 5 ms", lambda v: v <= 5),
    ("query_dense_s", "query a dense control ({dense_rows} rows), JSON", "<= 1.0 s", lambda v: v <= 1.0),
    ("recollect_unchanged_ms", "re-collect of the unchanged {files}-file tree", "<= 50 ms", lambda v: v <= 50),
    ("db_mib_per_million", "database per 1,000,000 entries", "<= 600 MiB", lambda v: v <= 600),
    ("collect_vs_cp_sync", "first collect, content kept / cp -r + sync", "<= 1.0x", lambda v: v <= 1.0),
    ("hash_only_vs_openssl", "first collect, digests only / openssl dgst", "<= 0.6x", lambda v: v <= 0.6),
    ("export_s", "export, {bundle_entries}-entry {bundle_blobs}-blob bundle", "<= 3 s", lambda v: v <= 3),
    ("bundle_verify_s", "offline verify of that bundle", "<= 1.5 s", lambda v: v <= 1.5),
    ("coverage_ms", "coverage of all controls over {entries} entries", "<= 50 ms", lambda v: v <= 50),
    ("collect_first_s", "first collect, content kept", "", None),
    ("collect_hash_only_s", "first collect, digests only", "", None),
    ("collect_peak_rss_mib", "peak RSS during collect", "", None),
]


def timed(cmd, optional=False, **kw):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stdout).

    Peak RSS comes from GNU time (`/usr/bin/time -f %M`): the rusage of a child forked from
    this Python process would also count Python's own pages at fork time.
    """
    rss_file = os.path.join(WORK, ".rss")
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, capture_output=True, **kw)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        if optional:  # a baseline without this command or option: its figure is n/a
            print(f"note: {' '.join(cmd[:1] + cmd[-3:])} failed: {p.stderr.decode(errors='replace').strip()[:200]}",
                  file=sys.stderr)
            return None, None, b""
        sys.exit(f"command failed: {cmd}\n{p.stderr.decode(errors='replace')}")
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    return wall, rss_kib / 1024, p.stdout


def median_of(runs):
    return statistics.median(runs)


class Build:
    """One Evident build: its binary and its append benchmark, from a source tree."""

    def __init__(self, label, root):
        self.label, self.root = label, root
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=root, check=True)
        out = subprocess.run(["cargo", "bench", "--locked", "--no-run", "--bench", "append", "--message-format=json"],
                             cwd=root, check=True, capture_output=True, text=True).stdout
        exes = [m["executable"] for m in map(json.loads, out.splitlines())
                if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "append"]
        if not exes:
            sys.exit(f"{label}: cargo did not report the append benchmark's executable")
        self.evident = os.path.join(root, "target", "release", "evident")
        self.append = exes[-1]
        # Builds before the bundle benchmark took blobs ignore --spread-days and --blobs:
        # their ledgers are single-day and their bundles blob-less, which the table says.
        with open(os.path.join(root, "bench", "append.rs")) as f:
            self.has_blobs = '"--blobs"' in f.read()

    def work(self, name):
        return os.path.join(WORK, f"{name}-{self.label}")

    def ledger(self, name, entries, blobs=0, fresh=False):
        """A synthetic ledger of `entries` written by this build's append benchmark; its
        report (entries/s) when it was written now, else None."""
        path = self.work(name)
        if os.path.exists(os.path.join(path, "evident.db")) and not fresh:
            return path, None
        shutil.rmtree(path, ignore_errors=True)
        args = ["--state", path, "--entries", str(entries), "--spread-days", "365"]
        if blobs:
            args += ["--blobs", str(blobs), "--blob-size", "8192"]
        out = subprocess.run([self.append] + args, check=True, capture_output=True, text=True).stdout
        return path, json.loads(out.strip().splitlines()[-1])


def baseline_tree(ref):
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    path = os.path.join(WORK, f"baseline-{sha[:12]}")
    if not os.path.isdir(path):
        subprocess.run(["git", "worktree", "add", "--detach", path, sha], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return sha[:12], path


def config(b, name, tree, max_size):
    path = b.work(name) + ".toml"
    with open(path, "w") as f:
        f.write(f'[ledger]\npath = "{os.path.basename(b.work(name))}"\norigin = "bench.evident.local/aims"\n\n'
                f'[[collectors]]\nname = "tree"\nkind = "filesystem"\nroot = "{tree}"\ncontrols = ["A.7.5"]\n'
                f'max_file_size = "{max_size}"\n')
    return [b.evident, "--quiet", "--config", path], b.work(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Takes about 10 minutes per build at full size; --quick about 1.")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script itself (CI runs it)")
    ap.add_argument("--baseline", action="append", default=[], metavar="REF",
                    help="also build and measure this commit, interleaved with the work tree (repeatable)")
    args = ap.parse_args()
    quick, baselines = args.quick, args.baseline
    if quick:
        files, total, entries, bundle_n, bundle_blobs, reps = 500, 20 << 20, 20_000, 5_000, 500, 2
    else:
        files, total, entries, bundle_n, bundle_blobs, reps = 10_000, 1 << 30, 1_000_000, 100_000, 10_000, 3
    os.makedirs(WORK, exist_ok=True)
    builds = []
    for ref in baselines:
        sha, path = baseline_tree(ref)
        builds.append(Build(sha, path))
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout
    builds.append(Build(head + ("+" if dirty else ""), ROOT))
    tree = os.path.join(WORK, f"tree-{files}-{total}")
    if not os.path.isdir(tree):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_tree.py"), tree, str(files), str(total)], check=True)
    subprocess.run(f"find {tree} -type f -print0 | xargs -0 cat > /dev/null", shell=True, check=True)

    r = {b.label: {} for b in builds}
    ref = {"files": files, "bytes": total, "entries": entries, "bundle_entries": bundle_n, "bundle_blobs": bundle_blobs}

    def add(b, key, value):
        if value is not None:
            r[b.label].setdefault(key, []).append(value)

    def run(b, cmd):
        """Times an Evident command; a baseline's failure (a command it lacks) gives None."""
        return timed(cmd, optional=b is not builds[-1])

    def ms(w):
        return None if w is None else w * 1000

    # Collection, with the alternatives once per repetition.
    for _ in range(reps):
        for b in builds:
            ev, state = config(b, "store", tree, "1GiB")
            shutil.rmtree(state, ignore_errors=True)
            subprocess.run(ev + ["init"], check=True, stdout=subprocess.DEVNULL)
            w, rss, _ = run(b, ev + ["collect"])
            add(b, "collect_first_s", w)
            add(b, "collect_peak_rss_mib", rss)
            for _ in range(3):
                add(b, "recollect_unchanged_ms", ms(run(b, ev + ["collect"])[0]))
            ev_h, state_h = config(b, "hashonly", tree, "0B")
            shutil.rmtree(state_h, ignore_errors=True)
            subprocess.run(ev_h + ["init"], check=True, stdout=subprocess.DEVNULL)
            add(b, "collect_hash_only_s", run(b, ev_h + ["collect"])[0])
            shutil.rmtree(state_h, ignore_errors=True)
        dest = os.path.join(WORK, "copy-locker")
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(["sync"], check=True)
        ref.setdefault("cp_sync_s", []).append(timed(["sh", "-c", f"cp -r {tree} {dest} && sync"])[0])
        shutil.rmtree(dest, ignore_errors=True)
        ref.setdefault("openssl_s", []).append(
            timed(["sh", "-c", f"find {tree} -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null"])[0])
        repo = os.path.join(WORK, "git-locker")
        shutil.rmtree(repo, ignore_errors=True)
        os.makedirs(repo)
        g = f"git -c user.name=bench -c user.email=bench@example.invalid --git-dir={repo}/.git --work-tree={tree}"
        ref.setdefault("git_s", []).append(timed(["sh", "-c", f"git init -q {repo} && {g} add -A && {g} commit -q -m evidence"])[0])
        shutil.rmtree(repo, ignore_errors=True)

    # The synthetic ledger: appended fresh in every repetition, by each build in turn.
    for _ in range(reps):
        for b in builds:
            _, report = b.ledger("synthetic", entries, fresh=True)
            add(b, "append_entries_per_s", report["entries_per_second"])
    for _ in range(reps):
        for b in builds:
            synth = b.work("synthetic")
            sv = [b.evident, "--quiet", "--state-dir", synth, "--config", "/nonexistent"]
            for _ in range(5):
                w, _, out = run(b, sv + ["query", "A.2.2", "--format", "json"])
                add(b, "query_sparse_ms", ms(w))
            if out:
                ref["sparse_rows"] = len(json.loads(out))
            w, _, out = run(b, sv + ["query", "A.6.2.8", "--format", "json"])
            add(b, "query_dense_s", w)
            if out:
                ref["dense_rows"] = len(json.loads(out))
            for _ in range(3):
                add(b, "coverage_ms", ms(run(b, sv + ["coverage", "--format", "json"])[0]))
            w, rss, _ = run(b, sv + ["verify"])
            add(b, "verify_s", w)
            add(b, "verify_peak_rss_mib", rss)
            add(b, "db_mib_per_million", os.path.getsize(os.path.join(synth, "evident.db")) / (1 << 20) * 1e6 / entries)

    # The audit bundle.
    for _ in range(reps):
        for b in builds:
            state, _ = b.ledger(f"bundle-{bundle_n}", bundle_n, blobs=bundle_blobs)
            bundle = b.work("bundle") + ".tar.gz"
            if os.path.exists(bundle):
                os.remove(bundle)
            add(b, "export_s", run(b, [b.evident, "--quiet", "--state-dir", state, "--config", "/nonexistent",
                                       "export", "--out", bundle])[0])
            if os.path.exists(bundle):
                add(b, "bundle_verify_s", run(b, [b.evident, "verify", bundle, "--key",
                                                  os.path.join(state, "verifier.vkey")])[0])

    # Medians, and the ratios against the alternatives.
    res = {"reference": {k: (median_of(v) if isinstance(v, list) else v) for k, v in ref.items()}, "builds": {}}
    for b in builds:
        m = {k: median_of(v) for k, v in r[b.label].items()}
        refs = res["reference"]
        for key, num, den in (("collect_vs_cp_sync", "collect_first_s", "cp_sync_s"),
                              ("hash_only_vs_openssl", "collect_hash_only_s", "openssl_s"),
                              ("collect_vs_git", "collect_first_s", "git_s")):
            if num in m:
                m[key] = m[num] / refs[den]
        m["runs"] = r[b.label]
        res["builds"][b.label] = m
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(res, f, indent=2)

    facts = dict(res["reference"])
    facts["entries"] = f"{entries:,}"
    print(f"cp -r + sync {facts['cp_sync_s']:.2f} s · openssl dgst {facts['openssl_s']:.2f} s · "
          f"git add + commit {facts['git_s']:.2f} s (medians of {reps})")
    if quick:
        print("(--quick: small sizes, to check the script; the goals are for the full run)")
    labels = [b.label for b in builds]
    for b in builds:
        if not b.has_blobs:
            print(f"note: {b.label}'s append benchmark has no --spread-days/--blobs: its ledger is "
                  "single-day and its bundle blob-less (export and bundle verify are not comparable)")
    ratios = "".join(f" | vs {lab}" for lab in labels[:-1])
    head = "| measure | goal | " + " | ".join(labels) + ratios + " | |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for key, what, goal, ok in GOALS:
        vals = [res["builds"][lab].get(key) for lab in labels]
        cells = [fmt(key, v) for v in vals]
        last = vals[-1]
        tail = "".join((f"{last / v:.2f}x" if v else "") + " | " for v in vals[:-1])
        tail += "" if ok is None else ("met" if ok(last) else "missed")
        print(f"| {what.format(**facts)} | {goal} | " + " | ".join(cells) + f" | {tail} |")


def fmt(key, v):
    if v is None:
        return "n/a"
    if key.endswith("_per_s"):
        return f"{v:,.0f}"
    if key.endswith("_ms"):
        return f"{v:.1f} ms"
    if key.endswith("_mib") or key.endswith("_per_million"):
        return f"{v:.0f} MiB"
    if key.endswith("_s"):
        return f"{v:.2f} s"
    return f"{v:.2f}x"


if __name__ == "__main__":
    main()
