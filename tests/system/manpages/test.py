#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# manpages: dnsd(8), dnsd.conf(5) and regctl(1) render with groff -ww and no warning on the
# utf8 and ascii devices, and stay in sync with the code: every option of dnsd --help is in
# dnsd.8, every command and option of regctl --help and regctl COMMAND --help is in
# regctl.1, every option of dnsd.conf.sample is in dnsd.conf.5 with the sample's default
# (and nothing else is), the EXAMPLE configuration loads, and the regctl EXAMPLES print
# what the page shows when run against a real dnsd.

import json
import os
import re
import shlex

from dnsdtest import (DNSD_BIN, REGCTL_BIN, REPO, Dnsd, check, contains, eq, main, rrs, run,
                      run_dnsd)

PAGES = {
    "dnsd.8": os.path.join(REPO, "dnsd", "dnsd.8"),
    "dnsd.conf.5": os.path.join(REPO, "dnsd", "dnsd.conf.5"),
    "regctl.1": os.path.join(REPO, "tools", "regctl", "regctl.1"),
}
SAMPLE = os.path.join(REPO, "dnsd", "dnsd.conf.sample")
# A long option as it is written: --name, not part of a longer word or option.
LONG_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w-])")
SHORT_OPTION = re.compile(r"(?<![\w-])-[a-zA-Z](?![\w-])")


def groff(path, device, *extra):
    """Render path with groff's man macros; returns (rc, stdout, stderr)."""
    env = dict(os.environ, GROFF_NO_SGR="1", LC_ALL="C.UTF-8")
    argv = ["groff", "-ww", "-man", "-T" + device] + list(extra) + [path]
    return run(argv, env=env)


def plain_text(path):
    """The page as a reader sees it, one paragraph per line where possible: no hyphenation,
    very long lines, no bold or underline overstrikes."""
    rc, out, err = groff(path, "ascii", "-rHY=0", "-rLL=1000n", "-P-b", "-P-o", "-P-u")
    eq(rc, 0, "groff -Tascii %s exit status (stderr %r)" % (path, err))
    return out


def sections(text):
    """Map SECTION HEADING -> its text, for rendered man output."""
    out = {}
    name = None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]+$", line):
            name = line.strip()
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def has_option(text, opt):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text) is not None


def squeeze(s):
    return " ".join(s.split())


# ---------------------------------------------------------------------------------------


def test_render_without_warnings():
    for name, path in PAGES.items():
        check(os.path.isfile(path), "%s exists at %s" % (name, path))
        for device in ("utf8", "ascii"):
            rc, out, err = groff(path, device, "-z")
            eq(rc, 0, "groff -ww -man -T%s -z %s exit status" % (device, name))
            eq(err.strip(), "", "groff -ww -man -T%s warnings for %s" % (device, name))
        text = plain_text(path)
        for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            check(re.search(r"^%s$" % heading, text, re.M) is not None,
                  "%s has a %s section" % (name, heading))


def test_version_matches():
    rc, out, _ = run_dnsd(["--version"])
    eq(rc, 0, "dnsd --version exit status")
    version = out.split()[-1]
    for name, path in PAGES.items():
        with open(path) as f:
            th = [line for line in f if line.startswith(".TH ")]
        eq(len(th), 1, "%s has one .TH line" % name)
        contains(th[0], '"dnsd %s"' % version, "%s .TH names the version of dnsd" % name)


def test_dnsd_options():
    rc, helptext, _ = run_dnsd(["--help"])
    eq(rc, 0, "dnsd --help exit status")
    longs = sorted(set(LONG_OPTION.findall(helptext)))
    shorts = sorted(set(SHORT_OPTION.findall(helptext)))
    check(len(longs) >= 9, "dnsd --help lists its long options: %r" % longs)
    text = sections(plain_text(PAGES["dnsd.8"]))
    for heading in ("OPTIONS", "SIGNALS", "FILES", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES",
                    "STANDARDS"):
        check(heading in text, "dnsd.8 has a %s section" % heading)
    options = text.get("OPTIONS", "")
    synopsis = text.get("SYNOPSIS", "")
    for opt in longs + shorts:
        check(has_option(options, opt), "dnsd.8 OPTIONS describes %s" % opt)
        if opt not in ("--help", "--version", "-h", "--config"):
            check(has_option(synopsis, opt) or opt == "--config",
                  "dnsd.8 SYNOPSIS shows %s" % opt)
    # And nothing that dnsd no longer has.
    for opt in set(LONG_OPTION.findall(options)):
        check(opt in longs, "dnsd.8 OPTIONS describes %s, which dnsd --help does not know"
              % opt)
    for sig in ("SIGTERM", "SIGINT", "SIGHUP"):
        contains(helptext, sig, "dnsd --help names %s" % sig)
        contains(text.get("SIGNALS", ""), sig, "dnsd.8 SIGNALS describes %s" % sig)
    for f in ("/etc/dnsd/dnsd.conf", "/etc/dnsd/zones", "/run/dnsd/api.sock"):
        contains(text.get("FILES", ""), f, "dnsd.8 FILES lists %s" % f)
    for code in ("0", "1", "2"):
        check(re.search(r"^\s+%s\s" % code, text.get("EXIT STATUS", ""), re.M) is not None,
              "dnsd.8 EXIT STATUS describes status %s" % code)
    for ref in ("dnsd.conf(5)", "regctl(1)", "dig(1)"):
        contains(text.get("SEE ALSO", ""), ref, "dnsd.8 SEE ALSO")


def regctl_help(*args):
    rc, out, err = run([REGCTL_BIN] + list(args) + ["--help"])
    eq(rc, 0, "regctl %s --help exit status (stderr %r)" % (" ".join(args), err))
    return out


def test_regctl_commands_and_options():
    usage = regctl_help()
    block = usage.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    commands = re.findall(r"^  ([a-z]+)\b", block, re.M)
    check(len(commands) >= 8, "regctl --help lists its commands: %r" % commands)
    text = sections(plain_text(PAGES["regctl.1"]))
    for heading in ("COMMANDS", "GLOBAL OPTIONS", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES"):
        check(heading in text, "regctl.1 has a %s section" % heading)
    cmd_text = text.get("COMMANDS", "")
    # Each command heads its own entry: a line "       COMMAND ..." at the tag indent.
    entries = {}
    current = None
    for line in cmd_text.splitlines():
        m = re.match(r"^ {7}([a-z]+)\b", line)
        if m:
            current = m.group(1)
            entries[current] = []
        if current is not None:
            entries[current].append(line)
    entries = {k: "\n".join(v) for k, v in entries.items()}
    eq(sorted(entries), sorted(commands), "regctl.1 COMMANDS entries vs regctl --help")
    global_block = usage.split("global options", 1)[1].split("\n\n", 1)[0]
    global_opts = set(LONG_OPTION.findall(global_block))
    for opt in set(LONG_OPTION.findall(usage)):
        check(has_option(cmd_text + text.get("GLOBAL OPTIONS", ""), opt),
              "regctl.1 describes %s of regctl --help" % opt)
    for opt in global_opts:
        check(has_option(text.get("GLOBAL OPTIONS", ""), opt),
              "regctl.1 GLOBAL OPTIONS describes %s" % opt)
    check({"--api", "--json", "--timeout", "--help", "--version"} <= global_opts,
          "regctl --help lists the global options: %r" % sorted(global_opts))
    for cmd in commands:
        own = set(LONG_OPTION.findall(regctl_help(cmd))) - global_opts
        for opt in sorted(own):
            check(has_option(entries.get(cmd, ""), opt),
                  "regctl.1 describes %s under %s" % (opt, cmd))
        for opt in set(LONG_OPTION.findall(entries.get(cmd, ""))) - global_opts:
            check(opt in own, "regctl.1 gives %s an option %s that regctl %s --help lacks"
                  % (cmd, opt, cmd))
    contains(text.get("ENVIRONMENT", ""), "DNSD_API", "regctl.1 ENVIRONMENT")
    contains(usage, "DNSD_API", "regctl --help names DNSD_API")
    codes = re.findall(r"(\d) [a-z]", usage.split("exit status:", 1)[1])
    eq(codes, ["0", "1", "2", "3"], "regctl --help exit codes")
    for code in codes:
        check(re.search(r"^\s+%s\s" % code, text.get("EXIT STATUS", ""), re.M) is not None,
              "regctl.1 EXIT STATUS describes status %s" % code)


def sample_options():
    """[(dotted name, value text)] for every setting of dnsd.conf.sample, and the groups."""
    opts, groups, stack = [], [], []
    with open(SAMPLE) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line == "};":
                stack.pop()
                continue
            m = re.match(r"^([a-z_][a-z0-9_]*)\s*=\s*(.*?)\s*$", line)
            check(m is not None, "dnsd.conf.sample line parses: %r" % line)
            name, value = m.group(1), m.group(2)
            if value == "{":
                stack.append(name)
                groups.append(".".join(stack))
                continue
            check(value.endswith(";"), "dnsd.conf.sample setting ends with ';': %r" % line)
            opts.append((".".join(stack + [name]), value[:-1].strip()))
    eq(stack, [], "dnsd.conf.sample groups are closed")
    return opts, groups


def test_conf_options():
    opts, groups = sample_options()
    check(len(opts) >= 30, "dnsd.conf.sample has its options: %d" % len(opts))
    text = sections(plain_text(PAGES["dnsd.conf.5"]))
    check("OPTIONS" in text and "EXAMPLE" in text, "dnsd.conf.5 has OPTIONS and EXAMPLE")
    # Entries of OPTIONS: a tag line at the 7-column indent, then its indented body.
    entries = {}
    current = None
    for line in text.get("OPTIONS", "").splitlines():
        m = re.match(r"^ {7}([a-z_][a-z0-9_.]*)(?: +(.*)|$)", line)
        if m:
            current = m.group(1)
            entries[current] = [m.group(2) or ""]
        elif re.match(r"^ {3}\S", line):
            current = None  # a subsection heading
        elif current is not None:
            entries[current].append(line)
    entries = {k: squeeze(" ".join(v)) for k, v in entries.items()}
    names = [n for n, _ in opts]
    eq(sorted(entries), sorted(names), "dnsd.conf.5 option entries vs dnsd.conf.sample")
    for name, value in opts:
        contains(entries.get(name, ""), "Default: %s" % squeeze(value),
                 "dnsd.conf.5 %s gives the sample's default" % name)
    for group in groups:
        contains(text.get("OPTIONS", ""), "(group %s)" % group, "dnsd.conf.5 names a group")
    for ref in ("dnsd(8)", "regctl(1)"):
        contains(text.get("SEE ALSO", ""), ref, "dnsd.conf.5 SEE ALSO")


def test_conf_example_loads():
    """The EXAMPLE of dnsd.conf.5 is a working configuration: dnsd starts with it (its
    listen, api, pid_file and zones_dir overridden on the command line) and serves the
    domain and SOA it sets."""
    example = sections(plain_text(PAGES["dnsd.conf.5"])).get("EXAMPLE", "")
    lines = example.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("#"))
    indent = len(lines[start]) - len(lines[start].lstrip())
    conf = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        conf.append(line[indent:])
    conf = "\n".join(conf).strip() + "\n"
    m = re.search(r'^domain = "([^"]+)";', conf, re.M)
    check(m is not None, "the example sets domain: %r" % conf)
    domain = m.group(1)
    m = re.search(r'rname = "([^"]+)";', conf)
    check(m is not None, "the example sets soa.rname")
    rname = m.group(1)
    with Dnsd(config=conf, zones={}) as d:
        reply = d.query(domain, "SOA")
        soa = rrs(reply, "SOA")
        eq(len(soa), 1, "SOA of %s under the example configuration" % domain)
        eq(soa[0].split()[1], rname, "SOA RNAME is the example's soa.rname")
        d.put_instance("web", "web-1", addresses=["127.0.0.10"], port=8080)
        eq(rrs(d.query("web." + domain, "A"), "A"), ["127.0.0.10"],
           "a registered service is served under the example's domain")


def test_regctl_examples_run():
    """Every '$ regctl' line of regctl.1 EXAMPLES that shows its output prints exactly that
    output against a real dnsd with default leases."""
    example = sections(plain_text(PAGES["regctl.1"])).get("EXAMPLES", "")
    steps = []  # [command, expected output lines]; none shown means nothing to compare
    current = None
    for line in example.splitlines():
        s = line.strip()
        if s.startswith("$ "):
            current = [s[2:], []]
            steps.append(current)
        elif not s:
            current = None  # a blank line ends an example
        elif current is not None and current[0].endswith("\\"):
            current[0] = current[0][:-1] + " " + s  # a continued command line
        elif current is not None:
            current[1].append(s)
    compared = 0
    with Dnsd() as d:
        for cmd, want in steps:
            argv = shlex.split(cmd)
            if argv[0] != "regctl" or not want:
                continue  # export, and commands shown without their output
            rc, out, err = d.regctl(*argv[1:])
            eq(rc, 0, "example '%s' exit status (stderr %r)" % (cmd, err))
            eq([squeeze(x) for x in out.splitlines()], [squeeze(x) for x in want],
               "example '%s' output" % cmd)
            compared += 1
        check(compared >= 8, "regctl.1 EXAMPLES has commands with their output: %d" % compared)
        # The example shown without output must at least work.
        rc, out, err = d.regctl("--json", "list", "web")
        eq(rc, 0, "regctl --json list web exit status")
        eq(json.loads(out).get("service"), "web", "regctl --json list web prints JSON")


def test_install_rules():
    """cmake --install puts each page in its man section directory."""
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        cmake = f.read()
    contains(cmake, "include(GNUInstallDirs)", "CMakeLists.txt")
    for page, rel in (("dnsd.8", "dnsd/dnsd.8"), ("dnsd.conf.5", "dnsd/dnsd.conf.5"),
                      ("regctl.1", "tools/regctl/regctl.1")):
        section = page.rsplit(".", 1)[1]
        check(re.search(r"install\(FILES %s DESTINATION \$\{CMAKE_INSTALL_MANDIR\}/man%s\)"
                        % (re.escape(rel), section), cmake) is not None,
              "CMakeLists.txt installs %s into man%s" % (page, section))


def all_tests():
    check(os.access(DNSD_BIN, os.X_OK), "dnsd binary at %s" % DNSD_BIN)
    check(os.access(REGCTL_BIN, os.X_OK), "regctl binary at %s" % REGCTL_BIN)
    test_render_without_warnings()
    test_version_matches()
    test_dnsd_options()
    test_regctl_commands_and_options()
    test_conf_options()
    test_install_rules()
    test_conf_example_loads()
    test_regctl_examples_run()


if __name__ == "__main__":
    main(all_tests)
