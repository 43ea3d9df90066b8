//! Name lookup through getaddrinfo(3) that keeps its `EAI_*` code. std's
//! `ToSocketAddrs` turns the code into the C library's message, and those
//! messages differ between musl (the static builds) and glibc, so a caller
//! that must tell "no such name" from "no answer yet" needs the code itself.

use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The most addresses one lookup returns; the rest are ignored.
pub const MAX_ADDRS: usize = 32;

/// Why a lookup failed, from getaddrinfo's return code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// EAI_NONAME, EAI_NODATA: the name has no address (or does not exist).
    NoName,
    /// EAI_AGAIN: a temporary failure, e.g. the name server did not answer.
    Again,
    /// EAI_FAIL: the name server failed in a way that will not go away.
    Fail,
    /// EAI_SYSTEM: an OS error, with its errno.
    System(i32),
    /// Any other code (EAI_MEMORY, ...), as returned.
    Other(i32),
}

impl LookupError {
    fn from_code(code: i32) -> Self {
        match code {
            libc::EAI_NONAME | libc::EAI_NODATA => LookupError::NoName,
            libc::EAI_AGAIN => LookupError::Again,
            libc::EAI_FAIL => LookupError::Fail,
            libc::EAI_SYSTEM => {
                LookupError::System(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
            }
            c => LookupError::Other(c),
        }
    }
}

/// The TCP addresses of `host`, each with `port`, in the resolver's order
/// (at most `MAX_ADDRS`). Blocks for as long as the resolver does.
pub fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError> {
    // A name with a NUL byte cannot be passed to C; it names nothing.
    let name = CString::new(host).map_err(|_| LookupError::NoName)?;
    // SAFETY: addrinfo is a plain C struct for which all-zero is a valid
    // value (null pointers, zero lengths): the hints getaddrinfo expects.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `name` is a NUL-terminated string that outlives the call, the
    // service may be null, `hints` is a valid addrinfo and `res` a valid
    // out-pointer. On success the list is freed below, exactly once.
    let rc = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return Err(LookupError::from_code(rc));
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() && out.len() < MAX_ADDRS {
        // SAFETY: `cur` is a node of the list getaddrinfo returned, not yet
        // freed; each node's ai_addr points to ai_addrlen bytes of a sockaddr
        // of family ai_family. Lengths are checked before each cast, and the
        // reads are unaligned-safe copies.
        let (next, addr) = unsafe {
            let ai = &*cur;
            let len = ai.ai_addrlen as usize;
            let addr = if ai.ai_addr.is_null() {
                None
            } else if ai.ai_family == libc::AF_INET && len >= std::mem::size_of::<libc::sockaddr_in>() {
                let sa = std::ptr::read_unaligned(ai.ai_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            } else if ai.ai_family == libc::AF_INET6 && len >= std::mem::size_of::<libc::sockaddr_in6>() {
                let sa = std::ptr::read_unaligned(ai.ai_addr as *const libc::sockaddr_in6);
                let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    u32::from_be(sa.sin6_flowinfo),
                    sa.sin6_scope_id,
                )))
            } else {
                None
            };
            (ai.ai_next, addr)
        };
        out.extend(addr.filter(|a| !out.contains(a)));
        cur = next;
    }
    // SAFETY: `res` is the list getaddrinfo returned (non-null on success),
    // freed once; no pointer into it is used afterwards.
    unsafe { libc::freeaddrinfo(res) };
    if out.is_empty() {
        return Err(LookupError::NoName);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_has_a_loopback_address() {
        let a = lookup("localhost", 80).unwrap();
        assert!(a.iter().all(|a| a.ip().is_loopback() && a.port() == 80), "{a:?}");
    }

    #[test]
    fn a_name_with_a_nul_names_nothing() {
        assert_eq!(lookup("a\0b", 1), Err(LookupError::NoName));
    }
}
