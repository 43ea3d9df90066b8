//! What a walk under one PATH did: the counts, and the one summary line
//! runas prints for them.

use dockhand::duration;
use dockhand::out;
use std::path::Path;
use std::time::Duration;

/// What happened under one PATH.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub seen: u64,
    pub changed: u64,
    /// Non-directories with more than one hard link, left alone.
    pub hardlinked: u64,
    /// Character and block devices, left alone.
    pub devices: u64,
    /// Entries on another mount, left alone (and not descended into).
    pub other_fs: u64,
    /// Entries that vanished or were replaced while being looked at.
    pub raced: u64,
    pub errors: u64,
}

impl Stats {
    pub(super) fn add(&mut self, o: &Stats) {
        self.seen += o.seen;
        self.changed += o.changed;
        self.hardlinked += o.hardlinked;
        self.devices += o.devices;
        self.other_fs += o.other_fs;
        self.raced += o.raced;
        self.errors += o.errors;
    }

    pub fn skipped(&self) -> u64 {
        self.hardlinked + self.devices + self.other_fs + self.raced
    }

    /// The one summary line for PATH (without the tool name).
    pub fn summary(&self, path: &Path, created: bool, took: Duration) -> String {
        let mut s = format!("{}: ", out::escape_path(path));
        if created {
            s.push_str("created; ");
        }
        s.push_str(&format!(
            "{} seen, {} changed, {} skipped",
            self.seen,
            self.changed,
            self.skipped()
        ));
        let why: Vec<String> = [
            (self.hardlinked, "hard-linked"),
            (self.devices, "device nodes"),
            (self.other_fs, "on another mount"),
            (self.raced, "changed during the walk"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        if !why.is_empty() {
            s.push_str(&format!(" ({})", why.join(", ")));
        }
        if self.errors > 0 {
            s.push_str(&format!(", {} errors", self.errors));
        }
        s.push_str(&format!(" in {}", duration::human(took)));
        s
    }
}
