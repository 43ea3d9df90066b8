//! Readiness notification: sd_notify datagrams and s6 notification fds. Owned by the ready work.
