#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# haproxy: the real HAProxy discovers its backends from dnsd's SRV records
# (server-template on _web._tcp.service.internal with a resolvers section): requests
# through HAProxy reach the three registered HTTP backends; a deregistered backend leaves the
# rotation within a few seconds; a newly registered fourth joins it.

import collections
import http.client
import http.server
import os
import signal
import socket
import subprocess
import threading
import time

from dnsdtest import CheckFailed, Dnsd, check, eq, free_port, main, run, wait_until, write_file

D = "service.internal."
START_TIMEOUT_S = 15.0
CHANGE_TIMEOUT_S = 10.0  # resolution every 1 s + hold obsolete 1 s + health check, with slack
ROUND = 16  # requests per sample: more than 3 x the number of live backends

# The configuration the README's "Integrations" section shows; @...@ filled in below.
HAPROXY_CFG = """\
global
    stats socket @TMP@/haproxy.sock mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s

resolvers dnsd
    nameserver dnsd 127.0.0.1:@DNSDPORT@
    accepted_payload_size 1232
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 1s
    hold obsolete 1s
    hold nx 1s
    hold other 1s
    hold refused 1s
    hold timeout 1s

frontend web
    bind 127.0.0.1:@PORT@
    default_backend web

backend web
    balance roundrobin
    default-server resolvers dnsd resolve-prefer ipv4 init-addr none check inter 500ms
    server-template web 5 _web._tcp.service.internal
"""


class Backend:
    """A tiny HTTP server on 127.0.0.1 answering every GET with its own name."""

    def __init__(self, name):
        backend = self
        self.name = name
        self.hits = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                with backend.lock:
                    backend.hits += 1
                body = backend.name.encode() + b"\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=2)


class Haproxy:
    def __init__(self, d):
        self.tmp = d.tmp
        self.port = free_port()
        self.cfg = os.path.join(d.tmp, "haproxy.cfg")
        self.sock = os.path.join(d.tmp, "haproxy.sock")
        self.log = os.path.join(d.tmp, "haproxy.log")
        write_file(self.cfg, HAPROXY_CFG.replace("@TMP@", d.tmp)
                   .replace("@DNSDPORT@", str(d.port)).replace("@PORT@", str(self.port)))
        rc, out, err = run(["haproxy", "-c", "-f", self.cfg])
        eq(rc, 0, "haproxy -c accepts the configuration (%s %s)" % (out, err))
        check("WARNING" not in out + err, "haproxy -c: no warnings:\n%s%s" % (out, err))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["haproxy", "-f", self.cfg, "-db"], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def get(self):
        """One request through the frontend on a new connection; the backend's name, or
        the HTTP status / error as text."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace").strip()
            return body if resp.status == 200 else "HTTP %d" % resp.status
        except (OSError, http.client.HTTPException) as e:
            return "error %s" % type(e).__name__
        finally:
            conn.close()

    def sample(self, n=ROUND):
        return collections.Counter(self.get() for _ in range(n))

    def stats(self, command):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(self.sock)
            s.sendall(command.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            return out.decode("utf-8", "replace")
        finally:
            s.close()

    def servers_state(self):
        """{slot name: (address, port, operational state)} from 'show servers state'."""
        slots = {}
        for line in self.stats("show servers state web").splitlines():
            f = line.split()
            if len(f) > 18 and f[1] == "web" and f[3].startswith("web"):
                # be_id be_name srv_id srv_name srv_addr srv_op_state ... srv_port at 18
                slots[f[3]] = (f[4], int(f[18]), int(f[5]))
        return slots

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise CheckFailed("haproxy did not stop within 10 s after SIGUSR1")
        eq(self.proc.returncode, 0, "haproxy exit status after a soft stop")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def register(d, b, idx):
    d.must_regctl("register", "web", "web-%d" % idx, "--addr", "127.0.0.1", "--port",
                  str(b.port), "--proto", "tcp", "--ttl", "300")


def used_ports(hap):
    """The ports of the slots that hold an address (a free slot shows '-', port 0)."""
    return sorted(port for addr, port, _ in hap.servers_state().values() if addr != "-")


def scenario(d, hap, backends):
    names = sorted(b.name for b in backends[:3])
    # HAProxy resolves, fills three of its five slots, and its checks pass.
    first = wait_until(lambda: sorted(hap.sample()) == names, START_TIMEOUT_S, 0.2)
    check(first, "requests through HAProxy reach %r within %.0f s: %r"
          % (names, START_TIMEOUT_S, hap.sample()))
    c = hap.sample(30)
    eq(sorted(c), names, "30 requests: every one answered by a registered backend")
    check(all(c[n] >= 5 for n in names), "round robin spreads 30 requests: %r" % c)
    eq(len(hap.servers_state()), 5, "server-template made five slots")
    eq(used_ports(hap), sorted(b.port for b in backends[:3]),
       "three slots hold the SRV ports, the other two are free")

    # Deregister web-2: it leaves the rotation within the resolver hold time.
    gone = backends[1]
    t0 = time.monotonic()
    d.must_regctl("deregister", "web", "web-2")
    left = sorted(n for n in names if n != gone.name)
    settled = wait_until(lambda: sorted(hap.sample()) == left, CHANGE_TIMEOUT_S, 0.1)
    took = time.monotonic() - t0
    check(settled, "deregistered %s out of rotation within %.0f s: %r"
          % (gone.name, CHANGE_TIMEOUT_S, hap.sample()))
    print("haproxy: %s left the rotation %.1f s after deregistering" % (gone.name, took),
          flush=True)
    hits = gone.hits
    c = hap.sample(30)
    eq(sorted(c), left, "30 requests after deregistering: only the two left")
    eq(gone.hits, hits, "the deregistered backend got no further request")
    eq(used_ports(hap), sorted(b.port for b in backends[:3] if b is not gone),
       "its slot was released")

    # Register a fourth: it joins the rotation.
    fourth = backends[3]
    register(d, fourth, 4)
    joined = sorted(left + [fourth.name])
    settled = wait_until(lambda: sorted(hap.sample()) == joined, CHANGE_TIMEOUT_S, 0.1)
    check(settled, "registered %s in rotation within %.0f s: %r"
          % (fourth.name, CHANGE_TIMEOUT_S, hap.sample()))
    c = hap.sample(30)
    eq(sorted(c), joined, "30 requests after registering a fourth")
    check(c[fourth.name] >= 5, "the fourth backend gets its share: %r" % c)
    eq(used_ports(hap), sorted(b.port for b in backends if b is not gone),
       "a free slot took the fourth")


def test():
    backends = [Backend("backend-%d" % i) for i in range(1, 5)]
    hap = None
    try:
        with Dnsd() as d:
            for i, b in enumerate(backends[:3], 1):
                register(d, b, i)
            r = d.dig("_web._tcp." + D, "SRV")
            eq(len(r.rdata("SRV")), 3, "dnsd serves three SRV records")
            hap = Haproxy(d)
            try:
                scenario(d, hap, backends)
            except CheckFailed:
                for command in ("show servers state", "show resolvers"):
                    try:
                        print("---- haproxy: %s ----\n%s" % (command, hap.stats(command)),
                              flush=True)
                    except OSError as e:
                        print("---- haproxy: %s: %s" % (command, e), flush=True)
                print("---- haproxy log ----\n%s" % hap.log_text(), flush=True)
                raise
            hap.stop()
    finally:
        if hap is not None:
            hap.kill()
        for b in backends:
            b.close()


main(test)
