//! What an attempt in progress is doing (resolving, connecting, waiting for
//! the response), so a wait that ends during the first attempt can say so
//! instead of "not tried yet".
//!
//! The wait loop gives each worker thread a shared `Tracker` with `watch`;
//! the connect helpers in `net` record their phase into the tracker of the
//! thread they run on. Threads without one (a healthcheck probe) record
//! nothing. This keeps the probes' signatures free of a reporting argument.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Where an attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No attempt has started.
    Idle,
    /// Looking up the host name.
    Resolving,
    /// Connecting (a TCP handshake or a unix socket connect).
    Connecting,
    /// Connected; the request is sent or being sent, the reply not in.
    Waiting,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Resolving,
            2 => Phase::Connecting,
            3 => Phase::Waiting,
            _ => Phase::Idle,
        }
    }

    /// For a report about a target whose first attempt has not ended.
    pub fn describe_first_attempt(self) -> &'static str {
        match self {
            Phase::Idle => "not tried yet",
            Phase::Resolving => "first attempt still resolving the name",
            Phase::Connecting => "first attempt still connecting",
            Phase::Waiting => "first attempt connected, still waiting for the response",
        }
    }
}

/// The phase of one worker's current attempt, shared with whoever reports.
#[derive(Debug, Default)]
pub struct Tracker(AtomicU8);

impl Tracker {
    pub fn get(&self) -> Phase {
        Phase::from_u8(self.0.load(Ordering::Relaxed))
    }
    pub fn set(&self, p: Phase) {
        self.0.store(p as u8, Ordering::Relaxed);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Tracker>>> = const { RefCell::new(None) };
}

/// Record the phases of attempts made on this thread into `t`.
pub fn watch(t: Arc<Tracker>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(t));
}

/// Note that the attempt on this thread reached `p` (no-op when unwatched).
pub fn enter(p: Phase) {
    CURRENT.with(|c| {
        if let Some(t) = c.borrow().as_ref() {
            t.set(p);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_watching_thread_records() {
        let t = Arc::new(Tracker::default());
        assert_eq!(t.get(), Phase::Idle);
        enter(Phase::Connecting);
        assert_eq!(t.get(), Phase::Idle);
        let t2 = t.clone();
        std::thread::spawn(move || {
            watch(t2);
            enter(Phase::Waiting);
        })
        .join()
        .unwrap();
        assert_eq!(t.get(), Phase::Waiting);
    }
}
