# SPDX-License-Identifier: BSD-2-Clause
# allowlist: allowed_addresses limits the addresses a registration may claim (issue 6). An
# address inside a listed network registers (201); one outside every network gets 403
# {"error":"address A is not in allowed_addresses","field":"addresses"} and changes
# nothing (no instance, an existing instance keeps its addresses, DNS unchanged); regctl
# prints the message and exits 1. After the list is narrowed, a restart removes the
# restored instances it no longer allows (with a warning), and the removal is kept: a
# second restart does not bring them back. A bad network in the config stops dnsd with
# exit 2.

import os
import shutil
import tempfile

from dnsdtest import (Dnsd, a_answer, check, contains, eq, instance_doc, main, run_dnsd,
                      write_file)

CONFIG = 'allowed_addresses = [ "127.0.0.0/8", "2001:db8:1::/48", "192.0.2.7" ];\n'


def put(d, iid, *addrs):
    return d.api("PUT", "/v1/services/web/instances/%s" % iid,
                 {"addresses": list(addrs), "port": 8080, "ttl": 300})


def refused(d, iid, bad, *addrs):
    status, doc, _ = put(d, iid, *addrs)
    eq((status, doc), (403, {"error": "address %s is not in allowed_addresses" % bad,
                             "field": "addresses"}),
       "PUT %s %r refused" % (iid, addrs))


def test_registrations():
    with Dnsd(config=CONFIG) as d:
        status, doc, _ = put(d, "in-1", "127.0.0.5", "2001:db8:1::5")
        eq(status, 201, "addresses inside the allowed networks: 201 (%r)" % doc)
        status, doc, _ = put(d, "host-1", "192.0.2.7")
        eq(status, 201, "a single allowed host: 201 (%r)" % doc)
        status, doc, _ = put(d, "mapped-1", "::ffff:127.0.0.9")
        eq(status, 201, "an IPv4-mapped address inside 127.0.0.0/8: 201 (%r)" % doc)
        eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.5", "192.0.2.7"]), "allowed are served")

        refused(d, "out-1", "203.0.113.9", "203.0.113.9")
        refused(d, "out-2", "192.0.2.8", "127.0.0.6", "192.0.2.8")
        refused(d, "out-3", "2001:db8:2::5", "2001:db8:2::5")
        refused(d, "out-4", "::ffff:10.0.0.1", "::ffff:10.0.0.1")
        for iid in ("out-1", "out-2", "out-3", "out-4"):
            eq(instance_doc(d, "web", iid), None, "%s is not registered" % iid)
        status, doc, _ = d.api("GET", "/v1/services/other")
        eq((status, doc["instances"]), (200, []), "a refused service stays empty")
        refused_svc = d.api("PUT", "/v1/services/other/instances/o1",
                            {"addresses": ["198.51.100.1"], "port": 80})
        eq(refused_svc[0], 403, "PUT of a new service outside the list")
        status, doc, _ = d.api("GET", "/v1/services/other")
        eq((status, doc["instances"]), (200, []), "GET shows no instance after the refusal")

        # Replacing an existing instance with an outside address leaves it as it was.
        refused(d, "in-1", "203.0.113.9", "127.0.0.5", "203.0.113.9")
        eq(instance_doc(d, "web", "in-1")["addresses"], ["127.0.0.5", "2001:db8:1::5"],
           "the existing instance keeps its addresses")
        eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.5", "192.0.2.7"]), "DNS unchanged")

        rc, out, err = d.regctl("register", "web", "cli-1", "--addr", "203.0.113.9",
                                "--port", "80")
        eq(rc, 1, "regctl: the server refused: exit 1 (stdout %r, stderr %r)" % (out, err))
        contains(err, "address 203.0.113.9 is not in allowed_addresses", "regctl prints it")
        eq(instance_doc(d, "web", "cli-1"), None, "regctl's refused instance is absent")
        d.must_regctl("register", "web", "cli-2", "--addr", "127.0.0.8", "--port", "80")


def test_narrowed_after_restart():
    data = tempfile.mkdtemp(prefix="dnsd-systest-data-")
    try:
        with Dnsd(args=["--data-dir", data]) as d:
            eq(put(d, "kept", "127.0.0.5")[0], 201, "registered while any address is allowed")
            eq(put(d, "gone", "127.0.0.6", "203.0.113.9")[0], 201, "so is this one")
            eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.5", "127.0.0.6", "203.0.113.9"]),
               "both served")
        with Dnsd(config=CONFIG, args=["--data-dir", data]) as d:
            eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.5"]),
               "the instance outside the narrowed list is not served after the restart")
            eq(instance_doc(d, "web", "gone"), None, "nor listed by the API")
            check(instance_doc(d, "web", "kept") is not None, "the allowed one stays")
            contains(d.stderr_text(), "web/gone removed at start-up: it claims 203.0.113.9, "
                     "outside allowed_addresses", "a warning names it and the address")
        with Dnsd(args=["--data-dir", data]) as d:
            eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.5"]),
               "the removal was journaled: widening the list again does not restore it")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_bad_config():
    tmp = tempfile.mkdtemp(prefix="dnsd-systest-")
    try:
        conf = os.path.join(tmp, "dnsd.conf")
        cases = [
            ('allowed_addresses = [ "10.0.0.1/8" ];\n', "allowed_addresses[0]: '10.0.0.1/8'"),
            ('allowed_addresses = [ "10.0.0.0/8", "example.com" ];\n',
             "allowed_addresses[1]: 'example.com'"),
            ('allowed_addresses = [ "::/129" ];\n', "allowed_addresses[0]: '::/129'"),
            ("allowed_addresses = [ ];\n", "allowed_addresses: must not be empty"),
            ("allowed_addresses = [ 10 ];\n", "allowed_addresses[0]: must be a string"),
        ]
        for text, want in cases:
            write_file(conf, text)
            rc, _, err = run_dnsd(["-c", conf, "--listen", "127.0.0.1:0", "--api",
                                   "unix:" + os.path.join(tmp, "api.sock")])
            eq(rc, 2, "%r: configuration error, exit 2 (stderr %r)" % (text, err))
            contains(err, conf + ":1: " + want, "%r: the message names file, line and entry"
                     % text)
            check(not os.path.exists(os.path.join(tmp, "api.sock")), "nothing opened")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test():
    test_registrations()
    test_narrowed_after_restart()
    test_bad_config()


main(test)
