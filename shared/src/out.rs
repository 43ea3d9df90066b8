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

/// `b` made safe to print: text stays as it is, but every control character
/// (line ends, ESC, DEL, the C1 range), every bidirectional override and every
/// byte that is not UTF-8 is written as an escape (`\u{1b}`, `\xff`). Names
/// from a filesystem go through this before they reach a message, so a name
/// cannot forge a line of output or drive the terminal.
pub fn escape(b: &[u8]) -> std::borrow::Cow<'_, str> {
    let clean = |c: char| !needs_escape(c);
    if let Ok(s) = std::str::from_utf8(b) {
        if s.chars().all(clean) {
            return std::borrow::Cow::Borrowed(s);
        }
    }
    let mut s = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if needs_escape(c) {
                s.extend(c.escape_unicode());
            } else {
                s.push(c);
            }
        }
        for x in chunk.invalid() {
            s.push_str(&format!("\\x{x:02x}"));
        }
    }
    std::borrow::Cow::Owned(s)
}

/// `escape` for a path.
pub fn escape_path(p: &std::path::Path) -> std::borrow::Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    escape(p.as_os_str().as_bytes())
}

fn needs_escape(c: char) -> bool {
    // Controls, and the bidi embeddings, overrides and isolates that reorder
    // what follows them on screen.
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_a_line_or_drive_a_terminal() {
        assert!(matches!(
            escape(b"plain/name \xc3\xa9"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape(b"plain/name \xc3\xa9"), "plain/name \u{e9}");
        assert_eq!(escape(b"a\nrunas: x\x1b[2J"), "a\\u{a}runas: x\\u{1b}[2J");
        assert_eq!(escape(b"bad\xff\xfe."), "bad\\xff\\xfe.");
        assert_eq!(escape("\u{9b}\u{202e}txt".as_bytes()), "\\u{9b}\\u{202e}txt");
        assert_eq!(escape(b"del\x7f\ttab\r"), "del\\u{7f}\\u{9}tab\\u{d}");
    }
}
