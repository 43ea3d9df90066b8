//! The pieces of a target URL: host and port, userinfo, the path of a
//! `unix://` or `file://` target, percent-decoding, and the password
//! hidden for messages.

use std::path::PathBuf;

/// Split `host:port` / `[v6]:port` / `host` (with a default port).
pub(super) fn host_port(s: &str, default_port: Option<u16>, whole: &str) -> Result<(String, u16), String> {
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
pub(super) fn abs_path(rest: &str, whole: &str, example: &str) -> Result<PathBuf, String> {
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
pub(super) fn userinfo(auth: &str) -> (Option<&str>, &str) {
    match auth.rsplit_once('@') {
        Some((u, rest)) => (Some(u), rest),
        None => (None, auth),
    }
}

/// `s` with its `%XX` escapes decoded; `what` (the user, the password...)
/// and `shown` (the target, password hidden) name it in the error.
pub(super) fn percent_decode(s: &str, what: &str, shown: &str) -> Result<String, String> {
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
pub(super) fn hide_password(s: &str) -> String {
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
pub(super) fn db_path(path: Option<&str>) -> Option<&str> {
    path.map(|d| d.split('?').next().unwrap_or(""))
        .filter(|d| !d.is_empty())
}

/// The host and port of a mysql://, amqp:// or nats:// URL, whose checks
/// send no credentials: `user[:password]@` is accepted and ignored, and so
/// is a path (a MySQL database, an AMQP vhost) where `path` allows one.
pub(super) fn no_login(s: &str, rest: &str, port: u16, path: bool) -> Result<(String, u16), String> {
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
