//! Why a TLS handshake failed, in one line for people: rustls's error
//! turned into what to look at (an expired certificate, a name it is not
//! for, an issuer not trusted, a server that wants a client certificate).

use super::TlsOptions;
use crate::check::CheckError;
use rustls::{AlertDescription, CertificateError, Error, PeerIncompatible};

/// The message for a failed handshake with `host`; `trusted` says what the
/// certificate was checked against.
pub(super) fn handshake(e: &Error, host: &str, trusted: &str, opts: &TlsOptions) -> CheckError {
    let msg = match e {
        Error::InvalidCertificate(c) => certificate(c, host, trusted),
        Error::AlertReceived(a) => {
            let hint = match a {
                AlertDescription::CertificateRequired
                | AlertDescription::HandshakeFailure
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                    if opts.cert.is_none() =>
                {
                    " (does it require a client certificate? give --cert and --key)"
                }
                AlertDescription::ProtocolVersion => {
                    " (no TLS version in common: this client speaks TLS 1.2 and 1.3)"
                }
                _ => "",
            };
            format!("TLS handshake: the server sent the alert \"{}\"{hint}", alert(a))
        }
        Error::PeerIncompatible(p) => match p {
            PeerIncompatible::ServerDoesNotSupportTls12Or13 => {
                "TLS handshake: the server speaks neither TLS 1.2 nor 1.3".to_string()
            }
            PeerIncompatible::NoCipherSuitesInCommon => "TLS handshake: no cipher suite in common".into(),
            _ => format!("TLS handshake: {}", clean(e)),
        },
        _ => format!("TLS handshake: {}", clean(e)),
    };
    msg.into()
}

/// A TLS error after the handshake, for an I/O error's message.
pub(super) fn after(e: &Error) -> String {
    match e {
        Error::AlertReceived(a) => format!("TLS: the server sent the alert \"{}\"", alert(a)),
        _ => format!("TLS: {}", clean(e)),
    }
}

fn certificate(c: &CertificateError, host: &str, trusted: &str) -> String {
    match c {
        CertificateError::Expired => "certificate expired".into(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate expired on {}", utc(not_after.as_secs()))
        }
        CertificateError::NotValidYet => "certificate not valid yet".into(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate not valid until {}", utc(not_before.as_secs()))
        }
        CertificateError::NotValidForName => format!("certificate is not for {host}"),
        CertificateError::NotValidForNameContext { presented, .. } => {
            let all: Vec<&str> = presented.iter().filter_map(|n| san(n)).collect();
            let mut names: Vec<String> = all
                .iter()
                .take(4)
                .map(|n| crate::out::escape(n.as_bytes()).chars().take(100).collect())
                .collect();
            if all.len() > 4 {
                names.push(format!("{} more", all.len() - 4));
            }
            if names.is_empty() {
                format!("certificate names no host (no subjectAltName), not {host}")
            } else {
                format!("certificate is for {}, not {host}", names.join(", "))
            }
        }
        CertificateError::UnknownIssuer => format!(
            "certificate signed by an unknown issuer (not a CA in {trusted}; give the CA with --cacert, or --insecure to skip verification)"
        ),
        CertificateError::BadSignature => "certificate has a bad signature".into(),
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for a TLS server (extended key usage)".into()
        }
        other => format!("certificate verify failed: {}", clean_text(&other.to_string())),
    }
}

/// A DNS name or IP address from webpki's description of a certificate's
/// subjectAltName entry (`DnsName("a.example")`, `IpAddress(10.0.0.1)`);
/// `None` for the kinds a server name is never matched against.
fn san(entry: &str) -> Option<&str> {
    entry
        .strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .or_else(|| entry.strip_prefix("IpAddress(").and_then(|r| r.strip_suffix(')')))
}

/// An alert's name in words: `CertificateRequired` gives "certificate required".
fn alert(a: &AlertDescription) -> String {
    let name = format!("{a:?}");
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_upper = true;
    for c in name.chars() {
        // A capital after a small letter starts a word (`UnknownCA` is "unknown ca").
        if c.is_ascii_uppercase() && !prev_upper {
            out.push(' ');
        }
        prev_upper = c.is_ascii_uppercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn clean(e: &Error) -> String {
    clean_text(&e.to_string())
}

/// rustls's text, bounded and escaped (it can quote what the peer sent).
fn clean_text(s: &str) -> String {
    let s: String = s.chars().take(300).collect();
    crate::out::escape(s.as_bytes()).into_owned()
}

/// Seconds since 1970 as `2024-01-31 23:59:59 UTC` (the proleptic
/// Gregorian calendar, as certificates use it).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to a civil date (Howard Hinnant's algorithm, in the public domain).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_704_067_199), "2023-12-31 23:59:59 UTC");
        assert_eq!(utc(4_102_444_800), "2100-01-01 00:00:00 UTC");
    }

    #[test]
    fn alert_names() {
        assert_eq!(
            alert(&AlertDescription::CertificateRequired),
            "certificate required"
        );
        assert_eq!(alert(&AlertDescription::UnknownCA), "unknown ca");
        assert_eq!(alert(&AlertDescription::HandshakeFailure), "handshake failure");
    }

    #[test]
    fn certificate_messages() {
        let o = TlsOptions::default();
        let e = |c| handshake(&Error::InvalidCertificate(c), "b.test", "--cacert ca.pem", &o).message;
        assert_eq!(
            e(CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("b.test").unwrap(),
                presented: vec![
                    "DnsName(\"a.test\")".into(),
                    "DirectoryName".into(),
                    "IpAddress(10.0.0.1)".into(),
                    "DnsName(\"x\ny\")".into(),
                ],
            }),
            "certificate is for a.test, 10.0.0.1, x\\u{a}y, not b.test"
        );
        assert!(e(CertificateError::UnknownIssuer).contains("unknown issuer (not a CA in --cacert ca.pem;"));
        let m = handshake(
            &Error::AlertReceived(AlertDescription::CertificateRequired),
            "h",
            "",
            &o,
        );
        assert!(
            m.contains("\"certificate required\" (does it require a client certificate?"),
            "{m}"
        );
    }
}
