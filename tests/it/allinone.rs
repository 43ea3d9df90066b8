//! examples/all-in-one on the real engine: PostgreSQL, a model server and an
//! app server in one container under s6 (Debian's s6), with dockhand's ready,
//! waitfor, runas and healthcheck in place of the usual scripts.
//!
//! The image is built FROM a local debootstrap base that already has s6,
//! PostgreSQL and python3 (docker/images.sh s6). Everything the test makes is
//! named dockhand-aio*, and removed on drop, pass or fail.

use dockhand_tests::engine::*;
use dockhand_tests::*;
use std::time::Duration;

/// Removes the container, the volume and the image, pass or fail.
struct Cleanup {
    container: String,
    volume: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.container]);
        let _ = docker(&["volume", "rm", "-f", &self.volume]);
        let _ = docker(&["rmi", "--no-prune", &self.image]);
    }
}

const LIMIT: Duration = Duration::from_secs(180);

/// The position of the first log line containing `text`.
fn line_of(log: &str, text: &str) -> usize {
    log.lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in the log:\n{log}"))
}

fn health(name: &str) -> String {
    docker_or_empty(&[
        "inspect",
        "-f",
        "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
        name,
    ])
}

fn running(name: &str) -> bool {
    docker_or_empty(&["inspect", "-f", "{{.State.Running}}", name]) == "true"
}

/// One request to the app from inside the container (the image has Python).
fn app(name: &str, method: &str, path: &str) -> String {
    let code = format!(
        "import urllib.request as u, sys\n\
         r = u.Request('http://127.0.0.1:8000{path}', data={data}, method='{method}')\n\
         sys.stdout.write(u.build_opener(u.ProxyHandler({{}})).open(r, timeout=10).read().decode())",
        data = if method == "POST" { "b'hello'" } else { "None" },
    );
    docker_ok(&["exec", name, "python3", "-c", &code])
}

/// What s6-svstat says of a service: (up, ready).
fn svstat(name: &str, service: &str) -> (bool, bool) {
    let dir = format!("/etc/s6/{service}");
    let o = docker_ok(&["exec", name, "s6-svstat", "-o", "up,ready", &dir]);
    let f: Vec<&str> = o.split_whitespace().collect();
    (f.first() == Some(&"true"), f.get(1) == Some(&"true"))
}

/// Wait until healthy, all three services up and ready in s6, and the marker there.
fn wait_all_up(name: &str) {
    wait_until("the container is healthy", LIMIT, || {
        assert!(running(name), "the container exited:\n{}", logs(name));
        health(name) == "healthy"
    });
    for svc in ["postgres", "model", "app"] {
        assert_eq!(
            svstat(name, svc),
            (true, true),
            "{svc}: s6 has it up and ready (ready --fd 3 reached s6-supervise)"
        );
    }
}

#[test]
fn all_in_one_s6_orders_readiness_stops_postgres_fast_and_keeps_data() {
    let test = "all_in_one_s6_orders_readiness_stops_postgres_fast_and_keeps_data";
    if !available(test) || !need_root(test) {
        return;
    }
    let toolkit = toolkit("dockhand-aio/toolkit:latest");
    let base = images(&["s6"]);
    let pid = std::process::id();
    let clean = Cleanup {
        container: format!("dockhand-aio-{pid}"),
        volume: format!("dockhand-aio-{pid}-pg"),
        image: format!("dockhand-aio/example:{pid}"),
    };
    let (name, image) = (&clean.container, &clean.image);
    build(&[
        "-q",
        "--build-arg",
        &format!("BASE={base}"),
        "--build-arg",
        &format!("DOCKHAND={toolkit}"),
        "-t",
        image,
        repo().join("examples/all-in-one").to_str().unwrap(),
    ]);

    // The model takes 3 s to "load": without waitfor, the app would start
    // (and fail on its first query, or listen) long before.
    docker_ok(&[
        "run",
        "-d",
        "--name",
        name,
        "-e",
        "MODEL_LOAD_SECONDS=3",
        "-v",
        &format!("{}:/var/lib/postgresql/data", clean.volume),
        "--health-interval",
        "1s",
        "--health-start-period",
        "120s",
        image,
    ]);
    wait_all_up(name);
    let log = logs(name);
    // PID 1 is s6-svscan; the app began only after PostgreSQL accepted
    // connections and the model server listened, and the READY line came
    // after all three.
    assert_eq!(docker_ok(&["exec", name, "cat", "/proc/1/comm"]), "s6-svscan");
    let (pg, model, app_up, ready) = (
        line_of(&log, "database system is ready to accept connections"),
        line_of(&log, "model: listening"),
        line_of(&log, "app: listening"),
        line_of(&log, "AIO_READY"),
    );
    assert!(
        app_up > pg && app_up > model,
        "app before its dependencies:\n{log}"
    );
    assert!(ready > app_up, "{log}");
    assert!(log.contains("waitfor:"), "waitfor's progress lines:\n{log}");
    let marker = docker_ok(&["exec", name, "cat", "/run/aio/READY"]);
    assert!(marker.contains("pid="), "READY marker: {marker:?}");

    // Data in PostgreSQL, on the volume.
    assert_eq!(app(name, "POST", "/visits"), "1");
    assert_eq!(app(name, "POST", "/visits"), "2");
    assert_eq!(app(name, "POST", "/ask"), "olleh", "the app reaches the model");

    // docker stop: TERM to s6-svscan, which brings every service down;
    // PostgreSQL gets SIGINT (down-signal), its fast shutdown. All of it
    // ends well within the grace: exit 0, not KILL's 137.
    docker_ok(&["stop", "-t", "60", name]);
    let log = logs(name);
    let code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}} {{.State.OOMKilled}}", name]);
    assert_eq!(code, "0 false", "s6-svscan's exit:\n{log}");
    assert!(
        log.contains("received fast shutdown request"),
        "SIGINT reached the postmaster:\n{log}"
    );
    assert!(
        log.contains("database system is shut down"),
        "PostgreSQL finished:\n{log}"
    );
    assert!(log.contains("app: SIGTERM: shutting down"), "{log}");
    assert!(log.contains("model: SIGTERM: shutting down"), "{log}");
    let down = line_of(&log, "s6-svscan: all services down");
    assert!(down > line_of(&log, "database system is shut down"), "{log}");

    // Started again on the same volume: the data is there, and it comes up
    // ready as before (no new initdb).
    docker_ok(&["start", name]);
    wait_all_up(name);
    assert_eq!(app(name, "GET", "/visits"), "2");
    let log = logs(name);
    assert_eq!(
        log.matches("Success. You can now start the database server")
            .count(),
        1,
        "initdb ran once:\n{log}"
    );
}
