#!/usr/bin/env python3
"""Benchmarks of `evident run` (the daemon), as whole processes, with public tools only.

    python3 bench/daemon.py            # ~4 minutes
    python3 bench/daemon.py --quick    # ~40 seconds, to check the script

1. File-event-to-ledger latency: a `watch = true` collector; 100 times, write a new file and
   poll the ledger (read-only SQLite) until its entry is committed. Median and p95.
2. Idle daemon: 5 collectors scheduled hourly, 60 s after start-up: peak RSS (VmHWM) and the
   CPU time spent during those 60 s (utime + stime from /proc).
3. Memory over many schedules: 5 collectors every second for 120 s (600 runs, as many as
   five days of hourly schedules); RSS after 20 s and at the end.
Results print as a table and go to bench/work/daemon-results.json.
"""
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVIDENT = os.path.join(ROOT, "target", "release", "evident")
TICK = os.sysconf("SC_CLK_TCK")


def setup(work, collectors):
    cfg = os.path.join(work, "evident.toml")
    with open(cfg, "w") as f:
        f.write('[ledger]\npath = "state"\norigin = "bench.evident.local/aims"\n')
        for name, extra in collectors:
            d = os.path.join(work, name)
            os.makedirs(d, exist_ok=True)
            for i in range(20):
                with open(os.path.join(d, f"doc{i}.md"), "w") as g:
                    g.write(f"# {name} {i}\n")
            f.write(f'\n[[collectors]]\nname = "{name}"\nkind = "filesystem"\nroot = "{name}"\n{extra}\n')
    subprocess.run([EVIDENT, "-q", "--config", cfg, "init"], check=True, stdout=subprocess.DEVNULL)
    return cfg


def proc(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
    kib = lambda k: int(status[k].split()[0])
    return cpu, kib("VmRSS") / 1024, kib("VmHWM") / 1024


def committed(db, uri):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT 1 FROM entries WHERE uri = ? LIMIT 1", (uri,)).fetchone() is not None
    finally:
        con.close()


def wait_running(db):
    for _ in range(200):
        if os.path.exists(db):
            break
        time.sleep(0.05)
    time.sleep(1.0)


def latency(n):
    work = tempfile.mkdtemp(prefix="evident-lat-")
    try:
        cfg = setup(work, [("docs", "watch = true")])
        db = os.path.join(work, "state", "evident.db")
        d = subprocess.Popen([EVIDENT, "-q", "--config", cfg, "run"])
        wait_running(db)
        times = []
        for i in range(n):
            name = f"late-{i}.md"
            start = time.perf_counter()
            with open(os.path.join(work, "docs", name), "w") as f:
                f.write(f"# written {i}\n")
            while not committed(db, f"file://docs/{name}"):
                time.sleep(0.005)
                if time.perf_counter() - start > 10:
                    sys.exit(f"file {name} not recorded within 10 s")
            times.append(time.perf_counter() - start)
            time.sleep(0.05)
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=10)
        times.sort()
        return statistics.median(times), times[int(len(times) * 0.95) - 1]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def idle(seconds):
    work = tempfile.mkdtemp(prefix="evident-idle-")
    try:
        cfg = setup(work, [(f"c{i}", 'schedule = "@hourly"') for i in range(5)])
        d = subprocess.Popen([EVIDENT, "-q", "--config", cfg, "run"])
        time.sleep(2)
        cpu0, _, _ = proc(d.pid)
        time.sleep(seconds)
        cpu1, rss, hwm = proc(d.pid)
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=10)
        return cpu1 - cpu0, rss, hwm
    finally:
        shutil.rmtree(work, ignore_errors=True)


def churn(seconds):
    work = tempfile.mkdtemp(prefix="evident-churn-")
    try:
        cfg = setup(work, [(f"c{i}", 'schedule = "* * * * * *"') for i in range(5)])
        db = os.path.join(work, "state", "evident.db")
        d = subprocess.Popen([EVIDENT, "-q", "--config", cfg, "run"])
        time.sleep(20)
        _, rss_early, _ = proc(d.pid)
        time.sleep(max(0, seconds - 20))
        _, rss_late, hwm = proc(d.pid)
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=10)
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        con.close()
        return rss_early, rss_late, hwm, runs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    quick = "--quick" in sys.argv
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    med, p95 = latency(20 if quick else 100)
    cpu, rss, hwm = idle(10 if quick else 60)
    early, late, churn_hwm, runs = churn(25 if quick else 120)
    r = {
        "latency_median_ms": med * 1000, "latency_p95_ms": p95 * 1000,
        "idle_cpu_s": cpu, "idle_rss_mib": rss, "idle_peak_rss_mib": hwm,
        "churn_runs": runs, "churn_rss_after_20s_mib": early, "churn_rss_end_mib": late, "churn_peak_rss_mib": churn_hwm,
    }
    os.makedirs(os.path.join(ROOT, "bench", "work"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "work", "daemon-results.json"), "w") as f:
        json.dump(r, f, indent=2)
    print("| measure | result | target |\n|---|---|---|")
    print(f"| file event to committed entry, median | {r['latency_median_ms']:.0f} ms | <= 1 s |")
    print(f"| file event to committed entry, p95 | {r['latency_p95_ms']:.0f} ms | |")
    print(f"| idle, 5 hourly collectors: CPU in {10 if quick else 60} s | {cpu:.3f} s | <= 0.05 s |")
    print(f"| idle: RSS (peak) | {rss:.1f} MiB ({hwm:.1f}) | <= 20 MB |")
    print(f"| {runs} scheduled runs: RSS after 20 s -> end | {early:.1f} -> {late:.1f} MiB | no growth |")


if __name__ == "__main__":
    main()
