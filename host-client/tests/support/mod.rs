//! A vendor server in the test process: decides with the real engine against the policy, applies
//! the effects to an in-memory store and signs certificates with a test key. The client under test
//! reaches it through the [`Transport`] trait exactly as it would reach a remote server.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use licet_client::client::load_text_transport;
use licet_client::{Client, FixedProbe, Reply, Transport, TransportError};
use licet_engine::certificate::{self, Binding, Certificate};
use licet_engine::effects::MemoryRecords;
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, RequestDigest, ReturnRequest, ReturnResponse,
};
use licet_engine::state::{License, LicenseStatus, Term};
use licet_engine::{decide, Action, Actor, Decision, Fingerprint, Policy, Request, State};
use licet_plugin_host::test_support::install_plugin;
use licet_plugin_host::{Allow, TransportPlugin, World};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn gstarcad_source() -> String {
    std::fs::read_to_string(repo_root().join("policies/gstarcad.yaml")).unwrap()
}

pub fn gstarcad() -> Policy {
    Policy::from_yaml("gstarcad.yaml", &gstarcad_source()).unwrap()
}

pub fn vendor_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn license(key: &str, license_type: &str, edition: &str, term: Term) -> License {
    License {
        key: key.to_owned(),
        product: "gstarcad".to_owned(),
        license_type: license_type.to_owned(),
        edition: edition.to_owned(),
        version: "2027".to_owned(),
        term,
        seats: None,
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
        status: LicenseStatus::Enabled,
        dongle: None,
        client: None,
        limited: None,
    }
}

/// The vendor's server, in memory.
#[derive(Debug)]
pub struct FakeServer {
    pub policy: Policy,
    pub key: SigningKey,
    /// Licenses and their records, changed by the engine's effect rules.
    pub records: MemoryRecords,
    /// The server's clock.
    pub now: DateTime<Utc>,
    /// When set, every request fails as if the network were down.
    pub unreachable: bool,
    /// Every request received.
    pub received: Vec<Request>,
    /// The update counter of the last response file issued.
    pub update_counter: u64,
}

impl FakeServer {
    pub fn new(now: DateTime<Utc>) -> Self {
        FakeServer {
            policy: gstarcad(),
            key: vendor_key(),
            records: MemoryRecords::default(),
            now,
            unreachable: false,
            received: Vec::new(),
            update_counter: 0,
        }
    }

    pub fn add_license(&mut self, license: License) {
        self.records.licenses.insert(license.key.clone(), license);
    }

    /// An administrator's request, decided and applied like any other.
    pub fn administer(&mut self, action: Action) -> Decision {
        self.handle(&Request {
            actor: Actor::Administrator,
            action,
        })
        .decision
    }

    fn handle(&mut self, request: &Request) -> Reply {
        let key = request.action.key();
        let state = self.records.state(key);
        let decision = decide(&self.policy, &state, request, self.now);
        let mut certificate = None;
        if decision.is_allowed() {
            let applied = self
                .records
                .apply(key, &decision.effects, self.now)
                .unwrap();
            certificate = applied
                .certificates
                .last()
                .map(|claims| certificate::issue((*claims).clone(), &self.key).to_armored());
        }
        Reply {
            decision,
            certificate,
            server_license: None,
        }
    }

    /// Answers an activation request file with a response file, or the denial.
    pub fn answer_activation(&mut self, file: &[u8]) -> Result<String, Decision> {
        let request = ActivationRequest::from_xml(file).unwrap();
        let reply = self.handle(&request.engine_request());
        if !reply.decision.is_allowed() {
            return Err(reply.decision);
        }
        let certificate =
            Certificate::from_armored(&reply.certificate.unwrap(), &self.key.verifying_key())
                .unwrap();
        self.update_counter += 1;
        Ok(ActivationResponse::issue(
            &request,
            RequestDigest::of(file),
            certificate,
            self.update_counter,
            self.now,
            &self.key,
        )
        .unwrap()
        .to_xml())
    }

    /// Answers a return request file with a response file, or the denial.
    pub fn answer_return(&mut self, file: &[u8]) -> Result<String, Decision> {
        let request = ReturnRequest::from_xml(file).unwrap();
        let reply = self.handle(&request.engine_request());
        if !reply.decision.is_allowed() {
            return Err(reply.decision);
        }
        self.update_counter += 1;
        Ok(ReturnResponse::issue(
            &request,
            RequestDigest::of(file),
            self.update_counter,
            self.now,
            &self.key,
        )
        .unwrap()
        .to_xml())
    }

    pub fn activations_of(&self, key: &str) -> Vec<Binding> {
        self.records
            .state(Some(key))
            .activations
            .into_iter()
            .map(|activation| activation.binding)
            .collect()
    }
}

impl Transport for FakeServer {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        if self.unreachable {
            return Err(TransportError::Unreachable("connection refused".to_owned()));
        }
        self.received.push(request.clone());
        Ok(self.handle(request))
    }
}

pub fn office_pc() -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", "m-office"),
        ("mac", "mac-1"),
        ("cpu", "cpu-1"),
        ("disk", "disk-1"),
    ])
}

pub fn home_pc() -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", "m-home"),
        ("mac", "mac-2"),
        ("cpu", "cpu-2"),
        ("disk", "disk-2"),
    ])
}

/// A certificate for `license` activated on `machine` at `now`, signed with `key`, as the server
/// would issue it.
pub fn activation_certificate(
    policy: &Policy,
    key: &SigningKey,
    license: License,
    machine: &Fingerprint,
    now: DateTime<Utc>,
) -> String {
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Activate {
            key: license.key.clone(),
            target: licet_engine::ProductRef {
                product: license.product.clone(),
                edition: license.edition.clone(),
                version: license.version.clone(),
            },
            machine: machine.clone(),
            method: licet_engine::policy::Method::Online,
        },
    };
    let state = State {
        license: Some(license),
        ..State::default()
    };
    let decision = decide(policy, &state, &request, now);
    let claims = decision
        .certificate()
        .unwrap_or_else(|| panic!("activation denied: {decision:?}"))
        .clone();
    certificate::issue(claims, key).to_armored()
}

/// A client of the GstarCAD policy over `dir`, on a machine with `machine`, trusting the test
/// vendor.
pub fn client_on(dir: &Path, machine: Fingerprint) -> Client {
    Client::new(
        dir,
        gstarcad(),
        vendor_key().verifying_key(),
        Box::new(FixedProbe::new(machine)),
    )
}

/// The shipped plugin `guest`, signed by the test vendor, installed under `dir` and loaded.
pub fn installed(dir: &Path, guest: &str) -> TransportPlugin {
    let plugin = install_plugin(
        dir,
        guest,
        World::Transport,
        &[],
        Allow::default(),
        &vendor_key(),
    )
    .unwrap();
    load_text_transport(&plugin, vendor_key().verifying_key()).unwrap()
}
