//! The target syntax shared by healthcheck, waitfor and ready:
//!
//! ```text
//! host:port | tcp://host:port     TCP connect succeeds
//! http://host[:port]/path         HTTP status 200-399 unless told otherwise
//! unix:///path/to.sock            unix socket connect succeeds
//! file:///path                    the path exists
//! postgres://[user@]host[:port]   the server accepts connections (not starting up)
//! redis://[:password@]host[:port] PING answers PONG (not LOADING)
//! ```
//! IPv6 literals go in brackets: `[::1]:5432`, `http://[::1]:8000/health`.

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
        password: Option<String>,
    },
}

/// An `http://` URL, split as the request needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
    /// The original text, for messages.
    pub text: String,
}

impl HttpUrl {
    /// The `Host:` header value (port omitted when it is 80, brackets kept for IPv6).
    pub fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
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
            Target::Redis { host, port, .. } => write!(f, "redis://{}", hp(host, *port)),
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

fn abs_path(rest: &str, whole: &str) -> Result<PathBuf, String> {
    if !rest.starts_with('/') {
        return Err(format!(
            "{whole:?}: the path must be absolute (three slashes: unix:///run/app.sock)"
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
            "http" => {
                let (auth, path) = match rest.find(['/', '?']) {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                if auth.contains('@') {
                    return Err(format!("{whole:?}: credentials in the URL are not supported; use --header"));
                }
                let (host, port) = host_port(auth, Some(80), whole)?;
                let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
                let path = path.split('#').next().unwrap_or("/").to_string();
                if path.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(format!("{whole:?}: the path has spaces or control characters (percent-encode them)"));
                }
                Ok(Target::Http(HttpUrl { host, port, path, text: s.to_string() }))
            }
            "https" => Err(format!(
                "{whole:?}: https is not in this build (dockhand's static builds probe plain http; terminate TLS in front or probe the plain port)"
            )),
            "unix" => Ok(Target::Unix { path: abs_path(rest, whole)? }),
            "file" => Ok(Target::File { path: abs_path(rest, whole)? }),
            "postgres" | "postgresql" => {
                let (auth, db) = match rest.split_once('/') {
                    Some((a, d)) => (a, Some(d.split('?').next().unwrap_or("")).filter(|d| !d.is_empty())),
                    None => (rest, None),
                };
                let (ui, hp) = userinfo(auth);
                let user = ui.map(|u| u.split(':').next().unwrap_or("").to_string()).filter(|u| !u.is_empty());
                let (host, port) = host_port(hp, Some(5432), whole)?;
                Ok(Target::Postgres { host, port, user, database: db.map(str::to_string) })
            }
            "redis" => {
                let auth = rest.split('/').next().unwrap_or("");
                let (ui, hp) = userinfo(auth);
                let password = ui
                    .map(|u| u.split_once(':').map_or(u, |(_, p)| p).to_string())
                    .filter(|p| !p.is_empty());
                let (host, port) = host_port(hp, Some(6379), whole)?;
                Ok(Target::Redis { host, port, password })
            }
            other => Err(format!(
                "{whole:?}: unknown scheme {other:?} (use host:port, tcp://, http://, unix://, file://, postgres:// or redis://)"
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
                password: Some("secret".into())
            })
        );
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
    fn display_round_trips_scheme() {
        assert_eq!(tcp("::1", 5).to_string(), "tcp://[::1]:5");
        assert_eq!(Target::parse("redis://r").unwrap().to_string(), "redis://r:6379");
    }
}
