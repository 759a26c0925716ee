#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Soak test (by hand, not in CI): one dnsd under dnsperf query load, registration churn
and hostile traffic for --duration, printing every --interval seconds its RSS, open file
descriptors, the QPS dnsperf reports, the churn rate and every error counted so far; at the
end, a leak verdict on RSS and file descriptors.

Load: dnsperf at --qps (bench.py's query mix over --services services of 3 instances);
--churn changes/s of register, heartbeat and deregister on the Unix socket; the bursts of
tests/system/hostile/hostile.py in a loop (random and truncated UDP, garbage and half-open
TCP, malformed and slow API requests). Every interval a probe asks a registered name over
UDP (3 addresses expected) and GET /v1/health; a wrong answer is an error.

Verdict: RSS "grew" when the median of the last quarter of the samples is more than
--rss-slack MiB above the median of the second quarter (the first quarter is warm-up:
caches, allocator arenas, connection buffers); file descriptors "grew" when, after the load
stops and dnsd's idle timeouts have passed, dnsd holds more than it did before the load
began. Exit status 0 when no errors and nothing grew, else 1.
See tools/bench/README.md (Soak).
"""

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "system", "hostile"))

import benchlib  # noqa: E402 - after the path set-up
import hostile  # noqa: E402

IDLE_MS = 2000
API_TIMEOUT_S = 30  # api_options.timeout_s: dnsd's default (benchlib.start_dnsd sets that group)


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError("duration like 600, 90s, 10m or 1h: %r" % text)
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n

    def get(self, key):
        with self.lock:
            return self.c.get(key, 0)

    def snapshot(self):
        with self.lock:
            return dict(self.c)


def churn_loop(api_path, services, rate, stop, n):
    """Register, heartbeat and deregister instances c<k> at rate changes/s."""
    api = benchlib.Api(api_path)
    live = max(3, rate)  # instances alive at once
    k = 0
    t0 = time.monotonic()
    while not stop.is_set():
        due = t0 + k / float(rate)
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.5))
            continue
        kind, a = k % 3, k // 3
        k += 1
        svc = benchlib.service_name(a % services)
        try:
            if kind == 0:
                st, _ = api.call("PUT", benchlib.put_url(svc, "c%d" % a),
                                 benchlib.instance_body(benchlib.instance_addr(a)))
                ok = st in (200, 201)
            elif kind == 1:
                b = max(0, a - live // 2)
                st, _ = api.call("PUT", benchlib.put_url(benchlib.service_name(b % services),
                                                      "c%d" % b) + "/heartbeat")
                ok = st in (200, 404)  # 404: not registered yet early on
            else:
                b = a - live
                if b < 0:
                    continue
                st, _ = api.call("DELETE", benchlib.put_url(benchlib.service_name(b % services),
                                                         "c%d" % b))
                ok = st == 200
        except OSError:
            ok = False
        n.add("churn_ops")
        if not ok:
            n.add("churn_errors")
    api.close()


def hostile_loop(target, stop, n, seed):
    """The hostile bursts in turn, small, with a pause between them; anomalies counted."""
    rng = random.Random(seed)
    while not stop.is_set():
        hostile.udp_burst(target, rng, 2000)
        n.add("hostile_bursts")
        if stop.is_set():
            break
        left = hostile.tcp_garbage_burst(target, rng, 50, IDLE_MS / 1000.0 * 2 + 1)
        n.add("hostile_tcp_left_open", left)
        n.add("hostile_bursts")
        left, _ = hostile.tcp_slow_burst(target, rng, 50, 4, IDLE_MS / 1000.0 * 2 + 3)
        n.add("hostile_tcp_left_open", left)
        n.add("hostile_bursts")
        st = hostile.api_malformed_burst(target, rng)
        n.add("hostile_bursts")
        bad = sum(1 for what in ("random body", "truncated JSON", "wrong types")
                  for s in st[what] if s not in (400, 413))
        n.add("hostile_api_accepted", bad)
        cut = hostile.api_slow_burst(target, 4, 8, API_TIMEOUT_S + 10)
        n.add("hostile_api_slow_not_cut", sum(1 for c in cut if c is None))
        n.add("hostile_bursts")
        stop.wait(1)


def probe(srv, services, n):
    """A known name over UDP and TCP, and the API's health."""
    name = "%s.%s" % (benchlib.service_name(0), benchlib.DOMAIN)
    try:
        ok = benchlib.wait_dns(srv.port, name, "A", 3, 2)
    except Exception:  # noqa: BLE001 - any failure is an error to count
        ok = False
    if not ok:
        n.add("probe_errors")
    try:
        api = benchlib.Api(srv.api_path)
        st, _ = api.call("GET", "/v1/health")
        api.close()
        if st != 200:
            n.add("probe_errors")
    except OSError:
        n.add("probe_errors")


def dnsperf_reader(proc, perf_state):
    """dnsperf -S prints "TIMESTAMP: QPS" lines, the latest kept in perf_state["qps"]; its
    whole output ends up in perf_state["out"]."""
    out = []
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace")
        out.append(line)
        m = re.match(r"\s*[\d.]+:\s+([\d.]+)\s*$", line)
        if m:
            perf_state["qps"] = float(m.group(1))
    perf_state["out"] = "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=parse_duration, default=600.0,
                    help="how long the load runs: 600, 90s, 10m, 1h (default 10m)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between reports")
    ap.add_argument("--dnsd", default=os.path.join(REPO, "build", "release", "dnsd"))
    ap.add_argument("--qps", type=int, default=20000, help="dnsperf -Q (default 20000)")
    ap.add_argument("--churn", type=int, default=200, help="API changes/s (default 200)")
    ap.add_argument("--services", type=int, default=100, help="services of 3 instances")
    ap.add_argument("--rss-slack", type=float, default=16.0,
                    help="MiB of RSS growth tolerated (default 16)")
    ap.add_argument("--no-hostile", action="store_true", help="no hostile traffic")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", help="keep configs and logs here (default: a temp dir)")
    args = ap.parse_args()
    if not os.access(args.dnsd, os.X_OK):
        sys.exit("soak: no dnsd at %s (cmake --preset release && cmake --build --preset "
                 "release)" % args.dnsd)
    workdir = args.workdir or tempfile.mkdtemp(prefix="dnsd-soak-")
    os.makedirs(workdir, exist_ok=True)
    srv = benchlib.start_dnsd(args, workdir, None, dns_conf="tcp_idle_timeout_ms = %d;" % IDLE_MS)
    n = Counters()
    stop = threading.Event()
    threads = []
    perf = None
    perf_state = {"qps": 0.0, "out": ""}
    samples = []
    try:
        api = benchlib.Api(srv.api_path)
        for svc, inst, addr in benchlib.dataset(args.services):
            st, _ = api.call("PUT", benchlib.put_url(svc, inst), benchlib.instance_body(addr))
            if st not in (200, 201):
                sys.exit("soak: registering %s/%s failed: %d" % (svc, inst, st))
        api.close()
        qfile = os.path.join(workdir, "queries.txt")
        benchlib.write_queries(qfile, args.services, 100000, args.seed)
        time.sleep(0.5)
        fds_before = hostile.fd_count(srv.pid)
        rss_before = hostile.rss_kib(srv.pid)
        print("soak: dnsd pid %d, port %d, %d instances, %.0f s; RSS %.1f MiB, %d fds; "
              "work dir %s" % (srv.pid, srv.port, args.services * 3, args.duration,
                               rss_before / 1024.0, fds_before, workdir), flush=True)

        perf = subprocess.Popen(
            # Line-buffered, so that the -S lines come as they are printed.
            ["stdbuf", "-oL", "dnsperf", "-s", "127.0.0.1", "-p", str(srv.port), "-d", qfile, "-l",
             str(int(args.duration)), "-Q", str(args.qps), "-c", "4", "-q", "200",
             "-S", str(max(1, int(args.interval)))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threads.append(threading.Thread(target=dnsperf_reader, args=(perf, perf_state)))
        threads.append(threading.Thread(target=churn_loop, args=(
            srv.api_path, args.services, args.churn, stop, n)))
        if not args.no_hostile:
            threads.append(threading.Thread(target=hostile_loop, args=(
                hostile.Target(srv.port, srv.api_path), stop, n, args.seed)))
        for t in threads:
            t.daemon = True
            t.start()

        print("%7s %8s %5s %9s %9s %8s %8s %s" % ("t(s)", "RSS MiB", "fds", "QPS",
                                                 "churn/s", "bursts", "errors", "detail"),
              flush=True)
        t0 = time.monotonic()
        last_ops, last_t = 0, t0
        while time.monotonic() - t0 < args.duration:
            time.sleep(max(0.0, min(args.interval, t0 + args.duration - time.monotonic())))
            if not srv.alive():
                n.add("dnsd_died")
                break
            probe(srv, args.services, n)
            now = time.monotonic()
            rss, fds = hostile.rss_kib(srv.pid), hostile.fd_count(srv.pid)
            samples.append((now - t0, rss))
            c = n.snapshot()
            ops = c.get("churn_ops", 0)
            errors = {k: v for k, v in c.items()
                      if v and k not in ("churn_ops", "hostile_bursts")}
            print("%7.0f %8.1f %5d %9.0f %9.0f %8d %8d %s"
                  % (now - t0, rss / 1024.0, fds, perf_state["qps"], (ops - last_ops) / (now - last_t),
                     c.get("hostile_bursts", 0), sum(errors.values()),
                     " ".join("%s=%d" % kv for kv in sorted(errors.items()))), flush=True)
            last_ops, last_t = ops, now
    finally:
        stop.set()
        for t in threads[1:]:
            t.join(timeout=30)
        if perf is not None:
            if perf.poll() is None:
                perf.send_signal(signal.SIGINT)
            try:
                perf.wait(timeout=30)
            except subprocess.TimeoutExpired:
                perf.kill()
            threads[0].join(timeout=10)

    # Quiet: every connection the load opened is closed or idled out.
    time.sleep(IDLE_MS / 1000.0 * 2 + API_TIMEOUT_S + 1)
    alive = srv.alive()
    fds_after = hostile.fd_count(srv.pid) if alive else -1
    summary = perf_state["out"]
    m = re.search(r"Queries lost:\s+(\d+)", summary)
    if m and int(m.group(1)):
        n.add("dnsperf_lost", int(m.group(1)))
    m = re.search(r"Queries per second:\s+([\d.]+)", summary)
    srv.stop()
    c = n.snapshot()
    errors = {k: v for k, v in c.items()
              if v and k not in ("churn_ops", "hostile_bursts")}
    if srv.proc.returncode not in (0, None):
        errors["dnsd_exit_%d" % srv.proc.returncode] = 1

    print("\nsoak: dnsperf %s QPS on average; %d API changes; %d hostile bursts"
          % (m.group(1) if m else "n/a", c.get("churn_ops", 0), c.get("hostile_bursts", 0)))
    rss_grew = False
    if len(samples) >= 4:
        q = len(samples) // 4
        early = statistics.median(r for _, r in samples[q:2 * q]) / 1024.0
        late = statistics.median(r for _, r in samples[-q:]) / 1024.0
        rss_grew = late - early > args.rss_slack
        print("soak: RSS %.1f MiB after warm-up, %.1f MiB at the end (slack %.0f): %s"
              % (early, late, args.rss_slack, "GREW (possible leak)" if rss_grew else "flat"))
    else:
        print("soak: too few samples for an RSS verdict (run longer or report more often)")
    fd_grew = alive and fds_after > fds_before
    print("soak: fds %d before the load, %d after it: %s"
          % (fds_before, fds_after, "GREW (fd leak)" if fd_grew else "no growth"))
    print("soak: errors: %s" % (" ".join("%s=%d" % kv for kv in sorted(errors.items()))
                                or "none"))
    ok = not errors and not rss_grew and not fd_grew and alive
    print("soak: %s" % ("PASS" if ok else "FAIL"))
    if not args.workdir and ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
