#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Side-by-side DNS benchmark: dnsd (live registry) against NSD and Knot (static zone).

Generates S services with 3 instances each, registers them into a fresh dnsd through the
HTTP API on its Unix socket, writes the equivalent zone for NSD and Knot, and runs dnsperf
against all three in alternating rounds. Also a churn mode (query load while instances
change), a registration-throughput mode, a health mode (100,000 heartbeating instances and
10,000 active TCP checks under query load; pipelined API clients from pipeline.py) and a
durability mode (registrations/s per fsync policy, journal bytes per registration, restore
time of 300,000 instances). Every
server listens on 127.0.0.1 only, is started here and stopped by PID; every loop is bounded
in time. Python standard library only.
See tools/bench/README.md for usage and how to read the output. The shared pieces (API
client, data set, server start-up, dnsperf runs) are in benchlib.py.
"""

import argparse
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import pipeline
from benchlib import (
    DOMAIN, START_TIMEOUT_S, collect, log, Api, instance_body, put_url, service_name,
    instance_addr, dataset, write_zone, write_queries, dns_ask, wait_dns, tree_cpu_seconds,
    tree_rss_kib, Server, dnsd_argv, start_dnsd, start_nsd, start_knot, start_floor,
    register_parallel, measure, start_perf, stop_perf, print_run, med, summary_table,
)


# ---------------------------------------------------------------------------------------------
# Modes


def sanity_check(srv, services):
    """Every server must give the same answer counts for a few names before we time it."""
    s = service_name(services // 2)
    checks = [("%s.%s" % (s, DOMAIN), "A", 0, 3), ("_%s._tcp.%s" % (s, DOMAIN), "SRV", 0, 3),
              ("nx-check.%s" % DOMAIN, "A", 3, 0)]
    for name, qt, rcode, an in checks:
        r = dns_ask(srv.port, name, qt, 1.0)
        if r is None or r[0] != rcode or r[1] != an:
            raise RuntimeError("%s: %s %s gave %r, want rcode %d with %d answers"
                               % (srv.name, name, qt, r, rcode, an))
    r = dns_ask(srv.port, "_%s._tcp.%s" % (s, DOMAIN), "SRV", 1.0)
    return "SRV additional=%d" % r[2]


def mode_compare(args, workdir, server_cpus, client_cpus, servers):
    zone = os.path.join(workdir, "%s.zone" % DOMAIN)
    qfile = os.path.join(workdir, "queries.txt")
    write_zone(zone, args.services)
    write_queries(qfile, args.services, args.query_count, args.seed)
    log("dataset: %d services x 3 instances; zone %s; queries %s (%d lines)"
        % (args.services, zone, qfile, args.query_count))
    for tag in ("dnsd", "dnsdB"):
        if tag not in args.servers:
            continue
        srv = start_dnsd(args, workdir, server_cpus, tag=tag,
                         binary=args.dnsd_b if tag == "dnsdB" else None)
        servers.append(srv)
        secs, ok, bad = register_parallel(srv.api_path, dataset(args.services),
                                          args.reg_clients)
        log("%s: registered %d instances in %.2f s (%.0f/s, %d clients, %d failed)"
            % (tag, ok, secs, ok / secs, args.reg_clients, bad))
        if bad:
            raise RuntimeError("registration failures")
    if "nsd" in args.servers:
        servers.append(start_nsd(workdir, zone, args.server_threads, server_cpus))
    if "knot" in args.servers:
        servers.append(start_knot(workdir, zone, args.server_threads, server_cpus))
    if "floor" in args.servers:
        servers.append(start_floor(workdir, server_cpus))
    for srv in servers:
        t0 = time.monotonic()
        if srv.name == "floor":
            # It echoes questions: any reply will do, and no answer check applies.
            if not wait_dns(srv.port, "floor-check.%s" % DOMAIN, "A", 0, START_TIMEOUT_S):
                raise RuntimeError("floor not answering:\n" + srv.log_tail())
            log("floor: pid %d port %d ready (%.1f s)" % (srv.pid, srv.port,
                                                          time.monotonic() - t0))
            continue
        probe = "%s.%s" % (service_name(args.services - 1), DOMAIN)
        if not wait_dns(srv.port, probe, "A", 3, START_TIMEOUT_S):
            raise RuntimeError("%s not answering on port %d:\n%s"
                               % (srv.name, srv.port, srv.log_tail()))
        note = sanity_check(srv, args.services)
        log("%s: pid %d port %d ready (%.1f s), answers check ok (%s), rss %.1f MiB"
            % (srv.name, srv.pid, srv.port, time.monotonic() - t0, note,
               tree_rss_kib(srv.pid) / 1024.0))
    results = {s.name: [] for s in servers}
    for rnd in range(args.rounds):
        order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
        for srv in order:
            raw = os.path.join(workdir, "dnsperf-%s-r%d.txt" % (srv.name, rnd))
            rec = None
            if args.perf and srv.name == "dnsd" and rnd == 0:
                rec = start_perf(args.perf, srv.pid)
            r = measure(args, srv, qfile, args.duration, raw, client_cpus)
            if rec is not None:
                stop_perf(rec, args.perf)
            results[srv.name].append(r)
            print_run(srv.name, rnd, r)
            time.sleep(args.pause)
    names = [s.name for s in servers]
    log("\nmedians over %d round(s), %d s each, S=%d services (%d instances):"
        % (args.rounds, args.duration, args.services, 3 * args.services))
    log(summary_table(results, names))
    for me in ("dnsd", "dnsdB"):
        if me not in results:
            continue
        for peer in names:
            if peer == me or (me == "dnsdB" and peer == "dnsd"):
                continue
            log("%s/%-5s QPS x%.2f   QPS/core x%.2f" % (
                me, peer, med(results[me], "qps") / med(results[peer], "qps"),
                med(results[me], "qps_core") / med(results[peer], "qps_core")))
    return results


def _churn_worker(api_path, services, rate, duration, seed, live, start_evt, out_q):
    """Cycle: register c<a>, heartbeat c<a-live/2>, deregister c<a-live>, at a fixed rate."""
    rnd = random.Random(seed)
    api = Api(api_path)
    api.call("GET", "/v1/health")
    svc = {}

    def where(a):
        if a not in svc:
            svc[a] = service_name(rnd.randrange(services))
        return svc[a]

    for a in range(live):  # the instances that the first heartbeats and deregisters touch
        api.call("PUT", put_url(where(a), "c%d-%d" % (seed, a)), instance_body(instance_addr(a)))
    start_evt.wait(60)
    t0 = time.monotonic()
    deadline = t0 + duration
    n = ops = bad = 0
    while True:
        due = t0 + n / rate
        now = time.monotonic()
        if now >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        kind, a = n % 3, n // 3 + live
        n += 1
        tag = "c%d-%d" % (seed, a)
        if kind == 0:
            st, _ = api.call("PUT", put_url(where(a), tag), instance_body(instance_addr(a)))
            ok = st in (200, 201)
        elif kind == 1:
            b = a - live // 2
            st, _ = api.call("PUT", put_url(where(b), "c%d-%d" % (seed, b)) + "/heartbeat")
            ok = st == 200
        else:
            b = a - live
            st, _ = api.call("DELETE", put_url(where(b), "c%d-%d" % (seed, b)))
            svc.pop(b, None)
            ok = st == 200
        ops += 1
        bad += 0 if ok else 1
    out_q.put((ops, bad, time.monotonic() - t0))
    api.close()


def _churn_pipe_worker(api_path, services, rate, duration, seed, live, start_evt, out_q,
                       batch, sockets, ready_q):
    """_churn_worker's cycle, pipelined (pipeline.py): the same register / heartbeat /
    deregister sequence, written `batch` requests per send() on `sockets` connections.
    `live` must exceed the requests in flight (batch x sockets), or a heartbeat could overtake
    the registration it renews on another connection."""
    rnd = random.Random(seed)
    svc = {}

    def where(a):
        if a not in svc:
            svc[a] = service_name(rnd.randrange(services))
        return svc[a]

    def name(a):
        return put_url(where(a), "c%d-%d" % (seed, a))

    first = [pipeline.request("PUT", name(a), instance_body(instance_addr(a)))
             for a in range(live)]
    seq = []
    for n in range(int(math.ceil(rate * duration)) + 1):
        kind, a = n % 3, n // 3 + live
        if kind == 0:
            seq.append(pipeline.request("PUT", name(a), instance_body(instance_addr(a))))
        elif kind == 1:
            seq.append(pipeline.request("PUT", name(a - live // 2) + "/heartbeat"))
        else:
            seq.append(pipeline.request("DELETE", name(a - live)))
    pipeline.paced_loop(api_path, pipeline.batches(first, batch), (200, 201), 1, 0, False, None,
                        time.monotonic() + 60, None, 0)
    blobs = pipeline.batches(seq, batch)
    del seq
    ready_q.put(seed)
    start_evt.wait(60)
    ok, bad, secs, _, _ = pipeline.paced_loop(api_path, blobs, (200, 201), sockets, rate, False,
                                              None, time.monotonic() + duration, None, 0)
    out_q.put((ok + bad, bad, secs))


def visibility(api_path, port, services, samples, budget_s, tag):
    """Registration reply -> first UDP answer that shows it, polled every ~1 ms."""
    api = Api(api_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    delays, missed = [], 0
    end = time.monotonic() + budget_s
    for k in range(samples):
        if time.monotonic() > end:
            break
        s = service_name(k % services)
        inst = "vis-%s-%d" % (tag, k)
        st, _ = api.call("PUT", put_url(s, inst), instance_body("192.0.2.%d" % (k % 250 + 1)))
        t_reply = time.monotonic()
        if st not in (200, 201):
            missed += 1
            continue
        name = "%s.%s.%s" % (inst, s, DOMAIN)
        seen = None
        poll_end = t_reply + 1.0
        nxt = t_reply
        while time.monotonic() < poll_end:
            r = dns_ask(port, name, "A", 0.05, sock)
            if r is not None and r[0] == 0 and r[1] >= 1:
                seen = time.monotonic()
                break
            nxt += 0.001
            pause = nxt - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        if seen is None:
            missed += 1
        else:
            delays.append((seen - t_reply) * 1e3)
        api.call("DELETE", put_url(s, inst))
        time.sleep(0.005)
    sock.close()
    api.close()
    return delays, missed


def pct(vals, p):
    if not vals:
        return None
    v = sorted(vals)
    return v[min(len(v) - 1, int(math.ceil(p / 100.0 * len(v))) - 1)]


def vis_line(label, delays, missed):
    if not delays:
        return "%-28s no samples (missed %d)" % (label, missed)
    return "%-28s n=%d  p50 %.3f ms  p99 %.3f ms  max %.3f ms  missed %d" % (
        label, len(delays), pct(delays, 50), pct(delays, 99), max(delays), missed)


def mode_churn(args, workdir, server_cpus, client_cpus, servers):
    qfile = os.path.join(workdir, "queries.txt")
    write_queries(qfile, args.services, args.query_count, args.seed)
    srv = start_dnsd(args, workdir, server_cpus)
    servers.append(srv)
    secs, ok, bad = register_parallel(srv.api_path, dataset(args.services), args.reg_clients)
    log("dnsd: registered %d instances in %.2f s (%d failed)" % (ok, secs, bad))
    if not wait_dns(srv.port, "%s.%s" % (service_name(0), DOMAIN), "A", 3, 10):
        raise RuntimeError("dnsd not answering")
    ctx = multiprocessing.get_context("fork")
    quiet, churn, achieved, vis = [], [], [], []
    d_quiet, m_quiet = visibility(srv.api_path, srv.port, args.services, args.vis_samples,
                                  args.duration, "q")
    for rnd in range(args.rounds):
        r = measure(args, srv, qfile, args.duration,
                    os.path.join(workdir, "dnsperf-quiet-r%d.txt" % rnd), client_cpus)
        quiet.append(r)
        print_run("quiet", rnd, r)
        start_evt, out_q, ready_q = ctx.Event(), ctx.Queue(), ctx.Queue()
        if args.churn_pipelined:
            nproc = args.hb_procs
            live = max(300, 8 * args.batch * args.hb_sockets)
            procs = [ctx.Process(target=_churn_pipe_worker,
                                 args=(srv.api_path, args.services, args.churn / nproc,
                                       args.duration + 1, rnd * 100 + k, live, start_evt, out_q,
                                       args.batch, args.hb_sockets, ready_q),
                                 daemon=True) for k in range(nproc)]
        else:
            nproc = min(16, max(1, int(math.ceil(args.churn / 1000.0))))
            procs = [ctx.Process(target=_churn_worker,
                                 args=(srv.api_path, args.services, args.churn / nproc,
                                       args.duration + 1, rnd * 100 + k, 300, start_evt, out_q),
                                 daemon=True) for k in range(nproc)]
        for p in procs:
            p.start()
            if client_cpus:
                os.sched_setaffinity(p.pid, {int(c) for c in client_cpus.split(",")})
        if args.churn_pipelined:
            for _ in procs:  # each has built its requests and registered its first instances
                ready_q.get(timeout=120)
        time.sleep(0.3)
        start_evt.set()
        time.sleep(0.5)
        vis_q = ctx.Queue()
        vproc = ctx.Process(target=lambda q: q.put(visibility(
            srv.api_path, srv.port, args.services, args.vis_samples, args.duration - 1,
            "c%d" % rnd)), args=(vis_q,), daemon=True)
        vproc.start()
        if client_cpus:
            os.sched_setaffinity(vproc.pid, {int(c) for c in client_cpus.split(",")})
        r = measure(args, srv, qfile, args.duration,
                    os.path.join(workdir, "dnsperf-churn-r%d.txt" % rnd), client_cpus)
        res = [out_q.get(timeout=args.duration + 60) for _ in procs]
        vis.append(vis_q.get(timeout=args.duration + 60))
        for p in procs + [vproc]:
            p.join(5)
            if p.is_alive():
                p.kill()
        ops = sum(x[0] for x in res)
        failed = sum(x[1] for x in res)
        rate = ops / max(x[2] for x in res)
        r["churn_rate"], r["churn_failed"] = rate, failed
        churn.append(r)
        achieved.append(rate)
        print_run("churn", rnd, r)
        log("           churn achieved %.0f changes/s (target %d, %d procs), %d failed"
            % (rate, args.churn, nproc, failed))
    log("\ndnsd, S=%d, medians over %d round(s) of %d s; churn target %d changes/s "
        "(achieved median %.0f/s):" % (args.services, args.rounds, args.duration, args.churn,
                                        statistics.median(achieved)))
    log(summary_table({"quiet": quiet, "churn": churn}, ["quiet", "churn"]))
    log("churn/quiet  QPS x%.2f   QPS/core x%.2f" % (
        med(churn, "qps") / med(quiet, "qps"), med(churn, "qps_core") / med(quiet, "qps_core")))
    d_churn = [x for d, _ in vis for x in d]
    m_churn = sum(m for _, m in vis)
    log("visibility (registration reply -> seen over UDP, polled every ~1 ms):")
    log(vis_line("  idle (no load):", d_quiet, m_quiet))
    log(vis_line("  under queries + churn:", d_churn, m_churn))


def mode_registrations(args, workdir, server_cpus, client_cpus, servers):
    n = args.reg_count
    items = [("r%d" % (j // 3), "i%d" % (j % 3), instance_addr(j)) for j in range(n)]
    res = {}
    for clients in (1, 16):
        runs = []
        for rnd in range(args.rounds):
            srv = start_dnsd(args, workdir, server_cpus, tag="dnsd-reg%d-%d" % (clients, rnd))
            servers.append(srv)
            c0 = tree_cpu_seconds(srv.pid)
            secs, ok, bad = register_parallel(srv.api_path, items, clients, client_cpus)
            cpu = tree_cpu_seconds(srv.pid) - c0
            rss = tree_rss_kib(srv.pid) / 1024.0
            srv.stop()
            servers.remove(srv)
            runs.append((ok / secs, ok / cpu if cpu > 0 else float("nan"), cpu / secs, bad))
            log("  round %d clients %2d: %d registrations in %.2f s = %.0f/s; server cpu %.1f%% "
                "(%.0f per server-core-second); rss %.1f MiB; %d failed"
                % (rnd, clients, ok, secs, ok / secs, 100 * cpu / secs, runs[-1][1], rss, bad))
        res[clients] = runs
    log("\nregistrations over the Unix socket (%d per run, medians over %d round(s)):"
        % (n, args.rounds))
    log("%-8s %12s %20s %12s" % ("clients", "reg/s", "reg/server-core-s", "server CPU%"))
    for clients, runs in res.items():
        log("%-8d %12.0f %20.0f %12.1f" % (
            clients, statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs), 100 * statistics.median(r[2] for r in runs)))
    log("(clients are Python processes%s; when server CPU%% is well below 100 the clients, "
        "not dnsd, are the limit)" % (" pinned to CPU " + client_cpus if client_cpus else ""))


# ---------------------------------------------------------------------------------------------
# Durability mode: registrations/s per fsync policy, journal bytes, restore time (issue 5)


def fs_type(path):
    """The type of the filesystem holding path (findmnt; `stat -f` says ext2/ext3 for ext4)."""
    for argv in (["findmnt", "-n", "-o", "FSTYPE", "-T", path], ["stat", "-f", "-c", "%T", path]):
        try:
            r = subprocess.run(argv, capture_output=True, text=True)
        except OSError:
            continue
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    return "?"


def _dur_worker(api_path, reqs, batch, sockets, deadline, out_q):
    blobs = pipeline.batches(reqs, batch)
    ok, bad, secs, err, _ = pipeline.paced_loop(api_path, blobs, (200, 201), sockets, 0, False,
                                                None, deadline, None, 0)
    out_q.put((ok, bad, secs, err))


def register_pipelined(api_path, items, procs, sockets, batch, cpus, timeout_s=1800):
    """PUTs every (service, id, addr) over procs x sockets pipelined connections; returns
    (seconds, ok, failed, first error)."""
    ctx = multiprocessing.get_context("fork")
    out_q = ctx.Queue()
    reqs = [pipeline.request("PUT", put_url(s, i), instance_body(a)) for s, i, a in items]
    deadline = time.monotonic() + timeout_s
    ps = [ctx.Process(target=_dur_worker,
                      args=(api_path, reqs[k::procs], batch, sockets, deadline, out_q),
                      daemon=True) for k in range(procs)]
    t0 = time.monotonic()
    for p in ps:
        p.start()
        _pin(p.pid, cpus)
    res = collect(ps, out_q, timeout_s + 60)
    secs = time.monotonic() - t0
    errs = [r[3] for r in res if r[3]]
    return secs, sum(r[0] for r in res), sum(r[1] for r in res), errs[0] if errs else None


def persistence_doc(api_path):
    api = Api(api_path)
    st, body = api.call("GET", "/v1/health")
    api.close()
    if st != 200:
        raise RuntimeError("GET /v1/health: %d %r" % (st, body[:200]))
    return json.loads(body)["persistence"]


def durability_conf(data, fsync, snapshot_every):
    return ('data_dir = "%s";\npersistence = { fsync = "%s"; snapshot_every = %d; };\n'
            % (data, fsync, snapshot_every))


def timed_restart(args, workdir, cpus, tag, conf_extra, probe_service):
    """Starts dnsd on an existing data directory; returns (seconds to /v1/health 200,
    seconds to the first DNS answer with probe_service's 3 A records, server)."""
    d = os.path.join(workdir, tag)
    conf = os.path.join(d, "dnsd.conf")
    with open(conf) as f:
        port = int(re.search(r'"127\.0\.0\.1:(\d+)"', f.read()).group(1))
    sock = os.path.join(d, "api.sock")
    t0 = time.monotonic()
    srv = Server(tag + "-restart", dnsd_argv(args, conf), port, workdir, cpus)
    srv.api_path = sock
    t_health = t_dns = None
    qsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    deadline = t0 + 120
    try:
        while (t_health is None or t_dns is None) and time.monotonic() < deadline:
            if not srv.alive():
                raise RuntimeError("dnsd exited:\n" + srv.log_tail())
            if t_dns is None:
                r = dns_ask(port, "%s.%s" % (probe_service, DOMAIN), "A", 0.05, qsock)
                if r is not None and r[0] == 0 and r[1] == 3:
                    t_dns = time.monotonic() - t0
            if t_health is None and os.path.exists(sock):
                try:
                    api = Api(sock, )
                    st, _ = api.call("GET", "/v1/health")
                    api.close()
                    if st == 200:
                        t_health = time.monotonic() - t0
                except OSError:
                    pass
            time.sleep(0.001)
    finally:
        qsock.close()
    if t_health is None or t_dns is None:
        srv.stop()
        raise RuntimeError("dnsd did not come back in 120 s:\n" + srv.log_tail())
    return t_health, t_dns, srv


def mode_durability(args, workdir, server_cpus, client_cpus, servers):
    base = args.data_base or "/tmp"
    log("durability: data directories under %s (filesystem %s); %d pipelined clients "
        "(%d processes x %d sockets, %d requests per send)"
        % (base, fs_type(base), args.dur_procs * args.hb_sockets, args.dur_procs,
           args.hb_sockets, args.batch))
    n = args.reg_count
    items = [("r%d" % (j // 3), "i%d" % (j % 3), instance_addr(j)) for j in range(n)]
    rows = []
    for fsync in ("always", "interval", "off"):
        runs = []
        for rnd in range(args.rounds):
            data = tempfile.mkdtemp(prefix="dnsd-dur-%s-" % fsync, dir=base)
            try:
                # No compaction during the run: the journal holds every registration.
                srv = start_dnsd(args, workdir, server_cpus, tag="dnsd-%s-%d" % (fsync, rnd),
                                 extra_conf=durability_conf(data, fsync, 100000000))
                servers.append(srv)
                secs, ok, bad, err = register_pipelined(srv.api_path, items, args.dur_procs,
                                                        args.hb_sockets, args.batch, client_cpus)
                doc = persistence_doc(srv.api_path)
                srv.stop()
                servers.remove(srv)
            finally:
                shutil.rmtree(data, ignore_errors=True)
            per_reg = (doc["journal_bytes"] - 16) / ok if ok else float("nan")
            runs.append((ok / secs, per_reg))
            log("  fsync %-8s round %d: %d registrations in %.2f s = %.0f/s; journal %d bytes "
                "(%.1f per registration); %d failed%s"
                % (fsync, rnd, ok, secs, ok / secs, doc["journal_bytes"], per_reg, bad,
                   " (first: %s)" % err if err else ""))
        rows.append((fsync, statistics.median(r[0] for r in runs),
                     statistics.median(r[1] for r in runs)))

    # Restore: register with fsync off (faster), snapshot, SIGTERM, restart, time it.
    m = args.restore_count
    data = tempfile.mkdtemp(prefix="dnsd-dur-restore-", dir=base)
    restarts = []
    try:
        tag = "dnsd-restore"
        srv = start_dnsd(args, workdir, server_cpus, tag=tag, log_level="info",
                         extra_conf=durability_conf(data, "off", 10000))
        servers.append(srv)
        items = [("r%d" % (j // 3), "i%d" % (j % 3), instance_addr(j)) for j in range(m)]
        secs, ok, bad, err = register_pipelined(srv.api_path, items, args.dur_procs,
                                                args.hb_sockets, args.batch, client_cpus)
        log("  restore set: %d registrations (fsync off) in %.1f s; %d failed%s"
            % (ok, secs, bad, " (first: %s)" % err if err else ""))
        # One snapshot of all of them while DNS is queried from another process, from 0.5 s
        # before the request to 2 s after: the slowest answer shows how long the loop stalled.
        ctx = multiprocessing.get_context("fork")
        probe_q = ctx.Queue()

        def probe(port, seconds, out_q):
            worst, lost, asked = 0.0, 0, 0
            qsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                q0 = time.monotonic()
                r = dns_ask(port, "r0.%s" % DOMAIN, "A", 2.0, qsock)
                asked += 1
                if r is None:
                    lost += 1
                else:
                    worst = max(worst, time.monotonic() - q0)
            qsock.close()
            out_q.put((asked, worst, lost))

        prober = ctx.Process(target=probe, args=(srv.port, 2.5, probe_q), daemon=True)
        prober.start()
        _pin(prober.pid, client_cpus)
        time.sleep(0.5)
        api = Api(srv.api_path)
        st, body = api.call("POST", "/v1/snapshot")
        api.close()
        asked, worst, lost = collect([prober], probe_q, 30)[0]
        time.sleep(1.0)
        with open(srv.log_path) as f:
            lines = [ln for ln in f if re.search(r"persist: snapshot \d+: %d instances" % ok, ln)]
        log("  POST /v1/snapshot: %d %s" % (st, body.decode().strip()))
        log("  %s" % (lines[-1].strip() if lines else "(no snapshot log line)"))
        log("  DNS around that snapshot: %d queries in 2.5 s, slowest %.1f ms, %d lost"
            % (asked, worst * 1e3, lost))
        srv.stop()
        servers.remove(srv)
        sizes = {f: os.path.getsize(os.path.join(data, f)) for f in sorted(os.listdir(data))}
        log("  data directory after SIGTERM: %s" % ", ".join("%s %d" % kv for kv in sizes.items()))
        for rnd in range(args.rounds):
            # The last service with all 3 instances (m need not be a multiple of 3).
            t_health, t_dns, srv = timed_restart(args, workdir, server_cpus, tag, "", "r%d"
                                                 % (m // 3 - 1))
            servers.append(srv)
            doc = persistence_doc(srv.api_path)
            api = Api(srv.api_path)
            _, hb = api.call("GET", "/v1/health")
            api.close()
            got = json.loads(hb)["instances"]
            srv.stop()
            servers.remove(srv)
            restarts.append((t_health, t_dns))
            log("  restart %d: /v1/health 200 after %.3f s, first correct DNS answer after "
                "%.3f s; %d instances restored (journal %d bytes)"
                % (rnd, t_health, t_dns, got, doc["journal_bytes"]))
            if got != ok:
                log("  WARNING: %d instances registered, %d restored" % (ok, got))
    finally:
        shutil.rmtree(data, ignore_errors=True)

    log("\ndurability (data dir on %s, %s; medians over %d round(s)):"
        % (base, fs_type(base), args.rounds))
    log("%-10s %14s %22s" % ("fsync", "registrations/s", "journal bytes/registration"))
    for fsync, rate, per in rows:
        log("%-10s %14.0f %22.1f" % (fsync, rate, per))
    log("restore of %d instances (SIGTERM, restart; exec -> ready): /v1/health 200 in %.3f s, "
        "first correct DNS answer in %.3f s"
        % (m, statistics.median(r[0] for r in restarts), statistics.median(r[1] for r in restarts)))


# ---------------------------------------------------------------------------------------------
# Health mode: heartbeats for N instances every 10 s plus C active TCP checks, under dnsperf

HEALTH_TTL_S = 30
HEALTH_PERIOD_S = 10.0


def _pin(pid, cpus):
    if cpus:
        os.sched_setaffinity(pid, {int(c) for c in cpus.split(",")})


LISTENER_SECONDS = 7200


def _tcp_listener(lsock, accepts, per_second, t_base, stop_evt, hard_end):
    """The target of every TCP check: accept and close at once, count the connections, in
    total and per second since t_base (monotonic) for the peak rate."""
    lsock.settimeout(0.2)
    n = 0
    while not stop_evt.is_set() and time.monotonic() < hard_end:
        try:
            c, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        c.close()
        n += 1
        accepts.value = n
        sec = int(time.monotonic() - t_base)
        if 0 <= sec < LISTENER_SECONDS:
            per_second[sec] += 1
    lsock.close()


def peak_per_second(per_second, t_base, t0, t1):
    """Highest count in one whole second of [t0, t1) (monotonic times)."""
    a, b = int(math.ceil(t0 - t_base)), min(LISTENER_SECONDS, int(t1 - t_base))
    return max((per_second[k] for k in range(a, b)), default=0)


def _pipe_worker(api_path, reqs, ok_codes, batch, sockets, rate, cycle, stop_evt, hard_end,
                 counters, slot, start_evt, out_q):
    blobs = pipeline.batches(reqs, batch)
    del reqs
    if start_evt is not None:
        start_evt.wait(60)
    ok, bad, secs, err, rtts = pipeline.paced_loop(api_path, blobs, ok_codes, sockets, rate,
                                                   cycle, stop_evt, hard_end, counters, slot)
    out_q.put((slot, ok, bad, secs, err, pct(rtts, 50), pct(rtts, 99),
               max(rtts) if rtts else None))


def _run_pipe_workers(ctx, api_path, per_proc_reqs, ok_codes, args, rate_total, cycle,
                      stop_evt, hard_end, counters, cpus):
    nproc = len(per_proc_reqs)
    start_evt, out_q = ctx.Event(), ctx.Queue()
    procs = []
    for k, reqs in enumerate(per_proc_reqs):
        p = ctx.Process(target=_pipe_worker,
                        args=(api_path, reqs, ok_codes, args.batch, args.hb_sockets,
                              rate_total / nproc if rate_total else 0, cycle, stop_evt, hard_end,
                              counters, k, start_evt, out_q), daemon=True)
        p.start()
        _pin(p.pid, cpus)
        procs.append(p)
    return procs, start_evt, out_q


def health_items(n, checked, per_service, check_port, dereg):
    """(service, id, body) for the health instances: services hs0.. with `per_service`
    instances each; every (n // checked)-th instance carries a TCP check on 127.0.0.1."""
    stride = n // checked if checked else 0
    out = []
    for j in range(n):
        body = {"port": 8080, "proto": "tcp", "ttl": HEALTH_TTL_S}
        if stride and j % stride == 0 and j // stride < checked:
            body["addresses"] = ["127.0.0.1"]
            body["check"] = {"tcp": "127.0.0.1:%d" % check_port, "interval": "10s",
                             "timeout": "2s"}
        else:
            body["addresses"] = [instance_addr(j)]
        if dereg:
            body["deregister_after"] = "0s"
        out.append(("hs%d" % (j // per_service), "h%d" % j, json.dumps(body)))
    return out


def probe_health_api(api_path, check_port, with_check):
    """Does this dnsd take "check" and "deregister_after"? Returns (check_ok, dereg_ok, why)."""
    api = Api(api_path)
    url = put_url("hprobe", "p0")
    body = {"addresses": ["127.0.0.1"], "port": 8080, "ttl": HEALTH_TTL_S,
            "deregister_after": "0s"}
    if with_check:
        body["check"] = {"tcp": "127.0.0.1:%d" % check_port, "interval": "10s", "timeout": "2s"}
    try:
        st, data = api.call("PUT", url, json.dumps(body))
        if st in (200, 201):
            return True, True, ""
        field = json.loads(data).get("field", "") if data.startswith(b"{") else ""
        if field == "deregister_after":
            del body["deregister_after"]
            st, data = api.call("PUT", url, json.dumps(body))
            if st in (200, 201):
                return True, False, "deregister_after refused"
        return False, False, "HTTP %d %s" % (st, data.decode("replace").strip())
    finally:
        api.call("DELETE", url)
        api.close()


def health_sweep(api_path, services, timeout_s):
    """GET every health service; counts by health, check status, last_run_ms_ago values."""
    urls = ["/v1/services/hs%d" % k for k in range(services)]
    t0 = time.monotonic()
    answers = pipeline.fetch_all(api_path, urls, timeout_s=timeout_s)
    out = {"seconds": time.monotonic() - t0, "instances": 0, "health": {}, "check": {},
           "last_run": [], "never_run": 0, "http_errors": 0, "critical_samples": []}
    for st, body in answers:
        if st != 200:
            out["http_errors"] += 1
            continue
        for inst in json.loads(body).get("instances", []):
            out["instances"] += 1
            h = inst.get("health", "?")
            out["health"][h] = out["health"].get(h, 0) + 1
            if h == "critical" and len(out["critical_samples"]) < 5:
                out["critical_samples"].append("%s/%s: %s" % (inst.get("service"), inst.get("id"),
                                                              inst.get("reason")))
            chk = inst.get("check")
            if chk:
                cs = chk.get("status", "?")
                out["check"][cs] = out["check"].get(cs, 0) + 1
                if chk.get("last_run_ms_ago") is None:
                    out["never_run"] += 1
                else:
                    out["last_run"].append(chk["last_run_ms_ago"])
    return out


def log_lines_since(path, offset, word):
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return [line.rstrip() for line in f if word in line]
    except OSError:
        return []


def mode_health(args, workdir, server_cpus, client_cpus, servers):
    n, c = args.instances, min(args.checked, args.instances)
    qfile = os.path.join(workdir, "queries.txt")
    write_queries(qfile, args.services, args.query_count, args.seed)
    srv = start_dnsd(args, workdir, server_cpus, log_level="info")
    servers.append(srv)
    secs, ok, bad = register_parallel(srv.api_path, dataset(args.services), args.reg_clients)
    log("dnsd: registered the query set, %d instances in %.2f s (%d failed)" % (ok, secs, bad))
    if not wait_dns(srv.port, "%s.%s" % (service_name(0), DOMAIN), "A", 3, 10):
        raise RuntimeError("dnsd not answering")
    sanity_check(srv, args.services)
    ctx = multiprocessing.get_context("fork")
    hard_end = time.monotonic() + args.health_budget
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4096)
    check_port = lsock.getsockname()[1]
    accepts, lstop = ctx.Value("q", 0, lock=False), ctx.Event()
    per_second, t_base = ctx.Array("q", LISTENER_SECONDS, lock=False), time.monotonic()
    lproc = ctx.Process(target=_tcp_listener,
                        args=(lsock, accepts, per_second, t_base, lstop, hard_end), daemon=True)
    lproc.start()
    _pin(lproc.pid, client_cpus)
    lsock.close()
    hb_stop = ctx.Event()
    hb_procs, hb_q = [], None
    try:
        check_ok, dereg_ok, why = probe_health_api(srv.api_path, check_port, c > 0)
        if not check_ok:
            raise RuntimeError("this dnsd does not accept an active check (%s)" % why)
        if not dereg_ok:
            log("note: dnsd refused \"deregister_after\"; an instance that stays critical for "
                "the default time is removed and shows up as missing")
        quiet, load, hb_rates, hb_fail, chk_rates = [], [], [], [], []
        for rnd in range(args.rounds):
            r = measure(args, srv, qfile, args.duration,
                        os.path.join(workdir, "dnsperf-quiet-r%d.txt" % rnd), client_cpus)
            quiet.append(r)
            print_run("quiet", rnd, r)
            time.sleep(args.pause)
        nsvc = (n + args.per_service - 1) // args.per_service
        items = health_items(n, c, args.per_service, check_port, dereg_ok)
        nproc = args.hb_procs
        counters = ctx.Array("q", 3 * nproc, lock=False)
        reg_reqs = [[pipeline.request("PUT", put_url(s, i), b) for s, i, b in items[k::nproc]]
                    for k in range(nproc)]
        hb_reqs = [[pipeline.request("PUT", put_url(s, i) + "/heartbeat")
                    for s, i, _ in items[k::nproc]] for k in range(nproc)]
        del items
        procs, start_evt, out_q = _run_pipe_workers(ctx, srv.api_path, reg_reqs, (200, 201),
                                                    args, 0, False, None, hard_end, None,
                                                    client_cpus)
        time.sleep(0.3)
        c0, t0 = tree_cpu_seconds(srv.pid), time.monotonic()
        start_evt.set()
        res = collect(procs, out_q, args.health_budget)
        t1 = time.monotonic()
        reg_ok, reg_bad = sum(x[1] for x in res), sum(x[2] for x in res)
        log("health set: %d instances in %d services (%d with a TCP check on 127.0.0.1:%d), "
            "ttl %d s: registered in %.2f s = %.0f/s pipelined (%d procs x %d sockets, "
            "batch %d), dnsd cpu %.0f%%, %d failed%s"
            % (n, nsvc, c, check_port, HEALTH_TTL_S, t1 - t0, reg_ok / (t1 - t0), nproc,
               args.hb_sockets, args.batch, 100 * (tree_cpu_seconds(srv.pid) - c0) / (t1 - t0),
               reg_bad, "".join("; " + x[4] for x in res if x[4])[:400]))
        if reg_bad:
            raise RuntimeError("health registrations failed")
        log_off = os.path.getsize(srv.log_path)
        target = n / HEALTH_PERIOD_S
        hb_procs, hb_start, hb_q = _run_pipe_workers(ctx, srv.api_path, hb_reqs, (200,), args,
                                                     target, True, hb_stop, hard_end, counters,
                                                     client_cpus)
        del reg_reqs, hb_reqs
        hb_start.set()
        hb_t0, acc0 = time.monotonic(), accepts.value
        log("heartbeats: target %.0f/s (%d instances every %.0f s) from %d procs; settling %.0f s,"
            " then %.0f s without queries" % (target, n, HEALTH_PERIOD_S, nproc, args.settle,
                                              args.alone))
        time.sleep(args.settle)
        # dnsd's CPU for the health load alone (no queries), over one check period by default
        i0, ic0 = time.monotonic(), tree_cpu_seconds(srv.pid)
        ia0, ih0 = accepts.value, sum(counters[3 * k] for k in range(nproc))
        time.sleep(args.alone)
        i1, ic1 = time.monotonic(), tree_cpu_seconds(srv.pid)
        idle_share = (ic1 - ic0) / (i1 - i0)
        idle_hb = (sum(counters[3 * k] for k in range(nproc)) - ih0) / (i1 - i0)
        log("health load alone (no queries): dnsd cpu %.1f%% over %.1f s; %.0f heartbeats/s, "
            "listener %.0f checks/s" % (100 * idle_share, i1 - i0, idle_hb,
                                        (accepts.value - ia0) / (i1 - i0)))

        load_pids = [p.pid for p in hb_procs] + [lproc.pid]

        def snap():
            return (time.monotonic(), sum(counters[3 * k] for k in range(nproc)),
                    sum(counters[3 * k + 1] for k in range(nproc)), accepts.value,
                    sum(tree_cpu_seconds(pid) for pid in load_pids))

        for rnd in range(args.rounds):
            s0 = snap()
            r = measure(args, srv, qfile, args.duration,
                        os.path.join(workdir, "dnsperf-health-r%d.txt" % rnd), client_cpus)
            s1 = snap()
            dt = s1[0] - s0[0]
            r["hb_rate"], r["hb_failed"] = (s1[1] - s0[1]) / dt, s1[2] - s0[2]
            r["check_rate"] = (s1[3] - s0[3]) / dt
            r["check_peak"] = peak_per_second(per_second, t_base, s0[0], s1[0])
            r["gen_share"] = (s1[4] - s0[4]) / dt
            load.append(r)
            hb_rates.append(r["hb_rate"])
            hb_fail.append(r["hb_failed"])
            chk_rates.append(r["check_rate"])
            print_run("health", rnd, r)
            log("           heartbeats %.0f/s (target %.0f), %d failed; TCP checks seen by the "
                "listener %.0f/s (target %.0f), peak %d in one second; heartbeat senders + "
                "listener cpu %.0f%% (part of other cpu)"
                % (r["hb_rate"], target, r["hb_failed"], r["check_rate"], c / HEALTH_PERIOD_S,
                   r["check_peak"], 100 * r["gen_share"]))
            time.sleep(args.pause)
        hb_t1, acc_total = time.monotonic(), accepts.value
        sw = health_sweep(srv.api_path, nsvc, 120)
        hb_stop.set()
        res = collect(hb_procs, hb_q, 60)
        hb_procs = []
        hb_secs = time.monotonic() - hb_t0
        hb_ok, hb_bad = sum(x[1] for x in res), sum(x[2] for x in res)
        errs = [x[4] for x in res if x[4]]
        crit_lines = log_lines_since(srv.log_path, log_off, "-> critical")
        warn_lines = log_lines_since(srv.log_path, log_off, "-> warning")
        up_lines = log_lines_since(srv.log_path, log_off, "critical -> passing")
    finally:
        hb_stop.set()
        lstop.set()
        for p in hb_procs + [lproc]:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
    lr = sw["last_run"]
    log("\ndnsd, %d query-set instances + %d health instances (%d checked); medians over %d "
        "round(s) of %d s:" % (3 * args.services, n, c, args.rounds, args.duration))
    log(summary_table({"quiet": quiet, "health": load}, ["quiet", "health"]))
    ratio = med(load, "qps") / med(quiet, "qps")
    log("health/quiet  QPS x%.2f (drop %.1f%%; target: drop <= 20%%)   QPS/core x%.2f"
        % (ratio, 100 * (1 - ratio), med(load, "qps_core") / med(quiet, "qps_core")))
    bq, bl = max(quiet, key=lambda r: r["qps"]), max(load, key=lambda r: r["qps"])
    log("best rounds (least disturbed by other tenants): quiet %.0f QPS at dnsd cpu %.0f%%, "
        "health %.0f QPS at dnsd cpu %.0f%%: x%.2f (drop %.1f%%)"
        % (bq["qps"], 100 * bq["cpu_share"], bl["qps"], 100 * bl["cpu_share"],
           bl["qps"] / bq["qps"], 100 * (1 - bl["qps"] / bq["qps"])))
    # Per-query cost under load: dnsd's CPU minus the health load's own share, per query.
    q_core_load = med(load, "qps") / max(med(load, "cpu_share") - idle_share, 1e-9)
    log("dnsd cpu for the health load alone %.1f%% of a core: if dnsd were the limit, DNS "
        "would keep about x%.2f of its quiet capacity (1 - %.3f); x%.2f if each query also "
        "costs what it did under load (%.0f queries per remaining core-second vs %.0f quiet)"
        % (100 * idle_share, 1 - idle_share, idle_share,
           (1 - idle_share) * q_core_load / med(quiet, "qps_core"), q_core_load,
           med(quiet, "qps_core")))
    log("load generator (heartbeat senders + listener) cpu during dnsperf: median %.0f%% of a "
        "core, on dnsperf's CPU" % (100 * med(load, "gen_share")))
    log("heartbeats during dnsperf: median %.0f/s of %.0f/s target, %d failed; whole run %d ok, "
        "%d failed over %.0f s (%.0f/s); pipelined round trip p50 %s ms p99 %s ms max %s ms%s"
        % (statistics.median(hb_rates), target, sum(hb_fail), hb_ok, hb_bad, hb_secs,
           hb_ok / hb_secs, _fmt(med_or_none([x[5] for x in res])),
           _fmt(max_or_none([x[6] for x in res])), _fmt(max_or_none([x[7] for x in res])),
           ("; first error: " + errs[0][:300]) if errs else ""))
    log("TCP checks: median %.0f/s accepted by the listener during dnsperf (target %.0f/s), "
        "peak %d in one second; %d since heartbeats began = %.0f/s over %.0f s; sweep: "
        "last_run_ms_ago p50 %s max %s over %d checked instances, %d never run; check status %s"
        % (statistics.median(chk_rates), c / HEALTH_PERIOD_S,
           max(r["check_peak"] for r in load), acc_total - acc0, (acc_total - acc0) /
           (hb_t1 - hb_t0), hb_t1 - hb_t0, pct(lr, 50), max(lr) if lr else None,
           len(lr) + sw["never_run"], sw["never_run"], json.dumps(sw["check"], sort_keys=True)))
    crit = sw["health"].get("critical", 0)
    log("health sweep (GET of %d services in %.1f s, %d errors): %d of %d instances seen, %s; "
        "critical: %d (want 0), missing: %d (want 0)%s"
        % (nsvc, sw["seconds"], sw["http_errors"], sw["instances"], n,
           json.dumps(sw["health"], sort_keys=True), crit, n - sw["instances"],
           "".join("\n    " + x for x in sw["critical_samples"])))
    log("dnsd log since heartbeats began: %d transitions to critical (want 0), %d to warning, "
        "%d critical -> passing (checks coming up)%s"
        % (len(crit_lines), len(warn_lines), len(up_lines),
           "".join("\n    " + x[:200] for x in (crit_lines + warn_lines)[:5])))


def _fmt(v):
    return "n/a" if v is None else "%.1f" % v


def med_or_none(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def max_or_none(vals):
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None


# ---------------------------------------------------------------------------------------------


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    release = os.path.join(os.path.dirname(os.path.dirname(here)), "build", "release")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dnsd", default=os.path.join(release, "dnsd"))
    ap.add_argument("--regctl", default=os.path.join(release, "regctl"),
                    help="only checked for presence; registration uses the API directly")
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per dnsperf run")
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s")
    ap.add_argument("--servers", default="dnsd,nsd,knot",
                    help="any of dnsd, dnsdB (a second dnsd binary: --dnsd-b), nsd, knot, "
                         "floor (a responder doing no DNS work: the kernel's floor; "
                         "single-threaded)")
    ap.add_argument("--dnsd-b", metavar="PATH",
                    help="compare mode: a second dnsd binary, run as server dnsdB in the same "
                         "rounds (before/after comparisons); adds dnsdB to --servers")
    ap.add_argument("--server-threads", type=int, default=1,
                    help="threads per server: dnsd dns.workers, NSD server-count, Knot "
                         "udp/tcp/background workers")
    ap.add_argument("--clients", type=int, default=8, help="dnsperf -c")
    ap.add_argument("--threads", type=int, default=1, help="dnsperf -T")
    ap.add_argument("--outstanding", type=int, default=200, help="dnsperf -q")
    ap.add_argument("--timeout", type=int, default=1, help="dnsperf -t (seconds)")
    ap.add_argument("--max-qps", type=int, default=0, help="dnsperf -Q (0: unlimited)")
    ap.add_argument("--no-p99", action="store_true",
                    help="run dnsperf without -v (no per-query latencies, no p99)")
    ap.add_argument("--query-count", type=int, default=200000, help="lines in the query file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reg-clients", type=int, default=8,
                    help="processes loading the dataset into dnsd")
    ap.add_argument("--churn", type=int, default=0, metavar="RATE",
                    help="churn mode: changes/s (register, heartbeat, deregister) on dnsd")
    ap.add_argument("--churn-pipelined", action="store_true",
                    help="churn mode: send the changes pipelined (--hb-procs processes x "
                         "--hb-sockets connections, --batch per send) instead of one "
                         "http.client request at a time")
    ap.add_argument("--vis-samples", type=int, default=200)
    ap.add_argument("--registrations", action="store_true",
                    help="registration-throughput mode (1 and 16 clients)")
    ap.add_argument("--reg-count", type=int, default=20000)
    ap.add_argument("--health", action="store_true",
                    help="health mode: heartbeats and TCP checks on dnsd under dnsperf")
    ap.add_argument("--instances", type=int, default=100000,
                    help="health mode: instances heartbeating every 10 s (ttl 30 s)")
    ap.add_argument("--checked", type=int, default=10000,
                    help="health mode: how many of them carry a TCP check (every 10 s)")
    ap.add_argument("--per-service", type=int, default=10,
                    help="health mode: instances per health service (hs0, hs1, ...)")
    ap.add_argument("--hb-procs", type=int, default=4,
                    help="health mode: heartbeat/registration client processes")
    ap.add_argument("--hb-sockets", type=int, default=4,
                    help="health mode: pipelined Unix-socket connections per process")
    ap.add_argument("--batch", type=int, default=100,
                    help="health mode: requests written per send() (HTTP/1.1 pipelining)")
    ap.add_argument("--settle", type=float,
                    help="health mode: seconds of heartbeats before measuring (default 11; "
                         "3 with --quick)")
    ap.add_argument("--alone", type=float,
                    help="health mode: seconds of measuring dnsd's CPU for the health load "
                         "without queries, before the dnsperf runs (default 10; 3 with --quick)")
    ap.add_argument("--health-budget", type=float, default=1800.0,
                    help="health mode: hard limit in seconds for the client processes")
    ap.add_argument("--durability", action="store_true",
                    help="registrations/s per fsync policy, journal bytes per registration, "
                         "restore time (issue 5)")
    ap.add_argument("--restore-count", type=int, default=300000,
                    help="durability mode: instances to restore")
    ap.add_argument("--dur-procs", type=int, default=4,
                    help="durability mode: client processes (x --hb-sockets connections)")
    ap.add_argument("--data-base", default="/tmp",
                    help="durability mode: where the data directories are made")
    ap.add_argument("--perf", metavar="FILE",
                    help="compare mode: record dnsd with `perf record -g` during its round-0 "
                         "run into FILE (its figures then include perf's overhead)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    ap.add_argument("--workdir", help="keep configs, zone, logs and raw dnsperf output here")
    ap.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3
        args.settle = 3.0 if args.settle is None else args.settle
        args.alone = 3.0 if args.alone is None else args.alone
    args.settle = 11.0 if args.settle is None else args.settle
    args.alone = 10.0 if args.alone is None else args.alone
    if args.health or args.churn or args.registrations or args.durability:
        args.servers = "dnsd"
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for tool in ([] if args.durability else ["dnsperf"]) + ["taskset"] + (["nsd"] if "nsd" in args.servers else []) + \
            (["knotd"] if "knot" in args.servers else []):
        if not shutil.which(tool):
            sys.exit("bench: %s not found in PATH" % tool)
    if args.dnsd_b and "dnsdB" not in args.servers:
        args.servers.insert(1, "dnsdB")
    if "dnsdB" in args.servers and not (args.dnsd_b and os.access(args.dnsd_b, os.X_OK)):
        sys.exit("bench: server dnsdB needs --dnsd-b PATH (an executable dnsd)")
    if not os.access(args.dnsd, os.X_OK):
        sys.exit("bench: dnsd binary not found at %s (use --dnsd)" % args.dnsd)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = client_cpus = None
    if len(cpus) >= 2 and not args.no_pin:
        client_cpus, server_cpus = str(cpus[0]), str(cpus[1])
    workdir = args.workdir or tempfile.mkdtemp(prefix="dnsd-bench-")
    os.makedirs(workdir, exist_ok=True)
    log("bench: workdir %s; %d CPUs; server on CPU %s, dnsperf on CPU %s; dnsperf -c %d -T %d "
        "-q %d -t %d%s%s" % (workdir, len(cpus), server_cpus, client_cpus, args.clients,
                             args.threads, args.outstanding, args.timeout,
                             " -Q %d" % args.max_qps if args.max_qps else "",
                             "" if args.no_p99 else " -v"))
    with open("/proc/loadavg") as f:
        log("bench: loadavg before start: %s" % f.read().strip())
    dp = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True)
    dpv = re.search(r"Version \S+", dp.stdout + dp.stderr)
    log("bench: dnsperf %s; nsd %s; knotd %s" % (
        dpv.group(0) if dpv else "?",
        subprocess.run(["nsd", "-v"], capture_output=True, text=True).stderr.split("\n")[0],
        subprocess.run(["knotd", "-V"], capture_output=True, text=True).stdout.strip()))

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    servers = []
    try:
        if args.durability:
            mode_durability(args, workdir, server_cpus, client_cpus, servers)
        elif args.health:
            mode_health(args, workdir, server_cpus, client_cpus, servers)
        elif args.registrations:
            mode_registrations(args, workdir, server_cpus, client_cpus, servers)
        elif args.churn:
            mode_churn(args, workdir, server_cpus, client_cpus, servers)
        else:
            mode_compare(args, workdir, server_cpus, client_cpus, servers)
    finally:
        for srv in servers:
            try:
                srv.stop()
            except Exception as e:  # keep stopping the others
                log("bench: stopping %s (pid %d): %s" % (srv.name, srv.pid, e))
    log("bench: raw output in %s" % workdir)


if __name__ == "__main__":
    main()
