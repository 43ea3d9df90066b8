#!/usr/bin/env python3
"""dockhand benchmark: the five tools side by side with the tools they replace.

Run by bench/run.sh (make bench), which installs the peers first. Writes bench/RESULTS.md and
bench/results.svg. Python standard library only. Every number comes from running the real
commands on this machine in this run; a dockhand command that fails its check run is reported
as FAILED with its message, never timed. See the README section "Benchmark".
"""

import argparse
import datetime
import glob
import hashlib
import http.server
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

sys.dont_write_bytecode = True  # no __pycache__ in the repo
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure as m  # noqa: E402
import report as rp  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = "/var/cache/dockhand"
WHEELS = CACHE + "/wheels"
# torch and the NVIDIA CUDA wheels it depends on, pinned (bench/run.sh downloads them once).
TORCH_WHEELS = CACHE + "/wheels-torch"
NOBODY = 65534
TOOLS = ["runas", "healthcheck", "waitfor", "ready", "ldcheck"]


def read_budgets():
    """Size budgets in bytes per tool, from scripts/budgets (the table make dist enforces too)."""
    out = {}
    with open(os.path.join(REPO, "scripts", "budgets")) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if words:
                out[words[0]] = int(words[1])
    missing = [t for t in TOOLS if t not in out]
    if missing:
        sys.exit("bench: scripts/budgets has no budget for %s" % ", ".join(missing))
    return out


BUDGET = read_budgets()
CHOWN_ENTRIES = 200_000
T0 = time.monotonic()


def log(msg):
    print("bench: [%4.0fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def which(name):
    for d in m.ENV["PATH"].split(":"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


class Ctx:
    """What every section needs: where the binaries are, a scratch dir, the run's settings."""

    def __init__(self, bin_dir, workdir, quick):
        self.bin_dir = bin_dir
        self.workdir = workdir
        self.quick = quick
        self.root = os.geteuid() == 0
        self.targets = []  # (tool, target, measured, status)
        self.sections = []  # (title, markdown)
        self.chart = []  # svg_chart groups
        self.tool_rows = {}  # tool -> [Cmd] measured anywhere, for the "works" column

    def shown_bin(self, name):
        p = os.path.join(self.bin_dir, name)
        rel = os.path.relpath(p, REPO)
        return p if rel.startswith("..") else rel

    def tool(self, name, args, label=None, check_args=None, **kw):
        path = os.path.join(self.bin_dir, name)
        missing = None if os.access(path, os.X_OK) else "no %s in %s" % (name, self.bin_dir)
        c = m.Cmd(label or name, [path] + args, role="dockhand", missing=missing,
                  shown=shlex.join([self.shown_bin(name)] + args), **kw)
        if check_args is not None:
            c.check_argv = [path] + check_args
        self.tool_rows.setdefault(name, []).append(c)
        return c

    def rounds(self, n, quick_n):
        return quick_n if self.quick else n


def peer(name, args, pkg, label=None, check_args=None, **kw):
    """A peer command from Debian's packages, run by absolute path and shown by name."""
    path = which(name)
    missing = None if path else "%s not installed (Debian package %s)" % (name, pkg)
    c = m.Cmd(label or name, [path or name] + args, missing=missing, shown=shlex.join([name] + args), **kw)
    if check_args is not None:
        c.check_argv = [path or name] + check_args
    return c


def needs_root(ctx, cmds):
    if not ctx.root:
        for c in cmds:
            c.missing = c.missing or "needs root (run make bench as root)"


def group_bars(cmds, best, value=lambda c: c.median_ms()):
    bars = []
    for c in cmds:
        if c.ok and best and value(c) is not None and value(best):
            bars.append((c.label, value(c) / value(best), c.role, "(best peer)" if c is best else ""))
        elif c.ok:
            bars.append((c.label, None, c.role, "no peer ran"))
        else:
            bars.append((c.label, None, c.role, c.status_text()))
    return bars


def tick(limit, ref, best, value=lambda c: c.median_ms()):
    """A target "<= limit x ref" as a ratio to the group's best peer (what the chart plots)."""
    if not ref.ok or not best or value(ref) is None:
        return None
    return limit * value(ref) / value(best)


def ratio_target(ctx, tool, desc, cmd, peer_cmd, limit, value=lambda c: c.median_ms(), fmt=rp.fmt_ms):
    """Target: value(cmd) <= limit * value(peer_cmd)."""
    if cmd.missing:
        ctx.targets.append((tool, desc, cmd.status_text(), "missing"))
    elif not cmd.ok:
        ctx.targets.append((tool, desc, "dockhand command " + cmd.status_text(), "FAILED"))
    elif not peer_cmd.ok:
        ctx.targets.append((tool, desc, "peer " + peer_cmd.status_text(), "not measured"))
    else:
        r = value(cmd) / value(peer_cmd)
        ctx.targets.append((tool, desc, "%s (%s vs %s)" % (rp.fmt_ratio(r), fmt(value(cmd)), fmt(value(peer_cmd))),
                            "met" if r <= limit else "missed"))


def abs_target(ctx, tool, desc, cmd, value, limit, text):
    if cmd.missing:
        ctx.targets.append((tool, desc, cmd.status_text(), "missing"))
    elif not cmd.ok:
        ctx.targets.append((tool, desc, "dockhand command " + cmd.status_text(), "FAILED"))
    else:
        v = value(cmd)
        ctx.targets.append((tool, desc, text(v), "met" if v <= limit else "missed"))


# --- binary sizes -----------------------------------------------------------------------------


def closure(path):
    """The file and every file ldd resolves for it: ([(path, bytes)], what ldd was run on).

    A script counts with its interpreter and the interpreter's libraries.
    """
    files = [os.path.realpath(path)]
    target = path
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n")[0].decode().split()
        interp = words[0]
        if os.path.basename(interp) == "env" and len(words) > 1:
            interp = which(words[1]) or words[1]
        target = interp
        files.append(os.path.realpath(interp))
    p = subprocess.run(["ldd", target], capture_output=True, text=True, env=m.ENV)
    for line in p.stdout.splitlines():
        line = line.strip()
        lib = None
        if "=>" in line:
            lib = line.split("=>", 1)[1].strip().split(" (")[0].strip()
        elif line.startswith("/"):
            lib = line.split(" (")[0].strip()
        if lib and lib.startswith("/"):
            files.append(os.path.realpath(lib))
    seen, out = set(), []
    for f in files:
        if f not in seen and os.path.exists(f):
            seen.add(f)
            out.append((f, os.path.getsize(f)))
    return out, target


SIZE_PEERS = [  # name, package, note
    ("gosu", "gosu", ""),
    ("setpriv", "util-linux", ""),
    ("tini-static", "tini", ""),
    ("tini", "tini", ""),
    ("catatonit", "catatonit", ""),
    ("dumb-init", "dumb-init", ""),
    ("busybox", "busybox-static", "all applets, wget among them"),
    ("curl", "curl", ""),
    ("wget", "wget", ""),
    ("wait-for-it", "wait-for-it", "a bash script: counted with bash"),
    ("libtree", "libtree", ""),
    ("lddtree", "pax-utils", "a Python script: counted with python3, not Python's library or pyelftools"),
]
REPLACES = {
    "runas": ["gosu", "setpriv", "tini-static", "catatonit", "dumb-init"],
    "healthcheck": ["busybox", "curl", "wget"],
    "waitfor": ["wait-for-it"],
    "ready": [],
    "ldcheck": ["libtree", "lddtree"],
}


def sec_sizes(ctx):
    log("sizes")
    peers = {}
    prow = []
    for name, pkg, note in SIZE_PEERS:
        path = which(name)
        if not path:
            prow.append([name, "-", "-", "-", "missing: not installed (Debian package %s)" % pkg])
            continue
        files, lddtarget = closure(path)
        total = sum(b for _, b in files)
        peers[name] = total
        what = "%s alone" % path if len(files) == 1 else "%s + %d files ldd resolves" % (path, len(files) - 1)
        if note:
            what += " (%s)" % note
        prow.append([name, rp.fmt_kb(os.path.getsize(path)), rp.fmt_kb(total), rp.cell(what),
                     rp.code("ldd " + lddtarget)])
    trow, bars = [], []
    for t in TOOLS:
        path = os.path.join(ctx.bin_dir, t)
        if not os.path.exists(path):
            trow.append(["**%s**" % t, "-", "-", "-", "-", "-", "missing: no %s in %s" % (t, ctx.bin_dir)])
            bars.append((t, None, "dockhand", "missing"))
            continue
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        budget = BUDGET[t]
        against = [(peers[p], p) for p in REPLACES[t] if p in peers]
        if against:
            best, bname = min(against)
            ratio = "%s (vs %s, %s)" % (rp.fmt_ratio(size / best), bname, rp.fmt_kb(best))
            bars.append((t + " vs " + bname, size / best, "dockhand", ""))
        else:
            ratio = "no peer in Debian" if not REPLACES[t] else "no peer installed"
        within = "yes" if size <= budget else "NO"
        trow.append(["**%s**" % t, rp.fmt_kb(size), rp.fmt_kb(budget), within, ratio, digest, "(see below)"])
        ctx.targets.append((t, "size <= %d kB (scripts/budgets)" % (BUDGET[t] // 1000), rp.fmt_kb(size),
                            "met" if size <= budget else "missed"))

    def render():
        # Whether each tool worked in this run, from its rows in the other sections.
        for row in trow:
            t = row[0].strip("*")
            cmds = ctx.tool_rows.get(t, [])
            if row[-1] != "(see below)":
                continue
            if not cmds:
                row[-1] = "not exercised in this run"
            elif all(not c.ok for c in cmds):
                row[-1] = "did not work in any row of this run: sizes are of a non-working build"
            elif any(not c.ok for c in cmds):
                row[-1] = "worked in %d of %d rows" % (sum(c.ok for c in cmds), len(cmds))
            elif len(cmds) == 1:
                row[-1] = "worked in its one row"
            else:
                row[-1] = "worked in all %d rows" % len(cmds)
        md = ["Sizes in kB (1000 bytes), of the files as installed. The dockhand binaries are fully "
              "static: nothing else is loaded. Dynamic peers are counted with every shared library `ldd` "
              "resolves for them (the sum of the resolved files), because an image must ship those too.",
              "",
              rp.table(["tool", "size", "budget", "within budget", "ratio to the smallest peer it replaces",
                        "sha256", "this build"], trow),
              "",
              rp.table(["peer", "binary", "with shared libraries", "counted", "command"], prow)]
        return "\n".join(md)

    ctx.sections.append(("Binary sizes", render))
    ctx.chart.append(("Binary size (static dockhand vs peer with its libraries)", bars, None))


# --- exec overhead ----------------------------------------------------------------------------


def hyperfine_cross_check(ctx, cmds, rounds, runs):
    """Time the commands again with hyperfine -N in rotated rounds; pooled median in extra."""
    hf = which("hyperfine")
    live = [c for c in cmds if c.ok]
    if not hf or not live:
        return
    pooled = {id(c): [] for c in live}
    out = os.path.join(ctx.workdir, "hyperfine.json")
    for i in range(rounds):
        order = live[i % len(live):] + live[: i % len(live)]
        argv = [hf, "-N", "--style", "none", "--warmup", "10", "--runs", str(runs), "--export-json", out]
        argv += [shlex.join(c.argv) for c in order]
        p = subprocess.run(argv, env=m.ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            log("  hyperfine failed: " + (p.stderr.strip().splitlines() or ["?"])[-1])
            return
        with open(out) as f:
            data = json.load(f)
        for res, c in zip(data["results"], order):
            pooled[id(c)].extend(res["times"])
    for c in live:
        c.extra["hyperfine"] = statistics.median(pooled[id(c)]) * 1000
        c.extra["hyperfine_n"] = len(pooled[id(c)])


def hf_col(c):
    if "hyperfine" not in c.extra:
        return "-"
    return "%s (n=%d)" % (rp.fmt_ms(c.extra["hyperfine"]), c.extra["hyperfine_n"])


def sec_exec(ctx):
    log("exec overhead")
    uid = str(NOBODY)
    a = [
        ctx.tool("runas", ["nobody", "true"], check_args=["nobody", "id", "-u"],
                 check=m.expect_stdout(0, uid)),
        peer("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "true"], "util-linux",
             check_args=["--reuid=65534", "--regid=65534", "--clear-groups", "id", "-u"],
             check=m.expect_stdout(0, uid)),
        peer("gosu", ["nobody", "true"], "gosu", check_args=["nobody", "id", "-u"], check=m.expect_stdout(0, uid)),
        peer("true", [], "coreutils", role="context"),
    ]
    b = [
        ctx.tool("runas", ["--init", "nobody", "--", "true"], label="runas --init",
                 check_args=["--init", "nobody", "--", "id", "-u"], check=m.expect_stdout(0, uid)),
        peer("tini-static", ["-s", "--", "true"], "tini", check_args=["-s", "--", "id", "-u"],
             check=m.expect_stdout(0, "0")),
        peer("dumb-init", ["true"], "dumb-init", check_args=["id", "-u"], check=m.expect_stdout(0, "0")),
        peer("catatonit", ["--", "true"], "catatonit", check_args=["--", "id", "-u"], check=m.expect_stdout(0, "0")),
        peer("tini-static", ["-s", "--", "gosu", "nobody", "true"], "tini", label="tini-static + gosu",
             check_args=["-s", "--", "gosu", "nobody", "id", "-u"], check=m.expect_stdout(0, uid)),
    ]
    needs_root(ctx, a[:3] + b)
    n = ctx.rounds(300, 20)
    hf_runs = ctx.rounds(200, 20)
    for title, cmds in (("drop privileges, exec true", a), ("init + exec true", b)):
        rounds = m.interleave(cmds, ctx.workdir, min_runs=min(50, n), max_runs=n, budget_s=15, warmup=5, log=log)
        hyperfine_cross_check(ctx, cmds, rounds=3, runs=hf_runs)
        log("  %s: %d rounds" % (title, rounds))
    best_a, best_b = m.best_peer(a), m.best_peer(b)
    ratio_target(ctx, "runas", "`runas nobody true` <= 0.8x setpriv", a[0], a[1], 0.8)
    cols = [("hyperfine -N median", hf_col)]

    def render():
        return "\n".join([
            "Wall time from spawn to exit, and peak RSS (the larger of the tool and the `true` it execs: "
            "the kernel keeps the high-water mark across exec). `true` alone is shown for scale: it is "
            "part of every row. The hyperfine column times the same commands again with `hyperfine -N` "
            "(no shell), in 3 rounds with the order rotated, pooled.",
            "",
            "**Drop to nobody and exec** (target: runas <= 0.8x setpriv)",
            "",
            rp.time_table(a, best_a, cols),
            "",
            "**As init: fork, exec, reap, exit with the child's status**. runas --init also drops to nobody "
            "first; tini-static, dumb-init and catatonit stay root, so `tini-static + gosu` is the pair "
            "runas --init replaces.",
            "",
            rp.time_table(b, best_b, cols),
        ])

    ctx.sections.append(("Exec overhead", render))
    ctx.chart.append(("Exec: drop privileges + exec true", group_bars(a, best_a), tick(0.8, a[1], best_a)))
    ctx.chart.append(("Exec as init: + exec true", group_bars(b, best_b), None))


# --- chown --------------------------------------------------------------------------------------


def build_tree(tree, entries):
    """A tree of exactly `entries` entries below tree: 20 dirs x 20 subdirs, files spread over them."""
    os.mkdir(tree)
    leaves = []
    for i in range(20):
        d = os.path.join(tree, "d%02d" % i)
        os.mkdir(d)
        for j in range(20):
            s = os.path.join(d, "s%02d" % j)
            os.mkdir(s)
            leaves.append(s)
    nfiles = entries - 20 - len(leaves)
    for k, leaf in enumerate(leaves):
        count = nfiles // len(leaves) + (1 if k < nfiles % len(leaves) else 0)
        dfd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for f in range(count):
                os.close(os.open("f%04d" % f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dfd))
        finally:
            os.close(dfd)


def owners(tree, uid, gid):
    """(entries below tree, entries not owned by uid:gid, tree itself included in the latter)."""
    n, wrong = 0, 0
    st = os.lstat(tree)
    if (st.st_uid, st.st_gid) != (uid, gid):
        wrong += 1
    stack = [tree]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                n += 1
                st = e.stat(follow_symlinks=False)
                if (st.st_uid, st.st_gid) != (uid, gid):
                    wrong += 1
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return n, wrong


def sec_chown(ctx):
    log("chown")
    tmp = tempfile.mkdtemp(prefix="dockhand-bench-chown-", dir="/tmp")
    tree = os.path.join(tmp, "tree")
    chown = which("chown")
    uidgid = "%d:%d" % (NOBODY, NOBODY)

    floor, floor_how = build_launcher(ctx.workdir, "chown_floor")
    if platform.machine() != "x86_64":
        floor, floor_how = None, "x86_64 only"

    def cmds():
        return [
            ctx.tool("runas", ["--chown", tree, "nobody", "--", "true"], label="runas --chown"),
            peer("chown", ["-R", uidgid, tree], "coreutils", label="chown -R"),
            peer("find", [tree, "(", "!", "-uid", str(NOBODY), "-o", "!", "-gid", str(NOBODY), ")",
                          "-exec", "chown", "-h", uidgid, "{}", "+"], "findutils", label="find + chown"),
            m.Cmd("syscall floor", [floor or "chown_floor", tree, str(NOBODY), str(NOBODY)], role="context",
                  missing=None if floor else "chown_floor not built: " + floor_how,
                  shown="bench/chown_floor.rs TREE %d %d" % (NOBODY, NOBODY)),
        ]

    def all_owned():
        n, wrong = owners(tree, NOBODY, NOBODY)
        if n != CHOWN_ENTRIES:
            return "tree has %d entries, expected %d" % (n, CHOWN_ENTRIES)
        if wrong:
            return "%d of %d entries not owned by %s afterwards" % (wrong, n + 1, uidgid)
        return None

    def reset():
        subprocess.run([chown, "-R", "0:0", tree], check=True, env=m.ENV)

    same, change = cmds(), cmds()
    needs_root(ctx, same + change)
    try:
        if ctx.root:
            t = time.monotonic()
            build_tree(tree, CHOWN_ENTRIES)
            subprocess.run([chown, "-R", uidgid, tree], check=True, env=m.ENV)
            log("  built %d entries in %.1fs under %s" % (CHOWN_ENTRIES, time.monotonic() - t, tmp))
            for c in same:
                c.after_check = all_owned
            n = ctx.rounds(9, 2)
            r1 = m.interleave(same, ctx.workdir, min_runs=min(3, n), max_runs=n, budget_s=25, warmup=1, log=log)
            for c in change:
                c.setup = reset
                c.after_check = all_owned
            n = ctx.rounds(5, 1)
            r2 = m.interleave(change, ctx.workdir, min_runs=min(3, n), max_runs=n, budget_s=40, warmup=0, log=log)
            log("  %d and %d rounds" % (r1, r2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        log("  removed %s" % tmp)
    best1, best2 = m.best_peer(same), m.best_peer(change)
    ratio_target(ctx, "runas", "`runas --chown` on a correct tree of 200 000 entries >= 3x faster than "
                 "`chown -R` (ratio <= 0.33x)", same[0], same[1], 1 / 3)
    ratio_target(ctx, "runas", "`runas --chown` on a tree of 200 000 entries needing changes >= 1.67x faster "
                 "than `chown -R` (ratio <= 0.6x)", change[0], change[1], 0.6)

    def render():
        return "\n".join([
            "A tree of %d entries (420 directories, the rest empty files, all with one link) built once "
            "under /tmp (shown as TREE) and removed afterwards; warm dentry and inode caches. runas "
            "is timed as a whole: chown walk, privilege drop and exec of `true`. After each check run, "
            "every entry is verified to be owned by 65534:65534." % CHOWN_ENTRIES,
            "",
            "The **syscall floor** row is bench/chown_floor.rs (%s): the calls of a safe walk and nothing "
            "else, one thread per CPU: each entry looked at (statx, not following links) and changed "
            "(fchownat) only when its owner differs; no link-count, device or mount checks, no "
            "messages. chown -R makes one call per entry where a safe walk makes two (it may not change "
            "what it has not looked at), so no safe walk gets far below the floor's ratio to chown -R on "
            "this machine." % floor_how,
            "",
            "**Already correct** (owned by 65534:65534 before every run; target: runas >= 3x faster than "
            "chown -R)",
            "",
            rp.time_table(same, best1),
            "",
            "**Needing changes** (reset to 0:0 with `chown -R 0:0 TREE` before every run, untimed; target: "
            "runas >= 1.67x faster than chown -R)",
            "",
            rp.time_table(change, best2),
        ]).replace(tree, "TREE")

    for c in same + change:
        c.shown = c.shown.replace(tree, "TREE")
    ctx.sections.append(("chown of a data directory", render))
    ctx.chart.append(("chown: tree already correct (200k entries)", group_bars(same, best1),
                      tick(1 / 3, same[1], best1)))
    ctx.chart.append(("chown: tree needing changes (200k entries)", group_bars(change, best2),
                      tick(0.6, change[1], best2)))


# --- health probe -------------------------------------------------------------------------------


class Server:
    """A small threaded HTTP server on loopback: GET /health -> 200 "ok", anything else 404."""

    def __init__(self):
        srv = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/health":
                    srv.hits += 1
                    code, body = 200, b"ok\n"
                else:
                    code, body = 404, b"not found\n"
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sec_health(ctx):
    log("health probe")
    srv = Server()
    url = "http://127.0.0.1:%d/health" % srv.port
    bad = "http://127.0.0.1:%d/missing" % srv.port

    def reset():
        srv.hits = 0

    def probe_check(s, out, err):
        if s.code != 0:
            return s.describe() + " on a healthy endpoint (expected 0)"
        if srv.hits != 1:
            return "the server saw %d requests for /health, expected 1" % srv.hits
        return None

    def negative(c, expect):
        argv = [a.replace(url, bad) for a in c.argv]

        def check():
            s = m.run(argv, timeout=c.timeout)
            if s.timed_out or s.code == 0 or (expect is not None and s.code != expect):
                return "against a 404 endpoint: %s (expected %s)" % (s.describe(), expect or "non-zero")
            return None

        return check

    py = "import urllib.request; urllib.request.urlopen(%r)" % url
    cmds = [
        ctx.tool("healthcheck", [url]),
        peer("busybox", ["wget", "-q", "-O", "/dev/null", url], "busybox-static", label="busybox wget"),
        peer("wget", ["-q", "-O", "/dev/null", url], "wget"),
        peer("curl", ["-fsS", "-o", "/dev/null", url], "curl"),
        peer("python3", ["-c", py], "python3", label="python3 urllib"),
    ]
    for c in cmds:
        c.setup = reset
        c.check = probe_check
        c.after_check = negative(c, 1 if c.dockhand else None)
        c.timeout = 10.0
    n = ctx.rounds(100, 10)
    try:
        rounds = m.interleave(cmds, ctx.workdir, min_runs=min(20, n), max_runs=n, budget_s=25, warmup=3, log=log)
    finally:
        srv.close()
    log("  %d rounds" % rounds)
    for c in cmds:
        c.shown = c.shown.replace(str(srv.port), "PORT")
    best = m.best_peer(cmds)
    best_rss = m.best_peer(cmds, key=lambda c: c.rss_kib())
    ratio_target(ctx, "healthcheck", "probe wall time <= 1.0x busybox wget", cmds[0], cmds[1], 1.0)
    if m.LAUNCHER:
        abs_target(ctx, "healthcheck", "probe peak RSS <= 1 MB (1 000 000 bytes)", cmds[0],
                   lambda c: c.rss_kib() * 1024, 1_000_000, lambda v: "%s (%d bytes)" % (rp.fmt_kib(v / 1024), v))
    else:
        ctx.targets.append(("healthcheck", "probe peak RSS <= 1 MB", "no launcher: " + ctx.launcher,
                            "not measured"))

    def rss_ratio(c):
        if not c.samples or not best_rss:
            return "-"
        return rp.fmt_ratio(c.rss_kib() / best_rss.rss_kib())

    def render():
        return "\n".join([
            "One probe of `GET /health` (200, 3 bytes) on a threaded Python HTTP server on 127.0.0.1 that "
            "the harness starts (PORT); no proxy variables set. Every check run must make exactly one "
            "request for /health and exit 0, and the same command against a 404 path must fail "
            "(healthcheck: exit 1).",
            "",
            rp.time_table(cmds, best, [("RSS ratio to smallest peer", rss_ratio)]),
        ])

    ctx.sections.append(("Health probe", render))
    ctx.chart.append(("Health probe: wall time", group_bars(cmds, best), tick(1.0, cmds[1], best)))
    ctx.chart.append(("Health probe: peak RSS", group_bars(cmds, best_rss, value=lambda c: c.rss_kib()),
                      1_000_000 / 1024 / best_rss.rss_kib() if best_rss else None))


# --- https health probe -------------------------------------------------------------------------


def test_ca(workdir):
    """A test CA and a server certificate for 127.0.0.1 signed by it (P-256), made with openssl:
    (ca.pem, server.pem, server.key) paths."""
    d = os.path.join(workdir, "tls")
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    ossl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", "2", "-out", "server.pem", "-extfile", "ext")
    return tuple(os.path.join(d, f) for f in ("ca.pem", "server.pem", "server.key"))


def sec_health_https(ctx):
    log("https health probe")
    import ssl
    if not which("openssl"):
        ctx.targets.append(("healthcheck", "https probe wall time <= 0.5x curl", "openssl not installed",
                            "missing"))
        return
    ca, cert, key = test_ca(ctx.workdir)
    srv = Server()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    srv.httpd.socket = tls.wrap_socket(srv.httpd.socket, server_side=True)
    url = "https://127.0.0.1:%d/health" % srv.port

    def reset():
        srv.hits = 0

    def probe_check(s, out, err):
        if s.code != 0:
            return s.describe() + " on a healthy endpoint (expected 0)"
        if srv.hits != 1:
            return "the server saw %d requests for /health, expected 1" % srv.hits
        return None

    cmds = [
        ctx.tool("healthcheck", ["--cacert", ca, url]),
        peer("curl", ["-fsS", "--cacert", ca, "-o", "/dev/null", url], "curl"),
    ]
    for c in cmds:
        c.setup = reset
        c.check = probe_check
        c.timeout = 10.0
    n = ctx.rounds(100, 10)
    try:
        rounds = m.interleave(cmds, ctx.workdir, min_runs=min(20, n), max_runs=n, budget_s=25, warmup=3, log=log)
    finally:
        srv.close()
    log("  %d rounds" % rounds)
    for c in cmds:
        c.shown = c.shown.replace(str(srv.port), "PORT").replace(ca, "CA.pem")
    best = m.best_peer(cmds)
    ratio_target(ctx, "healthcheck", "https probe wall time <= 0.5x curl", cmds[0], cmds[1], 0.5)
    if m.LAUNCHER:
        abs_target(ctx, "healthcheck", "https probe peak RSS < 2 MB (2 000 000 bytes)", cmds[0],
                   lambda c: c.rss_kib() * 1024, 1_999_999, lambda v: "%s (%d bytes)" % (rp.fmt_kib(v / 1024), v))
    else:
        ctx.targets.append(("healthcheck", "https probe peak RSS < 2 MB", "no launcher: " + ctx.launcher,
                            "not measured"))

    def render():
        return "\n".join([
            "One probe of `GET /health` over TLS (Python's ssl module on the same threaded HTTP server, "
            "TLS 1.3, a P-256 certificate for 127.0.0.1 from a test CA made with openssl), both tools "
            "verifying against that CA (`--cacert`). Every check run must make exactly one request and exit 0.",
            "",
            rp.time_table(cmds, best, []),
        ])

    ctx.sections.append(("Health probe over https", render))
    ctx.chart.append(("Health probe over https: wall time", group_bars(cmds, best), tick(0.5, cmds[1], best)))


# --- waiting ------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reaction_run(ctx, c, delay=1.0):
    """One run: start the waiter, open the port after delay; sample whose wall is the reaction time."""
    port = free_port()
    argv = [a.replace("PORT", str(port)) for a in c.argv]
    out = os.path.join(ctx.workdir, "react.out")
    err = os.path.join(ctx.workdir, "react.err")
    r = m.spawn(argv, stdout=out, stderr=err, result=os.path.join(ctx.workdir, "react.res"))
    ls = socket.socket()
    try:
        time.sleep(max(0.0, delay - (time.perf_counter_ns() - r.t0) / 1e9))
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(64)
        t_listen = time.time_ns()
    except OSError as e:
        os.killpg(r.pid, 9)
        m.finish(r, 5)
        ls.close()
        return None, "harness could not listen on port %d: %s" % (port, e)
    try:
        s = m.finish(r, timeout=9)
    finally:
        ls.close()
    if s.timed_out or s.code != 0:
        line = m.first_line(err) or m.first_line(out)
        return None, s.describe() + (": " + line if line else "")
    try:
        with open(out) as f:
            ts = int(f.read().split()[-1])
    except (ValueError, IndexError, OSError):
        return None, "COMMAND wrote no timestamp"
    s.wall_ns = ts - t_listen
    return s, None


def idle_run(argv, marker, result):
    err = marker + ".err"
    s = m.run(argv, stderr=err, timeout=120.0, result=marker + ".res")
    result.append((s, os.path.exists(marker), m.first_line(err)))


def sec_wait(ctx):
    log("wait reaction")
    react = [
        ctx.tool("waitfor", ["127.0.0.1:PORT", "--", "date", "+%s%N"]),
        peer("wait-for-it", ["127.0.0.1:PORT", "-s", "-q", "-t", "30", "--", "date", "+%s%N"], "wait-for-it"),
    ]
    # The port opens 0.5-1.5 s after the start (1 s on average), the delay stepping evenly through
    # that second across the rounds, the same delay for both tools in a round: a fixed delay would
    # meet a once-a-second poller always at the same phase of its poll.
    n = ctx.rounds(10, 2)
    delays = [0.5 + (i + 0.5) / n for i in range(n)]
    order = [delays[(i * 3) % n] for i in range(n)] if n % 3 else delays
    t = time.monotonic()
    for i in range(n):
        if i >= 3 and time.monotonic() - t > 60:
            break
        for c in (react if i % 2 == 0 else react[::-1]):
            if not c.ok:
                continue
            s, err = reaction_run(ctx, c, delay=order[i])
            if err:
                c.failed, c.samples = "run %d: %s" % (len(c.samples) + 1, err), []
            else:
                c.samples.append(s)
    for c in react:
        log("  %-28s %s (%d runs)" % (c.label, c.status_text(), len(c.samples)))
    best = m.best_peer(react)
    abs_target(ctx, "waitfor", "reaction to a port opening after 1 s: median <= 50 ms", react[0],
               lambda c: c.median_ms(), 50, lambda v: rp.fmt_ms(v) + " median")

    # CPU while waiting for a target that never comes: both at once, on a bound port nobody listens on.
    secs = 3 if ctx.quick else 10
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    m1, m2 = os.path.join(ctx.workdir, "ran-waitfor"), os.path.join(ctx.workdir, "ran-wait-for-it")
    idle = [
        ctx.tool("waitfor", ["--timeout", "%ds" % secs, "127.0.0.1:%d" % port, "--", "touch", m1],
                 label="waitfor (never comes)"),
        peer("wait-for-it", ["127.0.0.1:%d" % port, "-s", "-q", "-t", str(secs), "--", "touch", m2], "wait-for-it",
             label="wait-for-it (never comes)"),
    ]
    results = {}
    threads = []
    for c, marker in zip(idle, (m1, m2)):
        if c.ok:
            results[id(c)] = []
            th = threading.Thread(target=idle_run, args=(c.argv, marker, results[id(c)]))
            th.start()
            threads.append(th)
    for th in threads:
        th.join()
    dead.close()
    for c, want in zip(idle, (124, None)):
        if not c.ok:
            continue
        s, ran, line = results[id(c)][0]
        if ran:
            c.failed = "ran COMMAND although the target never came up"
        elif s.timed_out or s.code == 0 or (want is not None and s.code != want):
            c.failed = "%s (expected %s)%s" % (s.describe(), want or "non-zero", ": " + line if line else "")
        else:
            c.samples.append(s)
    for c in idle:
        c.shown = c.shown.replace(str(port), "DEADPORT").replace(ctx.workdir, "TMP")
        log("  %-28s %s" % (c.label, c.status_text()))

    def cpu_pct(c):
        s = c.samples[0]
        return 100.0 * s.cpu_ns / s.wall_ns

    abs_target(ctx, "waitfor", "CPU while waiting for a target that never comes < 1%% of one core "
               "(measured over %d s)" % secs, idle[0], cpu_pct, 0.999999, lambda v: "%.3f%%" % v)

    def idle_rows():
        rows = []
        for c in idle:
            name = "**%s**" % c.label if c.dockhand else c.label
            if c.samples:
                s = c.samples[0]
                rows.append([name, rp.code(c.shown), rp.fmt_ms(s.wall_ns / 1e6), rp.fmt_ms(s.cpu_ns / 1e6),
                             "%.3f%%" % cpu_pct(c), rp.fmt_ms(s.cpu_ns / 1e6 * 60 / (s.wall_ns / 1e9)),
                             rp.fmt_kib(s.rss_kib), c.status_text()])
            else:
                rows.append([name, rp.code(c.shown), "-", "-", "-", "-", "-", rp.cell(c.status_text())])
        return rows

    def render():
        return "\n".join([
            "**Reaction**: the waiter starts on a free loopback port (PORT); after 1 s on average the "
            "harness starts listening on it and notes the time; COMMAND (`date +%s%N`) writes the time it "
            "started. The row's times are COMMAND's timestamp minus the moment listen() returned (both "
            "CLOCK_REALTIME). The delay steps evenly from 0.5 s to 1.5 s across the rounds, the same delays "
            "for both tools (a fixed 1 s would meet a once-a-second poller always at the same phase of its "
            "poll); the two alternate. Target: waitfor median <= 50 ms. wait-for-it polls once a second, so "
            "it reacts in 0-1 s.",
            "",
            rp.time_table(react, best),
            "",
            "**CPU while waiting** for a target that never comes (a bound loopback port with no listener, "
            "so every attempt is refused), %d s instead of the issue's 60 s: CPU time is user + system "
            "from the waiter's rusage (its children included), the 60 s column scales it linearly. Both "
            "ran at the same time. Target: < 1%% of one core. Neither may run COMMAND." % secs,
            "",
            rp.table(["", "command", "wall", "CPU time", "of one core", "CPU per 60 s", "peak RSS", "status"],
                     idle_rows()),
        ])

    ctx.sections.append(("Waiting for a port", render))
    ctx.chart.append(("Wait: port opens after 1 s -> COMMAND starts", group_bars(react, best),
                      50 / best.median_ms() if best else None))
    ctx.chart.append(("Wait: CPU while waiting for a dead port",
                      group_bars(idle, idle[1] if idle[1].ok else None, value=lambda c: c.samples[0].cpu_ns),
                      None))


# --- ldcheck ------------------------------------------------------------------------------------


def elf_files(top, skip=()):
    """Regular files (not symlinks) under top whose first bytes are the ELF magic, sorted."""
    out = []
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for f in files:
            p = os.path.join(root, f)
            try:
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                with open(p, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        out.append(p)
            except OSError:
                pass
    return sorted(out)


def opencv_tree():
    """The unpacked opencv-python wheel (unpacked once under /var/cache/dockhand/bench)."""
    wheels = [w for w in glob.glob(WHEELS + "/opencv_python-[0-9]*.whl")]
    if not wheels:
        return None, "no opencv_python wheel in %s (bench/run.sh downloads it with pip)" % WHEELS
    whl = max(wheels, key=os.path.getmtime)
    dest = os.path.join(CACHE, "bench", os.path.basename(whl)[:-4])
    if not os.path.exists(os.path.join(dest, ".unpacked")):
        shutil.rmtree(dest, ignore_errors=True)
        with zipfile.ZipFile(whl) as z:
            z.extractall(dest)
        open(os.path.join(dest, ".unpacked"), "w").close()
    return dest, os.path.basename(whl)


def torch_tree():
    """torch and its NVIDIA wheels installed into one site-packages directory, each wheel unpacked
    as pip installs it (once, under /var/cache/dockhand/bench)."""
    wheels = sorted(glob.glob(TORCH_WHEELS + "/*.whl"))
    if not any(os.path.basename(w).startswith("torch-") for w in wheels):
        return None, "no torch wheel in %s (bench/run.sh downloads torch and its dependencies)" % TORCH_WHEELS
    names = [os.path.basename(w) for w in wheels]
    dest = os.path.join(CACHE, "bench", "torch-site-packages")
    stamp = os.path.join(dest, ".unpacked")
    want = "\n".join(names)
    try:
        with open(stamp) as f:
            done = f.read() == want
    except OSError:
        done = False
    if not done:
        log("  unpacking %d wheels into %s (once)" % (len(wheels), dest))
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        for w in wheels:
            with zipfile.ZipFile(w) as z:
                z.extractall(dest)
        with open(stamp, "w") as f:
            f.write(want)
    torch = next(n for n in names if n.startswith("torch-"))
    return dest, "%s and %d more wheels" % (torch, len(names) - 1)


def count_files(tree):
    return sum(len(fs) for _, _, fs in os.walk(tree))


def drop_caches():
    """Empty the page cache (root only): the next run reads every file from disk."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def peer_tree_check(s, out, err):
    with open(err, "rb") as f:
        if b"Traceback" in f.read(1 << 20):
            return "crashed (Python traceback)"
    if os.WIFSIGNALED(s.status):
        return s.describe()
    if os.path.getsize(out) == 0:
        return s.describe() + " and printed nothing"
    return None


def ldcheck_json_check(c):
    def check(s, out, err):
        if s.code not in (0, 1):
            return s.describe() + " (expected 0 or 1)"
        try:
            with open(out) as f:
                doc = json.load(f)
            files, missing = doc["files"], doc["missing"]
            assert isinstance(files, int) and files >= 1 and isinstance(missing, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            return s.describe() + ", and --format json printed no object with \"files\" >= 1 and \"missing\""
        c.note = "files read: %d, missing sonames: %d" % (files, len(missing))
        return None

    return check


def ld_group(ctx, files, shown_files, dir_arg=None, slow_once=()):
    cmds = [ctx.tool("ldcheck", files, label="ldcheck", check_args=["--format", "json"] + files)]
    cmds[0].shown = "%s %s" % (ctx.shown_bin("ldcheck"), shown_files)
    if dir_arg:
        d = ctx.tool("ldcheck", [dir_arg], label="ldcheck DIR", check_args=["--format", "json", dir_arg])
        d.shown = "%s DIR" % ctx.shown_bin("ldcheck")
        cmds.append(d)
    for c in cmds:
        c.check = ldcheck_json_check(c)
    for name, pkg in (("libtree", "libtree"), ("lddtree", "pax-utils")):
        c = peer(name, files, pkg, check=peer_tree_check, timeout=300.0, max_runs=1 if name in slow_once else None)
        c.shown = "%s %s" % (name, shown_files)
        cmds.append(c)
    return cmds


def sec_ldcheck(ctx):
    log("ldcheck")
    groups = []
    tree, whl = opencv_tree()
    if tree:
        files = elf_files(tree)
        log("  %s: %d ELF files" % (whl, len(files)))
        # Runs of a few ms: many rounds for a stable median; lddtree (1-2 s) only its check run.
        cmds = ld_group(ctx, files, "FILES", dir_arg=tree, slow_once={"lddtree"})
        n = ctx.rounds(40, 4)
        m.interleave(cmds, ctx.workdir, min_runs=min(3, n), max_runs=n, budget_s=30, warmup=2, log=log)
        groups.append(("opencv-python wheel", "%s, unpacked: %d ELF files" % (whl, len(files)),
                       "FILES: the %d ELF files of the unpacked wheel, found by magic, sorted; DIR: the "
                       "unpacked wheel's directory (ldcheck finds the ELF files itself). lddtree runs once (its "
                       "check run)." % len(files), cmds))
    else:
        log("  " + whl)
        groups.append(("opencv-python wheel", "", whl, []))
    # A torch + CUDA install: thousands of files, most of them Python, read to find the ELF ones.
    tree, what = torch_tree()
    if tree:
        files = elf_files(tree)
        total = count_files(tree)
        log("  torch install: %d files, %d ELF" % (total, len(files)))
        cmds = ld_group(ctx, files, "FILES", dir_arg=tree, slow_once={"lddtree"})
        n = ctx.rounds(40, 4)
        m.interleave(cmds, ctx.workdir, min_runs=min(3, n), max_runs=n, budget_s=60, warmup=2, log=log)
        d = next(c for c in cmds if c.label == "ldcheck DIR")
        abs_target(ctx, "ldcheck", "ldcheck on a torch + CUDA install < 1 s", d, lambda c: c.median_ms(), 1000.0,
                   lambda v: "%s (%d files)" % (rp.fmt_ms(v), total))
        # The same with an empty page cache before every run, timed on its own (dropping the
        # cache inside the interleaved rounds would slow the commands that follow).
        cold = ctx.tool("ldcheck", [tree], label="ldcheck DIR, cold cache", setup=drop_caches)
        cold.shown = "%s DIR (page cache dropped before each run)" % ctx.shown_bin("ldcheck")
        cold.check = ldcheck_json_check(cold)
        cold.check_argv = cold.argv[:1] + ["--format", "json", tree]
        if ctx.root:
            m.interleave([cold], ctx.workdir, min_runs=min(3, n), max_runs=min(5, n), budget_s=30, warmup=0,
                         log=log)
            abs_target(ctx, "ldcheck", "ldcheck on a torch + CUDA install, cold page cache < 1 s", cold,
                       lambda c: c.median_ms(), 1000.0, lambda v: "%s (%d files)" % (rp.fmt_ms(v), total))
        else:
            cold.missing = "needs root (drops the page cache)"
        cmds.insert(2, cold)
        groups.append(("torch + CUDA wheels", "%s, installed: %d files, %d ELF" % (what, total, len(files)),
                       "FILES: the %d ELF files of a site-packages directory holding %s (each unpacked as pip "
                       "installs it); DIR: that directory, %d files, which ldcheck walks and reads to find the "
                       "ELF ones. The cold row empties the page cache (/proc/sys/vm/drop_caches) before each "
                       "run. lddtree runs once (its check run)." % (len(files), what, total), cmds))
    else:
        log("  " + what)
        ctx.targets.append(("ldcheck", "ldcheck on a torch + CUDA install < 1 s", what, "not measured"))
        groups.append(("torch + CUDA wheels", "", what, []))
    files = elf_files("/usr/lib", skip={"/usr/lib/debug"})
    log("  /usr/lib: %d ELF files" % len(files))
    cmds = ld_group(ctx, files, "FILES", slow_once={"lddtree"})
    n = ctx.rounds(20, 2)
    m.interleave(cmds, ctx.workdir, min_runs=min(3, n), max_runs=n, budget_s=60, warmup=1, log=log)
    groups.append(("/usr/lib", "this machine's /usr/lib: %d ELF files" % len(files),
                   "FILES: the %d ELF files under /usr/lib, found by magic, sorted, without /usr/lib/debug "
                   "(separate debug info, which lddtree crashes on and no loader loads). lddtree runs once here (its "
                   "check run, output to a file): it takes tens of seconds." % len(files), cmds))
    results = []
    for name, title, what, cmds in groups:
        best = m.best_peer(cmds) if cmds else None
        if cmds:
            ratio_target(ctx, "ldcheck", "ldcheck on %s <= 1.0x libtree" % name, cmds[0],
                         next(c for c in cmds if c.label == "libtree"), 1.0)
            libtree = next(c for c in cmds if c.label == "libtree")
            # The cold-cache row is on another scale (disk reads): table only.
            warm = [c for c in cmds if "cold" not in c.label]
            ctx.chart.append(("ldcheck: " + name, group_bars(warm, best), tick(1.0, libtree, best)))
        else:
            ctx.targets.append(("ldcheck", "ldcheck on %s <= 1.0x libtree" % name, what, "not measured"))
        results.append((title or name, what, cmds, best))

    def render():
        md = ["All tools get the same files as arguments (libtree and lddtree do not walk directories). Every "
              "check run of ldcheck is `ldcheck --format json ...` and must print an object with \"files\" and "
              "\"missing\"; the timed runs use the default text output. A peer's check run must not crash; "
              "its timed runs must exit as its check run did."]
        for title, what, cmds, best in results:
            md += ["", "**%s**. %s" % (title, what), ""]
            md.append(rp.time_table(cmds, best, [("notes", lambda c: c.note or "")]) if cmds else
                      "not measured: " + what)
        return "\n".join(md)

    ctx.sections.append(("ldcheck: shared-library audit", render))


# --- the launcher -------------------------------------------------------------------------------


def build_launcher(workdir, name="launch"):
    """Compile bench/NAME.rs (the launcher, or another std-only helper) with rustc: (path, how) or
    (None, why not)."""
    rustc = shutil.which("rustc") or os.path.expanduser("~/.cargo/bin/rustc")
    if not os.path.exists(rustc):
        return None, "no rustc found"
    out = os.path.join(workdir, name)
    base = [rustc, "--edition", "2021", "-C", "opt-level=2", "-C", "panic=abort", "-C", "strip=symbols",
            os.path.join(REPO, "bench", name + ".rs"), "-o", out]
    musl = platform.machine() + "-unknown-linux-musl"
    why = ""
    for extra, how in ((["--target", musl, "-C", "target-feature=+crt-static"], "static, " + musl),
                       ([], "host target, dynamic")):
        p = subprocess.run(base + extra, capture_output=True, text=True, cwd=workdir)
        if p.returncode == 0:
            return out, "built with %s (%s)" % (rustc, how)
        why = (p.stderr.strip().splitlines() or ["?"])[-1]
    return None, "rustc failed: " + why


def tiny_elf(path):
    """A one-page static program that only exits 0: its measured peak RSS is the method's floor."""
    mach = platform.machine()
    if mach == "x86_64":
        e_machine, code = 62, bytes([0x31, 0xFF, 0xB8, 0x3C, 0, 0, 0, 0x0F, 0x05])  # exit(0)
    elif mach == "aarch64":
        e_machine, code = 183, struct.pack("<III", 0xD2800000, 0xD2800BA8, 0xD4000001)
    else:
        return False
    base, eh, ph = 0x400000, 64, 56
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 2, e_machine, 1, base + eh + ph, eh, 0, 0, eh, ph, 1, 0, 0, 0)
    total = eh + ph + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    with open(path, "wb") as f:
        f.write(ehdr + phdr + code)
    os.chmod(path, 0o755)
    return True


def rss_floor(workdir):
    path = os.path.join(workdir, "exit0")
    if not m.LAUNCHER or not tiny_elf(path):
        return None
    rss = [m.run([path]).rss_kib for _ in range(5)]
    return max(r for r in rss if r is not None) if any(r is not None for r in rss) else None


# --- the report ---------------------------------------------------------------------------------


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.0f GiB RAM" % (int(line.split()[1]) / 1024 / 1024)
    distro = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    ncpu = len(os.sched_getaffinity(0))
    return "%d CPUs (nproc), %s, %s, Linux %s, %s" % (ncpu, model, mem, platform.release(), distro)


def git_commit():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


PEER_PACKAGES = ["gosu", "util-linux", "tini", "dumb-init", "catatonit", "busybox-static", "curl", "wget",
                 "python3", "wait-for-it", "pax-utils", "python3-pyelftools", "libtree", "hyperfine", "coreutils",
                 "findutils"]


def package_versions():
    p = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"] + PEER_PACKAGES,
                       capture_output=True, text=True)
    return ", ".join(line.replace(" ", " ") for line in p.stdout.splitlines() if line.strip())


def method(ctx):
    if m.LAUNCHER:
        how = ("Each command is forked by a small static launcher (bench/launch.rs, %s), which times fork to "
               "wait4 with a monotonic clock and reports the command's rusage: peak RSS (ru_maxrss) and CPU "
               "time. The kernel carries the parent's high-water mark into the child, so no peak RSS can read "
               "lower than the launcher's floor: a one-page static program that only exits measured **%s "
               "KiB** here; values at that floor mean \"this much or less\"."
               % (ctx.launcher, ctx.floor if ctx.floor is not None else "?"))
    else:
        how = ("The launcher could not be built (%s): commands were spawned by the harness itself, times "
               "include its spawn cost, and peak RSS is not reported (it would include the harness's)."
               % ctx.launcher)
    return "\n".join([
        "- " + how,
        "- Each command first gets a check run with its output captured, which must show that it did the "
        "job (the exit status and what the section says); a command failing it is reported FAILED with its "
        "message and not timed. Then warm-up runs (not counted), then rounds in which every command of the "
        "table runs once, the order rotating each round. A later run that exits differently from the check "
        "run marks the command FAILED. The \"runs\" column is the number of timed runs; the round count "
        "has a time budget per table, so slow peers get fewer runs (at least 3 unless a single round took "
        "more than 3x the budget).",
        "- Median, min and max are of those runs; ratio = median / the best peer's median.",
        "- Peer packages (Debian): " + package_versions() + ".",
        "- Run with `bench/run.sh --quick` to test the harness in a few minutes (numbers then mean "
        "little); `--only exec,health` for some sections.",
    ])


def write_report(ctx, out_dir, started, elapsed, only):
    date = started.strftime("%Y-%m-%d %H:%M UTC")
    mach = machine()
    commit = git_commit()
    status_order = {"FAILED": 0, "missing": 1, "missed": 2, "not measured": 3, "met": 4}
    md = [
        "# dockhand benchmark results",
        "",
        "Measured %s on %s. dockhand commit %s, binaries from `%s`. Produced by `make bench` "
        "(bench/run.sh -> bench/bench.py) in %d min %02d s%s. How to run and what is measured: "
        "[the README](../README.md#benchmark-dockhand-next-to-the-tools-it-replaces). Chart: [results.svg](results.svg)."
        % (date, mach, commit, ctx.shown_bin(""), elapsed // 60, elapsed % 60,
           "; quick mode (few runs, for testing the harness only)" if ctx.quick else ""),
        "",
        "Ratios are to the best (fastest, smallest) peer of each table: below 1.0x dockhand is better. "
        "Absolute times are context only: they depend on the machine. Every command runs without a shell, "
        "with PATH=%s and no proxy variables, forked by a small launcher that measures it (see the last "
        "section); the commands of a table alternate in rotating rounds so drift hits all alike. **FAILED** means the dockhand command did "
        "not do its job in its check run (message shown): it is not timed." % m.ENV["PATH"],
    ]
    if only:
        md += ["", "Partial run: only sections %s." % ", ".join(only)]
    md += ["", "![ratios to the best peer](results.svg)", "", "## Targets", ""]
    trows = sorted(ctx.targets, key=lambda t: (TOOLS.index(t[0]), status_order[t[3]]))
    md.append(rp.table(["tool", "target", "measured", "status"],
                       [[t[0], rp.cell(t[1]), rp.cell(t[2]), "**%s**" % t[3] if t[3] != "met" else "met"]
                        for t in trows]))
    for title, render in ctx.sections:
        md += ["", "## " + title, "", render()]
    md += ["", "## How this was measured", "", method(ctx), ""]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write("\n".join(md))
    svg = rp.svg_chart(ctx.chart, "dockhand vs the tools it replaces: ratio to the best peer",
                       ["%s, %s" % (date, mach), "dockhand commit %s%s" % (
                           commit, "; QUICK MODE: few runs, numbers mean little" if ctx.quick else "")])
    with open(os.path.join(out_dir, "results.svg"), "w") as f:
        f.write(svg)


# --- ready --watchdog ---------------------------------------------------------------------------

WATCHDOG_USEC = 200_000  # a WATCHDOG=1 every 100 ms: 150x systemd's usual 30 s
WATCHDOG_CYCLES = 200


def proc_cpu(pid):
    """(utime+stime in seconds from /proc/PID/stat, on-CPU ns from /proc/PID/schedstat or None)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            ns = int(f.read().split()[0])
    except OSError:
        ns = None
    return ticks / os.sysconf("SC_CLK_TCK"), ns


def sec_watchdog(ctx):
    """CPU of ready's watcher while it keeps a watchdog (a tcp target checked and WATCHDOG=1 sent
    every WATCHDOG_USEC/2), over WATCHDOG_CYCLES cycles, as a share of one core."""
    log("ready --watchdog: watcher CPU")
    desc = "watchdog watcher CPU < 1%% of a core (WATCHDOG_USEC=%d ms, %d cycles)" % (
        WATCHDOG_USEC // 1000, WATCHDOG_CYCLES)
    path = os.path.join(ctx.bin_dir, "ready")
    if not os.access(path, os.X_OK):
        ctx.targets.append(("ready", desc, "no ready in %s" % ctx.bin_dir, "missing"))
        return
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    port = lst.getsockname()[1]

    def accept():
        while True:
            try:
                c, _ = lst.accept()
            except OSError:
                return
            c.close()

    threading.Thread(target=accept, daemon=True).start()
    sock_path = os.path.join(ctx.workdir, "watchdog.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(sock_path)
    ns.settimeout(15)
    tag = "dockhand-bench-watchdog-%d" % os.getpid()
    env = dict(m.ENV, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC=str(WATCHDOG_USEC), BENCH_TAG=tag)
    argv = [path, "--when", "tcp://127.0.0.1:%d" % port, "--watchdog", "--", "sleep", "3600"]
    svc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    result = None
    try:
        def recv():
            data = ns.recv(4096)
            return data.decode()

        while not recv().startswith("READY=1"):
            pass
        watcher = None
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != svc.pid:
                try:
                    with open("/proc/%s/environ" % d, "rb") as f:
                        if ("BENCH_TAG=" + tag).encode() in f.read().split(b"\0"):
                            watcher = int(d)
                except OSError:
                    pass
        pings = 0
        while pings < 1:
            pings += recv() == "WATCHDOG=1"
        cpu0, ns0 = proc_cpu(watcher)
        t0 = time.monotonic()
        pings = 0
        while pings < WATCHDOG_CYCLES:
            pings += recv() == "WATCHDOG=1"
        cpu1, ns1 = proc_cpu(watcher)
        wall = time.monotonic() - t0
        share = (cpu1 - cpu0) / wall * 100
        per_cycle_us = ((ns1 - ns0) / 1000 / WATCHDOG_CYCLES) if ns0 is not None else None
        result = (share, wall, cpu1 - cpu0, per_cycle_us, ((ns1 - ns0) / 1e9 / wall * 100) if ns0 else None)
    except (OSError, socket.timeout, TypeError) as e:
        ctx.targets.append(("ready", desc, "FAILED: %s" % e, "FAILED"))
    finally:
        svc.kill()
        svc.wait()
        lst.close()
        ns.close()
    if result is None:
        return
    share, wall, cpu, per_cycle_us, sched_share = result
    text = "%.2f%% of a core (utime+stime %.0f ms over %.1f s)" % (share, cpu * 1000, wall)
    if sched_share is not None:
        text += "; schedstat %.3f%%, %.0f us a cycle" % (sched_share, per_cycle_us)
    ctx.targets.append(("ready", desc, text, "met" if share < 1.0 else "missed"))

    def render():
        return "\n".join([
            "`ready --when tcp://127.0.0.1:PORT --watchdog -- sleep 3600` with WATCHDOG_USEC=%d (a check of "
            "the target and a WATCHDOG=1 datagram every %d ms, 150 times as often as systemd's usual "
            "WatchdogSec=30s) and a notify socket read by the harness. Counted from the first WATCHDOG=1 "
            "over the next %d: the watcher process's utime+stime (/proc/PID/stat) as a share of the wall "
            "time, and its on-CPU time from /proc/PID/schedstat." % (WATCHDOG_USEC, WATCHDOG_USEC // 2000,
                                                                     WATCHDOG_CYCLES),
            "",
            "| measured | value |",
            "| --- | --- |",
            "| utime+stime | %.0f ms over %.1f s: **%.2f%% of a core** |" % (cpu * 1000, wall, share),
            "| schedstat on-CPU | %s |" % ("%.0f us a cycle, %.3f%% of a core" % (per_cycle_us, sched_share)
                                          if sched_share is not None else "not available"),
        ])

    ctx.sections.append(("ready --watchdog: watcher CPU", render))


SECTIONS = {"sizes": sec_sizes, "exec": sec_exec, "chown": sec_chown, "health": sec_health,
            "health-https": sec_health_https, "wait": sec_wait, "ldcheck": sec_ldcheck,
            "watchdog": sec_watchdog}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few runs per command: to test the harness, not to measure")
    ap.add_argument("--only", default="", help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--out", default=os.path.join(REPO, "bench"), help="where RESULTS.md and results.svg go")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    for s in only:
        if s not in SECTIONS:
            ap.error("unknown section %r (have: %s)" % (s, ", ".join(SECTIONS)))
    bin_dir = os.path.abspath(os.environ.get("DOCKHAND_BIN_DIR") or os.path.join(REPO, "dist", "x86_64"))
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="dockhand-bench-") as workdir:
        ctx = Ctx(bin_dir, workdir, args.quick)
        log("binaries from %s; %s" % (bin_dir, machine()))
        m.RESULT = os.path.join(workdir, "launch.result")
        m.LAUNCHER, ctx.launcher = build_launcher(workdir)
        ctx.floor = rss_floor(workdir)
        log("launcher: %s; RSS floor %s KiB" % (ctx.launcher, ctx.floor))
        for name, fn in SECTIONS.items():
            if not only or name in only:
                fn(ctx)
        elapsed = int(time.monotonic() - T0)
        write_report(ctx, args.out, started, elapsed, only)
    log("wrote %s/RESULTS.md and results.svg in %d min %02d s" % (args.out, elapsed // 60, elapsed % 60))
    for t in ctx.targets:
        log("  %-12s %-8s %s: %s" % (t[0], t[3], t[1], t[2]))


if __name__ == "__main__":
    main()
