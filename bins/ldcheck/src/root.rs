//! Paths as seen inside --root (as in a chroot): symlinks are resolved by
//! hand, with absolute targets taken relative to the root and ".." never
//! leaving it, so nothing outside the image is ever read. Also the walk over
//! the PATH arguments, which never follows a symlink out of the tree.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
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
    canon: Mutex<HashMap<String, Option<String>>>,
}

/// A regular file as found: its canonical path inside the root and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    pub canon: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
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
        let p = self.absolute(p);
        if let Some(c) = self.canon.lock().ok()?.get(&p) {
            return c.clone();
        }
        let r = self.canon_uncached(&p);
        if let Ok(mut m) = self.canon.lock() {
            m.insert(p, r.clone());
        }
        r
    }

    fn canon_uncached(&self, p: &str) -> Option<String> {
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
            let meta = std::fs::symlink_metadata(self.host_path(&cand)).ok()?;
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
        Some(format!("/{}", out.join("/")))
    }

    /// The regular file at in-root path `p` (symlinks resolved in the root).
    pub fn file(&self, p: &str) -> Option<FileId> {
        let canon = self.canon(p)?;
        let m = std::fs::metadata(self.host_path(&canon)).ok()?;
        m.is_file().then(|| FileId {
            canon,
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
        })
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
    for p in paths {
        let c = root
            .canon(p)
            .ok_or_else(|| format!("{p}: no such file or directory{}", in_root(root)))?;
        tops.push(c);
    }
    let mut links: Vec<(String, String)> = Vec::new();
    for top in &tops {
        let m = std::fs::metadata(root.host_path(top)).map_err(|e| format!("{top}: {e}"))?;
        if m.is_file() {
            w.files.push(top.clone());
        } else if m.is_dir() {
            walk_dir(root, top, 0, &mut w, &mut links);
        }
    }
    w.files.sort();
    w.files.dedup();
    let inside = |c: &str| {
        tops.iter()
            .any(|t| c == t || c.starts_with(&format!("{}/", t.trim_end_matches('/'))))
    };
    for (link, name) in links {
        if let Some(f) = root.file(&link) {
            if inside(&f.canon) {
                w.aliases.entry(f.canon).or_default().push(name);
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
