"""Running commands under test: spawn, time, peak RSS, interleaving, statistics.

Every measured run is one run of the real command (no shell), forked by the small static
launcher (launch.rs), which times fork to wait4 and reports the child's rusage: peak RSS and CPU
time. Without the launcher, the harness spawns the command itself and reports no RSS.
Commands in a group are run in alternating rounds (the order rotates each round) so that
drift on a shared machine hits all of them alike. A command whose check run fails, or
whose exit status changes during the timed rounds, is reported as failed, never timed.
"""

import os
import shlex
import signal
import statistics
import threading
import time

# The environment every command under test gets: no proxy variables, no locale lookups.
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": "/root"}


# The launcher (bench/launch.rs, built by bench.py): when set, every command is forked from it, so
# that peak RSS is the command's own (above a small floor) and the time excludes our spawn cost.
LAUNCHER = None


class Sample:
    """One finished run."""

    def __init__(self, wall_ns, rss_kib, cpu_ns, status, timed_out):
        self.wall_ns = wall_ns
        self.rss_kib = rss_kib  # None when it could not be measured
        self.cpu_ns = cpu_ns
        self.status = status  # raw wait status
        self.timed_out = timed_out

    @property
    def code(self):
        """Exit code, or 128+N for death by signal N (the shell's convention)."""
        if os.WIFSIGNALED(self.status):
            return 128 + os.WTERMSIG(self.status)
        return os.WEXITSTATUS(self.status)

    def describe(self):
        if self.timed_out:
            return "timed out (killed)"
        if os.WIFSIGNALED(self.status):
            return "killed by signal %d" % os.WTERMSIG(self.status)
        return "exit %d" % self.code


class Running:
    """A started command: spawn() returns it, finish() waits for it and returns its Sample."""

    def __init__(self, pid, t0, result):
        self.pid = pid
        self.t0 = t0
        self.result = result


def spawn(argv, stdout=os.devnull, stderr=os.devnull, stdin=os.devnull, result=None):
    """Start argv (argv[0] an absolute path), through the launcher when there is one.

    result: the file the launcher writes its measurement to (needed with the launcher).
    The command runs in its own process group, so a timeout can kill all of it.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, stdin, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    if LAUNCHER:
        actions.append((os.POSIX_SPAWN_OPEN, 3, result, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        argv = [LAUNCHER] + list(argv)
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, ENV, file_actions=actions, setpgroup=0)
    return Running(pid, t0, result)


def finish(r, timeout):
    """Wait for a started command (killing its process group after timeout seconds)."""
    fired = []

    def kill():
        fired.append(True)
        try:
            os.killpg(r.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        _, status, ru = os.wait4(r.pid, 0)
    finally:
        timer.cancel()
    t1 = time.perf_counter_ns()
    if not LAUNCHER:
        # Our own rusage of the child: its peak RSS includes this harness's, so it is not reported.
        return Sample(t1 - r.t0, None, int((ru.ru_utime + ru.ru_stime) * 1e9), status, bool(fired))
    try:
        with open(r.result) as f:
            st, rss, ut, stime, wall = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        # The launcher itself was killed (timeout) or failed.
        return Sample(t1 - r.t0, None, 0, status, bool(fired))
    return Sample(wall, rss, ut + stime, st, bool(fired))


def run(argv, stdout=os.devnull, stderr=os.devnull, stdin=os.devnull, timeout=60.0, result=None):
    """Run argv once; returns a Sample. A run longer than timeout is killed and marked so."""
    return finish(spawn(argv, stdout, stderr, stdin, result or RESULT), timeout)


# Where the launcher reports by default; set by bench.py to a file in its scratch directory.
RESULT = None


def first_line(path, limit=160):
    """The first non-empty line of a file, shortened; for failure messages."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError:
        return ""
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


class Cmd:
    """One command under test.

    role: "dockhand" (under test), "peer" (what it is compared with) or "context" (shown for
    scale, never the best peer). argv: what is run (argv[0] absolute). shown: the command as
    printed in the report.
    check: a function (Sample, stdout_path, stderr_path) -> None or a failure message, applied to
    the check run (check_argv, defaulting to argv), which also warms caches. ok_codes: exit codes
    accepted during timed runs (by default the check run's). setup: called before every run,
    untimed (e.g. to reset a tree that the command changes). missing: why the command cannot run at
    all (peer not installed), reported as such.
    """

    def __init__(self, label, argv, role="peer", shown=None, check=None, check_argv=None,
                 ok_codes=None, setup=None, after_check=None, missing=None, timeout=60.0, note="",
                 max_runs=None):
        self.label = label
        self.argv = argv
        self.role = role
        self.shown = shown or shlex.join(argv)
        self.check = check
        self.check_argv = check_argv
        self.ok_codes = ok_codes
        self.setup = setup
        self.after_check = after_check
        self.missing = missing
        self.timeout = timeout
        self.note = note
        # A command slow enough to dominate the run (lddtree on /usr/lib) gets max_runs=1: its check
        # run, output captured to a file, is then its one timed run.
        self.max_runs = max_runs
        self.samples = []
        self.failed = None  # message when the command failed
        self.extra = {}  # section-specific values (e.g. hyperfine median)

    @property
    def dockhand(self):
        return self.role == "dockhand"

    @property
    def ok(self):
        return self.missing is None and self.failed is None

    def status_text(self):
        if self.missing:
            return "missing: " + self.missing
        if self.failed:
            return "FAILED: " + self.failed
        return "ok"

    def wall_ms(self):
        return [s.wall_ns / 1e6 for s in self.samples]

    def median_ms(self):
        return statistics.median(self.wall_ms()) if self.samples else None

    def rss_kib(self):
        rss = [s.rss_kib for s in self.samples if s.rss_kib is not None]
        return statistics.median(rss) if rss else None


def check_run(cmd, workdir):
    """The check run: run once with output captured; mark cmd failed if it is wrong."""
    if cmd.missing:
        return
    out = os.path.join(workdir, "check.out")
    err = os.path.join(workdir, "check.err")
    if cmd.setup:
        cmd.setup()
    s = run(cmd.check_argv or cmd.argv, stdout=out, stderr=err, timeout=cmd.timeout)
    msg = None
    if s.timed_out:
        msg = "timed out after %gs" % cmd.timeout
    elif cmd.check:
        msg = cmd.check(s, out, err)
    elif s.code != 0:
        msg = s.describe()
    if msg:
        line = first_line(err) or first_line(out)
        cmd.failed = msg + (": " + line if line and line not in msg else "")
        return
    if cmd.after_check:
        msg = cmd.after_check()
        if msg:
            cmd.failed = msg
            return
    if cmd.ok_codes is None:
        cmd.ok_codes = {s.code}
    if cmd.max_runs == 1:
        cmd.samples.append(s)


def expect_exit(*codes):
    """A check: the run ends with one of these exit codes."""

    def check(s, out, err):
        if s.code not in codes:
            return s.describe() + " (expected %s)" % "/".join(str(c) for c in codes)
        return None

    return check


def expect_stdout(code, text):
    """A check: exit code and stdout (stripped) equal to text."""

    def check(s, out, err):
        if s.code != code:
            return s.describe() + " (expected %d)" % code
        with open(out, "rb") as f:
            got = f.read(4096).decode("utf-8", "replace").strip()
        if got != text:
            return "printed %r, expected %r" % (got[:60], text)
        return None

    return check


def interleave(cmds, workdir, min_runs, max_runs, budget_s, warmup=1, log=None):
    """Check each command, then time the good ones in rotating rounds.

    Stops after max_runs rounds, or after min_runs once budget_s is spent, or after one
    round once three times budget_s is spent (a slow peer on a big machine must not blow
    the whole run's time limit). Returns the number of rounds run.
    """
    for c in cmds:
        check_run(c, workdir)
        if log:
            log("  %-28s %s" % (c.label, c.status_text()))
    live = [c for c in cmds if c.ok and c.max_runs != 1]
    for _ in range(warmup):
        for c in live:
            if c.setup:
                c.setup()
            run(c.argv, timeout=c.timeout)
    start = time.monotonic()
    rounds = 0
    while live and rounds < max_runs:
        spent = time.monotonic() - start
        if (rounds >= min_runs and spent > budget_s) or (rounds >= 1 and spent > 3 * budget_s):
            break
        k = rounds % len(live)
        for c in live[k:] + live[:k]:
            if not c.ok or (c.max_runs and len(c.samples) >= c.max_runs):
                continue
            if c.setup:
                c.setup()
            s = run(c.argv, timeout=c.timeout)
            if s.timed_out or s.code not in c.ok_codes:
                c.failed = "run %d: %s (check run gave %s)" % (
                    len(c.samples) + 1, s.describe(), "/".join(str(x) for x in sorted(c.ok_codes)))
                c.samples = []
                continue
            c.samples.append(s)
        live = [c for c in live if c.ok]
        rounds += 1
    return rounds


def best_peer(cmds, key=lambda c: c.median_ms()):
    """The peer with the lowest value of key among those that ran."""
    peers = [c for c in cmds if c.role == "peer" and c.ok and key(c) is not None]
    return min(peers, key=key) if peers else None
