//! ldcheck: audit a tree's shared-library dependencies exactly as its loader (glibc's or musl's)
//! would (without running anything), with GPU awareness and Debian
//! package hints. Replaces `ldd` loops in Dockerfile RUN steps.
#![forbid(unsafe_code)]

pub mod elf;
pub mod gpu;
pub mod hints;
pub mod ldcache;
pub mod ldsoconf;
pub mod libc;
pub mod options;
mod parallel;
pub mod report;
pub mod resolve;
pub mod root;

use argh::FromArgs;
use dockhand::cli::{self, Flag, ProcessEnv, Tail};
use dockhand::hash::FastSet;
use dockhand::Error;
pub use options::Options;
use parallel::{cpu_threads, io_threads, par_map};
use resolve::{Loaded, Loader, Object};
use root::Root;
use std::path::PathBuf;
use std::sync::Arc;

const TOOL: &str = "ldcheck";

#[derive(FromArgs, Debug)]
/// Check that every program and shared object under PATH finds its libraries, as the root's loader (glibc's or musl's) would:
/// ldcheck [OPTIONS] PATH...
#[argh(
    note = "Nothing is executed. Judged are the entry points: files no other file found names in DT_NEEDED.",
    error_code(0, "everything resolves"),
    error_code(
        1,
        "a library is missing, a version or symbol is not found, or the driver is too old"
    ),
    error_code(2, "bad usage")
)]
struct Args {
    /// judge the image rooted at DIR (PATHs and output paths are inside it, as in a chroot)
    #[argh(option)]
    root: Option<String>,

    /// LD_LIBRARY_PATH to emulate (default: $LD_LIBRARY_PATH when --root is /)
    #[argh(option)]
    library_path: Option<String>,

    /// output: text (default), tree, json or sarif
    #[argh(option, from_str_fn(format_arg))]
    format: Option<report::Format>,

    /// do not report this soname as missing (repeatable)
    #[argh(option)]
    ignore: Vec<String>,

    /// also judge every file on its own (ldd's view), not only entry points
    #[argh(switch)]
    each_file: bool,

    /// also check that every undefined non-weak symbol is defined by a loaded library
    #[argh(switch)]
    symbols: bool,

    /// GPU mode (on by itself when CUDA libraries are found): driver libraries are provided at run time
    #[argh(switch)]
    gpu: bool,

    /// debian codename for package hints (default: the root's /etc/os-release)
    #[argh(option)]
    codename: Option<String>,

    /// the root's C library, glibc or musl (default: told from the loader files in the root)
    #[argh(option, from_str_fn(libc::parse))]
    libc: Option<libc::Libc>,

    /// files or directories to check
    #[argh(positional)]
    paths: Vec<String>,
}

fn format_arg(v: &str) -> Result<report::Format, String> {
    match v {
        "text" => Ok(report::Format::Text),
        "tree" => Ok(report::Format::Tree),
        "json" => Ok(report::Format::Json),
        "sarif" => Ok(report::Format::Sarif),
        _ => Err(format!("unknown format {v:?} (use text, tree, json or sarif)")),
    }
}

const FLAGS: &[Flag] = &[
    Flag::value("root", None),
    Flag::value("library-path", None),
    Flag::value("format", Some(|v| format_arg(v).map(|_| ()))),
    Flag::multi("ignore", None),
    Flag::switch("each-file"),
    Flag::switch("symbols"),
    Flag::switch("gpu"),
    Flag::value("codename", None),
    Flag::value("libc", Some(|v| libc::parse(v).map(|_| ()))),
];

/// Run ldcheck with its arguments (program name removed); returns the exit status.
pub fn run(args: Vec<String>) -> Result<i32, Error> {
    let (a, _) = cli::parse_all::<Args>(TOOL, &args, FLAGS, Tail::None, &ProcessEnv, &[])?;
    if a.paths.is_empty() {
        return Err(Error::usage("no PATH given (see ldcheck --help)"));
    }
    let root_dir = PathBuf::from(a.root.as_deref().unwrap_or("/"));
    if !root_dir.is_dir() {
        return Err(Error::usage(format!(
            "--root {}: not a directory",
            root_dir.display()
        )));
    }
    // The loader ignores an empty list (it does not mean the current directory).
    let library_path = match a.library_path {
        Some(p) => Some(p),
        None if root_dir == std::path::Path::new("/") => cli::var("LD_LIBRARY_PATH")?,
        None => None,
    }
    .filter(|p| !p.is_empty());
    let opts = Options {
        root: root_dir,
        library_path,
        ignore: a.ignore,
        each_file: a.each_file,
        symbols: a.symbols,
        gpu: a.gpu,
        codename: a.codename,
        summary_only: matches!(a.format, None | Some(report::Format::Text)),
        libc: a.libc,
    };
    let rep = check(&opts, &a.paths).map_err(Error::usage)?;
    report::print(&rep, a.format.unwrap_or(report::Format::Text));
    Ok(if rep.ok { 0 } else { 1 })
}

/// Read the root's Debian codename from its /etc/os-release.
fn codename(root: &Root) -> Option<String> {
    let bytes = root.read_file("/etc/os-release", 64 << 10)?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// Walk, read, judge: the whole check, returning the report.
pub fn check(opts: &Options, paths: &[String]) -> Result<report::Report, String> {
    let root = Root::new(&opts.root);
    let walk = root::walk(&root, paths)?;
    let mut loader = Loader::new(&root, opts.library_path.clone(), opts.symbols);
    let libc = opts.libc.unwrap_or_else(|| libc::detect(&root));
    if libc == libc::Libc::Musl {
        // musl's loader reads no ld.so.cache.
        loader.cache = None;
        loader.musl = Some(resolve::Musl::new(&root));
    }

    // Read every file in parallel; keep the ELF ones.
    let parsed: Vec<Option<Result<Object, String>>> =
        par_map(&walk.files, io_threads(), |p| read_if_elf(&root, p, opts.symbols));
    let mut objs: Vec<(String, Arc<Object>)> = Vec::new();
    let mut unreadable = walk.not_walked.clone();
    for (p, r) in walk.files.iter().zip(parsed) {
        match r {
            Some(Ok(o)) => {
                let o = Arc::new(o);
                loader.insert(p, Some(o.clone()));
                objs.push((p.clone(), o));
            }
            Some(Err(e)) => unreadable.push((p.clone(), e)),
            None => {}
        }
    }

    // Entry points: programs, and objects no other file names in DT_NEEDED.
    let needed: FastSet<&str> = objs
        .iter()
        .flat_map(|(_, o)| o.elf.needed.iter().map(|n| n.rsplit('/').next().unwrap_or(n)))
        .collect();
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for (p, o) in &objs {
        if !matches!(o.elf.etype, elf::ET_DYN | elf::ET_EXEC) {
            continue;
        }
        let base = p.rsplit('/').next().unwrap_or(p);
        let named = needed.contains(base)
            || o.elf.soname.as_deref().is_some_and(|s| needed.contains(s))
            || walk
                .aliases
                .get(p)
                .is_some_and(|a| a.iter().any(|n| needed.contains(n.as_str())));
        if o.elf.interp.is_some() || !named || opts.each_file {
            // Only the entry points of a foreign machine are worth a warning.
            if resolve::Arch::for_elf(&o.elf).is_none() {
                skipped.push(p.clone());
                continue;
            }
            entries.push((p.clone(), o.clone()));
        }
    }

    let loaded: Vec<Loaded> = par_map(&entries, cpu_threads(), |(p, o)| match libc {
        libc::Libc::Glibc => loader.load(p, o.clone()),
        libc::Libc::Musl => loader.load_musl(p, o.clone()),
    });

    // Driver stubs on a search path and cuda-compat libcudas: GPU findings
    // that turn GPU mode on by themselves.
    let stubs = gpu::stubs(&root, &objs, opts.library_path.as_deref(), loader.cache.as_ref());
    let compat = gpu::compat(&root, gpu::host().driver.as_deref());
    let gpu_auto = !stubs.is_empty()
        || !compat.is_empty()
        || walk.names.iter().any(|n| gpu::is_cuda_file(n))
        || objs
            .iter()
            .any(|(_, o)| o.elf.needed.iter().any(|n| gpu::driver_provided(n)));
    let codename = opts.codename.clone().or_else(|| codename(&root));
    Ok(report::build(report::Input {
        opts,
        loader: &loader,
        walk: &walk,
        files: objs.len(),
        entries: &entries,
        loaded: &loaded,
        unreadable,
        skipped,
        gpu: opts.gpu || gpu_auto,
        codename,
        stubs,
        compat,
        libc,
    }))
}

/// None for files that are not ELF; the parse result otherwise.
fn read_if_elf(root: &Root, p: &str, symbols: bool) -> Option<Result<Object, String>> {
    let (f, id, size) = resolve::open_regular(root, p)?;
    resolve::parse_file(&f, size, symbols).map(|r| {
        r.map(|e| Object {
            canon: p.to_string(),
            id,
            elf: e,
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_flags_table_matches_args() {
        assert_eq!(
            dockhand::cli::flags_disagree::<super::Args>(super::FLAGS),
            Vec::<String>::new()
        );
    }

    use super::*;

    fn patch_machine(src: &str, dst: &std::path::Path, machine: u16) -> bool {
        let Ok(mut d) = std::fs::read(src) else {
            return false;
        };
        d[18..20].copy_from_slice(&machine.to_le_bytes());
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(dst, d).unwrap();
        true
    }

    /// An aarch64 image is judged with the aarch64 directories: host
    /// binaries with e_machine set to EM_AARCH64 stand in for arm64 ones.
    #[test]
    fn aarch64_tree_uses_aarch64_directories() {
        let t = std::env::temp_dir().join(format!("ldcheck-arm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let ok = patch_machine("/bin/true", &t.join("app/true"), elf::EM_AARCH64)
            && patch_machine("/lib/x86_64-linux-gnu/libc.so.6", &t.join("lib/aarch64-linux-gnu/libc.so.6"), elf::EM_AARCH64)
            && patch_machine("/lib64/ld-linux-x86-64.so.2", &t.join("lib64/ld-linux-x86-64.so.2"), elf::EM_AARCH64)
            // An x86_64 libc in the x86_64 directory must not be taken.
            && patch_machine("/lib/x86_64-linux-gnu/libc.so.6", &t.join("lib/x86_64-linux-gnu/libc.so.6"), elf::EM_X86_64);
        // Every Debian machine this runs on (developers', CI's) has them.
        assert!(ok, "needs the host's /bin/true and glibc (x86_64 Debian)");
        let opts = Options {
            root: t.clone(),
            ..Options::default()
        };
        let r = check(&opts, &["/app".to_string()]).unwrap();
        assert!(r.ok, "{}", report::render(&r, report::Format::Tree));
        let e = &r.entries[0];
        let libc = e.libraries.iter().find(|l| l.soname == "libc.so.6").unwrap();
        assert_eq!(libc.path.as_deref(), Some("/lib/aarch64-linux-gnu/libc.so.6"));
        assert_eq!(libc.found_by, "default");
        // Without the aarch64 libc, the x86_64 one is skipped: missing.
        std::fs::remove_file(t.join("lib/aarch64-linux-gnu/libc.so.6")).unwrap();
        let r = check(&opts, &["/app".to_string()]).unwrap();
        assert_eq!(r.missing.len(), 1, "{}", report::render(&r, report::Format::Text));
        assert_eq!(r.missing[0].soname, "libc.so.6");
        assert_eq!(
            r.missing[0].package.as_deref(),
            None,
            "no os-release, no codename"
        );
        let j = report::render(&r, report::Format::Json);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["missing"][0]["needed_by"][0], "/app/true");
        assert_eq!(v["files"], 1, "only /app was walked");
        assert!(v["version_errors"].as_array().unwrap().is_empty());
        assert!(v["runtime_provided"].as_array().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&t);
    }
}
