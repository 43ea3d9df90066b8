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

/// Split `host:port` / `[v6]:port` / `host` (with a default port).
fn host_port(s: &str, default_port: Option<u16>, whole: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("{whole:?}: unclosed '[' in IPv6 address"))?;
        let host = &rest[..end];
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{whole:?}: {host:?} is not an IPv6 address"))?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("{whole:?}: unexpected {after:?} after the IPv6 address")),
        };
        (host.to_string(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => {
                if h.contains(':') {
                    return Err(format!(
                        "{whole:?}: IPv6 addresses need brackets, e.g. [::1]:5432"
                    ));
                }
                (h.to_string(), Some(p))
            }
            None => (s.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("{whole:?}: missing host"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
    {
        return Err(format!("{whole:?}: {host:?} is not a valid host name"));
    }
    let port = match port {
        Some(p) => parse_port(p, whole)?,
        None => default_port.ok_or_else(|| format!("{whole:?}: missing port (host:port)"))?,
    };
    Ok((host, port))
}

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Err(format!("{whole:?}: missing port"));
    }
    if !p.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{whole:?}: port {p:?} is not a number"));
    }
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("{whole:?}: port {p} is out of range (1-65535)")),
    }
}

/// The absolute path of a `unix://` or `file://` target; `example` is a
/// correct target of the same scheme, for the message.
fn abs_path(rest: &str, whole: &str, example: &str) -> Result<PathBuf, String> {
    if !rest.starts_with('/') {
        return Err(format!(
            "{whole:?}: the path must be absolute (three slashes: {example})"
        ));
    }
    if rest.len() > 4095 || rest.contains('\0') {
        return Err(format!("{whole:?}: invalid path"));
    }
    Ok(PathBuf::from(rest))
}

/// Take `user[:password]@` off an authority.
fn userinfo(auth: &str) -> (Option<&str>, &str) {
    match auth.rsplit_once('@') {
        Some((u, rest)) => (Some(u), rest),
        None => (None, auth),
    }
}

/// `s` with its `%XX` escapes decoded; `what` (the user, the password...)
/// and `shown` (the target, password hidden) name it in the error.
fn percent_decode(s: &str, what: &str, shown: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
            _ => {
                return Err(format!(
                "{shown:?}: bad percent-encoding in the {what} (% must start %XX; write a % itself as %25)"
            ))
            }
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| format!("{shown:?}: the {what} is not UTF-8 once percent-decoded"))
}

/// The target text with the password of `user:password@` replaced by `***`,
/// for messages.
fn hide_password(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    match auth.rsplit_once('@') {
        Some((ui, hp)) => match ui.split_once(':') {
            Some((u, _)) => format!("{scheme}://{u}:***@{hp}{tail}"),
            // redis://secret@host: a lone word is the password; nats://token@host: a token.
            None if ["redis", "nats"].iter().any(|k| scheme.eq_ignore_ascii_case(k)) => {
                format!("{scheme}://***@{hp}{tail}")
            }
            None => s.to_string(),
        },
        None => s.to_string(),
    }
}

/// The `/db` part of a postgres:// or redis:// URL, without any `?query`;
/// `None` when absent or empty.
fn db_path(path: Option<&str>) -> Option<&str> {
    path.map(|d| d.split('?').next().unwrap_or(""))
        .filter(|d| !d.is_empty())
}

/// The host and port of a mysql://, amqp:// or nats:// URL, whose checks
/// send no credentials: `user[:password]@` is accepted and ignored, and so
/// is a path (a MySQL database, an AMQP vhost) where `path` allows one.
fn no_login(s: &str, rest: &str, port: u16, path: bool) -> Result<(String, u16), String> {
    let shown = &hide_password(s);
    let (auth, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !path && !matches!(tail, "" | "/") {
        return Err(format!(
            "{shown:?}: unexpected {tail:?} after the host (nats://host:port)"
        ));
    }
    host_port(userinfo(auth).1, Some(port), shown)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> Target {
        Target::Tcp {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn tcp_forms() {
        assert_eq!(Target::parse("db:5432"), Ok(tcp("db", 5432)));
        assert_eq!(Target::parse("tcp://db:5432"), Ok(tcp("db", 5432)));
        assert_eq!(Target::parse("[::1]:5432"), Ok(tcp("::1", 5432)));
        assert_eq!(Target::parse("127.0.0.1:1"), Ok(tcp("127.0.0.1", 1)));
    }

    #[test]
    fn http_forms() {
        let Ok(Target::Http(u)) = Target::parse("http://127.0.0.1:8000/health?x=1") else {
            panic!()
        };
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8000, "/health?x=1")
        );
        let Ok(Target::Http(u)) = Target::parse("http://svc") else {
            panic!()
        };
        assert_eq!(
            (u.port, u.path.as_str(), u.host_header()),
            (80, "/", "svc".to_string())
        );
        let Ok(Target::Http(u)) = Target::parse("http://[::1]:81/") else {
            panic!()
        };
        assert_eq!(u.host_header(), "[::1]:81");
    }

    #[test]
    fn https_forms() {
        let Ok(Target::Http(u)) = Target::parse("HTTPS://svc/health") else {
            panic!()
        };
        assert_eq!(
            (u.tls, u.port, u.path.as_str(), u.host_header(), u.scheme()),
            (true, 443, "/health", "svc".to_string(), "https")
        );
        let Ok(Target::Http(u)) = Target::parse("https://[::1]:8443") else {
            panic!()
        };
        assert_eq!((u.tls, u.host_header()), (true, "[::1]:8443".to_string()));
        let Ok(Target::Http(u)) = Target::parse("http://svc:443/") else {
            panic!()
        };
        assert_eq!((u.tls, u.host_header()), (false, "svc:443".to_string()));
        assert!(Target::parse("https://u:p@svc/")
            .unwrap_err()
            .contains("credentials"));
    }

    #[test]
    fn other_schemes() {
        assert_eq!(
            Target::parse("unix:///run/a.sock"),
            Ok(Target::Unix {
                path: "/run/a.sock".into()
            })
        );
        assert_eq!(
            Target::parse("file:///run/app.ready"),
            Ok(Target::File {
                path: "/run/app.ready".into()
            })
        );
        assert_eq!(
            Target::parse("postgres://app@db/main"),
            Ok(Target::Postgres {
                host: "db".into(),
                port: 5432,
                user: Some("app".into()),
                database: Some("main".into())
            })
        );
        assert_eq!(
            Target::parse("redis://:secret@cache:6380/0"),
            Ok(Target::Redis {
                host: "cache".into(),
                port: 6380,
                user: None,
                password: Some("secret".into()),
                db: Some(0),
            })
        );
    }

    #[test]
    fn credentials_and_databases_are_percent_decoded() {
        assert_eq!(
            Target::parse("redis://app:p%40ss%2Fw%3Ard@r/12"),
            Ok(Target::Redis {
                host: "r".into(),
                port: 6379,
                user: Some("app".into()),
                password: Some("p@ss/w:rd".into()),
                db: Some(12),
            })
        );
        // A lone word is the password, as redis-cli reads it.
        let Ok(Target::Redis {
            user, password, db, ..
        }) = Target::parse("redis://s%25cret@r")
        else {
            panic!()
        };
        assert_eq!((user, password, db), (None, Some("s%cret".into()), None));
        assert_eq!(
            Target::parse("postgres://a%40b:ignored@db:5433/my%2Fdb?sslmode=disable"),
            Ok(Target::Postgres {
                host: "db".into(),
                port: 5433,
                user: Some("a@b".into()),
                database: Some("my/db".into())
            })
        );
    }

    #[test]
    fn bad_credentials_are_usage_errors_without_the_password() {
        for (bad, why) in [
            ("redis://app:p%4@r", "bad percent-encoding in the password"),
            ("redis://app:p%zz@r", "bad percent-encoding in the password"),
            ("redis://a%g1:pw@r", "bad percent-encoding in the user"),
            ("redis://:pw@r/%", "bad percent-encoding in the database"),
            ("redis://:pw@r/x", "is not a number"),
            ("redis://:pw@r/-1", "is not a number"),
            ("redis://app:@r", "needs a password"),
            ("redis://:%ff@r", "not UTF-8"),
            ("postgres://a%@db", "bad percent-encoding in the user"),
            ("postgres://a:pw@db/d%2", "bad percent-encoding in the database"),
            ("postgres://a%00b@db", "NUL"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("@"), "{bad}: the target is named: {e}");
            assert!(
                !e.contains("pw") && !e.contains("p%4") && !e.contains("%ff"),
                "{bad}: {e}"
            );
        }
        assert_eq!(hide_password("redis://u:secret@h:1/2"), "redis://u:***@h:1/2");
        assert_eq!(hide_password("redis://secret@h"), "redis://***@h");
        assert_eq!(hide_password("postgres://app@h/db"), "postgres://app@h/db");
        assert_eq!(hide_password("redis://h/2"), "redis://h/2");
        let e = Target::parse("http://u:pw@h/x").unwrap_err();
        assert!(
            e.starts_with("\"http://u:***@h/x\": credentials") && !e.contains("pw"),
            "{e}"
        );
    }

    #[test]
    fn unix_socket_paths_must_fit_sun_path() {
        let ok = format!("unix:///{}", "a".repeat(106));
        assert!(Target::parse(&ok).is_ok());
        let long = format!("unix:///{}", "a".repeat(107));
        let e = Target::parse(&long).unwrap_err();
        assert!(
            e.contains("socket path is too long (108 bytes; at most 107)"),
            "{e}"
        );
        // file:// paths are not sockets: no such limit.
        assert!(Target::parse(&format!("file:///{}", "a".repeat(300))).is_ok());
    }

    #[test]
    fn relative_paths_get_an_example_of_their_own_scheme() {
        let e = Target::parse("file://run/app.ready").unwrap_err();
        assert!(e.contains("file:///run/app.ready") && !e.contains("unix:"), "{e}");
        let e = Target::parse("unix://run/app.sock").unwrap_err();
        assert!(e.contains("unix:///run/app.sock"), "{e}");
    }

    #[test]
    fn bad_targets_name_themselves() {
        for (bad, why) in [
            ("ftp://x:1", "unknown scheme"),
            ("db:70000", "out of range"),
            ("db:0", "out of range"),
            (":5432", "missing host"),
            ("db", "missing port"),
            ("db:", "missing port"),
            ("db:http", "not a number"),
            ("::1:5432", "brackets"),
            ("[::1:5432", "unclosed"),
            ("unix://relative.sock", "absolute"),
            ("", "empty"),
            ("http://a b/", "valid host"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn mongo_kafka_and_dns_forms() {
        assert_eq!(
            Target::parse("mongodb://db"),
            Ok(Target::Mongo {
                host: "db".into(),
                port: 27017
            })
        );
        assert_eq!(
            Target::parse("kafka://[::1]:9093/"),
            Ok(Target::Kafka {
                host: "::1".into(),
                port: 9093
            })
        );
        assert_eq!(Target::parse("kafka://k").unwrap().to_string(), "kafka://k:9092");
        assert_eq!(
            Target::parse("mongodb://m:1").unwrap().to_string(),
            "mongodb://m:1"
        );
        assert_eq!(
            Target::parse("dns://svc.internal"),
            Ok(Target::Dns {
                name: "svc.internal".into()
            })
        );
        assert_eq!(Target::parse("dns://svc").unwrap().to_string(), "dns://svc");
        for (bad, why) in [
            ("mongodb://u:p@db", "host[:port] only"),
            ("mongodb://a,b", "host[:port] only"),
            ("kafka://k:0", "out of range"),
            ("dns://svc:53", "without a port"),
            ("dns://", "missing host"),
            ("dns://a b", "valid host"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn grpc_forms() {
        let g = |h: &str, p, s: &str| Target::Grpc {
            tls: false,
            host: h.into(),
            port: p,
            service: s.into(),
        };
        assert_eq!(
            Target::parse("grpc://127.0.0.1:50051"),
            Ok(g("127.0.0.1", 50051, ""))
        );
        assert_eq!(Target::parse("grpc://svc:9000/"), Ok(g("svc", 9000, "")));
        assert_eq!(
            Target::parse("GRPC://[::1]:9000/my.pkg.Orders"),
            Ok(g("::1", 9000, "my.pkg.Orders"))
        );
        assert_eq!(Target::parse("grpc://h:1/a%20b/c"), Err("\"grpc://h:1/a%20b/c\": the service name has a space, ?, # or a control character (percent-encode it)".into()));
        assert_eq!(Target::parse("grpc://h:1/a%2Fb"), Ok(g("h", 1, "a/b")));
        assert_eq!(g("::1", 9000, "x").to_string(), "grpc://[::1]:9000/x");
        assert_eq!(g("h", 1, "").to_string(), "grpc://h:1");
        let Ok(Target::Grpc { tls, .. }) = Target::parse("grpcs://h:443/x") else {
            panic!()
        };
        assert!(tls);
        assert_eq!(
            Target::parse("grpcs://h:443/x").unwrap().to_string(),
            "grpcs://h:443/x"
        );
        for (bad, why) in [
            ("grpc://svc", "missing port"),
            ("grpc://svc/x", "missing port"),
            ("grpc://u:p@svc:1", "credentials"),
            ("grpc://svc:1/x?y", "service name"),
            ("grpc://svc:1/%zz", "bad percent-encoding in the service name"),
            ("grpcs://svc", "missing port"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn mysql_amqp_nats_take_host_and_port_and_ignore_logins() {
        for (text, want) in [
            (
                "mysql://db",
                Target::Mysql {
                    host: "db".into(),
                    port: 3306,
                },
            ),
            (
                "MariaDB://root:pw@[::1]:3307/app?ssl=1",
                Target::Mysql {
                    host: "::1".into(),
                    port: 3307,
                },
            ),
            (
                "amqp://mq",
                Target::Amqp {
                    host: "mq".into(),
                    port: 5672,
                },
            ),
            (
                "amqp://guest:guest@mq:5673/%2Fvhost",
                Target::Amqp {
                    host: "mq".into(),
                    port: 5673,
                },
            ),
            (
                "nats://n",
                Target::Nats {
                    host: "n".into(),
                    port: 4222,
                },
            ),
            (
                "nats://tok@n:4223/",
                Target::Nats {
                    host: "n".into(),
                    port: 4223,
                },
            ),
        ] {
            assert_eq!(Target::parse(text).as_ref(), Ok(&want), "{text}");
            // Shown without the login, so no password is ever printed.
            let shown = want.to_string();
            assert!(!shown.contains("pw") && !shown.contains("guest@"), "{shown}");
        }
        assert_eq!(
            Target::parse("amqp://u:pw@mq:1/v").unwrap().to_string(),
            "amqp://mq:1"
        );
        for (bad, why) in [
            ("mysql://u:pw@db:0", "out of range"),
            ("amqp://u:pw@:5672", "missing host"),
            ("nats://u:pw@n:4222/x", "unexpected \"/x\""),
            ("mysql://u:pw@db:x", "not a number"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("u:***@") && !e.contains("pw"), "{bad}: {e}");
        }
        // A lone word before @ in a NATS URL is a token: hidden too.
        let e = Target::parse("nats://s3cret@n:x").unwrap_err();
        assert!(e.contains("nats://***@n:x") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn display_round_trips_scheme() {
        assert_eq!(tcp("::1", 5).to_string(), "tcp://[::1]:5");
        assert_eq!(Target::parse("redis://r").unwrap().to_string(), "redis://r:6379");
        assert_eq!(
            Target::parse("redis://:pw@r/3").unwrap().to_string(),
            "redis://r:6379/3"
        );
    }
}
