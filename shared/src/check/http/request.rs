//! What bytes an HTTP probe sends: the request line and headers, with the
//! kubelet's rules for the headers a user gives, and the check of a header
//! given on the command line.

use crate::target::HttpUrl;

/// Check one `Name: value` request header: a token name, no line breaks.
pub fn check_header(h: &str) -> Result<(), String> {
    let Some((name, value)) = h.split_once(':') else {
        return Err(format!("{h:?} is not a header (use \"Name: value\")"));
    };
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err(format!("{h:?}: {name:?} is not a header name"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(format!("{h:?}: line breaks are not allowed in a header value"));
    }
    Ok(())
}

/// The bytes of the request.
pub fn request(url: &HttpUrl, headers: &[String]) -> Vec<u8> {
    build_request(url, headers, true)
}

/// `Name: value` split, the value trimmed.
fn split_header(h: &str) -> (&str, &str) {
    let (n, v) = h.split_once(':').unwrap_or((h, ""));
    (n.trim(), v.trim())
}

/// The request, with the kubelet's rules for the headers given: a Host,
/// User-Agent or Accept header replaces ours (the first one given counts for
/// Host and User-Agent), an empty User-Agent or Accept is not sent, an empty
/// Host leaves ours. `user_host`: whether a given Host counts (Go drops it
/// after a redirect to an absolute URL).
pub(super) fn build_request(url: &HttpUrl, headers: &[String], user_host: bool) -> Vec<u8> {
    let mut host = None;
    let mut agent = None;
    let mut accept = false;
    for h in headers {
        let (n, v) = split_header(h);
        if n.eq_ignore_ascii_case("host") {
            host = host.or(Some(v));
        } else if n.eq_ignore_ascii_case("user-agent") {
            agent = agent.or(Some(v));
        } else if n.eq_ignore_ascii_case("accept") {
            accept = true;
        }
    }
    let ours;
    let host = match host.filter(|v| user_host && !v.is_empty()) {
        Some(v) => v,
        None => {
            ours = url.host_header();
            &ours
        }
    };
    let mut r =
        String::with_capacity(160 + url.path.len() + headers.iter().map(|h| h.len() + 2).sum::<usize>());
    for part in ["GET ", &url.path, " HTTP/1.1\r\nHost: ", host, "\r\n"] {
        r.push_str(part);
    }
    match agent {
        None => {
            for part in ["User-Agent: dockhand-healthcheck/", crate::VERSION, "\r\n"] {
                r.push_str(part);
            }
        }
        Some("") => {}
        Some(v) => {
            for part in ["User-Agent: ", v, "\r\n"] {
                r.push_str(part);
            }
        }
    }
    if !accept {
        r.push_str("Accept: */*\r\n");
    }
    r.push_str("Connection: close\r\n");
    for h in headers {
        let (n, v) = split_header(h);
        let ours = n.eq_ignore_ascii_case("host") || n.eq_ignore_ascii_case("user-agent");
        if ours || (v.is_empty() && n.eq_ignore_ascii_case("accept")) {
            continue;
        }
        r.push_str(h.trim());
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}
