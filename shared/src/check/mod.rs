//! One check engine for every target kind. A check makes one attempt, bounded
//! by a deadline, and says what it saw: `Ok(detail)` when the target is up
//! (`detail` is e.g. the HTTP status) and `Err(CheckError)` when it is not:
//! a kind to branch on and a message for people.

pub mod amqp;
mod error;
pub mod grpc;
pub mod http;
mod io;
pub mod kafka;
pub mod mongo;
pub mod mysql;
pub mod nats;
pub mod phase;
pub mod postgres;
pub mod redis;
pub mod tls;

pub use error::{CheckError, Kind};

use crate::net;
use crate::target::Target;
use std::time::Instant;

/// Options that only some target kinds use.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub http: http::Options,
}

/// One attempt at `target`, finished or abandoned by `deadline`.
pub fn check(target: &Target, deadline: Instant, opts: &Options) -> Result<String, CheckError> {
    match target {
        Target::Tcp { host, port } => net::connect(host, *port, deadline).map(|_| "connected".to_string()),
        Target::Unix { path } => net::unix_connect(path, deadline).map(|_| "connected".to_string()),
        Target::File { path } => file_exists(path),
        Target::Http(url) => http::check(url, deadline, &opts.http),
        Target::Postgres {
            host,
            port,
            user,
            database,
        } => postgres::check(host, *port, user.as_deref(), database.as_deref(), deadline),
        Target::Redis {
            host,
            port,
            user,
            password,
            db,
        } => {
            let login = redis::Login {
                user: user.as_deref(),
                password: password.as_deref(),
                db: *db,
            };
            redis::check(host, *port, &login, deadline)
        }
        Target::Mongo { host, port } => mongo::check(host, *port, deadline),
        Target::Kafka { host, port } => kafka::check(host, *port, deadline),
        Target::Dns { name } => resolves(name, deadline),
        Target::Mysql { host, port } => mysql::check(host, *port, deadline),
        Target::Amqp { host, port } => amqp::check(host, *port, deadline),
        Target::Nats { host, port } => nats::check(host, *port, deadline),
        // gRPC metadata and TLS options come from the same flags as HTTP's.
        Target::Grpc {
            host,
            port,
            service,
            tls,
        } => grpc::check(host, *port, service, *tls, &opts.http, deadline),
    }
}

/// A dns:// target is up when the name resolves; the detail is its first address.
fn resolves(name: &str, deadline: Instant) -> Result<String, CheckError> {
    let addrs = net::resolve(name, 0, net::left(deadline)?)?;
    match addrs.first() {
        Some(a) => Ok(format!("resolves to {}", a.ip())),
        None => Err(CheckError::new(
            Kind::Lookup,
            format!("cannot resolve {name}: no address"),
        )),
    }
}

/// A file target is up when the path exists. It is not followed if it is a
/// symlink: a dangling link counts as present only as a link.
fn file_exists(path: &std::path::Path) -> Result<String, CheckError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(path) {
            Ok(_) => Ok("exists".into()),
            // What the link points to is not there yet.
            Err(_) => Err(CheckError::new(Kind::Missing, "dangling symlink")),
        },
        Ok(_) => Ok("exists".into()),
        Err(e) => Err(net::io_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(2)
    }

    #[test]
    fn file_target() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let f = dir.join("ready");
        let t = Target::File { path: f.clone() };
        assert_eq!(
            check(&t, soon(), &Options::default()).unwrap_err(),
            "no such file or directory"
        );
        std::fs::write(&f, "x").unwrap();
        assert!(check(&t, soon(), &Options::default()).is_ok());
        let link = dir.join("link");
        std::os::unix::fs::symlink(dir.join("nowhere"), &link).unwrap();
        let t = Target::File { path: link };
        assert_eq!(
            check(&t, soon(), &Options::default()).unwrap_err(),
            "dangling symlink"
        );
    }

    #[test]
    fn unix_target() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = dir.join("s.sock");
        let t = Target::Unix { path: p.clone() };
        assert!(check(&t, soon(), &Options::default()).is_err());
        let _l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        assert_eq!(check(&t, soon(), &Options::default()).unwrap(), "connected");
    }

    #[test]
    fn passed_deadline_times_out() {
        let t = Target::Tcp {
            host: "127.0.0.1".into(),
            port: 9,
        };
        assert_eq!(
            check(&t, Instant::now(), &Options::default()).unwrap_err(),
            CheckError::new(Kind::TimedOut, "timed out")
        );
    }
}
