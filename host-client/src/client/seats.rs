//! Network seats: checkout, heartbeat and release of a seat held while the product runs, and
//! borrowing a seat until a date for offline use.
//!
//! Each checkout or borrow gets a fresh random session identifier, remembered in the signed local
//! state with the license key, so the seat can be renewed, released or returned later. The
//! certificate the server grants with a seat is stored like any other (with the server license
//! when a customer's license server signed it), so the start-up check passes while the seat is
//! held (a seat certificate ends with its lease; every heartbeat renews both) or borrowed (a
//! borrow certificate ends with the borrow).
//!
//! A seat the server no longer holds (released by its administrator, or lapsed) is lost: the next
//! heartbeat is denied with `LEASE_NOT_FOUND` or `LEASE_EXPIRED`, the seat and its certificate are
//! forgotten, and a [`SeatHolder`] reports it ([`SeatHolder::lost`], [`SeatHolder::on_loss`])
//! rather than taking another seat by itself.

use licet_engine::report::Report as _;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use licet_engine::certificate::CertificateKind;
use licet_engine::policy::DEFAULT_LEASE_SECONDS;
use licet_engine::{Action, Code, Decision, Fingerprint};

use super::{Client, ClientError, Loaded, Trust};
use crate::state::{LocalState, SeatSession, StateError};
use crate::transport::Transport;

/// The shortest pause between two heartbeats of a [`SeatHolder`].
const MIN_HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Client {
    /// Checks out a network seat of license `key` for `edition`, under a fresh random session
    /// (or the session of the seat of `key` this machine already holds, so a restarted product
    /// gets its own seat back rather than a second one).
    ///
    /// When the server grants it (`SEAT_GRANTED`) the seat certificate and the session are stored;
    /// the start-up check passes until the lease ends unless [`Client::heartbeat`] renews it.
    pub fn checkout(
        &self,
        transport: &mut dyn Transport,
        key: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let machine = self.probe.fingerprint()?;
        let held = self
            .load(&machine)?
            .state
            .seat
            .filter(|seat| seat.key == key && seat.borrowed_until.is_none());
        let session = match held {
            Some(seat) => seat.session,
            None => fresh_session()?,
        };
        self.checkout_session(transport, key, edition, &session, now)
    }

    /// Checks out a seat under a session the caller chose; the server gives a session that
    /// already holds a seat that same seat back (and renews its lease) rather than a second one.
    pub fn checkout_session(
        &self,
        transport: &mut dyn Transport,
        key: &str,
        edition: &str,
        session: &str,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let target = self.target(edition)?;
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.load(&machine)?;
        let action = Action::Checkout {
            key: key.to_owned(),
            target,
            machine: machine.clone(),
            session: session.to_owned(),
        };
        let decision = self.exchange(transport, &machine, &mut loaded.state, action, now)?;
        if decision.is_allowed() {
            loaded.state.seat = Some(SeatSession {
                key: key.to_owned(),
                session: session.to_owned(),
                borrowed_until: None,
            });
        }
        self.save_seat_outcome(&machine, &loaded.state, now)?;
        Ok(decision)
    }

    /// The seat this machine holds or borrowed, as remembered in the local state.
    pub fn seat(&self) -> Result<Option<SeatSession>, ClientError> {
        let machine = self.probe.fingerprint()?;
        Ok(self.trusted(&machine)?.state.seat)
    }

    /// Renews the held seat's lease and its certificate: a heartbeat under the seat's session
    /// (`POST /v1/seats/heartbeat`), which the server answers `LEASE_RENEWED` with a seat
    /// certificate that runs to the new end of the lease, so the start-up check keeps passing.
    ///
    /// When the server no longer holds the seat, because its administrator released it
    /// (`LEASE_NOT_FOUND`) or it lapsed (`LEASE_EXPIRED`), the seat and its certificate are
    /// forgotten and that denial is answered: no other seat is taken. Any other denial
    /// (`REVOKED`, `DONGLE_ABSENT`, ...) is answered as is and changes nothing.
    pub fn heartbeat(
        &self,
        transport: &mut dyn Transport,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let machine = self.probe.fingerprint()?;
        let loaded = self.trusted(&machine)?;
        let seat = held_seat(&loaded.state)?;
        let mut state = loaded.state;
        let action = Action::Heartbeat {
            key: seat.key.clone(),
            session: seat.session.clone(),
        };
        let beat = self.exchange(transport, &machine, &mut state, action, now)?;
        if !beat.is_allowed() {
            if is_seat_lost(beat.code) {
                self.forget_session(&machine, &seat.session, now)?;
            }
            return Ok(beat);
        }
        self.save_seat_outcome(&machine, &state, now)?;
        Ok(beat)
    }

    /// Gives the held seat back to the pool. The seat certificate and session are removed once
    /// the server confirms (`SEAT_RELEASED`), or when it no longer knows the session.
    pub fn release(
        &self,
        transport: &mut dyn Transport,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.trusted(&machine)?;
        let seat = held_seat(&loaded.state)?;
        let action = Action::Release {
            key: seat.key.clone(),
            session: seat.session.clone(),
        };
        let decision = self.exchange(transport, &machine, &mut loaded.state, action, now)?;
        if decision.is_allowed() || decision.code == Code::LeaseNotFound {
            self.forget_seat(&mut loaded.state, CertificateKind::Seat);
        }
        self.save_seat_outcome(&machine, &loaded.state, now)?;
        Ok(decision)
    }

    /// Borrows a seat of license `key` for `edition` until `until`, under a fresh session. When
    /// the server grants it (`BORROWED`) the borrow certificate is stored and the start-up check
    /// passes without a server until `until`.
    pub fn borrow(
        &self,
        transport: &mut dyn Transport,
        key: &str,
        edition: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let target = self.target(edition)?;
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.load(&machine)?;
        let session = fresh_session()?;
        let action = Action::Borrow {
            key: key.to_owned(),
            target,
            machine: machine.clone(),
            session: session.clone(),
            until,
        };
        let decision = self.exchange(transport, &machine, &mut loaded.state, action, now)?;
        if decision.is_allowed() {
            loaded.state.seat = Some(SeatSession {
                key: key.to_owned(),
                session,
                borrowed_until: Some(until),
            });
        }
        self.save_seat_outcome(&machine, &loaded.state, now)?;
        Ok(decision)
    }

    /// Returns the borrowed seat early. The borrow certificate is removed only after the server
    /// confirms (`BORROW_RETURNED`); until then the machine keeps its borrowed license.
    pub fn return_borrowed(
        &self,
        transport: &mut dyn Transport,
        now: DateTime<Utc>,
    ) -> Result<Decision, ClientError> {
        let machine = self.probe.fingerprint()?;
        let mut loaded = self.trusted(&machine)?;
        let seat = loaded
            .state
            .seat
            .clone()
            .filter(|seat| seat.borrowed_until.is_some())
            .ok_or(ClientError::NoLicense)?;
        // The borrow certificate's serial: the server frees (or ends) only the borrow it names.
        let certificate_serial = self
            .installed_claims(&loaded.state)
            .filter(|claims| claims.kind == CertificateKind::Borrow)
            .map(|claims| claims.serial);
        let action = Action::ReturnBorrowed {
            key: seat.key.clone(),
            session: seat.session.clone(),
            certificate_serial,
        };
        let decision = self.exchange(transport, &machine, &mut loaded.state, action, now)?;
        if decision.is_allowed() {
            self.forget_seat(&mut loaded.state, CertificateKind::Borrow);
        }
        self.save_seat_outcome(&machine, &loaded.state, now)?;
        Ok(decision)
    }

    /// The heartbeat lease length of the installed seat's license type (the policy's, else the
    /// certificate's own span, else the default).
    fn seat_lease(&self, state: &LocalState) -> chrono::Duration {
        let claims = self.installed_claims(state);
        claims
            .as_ref()
            .and_then(|claims| self.policy.license_type(&claims.license_type))
            .and_then(|license_type| license_type.lease)
            .or_else(|| {
                claims
                    .as_ref()
                    .and_then(|claims| claims.expires_at.map(|end| end - claims.issued_at))
            })
            .filter(|lease| *lease > chrono::Duration::zero())
            .unwrap_or(chrono::Duration::seconds(DEFAULT_LEASE_SECONDS))
    }

    /// Stores what a seat operation changed (certificate, seat, validation time) into the state
    /// as it is now: the exchange ran without holding the state, so a start-up check on another
    /// thread was not kept waiting for the server.
    fn save_seat_outcome(
        &self,
        machine: &licet_engine::Fingerprint,
        outcome: &LocalState,
        now: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        let _exclusive = self.exclusive();
        let mut state = self.load(machine)?.state;
        state.certificate.clone_from(&outcome.certificate);
        state.server_license.clone_from(&outcome.server_license);
        state.last_validated = outcome.last_validated;
        state.returned.clone_from(&outcome.returned);
        state.denial.clone_from(&outcome.denial);
        state.seat.clone_from(&outcome.seat);
        state.observe(now);
        Ok(self.store.save(&state, machine)?)
    }

    fn trusted(&self, machine: &licet_engine::Fingerprint) -> Result<Loaded, ClientError> {
        let loaded = self.load(machine)?;
        if let Trust::Untrusted(problem) = loaded.trust {
            return Err(ClientError::UntrustedState(problem));
        }
        Ok(loaded)
    }

    /// Removes the seat session and, when it is of `kind`, the certificate that came with it.
    fn forget_seat(&self, state: &mut LocalState, kind: CertificateKind) {
        state.seat = None;
        if self
            .installed_claims(state)
            .is_some_and(|claims| claims.kind == kind)
        {
            state.certificate = None;
            state.server_license = None;
        }
    }

    /// Forgets the held seat of `session` and its seat certificate, when the state still holds
    /// that seat.
    fn forget_session(
        &self,
        machine: &Fingerprint,
        session: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        let _exclusive = self.exclusive();
        let Loaded { mut state, trust } = self.load(machine)?;
        let holds = state
            .seat
            .as_ref()
            .is_some_and(|seat| seat.session == session && seat.borrowed_until.is_none());
        if trust.is_trusted() && holds {
            self.forget_seat(&mut state, CertificateKind::Seat);
            state.observe(now);
            self.store.save(&state, machine)?;
        }
        Ok(())
    }
}

/// Whether a heartbeat's denial says the server no longer holds the seat.
fn is_seat_lost(code: Code) -> bool {
    matches!(code, Code::LeaseNotFound | Code::LeaseExpired)
}

fn held_seat(state: &LocalState) -> Result<SeatSession, ClientError> {
    state
        .seat
        .clone()
        .filter(|seat| seat.borrowed_until.is_none())
        .ok_or(ClientError::NoLicense)
}

/// A fresh random session identifier (128 bits, hex).
fn fresh_session() -> Result<String, ClientError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| ClientError::Random(error.to_string()))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The outcome of [`SeatHolder::checkout`].
#[derive(Debug)]
pub enum SeatHold {
    /// The seat is held until the holder is dropped.
    Held(SeatHolder),
    /// The server did not grant a seat (e.g. `SEATS_EXHAUSTED`).
    Denied(Decision),
}

/// A held seat the server no longer holds, as a [`SeatHolder`] learnt it from a heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatLoss {
    /// The session whose seat was lost.
    pub session: String,
    /// The server's denial: `LEASE_NOT_FOUND` when its administrator released the seat,
    /// `LEASE_EXPIRED` when the lease lapsed, or the denial that kept the lease from being renewed
    /// until it ran out (`REVOKED`, `DONGLE_ABSENT`, ...).
    pub decision: Decision,
    /// When the holder learnt it (this machine's clock).
    pub at: DateTime<Utc>,
}

type LossCallback = Box<dyn FnOnce(&SeatLoss) + Send>;

/// What the heartbeat thread shares with its holder.
#[derive(Default)]
struct Watch {
    lost: Option<SeatLoss>,
    callbacks: Vec<LossCallback>,
}

fn watch(shared: &Mutex<Watch>) -> MutexGuard<'_, Watch> {
    match shared.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Records the loss and runs the callbacks waiting for it, outside the lock.
fn report_loss(shared: &Mutex<Watch>, loss: SeatLoss) {
    let callbacks = {
        let mut watch = watch(shared);
        watch.lost = Some(loss.clone());
        std::mem::take(&mut watch.callbacks)
    };
    for callback in callbacks {
        callback(&loss);
    }
}

/// A network seat held for as long as this value lives: a background thread renews the lease
/// every third of the lease length, and dropping the holder stops it and releases the seat.
///
/// When a heartbeat finds that the server no longer holds the seat (its administrator released
/// it, or the lease lapsed), the heartbeats stop, the seat and its certificate are forgotten in
/// the local state (so the start-up check no longer passes), and the loss is reported through
/// [`SeatHolder::lost`] and [`SeatHolder::on_loss`]. The holder never checks out another seat by
/// itself; the product decides what to do (tell the user, check out again, stop). A server that
/// cannot be reached is retried at every interval: the lease outlasts two of them, and once it
/// has lapsed the server says so at the next heartbeat that reaches it. Any other denial is
/// retried too, until the lease has run out, and is then the loss.
pub struct SeatHolder {
    client: Arc<Client>,
    decision: Decision,
    session: String,
    shared: Arc<Mutex<Watch>>,
    stop: Option<Sender<()>>,
    worker: Option<JoinHandle<Box<dyn Transport + Send>>>,
}

impl std::fmt::Debug for SeatHolder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SeatHolder")
            .field("decision", &self.decision)
            .field("session", &self.session)
            .field("lost", &self.lost())
            .finish_non_exhaustive()
    }
}

impl SeatHolder {
    /// Checks out a seat of `key` for `edition` and, when granted, keeps it with heartbeats sent
    /// through `transport`.
    pub fn checkout(
        client: Arc<Client>,
        mut transport: Box<dyn Transport + Send>,
        key: &str,
        edition: &str,
    ) -> Result<SeatHold, ClientError> {
        let decision = client.checkout(transport.as_mut(), key, edition, Utc::now())?;
        if !decision.is_allowed() {
            return Ok(SeatHold::Denied(decision));
        }
        let machine = client.probe.fingerprint()?;
        let state = client.trusted(&machine)?.state;
        let session = held_seat(&state)?.session;
        let lease = client.seat_lease(&state);
        let interval = (lease / 3)
            .to_std()
            .unwrap_or(MIN_HEARTBEAT_INTERVAL)
            .max(MIN_HEARTBEAT_INTERVAL);
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::new(Mutex::new(Watch::default()));
        let beating = Arc::clone(&client);
        let watching = Arc::clone(&shared);
        let beating_session = session.clone();
        let worker = std::thread::Builder::new()
            .name("licet-heartbeat".to_owned())
            .spawn(move || {
                let mut renewed_at = Utc::now();
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let now = Utc::now();
                    // A missed heartbeat is retried at the next interval; the lease outlasts
                    // two of them.
                    let denial = match beating.heartbeat(transport.as_mut(), now) {
                        Ok(decision) if decision.is_allowed() => {
                            renewed_at = now;
                            continue;
                        }
                        Ok(decision) => decision,
                        // A renewed certificate refused (e.g. its server license is no longer
                        // in force) renews nothing, like a denial.
                        Err(error) => match error.code() {
                            Some(code) => {
                                Decision::deny(code, super::SERVER_LICENSE_RULE, error.report())
                            }
                            None => continue,
                        },
                    };
                    if !is_seat_lost(denial.code) {
                        if now < renewed_at + lease {
                            continue;
                        }
                        // Refused until the lease ran out: the server no longer holds it.
                        let _ = beating.forget_session(&machine, &beating_session, now);
                    }
                    report_loss(
                        &watching,
                        SeatLoss {
                            session: beating_session,
                            decision: denial,
                            at: now,
                        },
                    );
                    break;
                }
                transport
            })
            .map_err(|source| StateError::Io {
                path: client.state_path().to_path_buf(),
                source,
            })?;
        Ok(SeatHold::Held(SeatHolder {
            client,
            decision,
            session,
            shared,
            stop: Some(stop),
            worker: Some(worker),
        }))
    }

    /// The server's decision that granted the seat.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The session the server knows the seat by.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The loss of the seat, once a heartbeat found that the server no longer holds it; `None`
    /// while it is held.
    pub fn lost(&self) -> Option<SeatLoss> {
        watch(&self.shared).lost.clone()
    }

    /// Calls `callback` once when the seat is lost, on the heartbeat thread (at once, on this
    /// thread, when it is already lost). The callback should return quickly and must not drop
    /// or release this holder (that waits for the heartbeat thread); sending the loss on a
    /// channel is the usual thing to do. A callback of a holder dropped before any loss is
    /// dropped without being called.
    pub fn on_loss(&self, callback: impl FnOnce(&SeatLoss) + Send + 'static) {
        let lost = {
            let mut watch = watch(&self.shared);
            match &watch.lost {
                Some(loss) => Some(loss.clone()),
                None => {
                    watch.callbacks.push(Box::new(callback));
                    return;
                }
            }
        };
        if let Some(loss) = lost {
            callback(&loss);
        }
    }

    /// Stops the heartbeats and releases the seat, reporting the server's answer. A lost seat is
    /// not released again: its loss's denial is answered.
    pub fn release(mut self) -> Result<Decision, ClientError> {
        self.stop_and_release()
            .unwrap_or(Err(ClientError::NoLicense))
    }

    fn stop_and_release(&mut self) -> Option<Result<Decision, ClientError>> {
        drop(self.stop.take());
        let worker = self.worker.take()?;
        let mut transport = worker.join().ok()?;
        if let Some(loss) = self.lost() {
            return Some(Ok(loss.decision));
        }
        Some(self.client.release(transport.as_mut(), Utc::now()))
    }
}

impl Drop for SeatHolder {
    fn drop(&mut self) {
        let _ = self.stop_and_release();
    }
}
