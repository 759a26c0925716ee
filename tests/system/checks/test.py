#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# checks: dnsd's own active probes. A TCP check against a real listener on 127.0.0.1 makes
# the instance answered; closing the listener turns it critical and out of DNS within about
# interval + timeout. An HTTP check against a tiny local server: 200 passing, 429 warning
# (still answered), 500 critical (not answered). A check target outside the instance's
# registered addresses is refused (field "check", regctl exit 1).

import json
import time

from dnsdtest import (Dnsd, HttpStub, TcpListener, a_answer, check, contains, dnsd_config,
                      eq, instance_doc, main, wait_until)

INTERVAL = ["--check-interval", "300ms", "--check-timeout", "200ms"]


def health_of(d, service, iid):
    inst = instance_doc(d, service, iid)
    return (inst["health"], inst["reason"]) if inst else None


def tcp_check(d):
    lst = TcpListener()
    try:
        rc, out, err = d.regctl("--json", "register", "tcpc", "tcpc-1", "--addr", "127.0.0.1",
                                "--port", str(lst.port), "--check-tcp",
                                "127.0.0.1:%d" % lst.port, *INTERVAL)
        eq(rc, 0, "register with --check-tcp (%r)" % err)
        doc = json.loads(out)
        eq((doc["health"], doc["reason"]), ("critical", "check: awaiting first result"),
           "a checked instance starts critical until its first probe")
        eq(doc["check"]["tcp"], "127.0.0.1:%d" % lst.port, "check spec echoed")
        eq(doc["check"]["status"], "pending", "check pending at registration")
        ok = wait_until(lambda: a_answer(d, "tcpc") == ("NOERROR", ["127.0.0.1"]), 2.5, 0.05)
        check(ok, "TCP check against a listener: answered within about a second: %r %r"
              % (a_answer(d, "tcpc"), health_of(d, "tcpc", "tcpc-1")))
        eq(health_of(d, "tcpc", "tcpc-1")[0], "passing", "TCP check passing")
        check(lst.accepted >= 1, "the listener saw the probe")
        inst = instance_doc(d, "tcpc", "tcpc-1")
        check(inst["check"]["last_run_ms_ago"] is not None, "check has run: %r" % inst["check"])
        row = d.must_regctl("list", "tcpc")
        contains(row, "passing", "regctl list shows the passing check")
    finally:
        lst.close()
    t0 = time.monotonic()
    ok = wait_until(lambda: a_answer(d, "tcpc")[0] == "NXDOMAIN", 3.0, 0.05)
    took = time.monotonic() - t0
    check(ok, "closed listener: instance leaves DNS: %r %r"
          % (a_answer(d, "tcpc"), health_of(d, "tcpc", "tcpc-1")))
    check(took <= 2.0, "critical within interval 0.3 s + timeout 0.2 s + 1 s visibility (%.2f s)"
          % took)
    health, reason = health_of(d, "tcpc", "tcpc-1")
    eq(health, "critical", "TCP check critical after close")
    check(reason.startswith("check: "), "reason is the check output: %r" % reason)
    contains(d.must_regctl("list", "tcpc"), "critical", "regctl list shows critical")


def http_check(d):
    stub = HttpStub(200)
    try:
        d.must_regctl("register", "httpc", "httpc-1", "--addr", "127.0.0.1", "--port",
                      str(stub.port), "--check-http", stub.url("/health"), *INTERVAL)
        ok = wait_until(lambda: a_answer(d, "httpc") == ("NOERROR", ["127.0.0.1"]), 2.5, 0.05)
        check(ok, "HTTP 200: answered: %r %r" % (a_answer(d, "httpc"),
                                                 health_of(d, "httpc", "httpc-1")))
        eq(health_of(d, "httpc", "httpc-1")[0], "passing", "HTTP 200 passing")
        check(stub.hits >= 1, "the HTTP server saw the probe")

        stub.status = 429
        ok = wait_until(lambda: health_of(d, "httpc", "httpc-1")[0] == "warning", 2.0, 0.05)
        check(ok, "HTTP 429: warning: %r" % (health_of(d, "httpc", "httpc-1"),))
        eq(a_answer(d, "httpc"), ("NOERROR", ["127.0.0.1"]), "warning is still answered")

        stub.status = 500
        ok = wait_until(lambda: a_answer(d, "httpc")[0] == "NXDOMAIN", 2.0, 0.05)
        check(ok, "HTTP 500: not answered: %r %r" % (a_answer(d, "httpc"),
                                                     health_of(d, "httpc", "httpc-1")))
        health, reason = health_of(d, "httpc", "httpc-1")
        eq(health, "critical", "HTTP 500 critical")
        contains(reason, "500", "reason names the HTTP status")

        stub.status = 200
        ok = wait_until(lambda: a_answer(d, "httpc") == ("NOERROR", ["127.0.0.1"]), 2.0, 0.05)
        check(ok, "HTTP 200 again: answered again")
    finally:
        stub.close()


def refused_targets(d):
    for args, what in ((["--check-tcp", "127.0.0.2:80"], "TCP target not registered"),
                       (["--check-http", "http://127.0.0.3:80/health"],
                        "HTTP target not registered"),
                       (["--check-http", "http://example.com:80/"], "HTTP host name")):
        rc, out, err = d.regctl("register", "bad", "bad-1", "--addr", "127.0.0.1", "--port",
                                "80", *args)
        eq(rc, 1, "%s refused with exit 1 (stdout %r, stderr %r)" % (what, out, err))
        contains(err, "(field: check)", "%s: the error names the check field" % what)
    _, doc, _ = d.api("GET", "/v1/services/bad")
    eq(doc["instances"], [], "nothing registered by refused checks")
    rc, out, err = d.regctl("register", "bad", "bad-1", "--addr", "127.0.0.1", "--port", "80",
                            "--check-interval", "1s")
    eq(rc, 2, "--check-interval without a target is a usage error (%r)" % err)


def test():
    with Dnsd(config=dnsd_config(health={"deregister_after": "0s"})) as d:
        refused_targets(d)
        tcp_check(d)
        http_check(d)


main(test)
