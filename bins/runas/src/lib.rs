//! runas: chown data directories, drop root to USER[:GROUP], then exec
//! COMMAND or stay as a tiny init (`--init`). The README's runas section is the user-facing description.
//!
//! Order of work: parse and validate everything (user, groups, every
//! --chown PATH, capabilities), then change ownership, then drop privileges
//! and check the result with the kernel, then exec or supervise.
#![forbid(unsafe_code)]

pub mod chown;
mod dirstack;
pub mod init;

use argh::FromArgs;
use dockhand::cli::{self, Env, Flag, Kind, ProcessEnv, Tail};
use dockhand::sys::fs;
use dockhand::sys::privs::{self, Cap};
use dockhand::users::{Db, Identity};
use dockhand::{duration, exec, out, Error};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const TOOL: &str = "runas";

#[derive(FromArgs, Debug)]
/// Change ownership of data directories, drop root to USER[:GROUP], then exec
/// COMMAND, or run it under a tiny init with --init.
/// Usage: runas [OPTIONS] USER[:GROUP] [--] COMMAND [ARGS...]
struct Args {
    /// before dropping root, give PATH (created 0755 if missing) and all below
    /// it to the user, or to USER:GROUP with PATH=USER:GROUP; repeatable
    #[argh(option)]
    chown: Vec<String>,
    /// with --chown, also change what is mounted inside PATH (other filesystems, bind mounts)
    #[argh(switch)]
    chown_cross_mounts: bool,
    /// with --chown, also change files that have more than one hard link
    #[argh(switch)]
    chown_hardlinks: bool,
    /// with --chown, also change character and block device nodes
    #[argh(switch)]
    chown_devices: bool,
    /// stay as a tiny init: forward signals to COMMAND, reap zombies, exit
    /// with COMMAND's status
    #[argh(switch)]
    init: bool,
    /// with --init: after TERM, INT or QUIT, SIGKILL COMMAND's process group
    /// if it is still running this much later (default 8s)
    #[argh(option, from_str_fn(duration_arg))]
    grace: Option<Duration>,
    /// with --init: hold a first SIGTERM this long before passing it on (so
    /// a load balancer stops sending first); another TERM passes it on at
    /// once, an INT goes on at once in its place
    #[argh(option, from_str_fn(duration_arg))]
    stop_delay: Option<Duration>,
    /// with --init: pass signals on to COMMAND's whole process group
    #[argh(switch)]
    signal_group: bool,
    /// set no_new_privs: setuid programs and file capabilities grant nothing
    #[argh(switch)]
    no_new_privs: bool,
    /// clear the bounding and ambient capability sets
    #[argh(switch)]
    drop_caps: bool,
    /// keep capability NAME (e.g. NET_BIND_SERVICE) for COMMAND as an
    /// ambient capability; repeatable
    #[argh(option)]
    keep_cap: Vec<String>,
    /// when stdin is a terminal, start COMMAND in a new session without it
    /// (against TIOCSTI input injection)
    #[argh(switch)]
    setsid: bool,
    /// USER[:GROUP]: name or uid, optionally :group name or gid
    #[argh(positional)]
    user: Option<String>,
}

fn duration_arg(v: &str) -> Result<Duration, String> {
    duration::parse(v)
}

/// Every flag, for the environment fallbacks (RUNAS_CHOWN, RUNAS_INIT, ...).
pub const FLAGS: &[Flag] = &[
    Flag::multi("chown", Some(|v| parse_chown(v).map(drop))),
    Flag::switch("chown-cross-mounts"),
    Flag::switch("chown-hardlinks"),
    Flag::switch("chown-devices"),
    Flag::switch("init"),
    Flag::value("grace", Some(duration::check)),
    Flag::value("stop-delay", Some(duration::check)),
    Flag::switch("signal-group"),
    Flag::switch("no-new-privs"),
    Flag::switch("drop-caps"),
    Flag::multi("keep-cap", Some(|v| privs::parse_cap(v).map(drop))),
    Flag::switch("setsid"),
];

const ENV_USER: &str = "RUNAS_USER";

/// One `--chown` value: PATH, or PATH=USER[:GROUP].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChownSpec {
    pub path: PathBuf,
    pub owner: Option<String>,
}

/// Split `PATH[=USER[:GROUP]]` at the last `=` when what follows has no `/`
/// (a path containing `=` can still be given as `PATH=USER:GROUP`).
pub fn parse_chown(v: &str) -> Result<ChownSpec, String> {
    let (path, owner) = match v.rsplit_once('=') {
        Some((p, o)) if !o.contains('/') => (p, Some(o)),
        _ => (v, None),
    };
    if path.is_empty() {
        return Err(format!("{v:?}: empty PATH (use PATH or PATH=USER:GROUP)"));
    }
    if let Some(o) = owner {
        dockhand::users::split_spec(o)?;
    }
    Ok(ChownSpec {
        path: PathBuf::from(path),
        owner: owner.map(str::to_string),
    })
}

/// The validated command line.
#[derive(Debug)]
pub struct Config {
    pub user: String,
    pub chown: Vec<ChownSpec>,
    pub chown_opts: chown::Options,
    pub init: bool,
    pub grace: Duration,
    pub stop_delay: Option<Duration>,
    pub signal_group: bool,
    pub no_new_privs: bool,
    pub drop_caps: bool,
    pub keep_caps: Vec<Cap>,
    pub setsid: bool,
    pub command: Vec<String>,
}

/// With RUNAS_USER set, a command line without `--` has no USER: its first
/// positional starts COMMAND. Insert the `--` that says so. (With a `--`, a
/// positional before it is USER and wins over RUNAS_USER.)
fn mark_command_start(args: &[String]) -> Vec<String> {
    if args.iter().any(|a| a == "--") {
        return args.to_vec();
    }
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') || a == "-" {
            let mut v = args[..i].to_vec();
            v.push("--".into());
            v.extend_from_slice(&args[i..]);
            return v;
        }
        let takes_value = !a.contains('=')
            && FLAGS
                .iter()
                .any(|f| a.strip_prefix("--") == Some(f.name) && f.kind != Kind::Switch);
        i += if takes_value { 2 } else { 1 };
    }
    args.to_vec()
}

/// Parse arguments and environment into a Config; any problem is a usage error.
pub fn parse_args(args: &[String], env: &dyn Env) -> Result<Config, Error> {
    let env_user = env.get(ENV_USER)?.filter(|u| !u.is_empty());
    let args = if env_user.is_some() {
        mark_command_start(args)
    } else {
        args.to_vec()
    };
    let (a, sp) = cli::parse_all::<Args>(
        TOOL,
        &args,
        FLAGS,
        Tail::AfterPositionals(1),
        env,
        &[(ENV_USER, "USER[:GROUP] when the command line gives none")],
    )?;
    let user = a.user.or(env_user).ok_or_else(|| {
        Error::usage("no USER given (runas [OPTIONS] USER[:GROUP] [--] COMMAND, or set RUNAS_USER)")
    })?;
    dockhand::users::split_spec(&user).map_err(|e| Error::usage(format!("USER {e}")))?;
    if sp.command.is_empty() {
        return Err(Error::usage(
            "no COMMAND given (runas [OPTIONS] USER[:GROUP] [--] COMMAND [ARGS...])",
        ));
    }
    for (given, flag) in [
        (a.stop_delay.is_some(), "--stop-delay"),
        (a.signal_group, "--signal-group"),
    ] {
        if given && !a.init {
            return Err(Error::usage(format!("{flag} needs --init")));
        }
    }
    let chown = a
        .chown
        .iter()
        .map(|v| parse_chown(v).map_err(|e| Error::usage(format!("--chown {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let keep_caps = a
        .keep_cap
        .iter()
        .map(|v| privs::parse_cap(v).map_err(|e| Error::usage(format!("--keep-cap {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Config {
        user,
        chown,
        chown_opts: chown::Options {
            cross_mounts: a.chown_cross_mounts,
            hardlinks: a.chown_hardlinks,
            devices: a.chown_devices,
            threads: chown::Options::threads_for_this_machine(),
        },
        init: a.init,
        grace: a.grace.unwrap_or(init::DEFAULT_GRACE),
        stop_delay: a.stop_delay.filter(|d| !d.is_zero()),
        signal_group: a.signal_group,
        no_new_privs: a.no_new_privs,
        drop_caps: a.drop_caps,
        keep_caps,
        setsid: a.setsid,
        command: sp.command,
    })
}

/// Run runas with its arguments (program name removed); returns the exit status.
pub fn run(args: Vec<String>) -> Result<i32, Error> {
    let cfg = parse_args(&args, &ProcessEnv)?;
    let db = Db::load(Path::new("/etc")).map_err(Error::failed)?;
    let target = db.resolve(&cfg.user).map_err(Error::usage)?;
    let owners = cfg
        .chown
        .iter()
        .map(|c| match &c.owner {
            None => Ok((target.uid.0, target.gid.0)),
            Some(o) => db
                .resolve(o)
                .map(|t| (t.uid.0, t.gid.0))
                .map_err(|e| Error::usage(format!("--chown {}: {e}", c.path.display()))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let me = privs::current_ids().map_err(|e| Error::failed(format!("cannot read own ids: {e}")))?;

    if me.all(target.uid.0, target.gid.0) {
        let what = if cfg.chown.is_empty() {
            "user"
        } else {
            "user or ownership"
        };
        out::warn(
            TOOL,
            &format!("already running as {}; not changing {what}", target.describe()),
        );
        set_env(&target);
        harden_unprivileged(&cfg)?;
        return launch(&cfg);
    }

    // A platform-assigned uid (docker run --user 12345, OpenShift's
    // arbitrary uids) is one the image's passwd does not know: the operator
    // chose who the service runs as, and runas cannot (and must not) switch
    // away from it, so it only execs. A known non-root user that is not the
    // target is a mistake and fails below.
    let euid = me.uid[1];
    let known = db
        .passwd
        .as_ref()
        .is_some_and(|p| p.iter().any(|e| e.uid == euid));
    if euid != 0 && me.uid.iter().all(|&u| u == euid) && !known {
        out::warn(
            TOOL,
            &format!(
                "running as uid {euid}, which /etc/passwd does not list (an arbitrary uid from \
                 docker run --user or the platform); not changing user or ownership"
            ),
        );
        if std::env::var_os("HOME").is_none() {
            std::env::set_var("HOME", "/");
        }
        harden_unprivileged(&cfg)?;
        return launch(&cfg);
    }

    check_privileges(&me, &target, &cfg)?;
    // Every PATH is checked before anything changes.
    let found = cfg
        .chown
        .iter()
        .map(|c| fs::open_dir_path(&c.path).map_err(|e| Error::usage(format!("--chown {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut failed = Vec::new();
    for ((spec, (uid, gid)), f) in cfg.chown.iter().zip(owners).zip(found) {
        let st = chown::apply(f, &spec.path, uid, gid, cfg.chown_opts);
        if st.errors > 0 {
            failed.push(out::escape_path(&spec.path).into_owned());
        }
    }
    if !failed.is_empty() {
        return Err(Error::failed(format!(
            "--chown had errors under {}; not starting the command",
            failed.join(", ")
        )));
    }
    set_env(&target);
    drop_privileges(&cfg, &target)?;
    launch(&cfg)
}

/// HOME, USER and LOGNAME of the target; the rest of the environment stays.
fn set_env(t: &Identity) {
    std::env::set_var("HOME", &t.home);
    std::env::set_var("USER", t.user_name());
    std::env::set_var("LOGNAME", t.user_name());
}

fn cap_list(c: &[Cap]) -> String {
    c.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
}

/// Refuse, naming what is missing and the fix, unless this process can do
/// everything asked.
fn check_privileges(me: &privs::Ids, target: &Identity, cfg: &Config) -> Result<(), Error> {
    let mut need = vec![Cap::CAP_SETUID, Cap::CAP_SETGID];
    if !cfg.chown.is_empty() {
        need.push(Cap::CAP_CHOWN);
    }
    if cfg.drop_caps {
        need.push(Cap::CAP_SETPCAP);
    }
    let rd = |e: std::io::Error| Error::failed(format!("cannot read capabilities: {e}"));
    let missing = privs::missing_effective(&need).map_err(rd)?;
    if !missing.is_empty() {
        let euid = me.uid[1];
        if euid != 0 {
            return Err(Error::failed(format!(
                "running as uid {euid}, not root, without {}: cannot become {}; start the container \
                 as root, or directly as the target (docker run --user {}:{}) and runas will only exec",
                cap_list(&missing),
                target.describe(),
                target.uid,
                target.gid
            )));
        }
        let adds: Vec<String> = missing.iter().map(|c| privs::short_name(*c)).collect();
        return Err(Error::failed(format!(
            "missing capability {}: needed to {}; keep it in the container (e.g. docker run --cap-drop ALL \
             --cap-add {})",
            cap_list(&missing),
            if cfg.chown.is_empty() {
                format!("become {}", target.describe())
            } else {
                format!("change ownership and become {}", target.describe())
            },
            adds.join(" --cap-add ")
        )));
    }
    let no_keep = privs::missing_permitted(&cfg.keep_caps).map_err(rd)?;
    if !no_keep.is_empty() {
        let adds: Vec<String> = no_keep.iter().map(|c| privs::short_name(*c)).collect();
        return Err(Error::failed(format!(
            "--keep-cap: this process does not have {} to keep (docker run --cap-add {})",
            cap_list(&no_keep),
            adds.join(" --cap-add ")
        )));
    }
    Ok(())
}

/// Already the target: apply what can be applied without privileges.
fn harden_unprivileged(cfg: &Config) -> Result<(), Error> {
    if !cfg.keep_caps.is_empty() {
        out::warn(TOOL, "--keep-cap ignored: runas did not change user");
    }
    if cfg.drop_caps {
        privs::clear_ambient().map_err(|e| Error::failed(format!("--drop-caps: {e}")))?;
        if privs::missing_effective(&[Cap::CAP_SETPCAP]).is_ok_and(|m| m.is_empty()) {
            privs::drop_bounding_except(&[]).map_err(|e| Error::failed(format!("--drop-caps: {e}")))?;
        }
    }
    if cfg.no_new_privs {
        privs::set_no_new_privs().map_err(|e| Error::failed(format!("--no-new-privs: {e}")))?;
    }
    Ok(())
}

/// setgroups -> setgid -> setuid, then read back from the kernel; the
/// capability flags around it.
fn drop_privileges(cfg: &Config, t: &Identity) -> Result<(), Error> {
    let fail =
        |what: &str, e: std::io::Error| Error::failed(format!("{what}: {e}; not starting the command"));
    if cfg.drop_caps {
        // Needs CAP_SETPCAP, which the setuid below takes away.
        privs::drop_bounding_except(&cfg.keep_caps).map_err(|e| fail("--drop-caps", e))?;
    }
    if !cfg.keep_caps.is_empty() {
        privs::set_keepcaps(true).map_err(|e| fail("--keep-cap", e))?;
    }
    let groups: Vec<u32> = t.groups.iter().map(|g| g.0).collect();
    privs::drop_to(t.uid.0, t.gid.0, &groups).map_err(|(step, e)| {
        Error::failed(format!(
            "{} failed while becoming {}: {e}; not starting the command",
            step.name(),
            t.describe()
        ))
    })?;
    let got = privs::current_ids().map_err(|e| fail("reading ids back", e))?;
    privs::verify(t.uid.0, t.gid.0, &groups, &got).map_err(|e| {
        Error::failed(format!(
            "after becoming {} the kernel reports {e}; not starting the command",
            t.describe()
        ))
    })?;
    if t.uid.0 != 0 && !privs::cannot_regain_root() {
        return Err(Error::failed(
            "setuid(0) still succeeds after the drop; not starting the command",
        ));
    }
    if !cfg.keep_caps.is_empty() {
        privs::set_keepcaps(false).map_err(|e| fail("--keep-cap", e))?;
        privs::keep_ambient(&cfg.keep_caps).map_err(|e| fail("--keep-cap", e))?;
    } else if cfg.drop_caps {
        privs::clear_ambient().map_err(|e| fail("--drop-caps", e))?;
    }
    if cfg.no_new_privs {
        privs::set_no_new_privs().map_err(|e| fail("--no-new-privs", e))?;
    }
    Ok(())
}

/// Exec COMMAND, or supervise it with --init.
fn launch(cfg: &Config) -> Result<i32, Error> {
    let opts = init::Options {
        grace: cfg.grace,
        stop_delay: cfg.stop_delay,
        signal_group: cfg.signal_group,
        setsid: cfg.setsid,
    };
    if cfg.init {
        return init::run(&cfg.command, opts);
    }
    if cfg.setsid && privs::stdin_is_tty() && privs::new_session().is_err() {
        out::warn(
            TOOL,
            "--setsid: runas leads its process group (as PID 1 does), so it stays as init to start \
             COMMAND in a new session",
        );
        return init::run(&cfg.command, init::Options { setsid: true, ..opts });
    }
    Err(exec::exec(&cfg.command))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_flags_table_matches_args() {
        assert_eq!(
            dockhand::cli::flags_disagree::<super::Args>(super::FLAGS),
            Vec::<String>::new()
        );
    }

    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn parse(args: &[&str], env: &[(&str, &str); 2]) -> Result<Config, Error> {
        parse_args(&s(args), env)
    }

    const NO_ENV: [(&str, &str); 2] = [("X", ""), ("Y", "")];

    #[test]
    fn user_then_command_with_or_without_double_dash() {
        let c = parse(&["--init", "app", "ls", "-la"], &NO_ENV).unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.command, s(&["ls", "-la"]));
        assert!(c.init);
        assert_eq!(c.grace, init::DEFAULT_GRACE);
        let c = parse(&["app:staff", "--", "ls", "--init"], &NO_ENV).unwrap();
        assert_eq!(c.user, "app:staff");
        assert_eq!(c.command, s(&["ls", "--init"]));
        assert!(!c.init);
    }

    #[test]
    fn flags_and_their_values() {
        let c = parse(
            &[
                "--chown",
                "/data",
                "--chown=/cache=1:2",
                "--grace",
                "2s",
                "--keep-cap",
                "net_bind_service",
                "--drop-caps",
                "--no-new-privs",
                "--setsid",
                "--chown-hardlinks",
                "--chown-cross-mounts",
                "--chown-devices",
                "app",
                "true",
            ],
            &NO_ENV,
        )
        .unwrap();
        assert_eq!(
            c.chown,
            [
                ChownSpec {
                    path: "/data".into(),
                    owner: None
                },
                ChownSpec {
                    path: "/cache".into(),
                    owner: Some("1:2".into())
                }
            ]
        );
        assert_eq!(c.grace, Duration::from_secs(2));
        assert_eq!(c.keep_caps, [Cap::CAP_NET_BIND_SERVICE]);
        assert!(c.drop_caps && c.no_new_privs && c.setsid);
        assert!(c.chown_opts.hardlinks && c.chown_opts.cross_mounts && c.chown_opts.devices);
    }

    #[test]
    fn env_fallbacks() {
        let env = [("RUNAS_USER", "app"), ("RUNAS_CHOWN", "/a,/b=x:y")];
        let c = parse(&["--init", "python", "-m", "app"], &env).unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.command, s(&["python", "-m", "app"]));
        assert_eq!(c.chown.len(), 2);
        // A USER on the command line (before --) wins over RUNAS_USER.
        let c = parse(&["other", "--", "id"], &env).unwrap();
        assert_eq!(c.user, "other");
        assert_eq!(c.command, s(&["id"]));
        let c = parse(&["--grace", "1s", "--", "id"], &env).unwrap();
        assert_eq!(c.user, "app");
        let env = [("RUNAS_INIT", "yes"), ("RUNAS_GRACE", "3s")];
        let c = parse(&["app", "id"], &env).unwrap();
        assert!(c.init);
        assert_eq!(c.grace, Duration::from_secs(3));
        assert_eq!((c.stop_delay, c.signal_group), (None, false));
        let env = [("RUNAS_STOP_DELAY", "5s"), ("RUNAS_SIGNAL_GROUP", "1")];
        let c = parse(&["--init", "app", "id"], &env).unwrap();
        assert_eq!(c.stop_delay, Some(Duration::from_secs(5)));
        assert!(c.signal_group);
        let c = parse(&["--init", "--stop-delay", "0", "app", "id"], &NO_ENV).unwrap();
        assert_eq!(c.stop_delay, None, "0 means no delay");
    }

    #[test]
    fn usage_errors_name_the_problem() {
        let e = parse(&["app"], &NO_ENV).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains("no COMMAND"), "{e}");
        let e = parse(&[], &NO_ENV).unwrap_err();
        assert!(e.to_string().contains("no USER"), "{e}");
        let e = parse(&["--keep-cap", "FLY", "app", "x"], &NO_ENV).unwrap_err();
        assert!(e.to_string().contains("FLY"), "{e}");
        let e = parse(&["--grace", "soon", "app", "x"], &NO_ENV).unwrap_err();
        assert!(e.to_string().contains("--grace"), "{e}");
        let e = parse(&["app:", "x"], &NO_ENV).unwrap_err();
        assert_eq!(e.code(), 2);
        for (args, want) in [
            (
                &["--stop-delay", "5s", "app", "x"][..],
                "--stop-delay needs --init",
            ),
            (&["--signal-group", "app", "x"][..], "--signal-group needs --init"),
            (
                &["--init", "--stop-delay", "soon", "app", "x"][..],
                "--stop-delay",
            ),
        ] {
            let e = parse(args, &NO_ENV).unwrap_err();
            assert_eq!(e.code(), 2, "{args:?}");
            assert!(e.to_string().contains(want), "{args:?}: {e}");
        }
        let env = [("RUNAS_KEEP_CAP", "NOPE"), ("Y", "")];
        let e = parse(&["app", "x"], &env).unwrap_err();
        assert!(e.to_string().contains("RUNAS_KEEP_CAP"), "{e}");
    }

    #[test]
    fn chown_values() {
        assert_eq!(
            parse_chown("/a=b/c").unwrap(),
            ChownSpec {
                path: "/a=b/c".into(),
                owner: None
            }
        );
        assert_eq!(
            parse_chown("/a=b=u:g").unwrap(),
            ChownSpec {
                path: "/a=b".into(),
                owner: Some("u:g".into())
            }
        );
        assert!(parse_chown("=u").is_err());
        assert!(parse_chown("/x=u:").is_err());
    }
}
