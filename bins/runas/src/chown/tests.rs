//! Unit tests of the walk: the summary line, and a tree walked with one
//! thread or several.

use super::*;
use std::time::Duration;

#[test]
fn summary_says_why() {
    let s = Stats {
        seen: 10,
        changed: 3,
        hardlinked: 1,
        devices: 0,
        other_fs: 2,
        raced: 0,
        errors: 0,
    };
    assert_eq!(
        s.summary(Path::new("/data"), false, Duration::from_millis(250)),
        "/data: 10 seen, 3 changed, 3 skipped (1 hard-linked, 2 on another mount) in 250ms"
    );
    let s = Stats {
        seen: 1,
        ..Stats::default()
    };
    assert_eq!(
        s.summary(Path::new("/new"), true, Duration::from_secs(1)),
        "/new: created; 1 seen, 0 changed, 0 skipped in 1s"
    );
}

/// A tree of `dirs` directories, each with an inner one holding `files` files.
fn tree(dirs: usize, files: usize) -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("runas-walk-").tempdir().unwrap();
    let p = t.path();
    for d in 0..dirs {
        let dir = p.join(format!("d{d}")).join("inner");
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            std::fs::write(dir.join(format!("f{f}")), "").unwrap();
        }
    }
    t
}

fn me() -> (u32, u32) {
    (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
}

// As any user: a tree already owned by us is seen in full and unchanged,
// with one thread or several.
#[test]
fn counts_every_entry_and_changes_nothing_when_owned() {
    let tree = tree(20, 30);
    let p = tree.path();
    let (u, g) = me();
    for threads in [1, 2, 4] {
        let root = match fs::open_dir_path(p).unwrap() {
            fs::Found::Dir(fd) => fd,
            other => panic!("{other:?}"),
        };
        let opts = Options {
            cross_mounts: false,
            hardlinks: false,
            devices: false,
            threads,
        };
        let st = chown_tree(root, p, u, g, opts);
        // root + 20 dirs + 20 inner + 600 files
        assert_eq!(st.seen, 641, "threads={threads}");
        assert_eq!(st.changed, 0);
        assert_eq!(st.errors, 0);
    }
}
