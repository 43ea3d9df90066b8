//! https:// targets against a real TLS server: nginx (Debian's nginx-light,
//! OpenSSL underneath) with certificates made here by the openssl command: a
//! test CA, a server certificate for 127.0.0.1 and localhost, an expired
//! one, one for another name, one from a CA nobody trusts, and a client
//! certificate for mTLS. One nginx serves them all, each on its own port,
//! with TLS 1.2-only and 1.3-only ports; its access log says which protocol
//! and SNI name each request came with. healthcheck carries most cases;
//! waitfor and ready --when go through the same check code once each.

use dockhand_tests::*;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One nginx with its certificates, a port per case; stopped when dropped.
struct Server {
    /// The certificates and keys, the config and the logs.
    dir: TempDir,
    /// The server certificate for 127.0.0.1 and localhost, any TLS version.
    ok: u16,
    expired: u16,
    other_name: u16,
    unknown_ca: u16,
    /// Requires a client certificate signed by the test CA.
    mtls: u16,
    tls12: u16,
    tls13: u16,
    /// Plain http, redirecting /to-https to https on `ok`.
    plain: u16,
    nginx: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = run(Command::new("openssl").current_dir(dir).args(args));
    assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
}

/// A key and a certificate `name`.pem signed by `ca` for `san` with key
/// usage `eku`, valid for 30 days.
fn leaf(dir: &Path, name: &str, ca: &str, san: &str, eku: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("basicConstraints=CA:FALSE\nsubjectAltName={san}\nextendedKeyUsage={eku}\n"),
    )
    .unwrap();
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate for 127.0.0.1 that expired in 2020: `openssl x509` cannot
/// date one in the past, `openssl ca` can.
fn expired(dir: &Path) {
    leaf(dir, "expired", "ca", "IP:127.0.0.1,DNS:localhost", "serverAuth");
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n\
[x]\nbasicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-extensions",
            "x",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-notext",
        ],
    );
}

/// A server for one test; `None` when nginx or openssl is missing (skipped).
fn server(test: &str) -> Option<Server> {
    if !have("nginx", &["-v"]) || !have("openssl", &["version"]) {
        skip(
            test,
            "nginx or openssl is not installed (make setup installs nginx-light)",
        );
        return None;
    }
    Some(start())
}

fn start() -> Server {
    let dir = TempDir::new("tls");
    let p = dir.path();
    ca(p, "ca");
    ca(p, "rogue");
    leaf(p, "srv", "ca", "IP:127.0.0.1,DNS:localhost", "serverAuth");
    leaf(p, "other", "ca", "DNS:other.example", "serverAuth");
    leaf(p, "stranger", "rogue", "IP:127.0.0.1,DNS:localhost", "serverAuth");
    leaf(p, "client", "ca", "DNS:client", "clientAuth");
    expired(p);
    // Ports that were free a moment ago may be taken by another test's
    // server before nginx binds them: then nginx gives up (after its own
    // retries) and this starts again on other ports.
    let mut dir = dir;
    for _ in 0..5 {
        match nginx_on(dir, std::array::from_fn(|_| free_port())) {
            Ok(s) => return s,
            Err(d) => dir = d,
        }
    }
    panic!("nginx did not start on five sets of free ports");
}

/// nginx serving the certificates in `dir` on `ports`; `dir` back when one
/// of the ports was taken meanwhile.
fn nginx_on(dir: TempDir, ports: [u16; 8]) -> Result<Server, TempDir> {
    let p = dir.path();
    // This try's log only: a bind() failure of an earlier try must not
    // count for this one.
    let _ = std::fs::remove_file(p.join("error.log"));
    let [ok, exp, other, unknown, mtls, tls12, tls13, plain] = ports;
    let d = p.display();
    let srv = |port: u16, cert: &str, extra: &str| {
        format!(
            "server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {d}/{cert}.pem; ssl_certificate_key {d}/{cert}.key; {extra}
    location = /health {{ return 200 ok; }}
    location = /to-http {{ return 302 http://localhost:{plain}/health; }}
  }}\n  "
        )
    };
    let mut servers = String::new();
    servers += &srv(ok, "srv", "");
    servers += &srv(exp, "expired", "");
    servers += &srv(other, "other", "");
    servers += &srv(unknown, "stranger", "");
    servers += &srv(
        mtls,
        "srv",
        &format!("ssl_verify_client on; ssl_client_certificate {d}/ca.pem;"),
    );
    servers += &srv(tls12, "srv", "ssl_protocols TLSv1.2;");
    servers += &srv(tls13, "srv", "ssl_protocols TLSv1.3;");
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  log_format t '$server_port $ssl_protocol sni=$ssl_server_name $request_uri';
  access_log {d}/access.log t;
  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3;
  uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;
  {servers}
  server {{ listen 127.0.0.1:{plain};
    location = /health {{ return 200 ok; }}
    location = /to-https {{ return 302 https://localhost:{ok}/health; }}
  }}
}}
"
    );
    std::fs::write(p.join("nginx.conf"), conf).unwrap();
    let mut nginx = Command::new("nginx")
        .args(["-e", &format!("{d}/error.log"), "-p"])
        .arg(p)
        .arg("-c")
        .arg(p.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    // Ready when nginx itself listens on every port (a connect alone could
    // reach another test's server on a port taken meanwhile).
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in ports {
        while !listens_on(nginx.id(), port) {
            if nginx.try_wait().unwrap().is_some() {
                let log = std::fs::read_to_string(p.join("error.log")).unwrap_or_default();
                assert!(log.contains("bind()"), "nginx did not start: {log}");
                return Err(dir);
            }
            if Instant::now() > deadline {
                let _ = nginx.kill();
                let log = std::fs::read_to_string(p.join("error.log")).unwrap_or_default();
                panic!("nginx did not listen within 30 s: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(Server {
        dir,
        ok,
        expired: exp,
        other_name: other,
        unknown_ca: unknown,
        mtls,
        tls12,
        tls13,
        plain,
        nginx,
    })
}

impl Server {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Wait (bounded) for the access log to hold a line with every one of
    /// `words`: nginx writes it after the response is sent.
    fn logged(&self, words: &[&str]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
            if log
                .lines()
                .any(|l| words.iter().all(|w| l.split(' ').any(|f| f == *w)))
            {
                return true;
            }
            if Instant::now() > deadline {
                eprintln!("access log:\n{log}");
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// healthcheck with a clean environment for the CA bundle variables.
fn hc(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(bin("healthcheck"));
    c.env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().copied())
        .args(args);
    run(&mut c)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Exit 1 and one line on stdout holding `want`.
fn fails_with(o: &Output, want: &str) {
    assert_eq!(code(o), 1, "{o:?}");
    let out = stdout(o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(want), "want {want:?} in {out}");
}

#[test]
fn verified_with_cacert_or_ssl_cert_file() {
    let Some(s) = server("verified_with_cacert_or_ssl_cert_file") else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/health", s.ok);
    let o = hc(&[], &["--cacert", &s.file("ca.pem"), &url]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stdout(&o).starts_with(&format!("healthy: GET {url} -> 200 in ")),
        "{o:?}"
    );
    // The same CA through the variable OpenSSL and Go read, and the flag's env var.
    let o = hc(&[("SSL_CERT_FILE", &s.file("ca.pem"))], &[&url]);
    assert_eq!(code(&o), 0, "{o:?}");
    let o = hc(&[("HEALTHCHECK_CACERT", &s.file("ca.pem"))], &[&url]);
    assert_eq!(code(&o), 0, "{o:?}");
    // A CApath as OpenSSL reads it: hash-named links; other names are not read.
    let capath = s.dir.join("capath");
    std::fs::create_dir(&capath).unwrap();
    std::os::unix::fs::symlink(s.dir.join("ca.pem"), capath.join("ca.pem")).unwrap();
    let cadir = capath.display().to_string();
    let o = hc(&[("SSL_CERT_DIR", &cadir)], &[&url]);
    fails_with(&o, "no CA certificates in $SSL_CERT_DIR (");
    std::os::unix::fs::symlink(s.dir.join("ca.pem"), capath.join("0123abcd.0")).unwrap();
    let o = hc(&[("SSL_CERT_DIR", &cadir)], &[&url]);
    assert_eq!(code(&o), 0, "{o:?}");
    // A name: sent as SNI, and in the certificate.
    let o = hc(
        &[],
        &[
            "--cacert",
            &s.file("ca.pem"),
            &format!("https://localhost:{}/health", s.ok),
        ],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(s.logged(&[&s.ok.to_string(), "sni=localhost", "/health"]));
}

#[test]
fn an_unknown_issuer_fails_in_one_line() {
    let Some(s) = server("an_unknown_issuer_fails_in_one_line") else {
        return;
    };
    let o = hc(
        &[],
        &[
            "--cacert",
            &s.file("ca.pem"),
            &format!("https://127.0.0.1:{}/health", s.unknown_ca),
        ],
    );
    fails_with(
        &o,
        "certificate signed by an unknown issuer (not a CA in --cacert ",
    );
    // The test CA is in no bundle: the image's bundle (or SSL_CERT_FILE) does not trust it.
    let o = hc(
        &[("SSL_CERT_FILE", &s.file("rogue.pem"))],
        &[&format!("https://127.0.0.1:{}/health", s.ok)],
    );
    fails_with(&o, "unknown issuer (not a CA in $SSL_CERT_FILE (");
}

#[test]
fn expired_and_wrong_name_fail_in_one_line() {
    let Some(s) = server("expired_and_wrong_name_fail_in_one_line") else {
        return;
    };
    let ca = s.file("ca.pem");
    let o = hc(
        &[],
        &[
            "--cacert",
            &ca,
            &format!("https://127.0.0.1:{}/health", s.expired),
        ],
    );
    fails_with(&o, "-> certificate expired on 2020-01-02 00:00:00 UTC");
    let o = hc(
        &[],
        &[
            "--cacert",
            &ca,
            &format!("https://localhost:{}/health", s.other_name),
        ],
    );
    fails_with(&o, "-> certificate is for other.example, not localhost");
}

#[test]
fn insecure_accepts_what_verification_refuses() {
    let Some(s) = server("insecure_accepts_what_verification_refuses") else {
        return;
    };
    for port in [s.expired, s.other_name, s.unknown_ca] {
        let o = hc(&[], &["--insecure", &format!("https://127.0.0.1:{port}/health")]);
        assert_eq!(code(&o), 0, "{port}: {o:?}");
    }
    let o = hc(
        &[("HEALTHCHECK_INSECURE", "1")],
        &[&format!("https://127.0.0.1:{}/health", s.unknown_ca)],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    // --insecure with --cacert says nothing sensible: a usage error.
    let o = hc(
        &[],
        &[
            "--insecure",
            "--cacert",
            "/x",
            &format!("https://127.0.0.1:{}/", s.ok),
        ],
    );
    assert_eq!(code(&o), 2, "{o:?}");
}

#[test]
fn mtls_needs_the_client_certificate() {
    let Some(s) = server("mtls_needs_the_client_certificate") else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/health", s.mtls);
    let ca = s.file("ca.pem");
    let o = hc(
        &[],
        &[
            "--cacert",
            &ca,
            "--cert",
            &s.file("client.pem"),
            "--key",
            &s.file("client.key"),
            &url,
        ],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    // nginx finishes the handshake without one and answers 400.
    let o = hc(&[], &["--cacert", &ca, &url]);
    fails_with(&o, "-> status 400");
    // The key in the certificate's file.
    let both = s.dir.join("both.pem");
    let mut pem = std::fs::read(s.dir.join("client.pem")).unwrap();
    pem.extend(std::fs::read(s.dir.join("client.key")).unwrap());
    std::fs::write(&both, pem).unwrap();
    let o = hc(
        &[("HEALTHCHECK_CERT", &both.display().to_string())],
        &["--cacert", &ca, &url],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    let o = hc(&[], &["--cacert", &ca, "--key", &s.file("client.key"), &url]);
    assert_eq!(code(&o), 2, "--key without --cert: {o:?}");
}

#[test]
fn tls12_only_and_tls13_only_servers() {
    let Some(s) = server("tls12_only_and_tls13_only_servers") else {
        return;
    };
    let ca = s.file("ca.pem");
    for (port, proto) in [(s.tls12, "TLSv1.2"), (s.tls13, "TLSv1.3")] {
        let o = hc(
            &[],
            &["--cacert", &ca, &format!("https://localhost:{port}/health")],
        );
        assert_eq!(code(&o), 0, "{proto}: {o:?}");
        assert!(s.logged(&[&port.to_string(), proto, "sni=localhost"]), "{proto}");
    }
}

#[test]
fn redirects_change_scheme_on_the_same_host() {
    let Some(s) = server("redirects_change_scheme_on_the_same_host") else {
        return;
    };
    let ca = s.file("ca.pem");
    let o = hc(
        &[],
        &["--cacert", &ca, &format!("http://localhost:{}/to-https", s.plain)],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stdout(&o).contains(&format!(
            "-> 200 at https://localhost:{}/health (1 redirect)",
            s.ok
        )),
        "{o:?}"
    );
    let o = hc(
        &[],
        &["--cacert", &ca, &format!("https://localhost:{}/to-http", s.ok)],
    );
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stdout(&o).contains(&format!(
            "-> 200 at http://localhost:{}/health (1 redirect)",
            s.plain
        )),
        "{o:?}"
    );
}

#[test]
fn the_deadline_covers_a_handshake_never_answered() {
    // Accepted by the kernel (listen backlog), never read: the ClientHello
    // goes unanswered.
    let l = HeldPort::new();
    let port = l.port();
    let _l = l.listen();
    let start = Instant::now();
    let o = hc(
        &[],
        &[
            "--timeout",
            "1s",
            "--insecure",
            &format!("https://127.0.0.1:{port}/"),
        ],
    );
    fails_with(&o, "timed out after 1s");
    assert!(start.elapsed() < Duration::from_secs(20), "{:?}", start.elapsed());
    // waitfor gives up at its own --timeout, 124.
    let o = run(Command::new(bin("waitfor")).args([
        "--timeout",
        "1s",
        "--attempt-timeout",
        "300ms",
        "--insecure",
        &format!("https://127.0.0.1:{port}/"),
    ]));
    assert_eq!(code(&o), 124, "{o:?}");
}

#[test]
fn waitfor_and_ready_verify_the_same_way() {
    let Some(s) = server("waitfor_and_ready_verify_the_same_way") else {
        return;
    };
    let ca = s.file("ca.pem");
    let ok = format!("https://localhost:{}/health", s.ok);
    let o = run(Command::new(bin("waitfor")).args(["--timeout", "20s", "--cacert", &ca, &ok, "--", "true"]));
    assert_eq!(code(&o), 0, "{o:?}");
    // The issuer unknown: never up, and the reason says why.
    let o = run(Command::new(bin("waitfor"))
        .env_remove("SSL_CERT_FILE")
        .env("WAITFOR_CACERT", &ca)
        .args([
            "--timeout",
            "1s",
            &format!("https://127.0.0.1:{}/health", s.unknown_ca),
        ]));
    assert_eq!(code(&o), 124, "{o:?}");
    assert!(stderr(&o).contains("unknown issuer"), "{o:?}");
    let o = run(Command::new(bin("ready")).args([
        "--when",
        &ok,
        "--cacert",
        &ca,
        "--timeout",
        "20s",
        "--print",
        "up over tls",
    ]));
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(stdout(&o), "up over tls\n", "{o:?}");
    let o = run(Command::new(bin("ready")).args(["--when", &ok, "--key", "/k", "--", "true"]));
    assert_eq!(code(&o), 2, "{o:?}");
}

#[test]
fn the_aarch64_build_verifies_too() {
    // ring's C and assembly for aarch64 come from the cross compiler
    // scripts/dist.sh uses: one verified probe and one refused one under
    // qemu-user prove that build works.
    let test = "the_aarch64_build_verifies_too";
    let qemu = Path::new("/usr/bin/qemu-aarch64-static");
    if !qemu.is_file() {
        return skip(test, "needs qemu-user-static (make setup installs it)");
    }
    let Some(s) = server(test) else { return };
    let hc = repo().join("dist/aarch64/healthcheck");
    let ca = s.file("ca.pem");
    let o = run(Command::new(qemu).arg(&hc).args([
        "--cacert",
        &ca,
        &format!("https://localhost:{}/health", s.tls13),
    ]));
    assert_eq!(code(&o), 0, "{o:?}");
    let o = run(Command::new(qemu).arg(&hc).args([
        "--cacert",
        &ca,
        &format!("https://127.0.0.1:{}/health", s.tls12),
    ]));
    assert_eq!(code(&o), 0, "{o:?}");
    let o = run(Command::new(qemu).arg(&hc).args([
        "--cacert",
        &ca,
        &format!("https://127.0.0.1:{}/health", s.unknown_ca),
    ]));
    fails_with(&o, "certificate signed by an unknown issuer");
}
