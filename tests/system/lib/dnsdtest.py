# SPDX-License-Identifier: BSD-2-Clause
# Shared helpers for dnsd's system tests: start a real dnsd on a free loopback port with a
# private API socket, drive it with regctl, curl, dig, drill, kdig and dnspython, and stop it
# by its pid file. Every wait is bounded; all traffic stays on 127.0.0.1 and ::1.
# Only the standard library and dnspython; run with Debian's /usr/bin/python3.

import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DNSD_BIN = os.environ.get("DNSD_BIN") or os.path.join(REPO, "build", "dev", "dnsd")
REGCTL_BIN = os.environ.get("REGCTL_BIN") or os.path.join(REPO, "build", "dev", "regctl")

DOMAIN = "service.internal."
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
# DNSD_VALGRIND=1 runs every dnsd under valgrind's memcheck (tools/valgrind.sh; needs a build
# without sanitizers): its report goes to valgrind-PID.log in the server's temp dir, and a
# stop or an exit fails the test on any error or leak. DNSD_VALGRIND_SUPP names a
# suppression file. Start and stop waits are scaled by DNSD_TIME_SCALE (10 under valgrind).
VALGRIND = os.environ.get("DNSD_VALGRIND", "") not in ("", "0")
VALGRIND_EXIT = 97
TIME_SCALE = float(os.environ.get("DNSD_TIME_SCALE") or (10 if VALGRIND else 1))
START_TIMEOUT_S = 10.0 * TIME_SCALE
STOP_TIMEOUT_S = 10.0 * TIME_SCALE

_passed = 0
_servers = []  # every Dnsd started by this test, for stderr dumps on failure


class CheckFailed(Exception):
    pass


def check(cond, msg):
    """Count one passed check, or stop the test with msg."""
    global _passed
    if not cond:
        raise CheckFailed(msg)
    _passed += 1


def eq(got, want, msg):
    check(got == want, "%s: got %r, want %r" % (msg, got, want))


def contains(haystack, needle, msg):
    check(needle in haystack, "%s: %r not in %r" % (msg, needle, haystack))


def main(fn):
    """Run fn(), print a summary and exit 0, or print the failure and dnsd's stderr and
    exit 1."""
    name = os.path.basename(os.path.dirname(os.path.abspath(sys.argv[0])))
    t0 = time.monotonic()
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any failure ends the test
        if isinstance(e, CheckFailed):
            print("FAIL [%s]: %s" % (name, e), flush=True)
        else:
            print("FAIL [%s]: unexpected %s" % (name, type(e).__name__), flush=True)
        traceback.print_exc()
        for srv in _servers:
            srv.kill_if_running()
            print("---- dnsd stderr (%s) ----" % " ".join(srv.argv), flush=True)
            print(srv.stderr_text(), flush=True)
            if VALGRIND:
                print(valgrind_report(srv.tmp), flush=True)
        print("%s: %d passed, 1 failed" % (name, _passed), flush=True)
        sys.exit(1)
    for srv in _servers:
        srv.cleanup()
    print("%s: %d passed, 0 failed (%.1f s)" % (name, _passed, time.monotonic() - t0),
          flush=True)
    sys.exit(0)


# ---------------------------------------------------------------------------------------
# Ports and processes


def ipv6_loopback_works():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            s.bind(("::1", 0))
        finally:
            s.close()
        return True
    except OSError:
        return False


HAVE_IPV6 = ipv6_loopback_works()


def free_port():
    """A port free for UDP and TCP on 127.0.0.1 (and ::1 when it works)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        socks = [t]
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(u)
            u.bind(("127.0.0.1", port))
            if HAVE_IPV6:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s6 = socket.socket(socket.AF_INET6, kind)
                    socks.append(s6)
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind(("::1", port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port found")


def run(argv, timeout=20, env=None, input_bytes=None):
    """Run a program; returns (rc, stdout, stderr) as text."""
    p = subprocess.run(argv, input=input_bytes, capture_output=True, timeout=timeout, env=env)
    return (p.returncode,
            p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def no_sanitizer_report(text, what):
    for m in SANITIZER_MARKERS:
        check(m not in text, "%s: sanitizer report (%r) in stderr:\n%s" % (what, m, text))


def valgrind_prefix(log_dir):
    """The command prefix that runs dnsd under memcheck (empty unless DNSD_VALGRIND)."""
    if not VALGRIND:
        return []
    argv = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=%d" % VALGRIND_EXIT,
            "--track-origins=yes", "--log-file=" + os.path.join(log_dir, "valgrind-%p.log")]
    supp = os.environ.get("DNSD_VALGRIND_SUPP")
    if supp:
        argv.append("--suppressions=" + supp)
    return argv


def valgrind_report(log_dir):
    """Every valgrind log in log_dir that reports an error or a leak, concatenated."""
    bad = []
    for name in sorted(os.listdir(log_dir)) if VALGRIND else []:
        if name.startswith("valgrind-") and name.endswith(".log"):
            with open(os.path.join(log_dir, name), errors="replace") as f:
                text = f.read()
            # Definite and indirect leaks count as errors (--errors-for-leak-kinds).
            if re.search(r"ERROR SUMMARY: [1-9]", text):
                bad.append("==> %s <==\n%s" % (name, text))
    return "\n".join(bad)


def no_valgrind_report(log_dir, what):
    text = valgrind_report(log_dir)
    check(not text, "%s: valgrind memcheck found errors:\n%s" % (what, text))


def root_user_args(args, config=None):
    """["--user", "root"] when running as root (CI) and the test names no user: started as
    root, dnsd drops to the user dnsd, which a test machine need not have."""
    if os.geteuid() != 0 or any(a == "--user" or a.startswith("--user=") for a in args):
        return []
    if config is not None and re.search(r"^\s*user\s*[=:]", config, re.M):
        return []
    return ["--user", "root"]


def run_dnsd(args, timeout=10):
    """Run dnsd expecting it to exit on its own (bad config, --help...).
    Returns (rc, stdout, stderr); fails the test if it is still running after timeout."""
    timeout *= TIME_SCALE
    log_dir = tempfile.mkdtemp(prefix="dnsd-vg-")
    try:
        try:
            rc, out, err = run(valgrind_prefix(log_dir) + [DNSD_BIN] + root_user_args(args)
                               + list(args),
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CheckFailed("dnsd %s did not exit within %d s" % (" ".join(args), timeout))
        no_sanitizer_report(err, "dnsd " + " ".join(args))
        no_valgrind_report(log_dir, "dnsd " + " ".join(args))
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    return rc, out, err


def write_file(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class Dnsd:
    """A running dnsd on a private port and API socket.

    config: libconfig text; "@PORT@" and "@TMP@" are replaced by the chosen port and the
            temp dir. Written to TMP/dnsd.conf and passed with -c.
    zones:  dict file name -> text, written to TMP/zones and passed with --zones.
    cli_listen / cli_api / cli_pid: pass --listen / --api / --pid-file on the command line
            (turn off when the config file supplies them; a config must then use
            unix:@TMP@/api.sock and @TMP@/dnsd.pid, which the helpers expect).
    """

    def __init__(self, config=None, zones=None, args=(), cli_listen=True, cli_api=True,
                 cli_pid=True, log_level=None):
        self.config = config
        self.zones = zones
        self.extra = list(args)
        self.cli_listen = cli_listen
        self.cli_api = cli_api
        self.cli_pid = cli_pid
        self.log_level = log_level
        self.tmp = tempfile.mkdtemp(prefix="dnsd-systest-")
        self.sock = os.path.join(self.tmp, "api.sock")
        self.pid_file = os.path.join(self.tmp, "dnsd.pid")
        self.zones_dir = os.path.join(self.tmp, "zones")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        self.proc = None
        self.port = None
        self.argv = [DNSD_BIN]
        self.exit_code = None
        _servers.append(self)

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        return False

    def _argv(self):
        argv = valgrind_prefix(self.tmp) + [DNSD_BIN]
        if self.config is not None:
            path = os.path.join(self.tmp, "dnsd.conf")
            write_file(path, self.config.replace("@PORT@", str(self.port))
                       .replace("@TMP@", self.tmp))
            argv += ["-c", path]
        if self.cli_listen:
            argv += ["--listen", "127.0.0.1:%d" % self.port]
            if HAVE_IPV6:
                argv += ["--listen", "[::1]:%d" % self.port]
        if self.cli_api:
            argv += ["--api", "unix:" + self.sock]
        if self.cli_pid:
            argv += ["--pid-file", self.pid_file]
        if self.zones is not None:
            self.write_zones(self.zones)
            argv += ["--zones", self.zones_dir]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        return argv + root_user_args(self.extra, self.config) + self.extra

    def write_zones(self, zones):
        os.makedirs(self.zones_dir, exist_ok=True)
        for name, text in zones.items():
            write_file(os.path.join(self.zones_dir, name), text)

    def start(self):
        for attempt in range(5):
            self.port = free_port()
            self.argv = self._argv()
            with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
                self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                             stdin=subprocess.DEVNULL)
            state = self._wait_ready()
            if state == "ready":
                return
            if state == "bind" and attempt < 4:
                continue
            raise CheckFailed("dnsd did not become ready (%s): %s\nstderr:\n%s"
                              % (state, " ".join(self.argv), self.stderr_text()))

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.exit_code = rc
                text = self.stderr_text().lower()
                if "in use" in text or "eaddrinuse" in text:
                    return "bind"
                return "exited with %d" % rc
            if os.path.exists(self.sock):
                try:
                    status, _, _ = self.api("GET", "/v1/health", timeout=2)
                    if status == 200:
                        return "ready"
                except (subprocess.TimeoutExpired, CheckFailed):
                    pass
            time.sleep(0.05)
        self.kill_if_running()
        return "timeout after %.0f s" % START_TIMEOUT_S

    def pid(self):
        with open(self.pid_file) as f:
            return int(f.read().strip())

    def send_signal(self, sig):
        """Send sig to dnsd, addressed through its pid file."""
        pid = self.pid()
        eq(pid, self.proc.pid, "pid file holds dnsd's pid")
        os.kill(pid, sig)

    def wait_exit(self, timeout=STOP_TIMEOUT_S):
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_if_running()
            raise CheckFailed("dnsd did not exit within %.0f s" % timeout)
        return self.exit_code

    def stop(self, sig=signal.SIGTERM):
        """Stop dnsd with sig via the pid file; check exit 0, clean files, no sanitizer
        report."""
        if self.proc is None or self.proc.poll() is not None:
            raise CheckFailed("dnsd already exited (%r) before stop" % (self.proc and
                                                                        self.proc.poll()))
        self.send_signal(sig)
        rc = self.wait_exit()
        no_valgrind_report(self.tmp, "dnsd")
        eq(rc, 0, "dnsd exit status after %s" % signal.Signals(sig).name)
        check(not os.path.exists(self.sock), "API socket %s removed on exit" % self.sock)
        check(not os.path.exists(self.pid_file), "pid file removed on exit")
        no_sanitizer_report(self.stderr_text(), "dnsd")

    def kill_if_running(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def cleanup(self):
        self.kill_if_running()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- registration API ----------------------------------------------------------------

    def api(self, method, path, body=None, raw=None, timeout=5):
        """One HTTP request over the Unix socket with curl.
        body: a JSON-able value; raw: bytes sent as is. Returns (status, json-or-None,
        headers dict with lower-case names); the raw body text is in headers['_body']."""
        hdr = os.path.join(self.tmp, "curl.hdr")
        argv = ["curl", "-sS", "--max-time", str(timeout), "--unix-socket", self.sock,
                "-X", method, "-D", hdr, "-o", "-", "-w", "\n%{http_code}",
                "-H", "Expect:"]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        if raw is not None:
            data = raw
        if data is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        argv.append("http://localhost" + path)
        rc, out, err = run(argv, timeout=timeout + 5, input_bytes=data)
        if rc != 0:
            raise CheckFailed("curl %s %s failed (%d): %s" % (method, path, rc, err))
        text, _, code = out.rpartition("\n")
        headers = {"_body": text}
        try:
            with open(hdr) as f:
                for line in f:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
        except OSError:
            pass
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        return int(code), doc, headers

    def put_instance(self, service, iid, **fields):
        status, doc, _ = self.api("PUT", "/v1/services/%s/instances/%s" % (service, iid),
                                  fields)
        check(status in (200, 201), "PUT %s/%s -> %d %r" % (service, iid, status, doc))
        return doc

    def regctl(self, *args, env_api=True, api=None, timeout=15):
        """Run regctl; DNSD_API points at this dnsd unless env_api is False.
        Returns (rc, stdout, stderr)."""
        env = dict(os.environ)
        env.pop("DNSD_API", None)
        if env_api:
            env["DNSD_API"] = "unix:" + self.sock
        argv = [REGCTL_BIN]
        if api is not None:
            argv += ["--api", api]
        return run(argv + list(args), timeout=timeout, env=env)

    def must_regctl(self, *args):
        rc, out, err = self.regctl(*args)
        eq(rc, 0, "regctl %s (stdout %r, stderr %r)" % (" ".join(args), out, err))
        return out

    # -- DNS ------------------------------------------------------------------------------

    def query(self, name, rdtype, tcp=False, payload=None, want_dnssec=False,
              use_edns=None, timeout=2, addr="127.0.0.1"):
        """Send one query with dnspython; returns the dns.message response.
        payload given -> EDNS0 with that size; use_edns=False -> no OPT."""
        if payload is not None and use_edns is None:
            use_edns = 0
        q = dns.message.make_query(name, rdtype, use_edns=use_edns, payload=payload,
                                   want_dnssec=want_dnssec)
        if tcp:
            return dns.query.tcp(q, addr, port=self.port, timeout=timeout)
        return dns.query.udp(q, addr, port=self.port, timeout=timeout)

    def udp_raw(self, data, timeout=1.0, addr="127.0.0.1"):
        """Send hand-made bytes over UDP; returns the reply bytes or None on timeout."""
        return udp_raw(self.port, data, timeout, addr)

    def tcp_connect(self, timeout=5):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def dig(self, name, rdtype="A", *opts, addr="127.0.0.1"):
        rc, out, err = run(["dig", "@" + addr, "-p", str(self.port), "+tries=1", "+time=2",
                            name, rdtype] + list(opts), timeout=15)
        check(rc == 0 or "status:" in out, "dig %s %s failed (%d): %s %s"
              % (name, rdtype, rc, out, err))
        return parse_client_output(out)

    def drill(self, name, rdtype="A", *opts):
        rc, out, err = run(["drill", "-p", str(self.port)] + list(opts) +
                           ["@127.0.0.1", name, rdtype], timeout=15)
        check(rc == 0, "drill %s %s failed (%d): %s %s" % (name, rdtype, rc, out, err))
        return parse_client_output(out)

    def kdig(self, name, rdtype="A", *opts):
        rc, out, err = run(["kdig", "@127.0.0.1", "-p", str(self.port), "+retry=0",
                            "+time=2", name, rdtype] + list(opts), timeout=15)
        check(rc == 0, "kdig %s %s failed (%d): %s %s" % (name, rdtype, rc, out, err))
        return parse_client_output(out)


# ---------------------------------------------------------------------------------------
# Client output parsing (dig, drill and kdig print the same presentation format)


class Reply:
    """rcode (str), flags (set of lower-case str), answer/authority/additional: lists of
    Record, text: the raw output."""

    def __init__(self, text):
        self.text = text
        self.rcode = None
        self.flags = set()
        self.answer = []
        self.authority = []
        self.additional = []

    def rdata(self, rtype=None, section="answer"):
        return [r.rdata for r in getattr(self, section) if rtype is None or r.type == rtype]

    def __repr__(self):
        return self.text


class Record:
    def __init__(self, line):
        parts = line.split(None, 4)
        self.name = parts[0].lower()
        self.ttl = int(parts[1])
        self.cls = parts[2]
        self.type = parts[3]
        self.rdata = parts[4].strip() if len(parts) > 4 else ""

    def __repr__(self):
        return "%s %d %s %s %s" % (self.name, self.ttl, self.cls, self.type, self.rdata)


_SECTION_RE = re.compile(r"^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:", re.I)


def parse_client_output(text):
    r = Reply(text)
    m = re.search(r"(?:status|rcode): ([A-Z0-9]+)", text)
    r.rcode = m.group(1) if m else None
    m = re.search(r"^;; [Ff]lags: ([a-z ]*);", text, re.M)
    if m:
        r.flags = set(m.group(1).split())
    section = None
    for line in text.splitlines():
        sm = _SECTION_RE.match(line)
        if sm:
            section = sm.group(1).lower()
            continue
        if not line.strip() or line.startswith(";"):
            if not line.strip():
                section = None
            continue
        if section:
            parts = line.split()
            if len(parts) >= 4 and parts[1].isdigit():
                getattr(r, section).append(Record(line))
    return r


# ---------------------------------------------------------------------------------------
# dnspython helpers


def rrs(msg, rdtype, section="answer"):
    """Every rdata of rdtype in a section of a dns.message, as text."""
    out = []
    for rrset in getattr(msg, section):
        if rrset.rdtype == dns.rdatatype.from_text(rdtype):
            out.extend(rd.to_text() for rd in rrset)
    return out


def rrsets(msg, rdtype, section="answer"):
    return [rs for rs in getattr(msg, section)
            if rs.rdtype == dns.rdatatype.from_text(rdtype)]


def header(qid, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def question(name, qtype=1, qclass=1):
    return wire_name(name) + struct.pack("!HH", qtype, qclass)


def reply_header(data):
    """(id, flags, qd, an, ns, ar) of a reply."""
    return struct.unpack("!HHHHHH", data[:12])


def tcp_send_query(sock, wire):
    sock.sendall(struct.pack("!H", len(wire)) + wire)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise CheckFailed("TCP connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def tcp_read_message(sock):
    (n,) = struct.unpack("!H", recv_exact(sock, 2))
    return recv_exact(sock, n)


def udp_raw(port, data, timeout=1.0, addr="127.0.0.1"):
    """Send bytes to addr:port over UDP; returns the reply bytes or None on timeout."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(data, (addr, port))
        try:
            return s.recv(65535)
        except (socket.timeout, ConnectionRefusedError):
            return None
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.1):
    """Poll pred() until it returns a true value or timeout passes; returns the last
    value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# Health, checks and watches (issue 3)


def dnsd_config(dns=None, health=None, preservation=None, lease=None):
    """libconfig text setting only the given options: dns, health and lease are dicts of
    option -> Python value (bool, int, float or str), preservation the dict for
    health.self_preservation."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"%s"' % v
        return repr(v)

    def group(name, opts, inner="", indent=""):
        body = "".join("%s    %s = %s;\n" % (indent, k, value(v)) for k, v in opts.items())
        return "%s%s = {\n%s%s%s};\n" % (indent, name, body, inner, indent)

    text = ""
    if dns:
        text += group("dns", dns)
    if lease:
        text += group("lease", lease)
    if health or preservation:
        inner = group("self_preservation", preservation, indent="    ") if preservation else ""
        text += group("health", health or {}, inner)
    return text


def count_lines(text, *needles):
    """How many lines of text contain every one of needles."""
    return sum(1 for line in text.splitlines() if all(n in line for n in needles))


def instance_doc(d, service, iid):
    """The instance JSON of service/iid from GET /v1/services/SERVICE, or None."""
    status, doc, _ = d.api("GET", "/v1/services/%s" % service)
    check(status == 200, "GET /v1/services/%s -> %d %r" % (service, status, doc))
    for inst in doc.get("instances", []):
        if inst.get("id") == iid:
            return inst
    return None


def a_answer(d, name, rdtype="A"):
    """(rcode text, sorted rdata texts) of one UDP query for name (relative to DOMAIN)."""
    r = d.query(name + "." + DOMAIN, rdtype)
    return dns.rcode.to_text(r.rcode()), sorted(rrs(r, rdtype))


def soa_serial(d):
    r = d.query(DOMAIN, "SOA")
    soa = rrs(r, "SOA")
    check(len(soa) == 1, "one SOA at the apex: %r" % soa)
    return int(soa[0].split()[2])


class TcpListener:
    """A TCP listener on 127.0.0.1 that accepts and closes connections (a health probe
    target) until close()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class HttpStub:
    """A tiny HTTP server on 127.0.0.1 answering every GET with self.status (settable)."""

    def __init__(self, status=200):
        import http.server

        stub = self
        self.status = status
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                stub.hits += 1
                body = b"status %d\n" % stub.status
                self.send_response(stub.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path="/health"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)


class Background:
    """A program running in the background whose stdout lines are collected as they come."""

    def __init__(self, argv, env=None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=env)
        self.lines = queue.Queue()
        self.out = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            self.out.append(line)
            self.lines.put(line)

    def next_line(self, timeout):
        """The next stdout line, or None when none came within timeout."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait(self, timeout):
        """Wait for exit; returns (rc, stdout, stderr), or fails the test after timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CheckFailed("%s still running after %.1f s; stdout so far %r"
                              % (" ".join(self.argv), timeout, "".join(self.out)))
        self._reader.join(timeout=2)
        err = self.proc.stderr.read().decode("utf-8", "replace")
        return rc, "".join(self.out), err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def regctl_background(d, *args):
    """Start regctl against d in the background (for watch)."""
    env = dict(os.environ)
    env["DNSD_API"] = "unix:" + d.sock
    return Background([REGCTL_BIN] + list(args), env=env)
