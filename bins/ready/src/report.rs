//! The startup report: once ready, one JSON document POSTed to an
//! observability endpoint, saying which service came up where, how long it
//! took, what it waited for and which build it is. Sent by the watcher,
//! bounded in time and retried with backoff within that bound; it never
//! delays or fails the service, and its outcome is one line on stderr.

use dockhand::check::http;
use dockhand::target::HttpUrl;
use dockhand::wait::Backoff;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The `schema` field: bumped when a field changes meaning or goes away.
pub const SCHEMA: &str = "dockhand.ready.report/1";
/// Everything the report does (all attempts) ends within this.
pub const WITHIN: Duration = Duration::from_secs(10);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// Build variables reported when `--report-env` names none.
pub const DEFAULT_ENV: [&str; 3] = ["GIT_SHA", "IMAGE_TAG", "BUILD_DATE"];
/// Longest value of one build variable kept (longer ones are cut).
const VALUE_MAX: usize = 1024;
/// Largest SBOM hashed.
const SBOM_MAX: u64 = 1 << 30;

/// What `--report*` asked for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: HttpUrl,
    pub name: String,
    pub env: Vec<String>,
    pub sbom: Option<PathBuf>,
}

/// What happened while starting, for the report.
#[derive(Debug)]
pub struct Facts {
    pub pid: i32,
    pub started: SystemTime,
    pub took: Duration,
    pub targets: Vec<String>,
}

/// Check a `--report-env` name: a shell-style variable name.
pub fn env_name(s: &str) -> Result<(), String> {
    let mut c = s.chars();
    let first_ok = c.next().is_some_and(|f| f == '_' || f.is_ascii_alphabetic());
    if first_ok && c.all(|x| x == '_' || x.is_ascii_alphanumeric()) && s.len() <= 128 {
        Ok(())
    } else {
        Err(format!("{s:?} is not an environment variable name"))
    }
}

/// `s` as a JSON string, quotes included: `"` and `\` escaped, every
/// control character as `\uXXXX` (or its short form).
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The host name: the kernel's (uname's nodename), else /etc/hostname.
pub fn host_name() -> String {
    for p in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(f) = std::fs::File::open(p) {
            let mut s = String::new();
            if f.take(256).read_to_string(&mut s).is_ok() && !s.trim().is_empty() {
                return s.trim().to_string();
            }
        }
    }
    String::new()
}

/// The sha256 of the file at `path`, as lowercase hex. Only a regular file
/// is read (a FIFO would block); it is opened non-blocking to find out.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > SBOM_MAX {
        return Err(std::io::Error::other("larger than 1 GiB"));
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut r = f.take(SBOM_MAX);
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The JSON document (see the README for its schema). `env` reads one
/// variable (the process environment in use, a table in tests).
pub fn document(s: &Settings, f: &Facts, host: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut build = Vec::new();
    for name in &s.env {
        if let Some(v) = env(name) {
            let mut end = v.len().min(VALUE_MAX);
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            build.push(format!("{}:{}", json_str(name), json_str(&v[..end])));
        }
    }
    let sbom = match &s.sbom {
        None => "null".to_string(),
        Some(p) => {
            let path = json_str(&p.to_string_lossy());
            match sha256_file(p) {
                Ok(hex) => format!("{{\"path\":{path},\"sha256\":\"{hex}\"}}"),
                Err(e) => format!(
                    "{{\"path\":{path},\"sha256\":null,\"error\":{}}}",
                    json_str(&e.to_string())
                ),
            }
        }
    };
    let targets: Vec<String> = f.targets.iter().map(|t| json_str(t)).collect();
    format!(
        "{{\"schema\":\"{SCHEMA}\",\"service\":{},\"host\":{},\"pid\":{},\"started_at\":\"{}\",\
         \"ready_at\":\"{}\",\"ready_seconds\":{:.3},\"targets\":[{}],\"build\":{{{}}},\"sbom\":{}}}",
        json_str(&s.name),
        json_str(host),
        f.pid,
        crate::marker::rfc3339(f.started),
        crate::marker::rfc3339(f.started + f.took),
        f.took.as_secs_f64(),
        targets.join(","),
        build.join(","),
        sbom,
    )
}

/// POST `body` to the endpoint, retrying with backoff until it answers 2xx
/// or `WITHIN` has passed. Returns the one line that tells the outcome.
pub fn send(url: &HttpUrl, body: &str, attempt_timeout: Duration) -> String {
    let start = Instant::now();
    let deadline = start + WITHIN;
    let mut backoff = Backoff::new(MAX_PAUSE, u64::from(std::process::id()));
    let mut attempts = 0;
    loop {
        attempts += 1;
        let until = deadline.min(Instant::now() + attempt_timeout);
        let err = match http::post(url, "application/json", body.as_bytes(), until) {
            Ok(status) => {
                return format!(
                    "startup report sent to {} (status {status}, attempt {attempts})",
                    url.text
                )
            }
            Err(e) => e,
        };
        let pause = backoff.next_delay();
        if Instant::now() + pause >= deadline {
            return format!(
                "startup report to {} not sent: {} ({attempts} attempt{} in {}); the service is not affected",
                url.text,
                dockhand::out::escape(err.message.as_bytes()),
                if attempts == 1 { "" } else { "s" },
                dockhand::duration::human(start.elapsed()),
            );
        }
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(json_str("plain é"), "\"plain é\"");
        assert_eq!(json_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(json_str("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
        assert_eq!(
            json_str("\u{0}\u{1b}\u{1f}\u{7f}"),
            "\"\\u0000\\u001b\\u001f\\u007f\""
        );
    }

    #[test]
    fn env_names() {
        for ok in ["GIT_SHA", "_x", "A1"] {
            assert!(env_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A=B", "A B"] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sha256_of_a_known_text_and_refusals() {
        let d = std::env::temp_dir().join(format!("ready-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("sbom.json");
        std::fs::write(&p, "abc").unwrap();
        // FIPS 180-2's example for "abc".
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(sha256_file(&d).is_err());
        assert!(sha256_file(&d.join("none")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn document_fields() {
        let url = match dockhand::target::Target::arg("http://127.0.0.1:9/x").unwrap() {
            dockhand::target::Target::Http(u) => u,
            _ => unreachable!(),
        };
        let s = Settings {
            url,
            name: "api\"1".into(),
            env: vec!["GIT_SHA".into(), "UNSET".into()],
            sbom: Some("/nonexistent/sbom".into()),
        };
        let f = Facts {
            pid: 42,
            started: std::time::UNIX_EPOCH,
            took: Duration::from_millis(1500),
            targets: vec!["tcp://db:5432".into()],
        };
        let env = |n: &str| (n == "GIT_SHA").then(|| "abc\n".to_string());
        let doc = document(&s, &f, "web-1", &env);
        assert!(
            doc.starts_with(
                "{\"schema\":\"dockhand.ready.report/1\",\"service\":\"api\\\"1\",\"host\":\"web-1\",\"pid\":42,\
                 \"started_at\":\"1970-01-01T00:00:00Z\",\"ready_at\":\"1970-01-01T00:00:01Z\",\
                 \"ready_seconds\":1.500,\"targets\":[\"tcp://db:5432\"],\"build\":{\"GIT_SHA\":\"abc\\n\"},\
                 \"sbom\":{\"path\":\"/nonexistent/sbom\",\"sha256\":null,\"error\":"
            ),
            "{doc}"
        );
    }
}
