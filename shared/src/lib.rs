//! The library every dockhand tool links: errors and exit codes, flag and
//! environment parsing, durations, the shared target syntax with its checks,
//! the poll loop, user lookup, and every call that needs `unsafe` (in `sys`).

pub mod cli;
pub mod clock;
pub mod duration;
pub mod error;
pub mod exec;
pub mod hash;
pub mod out;
pub mod run;
pub mod sys;

#[cfg(feature = "check")]
pub mod check;
#[cfg(feature = "check")]
pub mod net;
#[cfg(feature = "check")]
pub mod target;
#[cfg(feature = "check")]
pub mod wait;

#[cfg(feature = "users")]
pub mod users;

pub use error::{Error, Result};

/// The version every tool prints for `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
