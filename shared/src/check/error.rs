//! Why a check attempt did not find its target up: a kind, which code
//! branches on (retry pace, how a timeout is reported), and a one-line
//! message, which is for people only and may hold text the server sent.

use std::fmt;

/// What kind of failure an attempt saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The kernel refused the connection: nothing listens there yet.
    Refused,
    /// The socket or file the target names does not exist (yet).
    Missing,
    /// The attempt's deadline passed before it finished.
    TimedOut,
    /// The service answered that it is not ready (PostgreSQL 57P03, Redis LOADING).
    NotReady,
    /// The host name did not resolve (from getaddrinfo's code).
    Lookup,
    /// Anything else: a bad reply, a status not accepted, an I/O error.
    Other,
}

/// A failed attempt: its kind and what to tell the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    pub kind: Kind,
    pub message: String,
}

impl CheckError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        CheckError {
            kind,
            message: message.into(),
        }
    }

    /// The attempt's deadline passed.
    pub fn timed_out() -> Self {
        CheckError::new(Kind::TimedOut, "timed out")
    }

    /// The same failure, its message prefixed with `what: `.
    pub fn context(self, what: &str) -> Self {
        CheckError {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }

    /// The same failure, `more` appended to its message (e.g. where it happened).
    pub fn suffixed(self, more: &str) -> Self {
        CheckError {
            message: format!("{}{more}", self.message),
            ..self
        }
    }

    /// Whether retrying costs the target nothing: the kernel said no at once
    /// (nothing listens), or the socket or file is not there yet.
    pub fn is_cheap(&self) -> bool {
        matches!(self.kind, Kind::Refused | Kind::Missing)
    }
}

/// A plain message is a failure of kind `Other`, so code that builds its
/// reasons as strings converts with `?` or `.into()`.
impl From<String> for CheckError {
    fn from(message: String) -> Self {
        CheckError::new(Kind::Other, message)
    }
}

impl From<&str> for CheckError {
    fn from(message: &str) -> Self {
        CheckError::new(Kind::Other, message)
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CheckError {}

/// Reads as its message (`e.contains(..)`, `&*e`), for messages and tests.
impl std::ops::Deref for CheckError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl PartialEq<&str> for CheckError {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

impl PartialEq<String> for CheckError {
    fn eq(&self, other: &String) -> bool {
        self.message == *other
    }
}

impl PartialEq<str> for CheckError {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_other_and_context_keeps_the_kind() {
        let e: CheckError = "status 500".into();
        assert_eq!(e.kind, Kind::Other);
        let e = CheckError::timed_out().context("no Redis reply");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::TimedOut, "no Redis reply: timed out")
        );
        assert!(CheckError::new(Kind::Refused, "x").is_cheap());
        assert!(CheckError::new(Kind::Missing, "x").is_cheap());
        for k in [Kind::TimedOut, Kind::NotReady, Kind::Lookup, Kind::Other] {
            assert!(!CheckError::new(k, "connection refused").is_cheap(), "{k:?}");
        }
    }
}
