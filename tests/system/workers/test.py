#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# workers: with dns.workers = 3, dnsd answers UDP on three threads, each with its own
# SO_REUSEPORT socket on the listen address. Queries from many client sockets are spread
# over the threads (each thread's CPU time grows), every client gets correct answers, a
# registration and a zone reload are seen by every thread at once, the counters of all
# threads add up in /metrics, a second dnsd on the same port is refused, and dnsd stops
# cleanly. dns.workers = 1 runs no extra thread.

import os
import re
import signal
import socket
import subprocess
import time

import dns.message
import dns.rcode

from dnsdtest import Dnsd, check, contains, eq, main, rrs, run_dnsd

D = "service.internal."
CLIENTS = 48

ZONE = """$ORIGIN static.test.
$TTL 60
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
@   IN NS  ns1
ns1 IN A   192.0.2.53
www IN A   192.0.2.%d
"""


def config(workers):
    return "dns = { workers = %d; rrl = { enabled = false; }; };\n" % workers


def udp_threads(pid):
    """{tid: CPU ns} of dnsd's threads that answer UDP: the main thread and dnsd-udp-N."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        with open(base + "comm") as f:
            comm = f.read().strip()
        if int(tid) != pid and not comm.startswith("dnsd-udp-"):
            continue
        with open(base + "schedstat") as f:
            out[int(tid)] = int(f.read().split()[0])
    return out


def ask_from_many(port, name, rdtype="A", per_client=1):
    """Ask name from CLIENTS sockets (distinct source ports); the replies, one per query."""
    socks = []
    replies = []
    try:
        for _ in range(CLIENTS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(("127.0.0.1", port))
            s.settimeout(2)
            socks.append(s)
        for j in range(per_client):
            for k, s in enumerate(socks):
                q = dns.message.make_query(name, rdtype)
                q.id = (k * 97 + j) & 0xFFFF
                s.send(q.to_wire())
        for s in socks:
            for _ in range(per_client):
                replies.append(dns.message.from_wire(s.recv(65536)))
    finally:
        for s in socks:
            s.close()
    return replies


def udp_sockets_on(port):
    """How many UDP sockets are bound to 127.0.0.1:port (ss, from iproute2)."""
    out = subprocess.run(["ss", "-Huan", "sport = :%d" % port], capture_output=True,
                         text=True, timeout=10, check=True).stdout
    return len([line for line in out.splitlines() if ("127.0.0.1:%d" % port) in line])


INTRUDER = """
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, int(sys.argv[2]), 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    print("bound")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
"""


def intruder_bind(port, option, uid=None):
    """Try to bind a UDP socket with option to 127.0.0.1:port in a child process (as uid
    when given); returns "bound" or the errno name."""
    out = subprocess.run(["/usr/bin/python3", "-c", INTRUDER, str(port), str(option)],
                         capture_output=True, text=True, timeout=10,
                         preexec_fn=(lambda: os.setuid(uid)) if uid is not None else None)
    return out.stdout.strip() or out.stderr.strip()


def test_three_workers():
    with Dnsd(config=config(3), zones={"static.test.zone": ZONE % 1}) as d:
        d.put_instance("web", "w1", addresses=["10.0.0.1"], port=80)
        eq(udp_sockets_on(d.port), 3, "three UDP sockets share 127.0.0.1:%d" % d.port)
        names = sorted(
            open("/proc/%d/task/%s/comm" % (d.proc.pid, t)).read().strip()
            for t in os.listdir("/proc/%d/task" % d.proc.pid))
        contains(names, "dnsd-udp-1", "worker threads are named")
        contains(names, "dnsd-udp-2", "worker threads are named")

        before = udp_threads(d.proc.pid)
        eq(len(before), 3, "three threads answer UDP")
        replies = ask_from_many(d.port, "web." + D, per_client=20)
        eq(len(replies), CLIENTS * 20, "every query answered")
        eq(sorted({a for r in replies for a in rrs(r, "A")}), ["10.0.0.1"],
           "every thread answers from the registry")
        after = udp_threads(d.proc.pid)
        busy = [t for t in before if after.get(t, 0) > before[t]]
        check(len(busy) >= 2, "queries from %d sockets reached more than one thread "
              "(CPU ns before %s, after %s)" % (CLIENTS, before, after))

        # A change is published to every thread at once: no client sees the old state.
        d.put_instance("web", "w1", addresses=["10.0.0.2"], port=80)
        replies = ask_from_many(d.port, "web." + D)
        eq(sorted({a for r in replies for a in rrs(r, "A")}), ["10.0.0.2"],
           "the re-registration is answered by every thread")
        d.api("DELETE", "/v1/services/web/instances/w1")
        replies = ask_from_many(d.port, "web." + D)
        eq({dns.rcode.to_text(r.rcode()) for r in replies}, {"NXDOMAIN"},
           "the removal is answered by every thread")

        # A zone reload swaps the store under every thread.
        d.write_zones({"static.test.zone": ZONE.replace("1 3600", "2 3600") % 2})
        d.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            replies = ask_from_many(d.port, "www.static.test.")
            if {a for r in replies for a in rrs(r, "A")} == {"192.0.2.2"}:
                break
            time.sleep(0.1)
        eq(sorted({a for r in replies for a in rrs(r, "A")}), ["192.0.2.2"],
           "every thread answers from the reloaded zone")

        # Every thread's counters add up: the sum covers at least what was asked above.
        status, _, headers = d.api("GET", "/metrics")
        eq(status, 200, "metrics")
        body = headers["_body"]
        total = sum(float(v) for v in re.findall(
            r'^dnsd_dns_queries_total\{[^}]*transport="udp"[^}]*\} (\S+)$', body, re.M))
        check(total >= CLIENTS * 23, "udp queries in /metrics (%d) cover every thread's "
              "(at least %d asked)" % (total, CLIENTS * 23))

        # SO_REUSEPORT must not let a second server quietly take half the traffic.
        rc, _, err = run_dnsd(["-c", os.path.join(d.tmp, "dnsd.conf"), "--listen",
                               "127.0.0.1:%d" % d.port, "--api",
                               "unix:" + os.path.join(d.tmp, "second.sock"), "--zones",
                               d.zones_dir])
        check(rc != 0, "a second dnsd on the same port exits non-zero")
        contains(err.lower(), "127.0.0.1:%d/udp: address already in use" % d.port,
                 "the second dnsd says the address is in use")
        eq(udp_sockets_on(d.port), 3, "still three sockets on the port")

        # Nor may anyone else join the port's sockets: SO_REUSEADDR alone (which libuv's
        # uv_udp_open would have set on dnsd's sockets) or, as another user, SO_REUSEPORT.
        eq(intruder_bind(d.port, socket.SO_REUSEADDR), "EADDRINUSE",
           "a socket with SO_REUSEADDR cannot bind dnsd's port")
        if os.geteuid() == 0:
            eq(intruder_bind(d.port, socket.SO_REUSEPORT, uid=65534), "EADDRINUSE",
               "another user's socket with SO_REUSEPORT cannot bind dnsd's port")
    # Leaving the block stops dnsd and checks exit status 0 and no sanitizer report.


def test_one_worker():
    with Dnsd(config=config(1)) as d:
        d.put_instance("web", "w1", addresses=["10.0.0.1"], port=80)
        eq(udp_sockets_on(d.port), 1, "one UDP socket")
        eq(len(udp_threads(d.proc.pid)), 1, "only the main thread answers UDP")
        replies = ask_from_many(d.port, "web." + D)
        eq(sorted({a for r in replies for a in rrs(r, "A")}), ["10.0.0.1"], "answers")
        contains(d.stderr_text(), "1 thread(s) answer UDP", "the start-up log says so")


def test():
    test_three_workers()
    test_one_worker()


main(test)
