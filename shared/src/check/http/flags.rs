//! The HTTP probe's flags, parsed one way by healthcheck, waitfor and ready:
//! `--status`, `--body-contains`, `--header`, `--unix-socket` and
//! `--no-follow`, and the TLS flags of https:// (`--cacert`, `--insecure`,
//! `--cert`, `--key`: see check::tls). argh needs the fields in each tool's own `Args`; what they
//! share is here: the value parsers argh calls, the entries of each tool's
//! environment table (`<TOOL>_HEADER`...), and the check that turns what was
//! given into `Options`, refusing flags that no http:// target would use.

use super::{check_header, parse_status, Options};
use crate::cli::Flag;
use crate::error::Error;
use crate::target::Target;
use std::path::PathBuf;

/// For argh's `from_str_fn` of `--status`.
pub fn status_arg(v: &str) -> Result<Vec<(u16, u16)>, String> {
    parse_status(v)
}

/// For argh's `from_str_fn` of `--header`.
pub fn header_arg(v: &str) -> Result<String, String> {
    check_header(v).map(|_| v.to_string())
}

/// `--status` in a tool's environment table: one list, `200,204` or `200-299`.
pub const STATUS: Flag = Flag::value("status", Some(|v| parse_status(v).map(|_| ())));
/// `--status` where it is repeatable on the command line (waitfor, ready).
pub const STATUS_MULTI: Flag = Flag::multi("status", Some(|v| parse_status(v).map(|_| ())));
pub const BODY_CONTAINS: Flag = Flag::value("body-contains", None);
/// From the environment a header is one header (values hold spaces), not a list.
pub const HEADER: Flag = Flag::value("header", Some(check_header));
pub const UNIX_SOCKET: Flag = Flag::value("unix-socket", None);
pub const NO_FOLLOW: Flag = Flag::switch("no-follow");

/// The HTTP flags as given on the command line or in the environment.
#[derive(Clone, Debug, Default)]
pub struct Given {
    pub status: Vec<(u16, u16)>,
    pub body_contains: Option<String>,
    pub headers: Vec<String>,
    pub unix_socket: Option<PathBuf>,
    pub no_follow: bool,
    pub cacert: Option<PathBuf>,
    pub insecure: bool,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Validate what was given against the targets: each flag needs an http://
/// target to apply to, and the socket path must be absolute and fit. A
/// usage error names the flag.
pub fn options(g: Given, targets: &[Target]) -> Result<Options, Error> {
    let has_http = targets.iter().any(|t| matches!(t, Target::Http(_)));
    let has_grpc = targets.iter().any(|t| matches!(t, Target::Grpc { .. }));
    let has_grpcs = targets
        .iter()
        .any(|t| matches!(t, Target::Grpc { tls: true, .. }));
    // (given, flag, whether a target uses it, which targets do)
    let uses = [
        (!g.status.is_empty(), "--status", has_http, "http:// and https://"),
        (
            g.body_contains.is_some(),
            "--body-contains",
            has_http,
            "http:// and https://",
        ),
        (
            !g.headers.is_empty(),
            "--header",
            has_http || has_grpc,
            "http://, https://, grpc:// and grpcs://",
        ),
        (
            g.unix_socket.is_some(),
            "--unix-socket",
            has_http,
            "http:// and https://",
        ),
        (g.no_follow, "--no-follow", has_http, "http:// and https://"),
        (
            g.cacert.is_some(),
            "--cacert",
            has_http || has_grpcs,
            "http://, https:// and grpcs://",
        ),
        (
            g.insecure,
            "--insecure",
            has_http || has_grpcs,
            "http://, https:// and grpcs://",
        ),
        (
            g.cert.is_some(),
            "--cert",
            has_http || has_grpcs,
            "http://, https:// and grpcs://",
        ),
        (
            g.key.is_some(),
            "--key",
            has_http || has_grpcs,
            "http://, https:// and grpcs://",
        ),
    ];
    for (given, flag, used, kinds) in uses {
        if given && !used {
            return Err(Error::usage(match targets {
                [one] => format!("{flag} applies to {kinds} targets only, not {one}"),
                _ => format!("{flag} applies to {kinds} targets only, and none is given"),
            }));
        }
    }
    // The same headers go out as gRPC metadata: names gRPC owns are refused.
    if has_grpc {
        for h in &g.headers {
            crate::check::grpc::check_metadata(h).map_err(|e| Error::usage(format!("--header {e}")))?;
        }
    }
    if let Some(p) = &g.unix_socket {
        if !p.is_absolute() {
            return Err(Error::usage(format!(
                "--unix-socket {}: the path must be absolute",
                p.display()
            )));
        }
        crate::cli::unix_socket_path(p)
            .map_err(|e| Error::usage(format!("--unix-socket {}: {e}", p.display())))?;
    }
    Ok(Options {
        status: g.status,
        headers: g.headers,
        body_contains: g.body_contains,
        unix_socket: g.unix_socket,
        no_follow: g.no_follow,
        tls: super::super::tls::options(g.cacert, g.insecure, g.cert, g.key)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_need_an_http_target() {
        let t = |s: &str| Target::parse(s).unwrap();
        let g = Given {
            headers: vec!["X-A: 1".into()],
            ..Given::default()
        };
        let e = options(g.clone(), &[t("h:1")]).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(
            e.to_string().contains(
                "--header applies to http://, https://, grpc:// and grpcs:// targets only, not tcp://h:1"
            ),
            "{e}"
        );
        // gRPC metadata: --header applies, but not to names gRPC owns.
        assert!(options(g.clone(), &[t("grpc://h:1")]).is_ok());
        let own = Given {
            headers: vec!["grpc-timeout: 1S".into()],
            ..Given::default()
        };
        assert_eq!(options(own, &[t("grpc://h:1")]).unwrap_err().code(), 2);
        // TLS flags go with https:// (or http://, which may redirect there) and grpcs://.
        let tls = Given {
            insecure: true,
            ..Given::default()
        };
        assert!(options(tls.clone(), &[t("grpcs://h:1")]).is_ok());
        assert!(options(tls.clone(), &[t("grpc://h:1")]).is_err());
        assert!(options(tls, &[t("https://h/")]).is_ok());
        let e = options(g.clone(), &[t("h:1"), t("file:///x")]).unwrap_err();
        assert!(e.to_string().contains("none is given"), "{e}");
        let o = options(g, &[t("h:1"), t("http://h/")]).unwrap();
        assert_eq!(o.headers, vec!["X-A: 1".to_string()]);
        let rel = Given {
            unix_socket: Some("rel.sock".into()),
            ..Given::default()
        };
        assert!(options(rel, &[t("http://h/")])
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        assert!(options(Given::default(), &[t("h:1")]).is_ok());
    }
}
