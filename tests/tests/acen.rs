//! End-to-end workflows of the PC Guard ACEN licensing models against a real `licet-server --demo`:
//! the standard model (clients, orders, licenses), the web model (serial numbers), license removal
//! and transfer, extension, limited licenses and revocation. The vendor drives the administration
//! API; end users drive the client library (machines with fixed fingerprints) and the `licet`
//! command line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, SubsecRound, TimeZone, Utc};
use common::DemoServer;
use licet_client::client::ClientError;
use licet_client::{Client, Status};
use licet_engine::Code;
use licet_tests::policies_dir;
use serde_json::{json, Value};

fn policy(name: &str) -> PathBuf {
    policies_dir().join(name)
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn parse_time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

fn features(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
    pairs
        .iter()
        .map(|(name, on)| ((*name).to_owned(), *on))
        .collect()
}

fn counters(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), *value))
        .collect()
}

/// The administrator's call, which must answer `status`; returns the answer.
fn admin_ok(server: &DemoServer, method: &str, path: &str, body: &Value, status: u16) -> Value {
    let (got, answer) = server.admin(method, path, body);
    assert_eq!(got, status, "{method} {path}: {answer:#}");
    answer
}

/// Creates client account `id`; returns its token.
fn create_client(server: &DemoServer, id: &str) -> String {
    let answer = admin_ok(
        server,
        "POST",
        "/v1/admin/clients",
        &json!({ "id": id, "name": format!("Client {id}") }),
        201,
    );
    assert_eq!(answer["client"]["id"], id);
    assert_eq!(answer["client"]["has_token"], true);
    let token = answer["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lct_client_"), "{token}");
    token
}

/// Issues licenses (`/v1/admin/licenses`) or serials (`/v1/admin/serials`); returns their keys.
fn issue(server: &DemoServer, route: &str, body: &Value) -> Vec<String> {
    let answer = admin_ok(server, "POST", route, body, 201);
    answer["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|license| license["key"].as_str().unwrap().to_owned())
        .collect()
}

fn license_detail(server: &DemoServer, key: &str) -> Value {
    admin_ok(
        server,
        "GET",
        &format!("/v1/admin/licenses/{key}"),
        &Value::Null,
        200,
    )
}

/// The stored identifiers of the license's activations.
fn activation_ids(server: &DemoServer, key: &str) -> Vec<i64> {
    license_detail(server, key)["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|activation| activation["id"].as_i64().unwrap())
        .collect()
}

/// The keys of a license listing.
fn keys_of(listing: &Value) -> Vec<String> {
    let mut keys: Vec<String> = listing
        .as_array()
        .unwrap_or_else(|| panic!("not a listing: {listing:#}"))
        .iter()
        .map(|license| license["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

/// Issues one license of the standard product to a new client's order; returns the key.
fn designer_license(server: &DemoServer, client: &str) -> String {
    create_client(server, client);
    let order = format!("{client}-order");
    admin_ok(
        server,
        "POST",
        "/v1/admin/orders",
        &json!({ "id": order, "client": client, "product": "acme-designer" }),
        201,
    );
    issue(
        server,
        "/v1/admin/licenses",
        &json!({ "product": "acme-designer", "license_type": "standard", "edition": "business",
                 "order": order }),
    )
    .remove(0)
}

fn check_code(client: &Client) -> Code {
    client.check().unwrap().decision.code
}

/// The expiry of a limited license activated at `activated_at` under `policies/acen-limited.yaml`:
/// 30 days later, moved forward to the 1st of a month at the same time of day.
fn limited_expiry(activated_at: DateTime<Utc>) -> DateTime<Utc> {
    let base = activated_at + Duration::days(30);
    if base.day() == 1 {
        return base;
    }
    let (year, month) = if base.month() == 12 {
        (base.year() + 1, 1)
    } else {
        (base.year(), base.month() + 1)
    };
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
    Utc.from_utc_datetime(&first.and_time(base.time()))
}

#[test]
fn standard_model_clients_see_only_their_licenses_and_certificates_carry_the_order_terms() {
    let server = DemoServer::start_with(policy("acen-standard.yaml"));
    let northwind = create_client(&server, "northwind");
    let contoso = create_client(&server, "contoso");
    // A second client with the same identifier is refused.
    let (status, answer) = server.admin(
        "POST",
        "/v1/admin/clients",
        &json!({ "id": "northwind", "name": "again" }),
    );
    assert_eq!((status, &answer["code"]), (409, &json!("ALREADY_EXISTS")));

    // Orders take the product's features and counters as defaults and override some.
    let order = admin_ok(
        &server,
        "POST",
        "/v1/admin/orders",
        &json!({ "id": "nw-1", "client": "northwind", "product": "acme-designer",
                 "features": { "export-dwg": true }, "counters": { "projects": 50 } }),
        201,
    );
    assert_eq!(order["client"], "northwind");
    assert_eq!(order["product"], "acme-designer");
    admin_ok(
        &server,
        "POST",
        "/v1/admin/orders",
        &json!({ "id": "co-1", "client": "contoso", "product": "acme-designer" }),
        201,
    );
    // An order names features the product declares.
    let (status, answer) = server.admin(
        "POST",
        "/v1/admin/orders",
        &json!({ "client": "northwind", "product": "acme-designer",
                 "features": { "teleport": true } }),
    );
    assert_eq!((status, &answer["code"]), (422, &json!("INVALID_BODY")));

    // Two licenses on Northwind's order, with a license-level feature and counter; one on Contoso's.
    let mut northwind_keys = issue(
        &server,
        "/v1/admin/licenses",
        &json!({ "product": "acme-designer", "license_type": "standard", "edition": "business",
                 "order": "nw-1", "count": 2, "features": { "scripting": true },
                 "counters": { "users": 3 } }),
    );
    northwind_keys.sort();
    assert_eq!(northwind_keys.len(), 2);
    let contoso_keys = issue(
        &server,
        "/v1/admin/licenses",
        &json!({ "product": "acme-designer", "license_type": "standard", "edition": "home",
                 "order": "co-1" }),
    );
    assert!(northwind_keys[0].starts_with("ACME-"), "{northwind_keys:?}");

    // Each client's token lists exactly its own licenses.
    let (status, listing) = server.call_as(&northwind, "GET", "/v1/client/licenses", &Value::Null);
    assert_eq!(status, 200, "{listing:#}");
    assert_eq!(keys_of(&listing), northwind_keys);
    let (status, listing) = server.call_as(&contoso, "GET", "/v1/client/licenses", &Value::Null);
    assert_eq!(status, 200, "{listing:#}");
    assert_eq!(keys_of(&listing), contoso_keys);
    // Asking for another client's licenses by query still lists only the caller's.
    let (status, listing) = server.call_as(
        &contoso,
        "GET",
        "/v1/client/licenses?client=northwind",
        &Value::Null,
    );
    assert_eq!(status, 200, "{listing:#}");
    assert_eq!(keys_of(&listing), contoso_keys);
    let (status, listing) = server.call_as(
        &northwind,
        "GET",
        "/v1/client/licenses?order=co-1",
        &Value::Null,
    );
    assert_eq!(status, 200, "{listing:#}");
    assert_eq!(keys_of(&listing), Vec::<String>::new());
    // Another client's license is not theirs to see, nor to activate with their token.
    let (status, answer) = server.call_as(
        &contoso,
        "POST",
        "/v1/activate",
        &json!({ "key": northwind_keys[0],
                 "target": { "product": "acme-designer", "edition": "business", "version": "5" },
                 "machine": { "machine-id": "contoso-pc" } }),
    );
    assert_eq!((status, &answer["code"]), (403, &json!("ACCESS_DENIED")));
    let (status, answer) = server.call_as(
        &contoso,
        "GET",
        &format!("/v1/client/licenses/{}", northwind_keys[0]),
        &Value::Null,
    );
    assert_eq!((status, &answer["code"]), (403, &json!("ACCESS_DENIED")));
    let (status, own) = server.call_as(
        &northwind,
        "GET",
        &format!("/v1/client/licenses/{}", northwind_keys[0]),
        &Value::Null,
    );
    assert_eq!(status, 200, "{own:#}");
    assert_eq!(own["owner"], "northwind");
    assert_eq!(own["order"], "nw-1");
    // A client token is no administrator token, and an unknown token is refused.
    let (status, answer) = server.call_as(&northwind, "GET", "/v1/admin/licenses", &Value::Null);
    assert_eq!((status, &answer["code"]), (403, &json!("ADMIN_REQUIRED")));
    let (status, answer) = server.call_as(
        "lct_client_not-a-token",
        "GET",
        "/v1/client/licenses",
        &Value::Null,
    );
    assert_eq!((status, &answer["code"]), (401, &json!("UNAUTHORIZED")));
    // The administrator lists the order's licenses.
    let listing = admin_ok(
        &server,
        "GET",
        "/v1/admin/licenses?order=nw-1",
        &Value::Null,
        200,
    );
    assert_eq!(keys_of(&listing), northwind_keys);

    // An end user activates one key with the command line: the certificate carries the product
    // defaults, overridden by the order, overridden by the license.
    let key = &northwind_keys[0];
    server
        .licet(&["activate", "--key", key, "--edition", "business"], true)
        .expect(0, "ACTIVATED: ");
    server
        .licet(&["check"], false)
        .expect(0, "VALID: the certificate is valid");
    let info = server.licet(&["license", "info", "--json"], false);
    let info: Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["status"], "enabled");
    assert_eq!(info["license_key"], key.as_str());
    assert_eq!(info["license_type"], "standard");
    assert_eq!(info["edition"], "business");
    assert_eq!(info["expires_at"], Value::Null);
    assert_eq!(
        info["features"],
        json!({ "export-pdf": true, "export-dwg": true, "scripting": true })
    );
    assert_eq!(info["counters"], json!({ "projects": 50, "users": 3 }));

    // The second key on another machine, with the library: the same terms in the claims.
    let machine = server.machine("designer-2");
    let mut transport = server.transport();
    let activated = machine
        .activate(&mut transport, &northwind_keys[1], "business", now())
        .unwrap();
    assert_eq!(activated.code, Code::Activated, "{activated:?}");
    let report = machine.check().unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{report:?}");
    let claims = report.claims.unwrap();
    assert_eq!(claims.license_key, northwind_keys[1]);
    assert_eq!(
        claims.features,
        features(&[
            ("export-pdf", true),
            ("export-dwg", true),
            ("scripting", true)
        ])
    );
    assert_eq!(claims.counters, counters(&[("projects", 50), ("users", 3)]));
    // Contoso's license is for the home edition, with the product's defaults.
    let home = server.machine("home-1");
    let refused = home
        .activate(&mut transport, &contoso_keys[0], "business", now())
        .unwrap();
    assert_eq!(refused.code, Code::EditionMismatch, "{refused:?}");
    assert_eq!(
        home.activate(&mut transport, &contoso_keys[0], "home", now())
            .unwrap()
            .code,
        Code::Activated
    );
    let claims = home.check().unwrap().claims.unwrap();
    assert_eq!(
        claims.features,
        features(&[
            ("export-pdf", true),
            ("export-dwg", false),
            ("scripting", false)
        ])
    );
    assert_eq!(claims.counters, counters(&[("projects", 10), ("users", 1)]));

    // The owner sees the activation; another client can neither see nor remove it.
    let (status, own) = server.call_as(
        &northwind,
        "GET",
        &format!("/v1/client/licenses/{key}"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{own:#}");
    let activations = own["activations"].as_array().unwrap();
    assert_eq!(activations.len(), 1, "{own:#}");
    let id = activations[0]["id"].as_i64().unwrap();
    let (status, answer) = server.call_as(
        &contoso,
        "DELETE",
        &format!("/v1/client/licenses/{key}/activations/{id}"),
        &Value::Null,
    );
    assert_eq!((status, &answer["code"]), (403, &json!("ACCESS_DENIED")));
    assert_eq!(activation_ids(&server, key), vec![id]);

    // A change of the order's counters reaches the licenses at their next validation.
    let order = admin_ok(
        &server,
        "PATCH",
        "/v1/admin/orders/nw-1",
        &json!({ "counters": { "projects": 80 } }),
        200,
    );
    assert_eq!(order["counters"], json!({ "projects": 80 }));
    server.licet(&["validate"], true).expect(0, "VALID: ");
    let info = server.licet(&["license", "info", "--json"], false);
    let info: Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["counters"], json!({ "projects": 80, "users": 3 }));
}

#[test]
fn web_model_serials_grant_the_policys_activations_and_belong_to_their_product() {
    let server =
        DemoServer::start_with_products(policy("acen-web.yaml"), &[policy("acen-standard.yaml")]);
    let products = admin_ok(&server, "GET", "/v1/admin/products", &Value::Null, 200);
    let viewer = products
        .as_array()
        .unwrap()
        .iter()
        .find(|product| product["id"] == "acme-viewer")
        .unwrap();
    assert_eq!(viewer["model"], "web");
    assert_eq!(viewer["activations_per_serial"], 3);

    // Serials carry their own features; they have no client or order, and only web products
    // have serials.
    let serials = issue(
        &server,
        "/v1/admin/serials",
        &json!({ "product": "acme-viewer", "license_type": "serial", "edition": "standard",
                 "features": { "annotate": true }, "count": 2 }),
    );
    assert_eq!(serials.len(), 2);
    assert!(serials.iter().all(|serial| serial.starts_with("ACME-")));
    let (status, answer) = server.admin(
        "POST",
        "/v1/admin/serials",
        &json!({ "product": "acme-designer", "license_type": "standard",
                 "edition": "business" }),
    );
    assert_eq!((status, &answer["code"]), (422, &json!("INVALID_BODY")));
    create_client(&server, "reseller");
    let (status, answer) = server.admin(
        "POST",
        "/v1/admin/serials",
        &json!({ "product": "acme-viewer", "license_type": "serial", "edition": "standard",
                 "client": "reseller" }),
    );
    assert_eq!((status, &answer["code"]), (422, &json!("INVALID_BODY")));

    // Three machines activate with one serial; the fourth is refused.
    let mut transport = server.transport();
    let serial = &serials[0];
    let machines: Vec<Client> = (1..=4)
        .map(|number| server.machine(&format!("viewer-{number}")))
        .collect();
    for machine in &machines[..3] {
        let activated = machine
            .activate(&mut transport, serial, "standard", now())
            .unwrap();
        assert_eq!(activated.code, Code::Activated, "{activated:?}");
        let report = machine.check().unwrap();
        assert_eq!(report.decision.code, Code::Valid);
        let claims = report.claims.unwrap();
        assert_eq!(claims.license_key, *serial);
        assert_eq!(
            claims.features,
            features(&[("print", true), ("annotate", true)])
        );
        assert_eq!(claims.counters, counters(&[("pages", 500)]));
    }
    // Activating again on a machine that has it uses no further activation.
    assert_eq!(
        machines[0]
            .activate(&mut transport, serial, "standard", now())
            .unwrap()
            .code,
        Code::Activated
    );
    let refused = machines[3]
        .activate(&mut transport, serial, "standard", now())
        .unwrap();
    assert_eq!(refused.code, Code::ActivationLimitReached, "{refused:?}");
    assert_eq!(refused.rule, "license.activations");
    assert_eq!(check_code(&machines[3]), Code::NotActivated);
    assert_eq!(activation_ids(&server, serial).len(), 3);

    // The other serial counts its own activations.
    assert_eq!(
        machines[3]
            .activate(&mut transport, &serials[1], "standard", now())
            .unwrap()
            .code,
        Code::Activated
    );

    // A key of another product is refused, and so is a serial the server never issued.
    let designer_key = issue(
        &server,
        "/v1/admin/licenses",
        &json!({ "product": "acme-designer", "license_type": "standard",
                 "edition": "business" }),
    )
    .remove(0);
    let stranger = server.machine("viewer-5");
    let refused = stranger
        .activate(&mut transport, &designer_key, "standard", now())
        .unwrap();
    assert_eq!(refused.code, Code::ProductMismatch, "{refused:?}");
    let refused = stranger
        .activate(
            &mut transport,
            "ACME-00000-00000-00000-00000",
            "standard",
            now(),
        )
        .unwrap();
    assert_eq!(refused.code, Code::LicenseNotFound, "{refused:?}");
    assert_eq!(check_code(&stranger), Code::NotActivated);
    assert!(activation_ids(&server, &designer_key).is_empty());

    // End users cannot remove web licenses here; the administrator frees an activation.
    let refused = machines[0].return_license(&mut transport, now()).unwrap();
    assert_eq!(refused.code, Code::RemovalForbidden, "{refused:?}");
    assert_eq!(refused.rule, "removal.by_end_user");
    assert_eq!(check_code(&machines[0]), Code::Valid);
    let id = activation_ids(&server, serial)[0];
    let removed = admin_ok(
        &server,
        "DELETE",
        &format!("/v1/admin/licenses/{serial}/activations/{id}"),
        &Value::Null,
        200,
    );
    assert_eq!(removed["code"], "RETURNED");
    assert_eq!(
        stranger
            .activate(&mut transport, serial, "standard", now())
            .unwrap()
            .code,
        Code::Activated
    );
    assert_eq!(activation_ids(&server, serial).len(), 3);

    // The administrator edits the counters of an existing web license; its machines pick the
    // change up at their next validation.
    let extended = admin_ok(
        &server,
        "PATCH",
        &format!("/v1/admin/licenses/{serial}"),
        &json!({ "counters": { "pages": 900 } }),
        200,
    );
    assert_eq!(extended["code"], "EXTENDED");
    assert_eq!(
        machines[1].validate(&mut transport, now()).unwrap().code,
        Code::Valid
    );
    let claims = machines[1].check().unwrap().claims.unwrap();
    assert_eq!(claims.counters, counters(&[("pages", 900)]));
    assert_eq!(
        claims.features,
        features(&[("print", true), ("annotate", true)])
    );
}

#[test]
fn removal_then_activation_moves_a_license_and_the_old_machine_is_refused() {
    let server = DemoServer::start_with(policy("acen-standard.yaml"));
    let key = designer_license(&server, "fabrikam");
    let token = server
        .admin("POST", "/v1/admin/clients/fabrikam/token", &Value::Null)
        .1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = server.machine("first");
    let second = server.machine("second");
    let third = server.machine("third");
    let mut transport = server.transport();

    assert_eq!(
        first
            .activate(&mut transport, &key, "business", now())
            .unwrap()
            .code,
        Code::Activated
    );
    // A copy of the first machine's state, as a backup would keep it.
    let backup = std::fs::read(first.state_path()).unwrap();
    let refused = second
        .activate(&mut transport, &key, "business", now())
        .unwrap();
    assert_eq!(refused.code, Code::ActivationLimitReached, "{refused:?}");

    // The end user removes the license from the first machine and activates it on the second.
    let returned = first.return_license(&mut transport, now()).unwrap();
    assert_eq!(returned.code, Code::Returned, "{returned:?}");
    assert_eq!(returned.rule, "removal.by_end_user");
    assert_eq!(check_code(&first), Code::NotActivated);
    assert_eq!(first.info().unwrap().status, Status::Returned);
    assert!(matches!(
        first.validate(&mut transport, now()),
        Err(ClientError::NoLicense)
    ));
    assert_eq!(
        second
            .activate(&mut transport, &key, "business", now())
            .unwrap()
            .code,
        Code::Activated
    );
    assert_eq!(check_code(&second), Code::Valid);

    // The first machine's old certificate, restored from the backup, works offline only until
    // its next validation, which the server denies as a returned certificate (and audits); the
    // start-up check refuses from then on.
    std::fs::write(first.state_path(), &backup).unwrap();
    assert_eq!(check_code(&first), Code::Valid);
    let denied = first.validate(&mut transport, now()).unwrap();
    assert_eq!(denied.code, Code::ExchangeSerialReturned, "{denied:?}");
    let report = first.check().unwrap();
    assert_eq!(report.decision.code, Code::ExchangeSerialReturned);
    assert_eq!(report.decision.rule, "server.validation");
    assert_eq!(
        first
            .check_at(now() + Duration::hours(1))
            .unwrap()
            .decision
            .code,
        Code::ExchangeSerialReturned
    );
    assert_eq!(first.info().unwrap().status, Status::Returned);

    // The client account removes the second machine's activation from its account (the second
    // removal in 90 days); the second machine learns it at its next validation.
    let ids = activation_ids(&server, &key);
    assert_eq!(ids.len(), 1);
    let (status, removed) = server.call_as(
        &token,
        "DELETE",
        &format!("/v1/client/licenses/{key}/activations/{}", ids[0]),
        &Value::Null,
    );
    assert_eq!(status, 200, "{removed:#}");
    assert_eq!(removed["code"], "RETURNED");
    assert_eq!(check_code(&second), Code::Valid);
    let denied = second.validate(&mut transport, now()).unwrap();
    assert_eq!(denied.code, Code::NotActivated, "{denied:?}");
    assert_eq!(check_code(&second), Code::NotActivated);

    // The third machine takes it; a third removal within 90 days is over the policy's limit.
    assert_eq!(
        third
            .activate(&mut transport, &key, "business", now())
            .unwrap()
            .code,
        Code::Activated
    );
    let refused = third.return_license(&mut transport, now()).unwrap();
    assert_eq!(refused.code, Code::TransferLimitReached, "{refused:?}");
    assert_eq!(refused.rule, "transfer.max");
    assert_eq!(check_code(&third), Code::Valid);
    assert_eq!(activation_ids(&server, &key).len(), 1);
}

#[test]
fn an_administrators_extension_reaches_the_client_at_its_next_validation() {
    let server = DemoServer::start_with(policy("acen-standard.yaml"));
    let key = designer_license(&server, "litware");
    server
        .licet(&["activate", "--key", &key, "--edition", "business"], true)
        .expect(0, "ACTIVATED: ");
    let info = |server: &DemoServer| -> Value {
        let out = server.licet(&["license", "info", "--json"], false);
        assert_eq!(out.code, 0, "{out:#?}");
        serde_json::from_str(&out.stdout).unwrap()
    };
    let before = info(&server);
    assert_eq!(before["expires_at"], Value::Null);
    assert_eq!(before["features"]["scripting"], false);
    assert_eq!(before["counters"]["projects"], 10);

    let expires_at = (now() + Duration::days(400)).trunc_subsecs(0);
    let extended = admin_ok(
        &server,
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "expires_at": expires_at, "features": { "scripting": true },
                 "counters": { "projects": 25 } }),
        200,
    );
    assert_eq!(extended["verdict"], "allow");
    assert_eq!(extended["code"], "EXTENDED");
    let detail = license_detail(&server, &key);
    assert_eq!(parse_time(&detail["term"]["rental"]["ends_at"]), expires_at);
    // A feature the product does not declare is refused.
    let (status, answer) = server.admin(
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "features": { "teleport": true } }),
    );
    assert_eq!((status, &answer["code"]), (422, &json!("INVALID_REQUEST")));

    // Nothing changes on the machine until it validates; no reactivation is needed.
    let unchanged = info(&server);
    assert_eq!(unchanged["expires_at"], Value::Null);
    assert_eq!(unchanged["features"]["scripting"], false);
    server.licet(&["validate"], true).expect(0, "VALID: ");
    let after = info(&server);
    assert_eq!(after["status"], "enabled");
    assert_eq!(parse_time(&after["expires_at"]), expires_at);
    assert_eq!(
        after["features"],
        json!({ "export-pdf": true, "export-dwg": false, "scripting": true })
    );
    assert_eq!(after["counters"], json!({ "projects": 25, "users": 1 }));
    let check = server.licet(&["check", "--json"], false);
    assert_eq!(check.code, 0, "{check:#?}");
    let check: Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(check["code"], "VALID");
    assert_eq!(activation_ids(&server, &key).len(), 1);

    // The start-up check applies the new expiry.
    let client = Client::open(
        &server.dir.path().join("cli-state"),
        &server.policy,
        &server.vendor_key(),
    )
    .unwrap();
    let report = client.check().unwrap();
    assert_eq!(report.claims.unwrap().expires_at, Some(expires_at));
    assert_eq!(
        client.check_at(expires_at).unwrap().decision.code,
        Code::Expired
    );
}

#[test]
fn a_limited_license_keeps_its_terms_and_only_the_administrator_removes_it() {
    let server = DemoServer::start_with(policy("acen-limited.yaml"));
    let token = create_client(&server, "adatum");
    admin_ok(
        &server,
        "POST",
        "/v1/admin/orders",
        &json!({ "id": "ad-1", "client": "adatum", "product": "acme-analyzer",
                 "counters": { "runs": 40 } }),
        201,
    );
    let key = issue(
        &server,
        "/v1/admin/licenses",
        &json!({ "product": "acme-analyzer", "license_type": "limited", "edition": "pro",
                 "order": "ad-1", "features": { "cloud": true } }),
    )
    .remove(0);
    assert_eq!(license_detail(&server, &key)["limited"], Value::Null);

    let first = server.machine("analyzer-1");
    let second = server.machine("analyzer-2");
    let mut transport = server.transport();
    let activated = first.activate(&mut transport, &key, "pro", now()).unwrap();
    assert_eq!(activated.code, Code::Activated, "{activated:?}");

    // The expiry is the activation plus 30 days, on the 1st of a month; the window starts at the
    // beginning of the day before the activation.
    let detail = license_detail(&server, &key);
    let activated_at = parse_time(&detail["activations"][0]["activated_at"]);
    let expiry = limited_expiry(activated_at);
    assert_eq!(expiry.day(), 1);
    assert_eq!(expiry.time(), activated_at.time());
    assert!(expiry >= activated_at + Duration::days(30));
    assert!(expiry < activated_at + Duration::days(62));
    let window_start = Utc.from_utc_datetime(
        &(activated_at - Duration::days(1))
            .date_naive()
            .and_time(NaiveTime::MIN),
    );
    assert_eq!(parse_time(&detail["limited"]["expires_at"]), expiry);
    assert_eq!(parse_time(&detail["limited"]["not_before"]), window_start);
    assert_eq!(
        detail["limited"]["features"],
        json!({ "batch": true, "cloud": true })
    );
    assert_eq!(detail["limited"]["counters"], json!({ "runs": 40 }));
    let report = first.check().unwrap();
    assert_eq!(report.decision.code, Code::Valid);
    let claims = report.claims.unwrap();
    assert_eq!(claims.expires_at, Some(expiry));
    assert_eq!(claims.not_before, window_start);
    assert_eq!(
        claims.features,
        features(&[("batch", true), ("cloud", true)])
    );
    assert_eq!(claims.counters, counters(&[("runs", 40)]));
    assert_eq!(first.info_at(expiry).unwrap().code, Code::Expired);

    // Neither the end user nor the client account can remove a limited license.
    let refused = first.return_license(&mut transport, now()).unwrap();
    assert_eq!(refused.code, Code::RemovalForbidden, "{refused:?}");
    assert_eq!(refused.rule, "limited.removal");
    assert_eq!(check_code(&first), Code::Valid);
    let id = activation_ids(&server, &key)[0];
    let (status, answer) = server.call_as(
        &token,
        "DELETE",
        &format!("/v1/client/licenses/{key}/activations/{id}"),
        &Value::Null,
    );
    assert_eq!(
        (status, &answer["code"]),
        (403, &json!("REMOVAL_FORBIDDEN"))
    );
    assert_eq!(activation_ids(&server, &key), vec![id]);

    // The administrator brings the expiry forward: after validation, a check two days later
    // finds the license expired.
    let start = now().trunc_subsecs(0);
    let soon = start + Duration::days(2);
    let later = start + Duration::days(3);
    let changed = admin_ok(
        &server,
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "expires_at": soon }),
        200,
    );
    assert_eq!(changed["code"], "EXTENDED");
    assert_eq!(
        first.validate(&mut transport, now()).unwrap().code,
        Code::Valid
    );
    assert_eq!(
        first.check().unwrap().claims.unwrap().expires_at,
        Some(soon)
    );
    let expired = first.check_at(later).unwrap();
    assert_eq!(expired.decision.code, Code::Expired, "{expired:?}");

    // Then extends it past the original expiry and lowers the runs: after validation the check
    // at that same later time finds it valid.
    let extended_expiry = expiry + Duration::days(31);
    let extended = admin_ok(
        &server,
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "expires_at": extended_expiry, "counters": { "runs": 35 } }),
        200,
    );
    assert_eq!(extended["code"], "EXTENDED");
    assert_eq!(
        first.validate(&mut transport, now()).unwrap().code,
        Code::Valid
    );
    let report = first.check_at(later).unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{report:?}");
    let claims = report.claims.unwrap();
    assert_eq!(claims.expires_at, Some(extended_expiry));
    assert_eq!(claims.counters, counters(&[("runs", 35)]));

    // The administrator removes the activation; the machine learns it at its next validation.
    let removed = admin_ok(
        &server,
        "DELETE",
        &format!("/v1/admin/licenses/{key}/activations/{id}"),
        &Value::Null,
        200,
    );
    assert_eq!(removed["code"], "RETURNED");
    assert!(activation_ids(&server, &key).is_empty());
    let denied = first.validate(&mut transport, now()).unwrap();
    assert_eq!(denied.code, Code::NotActivated, "{denied:?}");
    assert_eq!(
        first.check_at(later).unwrap().decision.code,
        Code::NotActivated
    );

    // A reactivation keeps the (extended) expiry, the window, the features and the counters.
    let reactivated = second.activate(&mut transport, &key, "pro", now()).unwrap();
    assert_eq!(reactivated.code, Code::Activated, "{reactivated:?}");
    let claims = second.check().unwrap().claims.unwrap();
    assert_eq!(claims.expires_at, Some(extended_expiry));
    assert_eq!(claims.not_before, window_start);
    assert_eq!(
        claims.features,
        features(&[("batch", true), ("cloud", true)])
    );
    assert_eq!(claims.counters, counters(&[("runs", 35)]));
    let detail = license_detail(&server, &key);
    assert_eq!(
        parse_time(&detail["limited"]["expires_at"]),
        extended_expiry
    );
    assert_eq!(parse_time(&detail["limited"]["not_before"]), window_start);

    // The policy's rule reads the license's counters as the administrator set them.
    admin_ok(
        &server,
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "counters": { "runs": 0 } }),
        200,
    );
    let denied = second.validate(&mut transport, now()).unwrap();
    assert_eq!(denied.code, Code::RuleDenied, "{denied:?}");
    assert_eq!(denied.rule, "rules.runs-left");
    assert_eq!(check_code(&second), Code::RuleDenied);
}

#[test]
fn a_revoked_license_is_denied_at_its_next_validation_and_refused_from_then_on() {
    let server = DemoServer::start_with(policy("acen-standard.yaml"));
    let key = designer_license(&server, "tailspin");
    server
        .licet(&["activate", "--key", &key, "--edition", "business"], true)
        .expect(0, "ACTIVATED: ");
    server.licet(&["check"], false).expect(0, "VALID: ");

    let revoked = admin_ok(
        &server,
        "POST",
        &format!("/v1/admin/licenses/{key}/revoke"),
        &Value::Null,
        200,
    );
    assert_eq!(revoked["code"], "REVOCATION_APPLIED");
    assert_eq!(license_detail(&server, &key)["status"], "revoked");

    // Offline, the machine runs on its certificate until it validates.
    server.licet(&["check"], false).expect(0, "VALID: ");
    server.licet(&["validate"], true).expect(1, "REVOKED: ");
    server.licet(&["check"], false).expect(1, "REVOKED: ");
    let info = server.licet(&["license", "info", "--json"], false);
    let info: Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["status"], "revoked");
    assert_eq!(info["code"], "REVOKED");
    server.licet(&["validate"], true).expect(1, "REVOKED: ");
    server.licet(&["check"], false).expect(1, "REVOKED: ");
    let client = Client::open(
        &server.dir.path().join("cli-state"),
        &server.policy,
        &server.vendor_key(),
    )
    .unwrap();
    assert_eq!(
        client
            .check_at(now() + Duration::days(1))
            .unwrap()
            .decision
            .code,
        Code::Revoked
    );

    // Nobody can activate, return or move it any more.
    let mut transport = server.transport();
    let other = server.machine("other");
    let refused = other
        .activate(&mut transport, &key, "business", now())
        .unwrap();
    assert_eq!(refused.code, Code::Revoked, "{refused:?}");
    assert_eq!(refused.rule, "license.status");
    server.licet(&["return"], true).expect(1, "REVOKED: ");
}

#[test]
fn a_machine_reactivates_at_once_after_its_activation_was_removed() {
    let server = DemoServer::start_with(policy("acen-standard.yaml"));
    let key = designer_license(&server, "woodgrove");
    let machine = server.machine("desk");
    let mut transport = server.transport();
    assert_eq!(
        machine
            .activate(&mut transport, &key, "business", now())
            .unwrap()
            .code,
        Code::Activated
    );
    let id = activation_ids(&server, &key)[0];
    let removed = admin_ok(
        &server,
        "DELETE",
        &format!("/v1/admin/licenses/{key}/activations/{id}"),
        &Value::Null,
        200,
    );
    assert_eq!(removed["code"], "RETURNED");

    // Early in a second, so the denial and the new activation fall in the same second.
    for _ in 0..200 {
        if now().timestamp_subsec_millis() < 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let denied = machine.validate(&mut transport, now()).unwrap();
    assert_eq!(denied.code, Code::NotActivated, "{denied:?}");
    let reactivated = machine.activate(&mut transport, &key, "business", now());
    assert!(
        matches!(&reactivated, Ok(decision) if decision.code == Code::Activated),
        "{reactivated:?}"
    );
    assert_eq!(check_code(&machine), Code::Valid);
}

#[test]
fn an_expired_limited_license_comes_back_when_the_administrator_extends_it() {
    let server = DemoServer::start_with(policy("acen-limited.yaml"));
    create_client(&server, "proseware");
    let key = issue(
        &server,
        "/v1/admin/licenses",
        &json!({ "product": "acme-analyzer", "license_type": "limited", "edition": "pro",
                 "client": "proseware" }),
    )
    .remove(0);
    // Before its first activation a limited license has no expiry to change.
    let (status, answer) = server.admin(
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "expires_at": now() + Duration::days(90) }),
    );
    assert_eq!((status, &answer["code"]), (403, &json!("TERM_NOT_ALLOWED")));

    let machine = server.machine("lab");
    let mut transport = server.transport();
    assert_eq!(
        machine
            .activate(&mut transport, &key, "pro", now())
            .unwrap()
            .code,
        Code::Activated
    );
    // The administrator ends the license now: the next validation is denied as expired, and the
    // start-up check keeps refusing.
    let ended = now().trunc_subsecs(0) - Duration::seconds(1);
    admin_ok(
        &server,
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "expires_at": ended }),
        200,
    );
    let denied = machine.validate(&mut transport, now()).unwrap();
    assert_eq!(denied.code, Code::Expired, "{denied:?}");
    assert_eq!(denied.rule, "license.expiry");
    assert_eq!(check_code(&machine), Code::Expired);
    assert_eq!(machine.info().unwrap().status, Status::Expired);
    // Another machine cannot activate it either.
    let refused = server
        .machine("other-lab")
        .activate(&mut transport, &key, "pro", now())
        .unwrap();
    assert_eq!(refused.code, Code::Expired, "{refused:?}");

    // Extended, it validates again at once with the new expiry.
    let extended_expiry = now().trunc_subsecs(0) + Duration::days(60);
    admin_ok(
        &server,
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "expires_at": extended_expiry }),
        200,
    );
    assert_eq!(
        machine.validate(&mut transport, now()).unwrap().code,
        Code::Valid
    );
    let report = machine.check().unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{report:?}");
    assert_eq!(report.claims.unwrap().expires_at, Some(extended_expiry));
}
