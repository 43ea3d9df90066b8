//! /etc/passwd, /etc/group and USER[:GROUP] as runas reads them from an image:
//! `dockhand::users::{parse_passwd, parse_group, split_spec, Db::resolve}`.
//! The input is `passwd \0 group \0 spec`. Properties: never panics; every id
//! parsed or resolved is <= MAX_ID (so never -1, which chown reads as "no
//! change"); a numeric uid that passwd does not know never gets gid 0 unless
//! asked (the gosu/su-exec bug); an explicit group is the only group; HOME is
//! never empty.
#![no_main]

use dockhand::users::{parse_group, parse_passwd, split_spec, Db, MAX_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let passwd = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let group = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let spec = String::from_utf8_lossy(parts.next().unwrap_or_default());

    let pw = parse_passwd(&passwd);
    for e in &pw {
        assert!(e.uid <= MAX_ID && e.gid <= MAX_ID, "{e:?}");
        assert!(!e.name.is_empty() && !e.name.contains([':', '\n']), "{e:?}");
    }
    for e in parse_group(&group) {
        assert!(e.gid <= MAX_ID, "{e:?}");
        assert!(
            e.members
                .iter()
                .all(|m| !m.is_empty() && !m.contains([',', ':', '\n'])),
            "{e:?}"
        );
    }

    let Ok((user, grp)) = split_spec(&spec) else {
        return;
    };
    assert!(!user.is_empty() && grp.map_or(true, |g| !g.is_empty() && !g.contains(':')));
    let db = Db::from_text(Some(&passwd), Some(&group));
    if let Ok(t) = db.resolve(&spec) {
        assert!(t.uid.0 <= MAX_ID && t.gid.0 <= MAX_ID, "{spec:?} -> {t:?}");
        assert!(t.groups.iter().all(|g| g.0 <= MAX_ID), "{spec:?} -> {t:?}");
        assert!(!t.home.is_empty(), "{spec:?} -> {t:?}");
        if grp.is_some() {
            assert_eq!(
                t.groups,
                vec![t.gid],
                "{spec:?}: an explicit group must be the only group"
            );
        }
        if t.name.is_none() && grp.is_none() {
            // A uid that passwd does not know: gid = uid, no supplementary groups.
            assert_eq!(t.gid.0, t.uid.0, "{spec:?} -> {t:?}");
            assert!(t.groups.is_empty(), "{spec:?} -> {t:?}");
        }
        if let Some(n) = &t.name {
            assert!(
                pw.iter().any(|e| &e.name == n && e.uid == t.uid.0),
                "{spec:?} -> {t:?}"
            );
        }
    }
    // Without any files, only numbers resolve.
    let bare = Db::from_text(None, None);
    if let Ok(t) = bare.resolve(&spec) {
        assert!(
            user.bytes().all(|b| b.is_ascii_digit()),
            "{spec:?} resolved without /etc/passwd"
        );
        assert!(t.name.is_none());
    }
});
