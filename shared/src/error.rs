//! One error type for every tool. `code()` is the process exit status, and
//! this table is the one place it is defined:
//!
//! | code    | meaning                                                  |
//! |---------|----------------------------------------------------------|
//! | 0       | ok                                                       |
//! | 1       | check failed, unhealthy, or the tool itself failed       |
//! | 2       | usage error: a bad flag, environment variable or argument|
//! | 124     | timed out                                                |
//! | 126     | the command was found but cannot be executed             |
//! | 127     | the command was not found                                |
//! | 128 + N | the command (or the tool) was killed by signal N         |

use std::fmt;

/// What went wrong, and so which exit status the tool ends with.
#[derive(Debug)]
pub enum Error {
    /// Exit 1: a check failed or the tool could not do its job.
    Failed(String),
    /// Exit 2: bad command line or environment; nothing was changed.
    Usage(String),
    /// Exit 124: a deadline passed.
    Timeout(String),
    /// Exit 126: the command exists but could not be executed.
    CannotExecute(String),
    /// Exit 127: the command was not found.
    NotFound(String),
    /// Exit 128+N: ended by signal N (the message may be empty).
    Signal(i32, String),
    /// Exit with this status; anything worth saying was already printed.
    Exit(i32),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    pub fn timeout(msg: impl Into<String>) -> Self {
        Error::Timeout(msg.into())
    }

    /// The exit status this error ends the process with (see the module table).
    pub fn code(&self) -> i32 {
        match self {
            Error::Failed(_) => 1,
            Error::Usage(_) => 2,
            Error::Timeout(_) => 124,
            Error::CannotExecute(_) => 126,
            Error::NotFound(_) => 127,
            Error::Signal(n, _) => 128 + n,
            Error::Exit(c) => *c,
        }
    }

    /// The one-line message, or `None` when nothing should be printed.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Failed(m)
            | Error::Usage(m)
            | Error::Timeout(m)
            | Error::CannotExecute(m)
            | Error::NotFound(m)
            | Error::Signal(_, m) => (!m.is_empty()).then_some(m.as_str()),
            Error::Exit(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or(""))
    }
}

impl std::error::Error for Error {}

/// An OS error's text without its " (os error N)" suffix, for a one-line
/// message: "No route to host (os error 113)" gives "No route to host".
pub fn without_errno(msg: &str) -> &str {
    msg.split(" (os error").next().unwrap_or(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_table() {
        assert_eq!(Error::failed("x").code(), 1);
        assert_eq!(Error::usage("x").code(), 2);
        assert_eq!(Error::timeout("x").code(), 124);
        assert_eq!(Error::CannotExecute("x".into()).code(), 126);
        assert_eq!(Error::NotFound("x".into()).code(), 127);
        assert_eq!(Error::Signal(15, String::new()).code(), 143);
        assert_eq!(Error::Exit(3).code(), 3);
    }

    #[test]
    fn empty_messages_print_nothing() {
        assert_eq!(Error::Signal(9, String::new()).message(), None);
        assert_eq!(Error::Exit(1).message(), None);
        assert_eq!(Error::failed("boom").message(), Some("boom"));
    }
}
