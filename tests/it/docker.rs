//! Docker E2E: the tools inside real containers on this machine's engine.
//!
//! There is no registry: every image is built here by docker/images.sh (the
//! toolkit image from the binaries under test, busybox-static, debootstrap
//! bases) and cached by tag. Each test uses its own container, volume and
//! Compose project names and removes them on drop, pass or fail. Images the
//! tests build are tagged dockhand-it/*; their layers stay as build cache.
//!
//! Without an engine the tests are skipped (under CI=true they fail).

use dockhand_tests::engine::{available as engine, docker, docker_ok, wait_until};
use dockhand_tests::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The engine and the images

fn images_sh() -> PathBuf {
    repo().join("docker/images.sh")
}

/// `docker/images.sh ARGS`: the image reference it prints, or its error.
fn images(args: &[&str]) -> Result<String, String> {
    let o = run(Command::new(images_sh()).args(args).stdin(Stdio::null()));
    if o.status.success() {
        Ok(stdout(&o).lines().last().unwrap_or_default().trim().to_string())
    } else {
        Err(format!("docker/images.sh {args:?} failed: {}", stderr(&o)))
    }
}

/// `docker build` through docker/images.sh, which picks the builder this
/// machine has. Returns (success, stdout + stderr).
fn build(args: &[&str]) -> (bool, String) {
    let o = run(Command::new(images_sh())
        .arg("build")
        .args(args)
        .stdin(Stdio::null()));
    (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
}

fn build_ok(args: &[&str]) -> String {
    let (ok, out) = build(args);
    assert!(ok, "docker build {args:?} failed:\n{out}");
    out
}

type Cached = OnceLock<Result<String, String>>;

fn cached(cell: &'static Cached, make: fn() -> Result<String, String>) -> String {
    cell.get_or_init(make).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// docker/Dockerfile built from the binaries under test.
fn toolkit() -> String {
    static C: Cached = OnceLock::new();
    cached(&C, || {
        for t in ["runas", "healthcheck", "waitfor", "ready", "ldcheck"] {
            bin(t);
        }
        let dir = bin_dir();
        images(&["toolkit", dir.to_str().unwrap(), "dockhand-it/toolkit:latest"])
    })
}

fn busybox_base() -> String {
    static C: Cached = OnceLock::new();
    cached(&C, || images(&["busybox"]))
}

fn python_base() -> String {
    static C: Cached = OnceLock::new();
    cached(&C, || images(&["python3"]))
}

fn postgres_base() -> String {
    static C: Cached = OnceLock::new();
    cached(&C, || images(&["postgresql"]))
}

/// The user database of the test images: app (999:999) is also in audio and
/// video, so its supplementary groups can be checked.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:999:999:app:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\naudio:x:29:app\nvideo:x:44:app\napp:x:999:\n";

/// Build an image from FROM_LINE, the toolkit binaries, /etc/passwd and /etc/group.
fn tools_image(tag: &str, base: Option<&str>) -> Result<String, String> {
    let ctx = TempDir::new("docker-ctx");
    std::fs::write(ctx.join("passwd"), PASSWD).unwrap();
    std::fs::write(ctx.join("group"), GROUP).unwrap();
    let from = match base {
        Some(b) => format!("FROM {b}\n"),
        None => "FROM scratch\n".to_string(),
    };
    let df = format!(
        "FROM {} AS dockhand\n{from}COPY --from=dockhand /usr/local/bin/ /usr/local/bin/\n\
         COPY passwd group /etc/\nENV PATH=/usr/local/bin:/bin\n",
        toolkit()
    );
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    let (ok, out) = build(&["-q", "-t", tag, ctx.path().to_str().unwrap()]);
    if ok {
        Ok(tag.to_string())
    } else {
        Err(format!("building {tag}: {out}"))
    }
}

/// FROM scratch: only /etc/passwd, /etc/group and the five binaries.
fn scratch_image() -> String {
    static C: Cached = OnceLock::new();
    cached(&C, || tools_image("dockhand-it/scratch:latest", None))
}

/// busybox-static (sh, sleep, id, ...) plus the same.
fn busybox_image() -> String {
    static C: Cached = OnceLock::new();
    cached(&C, || {
        tools_image("dockhand-it/busybox:latest", Some(&busybox_base()))
    })
}

/// examples/slim on the local Debian + python3 base.
fn slim_image() -> String {
    static C: Cached = OnceLock::new();
    cached(&C, || {
        let tag = "dockhand-it/slim:latest";
        let (ok, out) = build(&[
            "-q",
            "--build-arg",
            &format!("BASE={}", python_base()),
            "--build-arg",
            &format!("DOCKHAND={}", toolkit()),
            "-t",
            tag,
            repo().join("examples/slim").to_str().unwrap(),
        ]);
        if ok {
            Ok(tag.to_string())
        } else {
            Err(format!("building examples/slim: {out}"))
        }
    })
}

// ---------------------------------------------------------------------------
// Cleanup, names, inspection

/// A name no other test (or run) uses.
fn unique(tag: &str) -> String {
    format!("dockhand-it-{}-{tag}", std::process::id())
}

/// Removes what a test made, pass or fail.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
    compose: Option<Vec<String>>,
    compose_env: Vec<(String, String)>,
}

impl Cleanup {
    fn containers(names: &[String]) -> Cleanup {
        let mut c = Cleanup::default();
        c.containers.extend(names.iter().cloned());
        c
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(cmd) = &self.compose {
            let _ = Command::new(&cmd[0])
                .args(&cmd[1..])
                .args(["down", "-v", "--remove-orphans", "--timeout", "3"])
                .envs(self.compose_env.iter().map(|(k, v)| (k, v)))
                .output();
        }
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
        // --no-prune: the untagged layers below stay as build cache.
        for i in &self.images {
            let _ = docker(&["rmi", "--no-prune", i]);
        }
    }
}

fn inspect(name: &str, format: &str) -> String {
    docker_ok(&["inspect", "-f", format, name])
}

fn health(name: &str) -> String {
    inspect(name, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")
}

fn running(name: &str) -> bool {
    inspect(name, "{{.State.Running}}") == "true"
}

fn logs(name: &str) -> String {
    let o = docker(&["logs", "--timestamps", name]);
    format!("{}{}", stdout(&o), stderr(&o))
}

/// Docker's health-probe log, accumulated across polls (it keeps only five):
/// start time -> (exit code, output).
#[derive(Default)]
struct HealthLog(BTreeMap<String, (i64, String)>);

impl HealthLog {
    fn poll(&mut self, name: &str) {
        let o = docker(&[
            "inspect",
            "-f",
            "{{if .State.Health}}{{range .State.Health.Log}}{{.Start}}\t{{.ExitCode}}\t{{json .Output}}\n{{end}}{{end}}",
            name,
        ]);
        for line in stdout(&o).lines() {
            let mut f = line.splitn(3, '\t');
            if let (Some(start), Some(code), Some(out)) = (f.next(), f.next(), f.next()) {
                let code = code.parse().unwrap_or(-1);
                self.0.insert(start.to_string(), (code, out.to_string()));
            }
        }
    }
    fn failures_since(&self, since: &str) -> Vec<&String> {
        self.0
            .iter()
            .filter(|(start, (code, _))| *code != 0 && ts(start) >= ts(since))
            .map(|(_, (_, out))| out)
            .collect()
    }
}

/// Nanoseconds since the epoch of an RFC 3339 time as Docker prints it
/// (2026-11-22T04:50:01.123456789Z, or with a +hh:mm offset).
fn ts(s: &str) -> i128 {
    let s = s.trim();
    let bad = || panic!("not an RFC 3339 time: {s:?}");
    let n = |a: usize, b: usize| -> i64 { s.get(a..b).and_then(|x| x.parse().ok()).unwrap_or_else(bad) };
    let (y, mo, d, h, mi, sec) = (n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19));
    let mut rest = &s[19..];
    let mut nanos: i128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        nanos = format!("{digits:0<9}")[..9].parse().unwrap();
        rest = &frac[digits.len()..];
    }
    let offset: i64 = match rest {
        "Z" | "" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hh: i64 = o.get(1..3).and_then(|x| x.parse().ok()).unwrap_or_else(bad);
            let mm: i64 = o.get(4..6).and_then(|x| x.parse().ok()).unwrap_or_else(bad);
            sign * (hh * 3600 + mm * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + sec - offset;
    secs as i128 * 1_000_000_000 + nanos
}

/// The timestamp of the first `docker logs --timestamps` line containing `text`.
fn log_time(logs: &str, text: &str) -> Option<String> {
    logs.lines()
        .find(|l| l.contains(text))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
}

/// One HTTP/1.0 request to 127.0.0.1:port: (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = Vec::new();
    s.take(1 << 20).read_to_end(&mut resp).ok()?;
    let resp = String::from_utf8_lossy(&resp);
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("").to_string();
    Some((status, body))
}

/// The host port Docker published for the container's port 8000.
fn published_port(name: &str) -> u16 {
    let p = docker_ok(&["port", name, "8000/tcp"]);
    let first = p.lines().next().unwrap_or_default();
    first
        .rsplit(':')
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("docker port: {p:?}"))
}

fn proc_status(pid: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// 1. FROM scratch: runas chowns a named volume and the service runs as 999:999

#[test]
fn scratch_image_runas_chowns_volume_and_drops_to_999() {
    let test = "scratch_image_runas_chowns_volume_and_drops_to_999";
    if !engine(test) || !need_root(test) {
        return;
    }
    let image = scratch_image();
    let mut clean = Cleanup::default();
    let (name, vol) = (unique("scratch"), unique("scratch-vol"));
    clean.containers.push(name.clone());
    clean.volumes.push(vol.clone());

    // A volume with root-owned data, and a symlink that points out of it at
    // the image's /etc/passwd: runas must change the link, never its target.
    docker_ok(&["volume", "create", &vol]);
    let data = PathBuf::from(docker_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vol]));
    std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    std::fs::write(data.join("sub/deeper/b.txt"), "b").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", data.join("escape")).unwrap();

    // The "service" is waitfor waiting forever for a file that never comes:
    // nothing but our binaries is in the image.
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{vol}:/data"),
        &image,
        "runas",
        "--chown",
        "/data",
        "app",
        "--",
        "waitfor",
        "--quiet",
        "--timeout",
        "0",
        "file:///never/there",
    ]);
    let pid = inspect(&name, "{{.State.Pid}}");
    let mut st = BTreeMap::new();
    wait_until(
        "PID 1 is waitfor (runas exec'd it)",
        Duration::from_secs(30),
        || {
            assert!(running(&name), "container exited: {}", logs(&name));
            st = proc_status(&pid);
            st.get("Name").map(String::as_str) == Some("waitfor")
        },
    );
    let ids = |k: &str| st.get(k).cloned().unwrap_or_default();
    assert_eq!(
        ids("Uid").split_whitespace().collect::<Vec<_>>(),
        ["999"; 4],
        "{st:?}"
    );
    assert_eq!(
        ids("Gid").split_whitespace().collect::<Vec<_>>(),
        ["999"; 4],
        "{st:?}"
    );
    let mut groups: Vec<u32> = ids("Groups")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort();
    groups.retain(|g| *g != 999);
    assert_eq!(groups, [29, 44], "supplementary groups from /etc/group: {st:?}");
    // The host's view through docker top agrees.
    let top = docker_ok(&["top", &name, "-o", "pid,uid,gid,comm"]);
    assert!(
        top.lines()
            .any(|l| l.split_whitespace().skip(1).eq(["999", "999", "waitfor"])),
        "docker top: {top}"
    );

    use std::os::unix::fs::MetadataExt;
    for p in ["", "a.txt", "sub", "sub/deeper", "sub/deeper/b.txt", "escape"] {
        let m = std::fs::symlink_metadata(data.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (999, 999), "/data/{p} not handed over");
    }
    // The link's target inside the container (the image's /etc/passwd) was
    // not touched: the container's layer has no change under /etc.
    let diff = docker_ok(&["diff", &name]);
    assert!(
        !diff.contains("/etc"),
        "runas changed something under /etc: {diff}"
    );
    let out = logs(&name);
    assert!(out.contains("/data"), "runas reports each --chown PATH: {out}");
}

// ---------------------------------------------------------------------------
// 2. The slim example: healthy -> broken -> PID 1 signalled -> restarted -> healthy

#[test]
fn slim_example_recovers_through_healthcheck_kill_and_restart_policy() {
    let test = "slim_example_recovers_through_healthcheck_kill_and_restart_policy";
    if !engine(test) || !need_root(test) {
        return;
    }
    let image = slim_image();
    let mut clean = Cleanup::default();
    let (name, vol) = (unique("slim"), unique("slim-vol"));
    clean.containers.push(name.clone());
    clean.volumes.push(vol.clone());

    // The image's own HEALTHCHECK command (healthcheck --kill-pid1
    // --kill-after 3 --start-period 10s); only Docker's probe interval is shortened.
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--restart",
        "unless-stopped",
        "--health-interval",
        "1s",
        "-v",
        &format!("{vol}:/app/data"),
        "-p",
        "127.0.0.1::8000",
        &image,
    ]);
    wait_until("the slim example is healthy", Duration::from_secs(90), || {
        health(&name) == "healthy"
    });
    let port = published_port(&name);
    let (code, _) = http(port, "POST", "/notes", "kept across restarts").expect("POST /notes");
    assert_eq!(code, 201);
    let (_, info) = http(port, "GET", "/", "").expect("GET /");
    assert!(
        info.contains("\"uid\": 999") && info.contains("\"gid\": 999"),
        "{info}"
    );
    assert!(info.contains("\"boots\": 1"), "{info}");
    assert_eq!(inspect(&name, "{{.RestartCount}}"), "0");
    let out = logs(&name);
    assert!(out.contains("APP_READY"), "ready's log line: {out}");

    // Break /health. The healthcheck counts failures once PID 1 is older than
    // its start period, and sends SIGTERM to PID 1 (runas --init) at the
    // third; runas forwards it, the app exits, the restart policy restarts it.
    let broke_at = docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", &name]);
    let (code, _) = http(port, "POST", "/fail", "").expect("POST /fail");
    assert_eq!(code, 200);
    let mut hl = HealthLog::default();
    wait_until("the container is restarted", Duration::from_secs(90), || {
        hl.poll(&name);
        inspect(&name, "{{.RestartCount}}") != "0"
    });
    let failures = hl.failures_since(&broke_at);
    assert!(
        failures.len() >= 3,
        "restarted after fewer than 3 failed probes: {failures:?}"
    );
    let killer: Vec<_> = failures.iter().filter(|o| o.contains("SIGTERM")).collect();
    assert!(
        killer.iter().any(|o| o.contains("failure 3 of 3")),
        "no probe reported sending SIGTERM at its third failure: {failures:?}"
    );
    let out = logs(&name);
    assert!(
        out.contains("SIGTERM: shutting down"),
        "the app did not get the TERM: {out}"
    );

    wait_until(
        "the restarted container is healthy",
        Duration::from_secs(90),
        || health(&name) == "healthy",
    );
    let port = published_port(&name);
    let (_, notes) = http(port, "GET", "/notes", "").expect("GET /notes");
    assert!(notes.contains("kept across restarts"), "data lost: {notes:?}");
    let (_, info) = http(port, "GET", "/", "").expect("GET /");
    assert!(
        info.contains("\"boots\": 2") && info.contains("\"uid\": 999"),
        "{info}"
    );
}

// ---------------------------------------------------------------------------
// 3. docker stop with runas --init

/// Start `cmd` in the busybox image, wait for "started" in its log, `docker
/// stop -t 30` it: (seconds the stop took, exit code, log).
fn stop_case(clean_name: &str, cmd: &[&str]) -> (f64, i32, String) {
    let image = busybox_image();
    let mut args = vec!["run", "-d", "--name", clean_name, &image];
    args.extend_from_slice(cmd);
    docker_ok(&args);
    wait_until(&format!("{clean_name} started"), Duration::from_secs(30), || {
        assert!(running(clean_name), "exited early: {}", logs(clean_name));
        logs(clean_name).contains("service: started")
    });
    let t = Instant::now();
    docker_ok(&["stop", "-t", "30", clean_name]);
    let took = t.elapsed().as_secs_f64();
    let code = inspect(clean_name, "{{.State.ExitCode}}").parse().unwrap();
    (took, code, logs(clean_name))
}

#[test]
fn docker_stop_with_runas_init() {
    let test = "docker_stop_with_runas_init";
    if !engine(test) {
        return;
    }
    busybox_image();
    let mut clean = Cleanup::default();
    let names = [
        unique("stop-handles"),
        unique("stop-default"),
        unique("stop-ignores"),
    ];
    clean.containers.extend(names.iter().cloned());
    let cases: [Vec<&str>; 3] = [
        // Handles TERM: exits 0 on it.
        vec![
            "runas", "--init", "app", "--", "sh", "-c",
            "trap 'echo service: TERM received; exit 0' TERM; echo service: started; while :; do sleep 1 & wait $!; done",
        ],
        // Default action for TERM (busybox sleep): killed by it, 128+15.
        vec!["runas", "--init", "app", "--", "sh", "-c", "echo service: started; exec sleep 1000"],
        // Ignores TERM: runas sends KILL to its process group after --grace.
        vec![
            "runas", "--init", "--grace", "2s", "app", "--", "sh", "-c",
            "trap '' TERM; echo service: started; while :; do sleep 1; done",
        ],
    ];
    let results: Vec<(f64, i32, String)> = thread::scope(|s| {
        let hs: Vec<_> = names
            .iter()
            .zip(cases.iter())
            .map(|(n, c)| s.spawn(move || stop_case(n, c)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Docker would SIGKILL at 30 s: well below that means runas did the work.
    let (took, code, out) = &results[0];
    assert_eq!(*code, 0, "TERM handler's exit status passed through: {out}");
    assert!(
        out.contains("TERM received"),
        "TERM forwarded to the service: {out}"
    );
    assert!(*took < 15.0, "stop took {took:.1}s");
    let (took, code, out) = &results[1];
    assert_eq!(*code, 143, "killed by SIGTERM -> 128+15: {out}");
    assert!(*took < 15.0, "stop took {took:.1}s");
    let (took, code, out) = &results[2];
    assert_eq!(*code, 137, "KILL after --grace -> 128+9: {out}");
    assert!(
        *took >= 1.0 && *took < 20.0,
        "stop took {took:.1}s: --grace is 2s, Docker's timeout 30s"
    );
    assert!(out.contains("runas"), "runas says it escalated: {out}");
}

// ---------------------------------------------------------------------------
// 4. docker run --user 12345: runas execs as is, with a notice

#[test]
fn arbitrary_uid_runas_execs_without_dropping() {
    let test = "arbitrary_uid_runas_execs_without_dropping";
    if !engine(test) {
        return;
    }
    let image = busybox_image();
    let name = unique("anyuid");
    let _clean = Cleanup::containers(std::slice::from_ref(&name));
    // The ENTRYPOINT of a real image (runas --chown ... app --), run the way
    // OpenShift runs it: as an arbitrary uid with gid 0.
    let o = docker(&[
        "run",
        "--name",
        &name,
        "--user",
        "12345",
        &image,
        "runas",
        "--chown",
        "/tmp/data",
        "app",
        "--",
        "id",
    ]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("uid=12345"),
        "the command ran as the uid it was given: {out}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("runas: ")),
        "runas's notice on stderr: {err:?}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("runas: ")).count(),
        1,
        "one notice: {err}"
    );
}

// ---------------------------------------------------------------------------
// 5. docker run --cap-drop ALL: runas names the missing capability

#[test]
fn cap_drop_all_runas_names_missing_capability() {
    let test = "cap_drop_all_runas_names_missing_capability";
    if !engine(test) {
        return;
    }
    let image = busybox_image();
    let names = [unique("capdrop-chown"), unique("capdrop")];
    let _clean = Cleanup::containers(&names);
    for (name, chown, caps) in [
        (&names[0], true, &["CHOWN", "SETUID", "SETGID"][..]),
        (&names[1], false, &["SETUID", "SETGID"][..]),
    ] {
        let mut args = vec!["run", "--name", name, "--cap-drop", "ALL", &image, "runas"];
        if chown {
            args.extend(["--chown", "/tmp/data"]);
        }
        args.extend(["app", "--", "id"]);
        let o = docker(&args);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(1), "stdout: {out}\nstderr: {err}");
        assert!(!out.contains("uid="), "the command must not run: {out}");
        let upper = err.to_uppercase();
        assert!(err.starts_with("runas: "), "{err}");
        assert!(
            caps.iter().any(|c| upper.contains(&format!("CAP_{c}"))),
            "the message names a missing capability among {caps:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------
// 6. --read-only root with a tmpfs /tmp: the healthcheck state file works

#[test]
fn read_only_root_with_tmpfs_tmp_keeps_healthcheck_state() {
    let test = "read_only_root_with_tmpfs_tmp_keeps_healthcheck_state";
    if !engine(test) {
        return;
    }
    let image = busybox_image();
    let name = unique("readonly");
    let _clean = Cleanup::containers(std::slice::from_ref(&name));
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "--health-cmd",
        "healthcheck --kill-pid1 --kill-after 2 file:///tmp/up",
        &image,
        "runas",
        "--init",
        "app",
        "--",
        "sh",
        "-c",
        "touch /tmp/up && echo service: started && exec sleep 1000",
    ]);
    wait_until("healthy", Duration::from_secs(60), || {
        assert!(running(&name), "exited early: {}", logs(&name));
        health(&name) == "healthy"
    });
    let o = docker(&["exec", &name, "touch", "/written"]);
    assert!(!o.status.success(), "the root filesystem is read-only");

    // Counting two failures across two probe processes needs the state file
    // in /tmp; only then is PID 1 signalled.
    let since = docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", &name]);
    docker_ok(&["exec", &name, "rm", "/tmp/up"]);
    let mut hl = HealthLog::default();
    wait_until("the container exits", Duration::from_secs(60), || {
        hl.poll(&name);
        !running(&name)
    });
    hl.poll(&name);
    let failures = hl.failures_since(&since);
    assert!(failures.len() >= 2, "{failures:?}");
    assert!(
        failures.iter().any(|o| o.contains("failure 1 of 2"))
            && failures.iter().any(|o| o.contains("failure 2 of 2")),
        "failures counted across probes: {failures:?}"
    );
    assert!(
        !failures.iter().any(|o| o.contains("not counted")),
        "{failures:?}"
    );
    assert_eq!(inspect(&name, "{{.State.ExitCode}}"), "143", "{}", logs(&name));
}

// ---------------------------------------------------------------------------
// 7. Compose: a late database, waitfor, ready, depends_on service_healthy

/// `docker compose` (v2) or `docker-compose` (v1), whichever this machine has.
fn compose_cmd() -> Option<Vec<String>> {
    if have("docker", &["compose", "version"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else if have("docker-compose", &["version"]) {
        Some(vec!["docker-compose".into()])
    } else {
        None
    }
}

#[test]
fn compose_waitfor_ready_and_service_healthy_ordering() {
    let test = "compose_waitfor_ready_and_service_healthy_ordering";
    if !engine(test) || !need_root(test) {
        return;
    }
    let Some(compose) = compose_cmd() else {
        skip(
            test,
            "neither `docker compose` nor docker-compose is installed (make setup installs docker-compose)",
        );
        return;
    };
    let (app_image, db_image) = (slim_image(), postgres_base());
    let dir = TempDir::new("compose");
    // The example file as users run it, plus an override: local images, a
    // database that starts 8 s late, and probes every second.
    let over = dir.join("override.yml");
    std::fs::write(
        &over,
        "services:\n  db:\n    entrypoint: [\"sh\", \"-c\", \"echo db: starting in 8s; sleep 8; exec postgres\"]\n    \
         healthcheck:\n      interval: 1s\n  app:\n    healthcheck:\n      interval: 1s\n",
    )
    .unwrap();
    let project = format!("dockhandit{}", std::process::id());
    let mut cmd = compose.clone();
    cmd.extend(["-p".into(), project.clone()]);
    cmd.extend([
        "-f".into(),
        repo()
            .join("examples/compose/docker-compose.yml")
            .display()
            .to_string(),
    ]);
    cmd.extend(["-f".into(), over.display().to_string()]);
    let env = vec![
        ("APP_IMAGE".to_string(), app_image),
        ("DB_IMAGE".to_string(), db_image),
        ("APP_PORT".to_string(), free_port().to_string()),
    ];
    let mut _clean = Cleanup::default();
    _clean.compose = Some(cmd.clone());
    _clean.compose_env = env.clone();
    let compose_run = |args: &[&str]| -> Output {
        // Bounded: Compose v1 waits for service_healthy without a limit.
        run(Command::new("timeout")
            .arg("240")
            .args(&cmd)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null()))
    };
    let up = compose_run(&["up", "-d", "--no-build"]);
    let id = |svc: &str| stdout(&compose_run(&["ps", "-q", svc])).trim().to_string();
    let (db, app, worker) = (id("db"), id("app"), id("worker"));
    assert!(
        up.status.success(),
        "compose up: {}{}\napp log:\n{}",
        stdout(&up),
        stderr(&up),
        if app.is_empty() { String::new() } else { logs(&app) }
    );
    assert!(
        !db.is_empty() && !app.is_empty() && !worker.is_empty(),
        "containers: {db:?} {app:?} {worker:?}"
    );

    wait_until("the worker reached the app", Duration::from_secs(60), || {
        logs(&worker).contains("answered 201")
    });
    let (db_log, app_log, worker_log) = (logs(&db), logs(&app), logs(&worker));
    let db_up =
        log_time(&db_log, "ready to accept connections").unwrap_or_else(|| panic!("db log:\n{db_log}"));
    let app_started = inspect(&app, "{{.State.StartedAt}}");
    let listening = log_time(&app_log, "app: listening").unwrap_or_else(|| panic!("app log:\n{app_log}"));
    let ready =
        log_time(&app_log, "APP_READY").unwrap_or_else(|| panic!("ready's line, app log:\n{app_log}"));
    let worker_started = inspect(&worker, "{{.State.StartedAt}}");

    // The app container started while the database was still down, and
    // waitfor held it: the service began listening only after PostgreSQL
    // accepted connections.
    assert!(
        ts(&app_started) < ts(&db_up),
        "app started at {app_started}, db up at {db_up}: nothing to wait for"
    );
    assert!(
        app_log.contains("postgres://db:5432"),
        "waitfor reports its target:\n{app_log}"
    );
    assert!(
        ts(&listening) > ts(&db_up),
        "app listened at {listening}, before the db ({db_up}):\n{app_log}"
    );
    // ready announced after the service answered; the worker was started
    // only after that (service_healthy), and its first request succeeded.
    assert!(ts(&ready) >= ts(&listening), "{app_log}");
    assert!(
        ts(&worker_started) > ts(&ready),
        "worker started at {worker_started}, app ready at {ready}"
    );
    assert!(worker_log.contains("answered 201"), "{worker_log}");
    let marker = docker_ok(&["exec", &app, "cat", "/run/app/ready"]);
    assert!(!marker.is_empty(), "ready's marker file is empty");
    assert_eq!(inspect(&app, "{{.State.Health.Status}}"), "healthy");
}

// ---------------------------------------------------------------------------
// 8. ldcheck as a RUN step: the opencv image fails without its libraries

const CUDA_WHEELS: &[&str] = &["opencv-python", "nvidia-cuda-runtime-cu12"];

/// (soname, Debian package) that opencv-python needs on a bookworm minbase.
const OPENCV_NEEDS: &[(&str, &str)] = &[
    ("libGL.so.1", "libgl1"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libgthread-2.0.so.0", "libglib2.0-0"),
    ("libSM.so.6", "libsm6"),
    ("libICE.so.6", "libice6"),
    ("libX11.so.6", "libx11-6"),
    ("libXext.so.6", "libxext6"),
    ("libxcb.so.1", "libxcb1"),
];

fn cache_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("DOCKHAND_CACHE").unwrap_or_else(|| "/var/cache/dockhand".into()))
}

/// The wheels (with numpy, opencv's dependency) for the base image's Python,
/// downloaded once with pip into a cache outside the repository.
fn cuda_wheels(base: &str) -> Result<PathBuf, String> {
    let pyver = docker_ok(&[
        "run",
        "--rm",
        base,
        "python3",
        "-c",
        "import sys; print('%d.%d' % sys.version_info[:2])",
    ]);
    let dir = cache_dir().join(format!("wheels-cuda-py{pyver}"));
    let done = dir.join(".complete");
    if done.is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--only-binary=:all:",
        "--python-version",
        &pyver,
    ]);
    for p in [
        "manylinux2014_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux_2_28_x86_64",
    ] {
        cmd.args(["--platform", p]);
    }
    cmd.arg("-d").arg(&dir).args(CUDA_WHEELS);
    let o = run(&mut cmd);
    if !o.status.success() {
        return Err(format!("pip download {CUDA_WHEELS:?}: {}", stderr(&o)));
    }
    std::fs::write(&done, "").unwrap();
    Ok(dir)
}

/// Whether apt inside a container reaches the Debian mirror the base image names.
fn containers_reach_mirror(base: &str) -> bool {
    if std::env::var_os("DOCKHAND_IT_OFFLINE_DEBS").is_some() {
        return false;
    }
    let o = docker(&[
        "run",
        "--rm",
        base,
        "timeout",
        "60",
        "apt-get",
        "-q",
        "-o",
        "Acquire::Retries=0",
        "update",
    ]);
    o.status.success() && !stdout(&o).contains("Err:") && !stderr(&o).contains("W: ")
}

/// Download, on the host with its apt sources, the .deb files `pkgs` need on
/// top of what `base` has installed (its dpkg status decides), into `dest`.
fn download_debs(base: &str, pkgs: &[&str], dest: &Path) -> Result<(), String> {
    let state = TempDir::new("apt-state");
    let status = docker_ok(&["run", "--rm", base, "cat", "/var/lib/dpkg/status"]);
    std::fs::write(state.join("status"), status).unwrap();
    std::fs::create_dir_all(dest.join("partial")).unwrap();
    let get = || {
        run(Command::new("apt-get")
            .args(["-q", "-y", "--no-install-recommends", "--download-only"])
            .arg(format!("-oDir::State::status={}", state.join("status").display()))
            .arg(format!("-oDir::Cache::archives={}/", dest.display()))
            .arg("-oDebug::NoLocking=1")
            .arg("install")
            .args(pkgs))
    };
    let mut o = get();
    if !o.status.success() {
        // Stale package lists on the host: refresh them once.
        let _ = run(Command::new("apt-get").args(["-q", "update"]));
        o = get();
    }
    let _ = std::fs::remove_dir_all(dest.join("partial"));
    let _ = std::fs::remove_file(dest.join("lock"));
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("apt-get --download-only: {}{}", stdout(&o), stderr(&o)))
    }
}

#[test]
fn ldcheck_run_step_fails_opencv_build_without_libraries() {
    let test = "ldcheck_run_step_fails_opencv_build_without_libraries";
    if !engine(test) || !need_root(test) {
        return;
    }
    let (base, dockhand) = (python_base(), toolkit());
    let wheels = cuda_wheels(&base).unwrap_or_else(|e| panic!("{e}"));

    // The example's build context, plus the wheels (and, when containers
    // cannot reach the mirror, the .deb files) in its offline/ directory.
    let ctx = TempDir::new("cuda-ctx");
    let src = repo().join("examples/cuda");
    for f in ["Dockerfile", "requirements.txt", "app.py"] {
        std::fs::copy(src.join(f), ctx.join(f)).unwrap();
    }
    let offline = ctx.join("offline");
    std::fs::create_dir_all(&offline).unwrap();
    for e in std::fs::read_dir(&wheels).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "whl") {
            std::fs::copy(&p, offline.join(p.file_name().unwrap())).unwrap();
        }
    }
    let mut packages: Vec<&str> = OPENCV_NEEDS.iter().map(|x| x.1).collect();
    packages.dedup();
    let apt = containers_reach_mirror(&base);
    if !apt {
        eprintln!(
            "{test}: containers do not reach the Debian mirror; using .deb files downloaded on the host"
        );
        download_debs(&base, &packages, &offline).unwrap_or_else(|e| panic!("{e}"));
    }

    let tag = format!("dockhand-it/cuda:{}", std::process::id());
    let mut _clean = Cleanup::default();
    _clean.images.push(tag.clone());
    let common = [
        "--build-arg".to_string(),
        format!("BASE={base}"),
        "--build-arg".into(),
        format!("DOCKHAND={dockhand}"),
        "--build-arg".into(),
        "PIP_NO_INDEX=1".into(),
    ];
    let ctx_s = ctx.path().to_str().unwrap().to_string();

    // Without the system libraries: the ldcheck step fails the build, naming
    // each missing library and its package.
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    args.extend(["--build-arg", "APT_PACKAGES=", "-t", &tag, &ctx_s]);
    let (ok, out) = build(&args);
    assert!(!ok, "the build must fail without the libraries:\n{out}");
    assert!(
        out.contains(r#"RUN ["ldcheck", "/opt/venv"]"#),
        "it failed before the ldcheck step:\n{out}"
    );
    let tail = &out[out.find(r#"RUN ["ldcheck""#).unwrap()..];
    for (soname, package) in OPENCV_NEEDS {
        assert!(tail.contains(soname), "ldcheck does not name {soname}:\n{tail}");
        assert!(
            tail.contains(package),
            "ldcheck does not name package {package} (for {soname}):\n{tail}"
        );
    }
    assert!(
        !tail.contains("libcuda.so.1") || tail.contains("run time"),
        "libcuda.so.1 is the driver's:\n{tail}"
    );
    assert!(
        docker(&["image", "inspect", &tag]).status.code() != Some(0),
        "no image from a failed build"
    );

    // With them (the example's default APT_PACKAGES): the same step passes.
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    args.extend(["-t", &tag, &ctx_s]);
    let out = build_ok(&args);
    let tail = &out[out.find(r#"RUN ["ldcheck""#).expect("ldcheck step")..];
    assert!(
        !tail.lines().nth(1).unwrap_or("").contains("Using cache"),
        "the ldcheck step did not run:\n{tail}"
    );
    // And what ldcheck promised holds: the real imports work.
    let run_out = docker_ok(&["run", "--rm", &tag]);
    assert!(
        run_out.contains("opencv ") && run_out.contains("CUDA runtime 12."),
        "{run_out}"
    );
    eprintln!(
        "{test}: system packages from {}; app says: {run_out}",
        if apt { "apt in the build" } else { "host .debs" }
    );
}

// ---------------------------------------------------------------------------
// 9. runas --init on a terminal (docker run -t, -it) and with a real-time
//    STOPSIGNAL (systemd's SIGRTMIN+3)

#[test]
fn runas_init_on_a_terminal_and_with_a_realtime_stop_signal() {
    let test = "runas_init_on_a_terminal_and_with_a_realtime_stop_signal";
    if !engine(test) {
        return;
    }
    let image = busybox_image();
    let names = [unique("tty-t"), unique("tty-it"), unique("rtmin3")];
    let _clean = Cleanup::containers(&names);
    let limit = "120";

    // -t: runas used to stop in tcsetpgrp and hang before COMMAND started.
    // COMMAND's process group (field 5 of /proc/self/stat) is the
    // terminal's foreground group (field 8).
    let o = run(Command::new("timeout").args([
        "-s",
        "KILL",
        limit,
        "docker",
        "run",
        "-t",
        "--name",
        &names[0],
        &image,
        "runas",
        "--init",
        "app",
        "--",
        "sh",
        "-c",
        "read -r _ _ _ _ pgrp _ _ tpgid _ < /proc/self/stat; echo \"fg=$pgrp/$tpgid\"",
    ]));
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    let fg = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("fg="))
        .unwrap_or_else(|| panic!("{out}"));
    let (pgrp, tpgid) = fg.split_once('/').unwrap();
    assert_eq!(pgrp, tpgid, "COMMAND holds the terminal's foreground: {out}");

    // -it with an interactive shell, typed on a terminal (script(1) gives
    // docker's client one): the shell answers, and its status comes back.
    // Each line is typed only after the shell has shown its prompt: input
    // typed before the container's terminal exists is not guaranteed to
    // reach it.
    if have("script", &["--version"]) {
        // --foreground: timeout otherwise moves docker's client into a
        // background process group of the terminal, where setting raw mode
        // stops it (SIGTTOU) before it attaches. Whether that shows depends
        // on the shell script(1) runs (bash execs a lone command, dash does
        // not), so the shell is named here.
        let line = format!(
            "timeout --foreground -s KILL {limit} docker run -it -e PS1=prompt-ready= --name {} {image} \
             runas --init app -- sh -i",
            names[1]
        );
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut typed = child.stdin.take().unwrap();
        let screen = Screen::of(child.stdout.take().unwrap());
        screen.wait_for("prompt-ready=", 1);
        typed.write_all(b"echo hi-$((6*7))\n").unwrap();
        screen.wait_for("hi-42", 1);
        screen.wait_for("prompt-ready=", 2);
        typed.write_all(b"exit 3\n").unwrap();
        let o = child.wait_with_output().unwrap();
        drop(typed);
        let out = screen.text();
        assert_eq!(o.status.code(), Some(3), "script: {out}{}", stderr(&o));
        assert_eq!(
            inspect(&names[1], "{{.State.ExitCode}}"),
            "3",
            "the shell's status through runas: {out}"
        );
    } else {
        skip(test, "the -it part needs script (bsdutils)");
    }

    // STOPSIGNAL SIGRTMIN+3 (37 for Docker and glibc): runas as PID 1 used
    // to drop it, so docker stop waited its whole timeout and sent KILL.
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &names[2],
        "--stop-signal",
        "SIGRTMIN+3",
        &image,
        "runas",
        "--init",
        "app",
        "--",
        "sh",
        "-c",
        "trap 'echo service: RTMIN+3 received; exit 0' 37; echo service: started; \
         while :; do sleep 1 & wait $!; done",
    ]);
    wait_until("the service started", Duration::from_secs(60), || {
        logs(&names[2]).contains("service: started")
    });
    docker_ok(&["stop", "-t", "30", &names[2]]);
    let out = logs(&names[2]);
    assert_eq!(
        inspect(&names[2], "{{.State.ExitCode}}"),
        "0",
        "the trap's status, not 137: {out}"
    );
    // Docker's SIGKILL at 30 s would leave 137 and no trap line.
    assert!(out.contains("RTMIN+3 received"), "{out}");
}

/// What a terminal program prints, read on a thread so every wait is
/// bounded; prompts end without a newline, so this reads bytes, not lines.
struct Screen(std::sync::Arc<(std::sync::Mutex<Shown>, std::sync::Condvar)>);

/// The bytes shown so far, and whether the program closed its output.
type Shown = (Vec<u8>, bool);

impl Screen {
    fn of(mut out: impl Read + Send + 'static) -> Screen {
        let shared = std::sync::Arc::new((
            std::sync::Mutex::new((Vec::new(), false)),
            std::sync::Condvar::new(),
        ));
        let writer = shared.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = out.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*writer;
                let mut g = lock.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    cv.notify_all();
                    return;
                }
                g.0.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Screen(shared)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0 .0.lock().unwrap().0).into_owned()
    }

    /// Waits (two minutes at most) until `what` has appeared `times` times.
    fn wait_for(&self, what: &str, times: usize) {
        let (lock, cv) = &*self.0;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut g = lock.lock().unwrap();
        loop {
            let seen = String::from_utf8_lossy(&g.0).matches(what).count();
            if seen >= times {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if g.1 || left.is_zero() {
                let shown = String::from_utf8_lossy(&g.0).into_owned();
                let closed = g.1;
                // Released first, so the reader thread is not poisoned.
                drop(g);
                panic!(
                    "waited for {what:?} (x{times}); {}; the terminal shows: {shown}",
                    if closed {
                        "the program closed its output"
                    } else {
                        "two minutes passed"
                    }
                );
            }
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }
}

// ---------------------------------------------------------------------------
// runas --stop-delay and what the service leaves; healthcheck lines in
// docker logs; a PID 1 that a signal did not end (issue 22)

/// The position of `what` in `text`; panics when it is not there.
fn at(text: &str, what: &str) -> usize {
    text.find(what)
        .unwrap_or_else(|| panic!("no {what:?} in: {text}"))
}

/// A service (on stderr, the stream runas writes to, so that the log keeps
/// their order) that answers USR1 and exits 0 on TERM.
const HOLDS: &str =
    "trap 'echo service: got USR1 >&2' USR1; trap 'echo service: got TERM >&2; exit 0' TERM; \
                     echo service: started >&2; while :; do sleep 1 & wait $!; done";

#[test]
fn runas_stop_delay_and_what_the_service_leaves_under_docker() {
    let test = "runas_stop_delay_and_what_the_service_leaves_under_docker";
    if !engine(test) {
        return;
    }
    let image = busybox_image();
    let names = [
        unique("stop-delay-kill"),
        unique("stop-delay-stop"),
        unique("stop-drain"),
    ];
    let _clean = Cleanup::containers(&names);
    let started = |n: &str| {
        wait_until(&format!("{n} started"), Duration::from_secs(60), || {
            assert!(running(n), "exited early: {}", logs(n));
            logs(n).contains("service: started")
        })
    };

    // The TERM Docker sends is held: through the delay the container runs
    // (a command runs in it, a USR1 reaches the service) and the service
    // has no TERM. A second TERM passes it on.
    let n = &names[0];
    docker_ok(&[
        "run",
        "-d",
        "--name",
        n,
        &image,
        "runas",
        "--init",
        "--stop-delay",
        "1h",
        "app",
        "--",
        "sh",
        "-c",
        HOLDS,
    ]);
    started(n);
    docker_ok(&["kill", "--signal", "TERM", n]);
    wait_until("runas holds the TERM", Duration::from_secs(60), || {
        logs(n).contains("runas: got SIGTERM; passing it on after --stop-delay 1h")
    });
    docker_ok(&["exec", n, "sh", "-c", "kill -0 1"]);
    docker_ok(&["kill", "--signal", "USR1", n]);
    wait_until("the service answers USR1", Duration::from_secs(60), || {
        logs(n).contains("service: got USR1")
    });
    let out = logs(n);
    assert!(running(n) && !out.contains("got TERM"), "{out}");
    docker_ok(&["kill", "--signal", "TERM", n]);
    wait_until("the container exits", Duration::from_secs(60), || !running(n));
    let out = logs(n);
    assert_eq!(inspect(n, "{{.State.ExitCode}}"), "0", "{out}");
    assert!(
        at(&out, "service: got USR1") < at(&out, "second SIGTERM: passing SIGTERM on now"),
        "{out}"
    );
    assert!(
        at(&out, "passing SIGTERM on now") < at(&out, "service: got TERM"),
        "{out}"
    );

    // docker stop: runas holds the TERM for the delay, then passes it on,
    // and the service's status comes back (Docker's KILL at 30 s would
    // leave 137 and no TERM line).
    let n = &names[1];
    docker_ok(&[
        "run",
        "-d",
        "--name",
        n,
        &image,
        "runas",
        "--init",
        "--stop-delay",
        "1s",
        "app",
        "--",
        "sh",
        "-c",
        HOLDS,
    ]);
    started(n);
    docker_ok(&["stop", "-t", "30", n]);
    let out = logs(n);
    assert_eq!(inspect(n, "{{.State.ExitCode}}"), "0", "{out}");
    assert!(
        at(&out, "passing it on after --stop-delay 1s")
            < at(&out, "--stop-delay is over: passing SIGTERM on")
            && at(&out, "--stop-delay is over") < at(&out, "service: got TERM"),
        "{out}"
    );

    // docker stop of a service that exits at once on TERM and leaves a
    // child behind: the child (TERM from runas, after the service ended)
    // runs its cleanup before the container ends, and the container's
    // status is the service's. Before, runas exited with the service and
    // the kernel KILLed the child mid-cleanup or before it.
    let n = &names[2];
    let service = "sh -c 'trap \"echo child: cleaning up >&2; exit 0\" TERM; touch /tmp/child; \
                   while :; do sleep 1 & wait $!; done' & while [ ! -e /tmp/child ]; do sleep 0.1; done; \
                   trap 'exit 5' TERM; echo service: started >&2; while :; do sleep 1 & wait $!; done";
    docker_ok(&[
        "run", "-d", "--name", n, &image, "runas", "--init", "app", "--", "sh", "-c", service,
    ]);
    started(n);
    docker_ok(&["stop", "-t", "30", n]);
    let out = logs(n);
    assert_eq!(
        inspect(n, "{{.State.ExitCode}}"),
        "5",
        "the service's status: {out}"
    );
    assert!(
        at(
            &out,
            "runas: command ended (status 5); sending SIGTERM to what it left"
        ) < at(&out, "child: cleaning up"),
        "{out}"
    );
}

#[test]
fn healthcheck_lines_in_docker_logs_and_a_pid1_the_signal_did_not_end() {
    let test = "healthcheck_lines_in_docker_logs_and_a_pid1_the_signal_did_not_end";
    if !engine(test) {
        return;
    }
    let image = busybox_image();
    let names = [unique("hc-log"), unique("hc-hung"), unique("hc-log-denied")];
    let _clean = Cleanup::containers(&names);

    // PID 1 is runas --init, dropped to app; the probe, root, may open
    // its stderr (a pipe of root's) with CAP_SYS_PTRACE.
    let n = &names[0];
    docker_ok(&[
        "run",
        "-d",
        "--name",
        n,
        "--cap-add",
        "SYS_PTRACE",
        "--health-cmd",
        "healthcheck --log-to-pid1 tcp://127.0.0.1:1",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        &image,
        "runas",
        "--init",
        "app",
        "--",
        "sh",
        "-c",
        "echo service: started; while :; do sleep 1 & wait $!; done",
    ]);
    wait_until("the container is unhealthy", Duration::from_secs(90), || {
        health(n) == "unhealthy"
    });
    wait_until(
        "docker logs shows the probe's line",
        Duration::from_secs(60),
        || logs(n).contains("healthcheck: unhealthy: tcp://127.0.0.1:1 -> connection refused"),
    );
    // Without it: one line in the probe's output says why; still unhealthy.
    let n = &names[2];
    docker_ok(&[
        "run",
        "-d",
        "--name",
        n,
        "--health-cmd",
        "healthcheck --log-to-pid1 tcp://127.0.0.1:1",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        &image,
        "runas",
        "--init",
        "app",
        "--",
        "sh",
        "-c",
        "echo service: started; while :; do sleep 1 & wait $!; done",
    ]);
    let mut hl = HealthLog::default();
    wait_until("a probe says it cannot write", Duration::from_secs(90), || {
        hl.poll(n);
        hl.0.values().any(|(code, out)| {
            *code == 1 && out.contains("--log-to-pid1: cannot write to /proc/1/fd/2: permission denied")
        })
    });
    assert!(!logs(n).contains("healthcheck: unhealthy"), "{}", logs(n));

    // PID 1 is a shell that takes TERM and goes on: the first failing probe
    // sends TERM, the next ones say that it did not end and what to do,
    // and send nothing.
    let n = &names[1];
    docker_ok(&[
        "run",
        "-d",
        "--name",
        n,
        "--health-cmd",
        "healthcheck --kill-pid1 --kill-after 1 --log-to-pid1 --state /tmp/hc.state tcp://127.0.0.1:1",
        "--health-interval",
        "1s",
        &image,
        "sh",
        "-c",
        "trap 'echo pid1: got TERM >&2' TERM; trap 'echo pid1: got USR1 >&2' USR1; echo service: started >&2; \
         while :; do sleep 1 & wait $!; done",
    ]);
    let still = "is still the process an earlier probe sent SIGTERM (same start time)";
    wait_until("two probes after the TERM", Duration::from_secs(90), || {
        logs(n).matches(still).count() >= 2
    });
    // A USR1 sent now is answered after any TERM the probes sent.
    docker_ok(&["kill", "--signal", "USR1", n]);
    wait_until("PID 1 answers USR1", Duration::from_secs(60), || {
        logs(n).contains("pid1: got USR1")
    });
    let out = logs(n);
    assert_eq!(out.matches("pid1: got TERM").count(), 1, "{out}");
    assert_eq!(out.matches("sending SIGTERM to PID 1 (sh)").count(), 1, "{out}");
    assert!(
        at(&out, "sending SIGTERM to PID 1 (sh)") < at(&out, still),
        "{out}"
    );
    assert!(out.contains("run the service under runas --init"), "{out}");
    assert!(running(n), "{out}");
}
