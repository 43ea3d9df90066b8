//! The target syntax shared by healthcheck, waitfor and ready:
//!
//! ```text
//! host:port | tcp://host:port     TCP connect succeeds
//! http://host[:port]/path         HTTP status 200-399 unless told otherwise
//! https://host[:port]/path        the same over TLS (default port 443; builds with the tls feature)
//! unix:///path/to.sock            unix socket connect succeeds
//! file:///path                    the path exists
//! postgres://[user@]host[:port][/db]             the server accepts connections (not starting up)
//! redis://[[user]:password@]host[:port][/db]      PING answers PONG (not LOADING)
//! mongodb://host[:port]           hello (or legacy isMaster) answers ok: 1 (port 27017)
//! kafka://host[:port]             ApiVersions answers error_code 0 (port 9092)
//! dns://name                      the name resolves (A or AAAA)
//! mysql://host[:port]             the server's handshake arrives (not an ERR packet)
//! amqp://host[:port]              AMQP 0-9-1 Connection.Start arrives
//! nats://host[:port]              INFO, then PONG to CONNECT and PING
//! grpc://host:port[/service]      grpc.health.v1 Check answers SERVING
//! grpcs://host:port[/service]     the same over TLS (ALPN h2; builds with the tls feature)
//! ```
//! IPv6 literals go in brackets: `[::1]:5432`, `http://[::1]:8000/health`.
//! In postgres:// and redis:// the user, password and database are
//! percent-decoded (`p%40ss` is `p@ss`), so any byte can be written.

use std::fmt;
use std::path::PathBuf;

mod parts;
#[cfg(test)]
mod tests;

use parts::{abs_path, db_path, hide_password, host_port, no_login, percent_decode, userinfo};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tcp {
        host: String,
        port: u16,
    },
    Http(HttpUrl),
    Unix {
        path: PathBuf,
    },
    File {
        path: PathBuf,
    },
    Postgres {
        host: String,
        port: u16,
        user: Option<String>,
        database: Option<String>,
    },
    Redis {
        host: String,
        port: u16,
        /// A Redis 6 ACL user; `AUTH user password` is sent when given.
        user: Option<String>,
        password: Option<String>,
        /// `SELECT db` is sent when given.
        db: Option<u32>,
    },
    Mongo {
        host: String,
        port: u16,
    },
    Kafka {
        host: String,
        port: u16,
    },
    /// A name to resolve, for waiting on service discovery.
    Dns {
        name: String,
    },
    /// MySQL or MariaDB; no credentials are sent.
    Mysql {
        host: String,
        port: u16,
    },
    /// An AMQP 0-9-1 broker (RabbitMQ); no credentials are sent.
    Amqp {
        host: String,
        port: u16,
    },
    /// A NATS server; no credentials are sent.
    Nats {
        host: String,
        port: u16,
    },
    /// grpc.health.v1.Health/Check over h2c, or over TLS (`grpcs://`);
    /// `service` "" asks about the server.
    Grpc {
        host: String,
        port: u16,
        service: String,
        tls: bool,
    },
}

/// An `http://` or `https://` URL, split as the request needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
    /// The original text, for messages.
    pub text: String,
    /// `https://`: the request goes over TLS.
    pub tls: bool,
}

impl HttpUrl {
    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// The `Host:` header value (port omitted when it is the scheme's
    /// default, 80 or 443; brackets kept for IPv6).
    pub fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hp = |h: &str, p: u16| {
            if h.contains(':') {
                format!("[{h}]:{p}")
            } else {
                format!("{h}:{p}")
            }
        };
        match self {
            Target::Tcp { host, port } => write!(f, "tcp://{}", hp(host, *port)),
            Target::Http(u) => f.write_str(&u.text),
            Target::Unix { path } => write!(f, "unix://{}", path.display()),
            Target::File { path } => write!(f, "file://{}", path.display()),
            Target::Postgres { host, port, .. } => write!(f, "postgres://{}", hp(host, *port)),
            Target::Redis { host, port, db, .. } => {
                write!(f, "redis://{}", hp(host, *port))?;
                match db {
                    Some(n) => write!(f, "/{n}"),
                    None => Ok(()),
                }
            }
            Target::Mongo { host, port } => write!(f, "mongodb://{}", hp(host, *port)),
            Target::Kafka { host, port } => write!(f, "kafka://{}", hp(host, *port)),
            Target::Dns { name } => write!(f, "dns://{name}"),
            Target::Mysql { host, port } => write!(f, "mysql://{}", hp(host, *port)),
            Target::Amqp { host, port } => write!(f, "amqp://{}", hp(host, *port)),
            Target::Nats { host, port } => write!(f, "nats://{}", hp(host, *port)),
            Target::Grpc {
                host,
                port,
                service,
                tls,
            } => {
                let scheme = if *tls { "grpcs" } else { "grpc" };
                write!(f, "{scheme}://{}", hp(host, *port))?;
                match service.is_empty() {
                    true => Ok(()),
                    false => write!(f, "/{service}"),
                }
            }
        }
    }
}

impl Target {
    /// Parse one target; the error names it and says what is wrong.
    pub fn parse(s: &str) -> Result<Target, String> {
        let whole = s;
        let s = s.trim();
        if s.is_empty() {
            return Err("empty target".into());
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            let (host, port) = host_port(s, None, whole)?;
            return Ok(Target::Tcp { host, port });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" => {
                let (host, port) = host_port(rest.trim_end_matches('/'), None, whole)?;
                Ok(Target::Tcp { host, port })
            }
            "http" | "https" => {
                let tls = scheme.eq_ignore_ascii_case("https");
                let (auth, path) = match rest.find(['/', '?']) {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                if auth.contains('@') {
                    let shown = hide_password(s);
                    return Err(format!("{shown:?}: credentials in the URL are not supported; use --header"));
                }
                let (host, port) = host_port(auth, Some(if tls { 443 } else { 80 }), whole)?;
                let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
                let path = path.split('#').next().unwrap_or("/").to_string();
                if path.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(format!("{whole:?}: the path has spaces or control characters (percent-encode them)"));
                }
                Ok(Target::Http(HttpUrl { host, port, path, text: s.to_string(), tls }))
            }
            "unix" => {
                let path = abs_path(rest, whole, "unix:///run/app.sock")?;
                crate::cli::unix_socket_path(&path).map_err(|e| format!("{whole:?}: {e}"))?;
                Ok(Target::Unix { path })
            }
            "file" => Ok(Target::File { path: abs_path(rest, whole, "file:///run/app.ready")? }),
            "postgres" | "postgresql" => {
                let shown = &hide_password(s);
                let (auth, db) = match rest.split_once('/') {
                    Some((a, d)) => (a, db_path(Some(d))),
                    None => (rest, None),
                };
                let (ui, hp) = userinfo(auth);
                // The password, if any, is never sent: the check stops at
                // the server's authentication request.
                let user = match ui.map(|u| u.split(':').next().unwrap_or("")) {
                    Some(u) if !u.is_empty() => Some(percent_decode(u, "user", shown)?),
                    _ => None,
                };
                let database = db.map(|d| percent_decode(d, "database", shown)).transpose()?;
                if [&user, &database].iter().any(|v| v.as_deref().is_some_and(|v| v.contains('\0'))) {
                    return Err(format!("{shown:?}: a NUL byte (%00) cannot be in a user or database name"));
                }
                let (host, port) = host_port(hp, Some(5432), shown)?;
                Ok(Target::Postgres { host, port, user, database })
            }
            "redis" => {
                let shown = &hide_password(s);
                let (auth, db) = match rest.split_once('/') {
                    Some((a, d)) => (a, db_path(Some(d))),
                    None => (rest, None),
                };
                let (ui, hp) = userinfo(auth);
                // `user:password`, `:password`, or (as redis-cli reads it) a
                // lone `password`.
                let (user, password) = match ui.map(|u| u.split_once(':').unwrap_or(("", u))) {
                    None => (None, None),
                    Some((u, p)) => (
                        Some(u).filter(|u| !u.is_empty()).map(|u| percent_decode(u, "user", shown)).transpose()?,
                        Some(p).filter(|p| !p.is_empty()).map(|p| percent_decode(p, "password", shown)).transpose()?,
                    ),
                };
                if user.is_some() && password.is_none() {
                    return Err(format!(
                        "{shown:?}: a Redis user needs a password (redis://USER:PASSWORD@host)"
                    ));
                }
                let db = match db.map(|d| percent_decode(d, "database", shown)).transpose()? {
                    None => None,
                    Some(d) => Some(
                        d.parse::<u32>()
                            .ok()
                            .filter(|_| d.bytes().all(|b| b.is_ascii_digit()))
                            .ok_or_else(|| format!("{shown:?}: the Redis database {d:?} is not a number (redis://host/2)"))?,
                    ),
                };
                let (host, port) = host_port(hp, Some(6379), shown)?;
                Ok(Target::Redis { host, port, user, password, db })
            }
            "mongodb" => {
                let hp = rest.trim_end_matches('/');
                if hp.contains(['@', '/', '?', ',']) {
                    return Err(format!(
                        "{whole:?}: mongodb:// takes host[:port] only (no credentials, database, options or host list: hello needs none)"
                    ));
                }
                let (host, port) = host_port(hp, Some(crate::check::mongo::DEFAULT_PORT), whole)?;
                Ok(Target::Mongo { host, port })
            }
            "kafka" => {
                let (host, port) = host_port(rest.trim_end_matches('/'), Some(crate::check::kafka::DEFAULT_PORT), whole)?;
                Ok(Target::Kafka { host, port })
            }
            "dns" => {
                let name = rest.trim_end_matches('/');
                if name.contains([':', '/', '[']) {
                    return Err(format!("{whole:?}: dns:// takes a host name only, without a port (dns://db.internal)"));
                }
                let (name, _) = host_port(name, Some(1), whole)?;
                Ok(Target::Dns { name })
            }
            "mysql" | "mariadb" => {
                let (host, port) = no_login(s, rest, 3306, true)?;
                Ok(Target::Mysql { host, port })
            }
            "amqp" => {
                let (host, port) = no_login(s, rest, 5672, true)?;
                Ok(Target::Amqp { host, port })
            }
            "nats" => {
                let (host, port) = no_login(s, rest, 4222, false)?;
                Ok(Target::Nats { host, port })
            }
            "grpc" | "grpcs" => {
                let tls = scheme.eq_ignore_ascii_case("grpcs");
                let (auth, service) = rest.split_once('/').unwrap_or((rest, ""));
                if auth.contains('@') {
                    return Err(format!("{whole:?}: credentials in the URL are not supported; use --header"));
                }
                // gRPC has no default port: the kubelet and grpc-health-probe want one too.
                let (host, port) = host_port(auth, None, whole)?;
                let service = percent_decode(service, "service name", whole)?;
                if service.chars().any(|c| c.is_control() || c == ' ' || c == '?' || c == '#') {
                    return Err(format!("{whole:?}: the service name has a space, ?, # or a control character (percent-encode it)"));
                }
                Ok(Target::Grpc { host, port, service, tls })
            }
            other => Err(format!(
                "{whole:?}: unknown scheme {other:?} (use host:port, tcp://, http://, unix://, file://, postgres://, redis://, mysql://, amqp://, nats://, mongodb://, kafka://, dns://, grpc:// or grpcs://)"
            )),
        }
    }

    /// For argh's `from_str_fn`.
    pub fn arg(s: &str) -> Result<Target, String> {
        Target::parse(s)
    }

    /// Check only, for the environment fallback table.
    pub fn check(s: &str) -> Result<(), String> {
        Target::parse(s).map(|_| ())
    }
}
