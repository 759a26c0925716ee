#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# durability: with --data-dir, 10,000 instances registered over keep-alive connections
# survive a clean restart and are all answered in DNS right after start, none expired; a
# second dnsd on the same directory exits 1; regctl snapshot compacts; a torn journal tail
# is cut with a warning naming the offset; damage before the end refuses to start (exit 3,
# naming the offset and --repair-journal) until --repair-journal keeps the valid prefix.

import glob
import http.client
import json
import os
import shutil
import socket
import tempfile
import threading

import dns.message
import dns.rcode

from dnsdtest import Dnsd, check, contains, eq, main, run_dnsd, wait_until

D = "service.internal."
SERVICES = 100
PER_SERVICE = 100


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def request(conn, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"null")


def register_all(sock, names, errors):
    conn = UnixHTTPConnection(sock)
    for svc, iid, addr in names:
        status, doc = request(conn, "PUT", "/v1/services/%s/instances/%s" % (svc, iid),
                              {"addresses": [addr], "port": 80, "ttl": 30})
        if status != 201:
            errors.append((svc, iid, status, doc))
    conn.close()


def all_names():
    out = []
    for s in range(SERVICES):
        for i in range(PER_SERVICE):
            out.append(("svc%d" % s, "i%d" % i, "10.%d.%d.%d" % (s // 250, s % 250, i + 1)))
    return out


def dns_answers(port, names):
    """Query INSTANCE.SERVICE.D A for every name over one UDP socket; return the misses."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    missing = []
    for svc, iid, addr in names:
        q = dns.message.make_query("%s.%s.%s" % (iid, svc, D), "A")
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        r = dns.message.from_wire(s.recv(4096))
        got = [rd.address for rrset in r.answer for rd in rrset]
        if got != [addr]:
            missing.append((svc, iid, dns.rcode.to_text(r.rcode()), got))
    s.close()
    return missing


def journals(data):
    return sorted(glob.glob(os.path.join(data, "journal-*.log")))


def test_restart(data):
    names = all_names()
    with Dnsd(args=["--data-dir", data]) as d:
        errors = []
        threads = [threading.Thread(target=register_all, args=(d.sock, names[k::8], errors))
                   for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        eq(errors[:3], [], "every registration acknowledged with 201")
        status, doc, _ = d.api("GET", "/v1/health")
        eq(doc["instances"], len(names), "instances before the restart")
        p = doc["persistence"]
        eq(p["data_dir"], data, "health names the data dir")
        eq(p["fsync"], "always", "default fsync policy")
        # snapshot_every is 10,000 by default: the 10,000th record triggered a compaction,
        # whose file a worker writes in the background.
        check(wait_until(lambda: d.api("GET", "/v1/health")[1]["persistence"]
                         ["last_snapshot_ms_ago"] is not None, 10),
              "automatic snapshot taken: %r" % d.api("GET", "/v1/health")[1]["persistence"])
        eq(p["last_sync_error"], None, "no sync error")

        # A second dnsd on the same directory is refused while the first runs.
        rc, _, err = run_dnsd(["--listen", "127.0.0.1:0", "--api",
                               "unix:" + os.path.join(d.tmp, "other.sock"),
                               "--data-dir", data])
        eq(rc, 1, "second dnsd on the same data dir exits 1")
        contains(err, "locked by another process", "second dnsd says why")

    # Clean restart: everything is answered at once, nothing expired.
    with Dnsd(args=["--data-dir", data]) as d:
        contains(d.stderr_text(), "restored %d instances" % len(names), "restore is logged")
        missing = dns_answers(d.port, names)
        eq(missing[:3], [], "all %d instances answered in DNS right after start" % len(names))
        status, doc, _ = d.api("GET", "/v1/services/svc7")
        eq(len(doc["instances"]), PER_SERVICE, "svc7 instances after restart")
        lease = min(i["lease_remaining_ms"] for i in doc["instances"])
        check(lease > 25000, "restored leases got a grace of one lease: %d ms left" % lease)
        eq({i["health"] for i in doc["instances"]}, {"passing"}, "none expired or critical")

        # regctl snapshot: a new generation with an empty journal, older files deleted.
        st, _, _ = d.api("PUT", "/v1/services/extra/instances/x1",
                         {"addresses": ["192.0.2.99"], "port": 80})
        eq(st, 201, "one more registration")
        _, doc, _ = d.api("GET", "/v1/health")
        check(doc["persistence"]["journal_bytes"] > 16, "the journal holds it")
        out = d.must_regctl("snapshot")
        contains(out, "%d instances" % (len(names) + 1), "regctl snapshot output")
        _, doc, _ = d.api("GET", "/v1/health")
        eq(doc["persistence"]["journal_bytes"], 16, "journal starts afresh after a snapshot")
        # The snapshot file is written by a worker after the reply: older files go once it
        # is on disk.
        check(wait_until(lambda: len(journals(data)) == 1, 10),
              "older journals deleted: %r" % journals(data))
        _, doc, _ = d.api("GET", "/v1/health")
        check(doc["persistence"]["last_snapshot_ms_ago"] is not None, "snapshot time shown")


def test_torn_tail_and_corruption():
    data = tempfile.mkdtemp(prefix="dnsd-durability-")
    try:
        with Dnsd(args=["--data-dir", data]) as d:
            for i in range(5):
                st, _, _ = d.api("PUT", "/v1/services/web/instances/w%d" % i,
                                 {"addresses": ["192.0.2.%d" % (i + 1)], "port": 80})
                eq(st, 201, "registered w%d" % i)
        (path,) = journals(data)
        size = os.path.getsize(path)

        # Torn tail: the last record cut in the middle.
        os.truncate(path, size - 7)
        with Dnsd(args=["--data-dir", data]) as d:
            err = d.stderr_text()
            contains(err, "offset", "torn tail warning names the offset")
            _, doc, _ = d.api("GET", "/v1/services/web")
            eq(sorted(i["id"] for i in doc["instances"]), ["w0", "w1", "w2", "w3"],
               "the torn last record is dropped, the rest kept")
            r = d.query("w0.web." + D, "A")
            eq([rd.address for rs in r.answer for rd in rs], ["192.0.2.1"], "w0 in DNS")

        # Mid-file damage: flip a byte inside the first record's payload.
        with open(path, "r+b") as f:
            f.seek(16 + 8 + 3)
            b = f.read(1)
            f.seek(16 + 8 + 3)
            f.write(bytes([b[0] ^ 0xFF]))
        sock = os.path.join(data, "..", os.path.basename(data) + ".sock")
        rc, _, err = run_dnsd(["--listen", "127.0.0.1:0", "--api", "unix:" + sock,
                               "--data-dir", data])
        eq(rc, 3, "mid-file corruption exits 3")
        contains(err, "offset 16", "message names the damaged record's offset")
        contains(err, "--repair-journal", "message names the repair flag")

        with Dnsd(args=["--data-dir", data, "--repair-journal"]) as d:
            _, doc, _ = d.api("GET", "/v1/health")
            eq(doc["instances"], 0, "the valid prefix (the header only) is kept")
            check(glob.glob(path + ".damaged-*"), "damaged file moved aside")
            st, _, _ = d.api("PUT", "/v1/services/web/instances/again",
                             {"addresses": ["192.0.2.9"], "port": 80})
            eq(st, 201, "writes work after the repair")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test():
    data = tempfile.mkdtemp(prefix="dnsd-durability-")
    try:
        test_restart(os.path.join(data, "state"))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    test_torn_tail_and_corruption()


if __name__ == "__main__":
    main(test)
