#!/usr/bin/env python3
"""Crash safety of `evident run`: SIGKILL at random moments during a heavy ingest.

    python3 tests/crash_safety.py [--trials 30] [--binary target/release/evident]

Each trial starts the daemon on a tree that keeps growing and changing, waits a random
0.1-2.5 s, snapshots what a reader sees as committed (entries and checkpoints), kills the
daemon with SIGKILL, restarts it and checks that:
  * `evident verify` passes;
  * every entry and checkpoint seen before the kill is still there, byte for byte;
  * no two checkpoints of one size ever differ (across all trials);
  * an unchanged file is never recorded twice (no URI has two consecutive entries with
    the same digest);
  * the restarted daemon holds the state-directory lock (a second flock is refused);
  * the stat cache resumes: a final run over the unchanged tree records nothing new;
  * kills really landed mid-write: in some trials a blob was half-written (a temporary
    file of the killed process is left in blobs/tmp), else the run proves nothing.
Exits 1 with the failing check, 0 when every trial passes. Uses only the standard library.
"""
import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LOG = None


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    if LOG and os.path.exists(LOG):
        with open(LOG, "rb") as f:
            tail = f.read()[-3000:].decode(errors="replace")
        print(f"--- the daemons' log, last lines:\n{tail}", file=sys.stderr)
    sys.exit(1)


def snapshot(db):
    """Entries (idx -> leaf) and checkpoints (size -> note) a reader sees now."""
    if not os.path.exists(db):
        return {}, {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        entries = dict(con.execute("SELECT idx, leaf FROM entries"))
        cps = dict(con.execute("SELECT size, note FROM checkpoints"))
    finally:
        con.close()
    return entries, cps


def duplicates(db):
    """URIs whose consecutive document entries repeat a digest."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT uri, kind, sha256 FROM entries WHERE kind IN ('document', 'document_removed') ORDER BY uri, idx"
        ).fetchall()
    finally:
        con.close()
    dups, last = [], {}
    for uri, kind, sha in rows:
        prev = last.get(uri)
        if kind == "document" and prev == ("document", sha):
            dups.append(uri)
        last[uri] = (kind, sha)
    return dups


def last_runs_quiet(db, n):
    """Whether the last n collector runs (the run history) found nothing new and nothing removed."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        runs = con.execute(
            "SELECT new, removed, failed FROM runs ORDER BY id DESC LIMIT ?", (n,)).fetchall()
    except sqlite3.OperationalError:
        return False  # the ledger is still being created or migrated
    finally:
        con.close()
    return len(runs) == n and all(r == (0, 0, 0) for r in runs)


def lock_held(state, pid):
    """Whether process `pid` holds the flock on daemon.lock, read from /proc/locks (probing
    with flock would itself take the lock for a moment and race the daemon)."""
    try:
        ino = os.stat(os.path.join(state, "daemon.lock")).st_ino
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return False
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[3] == "WRITE" \
                and parts[4] == str(pid) and parts[5].split(":")[-1] == str(ino):
            return True
    return False


def half_written(state, pid):
    """Temporary blob files the killed process `pid` was writing."""
    tmp = os.path.join(state, "blobs", "tmp")
    if not os.path.isdir(tmp):
        return []
    return [f for f in os.listdir(tmp) if f.startswith(f"{pid}-")]


def grow(tree, rng, n):
    """Adds n new files and rewrites a few existing ones (a heavy, changing ingest)."""
    for _ in range(n):
        d = os.path.join(tree, f"d{rng.randrange(20):02d}")
        os.makedirs(d, exist_ok=True)
        name = os.path.join(d, f"f{rng.getrandbits(40):010x}.bin")
        with open(name, "wb") as f:
            # Some large files, so a good share of each run is spent writing blobs and
            # kills land mid-write.
            f.write(rng.randbytes(rng.choice([200, 2_000, 20_000, 100_000, 1_000_000])))
    existing = [os.path.join(dp, f) for dp, _, fs in os.walk(tree) for f in fs]
    for p in rng.sample(existing, min(5, len(existing))):
        with open(p, "ab") as f:
            f.write(b"changed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "evident"))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"seed {args.seed}")
    work = tempfile.mkdtemp(prefix="evident-crash-")
    tree = os.path.join(work, "tree")
    os.makedirs(tree)
    config = os.path.join(work, "evident.toml")
    with open(config, "w") as f:
        f.write('[ledger]\npath = "state"\norigin = "crash.evident.local/aims"\ncheckpoint_interval = "500ms"\n\n'
                '[[collectors]]\nname = "tree"\nkind = "filesystem"\nroot = "tree"\nschedule = "* * * * * *"\n')
    db = os.path.join(work, "state", "evident.db")
    evident = [args.binary, "--quiet", "--config", config]
    grow(tree, rng, 800)
    seen_entries, seen_cps = {}, {}
    state = os.path.join(work, "state")
    mid_write = 0
    global LOG
    LOG = os.path.join(work, "daemon.log")
    log = open(LOG, "ab")
    try:
        for trial in range(1, args.trials + 1):
            grow(tree, rng, rng.randrange(20, 150))
            daemon = subprocess.Popen(evident + ["run"], stdout=log, stderr=log)
            if trial % 2:
                # Half the trials aim: kill as soon as a blob is being written.
                deadline = time.time() + 5
                while time.time() < deadline and not half_written(state, daemon.pid):
                    time.sleep(0.001)
            else:
                time.sleep(rng.uniform(0.1, 2.5))
            entries, cps = snapshot(db)
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            if half_written(state, daemon.pid):
                mid_write += 1
            seen_entries.update(entries)
            for size, note in cps.items():
                if seen_cps.setdefault(size, note) != note:
                    fail(f"trial {trial}: two different checkpoints of size {size}")
            # Restart: the lock must be free again, taken by the new daemon, the ledger intact.
            daemon = subprocess.Popen(evident + ["run"], stdout=log, stderr=log)
            deadline = time.time() + 20
            while time.time() < deadline and not lock_held(state, daemon.pid):
                if daemon.poll() is not None:
                    fail(f"trial {trial}: the restarted daemon exited ({daemon.returncode})")
                time.sleep(0.05)
            if not lock_held(state, daemon.pid):
                fail(f"trial {trial}: the restarted daemon does not hold daemon.lock")
            v = subprocess.run(evident + ["verify"], capture_output=True, text=True)
            if v.returncode != 0:
                fail(f"trial {trial}: verify failed after restart:\n{v.stdout}{v.stderr}")
            after, cps_after = snapshot(db)
            for idx, leaf in seen_entries.items():
                if after.get(idx) != leaf:
                    fail(f"trial {trial}: acknowledged entry {idx} is missing or changed after the crash")
            for size, note in seen_cps.items():
                if size not in cps_after:
                    fail(f"trial {trial}: checkpoint {size} vanished after the crash")
                if cps_after[size] != note:
                    fail(f"trial {trial}: checkpoint {size} changed after the crash")
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            dups = duplicates(db)
            if dups:
                fail(f"trial {trial}: unchanged files recorded twice: {dups[:5]}")
            print(f"trial {trial:2}: ok ({len(after)} entries, {len(cps_after)} checkpoints, "
                  f"{mid_write} kill(s) mid-write so far)")
        # Let a clean daemon finish ingesting; then runs over the unchanged tree must record
        # nothing: the stat cache resumed.
        daemon = subprocess.Popen(evident + ["run"], stdout=log, stderr=log)
        deadline = time.time() + 120
        quiet = False
        while time.time() < deadline and not quiet:
            time.sleep(0.5)
            quiet = last_runs_quiet(db, 2)
        daemon.send_signal(signal.SIGTERM)
        if daemon.wait(timeout=10) != 0:
            fail("the final daemon did not exit cleanly on SIGTERM")
        if not quiet:
            fail("the stat cache did not resume: runs over an unchanged tree kept recording")
        v = subprocess.run(evident + ["verify"], capture_output=True, text=True)
        if v.returncode != 0:
            fail(f"final verify failed:\n{v.stdout}")
        if duplicates(db):
            fail("unchanged files recorded twice")
        if args.trials >= 10 and mid_write == 0:
            fail("no kill landed while a blob was being written: the trials proved nothing")
        print(f"all {args.trials} trials passed ({mid_write} kills landed mid-write)")
    finally:
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
