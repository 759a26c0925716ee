#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# packaging: a release build of the tree configured for /usr installs with `cmake --install`
# (DESTDIR) every file where a Debian system expects it; the installed systemd unit passes
# `systemd-analyze verify`; the installed dnsd runs with the installed configuration and
# speaks sd_notify (READY, RELOADING, STOPPING); `cpack -G DEB` makes a package with the
# right name, version, Depends, conffiles, maintainer scripts and files; and, as root, that
# package installs with dpkg into a throw-away overlay of this system, creates the dnsd
# user, starts as that user with the configuration exactly as installed, lets members of
# the group dnsd (and only them) use regctl, and purges cleanly.

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import dnsdtest
from dnsdtest import REPO, Dnsd, check, contains, eq, main, run

PREFIX = "/usr"
# Every file the install puts down, with its mode; and the one (empty) directory.
FILES = {
    "usr/sbin/dnsd": 0o755,
    "usr/bin/regctl": 0o755,
    "usr/share/man/man8/dnsd.8": 0o644,
    "usr/share/man/man5/dnsd.conf.5": 0o644,
    "usr/share/man/man1/regctl.1": 0o644,
    "usr/lib/systemd/system/dnsd.service": 0o644,
    "usr/lib/sysusers.d/dnsd.conf": 0o644,
    "etc/dnsd/dnsd.conf": 0o644,
    "usr/share/doc/dnsd/examples/example.internal.zone": 0o644,
}
EMPTY_DIRS = {"etc/dnsd/zones": 0o755}
# Installed copies of repository files, byte for byte.
SOURCES = {
    "etc/dnsd/dnsd.conf": "dnsd/dnsd.conf.sample",
    "usr/share/doc/dnsd/examples/example.internal.zone": "zones/example.internal.zone",
    "usr/lib/sysusers.d/dnsd.conf": "tools/systemd/dnsd.sysusers",
    "usr/share/man/man8/dnsd.8": "dnsd/dnsd.8",
    "usr/share/man/man5/dnsd.conf.5": "dnsd/dnsd.conf.5",
    "usr/share/man/man1/regctl.1": "tools/regctl/regctl.1",
}
SCRIPTS = ("postinst", "prerm", "postrm")
BUILD_TIMEOUT_S = 150


def must(argv, what, timeout=60, **kw):
    rc, out, err = run(argv, timeout=timeout, **kw)
    eq(rc, 0, "%s exit status (stdout %r, stderr %r)" % (what, out[-2000:], err[-2000:]))
    return out


def tree(root):
    """{relative path: (kind 'f'|'d'|'l', permission bits)} of everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
            out[os.path.relpath(path, root)] = (kind, stat.S_IMODE(st.st_mode))
    return out


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def unit_settings(text):
    """{key: [values]} of a systemd unit file (sections merged; keys are unique here)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def conf_string(conf, key):
    m = re.search(r'^%s\s*=\s*"([^"]*)";' % re.escape(key), conf, re.M)
    check(m is not None, "dnsd.conf sets %s" % key)
    return m.group(1)


def project_version():
    m = re.search(r"^project\(dnsd VERSION ([0-9.]+)", read(os.path.join(REPO, "CMakeLists.txt")),
                  re.M)
    check(m is not None, "CMakeLists.txt has project(dnsd VERSION ...)")
    return m.group(1)


# ---------------------------------------------------------------------------------------


def build(tmp):
    """Configure and build a release tree for prefix /usr; returns the build dir."""
    b = os.path.join(tmp, "build")
    must(["cmake", "-S", REPO, "-B", b, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
          "-DCMAKE_INSTALL_PREFIX=" + PREFIX, "-DDNSD_TESTS=OFF"], "cmake configure")
    must(["cmake", "--build", b, "-j", str(os.cpu_count() or 2)], "cmake --build",
         timeout=BUILD_TIMEOUT_S)
    return b


def test_install_layout(b, dest):
    env = dict(os.environ, DESTDIR=dest)
    must(["cmake", "--install", b], "DESTDIR=%s cmake --install" % dest, env=env)
    got = tree(dest)
    files = {p: m for p, (k, m) in got.items() if k != "d"}
    eq(files, FILES, "installed files and their modes")
    dirs = {p for p, (k, _) in got.items() if k == "d"}
    for d, mode in EMPTY_DIRS.items():
        eq(got.get(d), ("d", mode), "%s is a directory with mode %o" % (d, mode))
        eq(os.listdir(os.path.join(dest, d)), [], "%s is empty" % d)
    # No other directory than those holding the files: nothing stray.
    parents = {os.path.dirname(p) for p in list(FILES) + list(EMPTY_DIRS)}
    needed = set()
    for p in parents:
        while p:
            needed.add(p)
            p = os.path.dirname(p)
    eq(dirs, needed | set(EMPTY_DIRS), "installed directories")
    for p, (_, mode) in got.items():
        check(mode & 0o022 == 0, "%s is not group or world writable (%o)" % (p, mode))
    for inst, src in SOURCES.items():
        eq(read(os.path.join(dest, inst), "rb"), read(os.path.join(REPO, src), "rb"),
           "%s is a copy of %s" % (inst, src))
    # The unit, the sysusers file and the configuration agree with each other.
    unit = unit_settings(read(os.path.join(dest, "usr/lib/systemd/system/dnsd.service")))
    conf = read(os.path.join(dest, "etc/dnsd/dnsd.conf"))
    want = {
        "Type": ["notify"],
        "ExecStart": ["/usr/sbin/dnsd -c /etc/dnsd/dnsd.conf --data-dir /var/lib/dnsd"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "User": ["dnsd"],
        "Group": ["dnsd"],
        "RuntimeDirectory": ["dnsd"],
        "RuntimeDirectoryMode": ["0750"],
        "StateDirectory": ["dnsd"],
        "StateDirectoryMode": ["0750"],
        "AmbientCapabilities": ["CAP_NET_BIND_SERVICE"],
        "CapabilityBoundingSet": ["CAP_NET_BIND_SERVICE"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "MemoryDenyWriteExecute": ["yes"],
        "SystemCallArchitectures": ["native"],
        "Restart": ["on-failure"],
        "LimitNOFILE": ["65536"],
        "WantedBy": ["multi-user.target"],
    }
    for key, value in want.items():
        eq(unit.get(key), value, "dnsd.service %s" % key)
    check("DynamicUser" not in unit, "dnsd.service has a static user, not DynamicUser")
    contains(unit.get("SystemCallFilter", []), "@system-service", "dnsd.service filter")
    exe, _, args = unit["ExecStart"][0].partition(" ")
    check(os.access(dest + exe, os.X_OK), "ExecStart %s is installed" % exe)
    words = args.split()
    conf_path = words[words.index("-c") + 1]
    check(os.path.isfile(dest + conf_path), "ExecStart's -c %s is installed" % conf_path)
    sysusers = [line.split() for line in read(os.path.join(dest, "usr/lib/sysusers.d/dnsd.conf"))
                .splitlines() if line.strip() and not line.startswith("#")]
    eq([u[:2] for u in sysusers], [["u", "dnsd"]], "sysusers.d creates the user dnsd")
    check(os.path.isdir(dest + conf_string(conf, "zones_dir")),
          "the configuration's zones_dir is installed")
    api = re.search(r'^api\s*=\s*\[\s*"unix:([^"]+)"\s*\];', conf, re.M)
    check(api is not None, "dnsd.conf has one unix: API endpoint")
    eq(os.path.dirname(api.group(1)), "/run/" + unit["RuntimeDirectory"][0],
       "the API socket lives in the unit's RuntimeDirectory")
    rc, out, _ = run(["ldd", os.path.join(dest, "usr/sbin/dnsd")])
    eq(rc, 0, "ldd dnsd")
    contains(out, "libsystemd.so", "dnsd links libsystemd (sd_notify)")


def test_unit_verifies(dest, tmp):
    """systemd-analyze verify, with the installed tree as root: checks every setting, that
    ExecStart and ExecReload exist and that the Documentation man pages are installed."""
    if shutil.which("systemd-analyze") is None:
        print("packaging: systemd-analyze not installed, unit verification skipped",
              flush=True)
        return
    root = os.path.join(tmp, "verify-root")
    shutil.copytree(dest, root, symlinks=True)
    for top in ("bin", "lib", "sbin"):  # Debian 12's merged /usr
        os.symlink("usr/" + top, os.path.join(root, top))
    os.makedirs(os.path.join(root, "usr/bin"), exist_ok=True)
    shutil.copy2("/usr/bin/kill", os.path.join(root, "usr/bin/kill"))
    units = os.path.join(root, "usr/lib/systemd/system")
    for name in os.listdir("/usr/lib/systemd/system"):  # targets the unit refers to
        if name != "dnsd.service":
            src = os.path.join("/usr/lib/systemd/system", name)
            if os.path.isfile(src) and not os.path.islink(src):
                shutil.copy2(src, units)
    env = dict(os.environ, MANPATH=os.path.join(root, "usr/share/man"))
    argv = ["systemd-analyze", "verify", "--root=" + root, "/usr/lib/systemd/system/dnsd.service"]
    rc, out, err = run(argv, env=env)
    eq((rc, err.strip()), (0, ""), "systemd-analyze verify dnsd.service (stdout %r)" % out)
    # The same harness does report a broken unit (so the clean result above means something).
    unit = os.path.join(units, "dnsd.service")
    text = read(unit)
    with open(unit, "w") as f:
        f.write(text.replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSytem=yes"))
    rc, out, err = run(argv, env=env)
    contains(err, "ProtectSytem", "systemd-analyze verify reports an unknown setting")


class NotifyListener:
    """The NOTIFY_SOCKET end of sd_notify: a datagram socket collecting messages."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def next(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


def test_installed_dnsd_runs(dest, tmp):
    """The installed dnsd, with the installed configuration (listen, api, pid file and zones
    overridden to private paths), serves the example zone and registrations made with the
    installed regctl, and reports READY, RELOADING + READY and STOPPING to NOTIFY_SOCKET."""
    dnsdtest.DNSD_BIN = os.path.join(dest, "usr/sbin/dnsd")
    dnsdtest.REGCTL_BIN = os.path.join(dest, "usr/bin/regctl")
    example = read(os.path.join(dest, "usr/share/doc/dnsd/examples/example.internal.zone"))
    notify = NotifyListener(os.path.join(tmp, "notify.sock"))
    os.environ["NOTIFY_SOCKET"] = notify.path
    try:
        d = Dnsd(args=["-c", os.path.join(dest, "etc/dnsd/dnsd.conf")],
                 zones={"example.internal.zone": example})
        d.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        eq(notify.next(), "READY=1", "first sd_notify message")
        soa = d.dig("example.internal.", "SOA")
        eq(soa.rcode, "NOERROR", "SOA of the installed example zone")
        contains(soa.rdata("SOA")[0], "hostmaster.example.internal.", "example zone SOA")
        d.must_regctl("register", "web", "web-1", "--addr", "192.0.2.10", "--port", "8080")
        eq(d.dig("web.service.internal.", "A").rdata("A"), ["192.0.2.10"],
           "a service registered with the installed regctl")

        t0 = time.monotonic_ns() // 1000
        d.send_signal(signal.SIGHUP)
        msg = notify.next()
        check(msg is not None, "sd_notify message after SIGHUP")
        m = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", msg)
        check(m is not None, "RELOADING=1 with MONOTONIC_USEC after SIGHUP: %r" % msg)
        usec = int(m.group(1))
        check(t0 <= usec <= time.monotonic_ns() // 1000,
              "MONOTONIC_USEC %d is the reload's CLOCK_MONOTONIC time (sent at %d)" % (usec, t0))
        eq(notify.next(), "READY=1", "READY=1 after the reload")
        eq(d.dig("example.internal.", "SOA").rcode, "NOERROR", "zone served after reload")

        d.stop()
        eq(notify.next(), "STOPPING=1", "sd_notify message on SIGTERM")
        eq(notify.next(timeout=0.5), None, "nothing after STOPPING=1")
    finally:
        notify.close()


def test_deb(b, dest, tmp):
    """cpack -G DEB: metadata, conffiles, maintainer scripts and the installed files."""
    out_dir = os.path.join(tmp, "deb")
    must(["cpack", "-G", "DEB", "--config", os.path.join(b, "CPackConfig.cmake"), "-B", out_dir],
         "cpack -G DEB")
    debs = [f for f in os.listdir(out_dir) if f.endswith(".deb")]
    eq(len(debs), 1, "cpack made one .deb: %r" % debs)
    deb = os.path.join(out_dir, debs[0])

    def field(name):
        return must(["dpkg-deb", "-f", deb, name], "dpkg-deb -f %s" % name).strip()

    version = project_version()
    eq(field("Package"), "dnsd", "Package")
    eq(field("Version"), version, "Version is project()'s")
    rc, out, _ = run([os.path.join(dest, "usr/sbin/dnsd"), "--version"])
    eq(out.split(), ["dnsd", version], "dnsd --version matches the package version")
    eq(field("Architecture"), must(["dpkg", "--print-architecture"], "dpkg arch").strip(),
       "Architecture")
    check(re.fullmatch(r".+ <[^@ ]+@[^> ]+>", field("Maintainer")) is not None,
          "Maintainer is NAME <EMAIL>: %r" % field("Maintainer"))
    check(field("Description").startswith("DNS-based service discovery server\n"),
          "Description has the summary as its first line")
    depends = [d.split()[0] for d in field("Depends").split(", ")]
    for pkg in ("libc6", "libsystemd0", "libuv1", "libldns3"):
        contains(depends, pkg, "Depends (computed by dpkg-shlibdeps)")
    info = must(["dpkg-deb", "-I", deb], "dpkg-deb -I")
    for name in ("conffiles",) + SCRIPTS:
        check(re.search(r"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+%s\b" % name, info, re.M),
              "dpkg-deb -I lists %s:\n%s" % (name, info))
    control = os.path.join(tmp, "control")
    must(["dpkg-deb", "-e", deb, control], "dpkg-deb -e")
    eq(read(os.path.join(control, "conffiles")).split(), ["/etc/dnsd/dnsd.conf"], "conffiles")
    for name in SCRIPTS:
        path = os.path.join(control, name)
        eq(stat.S_IMODE(os.stat(path).st_mode), 0o755, "%s mode" % name)
        eq(read(path), read(os.path.join(REPO, "tools/packaging", name)),
           "%s is tools/packaging/%s" % (name, name))
        must(["sh", "-n", path], "sh -n %s" % name)

    listing = must(["dpkg-deb", "-c", deb], "dpkg-deb -c")
    for line in listing.splitlines():
        eq(line.split()[1], "root/root", "owner of %s" % line.split()[-1])
    x = os.path.join(tmp, "deb-root")
    must(["dpkg-deb", "-x", deb, x], "dpkg-deb -x")
    got = tree(x)
    want = tree(dest)
    eq(sorted(got), sorted(want), "the package holds exactly the files cmake --install puts")
    for p, (kind, mode) in want.items():
        eq(got.get(p), (kind, mode), "%s in the package" % p)
        if kind == "f" and p not in ("usr/sbin/dnsd", "usr/bin/regctl"):  # these are stripped
            eq(read(os.path.join(x, p), "rb"), read(os.path.join(dest, p), "rb"),
               "%s in the package equals the installed one" % p)
    return deb


# The install scenario run in a private mount and network namespace (see test_deb_installs).
INSTALL_SCRIPT = r"""
set -u
T=$1
M=$T/merged
mount -t overlay overlay -o lowerdir=/,upperdir=$T/upper,workdir=$T/work $M || exit 90
mount -t proc proc $M/proc
mount --rbind /dev $M/dev
mount -t tmpfs tmpfs $M/run
mount -t tmpfs tmpfs $M/tmp
cp $T/dnsd.deb $M/tmp/dnsd.deb
ip link set lo up
exec chroot $M /bin/sh -s <<'EOF'
set -u
step() {
    name=$1
    shift
    out=$(timeout 30 "$@" 2>&1)
    printf '=== %s rc=%d\n%s\n' "$name" "$?" "$out"
}
# Leave the man-db index alone: it is slow and not ours.
rm -f /var/lib/man-db/auto-update
step install dpkg -i /tmp/dnsd.deb
step status dpkg-query -W -f '${db:Status-Abbrev}${Version}' dnsd
step conffiles dpkg-query -W -f '${Conffiles}' dnsd
step user getent passwd dnsd
step enabled readlink /etc/systemd/system/multi-user.target.wants/dnsd.service
# What systemd would do for the unit: RuntimeDirectory=dnsd (0750), User/Group=dnsd.
install -d -o dnsd -g dnsd -m 0750 /run/dnsd
setpriv --reuid=dnsd --regid=dnsd --init-groups /usr/sbin/dnsd -c /etc/dnsd/dnsd.conf \
    </dev/null >/tmp/dnsd.out 2>&1 &
pid=$!
i=0
while [ ! -S /run/dnsd/api.sock ] && [ $i -lt 100 ] && kill -0 $pid 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
step process stat -c '%U %G' /proc/$pid
step socket stat -c '%a %U %G' /run/dnsd/api.sock
useradd --no-create-home alice
useradd --no-create-home bob
usermod -a -G dnsd alice
step member setpriv --reuid=alice --regid=alice --init-groups \
    regctl register web web-1 --addr 192.0.2.10 --port 8080
step nonmember setpriv --reuid=bob --regid=bob --init-groups regctl list
step dig dig @127.0.0.1 -p 8053 +short +tries=1 +time=2 web.service.internal A
kill -TERM $pid
wait $pid
printf '=== exit rc=%d\n' "$?"
step log cat /tmp/dnsd.out
step purge dpkg --purge dnsd
step gone ls -d /etc/dnsd /usr/sbin/dnsd /usr/lib/systemd/system/dnsd.service \
    /etc/systemd/system/multi-user.target.wants/dnsd.service
step user-after getent passwd dnsd
EOF
"""


def test_deb_installs(deb, tmp):
    """dpkg -i in an overlay of this system (a private mount and network namespace, so the
    real system is untouched), then dnsd started the way the unit starts it."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("packaging: not root (or no unshare), dpkg install scenario skipped", flush=True)
        return
    t = os.path.join(tmp, "overlay")
    for d in ("upper", "work", "merged"):
        os.makedirs(os.path.join(t, d))
    shutil.copy2(deb, os.path.join(t, "dnsd.deb"))
    script = os.path.join(tmp, "install.sh")
    with open(script, "w") as f:
        f.write(INSTALL_SCRIPT)
    rc, out, err = run(["unshare", "--mount", "--net", "--fork", "sh", script, t], timeout=120)
    check(rc != 90, "overlay mount of / failed: %s" % err)
    eq(rc, 0, "install scenario (stdout %r, stderr %r)" % (out, err))
    steps = {}
    for m in re.finditer(r"^=== (\S+) rc=(\d+)\n(.*?)(?=^=== |\Z)", out, re.M | re.S):
        steps[m.group(1)] = (int(m.group(2)), m.group(3).strip())

    def step(name):
        check(name in steps, "install scenario ran step %s:\n%s" % (name, out))
        return steps[name]

    rc, text = step("install")
    eq(rc, 0, "dpkg -i (output %r)" % text)
    eq(step("status"), (0, "ii " + project_version()), "dpkg status after install")
    rc, text = step("conffiles")
    eq([line.split()[0] for line in text.splitlines()], ["/etc/dnsd/dnsd.conf"],
       "dpkg records the conffile")
    rc, text = step("user")
    eq(rc, 0, "postinst created the user dnsd")
    fields = text.split(":")
    eq((fields[0], fields[6]), ("dnsd", "/usr/sbin/nologin"), "the dnsd user")
    check(int(fields[2]) < 1000, "dnsd is a system user (uid %s)" % fields[2])
    eq(step("enabled"), (0, "/lib/systemd/system/dnsd.service"),
       "postinst enabled dnsd.service (deb-systemd-helper)")
    rc, text = step("process")
    eq((rc, text), (0, "dnsd dnsd"), "dnsd runs as dnsd:dnsd")
    eq(step("socket"), (0, "660 dnsd dnsd"), "API socket mode and owner")
    rc, text = step("member")
    eq(rc, 0, "regctl as a member of the group dnsd (%r)" % text)
    rc, text = step("nonmember")
    eq(rc, 3, "regctl as a user outside the group dnsd cannot reach dnsd (%r)" % text)
    eq(step("dig"), (0, "192.0.2.10"), "dig answers from the installed dnsd")
    rc, log = step("log")
    eq(step("exit")[0], 0, "dnsd exit status after SIGTERM (log %r)" % log)
    check(" error" not in log.lower() and "warn" not in log.lower(),
          "no warning or error in dnsd's log: %r" % log)
    rc, text = step("purge")
    eq(rc, 0, "dpkg --purge (output %r)" % text)
    rc, text = step("gone")
    check(rc != 0 and "dnsd" in text and "/etc/dnsd" in text and text.count("No such") == 4,
          "purge removes the files, the configuration and the enablement: %r" % text)
    eq(step("user-after")[0], 0, "the dnsd user stays after purge (Debian policy)")


def all_tests():
    tmp = tempfile.mkdtemp(prefix="dnsd-packaging-")
    try:
        b = build(tmp)
        dest = os.path.join(tmp, "destdir")
        test_install_layout(b, dest)
        test_unit_verifies(dest, tmp)
        test_installed_dnsd_runs(dest, tmp)
        deb = test_deb(b, dest, tmp)
        test_deb_installs(deb, tmp)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", tmp], check=False)


if __name__ == "__main__":
    main(all_tests)
