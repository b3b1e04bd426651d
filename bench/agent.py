#!/usr/bin/env python3
"""A remote agent forwarding 10,000 documents to a centre (issue 16), beside the centre
collecting the same documents itself, in one run:

    python3 bench/agent.py             # 10,000 documents of 1-8 KiB
    python3 bench/agent.py --quick     # 1,000

  * `evident collect` of the tree straight into the centre's ledger (the local figure);
  * `evident collect` of the tree into the agent's ledger (its spool), then the agent
    daemon's forwarding of all of it to the centre's push API over loopback HTTP, timed
    from the agent's start until the centre holds every document.
Both daemons are real `evident` processes. Wall time, median of --runs. Needs python3 and
cargo. Results: stdout and bench/work/agent.json.
"""
import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, WORK, Build  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count(state, where="1"):
    db = os.path.join(state, "evident.db")
    if not os.path.exists(db):
        return 0
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return c.execute(f"SELECT COUNT(*) FROM entries WHERE {where}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        c.close()


def config(path, state, tree, name, extra=""):
    with open(path, "w") as f:
        f.write(f'[ledger]\npath = "{state}"\norigin = "{name}.bench.evident.local/log"\n'
                f'checkpoint_interval = "1h"\n\n'
                f'[[collectors]]\nname = "{name}-docs"\nkind = "filesystem"\nroot = "{tree}"\n{extra}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n = 1_000 if args.quick else 10_000
    os.makedirs(WORK, exist_ok=True)
    b = Build("agent", ROOT)
    tree = os.path.join(WORK, f"agent-tree-{n}")
    if not os.path.isdir(tree):
        os.makedirs(tree)
        for i in range(n):
            with open(os.path.join(tree, f"doc-{i:05}.md"), "w") as f:
                f.write(f"---\ncontrols: [A.6.2.{i % 8 + 1}]\n---\n# Record {i}\n" + "x" * (1024 + (i * 97) % 7168))
    local, forward, spool = [], [], []
    for _ in range(args.runs):
        d = os.path.join(WORK, "agent-run")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        port = free_port()
        centre_cfg = os.path.join(d, "centre.toml")
        config(centre_cfg, os.path.join(d, "centre"), os.path.join(d, "empty"), "centre",
               f'\n[api]\nlisten = "127.0.0.1:{port}"\n')
        os.makedirs(os.path.join(d, "empty"))
        subprocess.run([b.evident, "--config", centre_cfg, "--quiet", "init"], check=True, capture_output=True)
        token = subprocess.run([b.evident, "--config", centre_cfg, "token", "create", "site", "--scope", "push"],
                               check=True, capture_output=True, text=True).stdout.strip()
        # The local figure: the centre collecting the tree itself.
        direct_cfg = os.path.join(d, "direct.toml")
        config(direct_cfg, os.path.join(d, "direct"), tree, "direct")
        subprocess.run([b.evident, "--config", direct_cfg, "--quiet", "init"], check=True, capture_output=True)
        t = time.perf_counter()
        subprocess.run([b.evident, "--config", direct_cfg, "--quiet", "collect"], check=True, capture_output=True)
        local.append(time.perf_counter() - t)
        # The agent: collect into its spool, then forward.
        agent_cfg = os.path.join(d, "agent.toml")
        config(agent_cfg, os.path.join(d, "agent"), tree, "site",
               f'\n[api]\nenabled = false\n\n[agent]\nurl = "http://127.0.0.1:{port}"\ninterval = "1s"\n')
        subprocess.run([b.evident, "--config", agent_cfg, "--quiet", "init"], check=True, capture_output=True)
        t = time.perf_counter()
        subprocess.run([b.evident, "--config", agent_cfg, "--quiet", "collect"], check=True, capture_output=True)
        spool.append(time.perf_counter() - t)
        log = open(os.path.join(d, "centre.log"), "w")
        centre = subprocess.Popen([b.evident, "--config", centre_cfg, "run"], stdout=log, stderr=log)
        for _ in range(300):
            if os.path.exists(os.path.join(d, "centre", "daemon-status.json")):
                break
            time.sleep(0.1)
        alog = open(os.path.join(d, "agent.log"), "w")
        t = time.perf_counter()
        agent = subprocess.Popen([b.evident, "--config", agent_cfg, "agent"], stdout=alog, stderr=alog,
                                 env=dict(os.environ, EVIDENT_AGENT_TOKEN=token))
        while count(os.path.join(d, "centre"), "kind = 'document'") < n:
            if agent.poll() is not None or centre.poll() is not None:
                sys.exit(f"a daemon stopped; see {d}/agent.log and centre.log")
            time.sleep(0.05)
        forward.append(time.perf_counter() - t)
        for p in (agent, centre):
            p.terminate()
            p.wait()
    res = {
        "documents": n,
        "collect_centre_s": statistics.median(local),
        "collect_agent_spool_s": statistics.median(spool),
        "forward_s": statistics.median(forward),
    }
    res["forward_docs_per_s"] = round(n / res["forward_s"])
    res["agent_total_ratio"] = round((res["collect_agent_spool_s"] + res["forward_s"]) / res["collect_centre_s"], 2)
    with open(os.path.join(WORK, "agent.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(f"{n} documents: centre collects them itself in {res['collect_centre_s']:.2f} s; "
          f"an agent collects them in {res['collect_agent_spool_s']:.2f} s and forwards them in "
          f"{res['forward_s']:.2f} s ({res['forward_docs_per_s']}/s): {res['agent_total_ratio']}x the direct collect")


if __name__ == "__main__":
    main()
