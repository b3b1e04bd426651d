#!/usr/bin/env python3
"""The team service's benchmark (issue 14): `evident run` serving a 1,000,000-entry ledger.

    python3 bench/api.py            # full run: 1,000,000 entries
    python3 bench/api.py --quick    # 20,000 entries, short loads: checks the script itself

Measures, against one daemon with its API on 127.0.0.1:
  * evidence for one control, 100 rows a page, 50 concurrent clients (wrk, 2 threads):
    requests/s and p99 latency, for a sparse control (A.2.2, 1,000 rows: the goal's) and a
    dense one (A.6.2.4, 600,000 rows); beside it, the same rows from `evident query` as a
    process (the obvious alternative: a script shelling out);
  * the dashboard's overview page (median of 15, one client);
  * pushes of small files (multipart, 1 KiB each, distinct URIs, 16 clients): pushes/s;
  * metadata-only pushes in batches of 10,000: entries/s;
  * the daemon's RSS idle with the API off and on, and its peak under all that load.
Needs python3, wrk (Debian's wrk) and cargo. Results: stdout and bench/work/api-results.json.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, WORK, Build  # noqa: E402

GOALS = [
    ("evidence_rps", "evidence, 100 rows, 50 clients: requests/s", ">= 2,000", lambda v: v >= 2000),
    ("evidence_p99_ms", "evidence, 100 rows, 50 clients: p99", "<= 20 ms", lambda v: v <= 20),
    ("overview_ms", "dashboard overview page", "<= 100 ms", lambda v: v <= 100),
    ("push_files_per_s", "pushes of 1 KiB files, 16 clients", ">= 500/s", lambda v: v >= 500),
    ("push_batch_entries_per_s", "metadata-only pushes, {batch} a batch", ">= 20,000 entries/s", lambda v: v >= 20000),
    ("rss_under_load_mib", "daemon peak RSS under that load", "<= 64 MiB", lambda v: v <= 64),
    ("idle_rss_growth_mib", "idle RSS, API on minus API off", "<= 4 MiB", lambda v: v <= 4),
    ("evidence_dense_rps", "the same for a dense control (A.6.2.4): requests/s", "", None),
    ("evidence_dense_p99_ms", "the same for a dense control (A.6.2.4): p99", "", None),
    ("query_cli_ms", "the same 100 rows from `evident query` (a process)", "", None),
    ("evidence_p50_ms", "evidence, 100 rows, 50 clients: p50", "", None),
    ("rss_after_queries_mib", "peak RSS after the evidence load", "", None),
    ("rss_after_file_pushes_mib", "peak RSS after the file pushes", "", None),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


class Daemon:
    def __init__(self, evident, state, api_on):
        self.port = free_port()
        self.config = os.path.join(WORK, f"api-bench-{'on' if api_on else 'off'}.toml")
        with open(self.config, "w") as f:
            f.write(f'[ledger]\npath = "{state}"\norigin = "bench.evident.local/aims"\ncheckpoint_interval = "1h"\n\n'
                    f'[api]\nenabled = {"true" if api_on else "false"}\nlisten = "127.0.0.1:{self.port}"\n'
                    f'rate_limit = 1000000\nmax_body = "64MiB"\n')
        self.log = open(os.path.join(WORK, "api-bench-daemon.log"), "w")
        # As the systemd unit runs it (Environment=MALLOC_ARENA_MAX=2, see systemd/evident.service).
        env = dict(os.environ, MALLOC_ARENA_MAX=os.environ.get("MALLOC_ARENA_MAX", "2"))
        self.p = subprocess.Popen([evident, "--config", self.config, "run"], stdout=subprocess.DEVNULL,
                                  stderr=self.log, env=env)
        if api_on:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                sys.exit("the daemon's API did not come up; see bench/work/api-bench-daemon.log")
        else:
            time.sleep(2)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=60)
        self.log.close()


def wrk(url, token, clients, seconds, script=None):
    cmd = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}"]
    if script:
        cmd += ["-s", script]
    # A script's own requests carry only the headers it sets: it reads the token from here.
    env = dict(os.environ, EVIDENT_TOKEN=token)
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0, out


PUSH_LUA = """
-- Each wrk thread has its own Lua state: number them so no two send the same URI.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
counter = 0
local boundary = "evidentbench"
local payload = string.rep("x", 1024)
request = function()
  counter = counter + 1
  local meta = '{"controls":["A.6.2.4"],"source":"bench","uri":"ci://bench/' .. tid .. '-' .. counter .. '"}'
  local body = "--" .. boundary .. "\\r\\nContent-Disposition: form-data; name=\\"metadata\\"\\r\\n\\r\\n" .. meta ..
    "\\r\\n--" .. boundary .. "\\r\\nContent-Disposition: form-data; name=\\"file\\"; filename=\\"r.txt\\"\\r\\n\\r\\n" ..
    payload .. tid .. "-" .. counter .. "\\r\\n--" .. boundary .. "--\\r\\n"
  return wrk.format("POST", "/v1/evidence", {["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
    ["Authorization"] = "Bearer " .. os.getenv("EVIDENT_TOKEN")}, body)
end
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small ledger, short loads (CI checks the script)")
    ap.add_argument("--batch", type=int, default=1_000, help="entries per metadata push (default 1,000; the API takes up to 10,000)")
    args = ap.parse_args()
    entries = 20_000 if args.quick else 1_000_000
    seconds = 2 if args.quick else 10
    os.makedirs(WORK, exist_ok=True)
    label = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.strip()
    b = Build(label, ROOT)
    state, _ = b.ledger(f"api-{entries}", entries)
    # Pushes grow the ledger: measure on a copy, so a rerun starts from the same ledger.
    run_state = state + "-run"
    subprocess.run(["rm", "-rf", run_state], check=True)
    subprocess.run(["cp", "-a", state, run_state], check=True)
    ev = [b.evident, "--quiet", "--state-dir", run_state, "--config", "/nonexistent"]
    token = subprocess.run(ev + ["token", "create", "bench", "--scope", "admin"], check=True,
                           capture_output=True, text=True).stdout.strip()
    r = {}

    off = Daemon(b.evident, run_state, api_on=False)
    time.sleep(3)
    idle_off = rss_mib(off.p.pid, "VmRSS")
    off.stop()
    d = Daemon(b.evident, run_state, api_on=True)
    time.sleep(3)
    idle_on = rss_mib(d.p.pid, "VmRSS")
    r["idle_rss_growth_mib"] = idle_on - idle_off
    base = f"http://127.0.0.1:{d.port}"
    control = "A.2.2"

    rps, p50, p99, errors, out = wrk(f"{base}/v1/evidence?control={control}&limit=100", token, 50, seconds)
    if errors:
        sys.exit(f"{errors} evidence requests failed:\n{out}")
    r["evidence_rps"], r["evidence_p50_ms"], r["evidence_p99_ms"] = rps, p50, p99
    rps, _, p99, errors, out = wrk(f"{base}/v1/evidence?control=A.6.2.4&limit=100", token, 50, seconds)
    if errors:
        sys.exit(f"{errors} evidence requests failed:\n{out}")
    r["evidence_dense_rps"], r["evidence_dense_p99_ms"] = rps, p99
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(ev + ["query", control, "--format", "json"], check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    r["query_cli_ms"] = statistics.median(times)
    r["rss_after_queries_mib"] = rss_mib(d.p.pid, "VmHWM")

    times = []
    req = urllib.request.Request(f"{base}/", headers={"Authorization": f"Bearer {token}"})
    for _ in range(15):
        t = time.perf_counter()
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 200 and b"Readiness" in resp.read()
        times.append((time.perf_counter() - t) * 1000)
    r["overview_ms"] = statistics.median(times)

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(PUSH_LUA)
        lua = f.name
    before = json.loads(subprocess.run(ev + ["status", "--format", "json"], check=True, capture_output=True,
                                       text=True).stdout)["entries"]
    rps, _, _, errors, out = wrk(f"{base}/v1/evidence", token, 16, seconds, script=lua)
    os.unlink(lua)
    if errors:
        sys.exit(f"{errors} pushes failed:\n{out}")
    after = json.loads(subprocess.run(ev + ["status", "--format", "json"], check=True, capture_output=True,
                                      text=True).stdout)["entries"]
    r["push_files_per_s"] = rps
    r["rss_after_file_pushes_mib"] = rss_mib(d.p.pid, "VmHWM")
    if after - before < rps * seconds * 0.9:
        sys.exit(f"pushes answered {rps * seconds:.0f} times but the ledger grew by {after - before}")

    batches = max(1, (30_000 if args.quick else 100_000) // args.batch)
    total, t = 0, time.perf_counter()
    for n in range(batches):
        batch = {"entries": [{"uri": f"s3://bench/{label}/{n}/{i}", "sha256": f"{n * args.batch + i + 1:064x}",
                              "size": i, "controls": ["A.6.2.5"], "source": "bench", "kind": "model_version"}
                             for i in range(args.batch)]}
        body = json.dumps(batch).encode()
        req = urllib.request.Request(f"{base}/v1/evidence", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as resp:
            got = json.loads(resp.read())
            total += sum(1 for e in got["entries"] if e["created"])
    r["push_batch_entries_per_s"] = total / (time.perf_counter() - t)
    r["rss_under_load_mib"] = rss_mib(d.p.pid, "VmHWM")
    d.stop()

    ctx = {"entries": entries, "batch": f"{args.batch:,}"}
    print(f"\nEvident {label}, ledger of {entries:,} entries; wrk {seconds} s per load\n")
    print("| measure | goal | value | |")
    print("|---|---|---|---|")
    for key, what, goal, test in GOALS:
        v = r.get(key)
        verdict = "" if test is None or v is None else ("met" if test(v) else "missed")
        print(f"| {what.format(**ctx)} | {goal} | {v:,.1f} | {verdict} |")
    if args.quick:
        print("\n(--quick: sizes and loads are too small for the goals to mean anything)")
    with open(os.path.join(WORK, "api-results.json"), "w") as f:
        json.dump({"label": label, "entries": entries, "results": r}, f, indent=1)


if __name__ == "__main__":
    main()
