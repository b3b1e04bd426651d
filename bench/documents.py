#!/usr/bin/env python3
"""Ticketing and document-store benchmark through real servers: 5,000 Redmine issues with
journals (Redmine from Debian, set up by scripts/peers.sh) and 10,000 S3 objects of 1 GiB in
all (a real moto server).

For each: the first `evident collect` (wall time, entries/s, peak RSS, requests), a second
run with nothing changed, and the same requests from a plain sequential Python script (no
hashing, no ledger) as the obvious alternative. Needs `cargo build --release` and
`scripts/peers.sh`. Usage: python3 bench/documents.py [--issues 5000] [--objects 10000] [--size-mib 1024]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectors import EVIDENT, PEERS, ROOT, evident, free_port, setup, wait  # noqa: E402


def report(label, first, second, baseline, entries):
    (t1, r1, j1), (t2, r2, j2) = first, second
    c1, c2 = j1["collectors"][0], j2["collectors"][0]
    print("%s first collect: %.1f s, %d entries, %.0f entries/s, %d requests, peak RSS %.0f MiB"
          % (label, t1, c1["new"], c1["new"] / t1, c1["requests"], r1), flush=True)
    print("%s unchanged:     %.2f s, %d new, %d requests, peak RSS %.0f MiB" % (label, t2, c2["new"], c2["requests"], r2), flush=True)
    print("%s plain script making the same %d requests: %.1f s -> evident/script = %.2fx"
          % (label, baseline[1], baseline[0], t1 / baseline[0]), flush=True)
    assert c1["new"] == entries, c1


def redmine_bench(n):
    key = open(os.path.join(PEERS, "redmine/api-key")).read().strip()
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="evident-bench-redmine-")
    srv = subprocess.Popen(["bin/rails", "server", "-e", "production", "-b", "127.0.0.1", "-p", str(port), "-P", tmp + "/pid"],
                           cwd="/usr/share/redmine", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        ident = "bench%d" % int(time.time())
        t = time.time()
        ruby = """
admin = User.find_by_login("admin"); User.current = admin
p = Project.create!(name: "%(id)s", identifier: "%(id)s", is_public: false, tracker_ids: Tracker.pluck(:id), enabled_module_names: ["issue_tracking"])
tracker = Tracker.first; prio = IssuePriority.first
ActiveRecord::Base.transaction do
  %(n)d.times do |i|
    is = Issue.new(project: p, tracker: tracker, author: admin, subject: "Bench issue #{i}", description: "Model monitoring note #{i}", priority: prio)
    is.save!
    is.reload; is.init_journal(admin, "Reviewed #{i}"); is.done_ratio = 10; is.save!
  end
end
""" % {"id": ident, "n": n}
        subprocess.run(["bin/rails", "runner", "-e", "production", ruby], cwd="/usr/share/redmine", check=True, capture_output=True)
        print("redmine: created %d issues with a journal each in %.0f s" % (n, time.time() - t), flush=True)
        wait(port, "/login")
        work = tempfile.mkdtemp(prefix="evident-bench-")
        with open(os.path.join(work, "key"), "w") as f:
            f.write(key)
        setup(work, '[[collectors]]\nname = "redmine"\nkind = "redmine"\nurl = "http://127.0.0.1:%d"\nprojects = ["%s"]\ntoken_file = "key"\n' % (port, ident))
        first = evident(work, "collect")
        second = evident(work, "collect")
        t = time.time()
        reqs = 0
        offset = 0
        while True:
            req = urllib.request.Request("http://127.0.0.1:%d/issues.json?project_id=%s&status_id=*&sort=updated_on:asc,id&offset=%d&limit=100" % (port, ident, offset),
                                         headers={"X-Redmine-API-Key": key})
            page = json.loads(urllib.request.urlopen(req).read()); reqs += 1
            for i in page["issues"]:
                r = urllib.request.Request("http://127.0.0.1:%d/issues/%d.json?include=journals,attachments,relations,children,watchers" % (port, i["id"]),
                                           headers={"X-Redmine-API-Key": key})
                urllib.request.urlopen(r).read(); reqs += 1
            offset += len(page["issues"])
            if len(page["issues"]) < 100:
                break
        report("redmine", first, second, (time.time() - t, reqs), n)
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait()


def s3_bench(n, size_mib):
    venv = os.path.join(PEERS, "moto")
    port = free_port()
    srv = subprocess.Popen([os.path.join(venv, "bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait(port, "/")
        each = size_mib * 1024 * 1024 // n
        t = time.time()
        loader = """
import boto3, os, sys
s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:%d', region_name='us-east-1', aws_access_key_id='AKIDBENCH', aws_secret_access_key='bench-secret')
s3.create_bucket(Bucket='bench')
blob = os.urandom(%d)
for i in range(%d):
    s3.put_object(Bucket='bench', Key='evidence/%%03d/doc-%%05d.bin' %% (i %% 100, i), Body=(b'%%08d' %% i) + blob[8:])
""" % (port, each, n)
        subprocess.run([os.path.join(venv, "bin/python"), "-c", loader], check=True)
        print("s3: uploaded %d objects of %d bytes (%.2f GiB) in %.0f s" % (n, each, n * each / 2**30, time.time() - t), flush=True)
        work = tempfile.mkdtemp(prefix="evident-bench-")
        os.environ["EVIDENT_BENCH_S3"] = "bench-secret"
        setup(work, '[[collectors]]\nname = "bucket"\nkind = "s3"\nbucket = "bench"\nprefix = "evidence/"\nendpoint = "http://127.0.0.1:%d"\naccess_key_id = "AKIDBENCH"\ntoken_env = "EVIDENT_BENCH_S3"\n' % port)
        first = evident(work, "collect")
        second = evident(work, "collect")
        script = """
import boto3, time
s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:%d', region_name='us-east-1', aws_access_key_id='AKIDBENCH', aws_secret_access_key='bench-secret')
t = time.time(); n = 0; tok = None
while True:
    kw = dict(Bucket='bench', Prefix='evidence/', MaxKeys=1000)
    if tok: kw['ContinuationToken'] = tok
    page = s3.list_objects_v2(**kw); n += 1
    for o in page.get('Contents', []):
        s3.get_object(Bucket='bench', Key=o['Key'])['Body'].read(); n += 1
    tok = page.get('NextContinuationToken')
    if not page.get('IsTruncated'): break
print(time.time() - t, n)
""" % port
        out = subprocess.run([os.path.join(venv, "bin/python"), "-c", script], check=True, capture_output=True, text=True).stdout.split()
        report("s3", first, second, (float(out[0]), int(out[1])), n)
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--issues", type=int, default=5000)
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--size-mib", type=int, default=1024)
    a = ap.parse_args()
    if not os.path.exists(EVIDENT):
        raise SystemExit("build first: cargo build --release")
    s3_bench(a.objects, a.size_mib)
    redmine_bench(a.issues)
