//! Every call into the OS that needs `unsafe` lives below this module, each
//! inside a small safe function with a `// SAFETY:` comment. The binaries
//! carry `#![forbid(unsafe_code)]`.

#[cfg(feature = "check")]
pub mod addrinfo;
pub mod alloc;
pub mod atomic;
pub mod fs;
pub mod notify;
pub mod pid1;
pub mod privs;
pub mod process;
pub mod signal;
