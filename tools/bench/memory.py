#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Memory per registered instance (issue #4: at most 1 KiB of RSS per instance at 300,000).

Starts dnsd (release build) with an empty registry, reads its VmRSS, registers --instances
instances (--per-service per service, each with two tags and two metadata keys, like a real
deployment's version and zone) through the API's Unix socket, pipelined, then reads VmRSS
again and checks with one DNS query that the last service is answered. Prints the RSS of
the whole process divided by the instance count, and the growth per instance.

    tools/bench/memory.py [--dnsd build/release/dnsd] [--instances 300000]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import pipeline  # noqa: E402

def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def wait_api(path, proc, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("dnsd exited with %d" % proc.returncode)
        try:
            conn = pipeline.PipeConn(path, timeout=2.0)
            conn.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the API socket %s did not come up" % path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    release = os.path.join(here, "..", "..", "build", "release")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dnsd", default=os.path.join(release, "dnsd"))
    ap.add_argument("--instances", type=int, default=300000)
    ap.add_argument("--per-service", type=int, default=3)
    ap.add_argument("--sockets", type=int, default=4)
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="dnsd-memory-")
    sock = os.path.join(work, "api.sock")
    port = benchlib.free_port()
    conf = os.path.join(work, "dnsd.conf")
    with open(conf, "w") as f:
        f.write('listen = [ "127.0.0.1:%d" ];\napi = [ "unix:%s" ];\nlog_level = "warn";\n'
                'zones_dir = "%s";\nlease = { max = 86400; };\n'
                'limits = { max_instances = %d; };\n'
                # Started as root, dnsd drops to this user after binding.
                'user = "nobody";\n'
                % (port, sock, work, max(args.instances, 1)))
    proc = subprocess.Popen([args.dnsd, "-c", conf], stderr=open(os.path.join(work, "log"), "w"))
    try:
        wait_api(sock, proc)
        time.sleep(0.2)
        before = vm_rss_kib(proc.pid)
        reqs = []
        for j in range(args.instances):
            service, inst = "svc%d" % (j // args.per_service), "i%d" % (j % args.per_service)
            addr = "10.%d.%d.%d" % (j >> 16 & 255, j >> 8 & 255, j & 255)
            body = json.dumps({"addresses": [addr], "port": 8080, "ttl": 86400,
                               "tags": ["primary", "v2"],
                               "meta": {"version": "1.4.2", "zone": "eu-west-1a"}})
            reqs.append(pipeline.request("PUT", "/v1/services/%s/instances/%s" % (service, inst),
                                         body))
        blobs = pipeline.batches(reqs, args.batch)
        del reqs
        t0 = time.monotonic()
        ok, bad, _, err, _ = pipeline.paced_loop(sock, blobs, (200, 201), args.sockets, 0, False,
                                                 None, time.monotonic() + 1800, None, 0)
        secs = time.monotonic() - t0
        if bad:
            raise RuntimeError("%d registrations failed (first: %s)" % (bad, err))
        time.sleep(0.5)
        after = vm_rss_kib(proc.pid)
        last = "svc%d.%s" % ((args.instances - 1) // args.per_service, benchlib.DOMAIN)
        reply = benchlib.dns_ask(port, last, "A", 2.0)
        answers = reply[1] if reply else 0
        print("memory: %s" % args.dnsd)
        print("  %d instances (%d per service, 2 tags and 2 meta keys each) registered in "
              "%.1f s; DNS answers %s with %d A records"
              % (ok, args.per_service, secs, last, answers))
        print("  RSS empty %.1f MiB, full %.1f MiB" % (before / 1024, after / 1024))
        print("  RSS per instance: %.0f bytes in all, %.0f bytes of growth (target <= 1024)"
              % (after * 1024 / ok, (after - before) * 1024 / ok))
        if answers != min(args.per_service, args.instances):
            raise RuntimeError("wrong DNS answer for %s" % last)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
