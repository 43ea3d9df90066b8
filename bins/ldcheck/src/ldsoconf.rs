//! /etc/ld.so.conf as ldconfig reads it: directories, one or more a line
//! (separated by blanks, ':' or ','), `#` comments, `include PATTERN`
//! lines (relative patterns from the including file's directory, `*` and
//! `?` matched in the last component, files in name order) and `hwcap`
//! lines (ignored: ldconfig has not honoured them since glibc 2.26's
//! rewrite). ldcheck takes libraries from ld.so.cache like the loader;
//! this says which configuration file put a directory there.

use crate::root::Root;

/// Bounds: a configuration file's size, files read, include depth.
const MAX_FILE: u64 = 64 << 10;
const MAX_FILES: usize = 256;
const MAX_DEPTH: usize = 8;

/// One meaningful line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Dir(String),
    Include(String),
}

/// The directories and include patterns of one file's text, in order.
pub fn parse(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("include") => out.extend(words.map(|w| Line::Include(w.to_string()))),
            Some("hwcap") => {}
            _ => out.extend(
                line.split([' ', '\t', ':', ','])
                    .filter(|d| !d.is_empty())
                    .map(|d| Line::Dir(d.to_string())),
            ),
        }
    }
    out
}

/// Whether `name` matches `pat` (`*` any run, `?` one character).
pub fn glob_match(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Every directory the root's /etc/ld.so.conf names, with the file that
/// names it (in-root paths), in ldconfig's order.
pub fn dirs(root: &Root) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files = 0;
    read(root, "/etc/ld.so.conf", 0, &mut files, &mut out);
    out
}

fn read(root: &Root, file: &str, depth: usize, files: &mut usize, out: &mut Vec<(String, String)>) {
    *files += 1;
    if depth > MAX_DEPTH || *files > MAX_FILES {
        return;
    }
    let Some(bytes) = root.read_file(file, MAX_FILE) else {
        return;
    };
    let here = match file.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &file[..i],
    };
    for l in parse(&String::from_utf8_lossy(&bytes)) {
        match l {
            Line::Dir(d) => out.push((d.trim_end_matches('/').to_string(), file.to_string())),
            Line::Include(p) => {
                let p = if p.starts_with('/') {
                    p
                } else {
                    format!("{}/{p}", here.trim_end_matches('/'))
                };
                for f in expand(root, &p) {
                    read(root, &f, depth + 1, files, out);
                }
            }
        }
    }
}

/// The files a pattern names: wildcards in the last component only (what
/// every distribution's ld.so.conf uses), in name order.
fn expand(root: &Root, pat: &str) -> Vec<String> {
    let (dir, last) = match pat.rfind('/') {
        Some(i) => (&pat[..i.max(1)], &pat[i + 1..]),
        None => return Vec::new(),
    };
    if !last.contains(['*', '?']) {
        return vec![pat.to_string()];
    }
    let Some(canon) = root.canon(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = root
        .list(&canon)
        .map(|s| s.into_iter().map(String::from).collect())
        .unwrap_or_default();
    names.retain(|n| !n.starts_with('.') && glob_match(last, n));
    names.sort();
    names.truncate(MAX_FILES);
    let dir = dir.trim_end_matches('/');
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t = "# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/a:/opt/b, /opt/c\t/opt/d # x\nhwcap 0 nosegneg\n\n";
        assert_eq!(
            parse(t),
            [
                Line::Include("/etc/ld.so.conf.d/*.conf".into()),
                Line::Dir("/opt/a".into()),
                Line::Dir("/opt/b".into()),
                Line::Dir("/opt/c".into()),
                Line::Dir("/opt/d".into()),
            ]
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.conf", "cuda.conf"));
        assert!(!glob_match("*.conf", "cuda.conf.bak"));
        assert!(glob_match("x?.conf", "x1.conf"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acb c"));
        assert!(glob_match("a*b*", "axxbyy"));
    }

    #[test]
    fn includes_are_followed_in_name_order() {
        let t = std::env::temp_dir().join(format!("ldcheck-ldsoconf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("etc/ld.so.conf.d")).unwrap();
        std::fs::write(t.join("etc/ld.so.conf"), "/first\ninclude ld.so.conf.d/*.conf\n").unwrap();
        std::fs::write(t.join("etc/ld.so.conf.d/b.conf"), "/b/lib/\n").unwrap();
        std::fs::write(
            t.join("etc/ld.so.conf.d/a.conf"),
            "/a/lib\ninclude /etc/ld.so.conf\n",
        )
        .unwrap();
        std::fs::write(t.join("etc/ld.so.conf.d/c.txt"), "/not\n").unwrap();
        let d = dirs(&Root::new(&t));
        let names: Vec<(&str, &str)> = d.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        // The include loop ends at the depth bound; the first entries are in order.
        assert_eq!(names[0], ("/first", "/etc/ld.so.conf"));
        assert_eq!(names[1], ("/a/lib", "/etc/ld.so.conf.d/a.conf"));
        assert!(names.contains(&("/b/lib", "/etc/ld.so.conf.d/b.conf")));
        assert!(!names.iter().any(|(d, _)| *d == "/not"));
        assert!(d.len() < 100, "{}", d.len());
        let _ = std::fs::remove_dir_all(&t);
    }
}
