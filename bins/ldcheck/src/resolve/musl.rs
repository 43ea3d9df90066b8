//! The loader walk as musl's loader does it (Alpine), in the order its
//! `--list` mode prints (ldso/dynlink.c's load_deps and load_library, read
//! for behaviour, checked against the real loader by the tests):
//!
//! - the names libc, libpthread, librt, libm, libdl, libutil and libxnet
//!   (any suffix after the dot) are the loader itself, which is libc;
//! - a name with a slash is opened as it is (no token expanded);
//! - a name without one is first matched against the base names of the
//!   objects loaded by a search, then tried in LD_LIBRARY_PATH, then in
//!   the DT_RUNPATH (or, without one, DT_RPATH) of the requesting object
//!   and of each object that loaded it up to the main program, then in the
//!   path file /etc/ld-musl-ARCH.path (default /lib:/usr/local/lib:/usr/lib).
//!   Lists are split on ':' and newlines, empty elements skipped; only
//!   `$ORIGIN` and `${ORIGIN}` are expanded, and a path with any other `$`
//!   is ignored whole. No ld.so.cache, no hwcaps subdirectories, no
//!   symbol versions. The first file that opens is taken: one of another
//!   machine is an error there, not skipped;
//! - a file already loaded (same device and inode) is reused.

use super::arch::Arch;
use super::walk::{FoundBy, Loaded, Node, Searched};
use super::{Loader, Object};
use crate::libc;
use crate::root::Kind;
use std::sync::Arc;

/// What musl's loader reads once: its path file, per machine, and whether
/// glibc's loader exists at all (gcompat, or libc6-compat's links).
#[derive(Debug, Default)]
pub struct Musl {
    /// (machine, its search path from the path file or the default).
    sys_path: Vec<(u16, Vec<String>)>,
    glibc_loader: bool,
}

/// The built-in path when the path file does not exist.
const DEFAULT_PATH: &str = "/lib:/usr/local/lib:/usr/lib";
/// Path files longer than this are not read (the loader then searches nothing).
const MAX_PATH_FILE: u64 = 1 << 20;
/// NAME_MAX: longer names are not searched for.
const NAME_MAX: usize = 255;

/// Elements of a musl search list: split on ':' and '\n', empty ones skipped.
pub fn split(s: &str) -> Vec<String> {
    s.split([':', '\n'])
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

impl Musl {
    /// Read the root's path files (through its symlinks).
    pub fn new(root: &crate::root::Root) -> Musl {
        let mut sys_path = Vec::new();
        for m in [crate::elf::EM_X86_64, crate::elf::EM_AARCH64] {
            let (Some(arch), Some(loader)) = (libc::musl_arch(m), libc::musl_loader(m)) else {
                continue;
            };
            // The file sits in etc/ next to the loader's parent directory.
            let prefix = &loader[..loader[..loader.rfind('/').unwrap_or(0)].rfind('/').unwrap_or(0)];
            let file = format!("{prefix}/etc/ld-musl-{arch}.path");
            let text = match root.resolve(&file) {
                // Absent: the built-in default.
                None => DEFAULT_PATH.to_string(),
                // Present but unreadable (a directory, too large): nothing.
                Some((_, Kind::File)) => root
                    .read_file(&file, MAX_PATH_FILE)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
                Some(_) => String::new(),
            };
            sys_path.push((m, split(&text)));
        }
        let glibc_loader = libc::GLIBC_LOADERS.iter().any(|p| root.file(p).is_some());
        Musl {
            sys_path,
            glibc_loader,
        }
    }

    fn sys_path(&self, machine: u16) -> &[String] {
        self.sys_path
            .iter()
            .find(|(m, _)| *m == machine)
            .map_or(&[], |(_, p)| p)
    }
}

/// Names that are the loader itself (musl's libc is its loader): which of
/// the seven it is (list mode prints each of them once, by its first name).
pub fn reserved(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("lib")?;
    ["c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."]
        .iter()
        .position(|r| rest.starts_with(r))
}

/// `dir/name` as musl spells it: the directory as written, one slash.
fn join(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// The directory part of a path as musl's $ORIGIN takes it: up to the
/// last slash ("" for "/x"), "." without one.
fn origin(p: &str) -> &str {
    p.rfind('/').map_or(".", |i| &p[..i])
}

/// An object's search path as musl's fixup_rpath makes it: DT_RUNPATH if
/// present, else DT_RPATH, expanded; None when it has none or holds any
/// other `$`.
fn rpath(o: &Object, name: &str) -> Option<String> {
    expand_origin(o.elf.runpath.as_deref().or(o.elf.rpath.as_deref())?, name)
}

/// A search path of the object at `name` with `$ORIGIN` and `${ORIGIN}`
/// replaced by its directory; None when it holds any other `$`.
pub fn expand_origin(spec: &str, name: &str) -> Option<String> {
    if !spec.contains('$') {
        return Some(spec.to_string());
    }
    let org = origin(name);
    let mut out = String::new();
    let mut rest = spec;
    while let Some(i) = rest.find('$') {
        let t = &rest[i..];
        let skip = if t.starts_with("${ORIGIN}") {
            9
        } else if t.starts_with("$ORIGIN") {
            7
        } else {
            return None;
        };
        out.push_str(&rest[..i]);
        out.push_str(org);
        rest = &t[skip..];
    }
    out.push_str(rest);
    Some(out)
}

/// What opening a candidate path gives.
enum Open {
    /// Nothing there: the search goes on.
    Absent,
    /// A file (or something else that opens): the search ends here.
    Opened(Option<Arc<Object>>),
}

impl Loader<'_> {
    fn musl_open(&self, path: &str, arch: &Arch) -> Open {
        match self.root.resolve(path) {
            None => Open::Absent,
            Some((_, Kind::File)) => Open::Opened(self.object(path).filter(|o| arch.accepts(&o.elf))),
            // A directory opens, and fails to map: an error, not a skip.
            Some(_) => Open::Opened(None),
        }
    }

    /// Load `main` and everything it pulls in, as musl's loader does in
    /// list mode.
    pub fn load_musl(&self, main_path: &str, main: Arc<Object>) -> Loaded {
        let mut l = Loaded::default();
        let (Some(arch), Some(conf)) = (Arch::for_elf(&main.elf), self.musl.as_ref()) else {
            return l;
        };
        let Some(loader_path) = libc::musl_loader(arch.machine) else {
            return l;
        };
        l.nodes.push(Node {
            name: main_path.to_string(),
            names: vec![main_path.to_string()],
            obj: Some(main.clone()),
            loader: None,
            found_by: FoundBy::Main,
            searched: None,
        });
        // The loader calls itself by the program's PT_INTERP, whatever file runs.
        let ldso_name = main.elf.interp.clone().unwrap_or_else(|| loader_path.to_string());
        if let Some(ip) = &main.elf.interp {
            if self.root.file(ip).is_none() {
                if libc::GLIBC_LOADERS.contains(&ip.as_str()) {
                    l.foreign_libc.push((main_path.to_string(), ip.clone()));
                } else {
                    l.missing_interp = Some(ip.clone());
                }
            }
        }
        let ldso = self.object(loader_path).filter(|o| arch.accepts(&o.elf));
        // Per node: the base name it answers to when found by a search.
        let mut short: Vec<Option<String>> = vec![None];
        // The node of each of libc's reserved names asked for so far.
        let mut selves = [None; 7];
        let mut i = 0;
        while i < l.nodes.len() {
            let Some(obj) = l.nodes[i].obj.clone() else {
                i += 1;
                continue;
            };
            if l.nodes[i].found_by == FoundBy::Interp {
                i += 1;
                continue;
            }
            for name in &obj.elf.needed {
                let j = if let Some(k) = reserved(name) {
                    self.musl_self(&mut l, &mut short, &mut selves, k, &ldso_name, &ldso, name)
                } else if *name == ldso_name {
                    // The loader by its own name: loaded, and not listed.
                    continue;
                } else {
                    self.musl_map(&mut l, &mut short, conf, i, name, arch)
                };
                l.edges.push((i, name.clone(), j));
            }
            i += 1;
        }
        // A glibc-linked object with no glibc loader in the root.
        if !conf.glibc_loader {
            for n in &l.nodes {
                let Some(o) = &n.obj else { continue };
                let glibc = o
                    .elf
                    .verneed
                    .iter()
                    .any(|v| v.versions.iter().any(|(x, _)| x.starts_with("GLIBC_")));
                if glibc && !l.foreign_libc.iter().any(|(f, _)| *f == n.name) {
                    let want = main
                        .elf
                        .interp
                        .as_deref()
                        .filter(|ip| libc::GLIBC_LOADERS.contains(ip));
                    let want = want.unwrap_or(glibc_loader(arch.machine));
                    l.foreign_libc.push((o.canon.clone(), want.to_string()));
                }
            }
        }
        // musl ignores symbol versions: no version check.
        if self.symbols {
            self.check_symbols(&mut l);
        }
        l
    }

    /// The loader itself, asked for by one of libc's names (reserved name
    /// `k`): one node per reserved name, as list mode prints one line each.
    #[allow(clippy::too_many_arguments)]
    fn musl_self(
        &self,
        l: &mut Loaded,
        short: &mut Vec<Option<String>>,
        selves: &mut [Option<usize>; 7],
        k: usize,
        ldso_name: &str,
        ldso: &Option<Arc<Object>>,
        name: &str,
    ) -> usize {
        if let Some(j) = selves[k] {
            if !l.nodes[j].names.iter().any(|x| x == name) {
                l.nodes[j].names.push(name.to_string());
            }
            return j;
        }
        selves[k] = Some(l.nodes.len());
        l.interp.get_or_insert(l.nodes.len());
        l.nodes.push(Node {
            name: ldso_name.to_string(),
            names: vec![name.to_string()],
            obj: ldso.clone(),
            loader: None,
            found_by: if ldso.is_some() {
                FoundBy::Interp
            } else {
                FoundBy::NotFound
            },
            searched: None,
        });
        short.push(None);
        l.nodes.len() - 1
    }

    /// load_library: reuse, search, or record `name` as missing.
    fn musl_map(
        &self,
        l: &mut Loaded,
        short: &mut Vec<Option<String>>,
        conf: &Musl,
        loader: usize,
        name: &str,
        arch: &Arch,
    ) -> usize {
        let by_path = name.contains('/');
        if !by_path {
            if let Some(j) = (1..l.nodes.len()).find(|&j| short[j].as_deref() == Some(name)) {
                return j;
            }
        }
        let mut tried = Vec::new();
        let found = if by_path {
            tried.push(name.to_string());
            match self.musl_open(name, arch) {
                Open::Absent => None,
                Open::Opened(o) => Some((name.to_string(), o, FoundBy::Path)),
            }
        } else if name.len() > NAME_MAX {
            None
        } else {
            self.musl_search(l, conf, loader, name, arch, &mut tried)
        };
        match found {
            Some((path, Some(o), how)) => {
                // The same file by another name: reused, and from now on
                // known by its base name if it had none.
                if let Some(j) =
                    (1..l.nodes.len()).find(|&j| l.nodes[j].obj.as_ref().is_some_and(|x| x.id == o.id))
                {
                    if short[j].is_none() && !by_path {
                        short[j] = l.nodes[j].name.rsplit('/').next().map(str::to_string);
                    }
                    return j;
                }
                short.push((!by_path).then(|| path.rsplit('/').next().unwrap_or(&path).to_string()));
                l.nodes.push(Node {
                    name: path,
                    names: vec![name.to_string()],
                    obj: Some(o),
                    loader: Some(loader),
                    found_by: how,
                    searched: None,
                });
            }
            // Not there, or there and not loadable (another machine, not ELF).
            other => {
                if let Some((p, _, _)) = other {
                    tried = vec![p];
                }
                short.push(None);
                let total = tried.len();
                tried.truncate(Searched::KEPT);
                l.nodes.push(Node {
                    name: name.to_string(),
                    names: vec![name.to_string()],
                    obj: None,
                    loader: Some(loader),
                    found_by: FoundBy::NotFound,
                    searched: Some(Arc::new(Searched { first: tried, total })),
                });
            }
        }
        l.nodes.len() - 1
    }

    /// The search for a name without a slash: LD_LIBRARY_PATH, the
    /// requesting chain's paths, the path file. Records the directories tried.
    fn musl_search(
        &self,
        l: &Loaded,
        conf: &Musl,
        loader: usize,
        name: &str,
        arch: &Arch,
        tried: &mut Vec<String>,
    ) -> Option<(String, Option<Arc<Object>>, FoundBy)> {
        let try_list = |dirs: &[String], how: FoundBy, tried: &mut Vec<String>| {
            for d in dirs {
                if !tried.contains(d) {
                    tried.push(d.clone());
                }
                let p = join(d, name);
                if let Open::Opened(o) = self.musl_open(&p, arch) {
                    return Some((p, o, how));
                }
            }
            None
        };
        if let Some(lp) = &self.library_path {
            if let Some(f) = try_list(&split(lp), FoundBy::LdLibraryPath, tried) {
                return Some(f);
            }
        }
        let mut cur = Some(loader);
        while let Some(c) = cur {
            let n = &l.nodes[c];
            if let Some(o) = &n.obj {
                if let Some(rp) = rpath(o, &n.name) {
                    let how = if o.elf.runpath.is_some() {
                        FoundBy::Runpath
                    } else {
                        FoundBy::Rpath
                    };
                    if let Some(f) = try_list(&split(&rp), how, tried) {
                        return Some(f);
                    }
                }
            }
            cur = n.loader;
        }
        try_list(conf.sys_path(arch.machine), FoundBy::Default, tried)
    }
}

/// glibc's loader for a machine: what a glibc-linked file expects.
fn glibc_loader(machine: u16) -> &'static str {
    if machine == crate::elf::EM_AARCH64 {
        "/lib/ld-linux-aarch64.so.1"
    } else {
        "/lib64/ld-linux-x86-64.so.2"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_the_loader() {
        for n in [
            "libc.so",
            "libc.so.6",
            "libc.musl-x86_64.so.1",
            "libm.so.6",
            "libpthread.so.0",
            "libdl.so.2",
        ] {
            assert!(reserved(n).is_some(), "{n}");
        }
        for n in [
            "libcrypto.so.3",
            "libmagic.so.1",
            "libz.so.1",
            "c.so",
            "librtmp.so.1",
        ] {
            assert!(reserved(n).is_none(), "{n}");
        }
    }

    #[test]
    fn origin_and_lists_as_musl_spells_them() {
        assert_eq!(origin("/app/bin/x"), "/app/bin");
        assert_eq!(origin("/x"), "");
        assert_eq!(origin("x"), ".");
        assert_eq!(split(":/a::/b\n/c:"), ["/a", "/b", "/c"]);
        let o = |rp: Option<&str>, run: Option<&str>| Object {
            canon: "/x".into(),
            id: (0, 0),
            elf: crate::elf::Elf {
                rpath: rp.map(str::to_string),
                runpath: run.map(str::to_string),
                ..Default::default()
            },
        };
        assert_eq!(
            rpath(&o(Some("$ORIGIN/../lib:${ORIGIN}"), None), "/a/b/x").unwrap(),
            "/a/b/../lib:/a/b"
        );
        assert_eq!(rpath(&o(Some("/r"), Some("/u")), "/x").unwrap(), "/u");
        // Any other token: the whole path is ignored.
        assert_eq!(rpath(&o(Some("$ORIGIN/a:$LIB/b"), None), "/x"), None);
        assert_eq!(rpath(&o(None, None), "/x"), None);
    }
}
