//! /etc/passwd and /etc/group parsing and USER[:GROUP] resolution, without
//! NSS, so it works in FROM scratch images that carry just those two files.
//!
//! The forms are those of `docker run --user`: name, uid, name:group,
//! uid:gid, name:gid, uid:group. Rules (the README's runas section says the same):
//! - a user found in passwd without a group gets its passwd gid plus every
//!   group that /etc/group lists it in;
//! - an explicit group gives exactly that group, nothing else;
//! - a numeric uid that passwd does not know gets gid = uid (never gid 0, as
//!   gosu and su-exec do), no supplementary groups and HOME=/.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// A user id. A newtype so it cannot be swapped with a group id by mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub u32);

/// A group id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gid(pub u32);

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Ids above this are refused, as runc refuses them (and -1 means "no change" to chown).
pub const MAX_ID: u32 = i32::MAX as u32;

/// /etc/passwd and /etc/group are read up to this size; bigger is refused.
pub const MAX_FILE: u64 = 16 << 20;

/// One /etc/passwd line (the fields runas needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// One /etc/group line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

fn id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n <= MAX_ID)
}

/// Parse /etc/passwd text. Comments, blank lines, NIS `+`/`-` lines and
/// malformed lines are skipped (glibc skips them too).
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: id(f[2])?,
                gid: id(f[3])?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// Parse /etc/group text, skipping what `parse_passwd` skips.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: id(f[2])?,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Split `USER[:GROUP]`; both parts must be non-empty.
pub fn split_spec(spec: &str) -> Result<(&str, Option<&str>), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() {
        return Err(format!("{spec:?}: the user is empty (use USER or USER:GROUP)"));
    }
    if let Some(g) = g {
        if g.is_empty() || g.contains(':') {
            return Err(format!("{spec:?}: bad group (use USER or USER:GROUP)"));
        }
    }
    Ok((u, g))
}

/// Who to become: ids, the group list for setgroups, and the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
    /// The complete list for setgroups (may be empty).
    pub groups: Vec<Gid>,
    /// The passwd name, when passwd has the user.
    pub name: Option<String>,
    /// HOME: the passwd home, or "/".
    pub home: String,
}

impl Identity {
    /// USER and LOGNAME: the passwd name, else the uid in digits.
    pub fn user_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.uid.to_string())
    }

    /// `app (1000:1000)` or `1000:1000`, for messages.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({}:{})", self.uid, self.gid),
            None => format!("{}:{}", self.uid, self.gid),
        }
    }
}

/// The user and group databases of an image. A missing file is `None`:
/// numeric ids still resolve, names do not.
#[derive(Clone, Debug, Default)]
pub struct Db {
    pub passwd: Option<Vec<PasswdEntry>>,
    pub group: Option<Vec<GroupEntry>>,
}

/// What a file that is not a regular one is, for the error.
fn kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read `path`, which must be a regular file of at most MAX_FILE bytes.
///
/// A symlink is followed, as the C library does (a ConfigMap volume links
/// its files into `..data/`); what it leads to is checked before opening
/// (a FIFO would block the open, and read, forever; opening a device may
/// do something), opened O_NONBLOCK|O_NOCTTY so that one swapped in
/// between cannot block either, and checked again on the open file.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let not_regular = |t: std::fs::FileType| {
        format!(
            "{} is {}, not a regular file; refusing to read it",
            path.display(),
            kind(t)
        )
    };
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(not_regular(m.file_type())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    match f.metadata() {
        Ok(m) if !m.is_file() => return Err(not_regular(m.file_type())),
        Ok(_) => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let mut b = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut b)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if b.len() as u64 > MAX_FILE {
        return Err(format!("{} is larger than {MAX_FILE} bytes", path.display()));
    }
    // glibc reads these files as bytes: a Latin-1 comment field must not
    // make every user unknown. Invalid bytes become U+FFFD, so a name with
    // them matches nothing rather than something else.
    Ok(Some(String::from_utf8_lossy(&b).into_owned()))
}

fn names<T>(items: &[T], name: fn(&T) -> &str) -> String {
    const SHOWN: usize = 12;
    // Each name bounded and without control characters: the message stays one short line.
    let short = |n: &str| -> String {
        let mut t: String = n
            .chars()
            .take(32)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if n.chars().count() > 32 {
            t.push_str("...");
        }
        t
    };
    let mut s: Vec<String> = items.iter().take(SHOWN).map(|i| short(name(i))).collect();
    if items.len() > SHOWN {
        s.push("...".into());
    }
    s.join(", ")
}

impl Db {
    /// Read `<etc>/passwd` and `<etc>/group` (each bounded to MAX_FILE).
    pub fn load(etc: &Path) -> Result<Db, String> {
        Ok(Db {
            passwd: read_bounded(&etc.join("passwd"))?.map(|t| parse_passwd(&t)),
            group: read_bounded(&etc.join("group"))?.map(|t| parse_group(&t)),
        })
    }

    pub fn from_text(passwd: Option<&str>, group: Option<&str>) -> Db {
        Db {
            passwd: passwd.map(parse_passwd),
            group: group.map(parse_group),
        }
    }

    /// The passwd entry `user` names: by name, or a numeric user by uid
    /// (first match in file order, as runc does).
    fn user(&self, user: &str) -> Option<&PasswdEntry> {
        let n = id(user);
        self.passwd
            .as_deref()?
            .iter()
            .find(|p| p.name == user || Some(p.uid) == n)
    }

    /// A group given by name or number.
    pub fn resolve_group(&self, group: &str) -> Result<Gid, String> {
        if let Some(n) = id(group) {
            return Ok(Gid(n));
        }
        if group.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("group id {group} is out of range (0-{MAX_ID})"));
        }
        match &self.group {
            None => Err(format!(
                "group {group:?} not found: the image has no /etc/group (use a numeric gid)"
            )),
            Some(g) => g
                .iter()
                .find(|e| e.name == group)
                .map(|e| Gid(e.gid))
                .ok_or_else(|| {
                    format!(
                        "group {group:?} not found in /etc/group (image has: {})",
                        names(g, |e| &e.name)
                    )
                }),
        }
    }

    /// Resolve `USER[:GROUP]` by the rules in the module comment.
    pub fn resolve(&self, spec: &str) -> Result<Identity, String> {
        let (user, group) = split_spec(spec)?;
        let numeric = id(user);
        if numeric.is_none() && user.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("user id {user} is out of range (0-{MAX_ID})"));
        }
        let entry = self.user(user);
        let uid = match (entry, numeric) {
            (Some(e), _) => Uid(e.uid),
            (None, Some(n)) => Uid(n),
            (None, None) => {
                return Err(match &self.passwd {
                    None => {
                        format!("user {user:?} not found: the image has no /etc/passwd (use a numeric uid)")
                    }
                    Some(p) => format!(
                        "user {user:?} not found in /etc/passwd (image has: {})",
                        names(p, |e| &e.name)
                    ),
                })
            }
        };
        let (gid, groups) = match (group, entry) {
            (Some(g), _) => {
                let gid = self.resolve_group(g)?;
                (gid, vec![gid])
            }
            (None, Some(e)) => {
                let mut groups = vec![Gid(e.gid)];
                for g in self.group.as_deref().unwrap_or(&[]) {
                    if g.members.contains(&e.name) && !groups.contains(&Gid(g.gid)) {
                        groups.push(Gid(g.gid));
                    }
                }
                (Gid(e.gid), groups)
            }
            (None, None) => (Gid(uid.0), Vec::new()),
        };
        let home = entry
            .map(|e| e.home.as_str())
            .filter(|h| !h.is_empty())
            .unwrap_or("/")
            .to_string();
        Ok(Identity {
            uid,
            gid,
            groups,
            name: entry.map(|e| e.name.clone()),
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App,,,:/home/app:/bin/sh
broken line
bad:x:notanumber:1:::
+nisuser::::::
nohome:x:1002:1002:::/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
    const GROUP: &str = "\
root:x:0:
app:x:1000:
audio:x:29:app,other
video:x:44: other , app
staff:x:50:other
nohome:x:1002:
dup:x:1000:app
";

    fn db() -> Db {
        Db::from_text(Some(PASSWD), Some(GROUP))
    }

    fn t(uid: u32, gid: u32, groups: &[u32], name: Option<&str>, home: &str) -> Identity {
        Identity {
            uid: Uid(uid),
            gid: Gid(gid),
            groups: groups.iter().map(|&g| Gid(g)).collect(),
            name: name.map(str::to_string),
            home: home.to_string(),
        }
    }

    #[test]
    fn parses_and_skips_junk() {
        let p = parse_passwd(PASSWD);
        let names: Vec<&str> = p.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "daemon", "app", "nohome", "nobody"]);
        assert_eq!(p[2].home, "/home/app");
        let g = parse_group(GROUP);
        assert_eq!(g[3].members, ["other", "app"]);
        assert!(g[0].members.is_empty());
    }

    #[test]
    fn named_user_gets_passwd_gid_and_memberships() {
        let r = db().resolve("app").unwrap();
        assert_eq!(r, t(1000, 1000, &[1000, 29, 44], Some("app"), "/home/app"));
        assert_eq!(r.user_name(), "app");
    }

    #[test]
    fn uid_with_passwd_entry_is_that_user() {
        assert_eq!(db().resolve("1000").unwrap(), db().resolve("app").unwrap());
    }

    #[test]
    fn explicit_group_is_the_only_group() {
        assert_eq!(
            db().resolve("app:staff").unwrap(),
            t(1000, 50, &[50], Some("app"), "/home/app")
        );
        assert_eq!(
            db().resolve("app:777").unwrap(),
            t(1000, 777, &[777], Some("app"), "/home/app")
        );
        assert_eq!(
            db().resolve("1000:audio").unwrap(),
            t(1000, 29, &[29], Some("app"), "/home/app")
        );
        assert_eq!(
            db().resolve("1000:44").unwrap(),
            t(1000, 44, &[44], Some("app"), "/home/app")
        );
    }

    #[test]
    fn unknown_uid_gets_gid_uid_and_root_home() {
        let r = db().resolve("4242").unwrap();
        assert_eq!(r, t(4242, 4242, &[], None, "/"));
        assert_eq!(r.user_name(), "4242");
        assert_eq!(db().resolve("4242:50").unwrap(), t(4242, 50, &[50], None, "/"));
        assert_eq!(db().resolve("4242:staff").unwrap(), t(4242, 50, &[50], None, "/"));
    }

    #[test]
    fn empty_home_is_root() {
        assert_eq!(db().resolve("nohome").unwrap().home, "/");
    }

    #[test]
    fn works_without_files_for_numbers_only() {
        let empty = Db::default();
        assert_eq!(empty.resolve("12:34").unwrap(), t(12, 34, &[34], None, "/"));
        let e = empty.resolve("app").unwrap_err();
        assert!(e.contains("no /etc/passwd"), "{e}");
        let e = empty.resolve("12:staff").unwrap_err();
        assert!(e.contains("no /etc/group"), "{e}");
    }

    #[test]
    fn errors_list_what_the_image_has() {
        let e = db().resolve("appuser").unwrap_err();
        assert!(e.contains("\"appuser\" not found in /etc/passwd"), "{e}");
        assert!(e.contains("root, daemon, app"), "{e}");
        let e = db().resolve("app:wheel").unwrap_err();
        assert!(e.contains("\"wheel\" not found in /etc/group"), "{e}");
    }

    #[test]
    fn bad_specs() {
        for bad in [
            "",
            ":1",
            "app:",
            "a:b:c",
            "99999999999",
            "-1",
            "1:99999999999",
            "2147483648",
        ] {
            assert!(db().resolve(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(db().resolve("2147483647").is_ok());
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_and_a_symlink_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let etc = dir.join("etc");
        std::fs::create_dir(&etc).unwrap();
        // No writer ever opens it: a blocking open would wait forever.
        nix::unistd::mkfifo(
            &etc.join("passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = Db::load(&etc).unwrap_err();
        assert!(e.contains("passwd is a FIFO, not a regular file"), "{e}");
        std::fs::remove_file(etc.join("passwd")).unwrap();
        std::fs::create_dir(etc.join("group")).unwrap();
        let e = Db::load(&etc).unwrap_err();
        assert!(e.contains("group is a directory"), "{e}");
        std::fs::remove_dir(etc.join("group")).unwrap();
        std::fs::write(dir.join("real-passwd"), "app:x:7:8::/h:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("../real-passwd", etc.join("passwd")).unwrap();
        let db = Db::load(&etc).unwrap();
        assert_eq!(db.resolve("app").unwrap().uid, Uid(7));
    }
}
