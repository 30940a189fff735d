//! Manual activation and return end to end at the engine level, as the GstarCAD guides describe
//! them: the client writes a request file, the vendor's server decides on it under
//! `policies/gstarcad.yaml` and answers with a signed response file, the client loads it. Then every
//! way a response file can be refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use licet_engine::certificate::{self, Certificate};
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, ExchangeError, ExchangeState, Nonce, PendingKind,
    RequestDigest, ReturnRequest, ReturnResponse, Role,
};
use licet_engine::offline::{check_certificate, LocalFacts};
use licet_engine::state::{Activation, License, LicenseStatus, ReturnedCertificate, Term};
use licet_engine::{
    decide, Action, Actor, Code, Effect, Fingerprint, Policy, ProductRef, Request, State,
};

const STANDALONE_KEY: &str = "GCAD-PRO-0001";
const NETWORK_KEY: &str = "GCAD-NET-0001";

fn policy() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/gstarcad.yaml");
    Policy::from_yaml("gstarcad.yaml", &std::fs::read_to_string(path).unwrap()).unwrap()
}

fn start() -> DateTime<Utc> {
    "2027-01-04T09:00:00Z".parse().unwrap()
}

fn machine(tag: &str) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", format!("{tag}-id")),
        ("mac", format!("{tag}-mac")),
        ("cpu", format!("{tag}-cpu")),
        ("disk", format!("{tag}-disk")),
    ])
}

fn target() -> ProductRef {
    ProductRef {
        product: "gstarcad".into(),
        edition: "professional".into(),
        version: "2027".into(),
    }
}

fn license(key: &str, license_type: &str) -> License {
    License {
        key: key.into(),
        product: "gstarcad".into(),
        license_type: license_type.into(),
        edition: "professional".into(),
        version: "2027".into(),
        term: Term::Perpetual,
        seats: None,
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
        status: LicenseStatus::Enabled,
        dongle: None,
        client: None,
        limited: None,
    }
}

/// The vendor's server: stored licenses, activations and per-license update counters, and the
/// serials of returned certificates. It applies effects the way the server host does.
struct VendorServer {
    policy: Policy,
    key: SigningKey,
    licenses: BTreeMap<String, License>,
    activations: BTreeMap<String, Vec<Activation>>,
    transfers: BTreeMap<String, Vec<DateTime<Utc>>>,
    update_counters: BTreeMap<String, u64>,
    returned: Vec<ReturnedCertificate>,
}

impl VendorServer {
    fn new() -> VendorServer {
        VendorServer {
            policy: policy(),
            key: SigningKey::from_bytes(&[42u8; 32]),
            licenses: [
                license(STANDALONE_KEY, "standalone-key"),
                license(NETWORK_KEY, "network-key"),
            ]
            .into_iter()
            .map(|license| (license.key.clone(), license))
            .collect(),
            activations: BTreeMap::new(),
            transfers: BTreeMap::new(),
            update_counters: BTreeMap::new(),
            returned: Vec::new(),
        }
    }

    fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    fn state(&self, key: &str) -> State {
        State {
            license: self.licenses.get(key).cloned(),
            activations: self.activations.get(key).cloned().unwrap_or_default(),
            transfers: self.transfers.get(key).cloned().unwrap_or_default(),
            returned: self.returned.clone(),
            ..State::default()
        }
    }

    fn decide(
        &mut self,
        request: &Request,
        now: DateTime<Utc>,
    ) -> Result<Option<Certificate>, Code> {
        let key = request.action.key().unwrap().to_owned();
        let decision = decide(&self.policy, &self.state(&key), request, now);
        if !decision.is_allowed() {
            return Err(decision.code);
        }
        let mut certificate = None;
        for effect in decision.effects {
            match effect {
                Effect::CreateActivation {
                    binding,
                    activated_at,
                } => self
                    .activations
                    .entry(key.clone())
                    .or_default()
                    .push(Activation::new(binding, activated_at)),
                Effect::SetCurrentCertificate { binding, serial } => {
                    for activation in self.activations.entry(key.clone()).or_default() {
                        if activation.binding == binding {
                            activation.certificate_serial = Some(serial.clone());
                        }
                    }
                }
                Effect::RecordReturnedCertificate { serial, kind, at } => {
                    self.returned.push(ReturnedCertificate {
                        serial,
                        kind,
                        returned_at: at,
                    })
                }
                Effect::RemoveActivation { binding } => self
                    .activations
                    .entry(key.clone())
                    .or_default()
                    .retain(|activation| activation.binding != binding),
                Effect::RecordTransfer { at } => {
                    self.transfers.entry(key.clone()).or_default().push(at)
                }
                Effect::IssueCertificate(claims) => {
                    certificate = Some(certificate::issue(*claims, &self.key))
                }
                other => panic!("unexpected effect {other:?}"),
            }
        }
        Ok(certificate)
    }

    fn next_update_counter(&mut self, key: &str) -> u64 {
        let counter = self.update_counters.entry(key.to_owned()).or_insert(0);
        *counter += 1;
        *counter
    }

    /// The activation page: takes the request file, returns the response file.
    fn activate(&mut self, file: &[u8], now: DateTime<Utc>) -> Result<String, Code> {
        let request = ActivationRequest::from_xml(file).map_err(|error| error.code())?;
        let certificate = self
            .decide(&request.engine_request(), now)?
            .expect("an activation issues a certificate");
        let counter = self.next_update_counter(&request.license_key);
        let response = ActivationResponse::issue(
            &request,
            RequestDigest::of(file),
            certificate,
            counter,
            now,
            &self.key,
        )
        .map_err(|error| error.code())?;
        Ok(response.to_xml())
    }

    /// The return page: takes the return request file, returns the return response file.
    fn return_license(&mut self, file: &[u8], now: DateTime<Utc>) -> Result<String, Code> {
        let request = ReturnRequest::from_xml(file).map_err(|error| error.code())?;
        // The engine refuses a serial that is not the activation's current one, or that was
        // returned before, and records the returned one.
        self.decide(&request.engine_request(), now)?;
        let counter = self.next_update_counter(&request.license_key);
        let response =
            ReturnResponse::issue(&request, RequestDigest::of(file), counter, now, &self.key)
                .map_err(|error| error.code())?;
        Ok(response.to_xml())
    }

    /// An online validation presenting a certificate.
    fn validate(
        &mut self,
        certificate: &Certificate,
        machine: &Fingerprint,
        now: DateTime<Utc>,
    ) -> Code {
        let request = Request {
            actor: Actor::EndUser,
            action: Action::Validate {
                key: certificate.claims().license_key.clone(),
                machine: machine.clone(),
                certificate_serial: Some(certificate.claims().serial.clone()),
            },
        };
        match self.decide(&request, now) {
            Ok(_) => Code::Valid,
            Err(code) => code,
        }
    }

    fn activation_count(&self, key: &str) -> usize {
        self.activations.get(key).map_or(0, Vec::len)
    }
}

/// An offline machine: its fingerprint, its exchange state and the certificates it holds.
#[derive(Clone)]
struct OfflineMachine {
    machine: Fingerprint,
    role: Role,
    exchange: ExchangeState,
    licenses: BTreeMap<String, Certificate>,
    vendor: VerifyingKey,
    next_nonce: u8,
}

impl OfflineMachine {
    fn new(tag: &str, role: Role, vendor: VerifyingKey) -> OfflineMachine {
        OfflineMachine {
            machine: machine(tag),
            role,
            exchange: ExchangeState::new(),
            licenses: BTreeMap::new(),
            vendor,
            next_nonce: tag.bytes().fold(0u8, u8::wrapping_add),
        }
    }

    fn nonce(&mut self) -> Nonce {
        self.next_nonce = self.next_nonce.wrapping_add(1);
        Nonce([self.next_nonce; 32])
    }

    /// "Input your license key and click GENERATE to get the request file."
    fn generate_activation_request(&mut self, key: &str, now: DateTime<Utc>) -> String {
        let request = ActivationRequest {
            role: self.role,
            license_key: key.into(),
            target: target(),
            machine: self.machine.clone(),
            nonce: self.nonce(),
            created_at: now,
            server_key: (self.role == Role::LicenseServer).then_some([7; 32]),
        };
        self.exchange.begin_activation(&request).unwrap()
    }

    /// "Select the license to be returned and click GENERATE", saved as `<name>-return.xml`.
    fn generate_return_request(&mut self, key: &str, now: DateTime<Utc>) -> String {
        let serial = self.licenses[key].claims().serial.clone();
        let request = ReturnRequest {
            role: self.role,
            license_key: key.into(),
            target: target(),
            machine: self.machine.clone(),
            nonce: self.nonce(),
            created_at: now,
            certificate_serial: serial,
        };
        self.exchange.begin_return(&request).unwrap()
    }

    /// "Load the license file."
    fn load_activation_response(&mut self, file: &str) -> Result<(), ExchangeError> {
        let response = ActivationResponse::from_xml(file.as_bytes(), &self.vendor)?;
        self.exchange.accept_activation(&response, &self.machine)?;
        self.licenses.insert(
            response.license_key().to_owned(),
            response.certificate().clone(),
        );
        Ok(())
    }

    /// "Load the -resp-return.xml file and click Return."
    fn load_return_response(&mut self, file: &str) -> Result<(), ExchangeError> {
        let response = ReturnResponse::from_xml(file.as_bytes(), &self.vendor)?;
        self.exchange.accept_return(&response, &self.machine)?;
        self.licenses.remove(response.license_key());
        Ok(())
    }

    /// What the product does at start-up: may it run with the license?
    fn may_run(&self, key: &str, policy: &Policy, now: DateTime<Utc>) -> Code {
        if self.exchange.is_return_pending(key) {
            return Code::NotActivated;
        }
        let Some(certificate) = self.licenses.get(key) else {
            return Code::NotActivated;
        };
        let facts = LocalFacts {
            machine: self.machine.clone(),
            ..LocalFacts::default()
        };
        check_certificate(policy, certificate.claims(), &facts, now).code
    }
}

fn activated(server: &mut VendorServer, client: &mut OfflineMachine, key: &str) {
    let request = client.generate_activation_request(key, start());
    let response = server
        .activate(request.as_bytes(), start() + Duration::hours(2))
        .unwrap();
    client.load_activation_response(&response).unwrap();
}

// ---- the user flows ----------------------------------------------------------------------------

#[test]
fn manual_activation_of_a_standalone_key() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let now = start();
    assert_eq!(
        office.may_run(STANDALONE_KEY, &server.policy, now),
        Code::NotActivated
    );

    let request = office.generate_activation_request(STANDALONE_KEY, now);
    assert_eq!(office.exchange.pending().count(), 1);
    // Carried to a connected computer and uploaded the next day.
    let response = server
        .activate(request.as_bytes(), now + Duration::days(1))
        .unwrap();
    assert_eq!(server.activation_count(STANDALONE_KEY), 1);

    office.load_activation_response(&response).unwrap();
    assert_eq!(office.exchange.pending().count(), 0);
    assert_eq!(office.exchange.last_update_counter(STANDALONE_KEY), Some(1));
    let later = now + Duration::days(2);
    assert_eq!(
        office.may_run(STANDALONE_KEY, &server.policy, later),
        Code::Valid
    );
    let certificate = &office.licenses[STANDALONE_KEY];
    assert_eq!(
        certificate.claims().binding,
        licet_engine::certificate::Binding::Fingerprint(office.machine.components.clone())
    );
}

#[test]
fn manual_return_frees_the_key_only_once_the_server_confirms() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let mut laptop = OfflineMachine::new("laptop", Role::Machine, server.public_key());
    activated(&mut server, &mut office, STANDALONE_KEY);

    // One activation per serial: the laptop has to wait for the return.
    let early = laptop.generate_activation_request(STANDALONE_KEY, start() + Duration::days(10));
    assert_eq!(
        server.activate(early.as_bytes(), start() + Duration::days(10)),
        Err(Code::ActivationLimitReached)
    );

    let now = start() + Duration::days(30);
    let request = office.generate_return_request(STANDALONE_KEY, now);
    // Return-pending: the license stays on disk but must not be used any more.
    assert!(office.exchange.is_return_pending(STANDALONE_KEY));
    assert!(office.licenses.contains_key(STANDALONE_KEY));
    assert_eq!(
        office.may_run(STANDALONE_KEY, &server.policy, now),
        Code::NotActivated
    );
    assert_eq!(server.activation_count(STANDALONE_KEY), 1);

    let response = server
        .return_license(request.as_bytes(), now + Duration::hours(1))
        .unwrap();
    assert_eq!(server.activation_count(STANDALONE_KEY), 0);
    office.load_return_response(&response).unwrap();
    assert!(!office.exchange.is_return_pending(STANDALONE_KEY));
    assert!(!office.licenses.contains_key(STANDALONE_KEY));
    assert_eq!(office.exchange.last_update_counter(STANDALONE_KEY), Some(2));

    // The key is free for the laptop now.
    let request = laptop.generate_activation_request(STANDALONE_KEY, now + Duration::days(1));
    let response = server
        .activate(request.as_bytes(), now + Duration::days(1))
        .unwrap();
    laptop.load_activation_response(&response).unwrap();
    assert_eq!(
        laptop.may_run(STANDALONE_KEY, &server.policy, now + Duration::days(1)),
        Code::Valid
    );
}

#[test]
fn a_network_license_server_activates_and_returns_its_network_key() {
    let mut server = VendorServer::new();
    let mut license_server =
        OfflineMachine::new("license-server", Role::LicenseServer, server.public_key());
    let request = license_server.generate_activation_request(NETWORK_KEY, start());
    assert!(request.contains("role=\"license-server\""));
    let response = server.activate(request.as_bytes(), start()).unwrap();
    assert!(response.contains("role=\"license-server\""));
    license_server.load_activation_response(&response).unwrap();
    let certificate = &license_server.licenses[NETWORK_KEY];
    assert_eq!(certificate.claims().license_type, "network-key");
    assert_eq!(
        license_server.may_run(NETWORK_KEY, &server.policy, start()),
        Code::Valid
    );

    let now = start() + Duration::days(3);
    let request = license_server.generate_return_request(NETWORK_KEY, now);
    assert!(license_server.exchange.is_return_pending(NETWORK_KEY));
    let response = server.return_license(request.as_bytes(), now).unwrap();
    license_server.load_return_response(&response).unwrap();
    assert!(!license_server.licenses.contains_key(NETWORK_KEY));
    assert_eq!(server.activation_count(NETWORK_KEY), 0);
}

#[test]
fn a_response_for_one_role_does_not_answer_the_other() {
    let mut server = VendorServer::new();
    let mut license_server = OfflineMachine::new("host", Role::LicenseServer, server.public_key());
    let request = license_server.generate_activation_request(NETWORK_KEY, start());
    // Someone rewrites the role on the way: the server answers for a machine, and the digest of
    // the request it saw is not the one the license server wrote.
    let rewritten: String = request
        .replace("role=\"license-server\"", "role=\"machine\"")
        .lines()
        .filter(|line| !line.contains("server-key"))
        .map(|line| format!("{line}\n"))
        .collect();
    let response = server.activate(rewritten.as_bytes(), start()).unwrap();
    let error = license_server
        .load_activation_response(&response)
        .unwrap_err();
    assert_eq!(error, ExchangeError::UnknownRequest);
}

#[test]
fn the_exchange_state_survives_being_stored_between_request_and_response() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    let stored = serde_yaml::to_string(&office.exchange).unwrap();
    office.exchange = serde_yaml::from_str(&stored).unwrap();
    assert_eq!(office.exchange.pending().count(), 1);
    let (_, pending) = office.exchange.pending().next().unwrap();
    assert_eq!(pending.kind, PendingKind::Activation);
    assert_eq!(
        pending.request_digest,
        RequestDigest::of(request.as_bytes())
    );
    let response = server.activate(request.as_bytes(), start()).unwrap();
    office.load_activation_response(&response).unwrap();
}

#[test]
fn a_manual_activation_the_policy_denies_gets_no_response() {
    let mut server = VendorServer::new();
    server.licenses.get_mut(STANDALONE_KEY).unwrap().status = LicenseStatus::Revoked;
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    assert_eq!(
        server.activate(request.as_bytes(), start()),
        Err(Code::Revoked)
    );
    assert_eq!(server.update_counters.get(STANDALONE_KEY), None);
}

// ---- rejections --------------------------------------------------------------------------------

#[test]
fn a_changed_byte_in_the_response_is_rejected_and_changes_nothing() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    let response = server.activate(request.as_bytes(), start()).unwrap();
    let before = office.exchange.clone();
    let at = response.find("<signed>").unwrap() + 20;
    let mut tampered = response.clone().into_bytes();
    tampered[at] ^= 0x01;
    let error = office
        .load_activation_response(std::str::from_utf8(&tampered).unwrap())
        .unwrap_err();
    assert_eq!(error.code(), Code::ExchangeTampered);
    assert_eq!(office.exchange, before);
    assert!(office.licenses.is_empty());
    office.load_activation_response(&response).unwrap();
}

#[test]
fn a_response_for_another_machine_is_rejected() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let mut home = OfflineMachine::new("home", Role::Machine, server.public_key());
    home.generate_activation_request(STANDALONE_KEY, start());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    let response = server.activate(request.as_bytes(), start()).unwrap();
    let error = home.load_activation_response(&response).unwrap_err();
    assert_eq!(error, ExchangeError::WrongMachine);
    assert_eq!(error.code(), Code::ExchangeWrongMachine);
    assert!(home.licenses.is_empty());
    // Even a copy of the office's own state does not help on another machine.
    let mut clone = office.clone();
    clone.machine = machine("home");
    assert_eq!(
        clone.load_activation_response(&response),
        Err(ExchangeError::WrongMachine)
    );
}

#[test]
fn a_response_loads_only_once() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    let response = server.activate(request.as_bytes(), start()).unwrap();
    office.load_activation_response(&response).unwrap();
    let error = office.load_activation_response(&response).unwrap_err();
    assert_eq!(error, ExchangeError::UnknownRequest);
    assert_eq!(error.code(), Code::ExchangeUnknownRequest);
}

#[test]
fn a_response_to_a_request_this_machine_never_made_is_rejected() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    let response = server.activate(request.as_bytes(), start()).unwrap();
    // Same machine, but a state that never wrote that request (e.g. a request forged elsewhere
    // with this machine's fingerprint).
    let mut fresh = OfflineMachine::new("office", Role::Machine, server.public_key());
    assert_eq!(
        fresh.load_activation_response(&response),
        Err(ExchangeError::UnknownRequest)
    );
}

#[test]
fn a_request_altered_on_the_way_gets_a_response_that_does_not_load() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    let altered = request.replace("<edition>", "<edition >");
    let response = server.activate(altered.as_bytes(), start()).unwrap();
    assert_eq!(
        office.load_activation_response(&response),
        Err(ExchangeError::UnknownRequest)
    );
}

#[test]
fn an_older_response_is_rejected_after_a_newer_one() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let first = office.generate_activation_request(STANDALONE_KEY, start());
    let second = office.generate_activation_request(STANDALONE_KEY, start() + Duration::hours(1));
    let first_response = server
        .activate(first.as_bytes(), start() + Duration::hours(2))
        .unwrap();
    let second_response = server
        .activate(second.as_bytes(), start() + Duration::hours(3))
        .unwrap();
    office.load_activation_response(&second_response).unwrap();
    let error = office
        .load_activation_response(&first_response)
        .unwrap_err();
    assert_eq!(
        error,
        ExchangeError::StaleResponse {
            license_key: STANDALONE_KEY.into(),
            received: 1,
            last_accepted: 2
        }
    );
    assert_eq!(error.code(), Code::ExchangeStale);
}

#[test]
fn a_return_response_for_a_license_still_in_use_is_rejected() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    activated(&mut server, &mut office, STANDALONE_KEY);
    let backup = office.clone();
    let now = start() + Duration::days(5);
    let request = office.generate_return_request(STANDALONE_KEY, now);
    let response = server.return_license(request.as_bytes(), now).unwrap();

    // The machine is restored from a backup taken before the return request: no return is
    // pending there, so the return response is refused and the license stays in use.
    let mut restored = backup;
    assert!(!restored.exchange.is_return_pending(STANDALONE_KEY));
    let error = restored.load_return_response(&response).unwrap_err();
    assert_eq!(
        error,
        ExchangeError::ReturnNotPending(STANDALONE_KEY.into())
    );
    assert_eq!(error.code(), Code::ExchangeReturnNotPending);
    assert!(restored.licenses.contains_key(STANDALONE_KEY));

    // The server freed the activation and remembers the returned serial: the kept license is
    // found at its next validation, and a second return of it is refused.
    let kept = restored.licenses[STANDALONE_KEY].clone();
    assert_eq!(
        server.validate(&kept, &restored.machine, now + Duration::days(1)),
        Code::ExchangeSerialReturned
    );
    let again = restored.generate_return_request(STANDALONE_KEY, now + Duration::days(1));
    assert_eq!(
        server.return_license(again.as_bytes(), now + Duration::days(1)),
        Err(Code::ExchangeSerialReturned)
    );

    // The original machine completes its return normally.
    office.load_return_response(&response).unwrap();
}

#[test]
fn a_return_response_does_not_answer_an_activation_and_the_other_way_round() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    activated(&mut server, &mut office, STANDALONE_KEY);
    let now = start() + Duration::days(5);
    let return_request = office.generate_return_request(STANDALONE_KEY, now);
    let return_response = server
        .return_license(return_request.as_bytes(), now)
        .unwrap();
    // A return response is not an activation response file.
    let error = office
        .load_activation_response(&return_response)
        .unwrap_err();
    assert!(matches!(error, ExchangeError::WrongKind { .. }));
    assert_eq!(error.code(), Code::ExchangeMalformed);
    office.load_return_response(&return_response).unwrap();
    // And once done, the same return response is refused.
    assert_eq!(
        office.load_return_response(&return_response),
        Err(ExchangeError::ReturnNotPending(STANDALONE_KEY.into()))
    );
}

#[test]
fn an_old_return_response_is_rejected_while_a_newer_return_is_pending() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    activated(&mut server, &mut office, STANDALONE_KEY);
    let now = start() + Duration::days(5);
    let request = office.generate_return_request(STANDALONE_KEY, now);
    let old_response = server.return_license(request.as_bytes(), now).unwrap();
    office.load_return_response(&old_response).unwrap();
    // Activated again, and a new return started: the first return response is replayed.
    activated(&mut server, &mut office, STANDALONE_KEY);
    office.generate_return_request(STANDALONE_KEY, now + Duration::days(1));
    assert_eq!(
        office.load_return_response(&old_response),
        Err(ExchangeError::UnknownRequest)
    );
    assert!(office.exchange.is_return_pending(STANDALONE_KEY));
}

#[test]
fn a_reused_nonce_is_refused() {
    let server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = ActivationRequest {
        role: Role::Machine,
        license_key: STANDALONE_KEY.into(),
        target: target(),
        machine: office.machine.clone(),
        nonce: Nonce([5u8; 32]),
        created_at: start(),
        server_key: None,
    };
    office.exchange.begin_activation(&request).unwrap();
    let error = office.exchange.begin_activation(&request).unwrap_err();
    assert!(matches!(error, ExchangeError::NonceReused(_)));
    assert_eq!(office.exchange.pending().count(), 1);
}

#[test]
fn a_response_signed_by_another_key_is_rejected() {
    let mut server = VendorServer::new();
    let mut office = OfflineMachine::new("office", Role::Machine, server.public_key());
    let request = office.generate_activation_request(STANDALONE_KEY, start());
    server.key = SigningKey::from_bytes(&[43u8; 32]);
    let response = server.activate(request.as_bytes(), start()).unwrap();
    assert_eq!(
        office.load_activation_response(&response),
        Err(ExchangeError::BadSignature)
    );
}
