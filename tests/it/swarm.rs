//! Docker Swarm E2E: examples/swarm/stack.yml deployed with `docker stack
//! deploy` on a single-node swarm, with local images (no registry).
//!
//! The test initialises the swarm on 127.0.0.1 and leaves it afterwards. An
//! engine that is already in a swarm is used only when it is a single-node
//! manager, and then left in it; only this test's stack is ever removed.
//! Everything it makes is named dockhand-swarm*.

use dockhand_tests::engine::*;
use dockhand_tests::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The swarm this test runs on; leaves it on drop when the test created it,
/// and removes the docker_gwbridge network that `swarm init` made.
struct Swarm {
    created: bool,
    made_gwbridge: bool,
}

impl Swarm {
    /// A usable single-node swarm, or None after `skip`.
    fn join(test: &str) -> Option<Swarm> {
        let state = docker_ok(&["info", "-f", "{{.Swarm.LocalNodeState}}"]);
        match state.as_str() {
            "inactive" => {
                let had_gwbridge = docker(&["network", "inspect", "docker_gwbridge"])
                    .status
                    .success();
                docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
                Some(Swarm {
                    created: true,
                    made_gwbridge: !had_gwbridge,
                })
            }
            "active" => {
                let info = docker_ok(&["info", "-f", "{{.Swarm.ControlAvailable}} {{.Swarm.Nodes}}"]);
                if info == "true 1" {
                    Some(Swarm {
                        created: false,
                        made_gwbridge: false,
                    })
                } else {
                    skip(
                        test,
                        &format!("the engine is in a swarm that is not a single-node manager ({info}); not touching it"),
                    );
                    None
                }
            }
            other => {
                skip(test, &format!("the engine's swarm state is {other:?}"));
                None
            }
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if self.created {
            let _ = docker(&["swarm", "leave", "--force"]);
            if self.made_gwbridge {
                let _ = docker(&["network", "rm", "docker_gwbridge"]);
            }
        }
    }
}

/// This test's stack: removed on drop, with its volumes, once its containers
/// and network are gone.
struct Stack {
    name: String,
    images: Vec<String>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        let _ = docker(&["stack", "rm", &self.name]);
        let end = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < end {
            let left = docker_or_empty(&["ps", "-aq", "--filter", &label]);
            let nets = docker_or_empty(&["network", "ls", "-q", "--filter", &label]);
            if left.is_empty() && nets.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for v in docker_or_empty(&["volume", "ls", "-q", "--filter", &label]).lines() {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            let _ = docker(&["rmi", "--no-prune", i]);
        }
    }
}

/// One task of a service, from `docker inspect` of its id.
#[derive(Debug, Clone)]
struct Task {
    id: String,
    state: String,
    desired: String,
    err: String,
    container: String,
    image: String,
}

fn tasks(service: &str) -> Vec<Task> {
    let ids = docker_or_empty(&["service", "ps", "-q", "--no-trunc", service]);
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec![
        "inspect",
        "--type",
        "task",
        "-f",
        "{{.ID}}\t{{.Status.State}}\t{{.DesiredState}}\t{{json .Status.Err}}\t\
         {{if .Status.ContainerStatus}}{{.Status.ContainerStatus.ContainerID}}{{end}}\t{{.Spec.ContainerSpec.Image}}",
    ];
    args.extend(ids.lines());
    docker_or_empty(&args)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 6).then(|| Task {
                id: f[0].into(),
                state: f[1].into(),
                desired: f[2].into(),
                err: f[3].into(),
                container: f[4].into(),
                image: f[5].into(),
            })
        })
        .collect()
}

/// The running tasks of `service` whose containers Docker reports healthy.
fn healthy(service: &str) -> Vec<Task> {
    tasks(service)
        .into_iter()
        .filter(|t| t.state == "running" && t.desired == "running" && !t.container.is_empty())
        .filter(|t| {
            docker_or_empty(&["inspect", "-f", "{{.State.Health.Status}}", &t.container]) == "healthy"
        })
        .collect()
}

/// What a poll saw, for the panic message when a deadline passes.
fn show(service: &str) -> String {
    docker_or_empty(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Name}} {{.Image}} {{.DesiredState}} / {{.CurrentState}} {{.Error}}",
        service,
    ])
}

/// One HTTP request to the app from inside its container (the image has
/// Python): the response body; panics when the request fails.
fn http_in(container: &str, method: &str, path: &str, body: &str) -> String {
    let code = format!(
        "import urllib.request as u, sys\n\
         r = u.Request('http://127.0.0.1:8000{path}', data={data}, method='{method}')\n\
         sys.stdout.write(u.build_opener(u.ProxyHandler({{}})).open(r, timeout=10).read().decode())",
        data = if method == "POST" {
            format!("{body:?}.encode()")
        } else {
            "None".into()
        },
    );
    docker_ok(&["exec", container, "python3", "-c", &code])
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn swarm_stack_replaces_unhealthy_rolls_back_scales_and_stops_on_term() {
    let test = "swarm_stack_replaces_unhealthy_rolls_back_scales_and_stops_on_term";
    if !available(test) || !need_root(test) {
        return;
    }
    // The images first: the swarm exists only while it is used.
    let toolkit = toolkit("dockhand-swarm/toolkit:latest");
    let python = images(&["python3"]);
    let db_image = images(&["postgresql"]);
    let (app_image, broken_image) = ("dockhand-swarm/slim:latest", "dockhand-swarm/slim-broken:latest");
    build(&[
        "-q",
        "--build-arg",
        &format!("BASE={python}"),
        "--build-arg",
        &format!("DOCKHAND={toolkit}"),
        "-t",
        app_image,
        repo().join("examples/slim").to_str().unwrap(),
    ]);
    // A release whose app listens on another port: its healthcheck never passes.
    let ctx = TempDir::new("swarm-broken");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {app_image}\nENV APP_PORT=8001\n"),
    )
    .unwrap();
    build(&["-q", "-t", broken_image, ctx.path().to_str().unwrap()]);

    let Some(_swarm) = Swarm::join(test) else {
        return;
    };
    let name = format!("dockhand-swarm-{}", std::process::id());
    let _stack = Stack {
        name: name.clone(),
        images: vec![broken_image.into(), app_image.into()],
    };
    let (svc, db) = (format!("{name}_app"), format!("{name}_db"));

    // The example as users deploy it, with probes every second, a grace period
    // long enough that a KILL after it could not be mistaken for a quick stop,
    // and a monitor window that fits the shorter start period.
    let over = ctx.join("override.yml");
    std::fs::write(
        &over,
        "version: \"3.8\"\nservices:\n  db:\n    healthcheck:\n      interval: 1s\n  app:\n    \
         healthcheck:\n      interval: 1s\n      retries: 3\n      start_period: 5s\n    \
         stop_grace_period: 60s\n    deploy:\n      update_config:\n        monitor: 30s\n",
    )
    .unwrap();
    let stack_file = repo().join("examples/swarm/stack.yml");
    let port = free_port().to_string();
    let deploy = |image: &str| {
        let o = run(std::process::Command::new("docker")
            .args(["stack", "deploy", "--resolve-image", "never", "-c"])
            .arg(&stack_file)
            .arg("-c")
            .arg(&over)
            .arg(&name)
            .env("APP_IMAGE", image)
            .env("DB_IMAGE", &db_image)
            .env("APP_PORT", &port));
        assert!(
            o.status.success(),
            "docker stack deploy: {}{}",
            stdout(&o),
            stderr(&o)
        );
    };
    deploy(app_image);

    // 1. Healthy, then its health endpoint fails: Swarm replaces the task
    // (no --kill-pid1), and the note in the volume is still there.
    let mut first = Vec::new();
    wait_until("the db and the app are healthy", LIMIT, || {
        first = healthy(&svc);
        first.len() == 1 && healthy(&db).len() == 1
    });
    let old = first.remove(0);
    assert_eq!(
        http_in(&old.container, "POST", "/notes", "kept across tasks"),
        "stored"
    );
    let boots_before = http_in(&old.container, "GET", "/", "");
    http_in(&old.container, "POST", "/fail", "");
    let mut new = Vec::new();
    wait_until("Swarm replaced the unhealthy task", LIMIT, || {
        new = healthy(&svc);
        let replaced = new.len() == 1 && new[0].id != old.id;
        assert!(replaced || new.len() <= 1, "{}", show(&svc));
        replaced
    });
    let failed = tasks(&svc).into_iter().find(|t| t.id == old.id);
    let failed = failed.unwrap_or_else(|| panic!("the old task is gone from the history: {}", show(&svc)));
    // Swarm stopped it for its health: the container (kept in the task
    // history) is unhealthy, from healthcheck's 503s. The task ends
    // "complete" (runas forwarded the stop's TERM and the app exited 0), or
    // "failed" with "unhealthy container" when the stop was not clean.
    assert!(
        failed.state == "complete" || (failed.state == "failed" && failed.err.contains("unhealthy")),
        "{failed:?}"
    );
    let probes = docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Health.Status}} {{range .State.Health.Log}}{{.Output}}{{end}}",
        &failed.container,
    ]);
    assert!(
        probes.starts_with("unhealthy ") && probes.contains("-> status 503"),
        "the old task's probes: {probes}"
    );
    let notes = http_in(&new[0].container, "GET", "/notes", "");
    assert!(
        notes.contains("kept across tasks"),
        "the volume's data: {notes:?}"
    );
    let boots_after = http_in(&new[0].container, "GET", "/", "");
    let boots = |info: &str| -> u64 {
        let v = info
            .split("\"boots\": ")
            .nth(1)
            .and_then(|r| r.split([',', '}']).next());
        v.and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{info}"))
    };
    assert!(
        boots(&boots_after) > boots(&boots_before),
        "{boots_before} -> {boots_after}"
    );

    // 2. A rolling update to a release whose healthcheck never passes is
    // rolled back by Swarm itself (failure_action: rollback).
    deploy(broken_image);
    wait_until("the update was rolled back", LIMIT, || {
        let st = docker_or_empty(&[
            "service",
            "inspect",
            "-f",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            &svc,
        ]);
        assert!(
            !matches!(st.as_str(), "completed" | "paused" | "rollback_paused"),
            "update state {st}: {}",
            show(&svc)
        );
        st == "rollback_completed"
    });
    // The broken release was tried: its task was stopped, its container unhealthy.
    let all = tasks(&svc);
    let tried = all
        .iter()
        .find(|t| t.image.starts_with(broken_image) && !t.container.is_empty());
    let tried = tried.unwrap_or_else(|| panic!("no task of the broken release: {all:#?}"));
    assert!(matches!(tried.state.as_str(), "complete" | "failed"), "{tried:?}");
    let st = docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", &tried.container]);
    assert_eq!(st, "unhealthy", "{tried:?}");
    let mut back = Vec::new();
    wait_until("the previous release serves again", LIMIT, || {
        back = healthy(&svc);
        back.len() == 1
    });
    assert!(back[0].image.starts_with(app_image), "{:?}", back[0]);
    let spec = docker_ok(&[
        "service",
        "inspect",
        "-f",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        &svc,
    ]);
    assert!(
        spec.starts_with(app_image),
        "the service's spec was rolled back: {spec}"
    );
    assert!(http_in(&back[0].container, "GET", "/notes", "").contains("kept across tasks"));

    // 3. Three replicas, each healthy; `docker service rm` then ends them with
    // TERM, which runas --init forwards: each exits 0 well within the grace
    // period (KILL after it would show as 137).
    docker_ok(&["service", "scale", "--detach", &format!("{svc}=3")]);
    let mut three = Vec::new();
    wait_until("three healthy replicas", LIMIT, || {
        three = healthy(&svc);
        three.len() == 3
    });
    let since = now_unix();
    docker_ok(&["service", "rm", &svc]);
    let label = format!("label=com.docker.swarm.service.name={svc}");
    wait_until("the service's containers are gone", LIMIT, || {
        docker_or_empty(&["ps", "-aq", "--filter", &label]).is_empty()
    });
    let until = now_unix() + 1.0;
    let events = docker_ok(&[
        "events",
        "--since",
        &format!("{since:.3}"),
        "--until",
        &format!("{until:.3}"),
        "--filter",
        "type=container",
        "--filter",
        "event=die",
        "--filter",
        &label,
        "--format",
        "{{.Actor.ID}} {{.TimeNano}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    let died: Vec<(&str, f64, &str)> = events
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3).then(|| (f[0], f[1].parse::<f64>().unwrap() / 1e9, f[2]))
        })
        .collect();
    for t in &three {
        let d = died.iter().find(|d| d.0 == t.container);
        let d = d.unwrap_or_else(|| panic!("no die event for {}: {events}", t.container));
        assert_eq!(
            d.2, "0",
            "replica {} exited {} (TERM not forwarded?)",
            t.container, d.2
        );
        assert!(
            d.1 - since < 60.0,
            "replica {} stopped {:.1}s after rm",
            t.container,
            d.1 - since
        );
    }
    eprintln!(
        "{test}: replicas stopped {:.1}s after docker service rm, exit codes {:?}",
        died.iter().map(|d| d.1 - since).fold(0.0, f64::max),
        died.iter().map(|d| d.2).collect::<Vec<_>>()
    );
}
