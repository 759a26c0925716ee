#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# regctl: every command, in text and --json, against a real dnsd; exit codes 0 (success),
# 1 (dnsd refused), 2 (usage error) and 3 (dnsd unreachable); DNSD_API and --api.

import json
import os

from dnsdtest import REGCTL_BIN, Dnsd, check, contains, eq, main, run

D = "service.internal."


def test():
    with Dnsd() as d:
        rc, out, err = d.regctl("--version")
        eq(rc, 0, "regctl --version")
        contains(out, "regctl 0.1.0", "version text")
        for args in (["--help"], ["-h"], ["help"], ["help", "register"], ["register", "--help"],
                     ["list", "--help"]):
            rc, out, err = d.regctl(*args)
            eq(rc, 0, "regctl %s exit status (stderr %r)" % (" ".join(args), err))
            contains(out, "usage: regctl", "regctl %s prints usage" % " ".join(args))

        rc, out, err = d.regctl("health")
        eq((rc, out), (0, "ok: 0 services, 0 instances\n"), "regctl health (stderr %r)" % err)
        rc, out, err = d.regctl("--json", "health")
        eq(rc, 0, "regctl --json health")
        eq(json.loads(out), {"status": "ok", "services": 0, "instances": 0, "preserving": False}, "health JSON")

        rc, out, err = d.regctl("list")
        eq((rc, out), (0, "no services registered\n"), "regctl list when empty")

        # register with every option
        rc, out, err = d.regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--addr",
                                "2001:db8::10", "--port", "8080", "--proto", "tcp", "--ttl",
                                "60", "--priority", "1", "--weight", "2", "--tag", "primary",
                                "--tag", "blue", "--meta", "version=1.4", "--meta", "zone=a")
        eq(rc, 0, "regctl register (stderr %r)" % err)
        eq(out, "registered web/web-1 (lease 60s)\n", "register output")
        _, doc, _ = d.api("GET", "/v1/services/web")
        inst = doc["instances"][0]
        eq((inst["addresses"], inst["port"], inst["proto"], inst["ttl"], inst["priority"],
            inst["weight"], sorted(inst["tags"]), inst["meta"]),
           (["127.0.0.10", "2001:db8::10"], 8080, "tcp", 60, 1, 2, ["blue", "primary"],
            {"version": "1.4", "zone": "a"}), "registered fields reach dnsd")
        r = d.dig("_web._tcp." + D, "SRV")
        eq(r.rdata("SRV"), ["1 2 8080 web-1.web." + D], "registered SRV")
        r = d.dig("web-1.web." + D, "TXT")
        eq(sorted(r.rdata("TXT")[0].split()), ['"version=1.4"', '"zone=a"'], "registered TXT")

        # --json register, global option after the command, replace
        rc, out, err = d.regctl("register", "web", "web-2", "--addr", "127.0.0.11", "--port",
                                "8081", "--proto", "udp", "--json")
        eq(rc, 0, "regctl register --json (stderr %r)" % err)
        doc = json.loads(out)
        eq((doc["service"], doc["id"], doc["proto"], doc["ttl"]), ("web", "web-2", "udp", 30),
           "register --json reply")
        rc, out, err = d.regctl("register", "web", "web-2", "--addr", "127.0.0.12", "--port",
                                "8081")
        eq((rc, out), (0, "registered web/web-2 (lease 30s)\n"), "re-register replaces")
        r = d.drill("web-2.web." + D, "A")
        eq(r.rdata("A"), ["127.0.0.12"], "replacement served")

        rc, out, err = d.regctl("heartbeat", "web", "web-1")
        eq((rc, out), (0, "renewed web/web-1 (lease 60s)\n"), "regctl heartbeat (stderr %r)"
           % err)
        rc, out, err = d.regctl("--json", "heartbeat", "web", "web-1")
        eq(rc, 0, "regctl --json heartbeat")
        eq(json.loads(out)["id"], "web-1", "heartbeat JSON")

        rc, out, err = d.regctl("list")
        eq(rc, 0, "regctl list")
        lines = out.splitlines()
        eq(lines[0].split(), ["SERVICE", "INSTANCES"], "list header")
        eq([l.split() for l in lines[1:]], [["web", "2"]], "list rows")
        rc, out, err = d.regctl("list", "--json")
        eq(rc, 0, "regctl list --json")
        eq(json.loads(out), {"services": [{"name": "web", "instances": 2}]}, "list JSON")

        rc, out, err = d.regctl("list", "web")
        eq(rc, 0, "regctl list web")
        lines = out.splitlines()
        for col in ("ID", "ADDRESSES", "PORT", "PROTO", "PRIO", "WEIGHT", "HEALTH", "TAGS",
                    "META"):
            contains(lines[0], col, "list web header")
        row = [l for l in lines[1:] if l.split()[0] == "web-1"]
        eq(len(row), 1, "list web has a web-1 row:\n%s" % out)
        for cell in ("127.0.0.10", "2001:db8::10", "8080", "tcp", "passing", "primary",
                     "version=1.4"):
            contains(row[0], cell, "web-1 row")
        check(any(l.split()[0] == "web-2" for l in lines[1:]), "list web has web-2")
        rc, out, err = d.regctl("--json", "list", "web")
        eq(rc, 0, "regctl --json list web")
        eq(sorted(i["id"] for i in json.loads(out)["instances"]), ["web-1", "web-2"],
           "list web JSON")
        rc, out, err = d.regctl("list", "nothing")
        eq((rc, out), (0, "no instances of nothing registered\n"), "list of an empty service")

        rc, out, err = d.regctl("deregister", "web", "web-2")
        eq((rc, out), (0, "deregistered web/web-2\n"), "regctl deregister (stderr %r)" % err)
        eq(d.dig("web-2.web." + D, "A").rcode, "NXDOMAIN", "deregistered instance gone")
        rc, out, err = d.regctl("--json", "deregister", "web", "web-1")
        eq(rc, 0, "regctl --json deregister")
        eq(json.loads(out), {"service": "web", "id": "web-1", "deregistered": True},
           "deregister JSON")

        # exit 1: dnsd refused
        for args, what in ((["deregister", "web", "nope"], "deregister unknown"),
                           (["heartbeat", "web", "nope"], "heartbeat unknown"),
                           (["register", "web", "web-3", "--addr", "127.0.0.1", "--port", "80",
                             "--tag", "x", "--tag", "x"], "duplicate tag")):
            rc, out, err = d.regctl(*args)
            eq(rc, 1, "%s exit status (stdout %r, stderr %r)" % (what, out, err))
            check(err.startswith("regctl: "), "%s: error on stderr: %r" % (what, err))
            eq(out, "", "%s: nothing on stdout" % what)
        rc, out, err = d.regctl("deregister", "web", "nope")
        contains(err, "not registered", "dnsd's message is printed")
        contains(err, "(field: id)", "dnsd's field is printed")

        # exit 2: usage errors
        for args in ([], ["bogus"], ["register", "web", "web-3", "--addr", "127.0.0.1"],
                     ["register", "web", "web-3", "--port", "80"],
                     ["register", "web", "--addr", "127.0.0.1", "--port", "80"],
                     ["register", "_web", "w-1", "--addr", "127.0.0.1", "--port", "80"],
                     ["register", "web", "w-1", "--addr", "999.1.1.1", "--port", "80"],
                     ["register", "web", "w-1", "--addr", "127.0.0.1", "--port", "70000"],
                     ["register", "web", "w-1", "--addr", "127.0.0.1", "--port", "80",
                      "--proto", "sctp"],
                     ["register", "web", "w-1", "--addr", "127.0.0.1", "--port", "80",
                      "--meta", "novalue"],
                     ["deregister", "web"], ["heartbeat"], ["list", "a", "b"],
                     ["health", "extra"], ["--bogus", "list"], ["list", "--bogus"],
                     ["help", "bogus"]):
            rc, out, err = d.regctl(*args)
            eq(rc, 2, "regctl %s exit status (stderr %r)" % (" ".join(args), err))
            check(err.startswith("regctl: "), "usage error message for %r: %r" % (args, err))
        _, doc, _ = d.api("GET", "/v1/services")
        eq(doc, {"services": []}, "no usage error or refusal registered anything")

        # exit 3: unreachable; DNSD_API honoured; --api wins over DNSD_API
        rc, out, err = d.regctl("--api", "unix:/nonexistent", "list")
        eq(rc, 3, "--api unix:/nonexistent (stderr %r)" % err)
        check(err.startswith("regctl: "), "unreachable message: %r" % err)
        rc, out, err = d.regctl("list", "--api", "unix:/nonexistent")
        eq(rc, 3, "--api after the command")
        rc, out, err = d.regctl("health", env_api=False, api="unix:" + d.sock)
        eq(rc, 0, "--api without DNSD_API (stderr %r)" % err)
        rc, out, err = d.regctl("health")
        eq(rc, 0, "DNSD_API alone is honoured (stderr %r)" % err)
        rc, out, err = run_with_env(d, "unix:/nonexistent", ["health"])
        eq(rc, 3, "DNSD_API=unix:/nonexistent is honoured")
        rc, out, err = run_with_env(d, "unix:/nonexistent", ["--api", "unix:" + d.sock, "health"])
        eq(rc, 0, "--api overrides DNSD_API")
        rc, out, err = run_with_env(d, "unix:" + d.sock, ["register", "env", "env-1", "--addr",
                                                          "127.0.0.70", "--port", "80"])
        eq(rc, 0, "register through DNSD_API")
        eq(d.dig("env." + D, "A").rdata("A"), ["127.0.0.70"], "registered through DNSD_API")


def run_with_env(d, value, args):
    env = dict(os.environ)
    env["DNSD_API"] = value
    return run([REGCTL_BIN] + args, env=env)


main(test)
