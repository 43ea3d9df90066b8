//! Paths as seen inside --root (as in a chroot): symlinks are resolved by
//! hand, with absolute targets taken relative to the root and ".." never
//! leaving it, so nothing outside the image is ever read. Also the walk over
//! the PATH arguments, which never follows a symlink out of the tree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAX_HOPS: usize = 40;
const MAX_DEPTH: usize = 64;
const MAX_FILES: usize = 2_000_000;

#[derive(Debug)]
pub struct Root {
    host: PathBuf,
    /// The working directory relative paths start from, inside the root.
    pub cwd: String,
    canon: Mutex<HashMap<String, Option<(String, Kind)>>>,
}

impl Root {
    pub fn new(host: &Path) -> Root {
        let cwd = if host == Path::new("/") {
            std::env::current_dir()
                .ok()
                .and_then(|p| p.to_str().map(str::to_string))
                .unwrap_or_else(|| "/".into())
        } else {
            "/".into()
        };
        Root {
            host: host.to_path_buf(),
            cwd,
            canon: Mutex::new(HashMap::new()),
        }
    }

    /// Where an in-root path (already canonical) lies on this machine.
    pub fn host_path(&self, p: &str) -> PathBuf {
        self.host.join(p.trim_start_matches('/'))
    }

    /// Make `p` absolute inside the root (relative to the root's cwd).
    pub fn absolute(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else if self.cwd.ends_with('/') {
            format!("{}{p}", self.cwd)
        } else {
            format!("{}/{p}", self.cwd)
        }
    }

    /// Resolve every symlink in `p` inside the root; None when a component
    /// is missing, not a directory, or the links loop.
    pub fn canon(&self, p: &str) -> Option<String> {
        self.resolve(p).map(|(c, _)| c)
    }

    /// `canon`, with what the path is (no extra system call: the last
    /// component's lstat says it).
    pub fn resolve(&self, p: &str) -> Option<(String, Kind)> {
        let p = self.absolute(p);
        if let Some(c) = self.canon.lock().ok()?.get(&p) {
            return c.clone();
        }
        let r = self.resolve_uncached(&p);
        if let Ok(mut m) = self.canon.lock() {
            m.insert(p, r.clone());
        }
        r
    }

    fn lstat(&self, p: &str) -> Option<std::fs::Metadata> {
        std::fs::symlink_metadata(self.host_path(p)).ok()
    }

    fn resolve_uncached(&self, p: &str) -> Option<(String, Kind)> {
        // Resolve the parent through the cache first: most lookups share it.
        let (dir, last) = match p.rfind('/') {
            Some(0) => ("/", &p[1..]),
            Some(i) => (&p[..i], &p[i + 1..]),
            None => return None,
        };
        let base = if dir == "/" {
            String::new()
        } else {
            self.canon(dir)?
        };
        // The common case: a plain name that is not a symlink.
        if !matches!(last, "" | "." | "..") {
            let cand = format!("{base}/{last}");
            let meta = self.lstat(&cand)?;
            if !meta.file_type().is_symlink() {
                return Some((cand, Kind::of(&meta)));
            }
        }
        let mut out: Vec<String> = base
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut stack: Vec<String> = vec![last.to_string()];
        let mut hops = 0;
        while let Some(c) = stack.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    out.pop();
                    continue;
                }
                _ => {}
            }
            let cand = format!(
                "/{}",
                out.iter().chain([&c]).cloned().collect::<Vec<_>>().join("/")
            );
            let meta = self.lstat(&cand)?;
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_HOPS {
                    return None;
                }
                let t = std::fs::read_link(self.host_path(&cand)).ok()?;
                let t = t.to_str()?;
                if t.starts_with('/') {
                    out.clear();
                }
                stack.extend(t.split('/').rev().map(str::to_string));
            } else {
                out.push(c);
            }
        }
        let c = format!("/{}", out.join("/"));
        // Holds no symlink now: this lstat describes the path itself.
        let kind = Kind::of(&self.lstat(&c)?);
        Some((c, kind))
    }

    /// Whether in-root path `p` is a directory (symlinks resolved in the root).
    pub fn is_dir(&self, p: &str) -> bool {
        self.resolve(p).is_some_and(|(_, k)| k == Kind::Dir)
    }

    /// The canonical path of the regular file at in-root path `p` (symlinks
    /// resolved in the root).
    pub fn file(&self, p: &str) -> Option<String> {
        self.resolve(p).and_then(|(c, k)| (k == Kind::File).then_some(c))
    }
}

/// What a resolved path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Other,
}

impl Kind {
    fn of(m: &std::fs::Metadata) -> Kind {
        if m.is_file() {
            Kind::File
        } else if m.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        }
    }
}

/// What the walk over the PATH arguments found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Canonical in-root paths of regular files (ELF or not yet known).
    pub files: Vec<String>,
    /// Extra names a file is known by: symlinks inside the tree that point at it.
    pub aliases: HashMap<String, Vec<String>>,
    /// Names of *.dist-info directories (for the CUDA wheel report).
    pub dist_info: Vec<String>,
    /// Every file name seen (for the dlopen notes).
    pub names: Vec<String>,
}

/// Walk `paths` (in-root) without following symlinks to directories, and
/// recording symlinks to files only when the target lies inside the tree.
pub fn walk(root: &Root, paths: &[String]) -> Result<Walk, String> {
    let mut w = Walk::default();
    let mut tops = Vec::new();
    // Resolved on a few threads: a Dockerfile may name thousands of files.
    for (p, r) in paths.iter().zip(crate::par_map(paths, |p| root.resolve(p))) {
        tops.push(r.ok_or_else(|| format!("{p}: no such file or directory{}", in_root(root)))?);
    }
    let mut links: Vec<(String, String)> = Vec::new();
    for (top, kind) in &tops {
        match kind {
            Kind::File => w.files.push(top.clone()),
            Kind::Dir => walk_dir(root, top, 0, &mut w, &mut links),
            Kind::Other => {}
        }
    }
    w.files.sort();
    w.files.dedup();
    let inside = |c: &str| {
        tops.iter()
            .map(|(t, _)| t)
            .any(|t| c == t || c.starts_with(&format!("{}/", t.trim_end_matches('/'))))
    };
    for (link, name) in links {
        if let Some(f) = root.file(&link) {
            if inside(&f) {
                w.aliases.entry(f).or_default().push(name);
            }
        }
    }
    Ok(w)
}

fn in_root(root: &Root) -> String {
    if root.host == Path::new("/") {
        String::new()
    } else {
        format!(" (inside {})", root.host.display())
    }
}

fn walk_dir(root: &Root, dir: &str, depth: usize, w: &mut Walk, links: &mut Vec<(String, String)>) {
    if depth > MAX_DEPTH || w.files.len() >= MAX_FILES {
        return;
    }
    // Pseudo filesystems have nothing to judge and endless files.
    if matches!(dir, "/proc" | "/sys" | "/dev") {
        return;
    }
    let Ok(rd) = std::fs::read_dir(root.host_path(dir)) else {
        return;
    };
    let mut ents: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    ents.sort_by_key(|e| e.file_name());
    for e in ents {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Ok(ft) = e.file_type() else { continue };
        let p = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        if ft.is_dir() {
            if name.ends_with(".dist-info") {
                w.dist_info.push(name.clone());
            }
            walk_dir(root, &p, depth + 1, w, links);
        } else if ft.is_file() {
            w.names.push(name);
            w.files.push(p);
        } else if ft.is_symlink() {
            w.names.push(name.clone());
            links.push((p, name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = std::env::temp_dir().join(format!("ldcheck-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("usr/lib/x")).unwrap();
        std::fs::write(t.join("usr/lib/x/libz.so.1.2"), b"z").unwrap();
        symlink("usr/lib", t.join("lib")).unwrap();
        symlink("libz.so.1.2", t.join("usr/lib/x/libz.so.1")).unwrap();
        symlink("/usr/lib/x/libz.so.1", t.join("abs")).unwrap();
        symlink("../../../../../../etc/passwd", t.join("usr/lib/x/escape")).unwrap();
        symlink("loop", t.join("loop")).unwrap();
        let r = Root::new(&t);
        assert_eq!(r.canon("/lib/x/libz.so.1").unwrap(), "/usr/lib/x/libz.so.1.2");
        assert_eq!(r.canon("/abs").unwrap(), "/usr/lib/x/libz.so.1.2");
        assert_eq!(
            r.canon("/lib/x/../x/./libz.so.1").unwrap(),
            "/usr/lib/x/libz.so.1.2"
        );
        // Escapes are clamped at the root: /etc/passwd of the root, absent here.
        assert_eq!(r.canon("/usr/lib/x/escape"), None);
        assert_eq!(r.canon("/loop"), None);
        assert!(r.file("/lib/x/libz.so.1").is_some());
        assert!(r.file("/lib/x").is_none());
        let w = walk(&r, &["/lib".to_string()]).unwrap();
        assert_eq!(w.files, ["/usr/lib/x/libz.so.1.2"]);
        assert_eq!(w.aliases["/usr/lib/x/libz.so.1.2"], ["libz.so.1"]);
        assert!(walk(&r, &["/nope".to_string()]).is_err());
        let _ = std::fs::remove_dir_all(&t);
    }
}
