//! Where a redirect leads: a Location resolved against the URL that
//! answered it, as RFC 3986 §5.2 says, with the path's dot segments removed.
//! Pure: no I/O.

use super::response::show;
use super::MAX_URL;
use crate::target::{HttpUrl, Target};
use std::fmt::Write as _;

/// Where a redirect leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// An http:// or https:// URL. `relative`: the Location had no scheme.
    Http { url: HttpUrl, relative: bool },
    /// Somewhere this client does not go: another scheme, or an http URL it
    /// cannot parse. `host`: the host name, `""` when there is none.
    Other { host: String, text: String, why: Why },
}

/// Why a redirect cannot be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Scheme,
    Unparsable,
}

/// Resolve a Location against the URL that answered it (RFC 3986 §5.2,
/// strict: `http:g` is not relative). Spaces and bytes past ASCII are
/// percent-encoded, as browsers and Go do; other control bytes, or a
/// Location or result longer than `MAX_URL`, are an error. The fragment is
/// dropped. Pure: no I/O.
pub fn resolve(base: &HttpUrl, location: &[u8]) -> Result<Resolved, String> {
    let too_long = || format!("redirect Location longer than {} KiB", MAX_URL / 1024);
    if location.len() > MAX_URL {
        return Err(too_long());
    }
    let mut s = String::with_capacity(location.len());
    for &b in location {
        match b {
            0x21..=0x7e => s.push(b as char),
            b' ' | 0x80..=0xff => {
                let _ = write!(s, "%{b:02X}");
            }
            _ => return Err(format!("bad redirect Location {}", show(location, 60))),
        }
    }
    let s = s.split('#').next().unwrap_or("");
    let scheme = match s.find([':', '/', '?']) {
        Some(i) if s.as_bytes()[i] == b':' && is_scheme(&s[..i]) => Some((&s[..i], &s[i + 1..])),
        _ => None,
    };
    let (scheme, rest) = match scheme {
        Some(sr) => sr,
        // A network-path reference keeps the base's scheme.
        None if s.starts_with("//") => (base.scheme(), s),
        None => {
            let url = relative(base, s);
            if url.path.len() > MAX_URL {
                return Err(too_long());
            }
            return Ok(Resolved::Http { url, relative: true });
        }
    };
    let host = rest
        .strip_prefix("//")
        .map(hostname)
        .unwrap_or_default()
        .to_string();
    let other = |why| Resolved::Other {
        host: host.clone(),
        text: s.to_string(),
        why,
    };
    // The kubelet (Go's client) follows a change of scheme either way.
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Ok(other(Why::Scheme));
    }
    if !rest.starts_with("//") {
        return Ok(other(Why::Unparsable));
    }
    let Ok(Target::Http(mut url)) = Target::parse(&format!("{scheme}:{rest}")) else {
        return Ok(other(Why::Unparsable));
    };
    let (path, query) = split_query(&url.path);
    url.path = with_query(remove_dots(path), query);
    if url.path.len() > MAX_URL {
        return Err(too_long());
    }
    url.text = format!("{}://{}{}", url.scheme(), url.host_header(), url.path);
    Ok(Resolved::Http {
        url,
        relative: scheme_less(location),
    })
}

/// Whether the Location had no scheme (`//host/x` has none), which decides
/// whether a Host header given is kept, as Go decides it.
fn scheme_less(location: &[u8]) -> bool {
    let s = String::from_utf8_lossy(location);
    !matches!(s.find([':', '/', '?', '#']), Some(i) if s.as_bytes()[i] == b':' && is_scheme(&s[..i]))
}

/// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
fn is_scheme(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The host name of an authority (`user@[::1]:80` gives `::1`).
fn hostname(after_slashes: &str) -> &str {
    let auth = after_slashes.split(['/', '?']).next().unwrap_or("");
    let hp = auth.rsplit_once('@').map_or(auth, |(_, hp)| hp);
    if let Some(v6) = hp.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    hp.rsplit_once(':').map_or(hp, |(h, _)| h)
}

fn split_query(p: &str) -> (&str, Option<&str>) {
    match p.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (p, None),
    }
}

fn with_query(mut path: String, query: Option<&str>) -> String {
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// A reference without scheme or authority, against `base` (RFC 3986 §5.2.2).
fn relative(base: &HttpUrl, r: &str) -> HttpUrl {
    let (bpath, bquery) = split_query(&base.path);
    let (rpath, rquery) = split_query(r);
    let path = if rpath.is_empty() {
        with_query(bpath.to_string(), rquery.or(bquery))
    } else if rpath.starts_with('/') {
        with_query(remove_dots(rpath), rquery)
    } else {
        let dir = &bpath[..bpath.rfind('/').map_or(0, |i| i + 1)];
        with_query(remove_dots(&format!("{dir}{rpath}")), rquery)
    };
    HttpUrl {
        host: base.host.clone(),
        port: base.port,
        text: format!("{}://{}{path}", base.scheme(), base.host_header()),
        path,
        tls: base.tls,
    }
}

/// RFC 3986 §5.2.4 for a path that starts with `/` (one is added if not).
pub fn remove_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut segs = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        match seg {
            "." | ".." => {
                if seg == ".." {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut r = String::with_capacity(path.len() + 1);
    for s in &out {
        r.push('/');
        r.push_str(s);
    }
    if r.is_empty() {
        r.push('/');
    }
    r
}
