//! Integration tests for runas: the real static binary, as root, as PID 1 of
//! new PID and mount namespaces, chrooted into a busybox-static root with a
//! test /etc/passwd and /etc/group. See tests/lib.rs for the skip rule.

use dockhand_tests::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:App:/home/app:/bin/sh
other:x:1001:1001::/home/other:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";
const GROUP: &str = "\
root:x:0:
app:x:1000:
other:x:1001:
audio:x:29:app
video:x:44:other,app
staff:x:50:
nogroup:x:65534:
";

/// Finds host tools (chroot, setpriv) and, inside the chroot, busybox's.
const HOST_PATH: &str = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A chroot for one test, or None when it must be skipped.
fn chroot(test: &str) -> Option<TempDir> {
    if !need_root(test) {
        return None;
    }
    if !have("unshare", &["--version"]) {
        skip(test, "needs unshare (util-linux)");
        return None;
    }
    let root = busybox_root(test, PASSWD, GROUP)?;
    assert!(
        root.join("usr/local/bin/runas").is_file(),
        "runas missing in {}",
        bin_dir().display()
    );
    for applet in ["grep", "stat", "cut", "head"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    // sh opens /dev/null for background jobs.
    let null = root.join("dev/null");
    let o = run(Command::new("mknod").arg(&null).args(["c", "1", "3"]));
    assert!(o.status.success(), "mknod: {}", stderr(&o));
    std::fs::set_permissions(&null, std::fs::Permissions::from_mode(0o666)).unwrap();
    Some(root)
}

/// The command that runs `inner` (a host shell line, with $R the chroot) as
/// PID 1 of new PID and mount namespaces.
fn ns(root: &Path, inner: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--mount"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .args(["sh", "-c", inner])
        .env_clear()
        .env("R", root)
        .env("PATH", HOST_PATH)
        .env("HOME", "/root")
        .env("USER", "root")
        .env("KEEP", "kept");
    c
}

fn quote(a: &str) -> String {
    format!("'{}'", a.replace('\'', r"'\''"))
}

/// runas ARGS in the chroot, as PID 1 of its namespace.
fn runas(root: &Path, args: &[&str]) -> Output {
    let line: Vec<String> = args.iter().map(|a| quote(a)).collect();
    run(&mut ns(
        root,
        &format!("exec chroot \"$R\" /usr/local/bin/runas {}", line.join(" ")),
    ))
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The lines of /proc/self/status and the environment the exec'd command sees.
const SHOW: &str = "grep -E '^(Uid|Gid|Groups|CapEff|CapAmb|CapBnd|NoNewPrivs):' /proc/self/status; \
                    echo HOME=$HOME USER=$USER LOGNAME=$LOGNAME KEEP=$KEEP";

fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}: in {out}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn groups(out: &str) -> Vec<u32> {
    let mut g: Vec<u32> = field(out, "Groups")
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    g.sort_unstable();
    g
}

/// (seen, changed) from the summary line of PATH.
fn summary(stderr: &str, path: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("runas: {path}: ")))
        .unwrap_or_else(|| panic!("no summary for {path} in: {stderr}"));
    let num = |word: &str| -> u64 {
        let i = line.find(&format!(" {word}")).unwrap_or_else(|| panic!("{line}"));
        line[..i].rsplit([' ', ';']).next().unwrap().parse().unwrap()
    };
    (num("seen"), num("changed"))
}

fn touch(p: &Path) {
    std::fs::write(p, "x").unwrap();
}

#[test]
fn every_user_form_and_the_ids_read_back() {
    let Some(root) = chroot("every_user_form_and_the_ids_read_back") else {
        return;
    };
    // (spec, uid, gid, groups, HOME, USER)
    type Case<'a> = (&'a str, u32, u32, &'a [u32], &'a str, &'a str);
    let cases: &[Case] = &[
        ("app", 1000, 1000, &[29, 44, 1000], "/home/app", "app"),
        ("1000", 1000, 1000, &[29, 44, 1000], "/home/app", "app"),
        ("app:staff", 1000, 50, &[50], "/home/app", "app"),
        ("app:50", 1000, 50, &[50], "/home/app", "app"),
        ("1000:staff", 1000, 50, &[50], "/home/app", "app"),
        ("1000:44", 1000, 44, &[44], "/home/app", "app"),
        ("4242", 4242, 4242, &[], "/", "4242"),
        ("4242:staff", 4242, 50, &[50], "/", "4242"),
        ("nobody", 65534, 65534, &[65534], "/nonexistent", "nobody"),
    ];
    for (spec, uid, gid, gs, home, user) in cases {
        let o = runas(root.path(), &[spec, "sh", "-c", SHOW]);
        let out = stdout(&o);
        assert_eq!(code(&o), 0, "{spec}: {out} {}", stderr(&o));
        assert_eq!(field(&out, "Uid"), format!("{uid} {uid} {uid} {uid}"), "{spec}");
        assert_eq!(field(&out, "Gid"), format!("{gid} {gid} {gid} {gid}"), "{spec}");
        assert_eq!(groups(&out), gs.to_vec(), "{spec}");
        assert!(
            out.contains(&format!("HOME={home} USER={user} LOGNAME={user} KEEP=kept")),
            "{spec}: {out}"
        );
    }
}

#[test]
fn unknown_user_or_group_is_a_usage_error_listing_the_image_users() {
    let Some(root) = chroot("unknown_user_or_group") else {
        return;
    };
    let o = runas(root.path(), &["appuser", "true"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("runas: user \"appuser\" not found in /etc/passwd (image has: root, app"),
        "{}",
        stderr(&o)
    );
    let o = runas(root.path(), &["app:wheel", "true"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("\"wheel\""), "{}", stderr(&o));
}

#[test]
fn chown_changes_only_what_differs_and_a_second_run_changes_nothing() {
    let Some(root) = chroot("chown_second_run") else {
        return;
    };
    let data = root.join("data");
    for d in 0..30 {
        let dir = data.join(format!("d{d}/inner"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            touch(&dir.join(format!("f{f}")));
        }
    }
    // Already right: counted, not changed.
    touch(&data.join("mine"));
    std::os::unix::fs::chown(data.join("mine"), Some(1000), Some(1000)).unwrap();
    let total = 1 + 30 * 2 + 30 * 20 + 1;
    let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(summary(&stderr(&o), "/data"), (total, total - 1));
    for p in ["", "d0", "d29/inner", "d7/inner/f19"] {
        assert_eq!(owner(&data.join(p)), (1000, 1000), "{p}");
    }
    let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
    assert_eq!(summary(&stderr(&o), "/data"), (total, 0), "{}", stderr(&o));
    // PATH=USER:GROUP gives another owner.
    let o = runas(root.path(), &["--chown", "/data/d3=other:staff", "app", "true"]);
    assert_eq!(summary(&stderr(&o), "/data/d3"), (22, 22), "{}", stderr(&o));
    assert_eq!(owner(&data.join("d3/inner/f0")), (1001, 50));
    assert_eq!(owner(&data.join("d4/inner/f0")), (1000, 1000));
}

#[test]
fn symlinks_are_changed_themselves_never_followed() {
    let Some(root) = chroot("symlink_trap") else {
        return;
    };
    std::fs::create_dir(root.join("secret")).unwrap();
    touch(&root.join("secret/shadow"));
    let data = root.join("data");
    std::os::unix::fs::symlink("/secret/shadow", data.join("abs")).unwrap();
    std::os::unix::fs::symlink("../secret", data.join("rel")).unwrap();
    std::os::unix::fs::symlink("/secret", data.join("dir")).unwrap();
    let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for l in ["abs", "rel", "dir"] {
        assert_eq!(owner(&data.join(l)), (1000, 1000), "the link {l} itself");
    }
    assert_eq!(owner(&root.join("secret")), (0, 0));
    assert_eq!(owner(&root.join("secret/shadow")), (0, 0));
    // A PATH that is itself a link is refused before anything changes.
    std::os::unix::fs::symlink("/secret", root.join("link")).unwrap();
    let o = runas(root.path(), &["--chown", "/link", "app", "true"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert_eq!(owner(&root.join("secret")), (0, 0));
}

#[test]
fn hard_linked_files_are_left_alone_unless_asked() {
    let Some(root) = chroot("hardlink_trap") else {
        return;
    };
    std::fs::create_dir(root.join("secret")).unwrap();
    touch(&root.join("secret/shadow"));
    std::fs::hard_link(root.join("secret/shadow"), root.join("data/shadow")).unwrap();
    touch(&root.join("data/plain"));
    let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(owner(&root.join("secret/shadow")), (0, 0));
    assert_eq!(owner(&root.join("data/plain")), (1000, 1000));
    assert!(
        err.contains("/data/shadow: left alone: it has 2 hard links"),
        "{err}"
    );
    assert!(err.contains("1 hard-linked"), "{err}");
    let o = runas(
        root.path(),
        &["--chown", "/data", "--chown-hardlinks", "app", "true"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(owner(&root.join("secret/shadow")), (1000, 1000));
}

#[test]
fn other_filesystems_inside_path_are_left_alone_unless_asked() {
    let Some(root) = chroot("mount_trap") else {
        return;
    };
    std::fs::create_dir(root.join("data/m")).unwrap();
    touch(&root.join("data/before"));
    // Bind mounts of the same filesystem (st_dev is the same; the mount ID
    // is not): a directory and a single file from outside /data, as
    // `docker run -v` makes them.
    std::fs::create_dir_all(root.join("secret/dir")).unwrap();
    touch(&root.join("secret/dir/key"));
    touch(&root.join("secret/file"));
    std::fs::create_dir(root.join("data/b")).unwrap();
    touch(&root.join("data/bf"));
    let show = "exec chroot \"$R\" /usr/local/bin/runas --chown /data $X app \
                stat -c '%n %u' /data/m /data/m/f /data/b /data/b/key /data/bf /data/before";
    let setup = "mount -t tmpfs none \"$R/data/m\" && touch \"$R/data/m/f\" && \
                 mount --bind \"$R/secret/dir\" \"$R/data/b\" && mount --bind \"$R/secret/file\" \"$R/data/bf\" && ";
    let o = run(ns(root.path(), &format!("{setup}{show}")).env("X", ""));
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        out.contains("/data/m 0\n/data/m/f 0\n/data/b 0\n/data/b/key 0\n/data/bf 0\n/data/before 1000"),
        "{out}"
    );
    assert!(stderr(&o).contains("3 on another mount"), "{}", stderr(&o));
    assert_eq!(owner(&root.join("secret/dir/key")), (0, 0));
    assert_eq!(owner(&root.join("secret/file")), (0, 0));
    let o = run(ns(root.path(), &format!("{setup}{show}")).env("X", "--chown-cross-mounts"));
    assert!(
        stdout(&o).contains("/data/m 1000\n/data/m/f 1000\n/data/b 1000\n/data/b/key 1000\n/data/bf 1000"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn missing_path_is_created_and_a_file_is_refused() {
    let Some(root) = chroot("path_created") else {
        return;
    };
    let o = runas(root.path(), &["--chown", "/data/new/sub", "app", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("/data/new/sub: created;"), "{}", stderr(&o));
    let m = std::fs::metadata(root.join("data/new/sub")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (1000, 1000, 0o755)
    );
    assert_eq!(owner(&root.join("data/new")), (0, 0));
    let o = runas(root.path(), &["--chown", "/etc/passwd", "app", "true"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("/etc/passwd exists and is not a directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn nothing_changes_when_any_part_of_the_command_line_is_bad() {
    let Some(root) = chroot("validation_first") else {
        return;
    };
    touch(&root.join("data/f"));
    for args in [
        &["--chown", "/data", "nosuchuser", "true"][..],
        &["--chown", "/data", "app:nosuchgroup", "true"],
        &["--chown", "/data", "--chown", "/etc/passwd", "app", "true"],
        &["--chown", "/data", "--chown", "/data2=ghost", "app", "true"],
        &["--chown", "/data", "--keep-cap", "FLY", "app", "true"],
        &["--chown", "/data", "app"],
    ] {
        let o = runas(root.path(), args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert_eq!(owner(&root.join("data")), (0, 0), "{args:?}");
        assert_eq!(owner(&root.join("data/f")), (0, 0), "{args:?}");
        assert!(!root.join("data2").exists());
    }
}

#[test]
fn exec_failures_are_127_and_126_in_both_modes() {
    let Some(root) = chroot("exec_failures") else {
        return;
    };
    for init in [&[][..], &["--init"]] {
        let mut a = init.to_vec();
        a.extend(["app", "/nonexistent"]);
        let o = runas(root.path(), &a);
        assert_eq!(code(&o), 127, "{}", stderr(&o));
        assert!(stderr(&o).contains("/nonexistent"), "{}", stderr(&o));
        let mut a = init.to_vec();
        a.extend(["app", "/etc/passwd"]);
        let o = runas(root.path(), &a);
        assert_eq!(code(&o), 126, "{}", stderr(&o));
        assert!(stderr(&o).contains("/etc/passwd"), "{}", stderr(&o));
        let mut a = init.to_vec();
        a.extend(["app", "nosuchcommand"]);
        assert_eq!(code(&runas(root.path(), &a)), 127);
    }
}

#[test]
fn init_forwards_signals_and_returns_the_exit_code() {
    let Some(root) = chroot("init_forwards") else {
        return;
    };
    // The child sends TERM to PID 1 (runas, running as app like the child);
    // runas passes it on; the child's trap answers it.
    let o = runas(
        root.path(),
        &[
            "--init",
            "app",
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; kill -TERM 1; sleep 10 & wait",
        ],
    );
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert!(stdout(&o).contains("got-term"));
    let o = runas(
        root.path(),
        &[
            "--init",
            "app",
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 3' USR1; kill -USR1 1; sleep 10 & wait",
        ],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stdout(&o).contains("got-usr1"));
    // The init itself already runs as the target user.
    let o = runas(
        root.path(),
        &["--init", "app", "sh", "-c", "grep Uid: /proc/1/status"],
    );
    assert_eq!(field(&stdout(&o), "Uid"), "1000 1000 1000 1000");
    // Killed by a signal: 128 + N.
    let o = runas(root.path(), &["--init", "app", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(code(&o), 137);
}

#[test]
fn init_kills_the_process_group_after_grace() {
    let Some(root) = chroot("init_grace") else {
        return;
    };
    let start = Instant::now();
    let o = runas(
        root.path(),
        &[
            "--init",
            "--grace",
            "300ms",
            "app",
            "sh",
            "-c",
            "trap '' TERM; kill -TERM 1; sleep 60",
        ],
    );
    let took = start.elapsed();
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert!(stderr(&o).contains("--grace"), "{}", stderr(&o));
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn init_reaps_orphans() {
    let Some(root) = chroot("init_reaps") else {
        return;
    };
    // The inner sh exits at once, orphaning its sleep, which is then killed:
    // it leaves /proc only if someone reaps it (waiting up to 10 s).
    let script = "sh -c 'sleep 60 & echo $! > /tmp/orphan'; o=$(cat /tmp/orphan); \
                  echo ppid=$(cut -d' ' -f4 /proc/$o/stat) me=$PPID; kill $o; i=0; \
                  while [ -e /proc/$o ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
                  if [ -e /proc/$o ]; then echo zombie=$(cut -d' ' -f3 /proc/$o/stat); else echo reaped; fi";
    let o = runas(root.path(), &["--init", "app", "sh", "-c", script]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out} {}", stderr(&o));
    assert!(out.contains("ppid=1 me=1"), "{out}");
    assert!(out.contains("reaped"), "{out}");
    // Not PID 1: the child-subreaper flag brings the orphan to runas.
    let line = format!(
        "mount -t proc proc \"$R/proc\" && exec chroot \"$R\" /usr/local/bin/runas --init app sh -c {}",
        quote(script)
    );
    let mut c = Command::new("unshare");
    c.args(["--mount", "sh", "-c", &line])
        .env_clear()
        .env("R", root.path());
    let o = run(&mut c);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out} {}", stderr(&o));
    let me = out
        .split("me=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(out.contains(&format!("ppid={me} me={me}")), "{out}");
    assert!(out.contains("reaped"), "{out}");
}

#[test]
fn already_the_target_only_execs() {
    let Some(root) = chroot("already_target") else {
        return;
    };
    touch(&root.join("data/f"));
    let mut c = Command::new("chroot");
    c.args(["--userspec=1000:1000", "--groups=1000"])
        .arg(root.path())
        .args(["/usr/local/bin/runas", "--chown", "/data", "app", "id", "-u"])
        .env_clear()
        .env("PATH", HOST_PATH);
    let o = run(&mut c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1000");
    assert_eq!(
        stderr(&o).matches("already running as app (1000:1000)").count(),
        1,
        "{}",
        stderr(&o)
    );
    assert_eq!(owner(&root.join("data/f")), (0, 0));
}

#[test]
fn an_arbitrary_uid_unknown_to_passwd_only_execs() {
    // docker run --user 12345 / OpenShift: the platform picked the uid.
    let Some(root) = chroot("arbitrary_uid") else {
        return;
    };
    touch(&root.join("data/f"));
    let mut c = Command::new("chroot");
    c.args(["--userspec=12345:0", "--groups=0"])
        .arg(root.path())
        .args(["/usr/local/bin/runas", "--chown", "/data", "app", "id", "-u"])
        .env_clear()
        .env("PATH", HOST_PATH);
    let o = run(&mut c);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(stdout(&o).trim(), "12345");
    assert_eq!(
        err.matches("running as uid 12345, which /etc/passwd does not list")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(owner(&root.join("data/f")), (0, 0), "nothing is chowned");
}

#[test]
fn without_privileges_it_names_the_capability_and_the_fix() {
    let Some(root) = chroot("missing_caps") else {
        return;
    };
    if !have("setpriv", &["--version"]) {
        skip("missing_caps", "needs setpriv (util-linux)");
        return;
    }
    // Another non-root user.
    let mut c = Command::new("chroot");
    c.args(["--userspec=1001:1001", "--groups=1001"])
        .arg(root.path())
        .args(["/usr/local/bin/runas", "app", "true"])
        .env_clear()
        .env("PATH", HOST_PATH);
    let o = run(&mut c);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("running as uid 1001, not root"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("CAP_SETUID"), "{}", stderr(&o));
    // Root without CAP_SETUID (docker run --cap-drop SETUID).
    for (drop, args, name) in [
        ("-setuid", &["app", "true"][..], "CAP_SETUID"),
        ("-setgid", &["app", "true"][..], "CAP_SETGID"),
        ("-chown", &["--chown", "/data", "app", "true"][..], "CAP_CHOWN"),
    ] {
        let mut c = Command::new("setpriv");
        c.arg(format!("--bounding-set={drop}"))
            .arg("--inh-caps=-all")
            .arg("chroot")
            .arg(root.path())
            .arg("/usr/local/bin/runas")
            .args(args)
            .env_clear()
            .env("PATH", HOST_PATH);
        let o = run(&mut c);
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{err}");
        assert!(err.contains(&format!("missing capability {name}")), "{err}");
        assert!(err.contains("--cap-add"), "{err}");
        assert_eq!(owner(&root.join("data")), (0, 0));
    }
}

#[test]
fn hardening_flags() {
    let Some(root) = chroot("hardening") else {
        return;
    };
    let o = runas(root.path(), &["app", "sh", "-c", SHOW]);
    let plain = stdout(&o);
    assert_eq!(field(&plain, "CapEff"), "0000000000000000");
    assert_eq!(field(&plain, "NoNewPrivs"), "0");
    assert_ne!(field(&plain, "CapBnd"), "0000000000000000");
    let o = runas(
        root.path(),
        &["--no-new-privs", "--drop-caps", "app", "sh", "-c", SHOW],
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(field(&out, "NoNewPrivs"), "1");
    assert_eq!(field(&out, "CapBnd"), "0000000000000000");
    let o = runas(
        root.path(),
        &[
            "--keep-cap",
            "NET_BIND_SERVICE",
            "--drop-caps",
            "app",
            "sh",
            "-c",
            SHOW,
        ],
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // CAP_NET_BIND_SERVICE is bit 10.
    assert_eq!(field(&out, "CapAmb"), "0000000000000400", "{out}");
    assert_eq!(field(&out, "CapEff"), "0000000000000400", "{out}");
    assert_eq!(field(&out, "CapBnd"), "0000000000000400", "{out}");
    assert_eq!(field(&out, "Uid"), "1000 1000 1000 1000");
}

#[test]
fn environment_fallbacks() {
    let Some(root) = chroot("env_fallbacks") else {
        return;
    };
    touch(&root.join("data/f"));
    let o = run(&mut ns(
        root.path(),
        "RUNAS_USER=app RUNAS_CHOWN=/data RUNAS_INIT=1 exec chroot \"$R\" /usr/local/bin/runas id -u",
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1000");
    assert_eq!(owner(&root.join("data/f")), (1000, 1000));
    let o = run(&mut ns(
        root.path(),
        "RUNAS_GRACE=soon exec chroot \"$R\" /usr/local/bin/runas app true",
    ));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("RUNAS_GRACE"), "{}", stderr(&o));
}

/// While runas walks, a thread keeps swapping a directory of the tree for a
/// symlink to a root-owned directory outside it (and back). Whatever runas
/// sees, nothing outside may change owner.
#[test]
fn swapping_a_directory_for_a_symlink_during_the_walk_changes_nothing_outside() {
    let Some(root) = chroot("swap_race") else {
        return;
    };
    let outside = root.join("secret");
    std::fs::create_dir(&outside).unwrap();
    for i in 0..200 {
        touch(&outside.join(format!("s{i}")));
    }
    let data = root.join("data");
    for i in 0..20 {
        let d = data.join(format!("d{i}"));
        std::fs::create_dir(&d).unwrap();
        for j in 0..200 {
            touch(&d.join(format!("f{j}")));
        }
        std::os::unix::fs::symlink("/secret", data.join(format!("l{i}"))).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let data = data.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for i in 0..20 {
                    let (d, l, t) = (
                        data.join(format!("d{i}")),
                        data.join(format!("l{i}")),
                        data.join(format!("t{i}")),
                    );
                    // d <-> l through t: each rename is atomic.
                    let _ = std::fs::rename(&d, &t);
                    let _ = std::fs::rename(&l, &d);
                    let _ = std::fs::rename(&t, &l);
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let mut runs = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) || runs < 5 {
        let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        // Reset, so the next run has work to do again.
        let mut c = Command::new("chown");
        c.args(["-R", "-h", "0:0"]).arg(&data);
        run(&mut c);
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0);
    assert_eq!(owner(&outside), (0, 0));
    for i in 0..200 {
        assert_eq!(
            owner(&outside.join(format!("s{i}"))),
            (0, 0),
            "s{i} after {runs} runs"
        );
    }
}

/// A directory with many entries (100 000 by default; DOCKHAND_BIG=1000000
/// for a million) is walked in full; memory stays small.
#[test]
fn a_huge_flat_directory() {
    let Some(root) = chroot("huge_dir") else {
        return;
    };
    let n: usize = std::env::var("DOCKHAND_BIG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let big = root.join("data/big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..n {
        std::fs::File::create(big.join(format!("{i:07}"))).unwrap();
    }
    let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(summary(&stderr(&o), "/data"), (n as u64 + 2, n as u64 + 2));
    let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
    assert_eq!(summary(&stderr(&o), "/data"), (n as u64 + 2, 0));
}

/// (session id, controlling tty) of the exec'd command, run under a pseudo
/// terminal made by script(1).
fn session_and_tty(root: &Path, flags: &str) -> (String, String, String) {
    let line = format!(
        "unshare --pid --fork --mount --mount-proc=\"$R/proc\" chroot \"$R\" /usr/local/bin/runas {flags} \
         app cut -d' ' -f1,6,7 /proc/self/stat"
    );
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("R", root)
        .env("PATH", HOST_PATH);
    let o = run(&mut c);
    let out = stdout(&o);
    let f: Vec<String> = out
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(f.len(), 3, "{out} {}", stderr(&o));
    (f[0].clone(), f[1].clone(), f[2].clone())
}

#[test]
fn setsid_detaches_from_the_terminal() {
    let Some(root) = chroot("setsid") else {
        return;
    };
    if !have("script", &["--version"]) {
        skip("setsid", "needs script (util-linux)");
        return;
    }
    // Without --setsid the command keeps the terminal.
    let (_, _, tty) = session_and_tty(root.path(), "");
    assert_ne!(tty, "0");
    for flags in ["--setsid", "--setsid --init"] {
        let (pid, sid, tty) = session_and_tty(root.path(), flags);
        assert_eq!(tty, "0", "{flags}: no controlling terminal");
        assert_eq!(pid, sid, "{flags}: leads its own session");
    }
}

/// `docker stop`: TERM from outside the namespace reaches runas as PID 1 and
/// is passed on.
#[test]
fn init_passes_on_term_from_outside_the_namespace() {
    use std::io::{BufRead, BufReader};
    let Some(root) = chroot("init_term_from_outside") else {
        return;
    };
    let mut c = ns(
        root.path(),
        "exec chroot \"$R\" /usr/local/bin/runas --init app sh -c \
         'trap \"echo got-term; exit 9\" TERM; echo ready; sleep 30 & wait'",
    );
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // unshare --fork's child is runas (chroot exec'd it).
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let runas_pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: kill has no memory preconditions; the pid is our grandchild.
    assert_eq!(unsafe { libc::kill(runas_pid, libc::SIGTERM) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(rest.contains("got-term"), "{rest}");
    assert_eq!(status.code(), Some(9));
}

/// The Kubernetes capability set (README): CHOWN, SETUID and SETGID only, no
/// CAP_DAC_*. Directories the service made 0700 in its volume (and the
/// volume itself made 0700) are entered as their owner, and root-owned
/// entries inside are still handed over; the service starts. (SYS_CHROOT
/// stays for the test's chroot; it grants no file access.)
#[test]
fn directories_only_their_owner_may_read_are_walked_with_three_capabilities() {
    let Some(root) = chroot("dac_free") else {
        return;
    };
    if !have("setpriv", &["--version"]) {
        skip("dac_free", "needs setpriv (util-linux)");
        return;
    }
    let data = root.join("data");
    for d in ["priv/sub", "other/deeper"] {
        std::fs::create_dir_all(data.join(d)).unwrap();
    }
    for f in ["priv/root-file", "priv/sub/root-file", "other/deeper/root-file"] {
        touch(&data.join(f));
    }
    let set = |p: &str, uid: u32, mode: u32| {
        let p = root.join(p);
        std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    // The service's own 0700 directories; one of another uid (1001) 0700
    // inside a 0700 one of the service; /data itself 0700.
    set("data/priv/sub", 1000, 0o700);
    set("data/priv", 1000, 0o700);
    set("data/other/deeper", 1001, 0o700);
    set("data/other", 1000, 0o700);
    set("data", 1000, 0o700);
    let o = run(Command::new("setpriv")
        .arg("--bounding-set=-all,+chown,+setuid,+setgid,+sys_chroot")
        .arg("--inh-caps=-all")
        .arg("chroot")
        .arg(root.path())
        .args([
            "/usr/local/bin/runas",
            "--chown",
            "/data",
            "app",
            "sh",
            "-c",
            "echo started as $(id -u)",
        ])
        .env_clear()
        .env("PATH", HOST_PATH));
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(stdout(&o), "started as 1000\n", "{err}");
    // data, priv, sub, other, deeper, 3 files.
    assert_eq!(summary(&err, "/data"), (8, 4), "{err}");
    for p in [
        "data",
        "data/priv/root-file",
        "data/priv/sub/root-file",
        "data/other/deeper",
        "data/other/deeper/root-file",
    ] {
        assert_eq!(owner(&root.join(p)), (1000, 1000), "{p}");
    }
    for p in ["data", "data/priv", "data/priv/sub", "data/other/deeper"] {
        let m = std::fs::metadata(root.join(p)).unwrap().permissions().mode();
        assert_eq!(m & 0o7777, 0o700, "{p}: mode changed");
    }
    assert_eq!(owner(&root.join("etc")), (0, 0));
}

/// A volume written by another uid: its directories are made root's while
/// their entries change (so that uid cannot swap names meanwhile), then
/// given to the target; modes (setgid included) stay, group-writable ones
/// and 0700 ones too, and every entry ends up the target's.
#[test]
fn a_tree_of_another_uid_is_handed_over_with_modes_kept() {
    let Some(root) = chroot("other_uid_tree") else {
        return;
    };
    let data = root.join("data");
    let dirs = [
        ("a", 0o755),
        ("a/s", 0o2775),
        ("a/g", 0o2755),
        ("a/p", 0o700),
        ("b", 0o777),
    ];
    for (d, _) in dirs {
        std::fs::create_dir_all(data.join(d)).unwrap();
        for f in ["f1", "f2"] {
            touch(&data.join(d).join(f));
        }
    }
    std::os::unix::fs::symlink("/etc/passwd", data.join("a/s/link")).unwrap();
    let o = run(Command::new("chown").args(["-R", "-h", "1001:1001"]).arg(&data));
    assert!(o.status.success());
    for (d, mode) in dirs {
        std::fs::set_permissions(data.join(d), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let o = runas(root.path(), &["--chown", "/data", "app", "true"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    // data, 5 dirs, 10 files, the link.
    assert_eq!(summary(&err, "/data"), (17, 17), "{err}");
    let f = run(Command::new("find")
        .arg(&data)
        .args(["!", "-user", "1000", "-o", "!", "-group", "1000"]));
    assert_eq!(stdout(&f), "", "not handed over");
    for (d, mode) in dirs {
        let m = std::fs::metadata(data.join(d)).unwrap().permissions().mode();
        assert_eq!(m & 0o7777, mode, "{d}: mode changed");
    }
    assert_eq!(owner(&root.join("etc/passwd")), (0, 0));
}

// ---------------------------------------------------------------------------
// --init on a terminal, signal dispositions, real-time signals, stops

/// Generous: these wait for events, never for a fixed time.
const DEADLINE: Duration = Duration::from_secs(60);

/// A pseudo terminal: the test holds the master side; the command gets the
/// slave as stdin, stdout, stderr and controlling terminal, in a session of
/// its own, as a terminal emulator's shell or `docker run -t`'s PID 1 does.
struct Pty {
    master: std::fs::File,
    child: std::process::Child,
    /// Everything read so far, and how much of it `expect` has used up.
    seen: String,
    used: usize,
}

impl Pty {
    fn spawn(mut cmd: Command) -> Pty {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::FromRawFd;
        use std::os::unix::process::CommandExt;
        // SAFETY: posix_openpt takes flags and returns a new descriptor or -1.
        let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        // SAFETY: `m` is a descriptor we own from here on.
        let master = unsafe { std::fs::File::from_raw_fd(m) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `m` is an open pty master; `name` is writable for its length.
        unsafe {
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        }
        // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .unwrap();
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid, ioctl and sigaction are async-signal-safe and touch
        // no memory of the parent; stdin is the slave by now.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Every signal at its default, as a terminal starts its shell:
                // a test run started in the background by a shell (CI's) has
                // INT and QUIT ignored, runas keeps what it inherits, and
                // Ctrl-C would reach a command that ignores it. (Errors are
                // for KILL, STOP and the C library's own signals.)
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                for sig in 1..=libc::SIGRTMAX() {
                    libc::sigaction(sig, &dfl, std::ptr::null_mut());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        // Dropping `cmd` closes our copies of the slave: once the command and
        // everything it started are gone, reading the master ends (EIO).
        drop(cmd);
        Pty {
            master,
            child,
            seen: String::new(),
            used: 0,
        }
    }

    /// Read more output, waiting at most until `deadline`; false at the end
    /// of the output (every holder of the slave gone).
    fn read_more(&mut self, deadline: Instant) -> bool {
        use std::io::Read;
        use std::os::unix::io::AsRawFd;
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r <= 0 {
            // What each process of the terminal's session was doing, to tell
            // a hang of runas from one of the shell or the command.
            let ps = Command::new("ps")
                .args(["-o", "pid,ppid,pgid,tpgid,stat,wchan:24,args", "-s"])
                .arg(self.child.id().to_string())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!(
                "no more output from the terminal within {DEADLINE:?}; so far:\n{}\nits session:\n{ps}",
                self.seen
            );
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
        }
    }

    /// Wait for `want` in what the terminal shows after what was expected
    /// last; panics with all output when it does not come.
    fn expect(&mut self, want: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(i) = self.seen[self.used..].find(want) {
                let before = self.seen[self.used..self.used + i].to_string();
                self.used += i + want.len();
                return before;
            }
            assert!(
                self.read_more(deadline),
                "the terminal closed before {want:?}; it showed:\n{}",
                self.seen
            );
        }
    }

    /// Type `s` on the terminal.
    fn send(&mut self, s: &str) {
        use std::io::Write;
        self.master.write_all(s.as_bytes()).unwrap();
    }

    /// Read to the end, then the command's exit status; and all output.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + DEADLINE;
        while self.read_more(deadline) {}
        let st = self.child.wait().unwrap();
        let code = st
            .code()
            .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0));
        (code, std::mem::take(&mut self.seen))
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ns(root, inner)` under timeout(1), with --kill-child: a regression that
/// hangs fails the test (killed by KILL, 137) instead of hanging it, and
/// leaves nothing running.
fn ns_bounded(root: &Path, inner: &str) -> Command {
    let c = ns(root, inner);
    let mut k = Command::new("timeout");
    k.args([
        "-s",
        "KILL",
        &DEADLINE.as_secs().to_string(),
        "unshare",
        "--kill-child",
    ])
    .args(c.get_args())
    .env_clear()
    .envs(
        c.get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_os_string(), v.to_os_string()))),
    );
    k
}

/// A host shell line (with $R the chroot) as PID 1 of new PID and mount
/// namespaces, on a terminal.
fn ns_on_pty(root: &Path, inner: &str) -> Pty {
    Pty::spawn(ns_bounded(root, inner))
}

/// Prints "fg=PGRP TPGID" from /proc/PID/stat of a shell's child (in the
/// shell's process group); see `in_foreground`.
const FOREGROUND_LINE: &str = "echo fg=$(cut -d' ' -f5,8 /proc/self/stat)";

/// Read FOREGROUND_LINE's answer: whether the process group held the
/// terminal's foreground (its pgrp is the terminal's tpgid).
fn in_foreground(t: &mut Pty) -> bool {
    t.expect("fg=");
    let line = t.expect("\n");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 2, "{line:?}");
    f[0] == f[1]
}

#[test]
fn init_gives_the_terminal_to_the_command_and_ctrl_c_reaches_it() {
    let Some(root) = chroot("init_terminal") else {
        return;
    };
    // As PID 1 (docker run -t): runas used to stop in tcsetpgrp and hang.
    let mut t = ns_on_pty(
        root.path(),
        &format!(
            "exec chroot \"$R\" /usr/local/bin/runas --init app sh -c {}",
            quote(&format!("{FOREGROUND_LINE}; echo cat-next; exec cat"))
        ),
    );
    assert!(in_foreground(&mut t), "{}", t.seen);
    t.expect("cat-next");
    // cat reads from the terminal only in the foreground (else SIGTTIN):
    // what it echoes back shows it reads.
    t.send("ping-1\n");
    t.expect("ping-1"); // the terminal's echo
    t.expect("ping-1"); // cat's
    t.send("\x03");
    let (code, out) = t.finish();
    assert_eq!(code, 130, "Ctrl-C: killed by SIGINT, 128+2: {out}");
    assert!(!out.contains("stopped"), "{out}");

    // Not PID 1, under a shell that is not interactive: the command gets the
    // foreground, and the shell gets it back when runas is done.
    let r = bin("runas");
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "{} --init root sh -c {}; echo back-$?; {FOREGROUND_LINE}",
        r.display(),
        quote(&format!("{FOREGROUND_LINE}; echo cat-next; exec cat"))
    ));
    let mut t = Pty::spawn(c);
    assert!(in_foreground(&mut t), "{}", t.seen);
    t.expect("cat-next");
    t.send("ping-2\n");
    t.expect("ping-2");
    t.expect("ping-2");
    t.send("\x03");
    t.expect("back-130");
    assert!(in_foreground(&mut t), "given back: {}", t.seen);
    let (code, out) = t.finish();
    assert_eq!(code, 0, "{out}");

    // Started in the background by a job-control shell: runas leaves the
    // terminal where it is.
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "set -m; {} --init root sh -c {} & wait $!; echo bg-done; {FOREGROUND_LINE}",
        r.display(),
        quote(FOREGROUND_LINE)
    ));
    let mut t = Pty::spawn(c);
    assert!(
        !in_foreground(&mut t),
        "a background runas took the terminal: {}",
        t.seen
    );
    t.expect("bg-done");
    assert!(in_foreground(&mut t), "the shell kept it: {}", t.seen);
    let (code, out) = t.finish();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn init_runs_an_interactive_shell_on_a_terminal() {
    let Some(root) = chroot("init_interactive") else {
        return;
    };
    let mut t = ns_on_pty(
        root.path(),
        "exec chroot \"$R\" /usr/local/bin/runas --init app sh -i",
    );
    // The answer, not the typed line (which the terminal echoes).
    t.send("echo hi-$((6*7))\n");
    t.expect("hi-42");
    // A foreground job of the shell: it reads, and Ctrl-C ends it, not the
    // shell.
    // (Through sh -c: once go-6 shows, nothing reads the terminal but the
    // job, so the line editor cannot swallow what is typed next.)
    t.send("sh -c 'echo go-$((2*3)); exec cat'\n");
    t.expect("go-6");
    t.send("ping-3\n");
    t.expect("ping-3");
    t.expect("ping-3");
    t.send("\x03");
    // The shell takes the terminal back and may drop what was typed
    // before its next prompt.
    t.expect("$ ");
    t.send("echo rc-$?\n");
    t.expect("rc-130");
    t.expect("$ ");
    t.send("exit 3\n");
    let (code, out) = t.finish();
    assert_eq!(code, 3, "the shell's status through runas: {out}");
    assert!(!out.contains("runas:"), "runas had nothing to say: {out}");
}

/// SigIgn and SigBlk (hex masks) of COMMAND, started through `launcher`
/// (runas or tini) by a parent that ignores SIGHUP (as nohup does) and, with
/// `pipe_ignored`, SIGPIPE (as Python does), and blocks SIGUSR1 and signal
/// 40 (a real-time one).
fn dispositions_under(launcher: &[&str], pipe_ignored: bool) -> (String, String) {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(launcher[0]);
    c.args(&launcher[1..])
        .args(["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]);
    // SAFETY: only sigaction and sigprocmask, async-signal-safe, on local
    // data; std has already reset the mask and SIGPIPE when this runs.
    unsafe {
        c.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigaddset(&mut set, 40);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            if pipe_ignored {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let o = run(&mut c);
    assert!(o.status.success(), "{launcher:?}: {}", stderr(&o));
    let out = stdout(&o);
    (field(&out, "SigIgn"), field(&out, "SigBlk"))
}

#[test]
fn command_keeps_the_ignored_and_blocked_signals_it_would_have_under_tini() {
    let test = "init_dispositions";
    if !need_root(test) {
        return;
    }
    if !have("tini", &["--version"]) {
        skip(test, "needs tini (Debian package tini); `make test` installs it");
        return;
    }
    let r = bin("runas");
    let r = r.to_str().unwrap();
    let bit = |n: u32| 1u64 << (n - 1);
    for pipe_ignored in [false, true] {
        let tini = dispositions_under(&["tini", "-s", "--"], pipe_ignored);
        // What the parent set, so that the comparison below can fail.
        let ign = u64::from_str_radix(&tini.0, 16).unwrap();
        let blk = u64::from_str_radix(&tini.1, 16).unwrap();
        assert_eq!(ign & bit(1), bit(1), "HUP ignored under tini: {tini:?}");
        assert_eq!(ign & bit(13) != 0, pipe_ignored, "PIPE under tini: {tini:?}");
        assert_eq!(blk, bit(10) | bit(40), "USR1 and 40 blocked under tini: {tini:?}");
        for launcher in [&[r, "--init", "root"][..], &[r, "root"][..]] {
            let got = dispositions_under(launcher, pipe_ignored);
            assert_eq!(
                got, tini,
                "{launcher:?} (SIGPIPE ignored by the parent: {pipe_ignored}) vs tini -s"
            );
        }
    }
}

/// The (first) child of `pid`: runas under `unshare --fork` (chroot exec'd
/// it) or under timeout(1).
fn ns_child(pid: u32) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pid)).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn init_passes_real_time_signals_on_as_pid_1_and_not() {
    use std::io::{BufRead, BufReader};
    let Some(root) = chroot("init_realtime") else {
        return;
    };
    // 34: glibc's SIGRTMIN (Docker's RTMIN), which runas's musl keeps for
    // itself; 37: SIGRTMIN+3 for glibc and Docker, systemd's stop signal;
    // 64: SIGRTMAX.
    for sig in [34, 37, 64] {
        let script = format!("trap 'echo got-{sig}; kill $!; exit 5' {sig}; echo ready; sleep 1000 & wait");
        for pid1 in [true, false] {
            let mut c = if pid1 {
                ns_bounded(
                    root.path(),
                    &format!(
                        "exec chroot \"$R\" /usr/local/bin/runas --init app sh -c {}",
                        quote(&script)
                    ),
                )
            } else {
                let mut c = Command::new("timeout");
                c.args(["-s", "KILL", &DEADLINE.as_secs().to_string()])
                    .arg(bin("runas"))
                    .args(["--init", "root", "sh", "-c", &script]);
                c
            };
            let mut child = c
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "ready");
            // timeout -> unshare -> runas, or timeout -> runas.
            let runas_pid = if pid1 {
                ns_child(ns_child(child.id()) as u32)
            } else {
                ns_child(child.id())
            };
            // SAFETY: kill has no memory preconditions; the pid is runas.
            assert_eq!(unsafe { libc::kill(runas_pid, sig) }, 0);
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
            let o = child.wait_with_output().unwrap();
            assert!(
                rest.contains(&format!("got-{sig}")),
                "signal {sig}, PID 1: {pid1}: {rest}"
            );
            assert_eq!(
                o.status.code(),
                Some(5),
                "signal {sig}, PID 1: {pid1}: runas survived and exited with the command's status; {}",
                stderr(&o)
            );
        }
    }
    // From inside: the kernel drops a signal to PID 1 that PID 1 does not
    // take, so only a forwarding init lets this through.
    let o = run(&mut ns_bounded(
        root.path(),
        "exec chroot \"$R\" /usr/local/bin/runas --init app sh -c \
         'trap \"echo got-rt; exit 4\" 37; kill -37 1; sleep 1000 & wait'",
    ));
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    // Killed by a real-time signal: 128 + N.
    let o = runas(root.path(), &["--init", "app", "sh", "-c", "kill -40 $$"]);
    assert_eq!(code(&o), 168, "{}", stderr(&o));
}

#[test]
fn a_stopped_command_does_not_leave_the_init_hanging() {
    let Some(root) = chroot("init_stopped") else {
        return;
    };
    // As PID 1 nothing above could resume a Ctrl-Z'd command: runas does.
    let o = run(&mut ns_bounded(
        root.path(),
        "exec chroot \"$R\" /usr/local/bin/runas --init app sh -c 'kill -TSTP $$; echo resumed'",
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "resumed");
    assert!(stderr(&o).contains("SIGTSTP"), "{}", stderr(&o));

    // Not PID 1 and no job control above (the test is runas's parent, in
    // its process group): the same.
    let o = run(Command::new("timeout")
        .args(["-s", "KILL", &DEADLINE.as_secs().to_string()])
        .arg(bin("runas"))
        .args(["--init", "root", "sh", "-c", "kill -TSTP $$; echo resumed"])
        .stdin(std::process::Stdio::null()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "resumed");

    // A job of a job-control shell: runas stops with its command, so the
    // shell sees the job stopped, and `fg` resumes both.
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "set -m; {} --init root sh -c {}; echo stopped-$?; fg; echo done-$?",
        bin("runas").display(),
        quote("kill -TSTP $$; echo resumed")
    ));
    let mut t = Pty::spawn(c);
    t.expect("stopped-");
    t.expect("resumed");
    t.expect("done-0");
    let (code, out) = t.finish();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("continues it"), "runas left it to the shell: {out}");

    // STOP, sent on purpose, is left until CONT comes.
    let mut child = Command::new(bin("runas"))
        .args([
            "--init",
            "root",
            "sh",
            "-c",
            "echo $$; kill -STOP $$; echo resumed",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let cmd: i32 = line.trim().parse().unwrap();
    let start = Instant::now();
    while proc_state(cmd) != Some('T') {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the command did not stop: {:?}", proc_state(cmd));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // CONT to runas is passed on.
    // SAFETY: kill has no memory preconditions; the pid is our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGCONT) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(rest.trim(), "resumed");
    assert!(
        stderr(&o).contains("stays stopped until runas gets SIGCONT"),
        "{}",
        stderr(&o)
    );
}

/// The state letter of `pid` from /proc/PID/stat.
fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

// ---------------------------------------------------------------------------
// --stop-delay, --signal-group, and waiting for what COMMAND left (issue 22)

/// A running command whose stdout and stderr are read on threads into one
/// text, so every wait is for what it printed, and bounded. Lines that must
/// come in order go to one stream (the services below write to stderr, as
/// runas does).
struct Watched {
    child: std::process::Child,
    seen: Arc<(std::sync::Mutex<(String, usize)>, std::sync::Condvar)>,
}

impl Watched {
    fn spawn(mut c: Command) -> Watched {
        let mut child = c
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let seen = Arc::new((
            std::sync::Mutex::new((String::new(), 0)),
            std::sync::Condvar::new(),
        ));
        let readers: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for r in readers {
            let seen = seen.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                let mut r = std::io::BufReader::new(r);
                let mut line = String::new();
                loop {
                    line.clear();
                    let n = r.read_line(&mut line).unwrap_or(0);
                    let (lock, cv) = &*seen;
                    let mut g = lock.lock().unwrap();
                    if n == 0 {
                        g.1 += 1;
                        cv.notify_all();
                        return;
                    }
                    g.0.push_str(&line);
                    cv.notify_all();
                }
            });
        }
        Watched { child, seen }
    }

    fn text(&self) -> String {
        self.seen.0.lock().unwrap().0.clone()
    }

    /// Wait (DEADLINE at most) until `what` has been printed; the text so far.
    fn wait_for(&self, what: &str) -> String {
        let (lock, cv) = &*self.seen;
        let end = Instant::now() + DEADLINE;
        let mut g = lock.lock().unwrap();
        loop {
            if g.0.contains(what) {
                return g.0.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                g.1 < 2 && !left.is_zero(),
                "waited for {what:?}; printed: {}",
                g.0
            );
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    /// Wait for the end (both streams closed, the process reaped): status and text.
    fn finish(mut self) -> (i32, String) {
        {
            let (lock, cv) = &*self.seen;
            let end = Instant::now() + DEADLINE;
            let mut g = lock.lock().unwrap();
            while g.1 < 2 {
                let left = end.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "output still open; printed: {}", g.0);
                g = cv.wait_timeout(g, left).unwrap().0;
            }
        }
        let st = self.child.wait().unwrap();
        (st.code().unwrap_or(-1), self.text())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// runas ARGS in the chroot as PID 1 of its namespace, bounded, once
/// `ready` is printed.
fn init_printed(root: &Path, args: &[&str], ready: &str) -> Watched {
    let line: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let w = Watched::spawn(ns_bounded(
        root,
        &format!("exec chroot \"$R\" /usr/local/bin/runas {}", line.join(" ")),
    ));
    w.wait_for(ready);
    w
}

/// As `init_printed`, for a COMMAND that keeps running after `ready`; and
/// runas's pid as seen from here (timeout -> unshare -> runas).
fn watched_init(root: &Path, args: &[&str], ready: &str) -> (Watched, i32) {
    let w = init_printed(root, args, ready);
    let pid = ns_child(ns_child(w.child.id()) as u32);
    (w, pid)
}

fn send(pid: i32, sig: i32) {
    // SAFETY: kill has no memory preconditions; the pid is runas, a
    // descendant of this test.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid} {sig}");
}

/// The position of `what` in `text`; panics when it is not there.
fn at(text: &str, what: &str) -> usize {
    text.find(what)
        .unwrap_or_else(|| panic!("no {what:?} in: {text}"))
}

#[test]
fn init_stop_delay_holds_the_first_term_until_it_passes_or_another_comes() {
    let Some(root) = chroot("init_stop_delay") else {
        return;
    };
    let service = "trap 'echo service: got-usr1 >&2' USR1; trap 'echo service: got-term >&2; exit 7' TERM; \
                   trap 'echo service: got-int >&2; exit 8' INT; echo service: ready >&2; \
                   while :; do sleep 1 & wait $!; done";
    // A second TERM passes it on at once. Until then the service runs: a
    // USR1 sent after the TERM reaches it and is answered (had the TERM
    // been passed on, its trap would have ended the service first).
    let (w, pid) = watched_init(
        root.path(),
        &["--init", "--stop-delay", "1h", "app", "sh", "-c", service],
        "service: ready",
    );
    send(pid, libc::SIGTERM);
    w.wait_for("runas: got SIGTERM; passing it on after --stop-delay 1h");
    send(pid, libc::SIGUSR1);
    let text = w.wait_for("service: got-usr1");
    assert!(
        !text.contains("got-term"),
        "TERM passed on during the delay: {text}"
    );
    send(pid, libc::SIGTERM);
    let (code, text) = w.finish();
    assert_eq!(code, 7, "the service's status: {text}");
    assert!(
        at(&text, "service: got-usr1") < at(&text, "second SIGTERM: passing SIGTERM on now"),
        "{text}"
    );
    assert!(
        at(&text, "passing SIGTERM on now") < at(&text, "service: got-term"),
        "{text}"
    );
    assert_eq!(text.matches("got-term").count(), 1, "{text}");

    // An INT ends the delay: it goes on at once, instead of the held TERM.
    let (w, pid) = watched_init(
        root.path(),
        &["--init", "--stop-delay", "1h", "app", "sh", "-c", service],
        "service: ready",
    );
    send(pid, libc::SIGTERM);
    w.wait_for("passing it on after --stop-delay 1h");
    send(pid, libc::SIGINT);
    let (code, text) = w.finish();
    assert_eq!(code, 8, "{text}");
    assert!(
        at(
            &text,
            "SIGINT during --stop-delay: passing SIGINT on now, instead of the SIGTERM"
        ) < at(&text, "service: got-int"),
        "{text}"
    );
    assert!(!text.contains("got-term"), "{text}");

    // The delay runs out: the TERM goes on by itself.
    let (w, pid) = watched_init(
        root.path(),
        &["--init", "--stop-delay", "200ms", "app", "sh", "-c", service],
        "service: ready",
    );
    send(pid, libc::SIGTERM);
    let (code, text) = w.finish();
    assert_eq!(code, 7, "{text}");
    assert!(
        at(&text, "after --stop-delay 200ms") < at(&text, "--stop-delay is over: passing SIGTERM on")
            && at(&text, "--stop-delay is over") < at(&text, "service: got-term"),
        "{text}"
    );
}

/// COMMAND starts a child that records its pid in GC, traps TERM with
/// TRAP, and keeps running; COMMAND waits for GC and exits 3.
fn leaves_a_child(gc: &str, trap: &str) -> String {
    format!(
        "rm -f {gc}; sh -c 'trap \"{trap}\" TERM; echo $$ > {gc}; \
         while :; do sleep 1 & wait $!; done' & while [ ! -e {gc} ]; do sleep 0.05; done; \
         echo service: leaving >&2; exit 3"
    )
}

#[test]
fn init_waits_for_what_the_command_left_then_kills_it() {
    let Some(root) = chroot("init_drain") else {
        return;
    };
    // As PID 1: COMMAND exits 3 on its own; the child it left gets TERM
    // and runs its trap before runas exits (before, runas exited at once
    // and the kernel KILLed the child: no cleanup line).
    let script = leaves_a_child("/tmp/gc", "echo grandchild: cleaning up >&2; exit 0");
    let w = init_printed(
        root.path(),
        &["--init", "app", "sh", "-c", &script],
        "service: leaving",
    );
    let (code, text) = w.finish();
    assert_eq!(code, 3, "COMMAND's status: {text}");
    assert!(
        at(&text, "command ended (status 3); sending SIGTERM to what it left")
            < at(&text, "grandchild: cleaning up"),
        "{text}"
    );
    assert!(!text.contains("sending KILL"), "nothing needed KILL: {text}");

    // A child that ignores TERM is KILLed after --grace; COMMAND's status stays.
    let script = leaves_a_child("/tmp/gc", "");
    let w = init_printed(
        root.path(),
        &["--init", "--grace", "300ms", "app", "sh", "-c", &script],
        "service: leaving",
    );
    let (code, text) = w.finish();
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("processes left by the command still running after --grace; sending KILL"),
        "{text}"
    );

    // Not PID 1: the child comes to runas as a child subreaper, gets TERM,
    // then KILL, and is gone when runas exits. (Not kill(-1): here that
    // would reach every process of the test's user.)
    let dir = TempDir::new("drain");
    let gc = dir.join("gc");
    let script = leaves_a_child(gc.to_str().unwrap(), "");
    let w = Watched::spawn({
        let mut c = Command::new("timeout");
        c.args(["-s", "KILL", &DEADLINE.as_secs().to_string()])
            .arg(bin("runas"))
            .args(["--init", "--grace", "300ms", "root", "sh", "-c", &script]);
        c
    });
    let (code, text) = w.finish();
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("sending SIGTERM to what it left ("), "{text}");
    assert!(text.contains("sending KILL"), "{text}");
    let left: i32 = std::fs::read_to_string(&gc).unwrap().trim().parse().unwrap();
    assert!(
        proc_state(left).is_none(),
        "the child {left} outlived runas: {:?}",
        proc_state(left)
    );
}

#[test]
fn init_signal_group_passes_signals_to_the_whole_group() {
    let Some(root) = chroot("init_signal_group") else {
        return;
    };
    // COMMAND's child, in COMMAND's process group, notes a USR1 and says on
    // TERM (which runas sends to what COMMAND leaves) whether it had one.
    let script = |parent_trap: &str| {
        format!(
            "rm -f /tmp/got /tmp/ready; sh -c 'trap \"touch /tmp/got\" USR1; trap \"if [ -e /tmp/got ]; \
             then echo child-usr1=yes >&2; else echo child-usr1=no >&2; fi; exit 0\" TERM; touch /tmp/ready; \
             while :; do sleep 1 & wait $!; done' & while [ ! -e /tmp/ready ]; do sleep 0.05; done; \
             trap '{parent_trap}' USR1; echo service: ready >&2; while :; do sleep 1 & wait $!; done"
        )
    };
    let with = script("while [ ! -e /tmp/got ]; do sleep 0.05; done; exit 4");
    let (w, pid) = watched_init(
        root.path(),
        &["--init", "--signal-group", "app", "sh", "-c", &with],
        "service: ready",
    );
    send(pid, libc::SIGUSR1);
    let (code, text) = w.finish();
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("child-usr1=yes"), "{text}");

    let without = script("exit 4");
    let (w, pid) = watched_init(
        root.path(),
        &["--init", "app", "sh", "-c", &without],
        "service: ready",
    );
    send(pid, libc::SIGUSR1);
    let (code, text) = w.finish();
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("child-usr1=no"), "only COMMAND got USR1: {text}");
}
