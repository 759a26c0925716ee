# SPDX-License-Identifier: BSD-2-Clause
"""Shared pieces of the benchmark scripts (bench.py, soak.py): the registration API client,
the data set, the zone and query files, DNS probes, process accounting, starting dnsd, NSD,
Knot and the floor responder, bulk registration and dnsperf runs. Python standard library
only."""

import http.client
import json
import math
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import time

DOMAIN = "service.internal"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LEASE_S = 86400
START_TIMEOUT_S = 120.0


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# HTTP over a Unix socket (keep-alive)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX; HTTP/1.1 keep-alive as usual."""

    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Api:
    """One keep-alive connection to the registration API; reconnects once on a drop."""

    HEADERS = {"Content-Type": "application/json"}

    def __init__(self, path):
        self.path = path
        self.conn = UnixHTTPConnection(path)

    def call(self, method, url, body=None):
        for attempt in (0, 1):
            try:
                self.conn.request(method, url, body=body, headers=self.HEADERS)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = UnixHTTPConnection(self.path)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        self.conn.close()


def instance_body(addr, port=8080):
    return json.dumps({"addresses": [addr], "port": port, "proto": "tcp", "ttl": LEASE_S,
                       "priority": 0, "weight": 1})


def put_url(service, inst):
    return "/v1/services/%s/instances/%s" % (service, inst)


# ---------------------------------------------------------------------------------------------
# Dataset, zone file and query file


def service_name(i):
    return "s%d" % i


def instance_addr(n):
    return "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)


def dataset(services):
    """Yields (service, instance id, address): 3 instances per service."""
    for i in range(services):
        for k in range(3):
            yield service_name(i), "i%d" % k, instance_addr(i * 3 + k)


def write_zone(path, services):
    with open(path, "w") as f:
        f.write("$ORIGIN %s.\n$TTL 5\n" % DOMAIN)
        f.write("@ 60 IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 5\n" % (DOMAIN, DOMAIN))
        f.write("@ IN NS ns.%s.\nns IN A 127.0.0.1\n" % DOMAIN)
        for i in range(services):
            s = service_name(i)
            lines = []
            for k in range(3):
                a = instance_addr(i * 3 + k)
                lines.append("%s IN A %s\n" % (s, a))
                lines.append("_%s._tcp IN SRV 0 1 8080 i%d.%s.%s.\n" % (s, k, s, DOMAIN))
                lines.append("i%d.%s IN A %s\n" % (k, s, a))
                lines.append('i%d.%s IN TXT ""\n' % (k, s))
            f.write("".join(lines))


def write_queries(path, services, count, seed):
    """50% A of existing services, 40% SRV, 10% names that do not exist."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        x = rnd.random()
        i = rnd.randrange(services)
        if x < 0.5:
            out.append("%s.%s A\n" % (service_name(i), DOMAIN))
        elif x < 0.9:
            out.append("_%s._tcp.%s SRV\n" % (service_name(i), DOMAIN))
        else:
            out.append("nx%d.%s A\n" % (rnd.randrange(1 << 30), DOMAIN))
    with open(path, "w") as f:
        f.write("".join(out))


# ---------------------------------------------------------------------------------------------
# Minimal DNS over UDP (probes only: readiness, sanity checks, visibility polling)


def dns_query_bytes(qid, name, qtype):
    q = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", qtype, 1)


QTYPE = {"A": 1, "SOA": 6, "SRV": 33}


def dns_ask(port, name, qtype, timeout=0.5, sock=None):
    """Returns (rcode, ancount, arcount) or None on timeout."""
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        qid = random.randrange(65536)
        sock.settimeout(timeout)
        sock.sendto(dns_query_bytes(qid, name, QTYPE[qtype]), ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except socket.timeout:
                return None
            if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
                _, flags, _, an, _, ar = struct.unpack("!HHHHHH", data[:12])
                return flags & 15, an, ar
    finally:
        if own:
            sock.close()


def wait_dns(port, name, qtype, want_answers, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = dns_ask(port, name, qtype, 0.2)
        if r is not None and r[0] == 0 and r[1] >= want_answers:
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# Process tree accounting (/proc)


def tree_pids(root):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, pending = [], [root]
    while pending:
        p = pending.pop()
        out.append(p)
        pending.extend(children.get(p, []))
    return out


def tree_cpu_seconds(root):
    """utime+stime of every live process in the tree (all threads included)."""
    total = 0
    for p in tree_pids(root):
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def machine_busy_seconds():
    """CPU seconds spent by everything on the machine (all CPUs, /proc/stat) so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def tree_rss_kib(root):
    total = 0
    for p in tree_pids(root):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


# ---------------------------------------------------------------------------------------------
# Servers


def free_port():
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class Server:
    def __init__(self, name, argv, port, workdir, cpus):
        self.name, self.port, self.workdir = name, port, workdir
        self.log_path = os.path.join(workdir, "%s.log" % name)
        prefix = ["taskset", "-c", cpus] if cpus else []
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(prefix + argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.logf.close()

    def log_tail(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-2000:]
        except OSError:
            return ""


_DNSD_HAS_USER = {}


def dnsd_argv(args, conf, binary=None):
    """dnsd's command line; as root, `--user root` where dnsd would otherwise drop to the
    (maybe missing) "dnsd" user after binding (builds that have the option)."""
    binary = binary or args.dnsd
    argv = [binary, "-c", conf]
    if os.geteuid() == 0:
        if binary not in _DNSD_HAS_USER:
            out = subprocess.run([binary, "--help"], capture_output=True, text=True)
            _DNSD_HAS_USER[binary] = "--user" in out.stdout + out.stderr
        if _DNSD_HAS_USER[binary]:
            argv += ["--user", "root"]
    return argv


def workers_conf(binary, threads):
    """dns.workers for a dnsd binary; "" for one built before the option existed (such a
    binary always answers on one thread and refuses the option; --dnsd-b comparisons)."""
    with open(binary, "rb") as f:
        if b"workers" not in f.read():
            if threads not in (0, 1):
                raise RuntimeError("%s has no dns.workers: cannot run %d threads"
                                   % (binary, threads))
            return ""
    return "workers = %d;" % threads


def start_dnsd(args, workdir, cpus, tag="dnsd", log_level="warn", extra_conf="", binary=None,
               dns_conf=""):
    """Start dnsd with as many DNS threads as the peers get (--server-threads; without it,
    one per core); dns_conf is added to its dns { } group."""
    d = os.path.join(workdir, tag)
    os.makedirs(os.path.join(d, "zones"), exist_ok=True)
    port = free_port()
    sock = os.path.join(d, "api.sock")
    conf = os.path.join(d, "dnsd.conf")
    with open(conf, "w") as f:
        f.write('zones_dir = "%s";\nlisten = [ "127.0.0.1:%d" ];\napi = [ "unix:%s" ];\n'
                'log_level = "%s";\napi_options = { max_connections = 1024; };\n'
                'lease = { default = 30; min = 1; max = %d; };\n'
                # The larger data sets (300,000 instances) exceed the default capacity.
                'limits = { max_instances = 2000000; };\n'
                'dns = { %s %s };\n'
                % (os.path.join(d, "zones"), port, sock, log_level, LEASE_S,
                   workers_conf(binary or args.dnsd, getattr(args, "server_threads", 0)),
                   dns_conf))
        f.write(extra_conf)
    srv = Server(tag, dnsd_argv(args, conf, binary), port, workdir, cpus)
    srv.api_path = sock
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not srv.alive():
            raise RuntimeError("dnsd exited:\n" + srv.log_tail())
        if os.path.exists(sock):
            try:
                api = Api(sock)
                st, _ = api.call("GET", "/v1/health")
                api.close()
                if st == 200:
                    return srv
            except OSError:
                pass
        time.sleep(0.02)
    srv.stop()
    raise RuntimeError("dnsd did not become healthy:\n" + srv.log_tail())


def start_nsd(workdir, zone, threads, cpus):
    d = os.path.join(workdir, "nsd")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    conf = os.path.join(d, "nsd.conf")
    with open(conf, "w") as f:
        f.write("server:\n  ip-address: 127.0.0.1@%d\n  port: %d\n  server-count: %d\n"
                '  username: ""\n  chroot: ""\n  zonesdir: "%s"\n  pidfile: "%s/nsd.pid"\n'
                '  xfrdfile: "%s/xfrd.state"\n  zonelistfile: "%s/zone.list"\n'
                '  database: ""\n  verbosity: 0\n  hide-version: yes\n  rrl-ratelimit: 0\n'
                "  rrl-whitelist-ratelimit: 0\n"
                "remote-control:\n  control-enable: no\n"
                'zone:\n  name: %s\n  zonefile: "%s"\n'
                % (port, port, threads, d, d, d, d, DOMAIN, zone))
    return Server("nsd", ["nsd", "-c", conf, "-d"], port, workdir, cpus)


def start_knot(workdir, zone, threads, cpus):
    d = os.path.join(workdir, "knot")
    os.makedirs(os.path.join(d, "storage"), exist_ok=True)
    port = free_port()
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write("server:\n  rundir: \"%s\"\n  listen: 127.0.0.1@%d\n  udp-workers: %d\n"
                "  tcp-workers: %d\n  background-workers: %d\n"
                "log:\n  - target: stderr\n    any: warning\n"
                'database:\n  storage: "%s/storage"\n'
                'template:\n  - id: default\n    storage: "%s/storage"\n'
                "    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n"
                'zone:\n  - domain: %s\n    file: "%s"\n'
                % (d, port, threads, threads, threads, d, d, DOMAIN, zone))
    return Server("knot", ["knotd", "-c", conf], port, workdir, cpus)


def start_floor(workdir, cpus):
    """tools/bench/floor.c, built here: answers every datagram with itself, QR set, and no
    DNS work, so its QPS per core is the kernel's per-datagram floor on this machine."""
    d = os.path.join(workdir, "floor")
    os.makedirs(d, exist_ok=True)
    binary = os.path.join(d, "floor")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor.c")
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-o", binary,
                    src], check=True)
    port = free_port()
    return Server("floor", [binary, str(port)], port, workdir, cpus)


# ---------------------------------------------------------------------------------------------
# Bulk registration (processes, each with its own keep-alive connection)


def _register_worker(api_path, items, start_evt, out_q):
    api = Api(api_path)
    api.call("GET", "/v1/health")  # connect before the clock starts
    bodies = [(put_url(s, i), instance_body(a)) for s, i, a in items]
    start_evt.wait(60)
    t0 = time.monotonic()
    bad = 0
    for url, body in bodies:
        st, _ = api.call("PUT", url, body)
        if st not in (200, 201):
            bad += 1
    t1 = time.monotonic()
    api.close()
    out_q.put((t0, t1, len(bodies), bad))


def collect(procs, out_q, timeout_s):
    """One result from each worker process (out_q), then the processes reaped; a worker that
    does not exit is killed."""
    res = []
    try:
        for _ in procs:
            res.append(out_q.get(timeout=timeout_s))
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
    return res


def register_parallel(api_path, items, clients, cpus=None, timeout_s=900):
    """Registers items with `clients` processes; returns (seconds, ok, failed)."""
    items = list(items)
    clients = max(1, min(clients, len(items)))
    ctx = multiprocessing.get_context("fork")
    start_evt, out_q = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_register_worker,
                         args=(api_path, items[k::clients], start_evt, out_q), daemon=True)
             for k in range(clients)]
    for p in procs:
        p.start()
        if cpus:
            os.sched_setaffinity(p.pid, {int(c) for c in cpus.split(",")})
    time.sleep(0.2)
    start_evt.set()
    res = collect(procs, out_q, timeout_s)
    t0 = min(r[0] for r in res)
    t1 = max(r[1] for r in res)
    bad = sum(r[3] for r in res)
    return t1 - t0, sum(r[2] for r in res) - bad, bad


# ---------------------------------------------------------------------------------------------
# dnsperf


def run_dnsperf(args, port, qfile, duration, raw_path, cpus):
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(duration),
            "-c", str(args.clients), "-T", str(args.threads), "-q", str(args.outstanding),
            "-t", str(args.timeout)]
    if args.max_qps:
        argv += ["-Q", str(args.max_qps)]
    if not args.no_p99:
        argv.append("-v")
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    vpath = raw_path + ".verbose"
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.monotonic()
    with open(vpath, "w") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                            timeout=duration + 60).returncode
    wall = time.monotonic() - w0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    lat_us, summary = [], []
    # "-v" prints "> RCODE name type latency" per answer and "> T name type" per timeout.
    with open(vpath) as f:
        for line in f:
            if line.startswith("> "):
                parts = line.split()
                if len(parts) == 5 and parts[1] != "T":
                    lat_us.append(int(float(parts[4]) * 1e6))
            elif not line.startswith("[Timeout]"):
                summary.append(line)
    os.unlink(vpath)
    text = "".join(summary)
    with open(raw_path, "w") as f:
        f.write(" ".join(argv) + "\n" + text)
    if rc != 0:
        raise RuntimeError("dnsperf failed (%d):\n%s" % (rc, text[-2000:]))

    def grab(pattern):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else float("nan")

    r = {"qps": grab(r"Queries per second:\s+([\d.]+)"),
         "sent": grab(r"Queries sent:\s+(\d+)"),
         "lost": grab(r"Queries lost:\s+(\d+)"),
         "avg_ms": grab(r"Average Latency \(s\):\s+([\d.]+)") * 1e3,
         "runtime": grab(r"Run time \(s\):\s+([\d.]+)"),
         "p99_ms": None}
    # dnsperf also lives before (reading the file) and after (waiting out lost queries) the
    # timed window, so its share is over its whole life.
    r["client_share"] = client_cpu / wall
    r["client_cpu"] = client_cpu
    if lat_us:
        lat_us.sort()
        r["p99_ms"] = lat_us[min(len(lat_us) - 1, int(math.ceil(0.99 * len(lat_us))) - 1)] / 1e3
    return r


def measure(args, srv, qfile, duration, raw_path, client_cpus):
    m0, c0, w0 = machine_busy_seconds(), tree_cpu_seconds(srv.pid), time.monotonic()
    r = run_dnsperf(args, srv.port, qfile, duration, raw_path, client_cpus)
    m1, c1, w1 = machine_busy_seconds(), tree_cpu_seconds(srv.pid), time.monotonic()
    if not srv.alive():
        raise RuntimeError("%s died during the run:\n%s" % (srv.name, srv.log_tail()))
    cpu = c1 - c0
    share = cpu / max(r["runtime"], 1e-9)
    r["cpu_s"], r["cpu_share"] = cpu, share
    r["qps_core"] = r["qps"] / share if share > 0 else float("nan")
    r["rss_mib"] = tree_rss_kib(srv.pid) / 1024.0
    r["wall"] = w1 - w0
    # CPU used by neither the server nor dnsperf (other tenants, this script): noise indicator.
    r["other_share"] = max(0.0, (m1 - m0) - cpu - r["client_cpu"]) / (w1 - w0)
    return r


def start_perf(path, pid):
    """perf record -g on the server during one run (perf's own CPU is not the server's)."""
    if not shutil.which("perf"):
        raise RuntimeError("--perf: perf not found in PATH")
    p = subprocess.Popen(["perf", "record", "-g", "-o", path, "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # perf attaches before dnsperf starts
    return p


def stop_perf(p, path):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
    log("perf: profile of dnsd's round-0 run in %s (perf report -i %s --no-children)"
        % (path, path))


def fmt_p99(v):
    return "n/a" if v is None else "%.3f" % v


def print_run(name, rnd, r):
    log("  round %d %-5s qps %9.0f  cpu %5.1f%%  qps/core %9.0f  avg %.3f ms  p99 %s ms  "
        "lost %d  rss %.1f MiB  dnsperf cpu %.0f%%  other cpu %.0f%%"
        % (rnd, name, r["qps"], 100 * r["cpu_share"], r["qps_core"], r["avg_ms"],
           fmt_p99(r["p99_ms"]), r["lost"], r["rss_mib"], 100 * r["client_share"],
           100 * r["other_share"]))


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summary_table(results, order):
    rows = []
    hdr = "%-6s %10s %10s %7s %9s %9s %9s %9s" % (
        "server", "QPS", "QPS/core", "CPU%", "avg ms", "p99 ms", "lost", "RSS MiB")
    rows.append(hdr)
    rows.append("-" * len(hdr))
    for name in order:
        runs = results[name]
        p99 = med(runs, "p99_ms")
        rows.append("%-6s %10.0f %10.0f %7.1f %9.3f %9s %9.0f %9.1f" % (
            name, med(runs, "qps"), med(runs, "qps_core"), 100 * med(runs, "cpu_share"),
            med(runs, "avg_ms"), fmt_p99(p99), med(runs, "lost"), med(runs, "rss_mib")))
    return "\n".join(rows)


