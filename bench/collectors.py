#!/usr/bin/env python3
"""Collector benchmark: 10,000 MLflow model versions created through a real MLflow server's
API, and 10,000 GitHub-shaped workflow runs from tests/fixtures/forge_server.py.

For each: the first `evident collect` (wall time, entries/s, peak RSS, requests made), a
second run with nothing changed, and the same requests made by a plain sequential Python
script (no hashing, no ledger) as the obvious alternative. Needs `cargo build --release` and
`scripts/peers.sh`. Usage: python3 bench/collectors.py [--versions 10000] [--runs 10000]
"""
import argparse
import concurrent.futures as cf
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVIDENT = os.path.join(ROOT, "target/release/evident")
PEERS = os.environ.get("EVIDENT_PEERS_DIR", os.path.join(ROOT, "target/peers"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read()
        return json.loads(raw) if raw else {}


def wait(port, path, secs=120):
    end = time.time() + secs
    while time.time() < end:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise SystemExit("server on %d not ready" % port)


def evident(workdir, *args):
    """Runs evident under /usr/bin/time -v; returns (seconds, peak RSS MiB, parsed JSON)."""
    cmd = ["/usr/bin/time", "-v", EVIDENT, "--config", os.path.join(workdir, "evident.toml"), "--format", "json", *args]
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.time() - t
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    if p.returncode not in (0,):
        print(p.stderr[-2000:], file=sys.stderr)
    return dt, rss, json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}


def setup(workdir, collector):
    with open(os.path.join(workdir, "evident.toml"), "w") as f:
        f.write('[ledger]\npath = "state"\norigin = "bench.evident.local/aims"\n\n' + collector)
    subprocess.run([EVIDENT, "--config", os.path.join(workdir, "evident.toml"), "init"], check=True, capture_output=True)


def report(label, first, second, baseline, entries):
    (t1, r1, j1), (t2, r2, j2) = first, second
    c1, c2 = j1["collectors"][0], j2["collectors"][0]
    print("%s first collect: %.1f s, %d entries, %.0f entries/s, %d requests, peak RSS %.0f MiB"
          % (label, t1, c1["new"], c1["new"] / t1, c1["requests"], r1))
    print("%s unchanged:     %.2f s, %d new, %d requests, peak RSS %.0f MiB" % (label, t2, c2["new"], c2["requests"], r2))
    print("%s plain script making the same %d requests: %.1f s -> evident/script = %.2fx"
          % (label, baseline[1], baseline[0], t1 / baseline[0]))
    assert c1["new"] == entries, c1


def mlflow_bench(n_versions):
    venv = os.path.join(PEERS, "mlflow")
    tmp = tempfile.mkdtemp(prefix="evident-bench-mlflow-")
    port = free_port()
    srv = subprocess.Popen([os.path.join(venv, "bin/mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                            "--backend-store-uri", "sqlite:///%s/mlflow.db" % tmp, "--default-artifact-root", tmp + "/art"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait(port, "/health")
        api = "/api/2.0/mlflow/"
        models, runs = 100, n_versions // 10
        t = time.time()
        exp = call(port, "POST", api + "experiments/create", {"name": "bench"})["experiment_id"]
        run_ids = []
        with cf.ThreadPoolExecutor(8) as ex:
            def mk_run(i):
                rid = call(port, "POST", api + "runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
                call(port, "POST", api + "runs/log-batch", {"run_id": rid, "metrics": [{"key": k, "value": 0.5 + i / 1e5, "timestamp": 1, "step": 0} for k in ("auc", "f1", "precision")],
                                                            "params": [{"key": "seed", "value": str(i)}]})
                return rid
            run_ids = list(ex.map(mk_run, range(runs)))
            list(ex.map(lambda m: call(port, "POST", api + "registered-models/create", {"name": "model-%03d" % m}), range(models)))
            def mk_version(i):
                m = i % models
                body = {"name": "model-%03d" % m, "source": "s3://models/%d/%d" % (m, i)}
                if i % 10 == 0:
                    body.update({"run_id": run_ids[(i // 10) % runs], "source": "runs:/%s/model" % run_ids[(i // 10) % runs]})
                call(port, "POST", api + "model-versions/create", body)
            list(ex.map(mk_version, range(n_versions)))
        print("mlflow: created %d versions of %d models, %d runs in %.0f s" % (n_versions, models, runs, time.time() - t))
        work = tempfile.mkdtemp(prefix="evident-bench-")
        setup(work, '[[collectors]]\nname = "registry"\nkind = "mlflow"\nurl = "http://127.0.0.1:%d"\n' % port)
        first = evident(work, "collect")
        second = evident(work, "collect")
        # The alternative: the same listing pages and run fetches, sequentially, in Python.
        t = time.time()
        n = 0
        tok = None
        while True:
            q = "registered-models/search?max_results=1000" + ("&page_token=" + tok if tok else "")
            r = call(port, "GET", api + q); n += 1
            tok = r.get("next_page_token")
            if not tok:
                break
        seen, tok = set(), None
        while True:
            q = "model-versions/search?max_results=1000" + ("&page_token=" + urllib.parse.quote(tok) if tok else "")
            r = call(port, "GET", api + q); n += 1
            for v in r.get("model_versions", []):
                if v.get("run_id") and v["run_id"] not in seen:
                    seen.add(v["run_id"])
                    call(port, "GET", api + "runs/get?run_id=" + v["run_id"]); n += 1
            tok = r.get("next_page_token")
            if not tok:
                break
        report("mlflow", first, second, (time.time() - t, n), n_versions)
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait()


def github_bench(n_runs):
    srv = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/fixtures/forge_server.py")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline().split()[1])
        for name, count in (("CI", n_runs * 7 // 10), ("Model evaluation", n_runs * 2 // 10), ("Deploy", n_runs - n_runs * 9 // 10)):
            call(port, "POST", "/_admin/github/runs", {"count": count, "name": name})
        # A real token has 5,000 requests an hour (the fixture enforces it); lift it here.
        call(port, "POST", "/_admin/quota", {"limit": 10**9, "remaining": 10**9})
        work = tempfile.mkdtemp(prefix="evident-bench-")
        setup(work, '[[collectors]]\nname = "gh"\nkind = "github_actions"\nrepo = "o/r"\napi_url = "http://127.0.0.1:%d"\n' % port)
        first = evident(work, "collect")
        second = evident(work, "collect")
        t = time.time()
        n = 0
        url = "/repos/o/r/actions/runs?per_page=100"
        while url:
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, url))
            with urllib.request.urlopen(req) as r:
                body = json.loads(r.read()); n += 1
                m = re.search(r'<http://[^/]+([^>]+)>; rel="next"', r.headers.get("Link", ""))
                url = m.group(1) if m else None
            for run in body["workflow_runs"]:
                call(port, "GET", "/repos/o/r/actions/runs/%d/attempts/1/jobs?per_page=100" % run["id"])
                call(port, "GET", "/repos/o/r/actions/runs/%d/artifacts?per_page=100" % run["id"])
                n += 2
        report("github", first, second, (time.time() - t, n), n_runs)
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    import urllib.parse
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=10000)
    a = ap.parse_args()
    if not os.path.exists(EVIDENT):
        raise SystemExit("build first: cargo build --release")
    github_bench(a.runs)
    mlflow_bench(a.versions)
