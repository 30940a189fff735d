//! Manual activation and return by request and response files, with the vendor in the test
//! process answering the files as its server would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use chrono::Duration;
use licet_client::{Client, ClientError, FixedProbe, Status};
use licet_engine::state::Term;
use licet_engine::{Code, Fingerprint};
use support::*;

fn client_on(dir: &Path, machine: Fingerprint) -> Client {
    Client::new(
        dir,
        gstarcad(),
        vendor_key().verifying_key(),
        Box::new(FixedProbe::new(machine)),
    )
}

fn server() -> FakeServer {
    let mut server = FakeServer::new(at("2027-01-04T09:00:00Z"));
    server.add_license(license(
        "GSTAR-M-1",
        "standalone-key",
        "standard",
        Term::Perpetual,
    ));
    server
}

fn exchange_code(result: Result<impl std::fmt::Debug, ClientError>) -> Code {
    match result {
        Err(error) => error
            .exchange_code()
            .unwrap_or_else(|| panic!("not an exchange error: {error}")),
        Ok(value) => panic!("accepted: {value:?}"),
    }
}

#[test]
fn manual_activation_loads_once_and_only_on_its_machine() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server();
    let now = server.now;
    let request = client
        .begin_manual_activation("GSTAR-M-1", "standard", now)
        .unwrap();
    assert!(request.contains("GSTAR-M-1"));
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );

    let response = server.answer_activation(request.as_bytes()).unwrap();
    // Another machine cannot load it.
    let home_dir = tempfile::tempdir().unwrap();
    let home = client_on(home_dir.path(), home_pc());
    assert_eq!(
        exchange_code(home.load_activation_response(response.as_bytes(), now)),
        Code::ExchangeWrongMachine
    );
    // An altered response is refused and changes nothing.
    let altered = response.replacen("GSTAR-M-1", "GSTAR-M-2", 1);
    assert!(client
        .load_activation_response(altered.as_bytes(), now)
        .is_err());
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );

    let report = client
        .load_activation_response(response.as_bytes(), now)
        .unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{:?}", report.decision);
    let info = client.info_at(now).unwrap();
    assert_eq!(info.status, Status::Enabled);
    assert_eq!(info.license_key.as_deref(), Some("GSTAR-M-1"));
    assert_eq!(info.edition.as_deref(), Some("standard"));

    // The same response a second time is a replay.
    assert_eq!(
        exchange_code(client.load_activation_response(response.as_bytes(), now)),
        Code::ExchangeUnknownRequest
    );
}

#[test]
fn manual_return_stops_use_at_once_and_removes_the_license_on_the_response() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server();
    let now = server.now;
    let request = client
        .begin_manual_activation("GSTAR-M-1", "standard", now)
        .unwrap();
    let activation = server.answer_activation(request.as_bytes()).unwrap();
    client
        .load_activation_response(activation.as_bytes(), now)
        .unwrap();

    let later = now + Duration::days(1);
    let return_request = client.begin_manual_return(later).unwrap();
    let report = client.check_at(later).unwrap();
    assert_eq!(report.decision.code, Code::NotActivated);
    assert_eq!(client.info_at(later).unwrap().status, Status::ReturnPending);

    server.now = later;
    let response = server.answer_return(return_request.as_bytes()).unwrap();
    assert!(server.activations_of("GSTAR-M-1").is_empty());
    client
        .load_return_response(response.as_bytes(), later)
        .unwrap();
    assert_eq!(
        client.check_at(later).unwrap().decision.code,
        Code::NotActivated
    );
    let info = client.info_at(later).unwrap();
    assert_eq!(info.status, Status::Returned);
    assert_eq!(info.license_key.as_deref(), Some("GSTAR-M-1"));

    // Neither response can be loaded again, and the old activation does not come back.
    assert_eq!(
        exchange_code(client.load_return_response(response.as_bytes(), later)),
        Code::ExchangeReturnNotPending
    );
    assert!(client
        .load_activation_response(activation.as_bytes(), later)
        .is_err());
    assert_eq!(client.info_at(later).unwrap().status, Status::Returned);
    // Nothing installed: no return request can be made.
    assert!(matches!(
        client.begin_manual_return(later),
        Err(ClientError::NoLicense)
    ));
}

#[test]
fn a_return_response_needs_a_pending_return() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server();
    let now = server.now;
    let request = client
        .begin_manual_activation("GSTAR-M-1", "standard", now)
        .unwrap();
    let activation = server.answer_activation(request.as_bytes()).unwrap();
    client
        .load_activation_response(activation.as_bytes(), now)
        .unwrap();
    // A second copy of the state directory wrote the return request; this one did not.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(client.state_path(), copy.path().join("gstarcad.state")).unwrap();
    let twin = client_on(copy.path(), office_pc());
    let return_request = twin.begin_manual_return(now).unwrap();
    let response = server.answer_return(return_request.as_bytes()).unwrap();
    assert_eq!(
        exchange_code(client.load_return_response(response.as_bytes(), now)),
        Code::ExchangeReturnNotPending
    );
    assert_eq!(client.check_at(now).unwrap().decision.code, Code::Valid);
}
