//! TLS 1.2 and 1.3 under a check (https://, and any other protocol that
//! needs it): rustls on the ring crypto provider, verified against the
//! image's CA bundle or `--cacert`, the name from the URL sent as SNI and
//! checked against the certificate, an optional client certificate for
//! mTLS, and the whole handshake bounded by the check's deadline.
//!
//! A failed verification is one line saying why: "certificate expired on
//! ...", "certificate is for a.example, not b.example", "certificate signed
//! by an unknown issuer ...".
//!
//! `TlsOptions` is plain data and always here, so flags parse the same in
//! every build; `connect` needs the `tls` feature.

use std::path::PathBuf;

/// How a TLS connection is verified and who the client is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trust only the CAs in this PEM file (not the image's bundle).
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate (what the kubelet does for
    /// HTTPS probes). The handshake's signatures are still checked.
    pub insecure: bool,
    /// Client certificate chain (PEM) for servers that require one.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1);
    /// `None` with `cert`: the key is in the same file.
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    /// Check the combination of flags; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.key.is_some() && self.cert.is_none() {
            return Err("--key needs --cert (the client certificate it belongs to)".into());
        }
        if self.insecure && self.cacert.is_some() {
            return Err("--insecure and --cacert contradict each other: --insecure verifies nothing".into());
        }
        Ok(())
    }
}

/// The TLS flags every checking tool takes, for its `FLAGS` table (each
/// has its `<TOOL>_<FLAG>` environment variable): `--cacert FILE`,
/// `--insecure`, `--cert FILE`, `--key FILE`, named as curl names them.
pub const FLAGS: [crate::cli::Flag; 4] = [
    crate::cli::Flag::value("cacert", None),
    crate::cli::Flag::switch("insecure"),
    crate::cli::Flag::value("cert", None),
    crate::cli::Flag::value("key", None),
];

/// The validated TLS options from a tool's flags; a bad combination is a
/// usage error naming the flags.
pub fn options(
    cacert: Option<PathBuf>,
    insecure: bool,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<TlsOptions, crate::Error> {
    let o = TlsOptions {
        cacert,
        insecure,
        cert,
        key,
    };
    o.validate().map_err(crate::Error::usage)?;
    for (p, flag) in [(&o.cacert, "--cacert"), (&o.cert, "--cert"), (&o.key, "--key")] {
        if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(crate::Error::usage(format!("{flag}: empty path")));
        }
    }
    Ok(o)
}

#[cfg(feature = "tls")]
mod stream;
#[cfg(feature = "tls")]
mod trust;
#[cfg(feature = "tls")]
mod why;
#[cfg(feature = "tls")]
pub use stream::{connect, TlsStream};
#[cfg(feature = "tls")]
pub use trust::{BUNDLES, MAX_PEM};
