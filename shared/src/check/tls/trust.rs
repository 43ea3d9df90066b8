//! Whom a connection trusts and who it is: the CA certificates (`--cacert`,
//! else the image's bundle as OpenSSL and Go find it), the client
//! certificate and key for mTLS, and the rustls configuration built from
//! them on the ring provider.

use super::TlsOptions;
use crate::check::CheckError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most bytes read of one PEM file (a CA bundle is a few hundred KiB).
pub const MAX_PEM: u64 = 8 * 1024 * 1024;
/// Most entries of an `SSL_CERT_DIR` directory looked at.
const MAX_DIR_ENTRIES: usize = 4096;

/// Where the image's CA bundle is, when neither SSL_CERT_FILE nor
/// SSL_CERT_DIR is set: the first that exists is used (Debian, Ubuntu and
/// Alpine's ca-certificates; RHEL and Fedora; openSUSE; Alpine and others).
pub const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The configuration for `opts`, offering `alpn`, and what it trusts, in
/// words for messages ("--cacert ca.pem", "/etc/ssl/certs/ca-certificates.crt").
pub(super) fn client_config(
    opts: &TlsOptions,
    alpn: &[&[u8]],
) -> Result<(Arc<ClientConfig>, String), CheckError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS: {e}"))?;
    let (builder, trusted) = if opts.insecure {
        let b = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)));
        (b, "nothing (--insecure)".to_string())
    } else {
        let (roots, trusted) = roots(opts)?;
        (builder.with_root_certificates(roots), trusted)
    };
    let mut config = match &opts.cert {
        Some(cert) => {
            let key_file = opts.key.as_ref().unwrap_or(cert);
            let chain = certs(cert, "--cert")?;
            let key = PrivateKeyDer::from_pem_slice(&read_pem(key_file, "--key")?)
                .map_err(|e| format!("--key {}: no private key read ({e})", shown(key_file)))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--cert/--key: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((Arc::new(config), trusted))
}

/// The CAs to trust: `--cacert`, else SSL_CERT_FILE and SSL_CERT_DIR (as
/// OpenSSL reads them), else the first of `BUNDLES` that exists.
fn roots(opts: &TlsOptions) -> Result<(RootCertStore, String), CheckError> {
    let mut store = RootCertStore::empty();
    if let Some(f) = &opts.cacert {
        add(&mut store, f, "--cacert")?;
        return Ok((store, format!("--cacert {}", shown(f))));
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let (file, dirs) = (env("SSL_CERT_FILE"), env("SSL_CERT_DIR"));
    if file.is_some() || dirs.is_some() {
        let mut from = Vec::new();
        if let Some(f) = file {
            let f = PathBuf::from(f);
            add(&mut store, &f, "$SSL_CERT_FILE")?;
            from.push(format!("$SSL_CERT_FILE ({})", shown(&f)));
        }
        if let Some(d) = dirs {
            for dir in std::env::split_paths(&d).filter(|p| !p.as_os_str().is_empty()) {
                add_dir(&mut store, &dir)?;
                from.push(format!("$SSL_CERT_DIR ({})", shown(&dir)));
            }
        }
        if store.is_empty() {
            return Err(format!("no CA certificates in {}", from.join(" or ")).into());
        }
        return Ok((store, from.join(" and ")));
    }
    for b in BUNDLES {
        let p = Path::new(b);
        if p.exists() {
            add(&mut store, p, "the CA bundle")?;
            return Ok((store, (*b).to_string()));
        }
    }
    Err(format!(
        "no CA bundle in this image (looked for {}); install ca-certificates, set SSL_CERT_FILE, or give --cacert",
        BUNDLES.join(", ")
    )
    .into())
}

fn shown(p: &Path) -> String {
    crate::out::escape_path(p).into_owned()
}

/// Read a PEM file, at most `MAX_PEM` bytes; `what` names where it came from.
fn read_pem(p: &Path, what: &str) -> Result<Vec<u8>, CheckError> {
    let f =
        std::fs::File::open(p).map_err(|e| format!("{what} {}: {}", shown(p), crate::net::describe(&e)))?;
    let mut buf = Vec::new();
    f.take(MAX_PEM + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{what} {}: {}", shown(p), crate::net::describe(&e)))?;
    if buf.len() as u64 > MAX_PEM {
        return Err(format!("{what} {}: larger than {} MiB", shown(p), MAX_PEM >> 20).into());
    }
    Ok(buf)
}

/// Every certificate in a PEM file; none is an error.
fn certs(p: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, CheckError> {
    let pem = read_pem(p, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: bad PEM ({e})", shown(p)))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no PEM certificate in it", shown(p)).into());
    }
    Ok(certs)
}

/// Add the CA certificates of a PEM file; a file none of whose
/// certificates can be a trust anchor is an error.
fn add(store: &mut RootCertStore, p: &Path, what: &str) -> Result<(), CheckError> {
    let (added, _) = store.add_parsable_certificates(certs(p, what)?);
    if added == 0 {
        return Err(format!("{what} {}: no usable CA certificate in it", shown(p)).into());
    }
    Ok(())
}

/// Add the CA certificates of a directory as OpenSSL's CApath holds them:
/// files named by subject hash, `0123abcd.0` (links to the certificates,
/// followed on purpose). Files that are not PEM certificates are skipped.
fn add_dir(store: &mut RootCertStore, dir: &Path) -> Result<(), CheckError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("$SSL_CERT_DIR {}: {}", shown(dir), crate::net::describe(&e)))?;
    for entry in entries.take(MAX_DIR_ENTRIES).flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_hash_name(name) {
            continue;
        }
        if let Ok(certs) = certs(&entry.path(), "$SSL_CERT_DIR") {
            store.add_parsable_certificates(certs);
        }
    }
    Ok(())
}

/// OpenSSL's CApath names: 8 hex digits, a dot, a decimal number.
fn is_hash_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((h, n)) => {
            h.len() == 8
                && h.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.len() <= 3
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// `--insecure`: any certificate is accepted, as the kubelet's HTTPS probes
/// accept any (Go's InsecureSkipVerify); the handshake's signatures are
/// still checked against the certificate's key.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_names() {
        assert!(is_hash_name("0123abcd.0"));
        assert!(is_hash_name("ABCDEF01.12"));
        for n in [
            "0123abcd",
            "0123abcd.",
            "0123abc.0",
            "ca.pem",
            "0123abcd.r0",
            "0123abcg.0",
        ] {
            assert!(!is_hash_name(n), "{n}");
        }
    }
}
