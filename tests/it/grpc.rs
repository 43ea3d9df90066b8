//! grpc:// targets against a real gRPC server: grpcio with its standard
//! health service (tests/fixtures/grpc_server.py, installed by `make setup`
//! into .cache/grpc), driven through healthcheck, waitfor and ready; and
//! over TLS (grpcs://) with certificates made here by openssl.

use dockhand_tests::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound for anything that should take milliseconds.
const LONG: Duration = Duration::from_secs(30);

/// The fixture server, killed on drop; its stdout lines on a channel.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl Server {
    /// Start it with `args`, once it says it is listening; `None` (after
    /// `skip`) when grpcio is not installed.
    fn start(test: &str, args: &[&str]) -> Option<Server> {
        let python = repo().join(".cache/grpc/bin/python");
        if !python.is_file() {
            skip(
                test,
                "needs .cache/grpc (grpcio from PyPI; `make setup` installs it)",
            );
            return None;
        }
        let port = free_port();
        let mut child = Command::new(python)
            .arg(repo().join("tests/fixtures/grpc_server.py"))
            .arg(port.to_string())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let s = Server { child, lines, port };
        s.expect("listening");
        Some(s)
    }

    /// The next line starting with `prefix` (earlier ones are dropped).
    fn expect(&self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(LONG) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line starting {prefix:?} from the gRPC server: {e}"),
            }
        }
    }

    fn target(&self, service: &str) -> String {
        format!("grpc://127.0.0.1:{}{service}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn healthcheck() -> Command {
    tool("healthcheck")
}

#[test]
fn healthcheck_serving_with_the_authority_as_given() {
    let Some(s) = Server::start("healthcheck_serving_with_the_authority_as_given", &[]) else {
        return;
    };
    let o = run(healthcheck().arg(s.target("")));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("healthy: grpc://127.0.0.1:{} -> SERVING in ", s.port)),
        "{out}"
    );
    assert_eq!(s.expect("authority="), format!("authority=127.0.0.1:{}", s.port));
    assert_eq!(s.expect("call "), "call service= x-token=-");
    // A name is sent as written, with its port (grpc-health-probe drops
    // neither, but sends a bare ":port" address as the authority).
    let o = run(healthcheck().arg(format!("grpc://localhost:{}", s.port)));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(s.expect("authority="), format!("authority=localhost:{}", s.port));
    // Host: sets it.
    let o = run(healthcheck().args(["--header", "Host: api.internal:443", &s.target("")]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(s.expect("authority="), "authority=api.internal:443");
}

#[test]
fn healthcheck_names_not_serving_and_unknown_services() {
    let Some(s) = Server::start(
        "healthcheck_names_not_serving_and_unknown_services",
        &["--serving", "orders", "--not-serving", "billing"],
    ) else {
        return;
    };
    let o = run(healthcheck().arg(s.target("/orders")));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("/orders -> SERVING in "), "{o:?}");
    assert_eq!(s.expect("call "), "call service=orders x-token=-");
    let o = run(healthcheck().arg(s.target("/billing")));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        stdout(&o),
        format!("unhealthy: grpc://127.0.0.1:{}/billing -> NOT_SERVING\n", s.port)
    );
    // grpcio's health service answers NOT_FOUND for a service it does not know.
    let o = run(healthcheck().arg(s.target("/nope")));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        stdout(&o),
        format!(
            "unhealthy: grpc://127.0.0.1:{}/nope -> grpc-status 5 (NOT_FOUND)\n",
            s.port
        )
    );
}

#[test]
fn healthcheck_header_adds_metadata() {
    let Some(s) = Server::start("healthcheck_header_adds_metadata", &["--token", "s3cret"]) else {
        return;
    };
    let o = run(healthcheck().arg(s.target("")));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).ends_with("-> grpc-status 16 (UNAUTHENTICATED): missing or wrong x-token\n"),
        "{o:?}"
    );
    assert_eq!(s.expect("call "), "call service= x-token=-");
    let o = run(healthcheck().args(["--header", "X-Token: s3cret", &s.target("")]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(s.expect("call "), "call service= x-token=s3cret");
    let o = run(healthcheck()
        .env("HEALTHCHECK_HEADER", "x-token: s3cret")
        .arg(s.target("")));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // Metadata gRPC owns is refused before anything is sent.
    let o = run(healthcheck().args(["--header", "grpc-timeout: 1S", &s.target("")]));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("set by the gRPC check itself"), "{o:?}");
    // waitfor and ready send the same metadata through the same --header.
    let o = run(tool("waitfor").args(["--timeout", "60s", "--header", "X-Token: s3cret", &s.target("")]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(s.expect("call "), "call service= x-token=s3cret");
    let o = run(tool("ready").args([
        "--header",
        "x-token: s3cret",
        "--when",
        &s.target(""),
        "--print",
        "up",
    ]));
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "up"), "{o:?}");
    assert_eq!(s.expect("call "), "call service= x-token=s3cret");
    let o = run(tool("waitfor").args(["--header", "grpc-timeout: 1S", &s.target("")]));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

#[test]
fn waitfor_waits_until_the_service_is_serving() {
    let Some(s) = Server::start("waitfor_waits_until_the_service_is_serving", &["--flip", "app"]) else {
        return;
    };
    let o = run(tool("waitfor").args(["--timeout", "60s", "--interval", "100ms", &s.target("/app")]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // The first Check saw NOT_SERVING (the server flips it after answering),
    // so waitfor went on to ask again.
    assert_eq!(s.expect("call "), "call service=app x-token=-");
    assert_eq!(s.expect("call "), "call service=app x-token=-");
}

#[test]
fn ready_announces_once_serving() {
    let Some(s) = Server::start("ready_announces_once_serving", &["--serving", "live"]) else {
        return;
    };
    let o = run(tool("ready").args(["--when", &s.target("/live"), "--print", "UP", "--timeout", "60s"]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "UP\n");
    assert_eq!(s.expect("call "), "call service=live x-token=-");
}

#[test]
fn a_silent_port_times_out() {
    // Accepted by the kernel, never answered: the deadline ends the probe.
    let l = HeldPort::new();
    let port = l.port();
    let _l = l.listen();
    let o = run(healthcheck().args(["--timeout", "500ms", &format!("grpc://127.0.0.1:{port}")]));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        stdout(&o),
        format!("unhealthy: grpc://127.0.0.1:{port} -> timed out after 500ms\n")
    );
}

/// A CA and a certificate for 127.0.0.1 and localhost signed by it, made by
/// openssl in `dir`: ca.pem, leaf.pem, leaf.key.
fn certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let o = run(Command::new("openssl").current_dir(dir).args(args));
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=grpc test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
}

#[test]
fn grpcs_over_tls_with_alpn_h2() {
    let test = "grpcs_over_tls_with_alpn_h2";
    if !have("openssl", &["version"]) {
        skip(test, "needs the openssl command (Debian package openssl)");
        return;
    }
    let dir = TempDir::new("grpcs");
    certificates(dir.path());
    let (cert, key) = (dir.join("leaf.pem"), dir.join("leaf.key"));
    let Some(s) = Server::start(
        test,
        &[
            "--tls",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "--serving",
            "app",
        ],
    ) else {
        return;
    };
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let t = format!("grpcs://127.0.0.1:{}/app", s.port);
    let o = run(healthcheck().args(["--cacert", ca, "--header", "x-token: t", &t]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).starts_with(&format!("healthy: {t} -> SERVING in ")),
        "{o:?}"
    );
    assert_eq!(s.expect("call "), "call service=app x-token=t");
    // Verified like https://: an unknown issuer is refused before any request.
    let o = run(healthcheck().arg(&t));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains("unknown issuer"), "{o:?}");
    let o = run(healthcheck().args(["--insecure", &t]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // waitfor and ready take the same flags.
    let o = run(tool("waitfor").args(["--timeout", "60s", "--cacert", ca, &t]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = run(tool("ready").args(["--when", &t, "--cacert", ca, "--print", "UP", "--timeout", "60s"]));
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "UP\n"), "{o:?}");
    // grpc:// (h2c) to the TLS port is not mistaken for an answer.
    let o = run(healthcheck().arg(format!("grpc://127.0.0.1:{}/app", s.port)));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
}
