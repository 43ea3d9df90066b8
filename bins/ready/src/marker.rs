//! The readiness marker file: removed before anything starts, written
//! atomically once ready. A symlink at the marker path is never followed:
//! unlink and rename act on the link itself.

use dockhand::sys::atomic;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Remove a marker left by an earlier run. Absent is fine; anything that
/// cannot be removed (a directory, a read-only place) is an error, because a
/// stale marker would claim readiness.
pub fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The marker's content: the pid whose readiness it announces and the time.
pub fn content(pid: i32, now: SystemTime) -> String {
    format!("pid={pid}\ntime={}\n", rfc3339(now))
}

/// Write `text` to `path` so that a reader sees either no file or all of it
/// (a random temporary in the same directory, then rename; see
/// `dockhand::sys::atomic`). Synced: a marker that claims readiness must not
/// come back empty after a crash.
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    atomic::write(path, text.as_bytes(), 0o644, true)
}

/// UTC time as `2026-11-22T04:50:01Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ready-marker-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn dates() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn write_replaces_a_symlink_instead_of_following_it() {
        let d = dir("link");
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let m = d.join("app.ready");
        std::os::unix::fs::symlink(&victim, &m).unwrap();
        write(&m, "pid=1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&m).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&m).unwrap(), "pid=1\n");
        // remove() takes the link away, never its target.
        std::os::unix::fs::symlink(&victim, d.join("l2")).unwrap();
        remove(&d.join("l2")).unwrap();
        assert!(victim.exists());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn remove_is_quiet_when_absent_and_refuses_a_directory() {
        let d = dir("rm");
        remove(&d.join("none")).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        assert!(remove(&d.join("sub")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn content_has_pid_and_time() {
        let c = content(42, UNIX_EPOCH);
        assert_eq!(c, "pid=42\ntime=1970-01-01T00:00:00Z\n");
    }
}
