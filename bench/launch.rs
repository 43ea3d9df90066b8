//! The benchmark's launcher: runs one command and reports its wall time, peak RSS and CPU time.
//!
//! Why not measure from Python: the kernel carries the old address space's high-water RSS across
//! exec, so a child spawned by the 20 MB Python harness reports at least 20 MB. This launcher is a
//! small static program: the command is forked from it, so its peak RSS starts from the
//! launcher's few anonymous pages (bench.py measures that floor and reports it), and the time is
//! taken right around fork and wait4, without the harness's own spawn cost.
//!
//! Usage: launch PROGRAM [ARGS...]  (PROGRAM an absolute path; stdio inherited)
//! Writes "STATUS MAXRSS_KIB UTIME_NS STIME_NS WALL_NS\n" to fd 3, STATUS as wait4 gives it.
//! Built by bench/run.sh with rustc alone (no crates); not part of the shipped tools.

use std::ffi::{c_char, c_int, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

#[repr(C)]
struct Rusage {
    utime: [i64; 2], // struct timeval: seconds, microseconds
    stime: [i64; 2],
    maxrss: i64, // KiB
    rest: [i64; 13],
}

extern "C" {
    fn fork() -> c_int;
    fn execv(path: *const c_char, argv: *const *const c_char) -> c_int;
    fn _exit(code: c_int) -> !;
    fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut Rusage) -> c_int;
}

fn main() {
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|a| CString::new(a.as_bytes()).expect("NUL in argument"))
        .collect();
    if args.is_empty() {
        eprintln!("launch: usage: launch PROGRAM [ARGS...]");
        std::process::exit(2);
    }
    // Everything the child touches is allocated before fork: it only calls execv and _exit.
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let start = Instant::now();
    // SAFETY: single-threaded program; the child calls only async-signal-safe execv and _exit.
    let pid = unsafe { fork() };
    if pid == 0 {
        // SAFETY: argv is a NULL-terminated array of valid C strings that outlive the call.
        unsafe {
            execv(argv[0], argv.as_ptr());
            _exit(127)
        }
    }
    if pid < 0 {
        eprintln!("launch: fork: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    let mut status: c_int = 0;
    let mut ru = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: status and ru are valid, writable and of the layout wait4 expects (x86_64/aarch64 LP64).
    while unsafe { wait4(pid, &mut status, 0, &mut ru) } < 0 {
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            eprintln!("launch: wait4: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
    }
    let wall = start.elapsed().as_nanos();
    let ns = |tv: [i64; 2]| tv[0] * 1_000_000_000 + tv[1] * 1000;
    // SAFETY: fd 3 is opened for us by the harness and owned by nobody else in this process.
    let mut out = unsafe { File::from_raw_fd(3) };
    let line = format!(
        "{} {} {} {} {}\n",
        status,
        ru.maxrss,
        ns(ru.utime),
        ns(ru.stime),
        wall
    );
    if out.write_all(line.as_bytes()).is_err() {
        std::process::exit(1);
    }
}
