//! The shared target syntax (`http://host:port/path`, `postgres://u@db`, ...):
//! `dockhand::target::Target::parse`. Properties: never panics; an accepted
//! target has a non-empty host and an HTTP path that starts with `/` and holds
//! no spaces or control characters (it goes into the request line verbatim);
//! a unix socket path fits in sun_path; a PostgreSQL user or database has no
//! NUL (it would end the field early); Display never panics and never shows
//! credentials.
#![no_main]

use dockhand::check::http::request;
use dockhand::target::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(t) = Target::parse(s) else { return };
    // Display never shows credentials: no userinfo at all.
    if matches!(t, Target::Postgres { .. } | Target::Redis { .. }) {
        assert!(!t.to_string().contains('@'), "{s:?} -> {t}");
    }
    let _ = t.to_string();
    match &t {
        Target::Tcp { host, .. } => assert!(!host.is_empty(), "{s:?} -> {t:?}"),
        Target::Postgres {
            host,
            user,
            database,
            ..
        } => {
            assert!(!host.is_empty(), "{s:?} -> {t:?}");
            for v in [user, database].into_iter().flatten() {
                assert!(!v.contains('\0'), "{s:?} -> {t:?}");
            }
        }
        Target::Redis { host, .. } => assert!(!host.is_empty(), "{s:?} -> {t:?}"),
        Target::Http(u) => {
            assert!(!u.host.is_empty(), "{s:?} -> {t:?}");
            assert!(u.path.starts_with('/'), "{s:?} -> {t:?}");
            assert!(
                !u.path.chars().any(|c| c.is_control() || c == ' '),
                "{s:?} -> {t:?}"
            );
            // The request head must be exactly one request: the only CRLFs are ours.
            let r = request(u, &[]);
            let text = String::from_utf8_lossy(&r);
            assert_eq!(
                text.lines().next().map(|l| l.matches(' ').count()),
                Some(2),
                "{text:?}"
            );
            assert!(!u.host_header().contains(['\r', '\n']), "{s:?}");
        }
        Target::Unix { path } => {
            assert!(path.is_absolute(), "{s:?} -> {t:?}");
            assert!(path.as_os_str().len() <= 107, "{s:?} -> {t:?}");
        }
        Target::File { path } => assert!(path.is_absolute(), "{s:?} -> {t:?}"),
        // No login is kept, so none can be shown.
        Target::Mysql { host, .. }
        | Target::Amqp { host, .. }
        | Target::Nats { host, .. }
        | Target::Mongo { host, .. }
        | Target::Kafka { host, .. } => {
            assert!(!host.is_empty(), "{s:?} -> {t:?}");
            assert!(!t.to_string().contains('@'), "{s:?} -> {t}");
        }
        Target::Dns { name } => {
            assert!(!name.is_empty(), "{s:?} -> {t:?}");
            assert!(!name.contains([':', '/', '@']), "{s:?} -> {t:?}");
        }
        Target::Grpc { host, service, .. } => {
            assert!(!host.is_empty(), "{s:?} -> {t:?}");
            assert!(!service.chars().any(|c| c.is_control() || c == ' '), "{s:?} -> {t:?}");
        }
    }
});
