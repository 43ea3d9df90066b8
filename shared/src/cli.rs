//! Command-line parsing shared by every tool: argh does the parsing; this
//! module adds what argh lacks.
//!
//! - Every flag can come from an environment variable `<TOOL>_<FLAG>`
//!   (`--kill-after` of healthcheck is `HEALTHCHECK_KILL_AFTER`). A flag on
//!   the command line wins over its variable. A variable's value is checked
//!   with the same parser as the flag, and a bad one is a usage error that
//!   names the variable: never a silent default.
//! - `--flag=value` is accepted as well as `--flag value`.
//! - The command to run (`-- COMMAND ARGS...`) is split off before argh sees
//!   the arguments, so its own options are never taken for ours.
//! - `--help` lists the environment variables after argh's own text.

use crate::error::Error;
use argh::FromArgs;

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `--init`: on or off. From the environment: 1/true/yes/on or 0/false/no/off/empty.
    Switch,
    /// `--timeout 5s`: one value.
    Value,
    /// `--chown PATH` (repeatable). From the environment: a list split on
    /// commas and whitespace.
    Multi,
}

/// A check of one value, the same one argh applies to the flag.
pub type Check = fn(&str) -> Result<(), String>;

/// One flag of a tool, as the environment fallback needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Long name without dashes: `"kill-after"`.
    pub name: &'static str,
    pub kind: Kind,
    /// Validates one value (for Value and Multi); `None` accepts anything.
    pub check: Option<Check>,
}

impl Flag {
    pub const fn switch(name: &'static str) -> Self {
        Flag {
            name,
            kind: Kind::Switch,
            check: None,
        }
    }
    pub const fn value(name: &'static str, check: Option<Check>) -> Self {
        Flag {
            name,
            kind: Kind::Value,
            check,
        }
    }
    pub const fn multi(name: &'static str, check: Option<Check>) -> Self {
        Flag {
            name,
            kind: Kind::Multi,
            check,
        }
    }
}

/// The environment variable for a tool's flag: `env_name("waitfor", "attempt-timeout")`
/// is `WAITFOR_ATTEMPT_TIMEOUT`.
pub fn env_name(tool: &str, flag: &str) -> String {
    format!("{tool}_{flag}").to_ascii_uppercase().replace('-', "_")
}

/// Where the command to run starts, for tools that run one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// The tool runs no command.
    None,
    /// Everything after the first `--` is the command (`waitfor`, `ready`).
    AfterDoubleDash,
    /// The command starts after this many positional arguments, with or
    /// without a `--` between (`runas USER [--] COMMAND`: 1).
    AfterPositionals(usize),
}

/// The result of splitting a command line: our own arguments and the command.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub own: Vec<String>,
    pub command: Vec<String>,
    /// Whether a `--` was present (a command may still be empty).
    pub had_double_dash: bool,
}

/// Accessor for the environment, so tests need not touch the real one.
pub trait Env {
    /// The variable's value; a value that is not UTF-8 is a usage error,
    /// never taken for an unset variable.
    fn get(&self, name: &str) -> Result<Option<String>, Error>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Result<Option<String>, Error> {
        var(name)
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }
}

/// One variable of the process environment; not UTF-8 is a usage error.
pub fn var(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::usage(format!("{name} is set but not valid UTF-8")))
        }
    }
}

fn find_flag<'a>(flags: &'a [Flag], arg: &str) -> Option<&'a Flag> {
    let name = arg.strip_prefix("--")?;
    flags.iter().find(|f| f.name == name)
}

/// Split `--flag=value` into two words for the flags we know, and split off
/// the command according to `tail`.
pub fn split(args: &[String], flags: &[Flag], tail: Tail) -> Split {
    let mut own = Vec::new();
    let mut positionals = 0usize;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" && tail == Tail::None {
            // No command to split off: what follows are operands, even
            // those that start with a dash.
            own.extend(args[i..].iter().cloned());
            return Split {
                own,
                command: Vec::new(),
                had_double_dash: true,
            };
        }
        if a == "--" {
            return Split {
                own,
                command: args[i + 1..].to_vec(),
                had_double_dash: true,
            };
        }
        if let Tail::AfterPositionals(n) = tail {
            if positionals == n {
                return Split {
                    own,
                    command: args[i..].to_vec(),
                    had_double_dash: false,
                };
            }
        }
        if let Some((name, value)) = a.split_once('=').filter(|(n, _)| n.starts_with("--")) {
            if let Some(f) = find_flag(flags, name).filter(|f| f.kind != Kind::Switch) {
                own.push(format!("--{}", f.name));
                own.push(value.to_string());
                i += 1;
                continue;
            }
        }
        if let Some(f) = find_flag(flags, a) {
            own.push(a.clone());
            if f.kind != Kind::Switch && i + 1 < args.len() {
                own.push(args[i + 1].clone());
                i += 1;
            }
        } else {
            if !a.starts_with('-') || a == "-" {
                positionals += 1;
            }
            own.push(a.clone());
        }
        i += 1;
    }
    Split {
        own,
        command: Vec::new(),
        had_double_dash: false,
    }
}

fn truthy(tool: &str, var: &str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::usage(format!(
            "{var}={v:?} is not a switch value (use 1/true/yes/on or 0/false/no/off) [{tool}]"
        ))),
    }
}

/// Split an environment list on commas and whitespace, dropping empty items.
pub fn env_list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Prepend `--flag value` for every flag that the command line does not give
/// but its environment variable does, after checking the variable's value.
pub fn merge_env(tool: &str, own: &[String], flags: &[Flag], env: &dyn Env) -> Result<Vec<String>, Error> {
    let mut injected = Vec::new();
    for f in flags {
        let long = format!("--{}", f.name);
        if own.iter().take_while(|a| *a != "--").any(|a| *a == long) {
            continue;
        }
        let var = env_name(tool, f.name);
        let Some(v) = env.get(&var)? else { continue };
        match f.kind {
            Kind::Switch => {
                if truthy(tool, &var, &v)? {
                    injected.push(long);
                }
            }
            Kind::Value => {
                if v.is_empty() {
                    continue;
                }
                if let Some(check) = f.check {
                    check(&v).map_err(|e| Error::usage(format!("{var}={v:?}: {e}")))?;
                }
                injected.push(long);
                injected.push(v);
            }
            Kind::Multi => {
                for item in env_list(&v) {
                    if let Some(check) = f.check {
                        check(&item).map_err(|e| Error::usage(format!("{var}: {item:?}: {e}")))?;
                    }
                    injected.push(long.clone());
                    injected.push(item);
                }
            }
        }
    }
    injected.extend(own.iter().cloned());
    Ok(injected)
}

/// The text appended to `--help`: each flag's environment variable.
pub fn env_help(tool: &str, flags: &[Flag], extra: &[(&str, &str)]) -> String {
    let mut s = String::from("\nEnvironment (a flag on the command line wins over its variable):\n");
    let width = flags
        .iter()
        .map(|f| env_name(tool, f.name).len())
        .chain(extra.iter().map(|(k, _)| k.len()))
        .max()
        .unwrap_or(0);
    for f in flags {
        let what = match f.kind {
            Kind::Switch => format!("--{} (1/true/yes/on)", f.name),
            Kind::Value => format!("--{}", f.name),
            Kind::Multi => format!("--{} (list, comma or space separated)", f.name),
        };
        s.push_str(&format!("  {:width$}  {what}\n", env_name(tool, f.name)));
    }
    for (k, v) in extra {
        s.push_str(&format!("  {k:width$}  {v}\n"));
    }
    s
}

/// Parse our own arguments (already merged with the environment) with argh.
///
/// `--help` prints argh's text plus `help_tail` and ends the process with 0;
/// a parse error becomes one usage line.
pub fn parse<T: FromArgs>(tool: &str, own: &[String], help_tail: &str) -> Result<T, Error> {
    let strs: Vec<&str> = own.iter().map(String::as_str).collect();
    match T::from_args(&[tool], &strs) {
        Ok(t) => Ok(t),
        Err(early) => {
            if early.status.is_ok() {
                crate::out::line(&format!("{}{}", early.output.trim_end(), help_tail));
                Err(Error::Exit(0))
            } else {
                let first = early.output.lines().next().unwrap_or("invalid arguments").trim();
                Err(Error::usage(format!("{first} (see {tool} --help)")))
            }
        }
    }
}

/// Where a tool's `FLAGS` table and its argh `Args` disagree: a flag in one
/// and not the other, or a switch in one that takes a value in the other.
/// Empty when they agree. Each tool's unit tests call it, so a flag added to
/// `Args` without its environment variable (or the reverse) fails the build's
/// tests instead of silently having no variable.
pub fn flags_disagree<T: FromArgs>(flags: &[Flag]) -> Vec<String> {
    let help = match T::from_args(&["tool"], &["--help"]) {
        Err(early) => early.output,
        Ok(_) => return vec!["--help did not print help".into()],
    };
    // argh's usage line names every flag: "[--grace <grace>]" for one that
    // takes a value, "[--init]" for a switch, and "[--]" for the separator.
    let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
    let mut from_args: Vec<(String, bool)> = Vec::new();
    for (i, _) in usage.match_indices("--") {
        let t = &usage[i + 2..];
        let name: String = t
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.is_empty() || name == "help" || usage[..i].ends_with('-') {
            continue;
        }
        let takes_value = t[name.len()..].starts_with(" <");
        from_args.push((name, takes_value));
    }
    // A flag with a short name shows as "[-q]" in the usage line; the
    // options list pairs it with its long name: "-q, --quiet".
    for (i, _) in usage.match_indices("[-") {
        let t = &usage[i + 2..];
        let Some(short) = t.chars().next().filter(char::is_ascii_alphanumeric) else {
            continue;
        };
        let after = &t[short.len_utf8()..];
        if !after.starts_with([']', ' ']) {
            continue;
        }
        let pair = format!("-{short}, --");
        let Some(long) = help
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(pair.as_str()))
        else {
            continue;
        };
        let name: String = long
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        from_args.push((name, after.starts_with(" <")));
    }
    let mut out = Vec::new();
    for (name, takes_value) in &from_args {
        match flags.iter().find(|f| f.name == name.as_str()) {
            None => out.push(format!("--{name} is in Args but not in FLAGS")),
            Some(f) if (f.kind != Kind::Switch) != *takes_value => {
                out.push(format!("--{name}: switch/value differs between Args and FLAGS"))
            }
            Some(_) => {}
        }
    }
    for f in flags {
        if !from_args.iter().any(|(n, _)| n == f.name) {
            out.push(format!("--{} is in FLAGS but not in Args", f.name));
        }
    }
    out
}

/// Everything above in one call: split off the command, merge the
/// environment, parse. Returns the parsed flags and the command.
pub fn parse_all<T: FromArgs>(
    tool: &str,
    args: &[String],
    flags: &[Flag],
    tail: Tail,
    env: &dyn Env,
    extra_env_help: &[(&str, &str)],
) -> Result<(T, Split), Error> {
    let mut sp = split(args, flags, tail);
    let merged = merge_env(tool, &sp.own, flags, env)?;
    let t = parse::<T>(tool, &merged, &env_help(tool, flags, extra_env_help))?;
    sp.own = merged;
    Ok((t, sp))
}

/// The longest unix socket path: sun_path's 108 bytes less the closing NUL.
pub const MAX_UNIX_PATH: usize = 107;

/// Whether `path` fits in a unix socket address. A longer one can never be
/// connected to, so it is a usage error, not something to retry; the error
/// says why, for the caller to prefix with what it came from.
pub fn unix_socket_path(path: &std::path::Path) -> Result<(), String> {
    let n = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).len();
    if n > MAX_UNIX_PATH {
        return Err(format!(
            "socket path is too long ({n} bytes; at most {MAX_UNIX_PATH})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const FLAGS: &[Flag] = &[
        Flag::switch("init"),
        Flag::value("grace", Some(|v| crate::duration::parse(v).map(|_| ()))),
        Flag::multi("chown", None),
    ];

    #[test]
    fn env_names() {
        assert_eq!(env_name("healthcheck", "kill-after"), "HEALTHCHECK_KILL_AFTER");
        assert_eq!(env_name("waitfor", "timeout"), "WAITFOR_TIMEOUT");
    }

    #[test]
    fn double_dash_without_a_command_keeps_the_operands() {
        let sp = split(&s(&["a", "--", "b", "--init"]), FLAGS, Tail::None);
        assert_eq!(sp.own, s(&["a", "--", "b", "--init"]));
        assert!(sp.command.is_empty() && sp.had_double_dash);
        // An operand spelled like a flag does not hide the flag's variable.
        let merged = merge_env("runas", &sp.own, FLAGS, &[("RUNAS_INIT", "1")]).unwrap();
        assert_eq!(merged[0], "--init");
    }

    #[test]
    fn split_after_positionals_keeps_command_options() {
        let sp = split(
            &s(&["--grace", "3s", "app", "ls", "-la"]),
            FLAGS,
            Tail::AfterPositionals(1),
        );
        assert_eq!(sp.own, s(&["--grace", "3s", "app"]));
        assert_eq!(sp.command, s(&["ls", "-la"]));
        let sp = split(
            &s(&["app", "--", "ls", "--init"]),
            FLAGS,
            Tail::AfterPositionals(1),
        );
        assert_eq!(sp.command, s(&["ls", "--init"]));
        assert!(sp.had_double_dash);
    }

    #[test]
    fn split_double_dash_and_equals() {
        let sp = split(
            &s(&["--grace=2s", "a", "b", "--", "x", "--grace", "1"]),
            FLAGS,
            Tail::AfterDoubleDash,
        );
        assert_eq!(sp.own, s(&["--grace", "2s", "a", "b"]));
        assert_eq!(sp.command, s(&["x", "--grace", "1"]));
    }

    #[test]
    fn env_fills_only_missing_flags() {
        let env = [
            ("RUNAS_GRACE", "5s"),
            ("RUNAS_INIT", "yes"),
            ("RUNAS_CHOWN", "/a, /b /c"),
        ];
        let m = merge_env("runas", &s(&["--grace", "1s", "u"]), FLAGS, &env).unwrap();
        assert_eq!(
            m,
            s(&["--init", "--chown", "/a", "--chown", "/b", "--chown", "/c", "--grace", "1s", "u"])
        );
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let env = [("RUNAS_GRACE", "soon")];
        let e = merge_env("runas", &[], FLAGS, &env).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains("RUNAS_GRACE"), "{e}");
        let env = [("RUNAS_INIT", "maybe")];
        let e = merge_env("runas", &[], FLAGS, &env).unwrap_err();
        assert!(e.to_string().contains("RUNAS_INIT"), "{e}");
    }

    #[test]
    fn false_switch_from_env_is_off() {
        let env = [("RUNAS_INIT", "0")];
        assert!(merge_env("runas", &[], FLAGS, &env).unwrap().is_empty());
    }

    #[test]
    fn help_lists_every_variable() {
        let h = env_help("runas", FLAGS, &[("RUNAS_USER", "USER")]);
        for v in ["RUNAS_INIT", "RUNAS_GRACE", "RUNAS_CHOWN", "RUNAS_USER"] {
            assert!(h.contains(v), "{h}");
        }
    }

    #[derive(FromArgs, Debug)]
    /// test
    struct T {
        /// grace
        #[argh(option, from_str_fn(dur))]
        grace: Option<std::time::Duration>,
        /// init
        #[argh(switch)]
        init: bool,
        /// chown
        #[argh(option)]
        chown: Vec<String>,
        /// user
        #[argh(positional)]
        user: String,
    }
    fn dur(v: &str) -> Result<std::time::Duration, String> {
        crate::duration::parse(v)
    }

    #[test]
    fn flags_table_checked_against_args() {
        assert_eq!(flags_disagree::<T>(FLAGS), Vec::<String>::new());
        let fewer = &FLAGS[..2];
        let d = flags_disagree::<T>(fewer);
        assert!(
            d.iter()
                .any(|m| m.contains("--chown is in Args but not in FLAGS")),
            "{d:?}"
        );
        let wrong = [FLAGS[0], Flag::switch("grace"), FLAGS[2], Flag::switch("extra")];
        let d = flags_disagree::<T>(&wrong);
        assert!(d.iter().any(|m| m.contains("--grace: switch/value")), "{d:?}");
        assert!(
            d.iter()
                .any(|m| m.contains("--extra is in FLAGS but not in Args")),
            "{d:?}"
        );
    }

    #[derive(FromArgs, Debug)]
    /// test
    struct Short {
        /// quiet
        #[argh(switch, short = 'q')]
        quiet: bool,
        /// out
        #[argh(option, short = 'o')]
        out: Option<String>,
    }

    #[test]
    fn flags_with_a_short_name_are_seen_by_their_long_name() {
        let s = Short::from_args(&["t"], &["-q", "--out", "x"]).unwrap();
        assert!(s.quiet && s.out.as_deref() == Some("x"));
        let flags = [Flag::switch("quiet"), Flag::value("out", None)];
        assert_eq!(flags_disagree::<Short>(&flags), Vec::<String>::new());
        let wrong = [Flag::value("quiet", None), Flag::switch("out")];
        let d = flags_disagree::<Short>(&wrong);
        assert!(d.iter().any(|m| m.contains("--quiet: switch/value")), "{d:?}");
        assert!(d.iter().any(|m| m.contains("--out: switch/value")), "{d:?}");
    }

    #[test]
    fn parse_all_end_to_end() {
        let env = [("RUNAS_INIT", "1")];
        let (t, sp) = parse_all::<T>(
            "runas",
            &s(&["--grace=2s", "app", "--", "sh", "-c", "x"]),
            FLAGS,
            Tail::AfterPositionals(1),
            &env,
            &[],
        )
        .unwrap();
        assert!(t.init);
        assert_eq!(t.grace, Some(std::time::Duration::from_secs(2)));
        assert_eq!(t.user, "app");
        assert!(t.chown.is_empty());
        assert_eq!(sp.command, s(&["sh", "-c", "x"]));
    }

    #[test]
    fn bad_flag_value_is_usage_naming_flag() {
        let e = parse_all::<T>(
            "runas",
            &s(&["--grace", "x", "u"]),
            FLAGS,
            Tail::None,
            &[("A", "")],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains("--grace"), "{e}");
    }
}
