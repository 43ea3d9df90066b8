//! Unit tests of the HTTP probe: the pure parts, then live probes against
//! loopback servers run by the tests.

use super::*;
use crate::target::Target;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn status_rule() {
    assert!(status_ok(200, &[]) && status_ok(301, &[]) && status_ok(399, &[]));
    assert!(!status_ok(404, &[]) && !status_ok(500, &[]) && !status_ok(199, &[]));
    let r = parse_status("200,204").unwrap();
    assert!(status_ok(204, &r) && !status_ok(201, &r));
    let r = parse_status("200-299, 418").unwrap();
    assert!(status_ok(250, &r) && status_ok(418, &r) && !status_ok(301, &r));
    for bad in ["", "2000", "99", "abc", "300-200", "600", "20x"] {
        assert!(parse_status(bad).is_err(), "{bad}");
    }
}

#[test]
fn headers_are_checked() {
    assert!(check_header("Authorization: Bearer x").is_ok());
    assert!(check_header("X-A:").is_ok());
    assert!(check_header("no colon").is_err());
    assert!(check_header("Bad Name: x").is_err());
    assert!(check_header(": x").is_err());
    assert!(check_header("X: a\r\nInjected: 1").is_err());
}

#[test]
fn head_end_finds_blank_line() {
    assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
    assert_eq!(head_end(b"HTTP/1.1 200 OK\nA: b\n\nbody"), Some(22));
    assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n"), None);
    assert_eq!(head_end(b""), None);
    assert_eq!(head_end(b"\n"), None);
}

#[test]
fn parse_head_framing() {
    let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").unwrap();
    assert_eq!(
        h,
        Head {
            status: 200,
            framing: Framing::Length(12),
            location: None,
        }
    );
    let h = parse_head(
        b"HTTP/1.0 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        h,
        Head {
            status: 404,
            framing: Framing::Chunked,
            location: None,
        }
    );
    let h = parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::None);
    let h = parse_head(b"HTTP/1.1 500\n\n").unwrap();
    assert_eq!(
        h,
        Head {
            status: 500,
            framing: Framing::Close,
            location: None,
        }
    );
    let h = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 4294967296\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::Length(4_294_967_296));
}

#[test]
fn parse_head_rejects_garbage() {
    for bad in [
        &b"HTTP/2 200\r\n\r\n"[..],
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"\xff\xfe",
        b"",
    ] {
        assert!(parse_head(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

fn dechunk_all(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), String> {
    let mut d = Dechunk::default();
    let mut out = Vec::new();
    let mut done = false;
    for piece in input.chunks(step.max(1)) {
        done = d.feed(piece, &mut out, 1 << 20)?;
    }
    Ok((out, done))
}

#[test]
fn dechunk_in_any_split() {
    let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
    for step in [1, 2, 3, 7, 100] {
        assert_eq!(
            dechunk_all(body, step).unwrap(),
            (b"hello, world".to_vec(), true),
            "step {step}"
        );
    }
    // Bare LF line ends and upper-case hex.
    assert_eq!(
        dechunk_all(b"A\nabcdefghij\n0\n\n", 4).unwrap(),
        (b"abcdefghij".to_vec(), true)
    );
    // Incomplete: data so far, not done.
    assert_eq!(dechunk_all(b"5\r\nhel", 2).unwrap(), (b"hel".to_vec(), false));
}

#[test]
fn dechunk_rejects_and_limits() {
    assert!(dechunk_all(b"zz\r\n", 1).is_err());
    assert!(dechunk_all(b"\r\n", 1).is_err());
    assert!(dechunk_all(b"3\r\nabcX\r\n", 1).is_err());
    assert!(dechunk_all(b"ffffffffffffffffff\r\n", 1).is_err());
    let mut d = Dechunk::default();
    let mut out = Vec::new();
    assert!(!d.feed(b"10\r\n0123456789abcdef", &mut out, 4).unwrap());
    assert_eq!(out, b"0123");
}

#[test]
fn request_has_host_and_headers() {
    let Ok(crate::target::Target::Http(u)) = crate::target::Target::parse("http://[::1]:81/h?x=1") else {
        panic!()
    };
    let r = String::from_utf8(request(&u, &["X-Token: a".into()])).unwrap();
    assert!(r.starts_with("GET /h?x=1 HTTP/1.1\r\nHost: [::1]:81\r\n"), "{r}");
    assert!(
        r.contains("\r\nConnection: close\r\n") && r.ends_with("X-Token: a\r\n\r\n"),
        "{r}"
    );
}

/// A one-shot server on a loopback port answering `reply` to the first request.
fn serve(reply: &'static [u8]) -> HttpUrl {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
            let _ = s.write_all(reply);
        }
    });
    let Ok(crate::target::Target::Http(u)) =
        crate::target::Target::parse(&format!("http://127.0.0.1:{port}/"))
    else {
        panic!()
    };
    u
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
fn live_statuses_and_body() {
    // The same host name on another port: followed (to a port nothing listens on).
    let u = serve(b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        check(&u, soon(), &Options::default()),
        Err(CheckError::new(
            crate::check::Kind::Refused,
            "connection refused at http://127.0.0.1:1/ (1 redirect)"
        ))
    );
    let u = serve(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(check(&u, soon(), &Options::default()), Err("status 500".into()));
    let u = serve(b"HTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    let o = Options {
        body_contains: Some("cd".into()),
        ..Options::default()
    };
    assert_eq!(check(&u, soon(), &o), Ok("200".into()));
    let u = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef");
    let o = Options {
        body_contains: Some("de".into()),
        ..Options::default()
    };
    let e = check(&u, soon(), &o).unwrap_err();
    assert!(e.contains("body does not contain"), "{e}");
    let u = serve(b"garbage\r\n\r\n");
    assert!(check(&u, soon(), &Options::default())
        .unwrap_err()
        .contains("malformed status line"));
}

fn url(s: &str) -> HttpUrl {
    let Ok(Target::Http(u)) = Target::parse(s) else {
        panic!("{s}")
    };
    u
}

fn req_text(u: &HttpUrl, headers: &[&str], user_host: bool) -> String {
    let h: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    String::from_utf8(build_request(u, &h, user_host)).unwrap()
}

fn count_lines(req: &str, name: &str) -> usize {
    req.split("\r\n")
        .filter(|l| l.split(':').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .count()
}

#[test]
fn headers_replace_as_the_kubelet_does() {
    let u = url("http://127.0.0.1:81/h");
    let ua = format!("User-Agent: dockhand-healthcheck/{}", crate::VERSION);
    // Defaults.
    let r = req_text(&u, &[], true);
    assert!(r.contains("\r\nHost: 127.0.0.1:81\r\n") && r.contains(&ua) && r.contains("\r\nAccept: */*\r\n"));
    // Replaced, whatever the case of the name: exactly one of each.
    let r = req_text(
        &u,
        &["host: app.example", "User-Agent: probe/1", "ACCEPT: text/plain"],
        true,
    );
    assert!(r.contains("\r\nHost: app.example\r\n"), "{r}");
    assert!(r.contains("\r\nUser-Agent: probe/1\r\n"), "{r}");
    assert!(r.contains("\r\nACCEPT: text/plain\r\n"), "{r}");
    for name in ["host", "user-agent", "accept"] {
        assert_eq!(count_lines(&r, name), 1, "{name}: {r}");
    }
    // An empty value drops User-Agent and Accept; an empty Host leaves ours.
    let r = req_text(&u, &["User-Agent:", "Accept:  ", "Host:"], true);
    assert_eq!(count_lines(&r, "user-agent"), 0, "{r}");
    assert_eq!(count_lines(&r, "accept"), 0, "{r}");
    assert!(r.contains("\r\nHost: 127.0.0.1:81\r\n"), "{r}");
    // Given twice: the first Host and User-Agent count; Accept lines all go.
    let r = req_text(
        &u,
        &[
            "Host: a",
            "Host: b",
            "User-Agent: x",
            "User-Agent: y",
            "Accept: a",
            "Accept: b",
        ],
        true,
    );
    assert!(
        r.contains("\r\nHost: a\r\n") && count_lines(&r, "host") == 1,
        "{r}"
    );
    assert!(
        r.contains("\r\nUser-Agent: x\r\n") && count_lines(&r, "user-agent") == 1,
        "{r}"
    );
    assert_eq!(count_lines(&r, "accept"), 2, "{r}");
    // After a redirect to an absolute URL, the given Host no longer counts.
    let r = req_text(&u, &["Host: app.example"], false);
    assert!(
        r.contains("\r\nHost: 127.0.0.1:81\r\n") && count_lines(&r, "host") == 1,
        "{r}"
    );
    // Other headers, empty or not, go as given.
    let r = req_text(&u, &["X-Empty:", "X-A: 1"], true);
    assert!(r.ends_with("\r\nX-Empty:\r\nX-A: 1\r\n\r\n"), "{r}");
}

#[test]
fn obs_text_and_obs_fold_are_accepted() {
    // Latin-1 in the reason phrase and in a value.
    let h = parse_head(b"HTTP/1.1 200 Caf\xe9\r\nServer: caf\xe9\r\nContent-Length: 2\r\n\r\n").unwrap();
    assert_eq!((h.status, h.framing), (200, Framing::Length(2)));
    // A folded value is joined with one space.
    let h =
        parse_head(b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nTransfer-Encoding: gzip,\r\n\tchunked\r\n\r\n")
            .unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    let h = parse_head(b"HTTP/1.1 302 Found\r\nLocation: /a\r\n b\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(h.location.as_deref(), Some(&b"/a b"[..]));
    // A folded Content-Length is still one number or an error.
    assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 2\r\n\r\n").is_err());
    // Whitespace before the first field is skipped.
    let h = parse_head(b"HTTP/1.1 200 OK\r\n Content-Length: 9\r\nContent-Length: 3\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::Length(3));
    // Location only for statuses that are followed; the first one counts.
    let h = parse_head(b"HTTP/1.1 300 Choices\r\nLocation: /a\r\n\r\n").unwrap();
    assert_eq!(h.location, None);
    let h = parse_head(b"HTTP/1.1 307 T\r\nLocation:\t/a \r\nLocation: /b\r\n\r\n").unwrap();
    assert_eq!(h.location.as_deref(), Some(&b"/a"[..]));
    // Still rejected: a line without a colon, shown escaped.
    let e = parse_head(b"HTTP/1.1 200 OK\r\n\x1b[2J caf\xe9 \xc3\xa9\r\n\r\n").unwrap_err();
    assert_eq!(e, r#"malformed header line "\u{1b}[2J caf\xe9 é""#);
    let e = parse_head(b"HTTP/1.1 2\x1b]0;x\x07 OK\r\n\r\n").unwrap_err();
    assert!(!e.chars().any(char::is_control), "{e}");
}

#[test]
fn show_escapes_and_clips() {
    assert_eq!(show(b"ok \"q\" \\", 60), r#""ok \"q\" \\""#);
    assert_eq!(show(b"\r\n\0\xff", 60), r#""\r\n\0\xff""#);
    assert_eq!(show(b"abcdef", 3), r#""abc"..."#);
}

fn resolved(base: &str, loc: &str) -> String {
    match resolve(&url(base), loc.as_bytes()).unwrap() {
        Resolved::Http { url, .. } => url.text,
        Resolved::Other { text, why, .. } => format!("{why:?} {text}"),
    }
}

#[test]
fn locations_resolve_as_rfc3986_says() {
    // RFC 3986 §5.4, with http://a/b/c/d;p?q as the base.
    let base = "http://a/b/c/d;p?q";
    for (r, want) in [
        ("g:h", "Scheme g:h"),
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g/"),
        ("?y", "http://a/b/c/d;p?y"),
        ("g?y", "http://a/b/c/g?y"),
        ("#s", "http://a/b/c/d;p?q"),
        ("g#s", "http://a/b/c/g"),
        ("g?y#s", "http://a/b/c/g?y"),
        (";x", "http://a/b/c/;x"),
        ("", "http://a/b/c/d;p?q"),
        (".", "http://a/b/c/"),
        ("./", "http://a/b/c/"),
        ("..", "http://a/b/"),
        ("../", "http://a/b/"),
        ("../g", "http://a/b/g"),
        ("../..", "http://a/"),
        ("../../", "http://a/"),
        ("../../g", "http://a/g"),
        ("../../../g", "http://a/g"),
        ("../../../../g", "http://a/g"),
        ("/./g", "http://a/g"),
        ("/../g", "http://a/g"),
        ("g.", "http://a/b/c/g."),
        (".g", "http://a/b/c/.g"),
        ("g..", "http://a/b/c/g.."),
        ("..g", "http://a/b/c/..g"),
        ("./../g", "http://a/b/g"),
        ("./g/.", "http://a/b/c/g/"),
        ("g/./h", "http://a/b/c/g/h"),
        ("g/../h", "http://a/b/c/h"),
        ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
        ("g;x=1/../y", "http://a/b/c/y"),
        ("g?y/./x", "http://a/b/c/g?y/./x"),
        ("g#s/../x", "http://a/b/c/g"),
        ("http:g", "Unparsable http:g"),
        // Beyond the RFC's table.
        ("HTTP://A:8080/x/../y", "http://A:8080/y"),
        ("https://a/x", "https://a/x"),
        ("HTTPS://a:443/x", "https://a/x"),
        ("https://a:80/x", "https://a:80/x"),
        ("http://u:p@a/x", "Unparsable http://u:p@a/x"),
        ("/caf\u{e9} x", "http://a/caf%C3%A9%20x"),
    ] {
        assert_eq!(resolved(base, r), want, "{r:?}");
    }
    // An empty segment in the base is kept.
    let base = "http://a//x/y";
    for (r, want) in [("g", "http://a//x/g"), ("../g", "http://a//g")] {
        assert_eq!(resolved(base, r), want, "{r:?}");
    }
    let host = |loc: &str| match resolve(&url("http://a/b/c/d;p?q"), loc.as_bytes()).unwrap() {
        Resolved::Other { host, .. } => host,
        Resolved::Http { url, .. } => url.host,
    };
    assert_eq!(host("https://u@[::1]:8443/x"), "::1");
    assert_eq!(host("ftp://files.example:21"), "files.example");
    assert_eq!(host("mailto:x@y"), "");
    assert!(resolve(&url(base), b"/a\x01b").is_err());
    assert!(resolve(&url(base), &vec![b'a'; MAX_URL + 1]).is_err());
    assert!(
        resolve(&url(base), &vec![0xe9; MAX_URL / 2]).is_err(),
        "grows past MAX_URL encoded"
    );
}

/// A server on a loopback port answering every connection with
/// `reply(path, port)`; returns its port and the requests seen.
fn routes(reply: fn(&str, u16) -> Vec<u8>) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let mut b = [0u8; 1024];
            while head_end(&buf).is_none() {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&b[..n]),
                }
            }
            let req = String::from_utf8_lossy(&buf).into_owned();
            let path = req.split(' ').nth(1).unwrap_or("").to_string();
            seen2.lock().unwrap().push(req);
            let _ = s.write_all(&reply(&path, port));
        }
    });
    (port, seen)
}

fn to(location: &str) -> Vec<u8> {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn answer(status: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").into_bytes()
}

#[test]
fn redirects_follow_the_kubelet_rule() {
    let (port, seen) = routes(|path, port| match path {
        "/to-500" => to("/500"),
        "/500" => answer("500 Oops"),
        "/to-200" => to(&format!("http://127.0.0.1:{port}/a/../ok?x=1")),
        "/ok?x=1" => answer("200 OK"),
        "/away" => to("http://localhost:1/nowhere"),
        "/tls" => to("https://127.0.0.1:1/secure"),
        "/ftp" => to("ftp://127.0.0.1/x"),
        "/loop" => to("/loop2"),
        "/loop2" => to("/loop"),
        "/empty" => to(""),
        p if p.starts_with("/chain/") => {
            // /chain/N redirects to /chain/N-1; /chain/0 answers 200.
            let n: u32 = p[7..].parse().unwrap_or(0);
            if n == 0 {
                answer("200 OK")
            } else {
                to(&format!("/chain/{}", n - 1))
            }
        }
        _ => answer("404 Not Found"),
    });
    let at = |p: &str| url(&format!("http://127.0.0.1:{port}{p}"));
    let base = format!("http://127.0.0.1:{port}");
    let o = Options::default();
    assert_eq!(
        check(&at("/to-500"), soon(), &o),
        Err(format!("status 500 at {base}/500 (1 redirect)").into())
    );
    assert_eq!(
        check(&at("/to-200"), soon(), &o),
        Ok(format!("200 at {base}/ok?x=1 (1 redirect)"))
    );
    assert_eq!(
        check(&at("/away"), soon(), &o),
        Ok("302 (redirect to http://localhost:1/nowhere not followed: another host)".into())
    );
    // A change of scheme on the same host is followed, as the kubelet does.
    assert_eq!(
        check(&at("/tls"), soon(), &o),
        Err(CheckError::new(
            crate::check::Kind::Refused,
            "connection refused at https://127.0.0.1:1/secure (1 redirect)"
        ))
    );
    assert_eq!(
        check(&at("/ftp"), soon(), &o),
        Err("cannot follow the redirect to ftp://127.0.0.1/x".into())
    );
    assert_eq!(
        check(&at("/loop"), soon(), &o),
        Err(format!("redirect loop: {base}/loop again after 2 redirects").into())
    );
    assert_eq!(check(&at("/empty"), soon(), &o), Ok("302".into()));
    // Nine redirects are followed; the tenth fails, after ten requests.
    assert_eq!(
        check(&at("/chain/9"), soon(), &o),
        Ok(format!("200 at {base}/chain/0 (9 redirects)"))
    );
    seen.lock().unwrap().clear();
    assert_eq!(
        check(&at("/chain/10"), soon(), &o),
        Err(format!("stopped after 10 redirects (the last to {base}/chain/0)").into())
    );
    assert_eq!(seen.lock().unwrap().len(), 10);
    // --status judges the final response; a 3xx not followed is judged too.
    let o200 = Options {
        status: vec![(200, 200)],
        ..Options::default()
    };
    assert!(check(&at("/to-200"), soon(), &o200).is_ok());
    assert_eq!(check(&at("/away"), soon(), &o200), Err("status 302".into()));
    // No following: the first answer decides, as before.
    let nf = Options {
        no_follow: true,
        ..Options::default()
    };
    seen.lock().unwrap().clear();
    assert_eq!(check(&at("/to-500"), soon(), &nf), Ok("302".into()));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn a_given_host_is_kept_on_relative_redirects_only() {
    let (port, seen) = routes(|path, port| match path {
        "/rel" => to("/abs"),
        "/abs" => to(&format!("http://127.0.0.1:{port}/end")),
        _ => answer("200 OK"),
    });
    let o = Options {
        headers: vec!["Host: app.example".into(), "X-Token: t".into()],
        ..Options::default()
    };
    let u = url(&format!("http://127.0.0.1:{port}/rel"));
    assert!(check(&u, soon(), &o).is_ok());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (req, host) in seen
        .iter()
        .zip(["app.example", "app.example", &format!("127.0.0.1:{port}")])
    {
        assert!(req.contains(&format!("\r\nHost: {host}\r\n")), "{req}");
        assert_eq!(count_lines(req, "host"), 1, "{req}");
        assert!(req.contains("\r\nX-Token: t\r\n"), "{req}");
    }
}

#[test]
fn the_deadline_bounds_all_hops() {
    // The second hop accepts and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let _keep: Vec<_> = l.incoming().take(4).collect();
    });
    let u = {
        // A first hop that redirects to the silent port.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                let _ = s.write_all(&to(&format!("http://127.0.0.1:{silent}/slow")));
            }
        });
        url(&format!("http://127.0.0.1:{p}/"))
    };
    let start = Instant::now();
    let e = check(&u, start + Duration::from_millis(300), &Options::default()).unwrap_err();
    assert_eq!(
        e,
        format!("timed out at http://127.0.0.1:{silent}/slow (1 redirect)")
    );
    // The kind survives the hop's suffix: healthcheck and wait branch on it.
    assert_eq!(e.kind, crate::check::Kind::TimedOut);
    // Bounded by the one deadline (generous margin for a loaded machine).
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}
