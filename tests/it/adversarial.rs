//! Adversarial tests (issue 9): hostile input for every tool, beside the tools'
//! own tests, against the real static binaries. What is untrusted (SECURITY.md):
//! the files ldcheck audits, the contents of volumes runas walks, the servers
//! healthcheck and waitfor probe. Every run here is bounded by a timeout; the
//! property is always the same: a clear exit status and a one-line message,
//! never a crash, a hang or unbounded memory.

use dockhand_tests::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ helpers

/// Run `cmd` to its end; kill it and fail when it takes longer than `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let e = t_err.join().unwrap();
            panic!(
                "{cmd:?} still running after {limit:?} (a hang): {}",
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    let o = Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    (o, took)
}

/// The exit code; a death by signal (a crash: SIGSEGV, SIGABRT from a
/// panic=abort release build) fails the test.
fn code(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match o.status.code() {
        Some(c) => c,
        None => panic!(
            "killed by signal {:?} (a crash): {}",
            o.status.signal(),
            stderr(o)
        ),
    }
}

/// Exit code in `allowed`, no panic message, and some message.
fn clean_exit(o: &Output, allowed: &[i32], what: &str) -> i32 {
    let c = code(o);
    let all = format!("{}{}", stdout(o), stderr(o));
    assert!(!all.contains("panicked"), "{what}: panicked: {all}");
    assert!(
        allowed.contains(&c),
        "{what}: exit {c}, want one of {allowed:?}: {all}"
    );
    if c != 0 {
        assert!(!all.trim().is_empty(), "{what}: exit {c} without a message");
    }
    c
}

/// No byte of the tool's output may come raw from a hostile peer: no escape
/// sequences, no control characters except the line ends.
fn printable(text: &str, what: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: control characters in the output: {text:?}"
    );
}

/// Peak RSS in KiB of `cmd` (GNU time), run bounded by `limit`.
fn peak_rss_bounded(test: &str, cmd: &[&str], limit: Duration) -> Option<(Output, u64)> {
    peak_rss(test, cmd, |c| run_bounded(c, limit).0)
}

/// A loopback server: each connection (after reading what the client sends
/// first, up to a short wait) gets `serve(stream)` on its own thread.
fn server(serve: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let serve = serve.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                let mut b = [0u8; 4096];
                let _ = s.read(&mut b);
                let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
                serve(&mut s);
            });
        }
    });
    port
}

/// Bytes that are not any protocol: control characters, an escape sequence
/// that would retitle a terminal, line ends, NULs, invalid UTF-8.
fn garbage() -> Vec<u8> {
    let mut g = b"\x1b]0;pwned\x07\x1b[2J\r\n\0\xff\xfe".to_vec();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        g.push(x as u8);
    }
    g
}

// ------------------------------------------------------------ ldcheck: ELF

fn have_gcc(test: &str) -> bool {
    if have("gcc", &["--version"]) {
        return true;
    }
    skip(
        test,
        "needs gcc (Debian package gcc; scripts/setup.sh installs it)",
    );
    false
}

fn gcc(args: &[&str]) {
    let o = run(Command::new("gcc").args(args));
    assert!(o.status.success(), "gcc {args:?}: {}", stderr(&o));
}

/// A little-endian ELF64 as gcc writes it, with enough structure to edit:
/// the header, the program headers and the dynamic section.
#[derive(Clone)]
struct Elf64(Vec<u8>);

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;

impl Elf64 {
    fn u16(&self, o: usize) -> u16 {
        u16::from_le_bytes(self.0[o..o + 2].try_into().unwrap())
    }
    fn u32(&self, o: usize) -> u32 {
        u32::from_le_bytes(self.0[o..o + 4].try_into().unwrap())
    }
    fn u64(&self, o: usize) -> u64 {
        u64::from_le_bytes(self.0[o..o + 8].try_into().unwrap())
    }
    fn set16(&mut self, o: usize, v: u16) {
        self.0[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn set32(&mut self, o: usize, v: u32) {
        self.0[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn set64(&mut self, o: usize, v: u64) {
        self.0[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
    /// File offsets of the program headers.
    fn phdrs(&self) -> Vec<usize> {
        let (off, size, n) = (
            self.u64(32) as usize,
            self.u16(54) as usize,
            self.u16(56) as usize,
        );
        (0..n).map(|i| off + i * size).collect()
    }
    fn phdr(&self, kind: u32) -> usize {
        *self
            .phdrs()
            .iter()
            .find(|&&p| self.u32(p) == kind)
            .expect("program header")
    }
    fn vaddr_to_off(&self, va: u64) -> usize {
        for p in self.phdrs() {
            let (off, vaddr, filesz) = (self.u64(p + 8), self.u64(p + 16), self.u64(p + 32));
            if self.u32(p) == PT_LOAD && va >= vaddr && va < vaddr + filesz {
                return (off + va - vaddr) as usize;
            }
        }
        panic!("vaddr {va:#x} not in a PT_LOAD");
    }
    /// File offsets of the dynamic entries, DT_NULL included.
    fn dyns(&self) -> Vec<usize> {
        let d = self.phdr(PT_DYNAMIC);
        let (off, size) = (self.u64(d + 8) as usize, self.u64(d + 32) as usize);
        let mut v = Vec::new();
        for e in (off..off + size).step_by(16) {
            v.push(e);
            if self.u64(e) == DT_NULL {
                break;
            }
        }
        v
    }
    fn dyn_entry(&self, tag: u64) -> Option<usize> {
        self.dyns().into_iter().find(|&e| self.u64(e) == tag)
    }
    fn dyn_val(&self, tag: u64) -> u64 {
        self.u64(
            self.dyn_entry(tag)
                .unwrap_or_else(|| panic!("no dynamic tag {tag:#x}"))
                + 8,
        )
    }
    fn set_dyn(&mut self, tag: u64, v: u64) {
        let e = self
            .dyn_entry(tag)
            .unwrap_or_else(|| panic!("no dynamic tag {tag:#x}"));
        self.set64(e + 8, v);
    }
    /// File offset of the dynamic string `tag` names (DT_NEEDED, DT_SONAME, ...).
    fn dyn_str_off(&self, tag: u64) -> usize {
        self.vaddr_to_off(self.dyn_val(DT_STRTAB)) + self.dyn_val(tag) as usize
    }
    /// Append `data` to the file as a new loadable segment (the
    /// PT_GNU_STACK header becomes its PT_LOAD); returns its address.
    fn append_load(&mut self, data: &[u8]) -> u64 {
        const PT_GNU_STACK: u32 = 0x6474_e551;
        let p = self.phdr(PT_GNU_STACK);
        let off = self.0.len().next_multiple_of(4096);
        let vaddr = 0x4000_0000 + off as u64;
        self.0.resize(off, 0);
        self.0.extend_from_slice(data);
        self.set32(p, PT_LOAD);
        self.set32(p + 4, 4);
        self.set64(p + 8, off as u64);
        self.set64(p + 16, vaddr);
        self.set64(p + 24, vaddr);
        self.set64(p + 32, data.len() as u64);
        self.set64(p + 40, data.len() as u64);
        self.set64(p + 48, 4096);
        vaddr
    }
    /// Overwrite the string `tag` names with `s` (same length).
    fn set_dyn_str(&mut self, tag: u64, s: &str) {
        let o = self.dyn_str_off(tag);
        let old = self.0[o..].iter().position(|&b| b == 0).unwrap();
        assert_eq!(old, s.len(), "replacement must keep the length");
        self.0[o..o + s.len()].copy_from_slice(s.as_bytes());
    }
}

/// Build the pieces: `dir/libb.so.1` (no libc, so everything resolves in an
/// empty root), `dir/liba.so.1` needing it with DT_RPATH $ORIGIN, and
/// `dir/libv.so.1` linked with libc (DT_VERNEED, symbol tables).
fn build_elves(dir: &Path) {
    std::fs::write(dir.join("b.c"), "int b(void) { return 1; }\n").unwrap();
    std::fs::write(dir.join("a.c"), "int b(void); int a(void) { return b(); }\n").unwrap();
    std::fs::write(
        dir.join("v.c"),
        "#include <stdio.h>\nint v(void) { return puts(\"v\"); }\n",
    )
    .unwrap();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let common = ["-shared", "-fPIC", "-nostdlib", "-Wl,--disable-new-dtags"];
    let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-Wl,-soname,libb.so.1".into(),
        "-o".into(),
        p("libb.so.1"),
        p("b.c"),
    ]);
    gcc(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-Wl,-soname,liba.so.1".into(),
        "-Wl,-rpath,$ORIGIN".into(),
        "-o".into(),
        p("liba.so.1"),
        p("a.c"),
        p("libb.so.1"),
    ]);
    gcc(&args.iter().map(String::as_str).collect::<Vec<_>>());
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libv.so.1",
        "-o",
        &p("libv.so.1"),
        &p("v.c"),
    ]);
}

/// ldcheck --root ROOT ARGS..., bounded.
fn ldcheck(root: &Path, args: &[&str]) -> Output {
    run_bounded(
        Command::new(bin("ldcheck"))
            .env_remove("LD_LIBRARY_PATH")
            .arg("--root")
            .arg(root)
            .args(args),
        Duration::from_secs(60),
    )
    .0
}

/// DT_NEEDED loops (a needs b needs a; a library needing itself) and a chain
/// of 3000 libraries, each needing the next, the last needing the first: the
/// loader reuses a loaded soname, and so must ldcheck, without recursing
/// itself into a stack overflow. Everything resolves: exit 0.
#[test]
fn needed_loops_and_a_3000_deep_chain_resolve() {
    if !have_gcc("needed_loops") {
        return;
    }
    let root = TempDir::new("adv-ldloop");
    let work = TempDir::new("adv-ldloop-src");
    build_elves(work.path());
    let a = Elf64(std::fs::read(work.join("liba.so.1")).unwrap());

    // a <-> b: liba.so.1 needs "libb.so.1"; a copy renamed b needs "liba.so.1".
    let app = root.join("app/loop");
    std::fs::create_dir_all(&app).unwrap();
    let mut b = Elf64(a.0.clone());
    b.set_dyn_str(DT_NEEDED, "liba.so.1");
    b.set_dyn_str(DT_SONAME, "libb.so.1");
    std::fs::write(app.join("liba.so.1"), &a.0).unwrap();
    std::fs::write(app.join("libb.so.1"), &b.0).unwrap();
    // An entry point (nobody needs it) that pulls in the loop.
    let mut e = Elf64(a.0.clone());
    e.set_dyn_str(DT_SONAME, "entry.so1");
    std::fs::write(app.join("entry.so1"), &e.0).unwrap();
    // A library that needs itself.
    let mut s = Elf64(a.0.clone());
    s.set_dyn_str(DT_NEEDED, "libs.so.1");
    s.set_dyn_str(DT_SONAME, "libs.so.1");
    std::fs::write(app.join("libs.so.1"), &s.0).unwrap();

    let o = ldcheck(root.path(), &["--format", "json", "/app/loop"]);
    assert_eq!(clean_exit(&o, &[0, 1], "loop"), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("\"missing\": []"), "{}", stdout(&o));

    // The chain: l0000.so1 -> l0001.so1 -> ... -> l2999.so1 -> l0000.so1.
    let n = 3000;
    let chain = root.join("app/chain");
    std::fs::create_dir_all(&chain).unwrap();
    for i in 0..n {
        let mut l = Elf64(a.0.clone());
        l.set_dyn_str(DT_SONAME, &format!("l{i:04}.so1"));
        l.set_dyn_str(DT_NEEDED, &format!("l{:04}.so1", (i + 1) % n));
        std::fs::write(chain.join(format!("l{i:04}.so1")), &l.0).unwrap();
    }
    let mut e = Elf64(a.0.clone());
    e.set_dyn_str(DT_SONAME, "entry.so1");
    e.set_dyn_str(DT_NEEDED, "l0000.so1");
    std::fs::write(chain.join("entry.so1"), &e.0).unwrap();
    for fmt in ["json", "tree"] {
        let o = ldcheck(root.path(), &["--format", fmt, "/app/chain"]);
        assert_eq!(clean_exit(&o, &[0, 1], "chain"), 0, "{}", stderr(&o));
    }
    // Break the chain in the middle: exactly that soname is missing.
    std::fs::remove_file(chain.join("l1500.so1")).unwrap();
    let o = ldcheck(root.path(), &["--format", "json", "/app/chain"]);
    assert_eq!(clean_exit(&o, &[1], "broken chain"), 1);
    assert!(stdout(&o).contains("\"soname\": \"l1500.so1\""), "{}", stdout(&o));
}

/// Hand-edited ELF files: offsets past the end, huge counts, self-referencing
/// version chains, unterminated tables, truncations at every length. Each
/// gives exit 0, 1 or 2 with a message; none crashes or hangs.
#[test]
fn corrupt_elf_files_never_crash_or_hang() {
    if !have_gcc("corrupt_elf") {
        return;
    }
    let root = TempDir::new("adv-ldbad");
    let work = TempDir::new("adv-ldbad-src");
    build_elves(work.path());
    let a = Elf64(std::fs::read(work.join("liba.so.1")).unwrap());
    let v = Elf64(std::fs::read(work.join("libv.so.1")).unwrap());
    assert!(v.dyn_entry(DT_VERNEED).is_some(), "libv.so.1 has no DT_VERNEED");

    type Edit = fn(&mut Elf64);
    let edits: &[(&str, bool, Edit)] = &[
        ("phoff-past-end", false, |e| e.set64(32, u64::MAX - 8)),
        ("phnum-huge", false, |e| e.set16(56, 0xffff)),
        ("phentsize-zero", false, |e| e.set16(54, 0)),
        ("shoff-past-end", false, |e| {
            e.set64(40, u64::MAX - 64);
            e.set16(60, 0xffff)
        }),
        ("dynamic-past-end", false, |e| {
            let d = e.phdr(PT_DYNAMIC);
            e.set64(d + 8, 1 << 40)
        }),
        ("dynamic-size-huge", false, |e| {
            let d = e.phdr(PT_DYNAMIC);
            e.set64(d + 32, u64::MAX);
            e.set64(d + 40, u64::MAX)
        }),
        ("dynamic-unterminated", false, |e| {
            // Every DT_NULL becomes DT_NEEDED of offset 1: the table runs to its end.
            for d in e.dyns() {
                if e.u64(d) == DT_NULL {
                    e.set64(d, DT_NEEDED);
                    e.set64(d + 8, 1);
                }
            }
        }),
        ("all-needed", false, |e| {
            // Every entry names the same library: one load, however many times.
            let off = e.dyn_val(DT_NEEDED);
            let ds = e.dyns();
            for d in &ds[..ds.len() - 1] {
                if ![DT_STRTAB, DT_STRSZ].contains(&e.u64(*d)) {
                    e.set64(*d, DT_NEEDED);
                    e.set64(*d + 8, off);
                }
            }
        }),
        ("strtab-unmapped", false, |e| {
            e.set_dyn(DT_STRTAB, 0xffff_ffff_ffff_0000)
        }),
        ("strsz-huge", false, |e| e.set_dyn(DT_STRSZ, u64::MAX)),
        ("strsz-tiny", false, |e| e.set_dyn(DT_STRSZ, 3)),
        ("needed-past-strtab", false, |e| e.set_dyn(DT_NEEDED, 0xffff_fff0)),
        ("rpath-past-strtab", false, |e| e.set_dyn(DT_RPATH, u64::MAX)),
        ("strtab-unterminated", false, |e| {
            let o = e.vaddr_to_off(e.dyn_val(DT_STRTAB));
            let n = e.dyn_val(DT_STRSZ) as usize;
            for b in &mut e.0[o..o + n] {
                if *b == 0 {
                    *b = b'x';
                }
            }
        }),
        ("big-endian-header", false, |e| e.0[5] = 2),
        ("class-32", false, |e| e.0[4] = 1),
        ("verneednum-huge-self-loop", true, |e| {
            // One Verneed whose vn_next is 0 (itself), counted 2^32-1 times.
            e.set_dyn(DT_VERNEEDNUM, u32::MAX as u64);
            let o = e.vaddr_to_off(e.dyn_val(DT_VERNEED));
            e.set32(o + 12, 0);
        }),
        ("vernaux-self-loop", true, |e| {
            // vn_cnt 0xffff aux entries, each vna_next 0: the same one forever.
            let o = e.vaddr_to_off(e.dyn_val(DT_VERNEED));
            e.set16(o + 2, 0xffff);
            let aux = o + e.u32(o + 8) as usize;
            e.set32(aux + 12, 0);
        }),
        ("verneed-aux-past-end", true, |e| {
            let o = e.vaddr_to_off(e.dyn_val(DT_VERNEED));
            e.set32(o + 8, u32::MAX);
        }),
        ("verneed-unmapped", true, |e| {
            e.set_dyn(DT_VERNEED, 0x7fff_ffff_0000)
        }),
        ("symtab-unmapped", true, |e| {
            e.set_dyn(DT_SYMTAB, 0x7fff_ffff_0000)
        }),
        ("hash-huge", true, |e| {
            // DT_HASH or DT_GNU_HASH with absurd bucket and chain counts.
            if let Some(h) = e.dyn_entry(DT_HASH) {
                let o = e.vaddr_to_off(e.u64(h + 8));
                e.set32(o, u32::MAX);
                e.set32(o + 4, u32::MAX);
            }
            if let Some(h) = e.dyn_entry(DT_GNU_HASH) {
                let o = e.vaddr_to_off(e.u64(h + 8));
                e.set32(o, u32::MAX);
                e.set32(o + 4, 0);
                e.set32(o + 8, u32::MAX);
            }
        }),
    ];
    let bad = root.join("app/bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(work.join("libb.so.1"), root.join("app/bad/libb.so.1")).unwrap();
    for (name, versioned, edit) in edits {
        let mut e = Elf64(if *versioned { v.0.clone() } else { a.0.clone() });
        edit(&mut e);
        let file = format!("/app/bad/{name}.so");
        std::fs::write(root.join(&file[1..]), &e.0).unwrap();
        for extra in [&[][..], &["--symbols", "--each-file"][..]] {
            let mut args = extra.to_vec();
            args.extend(["--format", "json", &file]);
            let o = ldcheck(root.path(), &args);
            clean_exit(&o, &[0, 1, 2], name);
        }
    }
    // Truncations of both files at many lengths, all in one tree and one run.
    let cut = root.join("app/cut");
    std::fs::create_dir_all(&cut).unwrap();
    for (tag, e) in [("a", &a), ("v", &v)] {
        let mut lens: Vec<usize> = (0..e.0.len()).step_by(61).collect();
        lens.extend([1, 4, 5, 16, 17, 52, 63, 64, 65]);
        for n in lens {
            std::fs::write(cut.join(format!("{tag}-{n}.so")), &e.0[..n]).unwrap();
        }
    }
    for extra in [&[][..], &["--symbols", "--each-file"][..]] {
        let mut args = extra.to_vec();
        args.extend(["--format", "text", "/app/cut", "/app/bad"]);
        let o = ldcheck(root.path(), &args);
        clean_exit(&o, &[0, 1, 2], "truncated and corrupt tree");
    }
}

/// A DT_NEEDED name and a file name carrying a newline and an escape
/// sequence: the text and tree reports show them escaped, one line each,
/// so no forged summary line and nothing for the terminal to act on.
#[test]
fn control_characters_in_names_are_escaped_in_reports() {
    if !have_gcc("control_characters") {
        return;
    }
    let root = TempDir::new("adv-ldctl");
    let work = TempDir::new("adv-ldctl-src");
    build_elves(work.path());
    let mut a = Elf64(std::fs::read(work.join("liba.so.1")).unwrap());
    a.set_dyn_str(DT_NEEDED, "l\nok\x1b[31m");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/x\nok: 1\x1b[2J.so"), &a.0).unwrap();
    for format in ["text", "tree"] {
        let o = ldcheck(root.path(), &["--format", format, "/app"]);
        assert_eq!(clean_exit(&o, &[1], "control characters"), 1);
        let out = stdout(&o);
        printable(&out, format);
        assert!(out.contains("missing l\\u{a}ok\\u{1b}[31m"), "{out}");
        assert!(out.contains("/app/x\\u{a}ok: 1\\u{1b}[2J.so"), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("ok")), "{out}");
    }
}

/// 600 entry points (so they load on worker threads with small stacks),
/// each needing a path of about 1 200 components (`/tmp/../tmp/..`): the
/// path resolves in one walk, not a call per component, and is missing.
/// Longer than PATH_MAX, it is not found, as the kernel would refuse it.
#[test]
fn needed_paths_of_a_thousand_components_resolve_on_small_stacks() {
    if !have_gcc("deep_needed_path") {
        return;
    }
    let root = TempDir::new("adv-lddeep");
    let work = TempDir::new("adv-lddeep-src");
    build_elves(work.path());
    let a = Elf64(std::fs::read(work.join("liba.so.1")).unwrap());
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    for (i, long) in [(0, 4000), (1, 5000)] {
        let name = format!("/{}gone.so", "tmp/../".repeat((long - 8) / 7));
        // A new string table holding the name; DT_NEEDED points at it.
        let mut e = a.clone();
        let mut data = name.clone().into_bytes();
        data.push(0);
        let va = e.append_load(&data);
        e.set_dyn(DT_STRTAB, va);
        e.set_dyn(DT_STRSZ, data.len() as u64);
        e.set_dyn(DT_NEEDED, 0);
        // DT_RPATH pointed into the old table: its tag becomes one nothing reads.
        let r = e.dyn_entry(DT_RPATH).unwrap();
        e.set64(r, 0x6fff_fd00);
        let dir = root.join(format!("app/{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for n in 0..600 {
            // Distinct names: each is an entry point of its own.
            let mut e = e.clone();
            let d = e.dyn_entry(DT_SONAME).unwrap();
            e.set64(d, DT_NULL + 0x6fff_fe00 + n);
            std::fs::write(dir.join(format!("e{n:03}.so")), &e.0).unwrap();
        }
        let o = ldcheck(root.path(), &["--format", "json", &format!("/app/{i}")]);
        assert_eq!(clean_exit(&o, &[1], "deep needed path"), 1);
        let out = stdout(&o);
        assert!(out.contains("\"entry_points\": 600"), "{out}");
        assert!(out.contains(&format!("\"soname\": \"{name}\"")), "{out}");
    }
}

/// An empty LD_LIBRARY_PATH (`ENV LD_LIBRARY_PATH=`) searches nothing in
/// ld.so: not the working directory, which an empty element would mean.
#[test]
fn empty_library_path_is_no_library_path() {
    if !have_gcc("empty_library_path") {
        return;
    }
    let work = TempDir::new("adv-ldllp");
    build_elves(work.path());
    let app = work.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::rename(work.join("liba.so.1"), app.join("liba.so.1")).unwrap();
    let go = |llp: &str| {
        let o = run(Command::new(bin("ldcheck"))
            .current_dir(work.path())
            .env("LD_LIBRARY_PATH", llp)
            .args(["--format", "tree"])
            .arg(&app));
        (o.status.code(), stdout(&o))
    };
    // libb.so.1 lies in the working directory only.
    let (code, out) = go("");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("libb.so.1 => not found"), "{out}");
    let (code, out) = go(":");
    assert_eq!(
        code,
        Some(0),
        "two empty elements are the working directory twice: {out}"
    );
    assert!(out.contains("[LD_LIBRARY_PATH]"), "{out}");
}

/// A directory the auditing user cannot read is a warning naming it (and
/// an `unreadable` entry), not a part of the tree passed over in silence.
#[test]
fn unreadable_directories_are_reported() {
    if !need_root("unreadable_directories") {
        return;
    }
    let root = TempDir::new("adv-ldperm");
    let app = root.join("app");
    std::fs::create_dir_all(app.join("locked")).unwrap();
    std::fs::copy("/bin/true", app.join("true")).unwrap();
    std::fs::copy("/bin/true", app.join("locked/true")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (p, m) in [
        (root.path().to_path_buf(), 0o755),
        (app.clone(), 0o755),
        (app.join("locked"), 0o000),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let o = run(Command::new(bin("runas"))
        .args(["nobody", "--"])
        .arg(bin("ldcheck"))
        .arg(&app));
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains(&format!(
            "warning: {}/locked: directory not read: Permission denied",
            app.display()
        )),
        "{out}"
    );
    assert!(out.contains("ok: 1 ELF files"), "{out}");
}

/// Files whose few bytes ask for billions of steps or gigabytes: DT_VERNEED
/// entries sharing one long chain of auxiliaries (about 2 billion steps),
/// 65 000 DT_NEEDED naming one long string (with --symbols the whole string
/// table is read). Each is refused with its reason, within the 60 s bound
/// and without the memory it asks for.
#[test]
fn amplifying_elf_files_are_refused() {
    if !have_gcc("amplifying_elf") {
        return;
    }
    let root = TempDir::new("adv-ldamp");
    let work = TempDir::new("adv-ldamp-src");
    build_elves(work.path());
    let v = Elf64(std::fs::read(work.join("libv.so.1")).unwrap());
    let dir = root.join("app");
    std::fs::create_dir_all(&dir).unwrap();

    // 65 536 Verneed (vn_cnt 0xffff, vn_next 16), all with vn_aux at one
    // chain of 65 535 Vernaux (vna_next 16) after them.
    let mut e = v.clone();
    let file = e.dyn_val(DT_NEEDED) as u32;
    let mut rec = Vec::with_capacity(2 << 20);
    for k in 0..65536u32 {
        for w in [1 | 0xffff << 16, file, (65536 - k) * 16, 16] {
            rec.extend_from_slice(&w.to_le_bytes());
        }
    }
    for _ in 0..65535 {
        for w in [0, 0, file, 16] {
            rec.extend_from_slice(&w.to_le_bytes());
        }
    }
    let va = e.append_load(&rec);
    e.set_dyn(DT_VERNEED, va);
    e.set_dyn(DT_VERNEEDNUM, 65536);
    std::fs::write(dir.join("shared-chains.so"), &e.0).unwrap();

    // A new string table (one string of `len` bytes) and a new dynamic
    // section of 65 000 DT_NEEDED at its offset 0.
    for (name, len) in [("needed-1mib", 1usize << 20), ("needed-8k", 8000)] {
        let mut e = v.clone();
        let mut data = vec![b'A'; len];
        data.push(0);
        data.resize(data.len().next_multiple_of(16), 0);
        let dyn_at = data.len();
        for _ in 0..65_000 {
            data.extend_from_slice(&DT_NEEDED.to_le_bytes());
            data.extend_from_slice(&0u64.to_le_bytes());
        }
        let tail = data.len();
        data.resize(tail + 48, 0);
        let va = e.append_load(&data);
        for (i, (tag, val)) in [(DT_STRTAB, va), (DT_STRSZ, dyn_at as u64), (DT_NULL, 0)]
            .into_iter()
            .enumerate()
        {
            data[tail + i * 16..tail + i * 16 + 8].copy_from_slice(&tag.to_le_bytes());
            data[tail + i * 16 + 8..tail + i * 16 + 16].copy_from_slice(&val.to_le_bytes());
        }
        let off = e.0.len() - (data.len());
        e.0[off..].copy_from_slice(&data);
        let d = e.phdr(PT_DYNAMIC);
        e.set64(d + 8, (off + dyn_at) as u64);
        e.set64(d + 16, va + dyn_at as u64);
        e.set64(d + 24, va + dyn_at as u64);
        e.set64(d + 32, (data.len() - dyn_at) as u64);
        e.set64(d + 40, (data.len() - dyn_at) as u64);
        std::fs::write(dir.join(format!("{name}.so")), &e.0).unwrap();
    }

    for (file, why) in [
        ("shared-chains.so", "more than 65536 DT_VERNEED auxiliary entries"),
        ("needed-1mib.so", "bad string table offset"),
        ("needed-8k.so", "names add up to more than 1048576 bytes"),
    ] {
        for extra in [&[][..], &["--symbols"][..]] {
            let mut args = extra.to_vec();
            let path = format!("/app/{file}");
            args.push(&path);
            let o = ldcheck(root.path(), &args);
            clean_exit(&o, &[0, 1], file);
            let out = stdout(&o);
            assert!(
                out.contains(&format!("warning: {path}: {why}")),
                "{file} {extra:?}: {out}"
            );
        }
    }
}

// ------------------------------------------------------- ldcheck: ld.so.cache

/// A root whose /etc/ld.so.cache (built by ldconfig) is the only way to find
/// /opt/lib/libb.so.1; then that cache with bogus offsets and counts.
#[test]
fn corrupt_ld_so_cache_never_crashes() {
    if !have_gcc("corrupt_ld_so_cache") {
        return;
    }
    if !Path::new("/sbin/ldconfig").is_file() {
        skip("corrupt_ld_so_cache", "needs /sbin/ldconfig (libc-bin)");
        return;
    }
    let root = TempDir::new("adv-ldcache");
    let work = TempDir::new("adv-ldcache-src");
    build_elves(work.path());
    for d in ["opt/lib", "app", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(work.join("libb.so.1"), root.join("opt/lib/libb.so.1")).unwrap();
    // liba.so.1 without its $ORIGIN rpath reaching libb: put it elsewhere.
    std::fs::copy(work.join("liba.so.1"), root.join("app/liba.so.1")).unwrap();
    std::fs::write(root.join("etc/ld.so.conf"), "/opt/lib\n").unwrap();
    let o = run(Command::new("/sbin/ldconfig").arg("-r").arg(root.path()).args([
        "-X",
        "-C",
        "/etc/ld.so.cache",
        "-f",
        "/etc/ld.so.conf",
    ]));
    assert!(o.status.success(), "ldconfig: {}", stderr(&o));
    let good = std::fs::read(root.join("etc/ld.so.cache")).unwrap();
    assert!(
        good.starts_with(b"glibc-ld.so.cache1.1"),
        "unexpected cache format"
    );

    // The real cache works: found through it.
    let o = ldcheck(root.path(), &["--format", "tree", "/app"]);
    assert_eq!(clean_exit(&o, &[0, 1], "good cache"), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("/opt/lib/libb.so.1"), "{}", stdout(&o));

    let u32_at = |c: &mut Vec<u8>, o: usize, v: u32| c[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let nlibs = u32::from_le_bytes(good[20..24].try_into().unwrap()) as usize;
    assert!(nlibs >= 1);
    // Header: magic[20] nlibs len_strings flags pad[3] extension_offset unused[3];
    // entries of 24 bytes from 48: flags key value osversion hwcap.
    let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut c = good.clone();
    u32_at(&mut c, 20, u32::MAX);
    variants.push(("nlibs-huge", c));
    let mut c = good.clone();
    u32_at(&mut c, 20, 0x000f_ffff);
    variants.push(("nlibs-large", c));
    let mut c = good.clone();
    u32_at(&mut c, 48 + 4, u32::MAX - 2);
    variants.push(("key-past-end", c));
    let mut c = good.clone();
    u32_at(&mut c, 48 + 8, good.len() as u32 + 100);
    variants.push(("value-past-end", c));
    let mut c = good.clone();
    for i in 0..nlibs {
        u32_at(&mut c, 48 + 24 * i + 8, good.len() as u32 - 1);
    }
    variants.push(("value-unterminated", c));
    let mut c = good.clone();
    u32_at(&mut c, 28, u32::MAX - 3);
    variants.push(("extension-past-end", c));
    let mut c = good.clone();
    // An extension header at the end, claiming 2^32-1 sections.
    let ext = c.len() as u32;
    c.extend(0xeaa4_2174u32.to_le_bytes());
    c.extend(u32::MAX.to_le_bytes());
    c.extend([1, 0, 0, 0, 0, 0, 0, 0]);
    c.extend(u32::MAX.to_le_bytes());
    c.extend(u32::MAX.to_le_bytes());
    u32_at(&mut c, 28, ext);
    variants.push(("extension-count-huge", c));
    let mut c = good.clone();
    for i in 0..nlibs {
        // Every entry an hwcaps entry (bit 62) with an index far out of range.
        let o = 48 + 24 * i + 16;
        c[o..o + 8].copy_from_slice(&((1u64 << 62) | 0xffff_fff0).to_le_bytes());
    }
    variants.push(("hwcaps-index-huge", c));
    let mut c = b"ld.so-1.7.0\0".to_vec();
    c.extend(u32::MAX.to_le_bytes());
    variants.push(("old-format-count-huge", c));
    let mut c = b"ld.so-1.7.0\0".to_vec();
    c.extend(1u32.to_le_bytes());
    c.extend([3, 3, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f]);
    variants.push(("old-format-offsets-past-end", c));
    for n in [0, 1, 19, 20, 24, 47, 48, 60, good.len() - 1] {
        variants.push(("truncated", good[..n].to_vec()));
    }
    for (name, bytes) in variants {
        std::fs::write(root.join("etc/ld.so.cache"), &bytes).unwrap();
        let o = ldcheck(root.path(), &["--format", "tree", "/app"]);
        let c = clean_exit(&o, &[0, 1], name);
        // Not found through a broken cache is fine; found at a wrong path is not.
        let want = if c == 0 {
            "libb.so.1 => /opt/lib/libb.so.1 ["
        } else {
            "libb.so.1 => not found"
        };
        assert!(stdout(&o).contains(want), "{name}: exit {c}: {}", stdout(&o));
    }
    // The cache itself replaced by a symlink loop and by a directory: no
    // cache, so libb.so.1 (found only through it) is missing: exit 1.
    std::fs::remove_file(root.join("etc/ld.so.cache")).unwrap();
    std::os::unix::fs::symlink("ld.so.cache", root.join("etc/ld.so.cache")).unwrap();
    let o = ldcheck(root.path(), &["/app"]);
    assert_eq!(clean_exit(&o, &[1], "cache symlink loop"), 1);
    std::fs::remove_file(root.join("etc/ld.so.cache")).unwrap();
    std::fs::create_dir(root.join("etc/ld.so.cache")).unwrap();
    let o = ldcheck(root.path(), &["/app"]);
    assert_eq!(clean_exit(&o, &[1], "cache is a directory"), 1);
    std::fs::remove_dir(root.join("etc/ld.so.cache")).unwrap();
    // A FIFO (read would wait for a writer forever) and a sparse file of
    // 1 TiB (read whole, it would exhaust memory), as the cache and as
    // /etc/os-release: neither is read, and the run ends (with no usable
    // cache, libb.so.1 is missing: exit 1).
    for f in ["etc/ld.so.cache", "etc/os-release"] {
        let p = root.join(f);
        let o = run(Command::new("mkfifo").arg(&p));
        assert!(o.status.success(), "mkfifo: {}", stderr(&o));
        let what = format!("{f} is a FIFO");
        assert_eq!(clean_exit(&ldcheck(root.path(), &["/app"]), &[1], &what), 1);
        std::fs::remove_file(&p).unwrap();
        std::fs::File::create(&p).unwrap().set_len(1 << 40).unwrap();
        let what = format!("{f} is 1 TiB");
        assert_eq!(clean_exit(&ldcheck(root.path(), &["/app"]), &[1], &what), 1);
        std::fs::remove_file(&p).unwrap();
    }
}

/// Symlink loops and links out of the tree in the audited paths: walked
/// without following them out, finishing, judging what is inside.
#[test]
fn symlink_loops_in_the_audited_tree() {
    if !have_gcc("ldcheck_symlink_loops") {
        return;
    }
    let root = TempDir::new("adv-ldlinks");
    let work = TempDir::new("adv-ldlinks-src");
    build_elves(work.path());
    let app = root.join("app");
    std::fs::create_dir_all(app.join("sub")).unwrap();
    std::fs::copy(work.join("liba.so.1"), app.join("liba.so.1")).unwrap();
    std::fs::copy(work.join("libb.so.1"), app.join("libb.so.1")).unwrap();
    let ln = |t: &str, l: &str| std::os::unix::fs::symlink(t, app.join(l)).unwrap();
    ln("self", "self");
    ln("loop2", "loop1");
    ln("loop1", "loop2");
    ln("..", "sub/up");
    ln("/", "sub/rootdir");
    ln("/app", "sub/app");
    ln("../../../../../../../../etc", "sub/escape");
    let o = ldcheck(root.path(), &["--format", "json", "/app"]);
    assert_eq!(clean_exit(&o, &[0, 1], "links"), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("\"files\": 2"), "{}", stdout(&o));
}

/// ldcheck never runs anything from the audited tree (ldd does: it runs the
/// program's PT_INTERP). A program whose interpreter is a script that leaves
/// a marker, audited with and without --root: no marker.
#[test]
fn nothing_in_the_audited_tree_is_executed() {
    if !have_gcc("nothing_executed") {
        return;
    }
    let root = TempDir::new("adv-noexec");
    let work = TempDir::new("adv-noexec-src");
    std::fs::write(work.join("m.c"), "int main(void) { return 0; }\n").unwrap();
    let exe = work.join("m");
    gcc(&["-o", exe.to_str().unwrap(), work.join("m.c").to_str().unwrap()]);
    let mut e = Elf64(std::fs::read(&exe).unwrap());
    // PT_INTERP (type 3) rewritten in place to a script path of the same length.
    let pi = e.phdr(3);
    let (off, len) = (e.u64(pi + 8) as usize, e.u64(pi + 32) as usize - 1);
    let marker = root.join("ran");
    let mut script = format!("/tmp/dh-adv-{}", std::process::id());
    assert!(script.len() < len, "interpreter path too short to rewrite");
    while script.len() < len {
        script.push('x');
    }
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    e.0[off..off + len].copy_from_slice(script.as_bytes());
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::create_dir_all(root.join(&script[1..]).parent().unwrap()).unwrap();
    std::fs::copy(&script, root.join(&script[1..])).unwrap();
    let prog = root.join("app/prog");
    std::fs::write(&prog, &e.0).unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The trap works: running the interpreter as ldd would leaves the marker.
    let o = run(Command::new(&script).arg("--verify").arg(&prog));
    assert!(
        o.status.success() && marker.exists(),
        "the trap did not fire: {}",
        stderr(&o)
    );
    std::fs::remove_file(&marker).unwrap();
    let o = run_bounded(
        Command::new(bin("ldcheck")).args(["--format", "json"]).arg(&prog),
        Duration::from_secs(60),
    )
    .0;
    clean_exit(&o, &[0, 1], "host view");
    let o = ldcheck(
        root.path(),
        &["--format", "json", "--each-file", "--symbols", "/app"],
    );
    clean_exit(&o, &[0, 1], "root view");
    let _ = std::fs::remove_file(&script);
    assert!(!marker.exists(), "ldcheck ran the program's interpreter");
}

/// A library symlink in the audited image that points out of it (absolute,
/// or with enough `..` to climb past the root) at a real library on the
/// host: as in a chroot, it resolves inside the root, so the library is
/// missing, and nothing outside the image is read.
#[test]
fn library_links_out_of_the_root_are_not_followed_out() {
    if !have_gcc("links_out_of_root") {
        return;
    }
    let root = TempDir::new("adv-escape");
    let host = TempDir::new("adv-escape-host");
    build_elves(host.path());
    let hostlib = host.join("libb.so.1");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::copy(host.join("liba.so.1"), root.join("app/liba.so.1")).unwrap();
    let climb = format!("{}{}", "../".repeat(40), hostlib.display());
    for target in [hostlib.to_str().unwrap(), &climb] {
        let link = root.join("app/libb.so.1");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        let o = ldcheck(root.path(), &["--format", "json", "/app"]);
        assert_eq!(
            clean_exit(&o, &[0, 1], target),
            1,
            "found outside the root: {}",
            stdout(&o)
        );
        assert!(stdout(&o).contains("\"soname\": \"libb.so.1\""), "{}", stdout(&o));
        assert!(
            !stdout(&o).contains(host.path().to_str().unwrap()),
            "{}",
            stdout(&o)
        );
    }
    // The same link target inside the root is followed.
    let inner = root.join(&hostlib.to_str().unwrap()[1..]);
    std::fs::create_dir_all(inner.parent().unwrap()).unwrap();
    std::fs::copy(&hostlib, &inner).unwrap();
    let o = ldcheck(root.path(), &["--format", "json", "/app"]);
    assert_eq!(clean_exit(&o, &[0, 1], "inside"), 0, "{}", stdout(&o));
}

// ------------------------------------------------------------ runas: passwd

/// runas in a busybox chroot with this passwd and group; not in namespaces
/// (no PID 1 semantics needed here).
fn runas_in(root: &Path, args: &[&str]) -> Output {
    run_bounded(
        Command::new("chroot")
            .arg(root)
            .arg("/usr/local/bin/runas")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        Duration::from_secs(60),
    )
    .0
}

/// /etc/passwd and /etc/group with overlong lines, missing fields, ids out
/// of range, NIS lines, CRs and junk: the good entries still resolve exactly,
/// the bad ones are errors on one short line.
#[test]
fn hostile_passwd_and_group() {
    if !need_root("hostile_passwd") {
        return;
    }
    let long_name = "n".repeat(100_000);
    let mut passwd = String::new();
    passwd.push_str(&"x".repeat(1 << 20));
    passwd.push('\n');
    passwd.push_str(&":".repeat(100_000));
    passwd.push('\n');
    passwd.push_str(&format!(
        "long:x:1500:1500:{}:/home/long:/bin/sh\n",
        "g".repeat(200_000)
    ));
    passwd.push_str("missing:x:1600\n");
    passwd.push_str("nogid:x:1601::::\n");
    passwd.push_str("neg:x:-1:-1::/:/bin/sh\n");
    passwd.push_str("huge:x:4294967295:4294967295::/:/bin/sh\n");
    passwd.push_str("big:x:2147483648:1::/:/bin/sh\n");
    passwd.push_str("::1700:1700::/:/bin/sh\n");
    passwd.push_str("cr:x:1800:1800::/home/cr:/bin/sh\r\n");
    passwd.push_str(&format!("{long_name}:x:1900:1900::/:/bin/sh\n"));
    passwd.push_str("+:::::\n-app:x:0:0::/:/bin/sh\n");
    passwd.push_str("app:x:1000:1000:App:/home/app:/bin/sh\n");
    let mut group = String::new();
    group.push_str(&"y".repeat(1 << 20));
    group.push('\n');
    let members: Vec<String> = (0..100_000).map(|i| format!("u{i}")).collect();
    group.push_str(&format!("crowd:x:3000:{},app\n", members.join(",")));
    group.push_str("badgid:x:99999999999:app\n");
    group.push_str("nomembers:x:3001\n");
    group.push_str("app:x:1000:\n");
    let Some(root) = busybox_root("hostile_passwd", &passwd, &group) else {
        return;
    };
    let ids = |o: &Output| stdout(o).split_whitespace().map(String::from).collect::<Vec<_>>();

    // The good entry after all the junk: passwd gid plus the crowd group.
    let o = runas_in(root.path(), &["app", "sh", "-c", "id -u; id -g; id -G"]);
    assert_eq!(clean_exit(&o, &[0], "app"), 0);
    let v = ids(&o);
    assert_eq!(&v[..2], ["1000", "1000"], "{v:?}");
    let mut g: Vec<&str> = v[2..].iter().map(String::as_str).collect();
    g.sort_unstable();
    assert_eq!(g, ["1000", "3000"], "{}", stdout(&o));

    // An overlong but well-formed line resolves.
    let o = runas_in(root.path(), &["long", "id", "-u"]);
    assert_eq!(clean_exit(&o, &[0], "long"), 0);
    assert_eq!(stdout(&o).trim(), "1500");
    // A CRLF line end does not break the entry.
    let o = runas_in(root.path(), &["cr", "sh", "-c", "id -u; echo $HOME"]);
    assert_eq!(clean_exit(&o, &[0], "cr"), 0);
    assert_eq!(ids(&o), ["1800", "/home/cr"]);

    // Malformed entries are not users; ids out of range are refused; never
    // run as something else (uid 0 in particular).
    for user in [
        "missing",
        "nogid",
        "neg",
        "huge",
        "big",
        "+",
        "-app",
        "4294967295",
        "2147483648",
        "",
    ] {
        let o = runas_in(root.path(), &[user, "id", "-u"]);
        let c = clean_exit(&o, &[1, 2], user);
        assert_ne!(c, 0);
        assert!(stdout(&o).is_empty(), "{user}: ran the command: {}", stdout(&o));
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{user}: {e}");
        assert!(e.starts_with("runas: "), "{user}: {e}");
        assert!(e.len() < 4096, "{user}: a {} byte message", e.len());
    }
    // Groups out of range or malformed are refused too.
    for spec in ["app:badgid", "app:nomembers", "app:99999999999"] {
        let o = runas_in(root.path(), &[spec, "id", "-u"]);
        clean_exit(&o, &[1, 2], spec);
        assert!(stdout(&o).is_empty(), "{spec}: ran the command");
    }
}

/// A passwd with a Latin-1 GECOS field (old images) or a NUL byte, and one
/// larger than the 16 MiB bound: a clear one-line error or the right user,
/// nothing else.
#[test]
fn passwd_not_utf8_or_too_big() {
    if !need_root("passwd_not_utf8") {
        return;
    }
    let Some(root) = busybox_root("passwd_not_utf8", "", "app:x:1000:\n") else {
        return;
    };
    let mut p = b"mueller:x:1001:1001:M\xfcller:/home/m:/bin/sh\nnul:x:1002:1002:\0:/:/bin/sh\n".to_vec();
    p.extend(b"app:x:1000:1000:App:/home/app:/bin/sh\n");
    std::fs::write(root.join("etc/passwd"), &p).unwrap();
    let o = runas_in(root.path(), &["app", "id", "-u"]);
    // Read as bytes, as glibc does: the other lines still resolve.
    assert_eq!(clean_exit(&o, &[0], "latin-1 passwd"), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1000");
    let o = runas_in(root.path(), &["mueller", "id", "-u"]);
    assert_eq!(clean_exit(&o, &[0], "latin-1 user"), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1001");
    // 16 MiB + 1 of otherwise valid lines: refused, bounded memory.
    let line = b"app:x:1000:1000:App:/home/app:/bin/sh\n";
    let mut big = Vec::with_capacity((16 << 20) + line.len());
    while big.len() <= 16 << 20 {
        big.extend_from_slice(line);
    }
    std::fs::write(root.join("etc/passwd"), &big).unwrap();
    let o = runas_in(root.path(), &["app", "id", "-u"]);
    assert_eq!(clean_exit(&o, &[1, 2], "huge passwd"), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
    // /etc/passwd as a link to an endless device: the read is bounded.
    std::fs::remove_file(root.join("etc/passwd")).unwrap();
    std::fs::create_dir_all(root.join("dev")).unwrap();
    let o = run(Command::new("mknod")
        .arg(root.join("dev/zero"))
        .args(["c", "1", "5"]));
    assert!(o.status.success(), "mknod: {}", stderr(&o));
    std::os::unix::fs::symlink("/dev/zero", root.join("etc/passwd")).unwrap();
    let o = runas_in(root.path(), &["app", "id", "-u"]);
    assert_eq!(
        clean_exit(&o, &[1, 2], "passwd -> /dev/zero"),
        1,
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

// ------------------------------------------------------------ runas: --chown

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\n";

/// Symlink loops, links to ancestors, to / and out of the tree: each link is
/// changed itself (lchown), no target outside is touched, and the walk ends.
#[test]
fn chown_through_symlink_loops_ends_and_touches_nothing_outside() {
    if !need_root("chown_symlink_loops") {
        return;
    }
    let Some(root) = busybox_root("chown_symlink_loops", PASSWD, GROUP) else {
        return;
    };
    let data = root.join("data");
    std::fs::create_dir_all(data.join("d/e")).unwrap();
    std::fs::write(data.join("d/e/f"), "x").unwrap();
    let links = [
        ("self", "self"),
        ("a", "b"),
        ("b", "a"),
        ("d/up", ".."),
        ("d/e/upup", "../.."),
        ("d/e/dot", "."),
        ("rootdir", "/"),
        ("etc", "/etc"),
        ("passwd", "/etc/passwd"),
        ("d/escape", "../../../../../../../../etc"),
    ];
    for (l, t) in links {
        std::os::unix::fs::symlink(t, data.join(l)).unwrap();
    }
    let (o, took) = run_bounded(
        Command::new("chroot")
            .arg(root.path())
            .args(["/usr/local/bin/runas", "--chown", "/data", "app", "true"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        Duration::from_secs(60),
    );
    assert_eq!(clean_exit(&o, &[0], "chown loops"), 0, "{}", stderr(&o));
    assert!(took < Duration::from_secs(30), "{took:?}");
    for (l, _) in links {
        assert_eq!(owner(&data.join(l)), (1000, 1000), "the link {l} itself");
    }
    for p in ["data/d", "data/d/e", "data/d/e/f"] {
        assert_eq!(owner(&root.join(p)), (1000, 1000), "{p}");
    }
    for p in ["etc", "etc/passwd", "etc/group", "bin", "usr/local/bin/runas", ""] {
        assert_eq!(owner(&root.join(p)), (0, 0), "/{p} outside the tree was changed");
    }
}

/// A directory nested 3000 deep (paths far past PATH_MAX) with only 64 file
/// descriptors: runas changes every level (SECURITY.md promises the walk
/// completes; its open directories are bounded, not one per level), never
/// crashes, and never changes anything outside.
#[test]
fn chown_of_a_3000_deep_tree_with_few_fds() {
    if !need_root("chown_deep_tree") {
        return;
    }
    let Some(root) = busybox_root("chown_deep_tree", PASSWD, GROUP) else {
        return;
    };
    let depth = 3000;
    // Built from the bottom up with short paths only: d/leaf, then t/d, t -> d.
    let data = root.join("data");
    std::fs::create_dir(data.join("d")).unwrap();
    std::fs::write(data.join("d/leaf"), "x").unwrap();
    for _ in 1..depth {
        std::fs::create_dir(data.join("t")).unwrap();
        std::fs::rename(data.join("d"), data.join("t/d")).unwrap();
        std::fs::rename(data.join("t"), data.join("d")).unwrap();
    }
    let (o, _) = run_bounded(
        Command::new("chroot")
            .arg(root.path())
            .args([
                "/bin/sh",
                "-c",
                "ulimit -n 64 && exec /usr/local/bin/runas --chown /data app true",
            ])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        Duration::from_secs(120),
    );
    assert_eq!(clean_exit(&o, &[0], "deep tree"), 0, "{}", stderr(&o));
    // Count the levels that changed (find walks it fine from the host):
    // /data, 3000 directories and the leaf.
    let f = run(Command::new("find")
        .arg(root.join("data"))
        .args(["-user", "1000"]));
    let changed = stdout(&f).lines().count();
    assert_eq!(changed, depth + 2, "not every level changed: {}", stderr(&o));
    assert_eq!(owner(&root.join("etc")), (0, 0));
    assert_eq!(owner(root.path()), (0, 0));
}

/// A million entries in one directory: --chown changes them all, and peak
/// memory stays small (measured with GNU time), then a second run changes
/// nothing. DOCKHAND_ADV_ENTRIES overrides the count.
#[test]
fn chown_of_a_million_entry_directory_in_bounded_memory() {
    if !need_root("chown_million") {
        return;
    }
    let Some(root) = busybox_root("chown_million", PASSWD, GROUP) else {
        return;
    };
    let n: usize = std::env::var("DOCKHAND_ADV_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let big = root.join("data/big");
    std::fs::create_dir(&big).unwrap();
    let mut name = PathBuf::from(&big);
    for i in 0..n {
        name.push(format!("{i:07}"));
        std::fs::File::create(&name).unwrap();
        name.pop();
    }
    let root_s = root.path().to_str().unwrap();
    let cmd = [
        "chroot",
        root_s,
        "/usr/local/bin/runas",
        "--chown",
        "/data",
        "app",
        "true",
    ];
    let Some((o, kib)) = peak_rss_bounded("chown_million", &cmd, Duration::from_secs(300)) else {
        return;
    };
    assert_eq!(clean_exit(&o, &[0], "million"), 0, "{}", stderr(&o));
    assert_eq!(owner(&big.join("0000000")), (1000, 1000));
    assert_eq!(owner(&big.join(format!("{:07}", n - 1))), (1000, 1000));
    eprintln!("runas --chown over {n} entries: peak RSS {kib} KiB");
    assert!(kib < 32 * 1024, "peak RSS {kib} KiB for {n} entries");
    let (o, kib) = peak_rss_bounded("chown_million", &cmd, Duration::from_secs(300)).unwrap();
    assert_eq!(clean_exit(&o, &[0], "million again"), 0);
    assert!(stderr(&o).contains(&format!("{} seen", n + 2)), "{}", stderr(&o));
    assert!(stderr(&o).contains(" 0 changed"), "{}", stderr(&o));
    assert!(kib < 32 * 1024, "peak RSS {kib} KiB on the second run");
}

// ------------------------------------------------------------ healthcheck

fn hc(args: &[&str], limit: Duration) -> (Output, Duration) {
    run_bounded(Command::new(bin("healthcheck")).args(args), limit)
}

/// Headers that never end (a fast endless stream of header lines): refused
/// at the head limit long before the timeout, in bounded memory.
#[test]
fn endless_headers_are_cut_at_the_head_limit() {
    let port = server(|s| {
        if s.write_all(b"HTTP/1.1 200 OK\r\n").is_err() {
            return;
        }
        let line =
            b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(64);
        while s.write_all(&line).is_ok() {}
    });
    let url = format!("http://127.0.0.1:{port}/");
    // The verdict names the head limit, so it was not the (long) timeout.
    let (o, _) = hc(&["--timeout", "60s", &url], Duration::from_secs(90));
    assert_eq!(clean_exit(&o, &[1], "endless headers"), 1);
    assert!(stdout(&o).contains("headers larger than"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("timed out"), "{}", stdout(&o));
    let Some((o, kib)) = peak_rss_bounded(
        "endless_headers",
        &[bin("healthcheck").to_str().unwrap(), "--timeout", "60s", &url],
        Duration::from_secs(90),
    ) else {
        return;
    };
    assert_eq!(code(&o), 1);
    assert!(kib < 8 * 1024, "peak RSS {kib} KiB");
}

/// An endless stream of 1xx interim responses (each one complete, so the
/// head limit never trips): only the deadline ends it, and it does.
#[test]
fn endless_interim_responses_are_bounded_by_the_timeout() {
    let port = server(|s| {
        let hint = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".repeat(32);
        while s.write_all(&hint).is_ok() {}
    });
    let url = format!("http://127.0.0.1:{port}/");
    let (o, took) = hc(&["--timeout", "1s", &url], Duration::from_secs(30));
    assert_eq!(clean_exit(&o, &[1], "endless 103"), 1);
    assert!(stdout(&o).contains("timed out after 1s"), "{}", stdout(&o));
    assert!(took < Duration::from_secs(6), "{took:?}");
}

/// Garbage, a TLS alert, escape sequences in the status line, a bad or
/// overflowing Content-Length, a chunk size past 2^60: unhealthy, one
/// printable line, quickly.
#[test]
fn garbage_responses_are_unhealthy_on_one_printable_line() {
    let replies: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", garbage()),
        ("tls alert", b"\x15\x03\x01\x00\x02\x02\x46".to_vec()),
        (
            "escape in status",
            b"HTTP/1.1 2\x1b]0;pwned\x07 OK\r\n\r\n".to_vec(),
        ),
        ("escape in header", b"HTTP/1.1 200 OK\r\n\x1b[2J\r\n\r\n".to_vec()),
        (
            "nul in head",
            b"HTTP/1.1 200 OK\r\nA: \0\0\r\nContent-Length: x\r\n\r\n".to_vec(),
        ),
        (
            "overflowing length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        ),
        (
            "conflicting lengths",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(),
        ),
        (
            "negative length",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec(),
        ),
        ("not http", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec()),
        ("status 0", b"HTTP/1.1 000 Zero\r\n\r\n".to_vec()),
    ];
    for (what, reply) in replies {
        let port = server(move |s| {
            let _ = s.write_all(&reply);
        });
        // A long timeout: the garbage itself must end the probe.
        let (o, _) = hc(
            &["--timeout", "60s", &format!("http://127.0.0.1:{port}/")],
            Duration::from_secs(90),
        );
        assert_eq!(clean_exit(&o, &[1], what), 1, "{what}: {}", stdout(&o));
        printable(&stdout(&o), what);
        printable(&stderr(&o), what);
        assert_eq!(stdout(&o).lines().count(), 1, "{what}: {}", stdout(&o));
        assert!(stdout(&o).len() < 1024, "{what}: {}", stdout(&o));
        assert!(!stdout(&o).contains("timed out"), "{what}: {}", stdout(&o));
    }
    // A chunk size too big for any body, and an endless chunk extension,
    // when the body is read.
    for (what, reply) in [
        (
            "chunk 2^64",
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"[..],
        ),
        (
            "chunk no digits",
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
        ),
    ] {
        let port = server(move |s| {
            let _ = s.write_all(reply);
        });
        let (o, _) = hc(
            &[
                "--timeout",
                "3s",
                "--body-contains",
                "ok",
                &format!("http://127.0.0.1:{port}/"),
            ],
            Duration::from_secs(20),
        );
        assert_eq!(clean_exit(&o, &[1], what), 1);
        assert!(stdout(&o).contains("chunk"), "{what}: {}", stdout(&o));
    }
    let port = server(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;");
        let ext = [b'e'; 65536];
        while s.write_all(&ext).is_ok() {}
    });
    let url = format!("http://127.0.0.1:{port}/");
    let Some((o, kib)) = peak_rss_bounded(
        "endless_chunk_extension",
        &[
            bin("healthcheck").to_str().unwrap(),
            "--timeout",
            "2s",
            "--body-contains",
            "ok",
            &url,
        ],
        Duration::from_secs(30),
    ) else {
        return;
    };
    assert_eq!(clean_exit(&o, &[1], "endless chunk extension"), 1);
    assert!(kib < 8 * 1024, "peak RSS {kib} KiB");
}

// ------------------------------------------------------------ waitfor

fn waitfor(args: &[&str], limit: Duration) -> (Output, Duration) {
    let mut c = Command::new(bin("waitfor"));
    for v in ["WAITFOR_TARGETS", "WAITFOR_TIMEOUT", "WAIT_HOSTS", "WAIT_TIMEOUT"] {
        c.env_remove(v);
    }
    run_bounded(c.args(args), limit)
}

/// Fake PostgreSQL and Redis servers that answer garbage, escape sequences,
/// a 2 GB message length, endless streams: never "up", exit 124 at the
/// timeout, COMMAND never runs, and waitfor's own output stays printable.
#[test]
fn garbage_from_postgres_and_redis_ports_is_never_up() {
    let mut pg_replies: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", garbage()),
        ("escape in error", {
            let body = b"SFATAL\0C57P03\0M\x1b]0;pwned\x07starting\ny\0\0";
            let mut m = vec![b'E'];
            m.extend(((body.len() + 4) as u32).to_be_bytes());
            m.extend(body);
            m
        }),
        ("2 GB length", b"R\x7f\xff\xff\xff\0\0\0\0".to_vec()),
        ("http", b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
        ("short R", b"R\0\0\0\x05\0".to_vec()),
        ("unknown type", b"Z\0\0\0\x05I".to_vec()),
    ];
    let mut redis_replies: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", garbage()),
        ("escape in error", b"-ERR \x1b]0;pwned\x07\x1b[2J\r\n".to_vec()),
        ("pong without crlf", b"+PONG".to_vec()),
        ("pong in a bulk string", b"$4\r\nPONG\r\n".to_vec()),
        ("lowercase", b"+pong\r\n".to_vec()),
        ("nul", b"+PONG\0\r\n".to_vec()),
    ];
    let mut targets = Vec::new();
    for (scheme, replies) in [("postgres", &mut pg_replies), ("redis", &mut redis_replies)] {
        for (what, reply) in replies.drain(..) {
            let port = server(move |s| {
                let _ = s.write_all(&reply);
            });
            targets.push((format!("{scheme} {what}"), format!("{scheme}://127.0.0.1:{port}")));
        }
    }
    // Endless streams: megabytes with no line end and no message end.
    for scheme in ["postgres", "redis"] {
        let port = server(|s| {
            let junk = [b'A'; 65536];
            while s.write_all(&junk).is_ok() {}
        });
        targets.push((
            format!("{scheme} endless"),
            format!("{scheme}://127.0.0.1:{port}"),
        ));
    }
    let dir = TempDir::new("adv-waitfor");
    let marker = dir.join("ran");
    for (what, t) in &targets {
        let (o, took) = waitfor(
            &[
                "--timeout",
                "1500ms",
                "--attempt-timeout",
                "500ms",
                t,
                "--",
                "/bin/touch",
                marker.to_str().unwrap(),
            ],
            Duration::from_secs(30),
        );
        assert_eq!(clean_exit(&o, &[124], what), 124, "{what}: {}", stderr(&o));
        assert!(!marker.exists(), "{what}: COMMAND ran");
        printable(&stderr(&o), what);
        printable(&stdout(&o), what);
        for l in stderr(&o).lines() {
            assert!(l.len() < 2048, "{what}: a {} byte line", l.len());
        }
        assert!(took < Duration::from_secs(10), "{what}: {took:?}");
    }
    // Bounded memory against the endless streams, all at once.
    let all: Vec<&str> = targets.iter().map(|(_, t)| t.as_str()).collect();
    let mut cmd = vec![bin("waitfor").to_str().unwrap().to_string()];
    cmd.extend(["--timeout", "2s", "--attempt-timeout", "1s", "--quiet"].map(String::from));
    cmd.extend(all.iter().map(|s| s.to_string()));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let Some((o, kib)) = peak_rss_bounded("waitfor_garbage_rss", &cmd, Duration::from_secs(30)) else {
        return;
    };
    assert_eq!(clean_exit(&o, &[124], "all garbage"), 124);
    assert!(kib < 16 * 1024, "peak RSS {kib} KiB");
}

// ------------------------------------------------ fuzz inputs, replayed for real

/// The inputs of fuzz target `t`: the committed seeds (fuzz/corpus/t) and the
/// crash regressions (tests/fixtures/fuzz/t, where every input that ever
/// crashed a fuzz target is kept); with DOCKHAND_REPLAY_WORK set, also the
/// working corpus of the last `make fuzz`.
fn fuzz_inputs(t: &str) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut dirs = vec![
        repo().join("fuzz/corpus").join(t),
        repo().join("tests/fixtures/fuzz").join(t),
    ];
    // DOCKHAND_REPLAY_WORK=1: also the working corpus `make fuzz` grew (fuzz/target/corpus).
    if std::env::var_os("DOCKHAND_REPLAY_WORK").is_some() {
        dirs.push(repo().join("fuzz/target/corpus").join(t));
    }
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            if e.file_type().map(|f| f.is_file()).unwrap_or(false)
                && !e.file_name().to_string_lossy().ends_with(".md")
            {
                v.push((e.path().display().to_string(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    v.sort();
    v
}

/// Every seed and crash input of the byte-level fuzz targets, fed to the real
/// binaries the way they meet such bytes: ELF files and ld.so.caches to
/// ldcheck in a --root tree, HTTP replies to healthcheck, PostgreSQL and
/// Redis replies to waitfor. Each ends with a clean exit status, printable
/// output, within its bound.
#[test]
fn fuzz_inputs_replayed_against_the_binaries() {
    let elves = fuzz_inputs("elf");
    assert!(!elves.is_empty(), "no seeds in fuzz/corpus/elf");
    let root = TempDir::new("adv-replay");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    for (i, (_, bytes)) in elves.iter().enumerate() {
        std::fs::write(root.join(format!("app/elf{i}.so")), bytes).unwrap();
    }
    let o = ldcheck(root.path(), &["--symbols", "--each-file", "/app"]);
    clean_exit(&o, &[0, 1, 2], "elf inputs");
    for (name, bytes) in fuzz_inputs("ldcache") {
        std::fs::write(root.join("etc/ld.so.cache"), &bytes).unwrap();
        let o = ldcheck(root.path(), &["--format", "json", "/app"]);
        clean_exit(&o, &[0, 1], &name);
    }

    for (name, bytes) in fuzz_inputs("http") {
        let Some((_, reply)) = bytes.split_first() else {
            continue;
        };
        let reply = reply.to_vec();
        let port = server(move |s| {
            let _ = s.write_all(&reply);
        });
        let url = format!("http://127.0.0.1:{port}/");
        let (o, _) = hc(
            &["--timeout", "2s", "--body-contains", "hello", &url],
            Duration::from_secs(20),
        );
        clean_exit(&o, &[0, 1], &name);
        printable(&stdout(&o), &name);
        assert_eq!(stdout(&o).lines().count(), 1, "{name}: {}", stdout(&o));
    }

    let mut targets = Vec::new();
    for (name, bytes) in fuzz_inputs("postgres") {
        let port = server(move |s| {
            let _ = s.write_all(&bytes);
        });
        targets.push((name, format!("postgres://127.0.0.1:{port}")));
    }
    for (name, bytes) in fuzz_inputs("redis") {
        let Some((&flag, reply)) = bytes.split_first() else {
            continue;
        };
        let reply = reply.to_vec();
        let port = server(move |s| {
            let _ = s.write_all(&reply);
        });
        let auth = if flag & 1 == 1 { ":pw@" } else { "" };
        let db = if flag & 2 == 2 { "/1" } else { "" };
        targets.push((name, format!("redis://{auth}127.0.0.1:{port}{db}")));
    }
    for (name, t) in targets {
        let (o, _) = waitfor(
            &["--timeout", "600ms", "--attempt-timeout", "300ms", &t],
            Duration::from_secs(20),
        );
        clean_exit(&o, &[0, 124], &name);
        printable(&stderr(&o), &name);
    }
}

/// The users fuzz inputs (passwd NUL group NUL spec) replayed with runas in
/// a chroot: a clean exit status and, when it ran the command, the ids
/// runas promised.
#[test]
fn fuzz_users_inputs_replayed_with_runas() {
    if !need_root("fuzz_users_replay") {
        return;
    }
    let inputs = fuzz_inputs("users");
    assert!(!inputs.is_empty(), "no seeds in fuzz/corpus/users");
    for (name, bytes) in inputs {
        let mut parts = bytes.splitn(3, |&b| b == 0);
        let passwd = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let group = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        // An argument cannot hold a NUL: the spec ends at the first one.
        let spec = parts
            .next()
            .unwrap_or_default()
            .split(|&b| b == 0)
            .next()
            .unwrap_or_default();
        let spec = String::from_utf8_lossy(spec).into_owned();
        let Some(root) = busybox_root("fuzz_users_replay", &passwd, &group) else {
            return;
        };
        let o = runas_in(root.path(), &[&spec, "id", "-u"]);
        let c = clean_exit(&o, &[0, 1, 2], &name);
        if c == 0 {
            let uid: u64 = stdout(&o)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {}", stdout(&o)));
            assert!(uid <= i32::MAX as u64, "{name}: uid {uid}");
        } else {
            assert!(stdout(&o).is_empty(), "{name}: ran the command anyway");
        }
    }
}

// ------------------------------------------- check errors: kinds, not text

/// A server whose own words say "timed out" is unhealthy with those words;
/// only a probe that ran out of time says "timed out after 3s".
#[test]
fn server_text_saying_timed_out_is_not_taken_for_a_timeout() {
    let port = server(|s| {
        let _ = s.write_all(b"-ERR timed out\r\n");
    });
    let t = format!("redis://127.0.0.1:{port}");
    let (o, _) = hc(&["--timeout", "3s", &t], Duration::from_secs(20));
    assert_eq!(code(&o), 1, "{o:?}");
    assert_eq!(
        stdout(&o).trim_end(),
        format!("unhealthy: redis://127.0.0.1:{port} -> redis said: ERR timed out"),
    );
    let port = server(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    let url = format!("http://127.0.0.1:{port}/");
    let (o, _) = hc(
        &["--timeout", "3s", "--body-contains", "timed out", &url],
        Duration::from_secs(20),
    );
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(
        stdout(&o).contains("-> status 200, body does not contain \"timed out\"")
            && !stdout(&o).contains("after 3s"),
        "{o:?}"
    );
}

/// A unix socket path longer than sun_path can never be connected to: a
/// usage error at once (one line, exit 2), not a retry until the timeout.
#[test]
fn unix_socket_paths_longer_than_sun_path_are_usage_errors() {
    let long = format!("/tmp/{}", "s".repeat(103));
    assert_eq!(long.len(), 108);
    let target = format!("unix://{long}");
    let url = "http://localhost/health";
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("waitfor", vec!["--timeout", "0", &target]),
        ("ready", vec!["--timeout", "0", "--when", &target, "--print", "x"]),
        ("healthcheck", vec![&target]),
        ("healthcheck", vec!["--unix-socket", &long, url]),
    ];
    for (tool, args) in runs {
        let mut c = Command::new(bin(tool));
        for v in [
            "WAITFOR_TARGETS",
            "WAIT_HOSTS",
            "READY_WHEN",
            "HEALTHCHECK_TARGET",
            "NOTIFY_SOCKET",
        ] {
            c.env_remove(v);
        }
        let (o, _) = run_bounded(c.args(&args), Duration::from_secs(20));
        assert_eq!(code(&o), 2, "{tool} {args:?}: {o:?}");
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{tool} {args:?}: {e}");
        assert!(
            e.starts_with(&format!("{tool}: "))
                && e.contains("socket path is too long (108 bytes; at most 107)"),
            "{tool} {args:?}: {e}"
        );
    }
    // 107 bytes is the most that fits: accepted, then checked (and down).
    let fits = format!("unix:///tmp/{}", "s".repeat(102));
    let (o, _) = hc(&["--timeout", "1s", &fits], Duration::from_secs(20));
    assert_eq!(code(&o), 1, "{o:?}");
}

// ------------------------------------------------- runas: deep trees, few resources

/// A chain of `depth` directories named `name` under root/data/c, built from
/// the bottom up with short paths only, with a file at the bottom.
fn deep_chain(root: &Path, depth: usize, name: &str) {
    let data = root.join("data");
    std::fs::create_dir(data.join("c")).unwrap();
    std::fs::write(data.join("c/leaf"), "x").unwrap();
    for _ in 1..depth {
        std::fs::create_dir(data.join("t")).unwrap();
        std::fs::rename(data.join("c"), data.join("t").join(name)).unwrap();
        std::fs::rename(data.join("t"), data.join("c")).unwrap();
    }
}

/// (seen, changed) from runas's summary line for /data.
fn chown_summary(err: &str) -> (u64, u64) {
    let line = err
        .lines()
        .find(|l| l.starts_with("runas: /data: "))
        .unwrap_or_else(|| panic!("no summary in: {err}"));
    let num = |word: &str| -> u64 {
        let i = line.find(&format!(" {word}")).unwrap_or_else(|| panic!("{line}"));
        line[..i].rsplit([' ', ';']).next().unwrap().parse().unwrap()
    };
    (num("seen"), num("changed"))
}

/// One walker thread (taskset -c 0: runas runs one per CPU it may use, as
/// under docker run --cpus 1) over a 4000-deep chain of 255-byte names
/// (paths of a megabyte): every level is changed, the service starts, and
/// peak memory stays far below what a path copy per level costs (2 GB).
#[test]
fn chown_of_a_4000_deep_chain_of_long_names_on_one_cpu_in_bounded_memory() {
    if !need_root("chown_deep_long") || !have("taskset", &["--version"]) {
        return;
    }
    let Some(root) = busybox_root("chown_deep_long", PASSWD, GROUP) else {
        return;
    };
    let depth = 4000;
    deep_chain(root.path(), depth, &"n".repeat(255));
    let root_s = root.path().to_str().unwrap();
    let cmd = [
        "taskset",
        "-c",
        "0",
        "chroot",
        root_s,
        "/usr/local/bin/runas",
        "--chown",
        "/data",
        "app",
        "sh",
        "-c",
        "echo started",
    ];
    let Some((o, kib)) = peak_rss_bounded("chown_deep_long", &cmd, Duration::from_secs(300)) else {
        return;
    };
    eprintln!("4000-deep chain of 255-byte names, one thread: peak RSS {kib} KiB");
    assert_eq!(clean_exit(&o, &[0], "deep long chain"), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "started\n");
    // /data, the chain, the leaf.
    let n = depth as u64 + 2;
    assert_eq!(chown_summary(&stderr(&o)), (n, n), "{}", stderr(&o));
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
    assert_eq!(owner(&root.join("etc")), (0, 0));
}

/// 5000 levels with at most 64 descriptors, on one CPU and on all: runas
/// must finish the walk (not stop with EMFILE) and start the service.
#[test]
fn chown_of_a_5000_deep_tree_with_64_fds_succeeds() {
    if !need_root("chown_deep_64") || !have("taskset", &["--version"]) {
        return;
    }
    let Some(root) = busybox_root("chown_deep_64", PASSWD, GROUP) else {
        return;
    };
    let depth = 5000;
    deep_chain(root.path(), depth, "d");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for all in [format!("0-{}", cpus - 1), "0".to_string()] {
        let (o, _) = run_bounded(
            Command::new("taskset")
                .args(["-c", &all, "chroot"])
                .arg(root.path())
                .args([
                    "/bin/sh",
                    "-c",
                    "ulimit -n 64 && exec /usr/local/bin/runas --chown /data app sh -c 'echo started'",
                ])
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            Duration::from_secs(300),
        );
        assert_eq!(
            clean_exit(&o, &[0], "5000 deep, 64 fds"),
            0,
            "cpus {all}: {}",
            stderr(&o)
        );
        assert_eq!(stdout(&o), "started\n");
        let n = depth as u64 + 2;
        assert_eq!(chown_summary(&stderr(&o)), (n, n), "cpus {all}: {}", stderr(&o));
        let o = run(Command::new("chown").args(["-R", "0:0"]).arg(root.join("data")));
        assert!(o.status.success());
    }
    assert_eq!(owner(&root.join("etc")), (0, 0));
}

/// Device nodes in a volume are left alone, with a warning whose name is
/// escaped: a name with a newline and an escape sequence neither forges a
/// line nor reaches the terminal raw. --chown-devices (RUNAS_CHOWN_DEVICES)
/// changes them.
#[test]
fn chown_leaves_device_nodes_alone_and_escapes_names_in_warnings() {
    if !need_root("chown_devices") {
        return;
    }
    let Some(root) = busybox_root("chown_devices", PASSWD, GROUP) else {
        return;
    };
    let data = root.join("data");
    let evil = "evil\nrunas: forged line\x1b[2J";
    for (name, kind, major, minor) in [
        ("null", "c", "1", "3"),
        (evil, "c", "1", "5"),
        ("loop", "b", "7", "0"),
    ] {
        let o = run(Command::new("mknod")
            .arg(data.join(name))
            .args([kind, major, minor]));
        assert!(o.status.success(), "mknod: {}", stderr(&o));
    }
    // A hard-linked file with the same hostile name in another directory.
    std::fs::create_dir(data.join("h")).unwrap();
    std::fs::write(data.join("h").join(evil), "x").unwrap();
    std::fs::hard_link(data.join("h").join(evil), data.join("h/other")).unwrap();
    let go = |env: Option<(&str, &str)>| {
        let mut c = Command::new("chroot");
        c.arg(root.path())
            .args(["/usr/local/bin/runas", "--chown", "/data", "app", "true"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        run_bounded(&mut c, Duration::from_secs(60)).0
    };
    let o = go(None);
    let err = stderr(&o);
    assert_eq!(clean_exit(&o, &[0], "devices"), 0, "{err}");
    printable(&err, "runas warnings");
    assert!(!err.lines().any(|l| l.starts_with("runas: forged")), "{err}");
    assert!(
        err.contains("/data/evil\\u{a}runas: forged line\\u{1b}[2J: left alone: a device node"),
        "{err}"
    );
    assert!(err.contains("/data/loop: left alone: a device node"), "{err}");
    assert!(
        err.contains("/data/h/evil\\u{a}runas: forged line\\u{1b}[2J: left alone: it has 2 hard links"),
        "{err}"
    );
    assert!(err.contains("3 device nodes"), "{err}");
    for name in ["null", evil, "loop", "h/other"] {
        assert_eq!(owner(&data.join(name)), (0, 0), "{name:?} changed");
    }
    assert_eq!(owner(&data.join("h")), (1000, 1000));
    let o = go(Some(("RUNAS_CHOWN_DEVICES", "1")));
    assert_eq!(clean_exit(&o, &[0], "devices asked for"), 0, "{}", stderr(&o));
    for name in ["null", evil, "loop"] {
        assert_eq!(owner(&data.join(name)), (1000, 1000), "{name:?} not changed");
    }
    assert_eq!(owner(&data.join("h/other")), (0, 0));
}

// ------------------------------------------ ldcheck: names times directories

/// One small library with a DT_RPATH of 1,100 existing empty directories and
/// 6,000 distinct DT_NEEDED names found nowhere: a search visits every
/// directory for every name, and a report that listed each name's searched
/// directories would hold 6.6 million of them (53 MB of text, 1 GB of memory
/// before the cut). The report keeps a count and the first few places per
/// name, says how many it left out, and stays small in both forms.
#[test]
fn missing_names_times_rpath_directories_stay_small() {
    if !have_gcc("names_times_dirs") {
        return;
    }
    const DIRS: usize = 1100;
    const NAMES: usize = 6000;
    let root = TempDir::new("adv-ldnxd");
    let work = TempDir::new("adv-ldnxd-src");
    build_elves(work.path());
    let b = Elf64(std::fs::read(work.join("libb.so.1")).unwrap());
    // Two base-36 digits: "/d/xx" is 5 bytes, the whole DT_RPATH 6.6 KB.
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let dirs: Vec<String> = (0..DIRS)
        .map(|i| format!("/d/{}{}", digits[i / 36] as char, digits[i % 36] as char))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(root.join(&d[1..])).unwrap();
    }
    std::fs::create_dir_all(root.join("app")).unwrap();

    // A new string table (the DT_RPATH, then the names) and after it a new
    // dynamic section: the names, the DT_RPATH, the table, DT_NULL.
    let mut e = b.clone();
    let mut data = dirs.join(":").into_bytes();
    data.push(0);
    let mut needed = Vec::new();
    for i in 0..NAMES {
        needed.push(data.len() as u64);
        data.extend_from_slice(format!("libnowhere{i:05}.so").as_bytes());
        data.push(0);
    }
    data.resize(data.len().next_multiple_of(16), 0);
    let dyn_at = data.len();
    let mut dynamic: Vec<(u64, u64)> = needed.into_iter().map(|o| (DT_NEEDED, o)).collect();
    dynamic.extend([
        (DT_RPATH, 0),
        (DT_STRTAB, 0),
        (DT_STRSZ, dyn_at as u64),
        (DT_NULL, 0),
    ]);
    data.resize(dyn_at + dynamic.len() * 16, 0);
    let va = e.append_load(&data);
    for (i, (tag, val)) in dynamic.into_iter().enumerate() {
        let val = if tag == DT_STRTAB { va } else { val };
        data[dyn_at + i * 16..dyn_at + i * 16 + 8].copy_from_slice(&tag.to_le_bytes());
        data[dyn_at + i * 16 + 8..dyn_at + i * 16 + 16].copy_from_slice(&val.to_le_bytes());
    }
    let off = e.0.len() - data.len();
    e.0[off..].copy_from_slice(&data);
    let d = e.phdr(PT_DYNAMIC);
    e.set64(d + 8, (off + dyn_at) as u64);
    e.set64(d + 16, va + dyn_at as u64);
    e.set64(d + 24, va + dyn_at as u64);
    e.set64(d + 32, (data.len() - dyn_at) as u64);
    e.set64(d + 40, (data.len() - dyn_at) as u64);
    std::fs::write(root.join("app/libmany.so"), &e.0).unwrap();

    let r = root.path().to_str().unwrap();
    for format in ["text", "json"] {
        let cmd = [
            bin("ldcheck").to_str().unwrap(),
            "--root",
            r,
            "--format",
            format,
            "/app",
        ]
        .map(str::to_string);
        let Some((o, kib)) = peak_rss_bounded(
            "names_times_dirs",
            &cmd.iter().map(String::as_str).collect::<Vec<_>>(),
            Duration::from_secs(120),
        ) else {
            return;
        };
        assert_eq!(clean_exit(&o, &[1], format), 1, "{format}");
        assert!(kib < 200 << 10, "{format}: peak RSS {kib} KiB");
        let out = stdout(&o);
        assert!(out.len() < 5 << 20, "{format}: report of {} bytes", out.len());
        // Searched: the 1,100 directories (none with a hwcaps subdirectory)
        // and the 4 default ones; no ld.so.cache in this root.
        let searched = DIRS + 4;
        if format == "text" {
            assert!(
                out.contains(&format!("{NAMES} missing")),
                "{}",
                &out[out.len().saturating_sub(300)..]
            );
            let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("  searched: ")).collect();
            assert_eq!(lines.len(), NAMES);
            for l in lines {
                assert!(l.starts_with("  searched: /d/00, /d/01, "), "{l}");
                assert!(l.ends_with(" more not shown"), "{l}");
                let shown = l.split(", ").count();
                assert!(
                    l.contains(&format!(" and {} more not shown", searched - shown)),
                    "{l}"
                );
            }
        } else {
            // serde_json's pretty form: one field a line.
            let total = format!("\"tried_total\": {searched}");
            assert_eq!(out.matches(&total).count(), NAMES, "{}", &out[..2000]);
            let first = "\"tried\": [\n        \"/d/00\",\n        \"/d/01\",";
            assert_eq!(out.matches(first).count(), NAMES, "{}", &out[..2000]);
            // The first few places only: far fewer quoted directories than 6.6 million.
            assert!(out.matches("\"/d/").count() < NAMES * 32);
        }
    }
}

// ------------------------------------------------ healthcheck: planted state files

/// One planted-state case: what is put in /tmp before the probes, the
/// `--state` flag (None: the default path), a shell check run after them
/// with the lines it must print, and the warning (None: no warning at all).
struct Planted {
    what: &'static str,
    state: Option<&'static str>,
    plant: &'static str,
    check: &'static str,
    want: &'static [&'static str],
    warning: Option<&'static str>,
}

/// Whatever sits at the state path (a symlink, a FIFO, a directory, a
/// directory at the old `<state>.tmp`, or a planted private directory), the
/// probes keep counting and PID 1 gets its signal after N failures; nothing
/// is written through a link, nothing blocks, and the warning is one line,
/// once. Each case runs in its own PID and mount namespace: PID 1 there is a
/// shell that traps TERM, and /tmp is a fresh tmpfs.
#[test]
fn planted_state_files_never_stop_the_count() {
    const T: &str = "planted_state_files_never_stop_the_count";
    if !need_root(T) {
        return;
    }
    if !have("unshare", &["--version"]) {
        skip(T, "needs unshare (util-linux)");
        return;
    }
    let cases = [
        Planted {
            what: "symlink to a file",
            state: Some("/tmp/hc.state"),
            plant: "echo keep > /tmp/victim; ln -s /tmp/victim /tmp/hc.state",
            check: "cat /tmp/victim; for f in /tmp/.hc.state.*.aside; do [ -L \"$f\" ] && echo aside-is-the-link; done",
            want: &["keep", "aside-is-the-link"],
            warning: Some("state file /tmp/hc.state was a symbolic link; set aside as /tmp/.hc.state."),
        },
        Planted {
            what: "dangling symlink",
            state: Some("/tmp/hc.state"),
            plant: "ln -s /tmp/made-through-the-link /tmp/hc.state",
            check: "[ -e /tmp/made-through-the-link ] || echo nothing-made",
            want: &["nothing-made"],
            warning: Some("state file /tmp/hc.state was a symbolic link; set aside as"),
        },
        Planted {
            what: "FIFO",
            state: Some("/tmp/hc.state"),
            plant: "mkfifo /tmp/hc.state",
            check: "for f in /tmp/.hc.state.*.aside; do [ -p \"$f\" ] && echo aside-is-the-fifo; done",
            want: &["aside-is-the-fifo"],
            warning: Some("state file /tmp/hc.state was a FIFO; set aside as"),
        },
        Planted {
            what: "directory",
            state: Some("/tmp/hc.state"),
            plant: "mkdir /tmp/hc.state && echo keep > /tmp/hc.state/inner",
            check: "cat /tmp/.hc.state.*.aside/inner",
            want: &["keep"],
            warning: Some("state file /tmp/hc.state was a directory; set aside as"),
        },
        Planted {
            what: "directory at <state>.tmp",
            state: Some("/tmp/hc.state"),
            plant: "mkdir /tmp/hc.state.tmp && echo keep > /tmp/hc.state.tmp/inner",
            check: "cat /tmp/hc.state.tmp/inner",
            want: &["keep"],
            warning: None,
        },
        Planted {
            what: "symlink at the private directory",
            state: None,
            plant: "mkdir -m 777 /tmp/elsewhere && ln -s /tmp/elsewhere /tmp/dockhand-0",
            check: "echo \"elsewhere:$(ls -A /tmp/elsewhere)\"; stat -c %F:%a:%u /tmp/dockhand-0",
            want: &["elsewhere:", "directory:700:0"],
            warning: Some("state directory /tmp/dockhand-0 was a symbolic link; set aside as /tmp/.dockhand-0."),
        },
        Planted {
            what: "someone else's private directory",
            state: None,
            plant: "mkdir -m 777 /tmp/dockhand-0 && touch /tmp/dockhand-0/x && chown -R 4242 /tmp/dockhand-0",
            check: "stat -c %F:%a:%u /tmp/dockhand-0; ls /tmp/.dockhand-0.*.aside",
            want: &["directory:700:0", "x"],
            warning: Some("state directory /tmp/dockhand-0 was owned by uid 4242; set aside as"),
        },
    ];
    for c in cases {
        let state = c.state.map(|s| format!("--state {s} ")).unwrap_or_default();
        // The fresh /tmp hides a checkout under /tmp (where CI may clone):
        // the binary is held open on fd 9 first and run through it.
        let probe = format!("/proc/self/fd/9 --kill-pid1 --kill-after 3 {state}file:///tmp/absent");
        let script = format!(
            "exec 9<'{bin}' || exit 98\n\
             mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 99\n{plant}\n\
             trap 'echo got-term; {check}; exit 42' TERM\n\
             {probe}; {probe}; {probe}\necho not-signalled; {check}; exit 0\n",
            bin = bin("healthcheck").display(),
            plant = c.plant,
            check = c.check,
        );
        // The FIFO case hangs if anything opens it blocking: bounded.
        let (o, _) = run_bounded(
            Command::new("unshare").args(["--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", &script]),
            Duration::from_secs(60),
        );
        let what = c.what;
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(code(&o), 42, "{what}: PID 1 was not signalled: {o:?}");
        for n in 1..=3 {
            assert!(
                lines
                    .get(n - 1)
                    .is_some_and(|l| l.contains(&format!("(failure {n} of 3"))),
                "{what}: probe {n}: {o:?}"
            );
        }
        assert!(
            lines[2].ends_with("; sending SIGTERM to PID 1 (sh))"),
            "{what}: {o:?}"
        );
        assert_eq!(lines.get(3), Some(&"got-term"), "{what}: {o:?}");
        for w in c.want {
            assert!(lines[4..].contains(w), "{what}: the check wants {w:?}: {o:?}");
        }
        let err = stderr(&o);
        match c.warning {
            Some(w) => {
                assert_eq!(err.lines().count(), 1, "{what}: one warning, once: {o:?}");
                assert!(
                    err.starts_with("healthcheck: ") && err.contains(w),
                    "{what}: {o:?}"
                );
            }
            None => assert!(err.is_empty(), "{what}: {o:?}"),
        }
    }
}

/// /etc/passwd or /etc/group as a FIFO (no writer ever comes): runas says so
/// on one line and exits 1 instead of waiting forever in open or read; a
/// symlink to a regular file is followed, as the C library does.
#[test]
fn passwd_or_group_as_a_fifo_is_refused_without_hanging() {
    if !need_root("passwd_fifo") {
        return;
    }
    for file in ["passwd", "group"] {
        let Some(root) = busybox_root("passwd_fifo", "app:x:1000:1000::/:/bin/sh\n", "app:x:1000:\n") else {
            return;
        };
        let p = root.join("etc").join(file);
        std::fs::remove_file(&p).unwrap();
        let o = run(Command::new("mkfifo").arg(&p));
        assert!(o.status.success(), "mkfifo: {}", stderr(&o));
        let o = runas_in(root.path(), &["app", "id", "-u"]);
        assert_eq!(clean_exit(&o, &[1, 2], file), 1, "{}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("runas: ") && err.contains(&format!("/etc/{file} is a FIFO")),
            "{err}"
        );
        assert!(stdout(&o).is_empty());
        // The same file, moved elsewhere and linked: followed and read.
        std::fs::remove_file(&p).unwrap();
        let content = if file == "passwd" {
            "app:x:1000:1000::/:/bin/sh\n"
        } else {
            "app:x:1000:\n"
        };
        std::fs::write(root.join("tmp").join(file), content).unwrap();
        std::os::unix::fs::symlink(format!("../tmp/{file}"), &p).unwrap();
        let o = runas_in(root.path(), &["app", "id", "-u"]);
        assert_eq!(clean_exit(&o, &[0], file), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "1000");
    }
}

/// Not root, and someone else (here root) owns /tmp/dockhand-<uid> in the
/// sticky /tmp: it cannot be set aside, so nothing is counted, and the line
/// says why and what to do; the planted directory is left as it was.
#[test]
fn a_private_directory_taken_by_another_user_fails_closed() {
    const T: &str = "a_private_directory_taken_by_another_user_fails_closed";
    if !need_root(T) {
        return;
    }
    if !have("unshare", &["--version"]) || !have("setpriv", &["--version"]) {
        skip(T, "needs unshare and setpriv (util-linux)");
        return;
    }
    // The binary is held open on fd 9 before the fresh /tmp hides a
    // checkout under /tmp (where CI may clone).
    let probe =
        "setpriv --reuid 4242 --regid 4242 --clear-groups /proc/self/fd/9 --kill-pid1 file:///tmp/absent";
    let script = format!(
        "exec 9<'{}' || exit 98\n\
         mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 99\n\
         mkdir -m 700 /tmp/dockhand-4242 && touch /tmp/dockhand-4242/keep\n\
         {probe}; {probe}; echo \"exit $?\"; ls -A /tmp; stat -c %u /tmp/dockhand-4242\n",
        bin("healthcheck").display()
    );
    let (o, _) = run_bounded(
        Command::new("unshare").args(["--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", &script]),
        Duration::from_secs(60),
    );
    assert_eq!(code(&o), 0, "{o:?}");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let want = "(failures not counted: state directory /tmp/dockhand-4242: was owned by uid 0 and cannot be \
                set aside: operation not permitted; pass --state FILE)";
    for l in &lines[..2] {
        assert!(
            l.starts_with("unhealthy: file:///tmp/absent -> ") && l.ends_with(want),
            "{o:?}"
        );
    }
    assert_eq!(lines[2..], ["exit 1", "dockhand-4242", "0"], "{o:?}");
}
