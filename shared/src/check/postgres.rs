//! PostgreSQL readiness, as pg_isready judges it. Owned by the waitfor work.

use std::time::Instant;

pub fn check(
    host: &str,
    port: u16,
    user: Option<&str>,
    db: Option<&str>,
    deadline: Instant,
) -> Result<String, String> {
    let _ = (host, port, user, db, deadline);
    Err("postgres checks are not built yet".into())
}
