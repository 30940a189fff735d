//! End-to-end workflows against a real `licet-server --demo` on loopback: the `licet` command line
//! for one machine (its native fingerprint), and the client library with fixed fingerprints and
//! the HTTP transport where a workflow needs two machines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use std::io::{BufRead, BufReader};

use common::{gstarcad_policy, DemoServer};
use licet_client::client::{SeatHold, SeatHolder};
use licet_client::Client;
use licet_client::Status;
use licet_engine::Code;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[test]
fn a_trial_started_online_validates_and_survives_a_lost_state() {
    let server = DemoServer::start();
    let started = server.licet(&["trial", "start", "--edition", "professional"], true);
    started.expect(0, "TRIAL_STARTED: the trial runs until ");
    server.licet(&["check"], false).expect(0, "VALID: ");
    server
        .licet(&["validate"], true)
        .expect(0, "VALID: the trial runs until ");
    let info = server.licet(&["license", "info", "--json"], false);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["status"], "trial");
    assert_eq!(info["edition"], "professional");

    // Deleting the local state gives the same trial back, with its original end.
    std::fs::remove_dir_all(server.dir.path().join("cli-state")).unwrap();
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
    let again = server.licet(&["trial", "start", "--edition", "professional"], true);
    again.expect(0, "TRIAL_STARTED: ");
    assert_eq!(again.stdout, started.stdout);
}

#[test]
fn online_activation_check_validate_and_return_from_the_command_line() {
    let server = DemoServer::start();
    let key = server.standalone_key();
    server
        .licet(
            &["activate", "--key", key, "--edition", "professional"],
            true,
        )
        .expect(0, "ACTIVATED: ");
    server
        .licet(&["check"], false)
        .expect(0, "VALID: the certificate is valid");
    server.licet(&["validate"], true).expect(0, "VALID: ");
    server.licet(&["return"], true).expect(0, "RETURNED: ");
    let after = server.licet(&["check"], false);
    after.expect(1, "NOT_ACTIVATED: ");
    assert!(after.stdout.contains(key), "{after:#?}");
    let info = server.licet(&["license", "info", "--json"], false);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["status"], "returned");

    // Denials carry the server's code; a key the server does not know is refused.
    server
        .licet(
            &[
                "activate",
                "--key",
                "GSTA-NOT-A-KEY",
                "--edition",
                "professional",
            ],
            true,
        )
        .expect(1, "LICENSE_NOT_FOUND: ");
}

#[test]
fn the_command_line_reports_usage_and_unreachable_servers_as_errors() {
    let server = DemoServer::start();
    // A usage error: an online activation needs the edition.
    let usage = server.licet(&["activate", "--key", "K"], true);
    assert_eq!(usage.code, 2, "{usage:#?}");
    // Plain HTTP to a host that is not loopback (TEST-NET-1) is refused before anything is sent.
    let plain = server.licet(
        &[
            "trial",
            "start",
            "--edition",
            "professional",
            "--server",
            "http://192.0.2.1:8440",
        ],
        false,
    );
    assert_eq!(plain.code, 3, "{plain:#?}");
    assert!(
        plain
            .stderr
            .contains("plain HTTP to `192.0.2.1` is refused"),
        "{plain:#?}"
    );
    // A pin that is not a certificate is refused before anything is sent.
    let pin = server.dir.path().join("not-a-certificate.pem");
    std::fs::write(
        &pin,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let bad_pin = server.licet(
        &[
            "trial",
            "start",
            "--edition",
            "professional",
            "--server",
            "https://192.0.2.1:8443",
            "--server-certificate",
            pin.to_str().unwrap(),
        ],
        false,
    );
    assert_eq!(bad_pin.code, 3, "{bad_pin:#?}");
    assert!(
        bad_pin.stderr.contains("invalid pinned server certificate"),
        "{bad_pin:#?}"
    );
    // Nothing listens there: the server cannot be reached, and nothing is stored.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let offline = server.licet(
        &[
            "trial",
            "start",
            "--edition",
            "professional",
            "--server",
            &url,
        ],
        false,
    );
    assert_eq!(offline.code, 3, "{offline:#?}");
    assert!(offline.stderr.contains("cannot be reached"), "{offline:#?}");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
}

#[test]
fn a_one_activation_key_is_refused_on_a_second_machine() {
    let server = DemoServer::start();
    let key = server.standalone_key();
    let first = server.machine("first");
    let second = server.machine("second");
    let mut transport = server.transport();

    let activated = first
        .activate(&mut transport, key, "professional", now())
        .unwrap();
    assert_eq!(activated.code, Code::Activated, "{activated:?}");
    let refused = second
        .activate(&mut transport, key, "professional", now())
        .unwrap();
    assert_eq!(refused.code, Code::ActivationLimitReached, "{refused:?}");
    assert!(!refused.is_allowed());

    assert!(first.check().unwrap().decision.is_allowed());
    assert_eq!(second.check().unwrap().decision.code, Code::NotActivated);
    // The first machine validates; the second has nothing to validate.
    assert_eq!(
        first.validate(&mut transport, now()).unwrap().code,
        Code::Valid
    );
}

#[test]
fn a_returned_key_activates_on_another_machine_and_no_longer_on_the_first() {
    let server = DemoServer::start();
    let key = server.standalone_key();
    let first = server.machine("first");
    let second = server.machine("second");
    let mut transport = server.transport();

    let activated = first
        .activate(&mut transport, key, "professional", now())
        .unwrap();
    assert_eq!(activated.code, Code::Activated);
    assert!(first.check().unwrap().decision.is_allowed());
    let returned = first.return_license(&mut transport, now()).unwrap();
    assert_eq!(returned.code, Code::Returned, "{returned:?}");

    let moved = second
        .activate(&mut transport, key, "professional", now())
        .unwrap();
    assert_eq!(moved.code, Code::Activated, "{moved:?}");
    assert!(second.check().unwrap().decision.is_allowed());

    let report = first.check().unwrap();
    assert_eq!(report.decision.code, Code::NotActivated);
    assert_eq!(first.info().unwrap().status, Status::Returned);
    // The key is now bound to the second machine: the first cannot take it back.
    let again = first
        .activate(&mut transport, key, "professional", now())
        .unwrap();
    assert_eq!(again.code, Code::ActivationLimitReached, "{again:?}");
}

#[test]
fn manual_activation_and_return_by_files_through_the_server() {
    let server = DemoServer::start();
    let key = server.standalone_key();
    let exchange = |request: &str, response: &str| {
        let file = std::fs::read(server.dir.path().join(request)).unwrap();
        let answer = server
            .transport()
            .post("/v1/exchange", "application/xml", &file)
            .unwrap();
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        std::fs::write(server.dir.path().join(response), &answer.body).unwrap();
    };

    server
        .licet(
            &[
                "activate",
                "--manual",
                "--key",
                key,
                "--edition",
                "professional",
                "--request-out",
                "activation-request.xml",
            ],
            false,
        )
        .expect(0, "activation request written to ");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
    exchange("activation-request.xml", "activation-response.xml");
    server
        .licet(
            &["activate", "--load-response", "activation-response.xml"],
            false,
        )
        .expect(0, "activated from ");
    server
        .licet(&["check"], false)
        .expect(0, "VALID: the certificate is valid");

    // The key is bound to this machine now: another machine is refused.
    let other = server.machine("other");
    let mut transport = server.transport();
    let refused = other
        .activate(&mut transport, key, "professional", now())
        .unwrap();
    assert_eq!(refused.code, Code::ActivationLimitReached, "{refused:?}");

    server
        .licet(
            &["return", "--manual", "--request-out", "return-request.xml"],
            false,
        )
        .expect(0, "return request written to ");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
    exchange("return-request.xml", "return-response.xml");
    server
        .licet(&["return", "--load-response", "return-response.xml"], false)
        .expect(0, "returned: ");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED: ");
    // Loading it a second time is refused and changes nothing.
    server
        .licet(&["return", "--load-response", "return-response.xml"], false)
        .expect(1, "EXCHANGE_RETURN_NOT_PENDING: ");

    // The server freed the key: the other machine activates it online.
    let moved = other
        .activate(&mut transport, key, "professional", now())
        .unwrap();
    assert_eq!(moved.code, Code::Activated, "{moved:?}");
}

/// The number of seats the demo's network key has (`default_seats` of `network-key`).
const DEMO_SEATS: usize = 5;

#[test]
fn n_plus_one_clients_share_n_network_seats() {
    let server = DemoServer::start();
    let key = server.network_key().to_owned();
    let clients: Vec<Client> = (0..=DEMO_SEATS)
        .map(|index| server.machine(&format!("seat-{index}")))
        .collect();
    let mut transport = server.transport();
    let (holders, extra) = clients.split_at(DEMO_SEATS);
    let extra = &extra[0];
    for client in holders {
        assert_eq!(client.check().unwrap().decision.code, Code::NotActivated);
        let decision = client
            .checkout(&mut transport, &key, "professional", now())
            .unwrap();
        assert_eq!(decision.code, Code::SeatGranted, "{decision:?}");
        // The seat certificate lets the product start while the seat is held.
        assert_eq!(client.check().unwrap().decision.code, Code::Valid);
    }
    let refused = extra
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(refused.code, Code::SeatsExhausted, "{refused:?}");
    assert_eq!(extra.check().unwrap().decision.code, Code::NotActivated);
    assert!(extra.seat().unwrap().is_none());

    // A heartbeat renews the seat; it is the same seat, not a second one.
    let before = holders[0].seat().unwrap().unwrap();
    let renewed = holders[0].heartbeat(&mut transport, now()).unwrap();
    assert_eq!(renewed.code, Code::LeaseRenewed, "{renewed:?}");
    assert_eq!(holders[0].seat().unwrap().unwrap(), before);
    // A reconnect with the same session gets the same seat back rather than a second one.
    let reconnect = holders[1].seat().unwrap().unwrap();
    let again = holders[1]
        .checkout_session(
            &mut transport,
            &key,
            "professional",
            &reconnect.session,
            now(),
        )
        .unwrap();
    assert_eq!(again.code, Code::SeatGranted, "{again:?}");
    assert!(again.message.contains("keeps its seat"), "{again:?}");
    // A restarted product checking out again on the same machine reuses its stored session.
    let restarted = holders[2].seat().unwrap().unwrap();
    let same = holders[2]
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert!(same.message.contains("keeps its seat"), "{same:?}");
    assert_eq!(holders[2].seat().unwrap().unwrap(), restarted);
    let still_refused = extra
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(
        still_refused.code,
        Code::SeatsExhausted,
        "{still_refused:?}"
    );

    let released = holders[0].release(&mut transport, now()).unwrap();
    assert_eq!(released.code, Code::SeatReleased, "{released:?}");
    assert_eq!(
        holders[0].check().unwrap().decision.code,
        Code::NotActivated
    );
    assert!(holders[0].seat().unwrap().is_none());

    let granted = extra
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
    assert_eq!(extra.check().unwrap().decision.code, Code::Valid);
    let refused_now = holders[0]
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(refused_now.code, Code::SeatsExhausted, "{refused_now:?}");
}

#[test]
fn a_seat_holder_releases_its_seat_when_dropped() {
    let server = DemoServer::start();
    let key = server.network_key().to_owned();
    let mut holders = Vec::new();
    for index in 0..DEMO_SEATS {
        let client = Arc::new(server.machine(&format!("holder-{index}")));
        match SeatHolder::checkout(
            Arc::clone(&client),
            Box::new(server.transport()),
            &key,
            "professional",
        )
        .unwrap()
        {
            SeatHold::Held(holder) => {
                assert_eq!(holder.decision().code, Code::SeatGranted);
                assert_eq!(client.check().unwrap().decision.code, Code::Valid);
                holders.push((client, holder));
            }
            SeatHold::Denied(decision) => panic!("seat {index} denied: {decision:?}"),
        }
    }
    let extra = Arc::new(server.machine("holder-extra"));
    let denied = SeatHolder::checkout(
        Arc::clone(&extra),
        Box::new(server.transport()),
        &key,
        "professional",
    )
    .unwrap();
    assert!(
        matches!(&denied, SeatHold::Denied(decision) if decision.code == Code::SeatsExhausted),
        "{denied:?}"
    );

    let (first, holder) = holders.remove(0);
    drop(holder);
    assert_eq!(first.check().unwrap().decision.code, Code::NotActivated);
    match SeatHolder::checkout(
        Arc::clone(&extra),
        Box::new(server.transport()),
        &key,
        "professional",
    )
    .unwrap()
    {
        SeatHold::Held(holder) => {
            assert_eq!(extra.check().unwrap().decision.code, Code::Valid);
            let released = holder.release().unwrap();
            assert_eq!(released.code, Code::SeatReleased, "{released:?}");
        }
        SeatHold::Denied(decision) => panic!("the freed seat was denied: {decision:?}"),
    }
}

#[test]
fn a_borrowed_seat_runs_offline_until_the_borrow_ends() {
    let mut server = DemoServer::start();
    let key = server.network_key().to_owned();
    let mut transport = server.transport();
    let borrower = server.machine("borrower");
    let until = now() + chrono::Duration::days(7);
    let too_long = borrower
        .borrow(
            &mut transport,
            &key,
            "professional",
            now() + chrono::Duration::days(31),
            now(),
        )
        .unwrap();
    assert_eq!(too_long.code, Code::BorrowTooLong, "{too_long:?}");
    assert_eq!(borrower.check().unwrap().decision.code, Code::NotActivated);

    let borrowed = borrower
        .borrow(&mut transport, &key, "professional", until, now())
        .unwrap();
    assert_eq!(borrowed.code, Code::Borrowed, "{borrowed:?}");
    // The rest of the pool fills up; the borrowed seat counts as taken.
    for index in 1..DEMO_SEATS {
        let client = server.machine(&format!("pool-{index}"));
        let decision = client
            .checkout(&mut transport, &key, "professional", now())
            .unwrap();
        assert_eq!(decision.code, Code::SeatGranted, "{decision:?}");
    }
    let waiting = server.machine("waiting");
    let refused = waiting
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(refused.code, Code::SeatsExhausted, "{refused:?}");

    // Offline: the server is down, the borrowed certificate still lets the product start, until
    // the borrow ends.
    server.stop();
    let offline = borrower.check().unwrap();
    assert_eq!(offline.decision.code, Code::Valid, "{offline:?}");
    // A return that cannot reach the server keeps the borrowed license.
    assert!(borrower.return_borrowed(&mut transport, now()).is_err());
    assert_eq!(borrower.check().unwrap().decision.code, Code::Valid);
    // (Last: a check records the time it saw, and this one is in the future.)
    let after = borrower
        .check_at(until + chrono::Duration::seconds(1))
        .unwrap();
    assert_eq!(after.decision.code, Code::Expired, "{after:?}");
}

#[test]
fn a_borrowed_seat_returned_early_is_free_for_another_machine() {
    let server = DemoServer::start();
    let key = server.network_key().to_owned();
    let mut transport = server.transport();
    let borrower = server.machine("borrower");
    let until = now() + chrono::Duration::days(3);
    let borrowed = borrower
        .borrow(&mut transport, &key, "professional", until, now())
        .unwrap();
    assert_eq!(borrowed.code, Code::Borrowed, "{borrowed:?}");
    for index in 1..DEMO_SEATS {
        let client = server.machine(&format!("pool-{index}"));
        let decision = client
            .checkout(&mut transport, &key, "professional", now())
            .unwrap();
        assert_eq!(decision.code, Code::SeatGranted, "{decision:?}");
    }
    let waiting = server.machine("waiting");
    let refused = waiting
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(refused.code, Code::SeatsExhausted, "{refused:?}");
    // A borrowed seat needs no heartbeat and is not released like a held one.
    assert!(borrower.release(&mut transport, now()).is_err());

    let returned = borrower.return_borrowed(&mut transport, now()).unwrap();
    assert_eq!(returned.code, Code::BorrowReturned, "{returned:?}");
    assert_eq!(borrower.check().unwrap().decision.code, Code::NotActivated);
    assert!(borrower.seat().unwrap().is_none());
    let granted = waiting
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
}

#[test]
fn seats_and_borrows_from_the_command_line() {
    let server = DemoServer::start();
    let key = server.network_key().to_owned();
    let mut hold =
        server.licet_child(&["seat", "hold", "--key", &key, "--edition", "professional"]);
    let mut stdout = BufReader::new(hold.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("SEAT_GRANTED"), "{first}");
    // Closing standard input ends the hold and releases the seat.
    drop(hold.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(hold.wait().unwrap().success(), "{rest}");
    assert!(rest.starts_with("SEAT_RELEASED"), "{rest}");

    let until = (now() + chrono::Duration::days(5))
        .format("%Y-%m-%d")
        .to_string();
    server
        .licet(
            &[
                "borrow",
                "--key",
                &key,
                "--edition",
                "professional",
                "--until",
                &until,
            ],
            true,
        )
        .expect(0, "BORROWED");
    server.licet(&["check"], false).expect(0, "VALID");
    server
        .licet(&["borrow", "return"], true)
        .expect(0, "BORROW_RETURNED");
    server.licet(&["check"], false).expect(1, "NOT_ACTIVATED");
    server.licet(&["borrow", "return"], true).expect(3, "");
}

#[test]
fn a_held_seat_is_released_when_the_holder_is_interrupted_or_terminated() {
    let server = DemoServer::start();
    let key = server.network_key().to_owned();
    let seats_held = || {
        let (status, seats) = server.admin("GET", "/v1/admin/seats", &serde_json::Value::Null);
        assert_eq!(status, 200, "{seats}");
        seats.as_array().unwrap().len()
    };
    for signal in ["INT", "TERM", "HUP"] {
        let mut hold =
            server.licet_child(&["seat", "hold", "--key", &key, "--edition", "professional"]);
        let mut stdout = BufReader::new(hold.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.starts_with("SEAT_GRANTED"), "{first}");
        assert_eq!(seats_held(), 1, "SIG{signal}");
        // Standard input stays open: only the signal ends the hold.
        let sent = std::process::Command::new("kill")
            .args(["-s", signal, &hold.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert!(hold.wait().unwrap().success(), "SIG{signal}: {rest}");
        assert!(rest.starts_with("SEAT_RELEASED"), "SIG{signal}: {rest}");
        assert_eq!(seats_held(), 0, "SIG{signal}");
    }
}

#[test]
fn a_seat_holder_keeps_its_seat_past_the_lease_with_heartbeats() {
    // One seat with the shortest lease a policy allows (10 s): heartbeats every third of it.
    let policy_dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(gstarcad_policy()).unwrap();
    let short = "default_seats: 1\n    lease_seconds: 10";
    let edited = source.replace("default_seats: 5\n    lease_seconds: 300", short);
    assert!(
        edited.contains(short),
        "gstarcad.yaml changed its network-key seats"
    );
    let policy = policy_dir.path().join("gstarcad.yaml");
    std::fs::write(&policy, edited).unwrap();
    let server = DemoServer::start_with(policy);
    let key = server.network_key().to_owned();
    let client = Arc::new(server.machine("heartbeat"));
    let holder = match SeatHolder::checkout(
        Arc::clone(&client),
        Box::new(server.transport()),
        &key,
        "professional",
    )
    .unwrap()
    {
        SeatHold::Held(holder) => holder,
        SeatHold::Denied(decision) => panic!("the seat was denied: {decision:?}"),
    };
    let first = client.check().unwrap().claims.unwrap();
    // Past the first lease's end: without heartbeats both the lease and the certificate would
    // have lapsed by now.
    let lapsed = first.expires_at.unwrap() + chrono::Duration::seconds(3);
    for _ in 0..40 {
        if now() >= lapsed {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(now() >= lapsed);
    let report = client.check().unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{report:?}");
    assert!(report.claims.unwrap().expires_at > first.expires_at);
    let other = server.machine("other");
    let mut transport = server.transport();
    let refused = other
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(refused.code, Code::SeatsExhausted, "{refused:?}");

    drop(holder);
    let granted = other
        .checkout(&mut transport, &key, "professional", now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
}
