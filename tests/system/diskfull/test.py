#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# diskfull: the data directory on a 64 KiB tmpfs made by the test. Once the journal cannot
# grow, writes are refused with 503 "cannot persist: ..." and GET /v1/health shows the
# error, while DNS keeps answering from memory; when space returns, the retry recovers and
# writes are accepted again; after a restart every acknowledged registration is there.
# Needs root (mount); without it the test says SKIP loudly and passes.

import os
import subprocess
import tempfile
import time

from dnsdtest import Dnsd, check, contains, eq, main, wait_until

D = "service.internal."


def put(d, i):
    st, doc, _ = d.api("PUT", "/v1/services/full/instances/i%d" % i,
                       {"addresses": ["192.0.2.%d" % (i % 250 + 1)], "port": 80,
                        "meta": {"pad": "x" * 200}})
    return st, doc


def test():
    mnt = tempfile.mkdtemp(prefix="dnsd-diskfull-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        print("diskfull: SKIP: cannot mount a tmpfs here (needs root)", flush=True)
        os.rmdir(mnt)
        return
    try:
        data = os.path.join(mnt, "data")
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * 40 * 1024)
        acked = []
        with Dnsd(args=["--data-dir", data]) as d:
            refused = None
            for i in range(400):
                st, doc = put(d, i)
                if st == 503:
                    refused = doc
                    break
                eq(st, 201, "registration %d before the disk is full" % i)
                acked.append(i)
            check(refused is not None, "a write was refused once the disk filled up")
            contains(refused["error"], "cannot persist", "503 message")
            check(len(acked) > 5, "some writes fitted: %d" % len(acked))
            st, doc = put(d, 10000)
            eq(st, 503, "further writes refused while the disk is full")
            _, h, _ = d.api("GET", "/v1/health")
            check(h["persistence"]["last_sync_error"], "health shows the error: %r" % h)
            r = d.query("i%d.full.%s" % (acked[0], D), "A")
            check(len(r.answer) == 1, "DNS still answers from memory")

            os.unlink(filler)
            check(wait_until(lambda: d.api("GET", "/v1/health")[1]["persistence"]
                             ["last_sync_error"] is None, 5.0, 0.1),
                  "the retry recovers once space returns")
            st, _ = put(d, 20000)
            eq(st, 201, "writes accepted again")
            acked.append(20000)
        with Dnsd(args=["--data-dir", data]) as d:
            _, doc, _ = d.api("GET", "/v1/services/full")
            ids = {inst["id"] for inst in doc["instances"]}
            missing = [i for i in acked if "i%d" % i not in ids]
            eq(missing, [], "every acknowledged registration survived the restart")
    finally:
        time.sleep(0.1)
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)


if __name__ == "__main__":
    main(test)
