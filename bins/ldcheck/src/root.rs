//! Paths as seen inside --root (as in a chroot): symlinks are resolved by
//! hand, with absolute targets taken relative to the root and ".." never
//! leaving it, so nothing outside the image is ever read. Also the walk over
//! the PATH arguments, which never follows a symlink out of the tree.

use dockhand::hash::{FastMap as HashMap, FastSet as HashSet};
use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAX_HOPS: usize = 40;
/// The longest path the kernel accepts, terminating NUL included.
const PATH_MAX: usize = 4096;
/// Directories up to this many components deep have every ancestor cached.
const MAX_CACHED_DEPTH: usize = 32;
const MAX_DEPTH: usize = 64;
const MAX_FILES: usize = 2_000_000;
/// Search directories with more names than this are probed name by name.
const MAX_LISTED: usize = 100_000;

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
            canon: Mutex::new(HashMap::default()),
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
        // The kernel refuses longer paths (ENAMETOOLONG), and so does the loader.
        if p.len() >= PATH_MAX {
            return None;
        }
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
        // The parent through the cache first: most lookups share it.
        let (dir, last) = match p.rfind('/') {
            Some(0) => ("/", &p[1..]),
            Some(i) => (&p[..i], &p[i + 1..]),
            None => return None,
        };
        let base = if dir == "/" {
            String::new()
        } else {
            self.parent(dir)?
        };
        // The common case: a plain name that is not a symlink.
        if !matches!(last, "" | "." | "..") {
            let cand = format!("{base}/{last}");
            let meta = self.lstat(&cand)?;
            if !meta.file_type().is_symlink() {
                return Some((cand, Kind::of(&meta)));
            }
        }
        self.walk_path(&base, vec![last.to_string()])
    }

    /// The canonical form of directory path `dir`, cached. Up to
    /// MAX_CACHED_DEPTH components through `canon`, which caches every
    /// ancestor (search directories share them); deeper in one walk, not a
    /// call per component: a hostile path of thousands of components must
    /// neither exhaust the stack nor fill the cache with its prefixes.
    fn parent(&self, dir: &str) -> Option<String> {
        if dir.bytes().filter(|&b| b == b'/').count() <= MAX_CACHED_DEPTH {
            return self.canon(dir);
        }
        if let Some(c) = self.canon.lock().ok()?.get(dir) {
            return c.clone().map(|(c, _)| c);
        }
        let r = self.walk_path("", dir.split('/').rev().map(str::to_string).collect());
        if let Ok(mut m) = self.canon.lock() {
            m.insert(dir.to_string(), r.clone());
        }
        r.map(|(c, _)| c)
    }

    /// Resolve the components in `stack` (last first) from the canonical
    /// directory `base`, following symlinks inside the root.
    fn walk_path(&self, base: &str, mut stack: Vec<String>) -> Option<(String, Kind)> {
        let mut out: Vec<String> = base
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
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

    /// The names in the directory at canonical in-root path `dir`; None when
    /// it cannot be read, is very large, or holds a name that is not UTF-8
    /// (then every name has to be probed).
    pub fn list(&self, dir: &str) -> Option<HashSet<Box<str>>> {
        let mut names = HashSet::default();
        let mut utf8 = true;
        let complete = self.read_dir(dir, MAX_LISTED, |name, _| match name.to_str() {
            Ok(n) => {
                names.insert(n.into());
            }
            Err(_) => utf8 = false,
        });
        (complete && utf8).then_some(names)
    }

    /// Call `f` with the name and type of each entry of the directory at
    /// canonical in-root path `dir` (getdents64 into a per-thread buffer;
    /// std's read_dir goes through musl's opendir, which allocates and frees
    /// its buffer with munmap per directory). False when it cannot be read
    /// or holds more than `max` entries (`f` has seen some of them then).
    pub fn read_dir(&self, dir: &str, max: usize, mut f: impl FnMut(&CStr, Type)) -> bool {
        use dockhand::sys::fs::{self as sfs, DirReader};
        use std::os::fd::AsFd;
        thread_local! {
            static BUF: std::cell::RefCell<Option<DirReader>> = const { std::cell::RefCell::new(None) };
        }
        let host = self.host_path(dir);
        let Ok(fd) = sfs::open_dir_nofollow(&host) else {
            return false;
        };
        BUF.with(|b| {
            let mut b = b.borrow_mut();
            let r = b.get_or_insert_with(|| DirReader::new(32 << 10));
            r.reset();
            let mut n = 0;
            loop {
                match r.next(fd.as_fd()) {
                    Ok(Some(d)) => {
                        n += 1;
                        if n > max {
                            return false;
                        }
                        let name = r.name(d);
                        let t = match d.d_type {
                            sfs::DT_REG => Type::File,
                            sfs::DT_DIR => Type::Dir,
                            sfs::DT_LNK => Type::Symlink,
                            sfs::DT_UNKNOWN => {
                                // Filesystems without d_type: ask lstat.
                                let p = host.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
                                match std::fs::symlink_metadata(p) {
                                    Ok(m) if m.is_file() => Type::File,
                                    Ok(m) if m.is_dir() => Type::Dir,
                                    Ok(m) if m.file_type().is_symlink() => Type::Symlink,
                                    _ => Type::Other,
                                }
                            }
                            _ => Type::Other,
                        };
                        f(name, t);
                    }
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
        })
    }

    /// The canonical path of the regular file at in-root path `p` (symlinks
    /// resolved in the root).
    pub fn file(&self, p: &str) -> Option<String> {
        self.resolve(p).and_then(|(c, k)| (k == Kind::File).then_some(c))
    }

    /// The contents of the regular file at in-root path `p`, when it holds
    /// at most `max` bytes. Opened without following a symlink swapped in
    /// meanwhile and without blocking (a FIFO is refused, not waited on).
    pub fn read_file(&self, p: &str, max: u64) -> Option<Vec<u8>> {
        let c = self.file(p)?;
        dockhand::sys::fs::read_regular_capped(&self.host_path(&c), max).ok()
    }
}

/// What a directory entry is (not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    File,
    Dir,
    Symlink,
    Other,
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
    /// Directories not walked in full, and why: reported, never passed over.
    pub not_walked: Vec<(String, String)>,
    /// MAX_FILES was reached: the rest of the tree is not walked.
    files_capped: bool,
}

/// Walk `paths` (in-root) without following symlinks to directories, and
/// recording symlinks to files only when the target lies inside the tree.
pub fn walk(root: &Root, paths: &[String]) -> Result<Walk, String> {
    let mut w = Walk::default();
    let mut tops = Vec::new();
    // Resolved on a few threads: a Dockerfile may name thousands of files.
    for (p, r) in paths.iter().zip(crate::parallel::par_map(
        paths,
        crate::parallel::io_threads(),
        |p| root.resolve(p),
    )) {
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
    if depth > MAX_DEPTH {
        let why = format!("directory not walked: more than {MAX_DEPTH} levels below the PATH");
        w.not_walked.push((dir.to_string(), why));
        return;
    }
    if w.files.len() >= MAX_FILES {
        // Said once, at the first directory left out.
        if !w.files_capped {
            w.files_capped = true;
            let why = format!("directory not walked, nor any after it: more than {MAX_FILES} files in all");
            w.not_walked.push((dir.to_string(), why));
        }
        return;
    }
    // Pseudo filesystems have nothing to judge and endless files.
    if matches!(dir, "/proc" | "/sys" | "/dev") {
        return;
    }
    // Names that are not UTF-8 cannot be sonames or paths in the report: skipped.
    let mut ents: Vec<(String, Type)> = Vec::new();
    let whole = root.read_dir(dir, MAX_FILES, |name, t| {
        if let Ok(n) = name.to_str() {
            ents.push((n.to_string(), t));
        }
    });
    if !whole {
        let why = match std::fs::read_dir(root.host_path(dir)) {
            Err(e) => format!("directory not read: {e}"),
            Ok(_) => format!("directory not read in full (more than {MAX_FILES} entries, or an error)"),
        };
        w.not_walked.push((dir.to_string(), why));
    }
    ents.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in ents {
        let p = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        match t {
            Type::Dir => {
                if name.ends_with(".dist-info") {
                    w.dist_info.push(name.clone());
                }
                walk_dir(root, &p, depth + 1, w, links);
            }
            Type::File => {
                w.names.push(name);
                w.files.push(p);
            }
            Type::Symlink => {
                w.names.push(name.clone());
                links.push((p, name));
            }
            Type::Other => {}
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
