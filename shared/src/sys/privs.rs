//! Privileges: the setgroups -> setgid -> setuid drop with a read-back from
//! the kernel, capability checks and changes (bounding, ambient, keep-caps),
//! no_new_privs, the child-subreaper flag, new sessions, process groups and
//! the terminal's foreground group.
//!
//! Everything here goes through nix's and caps' safe wrappers; no `unsafe`.

use nix::unistd::{Gid, Uid};
use std::io;

/// The real, effective and saved ids and the supplementary groups of this
/// thread, as the kernel reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// real, effective, saved
    pub uid: [u32; 3],
    /// real, effective, saved
    pub gid: [u32; 3],
    pub groups: Vec<u32>,
}

impl Ids {
    /// True when every uid is `uid` and every gid is `gid`.
    pub fn all(&self, uid: u32, gid: u32) -> bool {
        self.uid.iter().all(|&u| u == uid) && self.gid.iter().all(|&g| g == gid)
    }
}

/// Read the ids back from the kernel (getresuid, getresgid, getgroups).
pub fn current_ids() -> io::Result<Ids> {
    let u = nix::unistd::getresuid()?;
    let g = nix::unistd::getresgid()?;
    let groups = nix::unistd::getgroups()?;
    Ok(Ids {
        uid: [u.real.as_raw(), u.effective.as_raw(), u.saved.as_raw()],
        gid: [g.real.as_raw(), g.effective.as_raw(), g.saved.as_raw()],
        groups: groups.iter().map(|g| g.as_raw()).collect(),
    })
}

/// Which step of the drop failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    SetGroups,
    SetGid,
    SetUid,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::SetGroups => "setgroups",
            Step::SetGid => "setgid",
            Step::SetUid => "setuid",
        }
    }
}

/// Become `uid`:`gid` with exactly `groups` as supplementary groups: real,
/// effective and saved ids all change, so nothing can switch back.
pub fn drop_to(uid: u32, gid: u32, groups: &[u32]) -> Result<(), (Step, io::Error)> {
    // setgroups and setgid need CAP_SETGID, which setuid to non-root takes
    // away: both must come before setuid.
    let gs: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    nix::unistd::setgroups(&gs).map_err(|e| (Step::SetGroups, e.into()))?;
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(|e| (Step::SetGid, e.into()))?;
    // Last: after this, no capability is left to undo anything above.
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(|e| (Step::SetUid, e.into()))?;
    Ok(())
}

/// Compare what the kernel reports with what was asked for; the error says
/// what differs. Group order does not matter; the effective gid may or may
/// not appear in the kernel's list only if it was asked for.
pub fn verify(uid: u32, gid: u32, groups: &[u32], got: &Ids) -> Result<(), String> {
    if got.uid.iter().any(|&u| u != uid) {
        return Err(format!(
            "uids are {:?} (real, effective, saved), expected {uid}",
            got.uid
        ));
    }
    if got.gid.iter().any(|&g| g != gid) {
        return Err(format!(
            "gids are {:?} (real, effective, saved), expected {gid}",
            got.gid
        ));
    }
    let mut want = groups.to_vec();
    want.sort_unstable();
    want.dedup();
    let mut have = got.groups.clone();
    have.sort_unstable();
    have.dedup();
    if want != have {
        return Err(format!("groups are {have:?}, expected {want:?}"));
    }
    Ok(())
}

/// True when setuid(0) is refused, as it must be after a drop to non-root.
/// When it succeeds the process is root again, and the caller must abort.
pub fn cannot_regain_root() -> bool {
    nix::unistd::setuid(Uid::from_raw(0)).is_err()
}

/// Run `f` with this thread's filesystem ids (the ones the kernel checks
/// file permissions with) set to `uid`:`gid`, then put them back. Needs only
/// CAP_SETUID and CAP_SETGID, not CAP_DAC_*: root opens what only its owner
/// may open by looking as the owner. On Linux these ids are per thread (the
/// raw syscalls, which libc's setfsuid is, do not reach other threads), so
/// walker threads each switch on their own. While the fsuid is not 0 the
/// kernel clears CAP_CHOWN and the other file capabilities from the
/// effective set and restores them when it is 0 again: change ownership only
/// outside `f`. Fails when the kernel did not take the ids, or did not take
/// the old ones back.
pub fn with_fs_ids<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> io::Result<T> {
    // setfsuid/setfsgid return the previous id and never an error; asking
    // again with the same value reads back the current one.
    let old_g = nix::unistd::setfsgid(Gid::from_raw(gid));
    let old_u = nix::unistd::setfsuid(Uid::from_raw(uid));
    let took = nix::unistd::setfsuid(Uid::from_raw(uid)).as_raw() == uid
        && nix::unistd::setfsgid(Gid::from_raw(gid)).as_raw() == gid;
    let r = took.then(f);
    nix::unistd::setfsuid(old_u);
    nix::unistd::setfsgid(old_g);
    let back = nix::unistd::setfsuid(old_u) == old_u && nix::unistd::setfsgid(old_g) == old_g;
    if !back {
        return Err(io::Error::other(format!(
            "filesystem ids stuck at {uid}:{gid} after switching back"
        )));
    }
    r.ok_or_else(|| io::Error::from_raw_os_error(libc::EPERM))
}

/// Keep the permitted capabilities across the coming setuid (PR_SET_KEEPCAPS),
/// so that `--keep-cap` has something to raise afterwards.
pub fn set_keepcaps(on: bool) -> io::Result<()> {
    nix::sys::prctl::set_keepcaps(on).map_err(io::Error::from)
}

/// Set no_new_privs: setuid binaries and file capabilities stop granting
/// anything in this process and everything it execs.
pub fn set_no_new_privs() -> io::Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)
}

/// Become the reaper of orphaned descendants (what PID 1 is by nature).
pub fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
}

/// Start a new session (no controlling terminal). Fails with EPERM when
/// this process leads a process group.
pub fn new_session() -> io::Result<()> {
    nix::unistd::setsid().map(drop).map_err(io::Error::from)
}

/// Put this process in a process group of its own.
pub fn own_process_group() -> io::Result<()> {
    let me = nix::unistd::Pid::from_raw(0);
    nix::unistd::setpgid(me, me).map_err(io::Error::from)
}

/// This process's process group.
pub fn process_group() -> i32 {
    nix::unistd::getpgrp().as_raw()
}

/// The process group of `pid`.
pub fn process_group_of(pid: i32) -> io::Result<i32> {
    nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
        .map(|p| p.as_raw())
        .map_err(io::Error::from)
}

/// Whether this process runs as a job of a job-control shell: its parent
/// is in the same session but in another process group. Then a stop of
/// this process is seen by the parent, which can resume it (`fg`).
pub fn job_control_above() -> bool {
    use nix::unistd::{getpgid, getsid, Pid};
    let parent = nix::unistd::getppid();
    match (getsid(None), getsid(Some(parent)), getpgid(Some(parent))) {
        (Ok(mine), Ok(theirs), Ok(pgrp)) => {
            mine == theirs && pgrp != nix::unistd::getpgrp() && parent != Pid::from_raw(0)
        }
        _ => false,
    }
}

/// The foreground process group of the terminal on standard input (fails
/// when it is not this session's controlling terminal).
pub fn terminal_foreground() -> io::Result<i32> {
    nix::unistd::tcgetpgrp(std::io::stdin())
        .map(|p| p.as_raw())
        .map_err(io::Error::from)
}

/// Make `pgrp` the foreground group of the terminal on standard input, so
/// that it can read from it and Ctrl-C reaches it. From a background group
/// this raises SIGTTOU unless the caller blocks or ignores it, which it must.
pub fn give_terminal(pgrp: i32) -> io::Result<()> {
    nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::Pid::from_raw(pgrp)).map_err(io::Error::from)
}

#[cfg(feature = "caps")]
pub use self::capabilities::*;

#[cfg(feature = "caps")]
mod capabilities {
    use caps::{CapSet, CapsHashSet};
    use std::io;

    pub use caps::Capability as Cap;

    fn err(e: caps::errors::CapsError) -> io::Error {
        io::Error::other(e.to_string())
    }

    /// Parse `NET_BIND_SERVICE`, `cap_net_bind_service`, `CAP_NET_BIND_SERVICE`.
    pub fn parse_cap(name: &str) -> Result<Cap, String> {
        let up = name.trim().to_ascii_uppercase();
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        full.parse::<Cap>()
            .map_err(|_| format!("{name:?} is not a capability name (e.g. NET_BIND_SERVICE)"))
    }

    /// The capability's name without the CAP_ prefix, as docker --cap-add takes it.
    pub fn short_name(c: Cap) -> String {
        c.to_string().trim_start_matches("CAP_").to_string()
    }

    /// Those of `want` that are not in this thread's effective set.
    pub fn missing_effective(want: &[Cap]) -> io::Result<Vec<Cap>> {
        let eff = caps::read(None, CapSet::Effective).map_err(err)?;
        Ok(want.iter().copied().filter(|c| !eff.contains(c)).collect())
    }

    /// Those of `want` that are not in this thread's permitted set.
    pub fn missing_permitted(want: &[Cap]) -> io::Result<Vec<Cap>> {
        let p = caps::read(None, CapSet::Permitted).map_err(err)?;
        Ok(want.iter().copied().filter(|c| !p.contains(c)).collect())
    }

    /// Remove every capability but `keep` from the bounding set, so nothing
    /// exec'd later can gain them (needs CAP_SETPCAP: call before setuid).
    pub fn drop_bounding_except(keep: &[Cap]) -> io::Result<()> {
        for c in caps::runtime::thread_all_supported() {
            if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).map_err(err)? {
                caps::drop(None, CapSet::Bounding, c).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Empty the ambient set (always allowed).
    pub fn clear_ambient() -> io::Result<()> {
        caps::clear(None, CapSet::Ambient).map_err(err)
    }

    /// After a setuid done with keep-caps: make `keep` the permitted,
    /// effective and inheritable sets, then raise each as ambient, so the
    /// non-root command gets them across exec.
    pub fn keep_ambient(keep: &[Cap]) -> io::Result<()> {
        let set: CapsHashSet = keep.iter().copied().collect();
        // Inheritable first, while permitted still holds more; then shrink.
        caps::set(None, CapSet::Inheritable, &set).map_err(err)?;
        caps::set(None, CapSet::Effective, &set).map_err(err)?;
        caps::set(None, CapSet::Permitted, &set).map_err(err)?;
        for &c in keep {
            caps::raise(None, CapSet::Ambient, c).map_err(err)?;
        }
        Ok(())
    }

    /// This thread's ambient set (for tests and messages).
    pub fn ambient() -> io::Result<Vec<Cap>> {
        let mut v: Vec<Cap> = caps::read(None, CapSet::Ambient)
            .map_err(err)?
            .into_iter()
            .collect();
        v.sort_by_key(|c| c.index());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(uid: [u32; 3], gid: [u32; 3], groups: &[u32]) -> Ids {
        Ids {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn verify_accepts_exact_match_in_any_order() {
        let got = ids([7; 3], [8; 3], &[9, 8]);
        assert_eq!(verify(7, 8, &[8, 9], &got), Ok(()));
        assert!(got.all(7, 8));
    }

    #[test]
    fn verify_names_what_differs() {
        let e = verify(7, 8, &[8], &ids([7, 7, 0], [8; 3], &[8])).unwrap_err();
        assert!(e.contains("uids are [7, 7, 0]"), "{e}");
        let e = verify(7, 8, &[8], &ids([7; 3], [8, 0, 8], &[8])).unwrap_err();
        assert!(e.contains("gids"), "{e}");
        let e = verify(7, 8, &[8], &ids([7; 3], [8; 3], &[8, 0])).unwrap_err();
        assert!(e.contains("groups are [0, 8]"), "{e}");
        let e = verify(7, 8, &[], &ids([7; 3], [8; 3], &[8])).unwrap_err();
        assert!(e.contains("expected []"), "{e}");
    }

    #[test]
    fn reads_own_ids() {
        let me = current_ids().unwrap();
        assert_eq!(me.uid[1], nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn fs_ids_switch_and_come_back() {
        let me = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        // Switching to one's own ids always works; the ids are back afterwards.
        let seen = with_fs_ids(me.0, me.1, || nix::unistd::setfsuid(Uid::from_raw(me.0)).as_raw()).unwrap();
        assert_eq!(seen, me.0);
        if me.0 != 0 {
            // Without CAP_SETUID another fsuid is refused, and `f` does not run.
            let mut ran = false;
            assert!(with_fs_ids(me.0 + 1, me.1, || ran = true).is_err());
            assert!(!ran);
        }
        assert_eq!(nix::unistd::setfsuid(Uid::from_raw(me.0)).as_raw(), me.0);
    }

    #[cfg(feature = "caps")]
    #[test]
    fn capability_names() {
        assert_eq!(parse_cap("net_bind_service"), Ok(Cap::CAP_NET_BIND_SERVICE));
        assert_eq!(parse_cap("CAP_CHOWN"), Ok(Cap::CAP_CHOWN));
        assert!(parse_cap("FLY").is_err());
        assert_eq!(short_name(Cap::CAP_SETUID), "SETUID");
    }
}
