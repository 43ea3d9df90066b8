//! What a check was asked to do: the parsed command line, minus the paths.

use std::path::PathBuf;

/// Everything a check needs besides the paths.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub root: PathBuf,
    pub library_path: Option<String>,
    pub ignore: Vec<String>,
    pub each_file: bool,
    pub symbols: bool,
    pub gpu: bool,
    pub codename: Option<String>,
    /// Only the summary is wanted (text output): the report's per-entry
    /// library lists are left empty.
    pub summary_only: bool,
    /// The C library whose loader rules apply (--libc, or detected from the root).
    pub libc: Option<crate::libc::Libc>,
}
