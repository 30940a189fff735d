//! The wall-clock bound of plugin calls: one thread per host advances the engine's epoch every
//! [`DEADLINE_TICK`] while calls run, and every call's store traps once its deadline, a number of
//! ticks past the epoch at its start, is reached.
//!
//! An idle host costs nothing: the thread keeps ticking for [`LINGER`] after the last call ends,
//! then sleeps until the next call starts. A call that starts while it sleeps wakes it (one
//! uncontended lock and a notify); calls that follow each other closely only touch an atomic
//! counter.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::{Engine, EngineWeak};

use crate::limits::DEADLINE_TICK;

/// How long the thread keeps ticking after the last call ends.
const LINGER: Duration = Duration::from_secs(1);

struct Shared {
    /// Calls running now.
    active: AtomicUsize,
    /// The thread waits for a call to start (set before it last checks `active`).
    sleeping: AtomicBool,
    /// Set when the host goes away.
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.stop.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The epoch ticker of one engine. Stops its thread when dropped.
pub(crate) struct Ticker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ticker")
            .field("active", &self.shared.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A running call: keeps the ticker ticking until dropped.
pub(crate) struct Ticking<'a> {
    shared: &'a Shared,
}

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ticker {
    /// Starts the ticker of `engine`. The thread holds only a weak reference to the engine.
    pub(crate) fn start(engine: &Engine) -> std::io::Result<Ticker> {
        let shared = Arc::new(Shared {
            active: AtomicUsize::new(0),
            sleeping: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let weak = engine.weak();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("licet-plugin-deadline".to_string())
            .spawn(move || tick(&thread_shared, &weak))?;
        Ok(Ticker {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a call as running until the returned guard is dropped; wakes the thread if it
    /// sleeps.
    pub(crate) fn enter(&self) -> Ticking<'_> {
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        if self.shared.sleeping.load(Ordering::SeqCst) {
            // The thread holds the lock from its last look at `active` until it waits, so this
            // notification cannot fall between the two.
            let _guard = self.shared.lock();
            self.shared.wake.notify_all();
        }
        Ticking {
            shared: &self.shared,
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.shared.lock() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // The thread only waits on the condition variable or the clock, so it ends now; a
            // panic in it (there is none to have) would leave nothing to clean up.
            let _ = thread.join();
        }
    }
}

fn tick(shared: &Shared, engine: &EngineWeak) {
    let mut idle_since = Instant::now();
    let mut stop = shared.lock();
    loop {
        if *stop {
            return;
        }
        if shared.active.load(Ordering::SeqCst) > 0 {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= LINGER {
            shared.sleeping.store(true, Ordering::SeqCst);
            while !*stop && shared.active.load(Ordering::SeqCst) == 0 {
                stop = shared
                    .wake
                    .wait(stop)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            shared.sleeping.store(false, Ordering::SeqCst);
            idle_since = Instant::now();
            continue;
        }
        // A whole tick, even if a notification (a call starting just as the thread woke up)
        // ends the wait early, so that no call's deadline comes early.
        let next_tick = Instant::now() + DEADLINE_TICK;
        loop {
            let now = Instant::now();
            if *stop || now >= next_tick {
                break;
            }
            stop = match shared.wake.wait_timeout(stop, next_tick - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        if *stop {
            return;
        }
        match engine.upgrade() {
            Some(engine) => engine.increment_epoch(),
            None => return,
        }
    }
}
