#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# config: dnsd -c FILE takes listen, domain, api and pid_file from a libconfig file, and
# command-line flags override it; an invalid file stops dnsd with exit 2 and file:line;
# --version and --help exit 0.

import os
import shutil
import tempfile

import dns.rcode

from dnsdtest import (Dnsd, check, contains, eq, free_port, header, main, question, rrs,
                      rrsets, run_dnsd, udp_raw)

CONFIG = """# dnsd system test configuration
domain = "disco.test";
listen = [ "127.0.0.1:@PORT@" ];
api = [ "unix:@TMP@/api.sock" ];
pid_file = "@TMP@/dnsd.pid";
log_level = "debug";
dns = {
    ttl = 7;
};
"""

# (what, text, line of the fault)
INVALID = [
    ("unknown option", 'domain = "disco.test";\nlisten = [ "127.0.0.1:1" ];\ncolour = "red";\n',
     3),
    ("unknown option in a group", 'dns = {\n    ttl = 5;\n    tll = 5;\n};\n', 3),
    ("bad log level", '\nlog_level = "loud";\n', 2),
    ("udp_max_size below 512", 'dns = {\n    udp_max_size = 100;\n};\n', 2),
    ("wrong type", 'domain = "disco.test";\ndns = {\n    ttl = "five";\n};\n', 3),
    ("bad listen address", 'listen = [ "127.0.0.1:1", "nowhere:53" ];\n', 1),
    ("bad domain", '\n\ndomain = "bad..name";\n', 3),
    ("syntax error", 'domain = "disco.test";\nlisten = [ "127.0.0.1:1" \napi = 3;\n', 3),
]


def served(d, name, rtype="A"):
    r = d.query(name, rtype)
    return dns.rcode.to_text(r.rcode()), rrs(r, rtype), r


def test():
    # Everything from the file: no --listen, --api, --pid-file or --domain.
    with Dnsd(config=CONFIG, cli_listen=False, cli_api=False, cli_pid=False) as d:
        check(os.path.exists(d.pid_file), "pid_file from the config is written")
        eq(d.pid(), d.proc.pid, "pid_file holds dnsd's pid")
        d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--port", "80")
        rd = d.dig("web.disco.test.", "A")
        eq(rd.rcode, "NOERROR", "domain from the config file")
        eq(rd.rdata("A"), ["127.0.0.10"], "web.disco.test A")
        check("aa" in rd.flags, "authoritative for disco.test")
        eq([x.ttl for x in rd.answer], [7], "dns.ttl from the config file")
        code, _, r = served(d, "disco.test.", "SOA")
        eq(code, "NOERROR", "SOA at disco.test")
        eq(len(rrsets(r, "SOA")), 1, "disco.test SOA")
        eq(served(d, "web.service.internal.")[0], "REFUSED", "default domain not served")

    # The command line overrides the file: --domain, --listen, --api, --pid-file.
    other = free_port()
    conf = (CONFIG.replace("@PORT@", str(other)).replace("@TMP@/api.sock", "@TMP@/file-api.sock")
            .replace("@TMP@/dnsd.pid", "@TMP@/file.pid"))
    with Dnsd(config=conf, args=["--domain", "override.test"]) as d:
        d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.11", "--port", "80")
        eq(served(d, "web.override.test.")[:2], ("NOERROR", ["127.0.0.11"]),
           "--domain overrides the file")
        eq(served(d, "web.disco.test.")[0], "REFUSED", "the file's domain is replaced")
        q = header(7, 0x0100) + question("web.override.test.")
        check(d.udp_raw(q, timeout=1) is not None, "the --listen port answers")
        eq(udp_raw(other, q, timeout=0.5), None, "--listen replaces the file's listen list")
        check(not os.path.exists(os.path.join(d.tmp, "file-api.sock")),
              "--api replaces the file's api list")
        check(not os.path.exists(os.path.join(d.tmp, "file.pid")),
              "--pid-file replaces the file's pid_file")
        check(os.path.exists(d.pid_file), "--pid-file written")

    # Invalid files: exit 2 and file:line on stderr.
    tmp = tempfile.mkdtemp(prefix="dnsd-systest-config-")
    port = free_port()
    for i, (what, text, line) in enumerate(INVALID):
        path = os.path.join(tmp, "bad%d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run_dnsd(["-c", path, "--listen", "127.0.0.1:%d" % port, "--api",
                                 "unix:" + os.path.join(tmp, "api.sock")])
        eq(rc, 2, "%s: exit status (stderr %r)" % (what, err))
        contains(err, "bad%d.conf:%d" % (i, line), "%s: stderr names file:line" % what)
        check(not os.path.exists(os.path.join(tmp, "api.sock")), "%s: no API socket" % what)
    missing = os.path.join(tmp, "missing.conf")
    rc, out, err = run_dnsd(["-c", missing, "--listen", "127.0.0.1:%d" % port, "--api",
                             "unix:" + os.path.join(tmp, "api.sock")])
    eq(rc, 2, "missing config file: exit status (stderr %r)" % err)
    contains(err, "missing.conf", "missing config file named")

    shutil.rmtree(tmp, ignore_errors=True)

    rc, out, err = run_dnsd(["--version"])
    eq(rc, 0, "--version exit status (stderr %r)" % err)
    contains(out, "0.1.0", "--version prints the version")
    rc, out, err = run_dnsd(["--help"])
    eq(rc, 0, "--help exit status (stderr %r)" % err)
    for opt in ("-c", "--listen", "--api", "--domain", "--zones", "--log-level", "--pid-file",
                "--version", "--help"):
        contains(out, opt, "--help mentions %s" % opt)


main(test)
