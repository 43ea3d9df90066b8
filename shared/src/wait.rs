//! The one poll loop: wait for every target in parallel, each on its own
//! thread, retrying with a backoff that starts at 25 ms and grows to the
//! interval (with jitter), each attempt bounded, all under one overall
//! deadline. SIGTERM and SIGINT end the wait promptly when asked to.

use crate::check::phase::{self, Tracker};
use crate::check::{self, CheckError, Options};
use crate::clock::{Clock, Deadline, SystemClock};
use crate::target::Target;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exponential backoff with jitter: 25 ms, ~50 ms, ~100 ms ... up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    rng: u64,
}

impl Backoff {
    pub const START: Duration = Duration::from_millis(25);

    pub fn new(max: Duration, seed: u64) -> Self {
        Backoff {
            next: Self::START.min(max),
            max,
            rng: seed | 1,
        }
    }

    /// The next delay: the current step with +-20% jitter, never above `max`.
    pub fn next_delay(&mut self) -> Duration {
        // xorshift64: jitter only needs to spread clients apart, not be secure.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let frac = (self.rng % 401) as f64 / 1000.0 - 0.2; // -0.2 ..= +0.2
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(1.0 + frac).min(self.max)
    }
}

/// For argh's `from_str_fn` of `--successes` (every tool): a count of at least 1.
pub fn successes_arg(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{v:?} is not a count of at least 1")),
    }
}

/// `--successes` in a tool's environment table (`WAITFOR_SUCCESSES`...).
pub const SUCCESSES: crate::cli::Flag =
    crate::cli::Flag::value("successes", Some(|v| successes_arg(v).map(|_| ())));

/// How to wait.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// Overall deadline; zero waits forever.
    pub timeout: Duration,
    /// Largest delay between attempts at one target.
    pub interval: Duration,
    /// Bound on one attempt.
    pub attempt_timeout: Duration,
    /// Report the targets still down this often (None: never).
    pub progress_every: Option<Duration>,
    /// End the wait on SIGTERM/SIGINT (blocks them in this process; `exec`
    /// restores the signal mask for the command).
    pub handle_signals: bool,
    pub check: Options,
    /// Retry at least this often while an attempt fails in a way that costs
    /// the target nothing (see `CheckError::is_cheap`), however far the backoff
    /// has grown, so a port that starts listening is seen within this much.
    /// `None`: the backoff alone decides.
    pub refused_retry: Option<Duration>,
    /// A target is up after this many consecutive successful attempts, made
    /// `interval` apart; a failure starts the count again (0 counts as 1).
    pub successes: u32,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(60),
            interval: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(2),
            progress_every: Some(Duration::from_secs(5)),
            handle_signals: true,
            check: Options::default(),
            refused_retry: None,
            successes: 1,
        }
    }
}

/// What the caller is told while waiting.
#[derive(Debug)]
pub enum Event<'a> {
    /// A target answered; `after` is measured from the start of the wait.
    Up {
        target: &'a Target,
        after: Duration,
        detail: &'a str,
    },
    /// Still waiting: the targets not yet up, each with its last error (or,
    /// before its first attempt ended, what that attempt is doing).
    StillDown {
        elapsed: Duration,
        down: Vec<(&'a Target, &'a str)>,
    },
}

/// Why the wait ended without every target up.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed; each target still down with its last error (or
    /// what its first attempt was doing).
    Timeout(Vec<(String, String)>),
    /// A signal arrived.
    Signal(i32),
    /// The caller's `cancel` said stop.
    Cancelled,
    /// The wait could not start (no thread for signals or for a target).
    Setup(String),
}

enum Msg {
    Up(usize, String),
    Down(usize, CheckError),
    Signal(i32),
}

/// Wait for all `targets`. `cancel`, when given, is asked a few times a second.
pub fn wait_all(
    targets: &[Target],
    opts: &WaitOptions,
    cancel: Option<&dyn Fn() -> bool>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(), Stop> {
    wait_all_with(targets, opts, cancel, on_event, Arc::new(SystemClock))
}

/// `wait_all` with an injectable clock (tests use a fast one).
pub fn wait_all_with(
    targets: &[Target],
    opts: &WaitOptions,
    cancel: Option<&dyn Fn() -> bool>,
    on_event: &mut dyn FnMut(Event<'_>),
    clock: Arc<dyn Clock>,
) -> Result<(), Stop> {
    let start = clock.now();
    let overall = Deadline::after(start, opts.timeout);
    let (tx, rx) = mpsc::channel::<Msg>();
    let phases: Vec<Arc<Tracker>> = targets.iter().map(|_| Arc::default()).collect();

    // Set once the wait is over. The signal thread outlives it, and its
    // caller may be about to act on the result (waitfor execs COMMAND): a
    // signal then would be taken by the thread and lost, so instead it ends
    // the process the way the wait would have (exit 128+N, nothing started).
    let over = Arc::new(AtomicBool::new(false));
    if opts.handle_signals {
        crate::sys::signal::spawn_waiter(&[libc::SIGTERM, libc::SIGINT], {
            let tx = tx.clone();
            let over = over.clone();
            move |sig| {
                let _ = tx.send(Msg::Signal(sig));
                // After the send: if `over` is not set yet, the final drain
                // below (which runs after setting it) sees this message.
                if over.load(Ordering::SeqCst) {
                    let tool = std::env::args()
                        .next()
                        .map(|a| a.rsplit('/').next().unwrap_or_default().to_string())
                        .unwrap_or_default();
                    crate::out::warn(
                        &tool,
                        &format!(
                            "got SIG{} as the wait ended; exiting",
                            crate::sys::signal::name(sig)
                        ),
                    );
                    std::process::exit(128 + sig);
                }
            }
        })
        .map_err(|e| Stop::Setup(format!("cannot set up signal handling: {e}")))?;
    }

    for (i, t) in targets.iter().enumerate() {
        let t = t.clone();
        let tx = tx.clone();
        let clock = clock.clone();
        let o = opts.clone();
        let tracker = phases[i].clone();
        let seed = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(7)
            ^ std::process::id() as u64)
            ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                phase::watch(tracker);
                let mut backoff = Backoff::new(o.interval, seed);
                let mut streak = 0u32;
                loop {
                    let now = clock.now();
                    if overall.passed(now) {
                        return;
                    }
                    let attempt = overall.min(Deadline::at(now + o.attempt_timeout));
                    let until = attempt.instant().unwrap_or(now + o.attempt_timeout);
                    let cheap;
                    match check::check(&t, until, &o.check) {
                        Ok(detail) if streak + 1 >= o.successes => {
                            let _ = tx.send(Msg::Up(i, detail));
                            return;
                        }
                        // Up, but not yet as many times in a row as asked:
                        // a progress report, and the next try one interval on.
                        Ok(detail) => {
                            streak += 1;
                            let e = CheckError::new(
                                check::Kind::NotReady,
                                format!("up {streak} of {} times in a row ({detail})", o.successes),
                            );
                            if tx.send(Msg::Down(i, e)).is_err() {
                                return;
                            }
                            let now = clock.now();
                            if overall.passed(now) {
                                return;
                            }
                            clock.sleep(overall.cap(now, o.interval));
                            continue;
                        }
                        // Cut short by the end of the whole wait, not by its
                        // own bound: not a result. The report says what the
                        // attempt was doing (its phase is left as it was).
                        Err(e) if e.kind == check::Kind::TimedOut && attempt == overall => return,
                        Err(e) => {
                            streak = 0;
                            cheap = e.is_cheap();
                            if tx.send(Msg::Down(i, e)).is_err() {
                                return;
                            }
                        }
                    }
                    let now = clock.now();
                    if overall.passed(now) {
                        return;
                    }
                    let mut delay = backoff.next_delay();
                    if let Some(fast) = o.refused_retry.filter(|_| cheap) {
                        delay = delay.min(fast);
                    }
                    clock.sleep(overall.cap(now, delay));
                }
            })
            .map_err(|e| Stop::Setup(format!("cannot start a thread for {t}: {e}", t = targets[i])))?;
    }
    drop(tx);
    let r = poll(
        targets, &phases, opts, cancel, on_event, &*clock, start, overall, &rx,
    );
    over.store(true, Ordering::SeqCst);
    // A signal that came with the last answer still counts as "while waiting".
    if r.is_ok() {
        while let Ok(m) = rx.try_recv() {
            if let Msg::Signal(n) = m {
                return Err(Stop::Signal(n));
            }
        }
    }
    r
}

/// The receiving side of `wait_all_with`: every answer, progress and the deadline.
#[allow(clippy::too_many_arguments)]
fn poll(
    targets: &[Target],
    phases: &[Arc<Tracker>],
    opts: &WaitOptions,
    cancel: Option<&dyn Fn() -> bool>,
    on_event: &mut dyn FnMut(Event<'_>),
    clock: &dyn Clock,
    start: Instant,
    overall: Deadline,
    rx: &mpsc::Receiver<Msg>,
) -> Result<(), Stop> {
    let mut up = vec![false; targets.len()];
    // The last error of each target; `None` until an attempt at it ended.
    let mut last: Vec<Option<String>> = vec![None; targets.len()];
    let why = |last: &[Option<String>], i: usize| -> String {
        match &last[i] {
            Some(e) => e.clone(),
            None => phases[i].get().describe_first_attempt().to_string(),
        }
    };
    let mut remaining = targets.len();
    let tick = if cancel.is_some() {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(3600)
    };
    let mut next_progress = opts.progress_every.map(|p| start + p);

    while remaining > 0 {
        let now = clock.now();
        if overall.passed(now) {
            let down = (0..targets.len())
                .filter(|&i| !up[i])
                .map(|i| (targets[i].to_string(), why(&last, i)))
                .collect();
            return Err(Stop::Timeout(down));
        }
        if let Some(np) = next_progress {
            if now >= np {
                let reasons: Vec<(usize, String)> = (0..targets.len())
                    .filter(|&i| !up[i])
                    .map(|i| (i, why(&last, i)))
                    .collect();
                on_event(Event::StillDown {
                    elapsed: now - start,
                    down: reasons.iter().map(|(i, w)| (&targets[*i], w.as_str())).collect(),
                });
                next_progress = opts.progress_every.map(|p| np + p);
            }
        }
        let mut wake = overall.cap(now, tick);
        if let Some(np) = next_progress {
            wake = wake.min(np.saturating_duration_since(now));
        }
        match rx.recv_timeout(wake.max(Duration::from_millis(1))) {
            Ok(Msg::Up(i, detail)) => {
                if !up[i] {
                    up[i] = true;
                    remaining -= 1;
                    let after = clock.now().saturating_duration_since(start);
                    on_event(Event::Up {
                        target: &targets[i],
                        after,
                        detail: &detail,
                    });
                }
            }
            Ok(Msg::Down(i, e)) => last[i] = Some(e.message),
            Ok(Msg::Signal(n)) => return Err(Stop::Signal(n)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Every worker ended: they only do that when up or past the
                // deadline, so sleep until the deadline check above fires.
                if remaining > 0 {
                    clock.sleep(overall.cap(clock.now(), Duration::from_millis(10)));
                }
            }
        }
        if let Some(c) = cancel {
            if c() {
                return Err(Stop::Cancelled);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    #[test]
    fn backoff_grows_to_the_interval_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), 42);
        let first = b.next_delay();
        assert!(
            first >= Duration::from_millis(20) && first <= Duration::from_millis(30),
            "{first:?}"
        );
        let mut last = first;
        for _ in 0..20 {
            last = b.next_delay();
            assert!(last <= Duration::from_secs(1));
        }
        assert!(last >= Duration::from_millis(800), "{last:?}");
    }

    fn quiet() -> WaitOptions {
        WaitOptions {
            progress_every: None,
            handle_signals: false,
            ..Default::default()
        }
    }

    #[test]
    fn all_targets_up_reports_each_once() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let ts = [
            Target::parse(&a.local_addr().unwrap().to_string()).unwrap(),
            Target::parse(&b.local_addr().unwrap().to_string()).unwrap(),
        ];
        let mut ups = 0;
        wait_all(&ts, &quiet(), None, &mut |e| {
            if let Event::Up { .. } = e {
                ups += 1
            }
        })
        .unwrap();
        assert_eq!(ups, 2);
    }

    #[test]
    fn timeout_lists_what_is_down_with_its_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let ts = [Target::parse(&format!("127.0.0.1:{port}")).unwrap()];
        let o = WaitOptions {
            timeout: Duration::from_millis(300),
            ..quiet()
        };
        let r = wait_all(&ts, &o, None, &mut |_| {});
        assert_eq!(
            r,
            Err(Stop::Timeout(vec![(
                format!("tcp://127.0.0.1:{port}"),
                "connection refused".into()
            )]))
        );
    }

    #[test]
    fn a_target_that_comes_up_later_is_seen() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let l = TcpListener::bind(addr).unwrap();
            std::thread::sleep(Duration::from_secs(3));
            drop(l);
        });
        let ts = [Target::parse(&addr.to_string()).unwrap()];
        let o = WaitOptions {
            timeout: Duration::from_secs(10),
            ..quiet()
        };
        assert_eq!(wait_all(&ts, &o, None, &mut |_| {}), Ok(()));
        h.join().unwrap();
    }

    /// A clock whose sleeps return at once and move its time forward, and
    /// which records every sleep.
    struct Recording {
        base: Instant,
        offset: std::sync::Mutex<(Duration, Vec<Duration>)>,
    }

    impl Clock for Recording {
        fn now(&self) -> Instant {
            self.base + self.offset.lock().unwrap().0
        }
        fn sleep(&self, d: Duration) {
            let mut g = self.offset.lock().unwrap();
            g.0 += d;
            g.1.push(d);
        }
    }

    fn sleeps_while_refused(refused_retry: Option<Duration>) -> Vec<Duration> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let ts = [Target::parse(&format!("127.0.0.1:{port}")).unwrap()];
        let o = WaitOptions {
            timeout: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            refused_retry,
            ..quiet()
        };
        let clock = Arc::new(Recording {
            base: Instant::now(),
            offset: Default::default(),
        });
        let r = wait_all_with(&ts, &o, None, &mut |_| {}, clock.clone());
        assert!(matches!(r, Err(Stop::Timeout(_))), "{r:?}");
        let sleeps = clock.offset.lock().unwrap().1.clone();
        sleeps
    }

    #[test]
    fn refused_connections_are_retried_at_the_refused_pace() {
        let fast = sleeps_while_refused(Some(Duration::from_millis(50)));
        assert!(fast.len() >= 60, "{} attempts in 5 s", fast.len());
        assert!(fast.iter().all(|d| *d <= Duration::from_millis(50)), "{fast:?}");
        // Without it, the backoff grows to the interval.
        let slow = sleeps_while_refused(None);
        assert!(slow.len() < 20, "{} attempts in 5 s", slow.len());
        assert!(slow.iter().any(|d| *d >= Duration::from_millis(800)), "{slow:?}");
    }

    /// A clock frozen at its start until `release`, then far past any
    /// deadline; its sleeps are short real ones.
    struct Frozen {
        base: Instant,
        released: AtomicBool,
    }

    impl Clock for Frozen {
        fn now(&self) -> Instant {
            if self.released.load(Ordering::SeqCst) {
                self.base + Duration::from_secs(3600)
            } else {
                self.base
            }
        }
        fn sleep(&self, d: Duration) {
            std::thread::sleep(d.min(Duration::from_millis(10)));
        }
    }

    #[test]
    fn a_wait_ending_in_the_first_attempt_says_what_it_was_doing() {
        // A server that accepts and reads the request but never answers.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ts = [Target::parse(&format!("postgres://127.0.0.1:{port}")).unwrap()];
        let clock = Arc::new(Frozen {
            base: Instant::now(),
            released: AtomicBool::new(false),
        });
        let c = clock.clone();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 64];
            let n = std::io::Read::read(&mut s, &mut b).unwrap();
            assert!(n > 0);
            // The request is in: the attempt is waiting for the response.
            // End the wait now, while it still is.
            c.released.store(true, Ordering::SeqCst);
            s
        });
        // The attempt may take longer than the whole wait (20 s), so it is
        // still running when the (frozen) clock says the wait is over.
        let o = WaitOptions {
            timeout: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(60),
            ..quiet()
        };
        let r = wait_all_with(&ts, &o, Some(&|| false), &mut |_| {}, clock);
        let _conn = server.join().unwrap();
        assert_eq!(
            r,
            Err(Stop::Timeout(vec![(
                format!("postgres://127.0.0.1:{port}"),
                "first attempt connected, still waiting for the response".into()
            )]))
        );
    }

    #[test]
    fn a_refused_attempt_is_a_cheap_result_not_a_phase() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = Target::parse(&format!("127.0.0.1:{port}")).unwrap();
        let e = check::check(&t, Instant::now() + Duration::from_secs(5), &Options::default()).unwrap_err();
        assert_eq!(e.kind, check::Kind::Refused);
        assert!(e.is_cheap());
    }

    #[test]
    fn successes_need_that_many_in_a_row_an_interval_apart() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let ts = [Target::parse(&l.local_addr().unwrap().to_string()).unwrap()];
        let clock = Arc::new(Recording {
            base: Instant::now(),
            offset: Default::default(),
        });
        let o = WaitOptions {
            interval: Duration::from_millis(700),
            successes: 3,
            ..quiet()
        };
        let mut ups = 0;
        let r = wait_all_with(
            &ts,
            &o,
            None,
            &mut |e| {
                if let Event::Up { .. } = e {
                    ups += 1
                }
            },
            clock.clone(),
        );
        assert_eq!((r, ups), (Ok(()), 1));
        // Three connections made (each completed in the listen backlog), two
        // pauses of the interval between them.
        l.set_nonblocking(true).unwrap();
        let accepted = std::iter::from_fn(|| l.accept().ok()).count();
        assert_eq!(accepted, 3);
        let sleeps = clock.offset.lock().unwrap().1.clone();
        assert_eq!(sleeps, vec![Duration::from_millis(700); 2]);
    }

    #[test]
    fn cancel_stops_the_wait() {
        let ts = [Target::parse("file:///nonexistent/dockhand/never").unwrap()];
        let o = WaitOptions {
            timeout: Duration::ZERO,
            ..quiet()
        };
        let r = wait_all(&ts, &o, Some(&|| true), &mut |_| {});
        assert_eq!(r, Err(Stop::Cancelled));
    }
}
