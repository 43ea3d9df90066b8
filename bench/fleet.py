"""The fleet figure: the CPU a fleet of small services spends on its health probes.

Run by bench/fleet.sh (alone, or from bench/run.sh), which builds the images first. N containers of
examples/fleet run with the same probe as their HEALTHCHECK, every second, for a window of S seconds;
the CPU each container's cgroup used in the window (probe processes run inside it) is summed over the
fleet, and the same fleet without a HEALTHCHECK is the baseline subtracted. Each probe kind runs in
turn, in rounds. Writes its section into bench/RESULTS.md (between the fleet markers).
Python standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = [
    ("none", "no HEALTHCHECK (baseline)"),
    ("dockhand", '`["healthcheck", "--timeout", "3s", URL]`'),
    ("curl", '`["curl", "-fsS", "-o", "/dev/null", "--max-time", "3", URL]`'),
    ("python", "`[\"python3\", \"-c\", \"...urllib.request.urlopen(URL, timeout=3)...\"]`"),
]
BEGIN, END = "<!-- fleet:begin -->", "<!-- fleet:end -->"
PREFIX = "dockhand-fleet-bench"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(msg):
    print(f"fleet: {msg}", file=sys.stderr, flush=True)


def docker(*args, check=True):
    r = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"fleet: docker {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def cgroup_usage_ns(pid):
    """CPU time (ns) used by the cgroup of process `pid`: cgroup v2 cpu.stat, else v1 cpuacct."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [l.rstrip("\n").split(":", 2) for l in f]
    for _, ctrl, path in lines:
        if ctrl == "" and os.path.exists(f"/sys/fs/cgroup{path}/cpu.stat"):
            with open(f"/sys/fs/cgroup{path}/cpu.stat") as f:
                for l in f:
                    k, v = l.split()
                    if k == "usage_usec":
                        return int(v) * 1000
    for _, ctrl, path in lines:
        if "cpuacct" in ctrl.split(","):
            for mount in ("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"):
                p = f"{mount}{path}/cpuacct.usage"
                if os.path.exists(p):
                    with open(p) as f:
                        return int(f.read())
    raise SystemExit(f"fleet: no CPU accounting found for pid {pid}'s cgroup")


def hits(ip):
    with OPENER.open(f"http://{ip}:8000/hits", timeout=5) as r:
        return int(r.read())


def wait(what, limit, f):
    end = time.monotonic() + limit
    while not f():
        if time.monotonic() > end:
            raise SystemExit(f"fleet: timed out after {limit}s waiting until {what}")
        time.sleep(0.5)


def remove_all():
    ids = docker("ps", "-aq", "--filter", f"label={PREFIX}", check=False).split()
    if ids:
        docker("rm", "-f", *ids, check=False)


def measure(kind, image, n, seconds):
    """One window of one probe kind: (fleet CPU ns, probes answered, window s)."""
    names = [f"{PREFIX}-{kind}-{i}" for i in range(n)]
    try:
        for name in names:
            docker("run", "-d", "--name", name, "--label", PREFIX, "--network", "bridge", image)
        info = {}
        for name in names:
            pid, ip = docker("inspect", "-f", "{{.State.Pid}} {{.NetworkSettings.IPAddress}}", name).split()
            info[name] = (int(pid), ip)

        def up():
            if kind == "none":
                try:
                    return all(hits(ip) >= 0 for _, ip in info.values())
                except OSError:
                    return False
            st = docker("inspect", "-f", "{{.State.Health.Status}}", *names).split()
            return all(s == "healthy" for s in st)

        wait(f"{n} {kind} services are up", 180, up)
        h0 = {name: hits(ip) for name, (_, ip) in info.items()}
        t0 = time.monotonic()
        c0 = {name: cgroup_usage_ns(pid) for name, (pid, _) in info.items()}
        time.sleep(seconds)
        c1 = {name: cgroup_usage_ns(pid) for name, (pid, _) in info.items()}
        t1 = time.monotonic()
        h1 = {name: hits(ip) for name, (_, ip) in info.items()}
        for name in names:
            if docker("inspect", "-f", "{{.State.Running}}", name) != "true":
                raise SystemExit(f"fleet: {name} stopped during the window")
        cpu = sum(c1[x] - c0[x] for x in names)
        probes = sum(h1[x] - h0[x] for x in names)
        return cpu, probes, t1 - t0
    finally:
        remove_all()


def render(results, args, images, commit):
    base_cpu, _, base_wall = results["none"]
    base_rate = base_cpu / base_wall  # ns of CPU per second of the baseline fleet
    rows = {}
    for kind, _ in KINDS[1:]:
        cpu, probes, wall = results[kind]
        extra = cpu - base_rate * wall
        rows[kind] = {
            "probes": probes,
            "per_probe_ms": extra / probes / 1e6 if probes else float("nan"),
            "core_pct": extra / wall / 1e9 * 100,
            "fleet_ms_60s": extra / wall * 60 / 1e6,
            "wall": wall,
        }
    ref = rows["dockhand"]
    load = " / ".join("%.1f" % x for x in args.load)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [
        BEGIN,
        "## Fleet: CPU spent on health probes",
        "",
        f"Measured {now} on {os.cpu_count()} CPUs, Linux {platform.release()}, dockhand commit {commit}, by "
        f"`bench/fleet.sh` ({args.rounds} round(s), {args.seconds:g} s per probe kind per round). "
        f"{args.services} containers of [examples/fleet](../examples/fleet/Dockerfile) (a Python "
        "`http.server`), each with the probe as its `HEALTHCHECK` every 1 s (Docker's interval: 1 s between "
        "the end of one probe and the start of the next). CPU is read from each container's cgroup "
        "(`cpu.stat` usage_usec, or `cpuacct.usage` on cgroup v1) before and after the window; the probe "
        "processes run inside it. The same fleet without a `HEALTHCHECK` is the baseline subtracted. "
        "Probes are counted by the service (`/health` requests it answered). What a probe costs here "
        "includes the work the runtime does inside the container to start it and the service answering "
        "it, which are the same for the three: the ratios understate the difference between the probe "
        "programs themselves.",
        "",
        "| probe (HEALTHCHECK CMD) | probes | CPU per probe | per probe, ratio to dockhand | fleet CPU per 60 s "
        "| share of one core | fleet, ratio to dockhand |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, desc in KINDS[1:]:
        r = rows[kind]
        md.append(
            f"| {kind}: {desc} | {r['probes']} | {r['per_probe_ms']:.1f} ms | "
            f"{r['per_probe_ms'] / ref['per_probe_ms']:.2f}x | {r['fleet_ms_60s']:.0f} ms | "
            f"{r['core_pct']:.1f}% | {r['fleet_ms_60s'] / ref['fleet_ms_60s']:.2f}x |"
        )
    md += [
        "",
        "Docker starts the next probe an interval after the previous one ended, so a slower probe runs "
        "fewer times in the window: the fleet columns are what the fleet paid in this window, the "
        "per-probe columns what one probe costs.",
        "",
        f"Load average (1 min) at the start and the end: {load}. CPU time is what the containers used, "
        "whatever else runs, but a saturated machine delays probes, so fewer run in the window.",
        "",
        f"Baseline (no probe): {base_rate / 1e6 * 60:.0f} ms of CPU per 60 s for the whole fleet. "
        f"URL: `http://127.0.0.1:8000/health`. Images: {', '.join(f'`{i}`' for i in images)}.",
        END,
    ]
    return "\n".join(md) + "\n", rows


def write_section(path, section):
    text = open(path).read() if os.path.exists(path) else "# dockhand benchmark results\n"
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + section.rstrip("\n") + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-prefix", required=True, help="IMAGE-KIND names each kind's image (from fleet.sh)")
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    remove_all()
    args.load = [os.getloadavg()[0]]
    images = [f"{args.image_prefix}-{k}" for k, _ in KINDS]
    totals = {k: [0, 0, 0.0] for k, _ in KINDS}
    for rnd in range(args.rounds):
        # Rotate the order each round, so drift on the machine hits every kind alike.
        order = KINDS[rnd % len(KINDS):] + KINDS[: rnd % len(KINDS)]
        for kind, _ in order:
            log(f"round {rnd + 1}/{args.rounds}: {args.services} services, probe {kind}, {args.seconds:g} s")
            cpu, probes, wall = measure(kind, f"{args.image_prefix}-{kind}", args.services, args.seconds)
            t = totals[kind]
            t[0], t[1], t[2] = t[0] + cpu, t[1] + probes, t[2] + wall
            log(f"  {cpu / 1e6:.0f} ms CPU, {probes} probes in {wall:.1f} s")
    args.load.append(os.getloadavg()[0])
    section, rows = render({k: tuple(v) for k, v in totals.items()}, args, images, args.commit)
    write_section(args.out, section)
    print(section)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
