//! Writing to stdout and stderr without panicking: a closed pipe on stdout
//! (`healthcheck ... | head -0`) is not an error worth a crash.

use std::io::Write;

/// Print one line on stdout; a broken pipe or any other write error is ignored.
pub fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Print one line on stderr, prefixed with the tool name.
pub fn warn(tool: &str, s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{tool}: {s}");
}
