//! Both backends answer every [`Records`] operation alike: the same calls, in the same order, run
//! through [`Store`] jobs on SQLite (in a temporary directory) and on PostgreSQL (in a fresh
//! schema), give the same transcript, and the transcript holds the expected answers.
//!
//! Every method the trait declares must be called here: the test reads the trait's declarations
//! and this file's calls and fails when one is not exercised.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use licet_engine::report::Report as _;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use licet_engine::certificate::{Binding, CertificateKind};
use licet_engine::state::{
    Activation, License, LicenseStatus, Order, SeatLease, Term, TrialRecord,
};

use super::{
    job, AuditEntry, AuditSearch, ClientRecord, Database, LicenseFilter, LicenseRecord,
    OrderRecord, ResponseFileRecord, Store, StoreOptions,
};

/// The base time of the script.
const T0: i64 = 1_700_000_000;

pub(super) fn at(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0 + offset, 0).unwrap()
}

pub(super) fn fingerprint(components: &[(&str, &str)]) -> Binding {
    Binding::Fingerprint(
        components
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    )
}

pub(super) fn license(key: &str, client: Option<&str>) -> LicenseRecord {
    LicenseRecord {
        license: License {
            key: key.to_owned(),
            product: "p".to_owned(),
            license_type: "perpetual".to_owned(),
            edition: "pro".to_owned(),
            version: "1".to_owned(),
            term: Term::Perpetual,
            seats: Some(3),
            features: BTreeMap::from([("export".to_owned(), true)]),
            counters: BTreeMap::from([("users".to_owned(), 5)]),
            status: LicenseStatus::Enabled,
            dongle: None,
            client: client.map(str::to_owned),
            limited: None,
        },
        order: None,
        created_at: at(0),
    }
}

/// The PostgreSQL server the tests use.
pub(super) fn postgres_url() -> String {
    std::env::var("LICET_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A connection to the tests' PostgreSQL server (the search path as in `url`).
pub(super) async fn postgres_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must run for the tests (./scripts/postgres starts it)");
    tokio::spawn(connection);
    client
}

/// A fresh schema: its name and a connection string that selects it.
pub(super) async fn postgres_schema() -> (String, String) {
    let mut bytes = [0_u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let schema = format!(
        "licet_u_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let base = postgres_url();
    postgres_client(&base)
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    (
        schema.clone(),
        format!("{base}{separator}options=-csearch_path%3D{schema}"),
    )
}

pub(super) async fn drop_schema(schema: &str) {
    let _ = postgres_client(&postgres_url())
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await;
}

/// What the calls answered, one labelled line each.
type Lines = Vec<(String, String)>;

macro_rules! say {
    ($lines:ident, $label:expr, $value:expr) => {
        $lines.push(($label.to_string(), format!("{:?}", $value)))
    };
}

job! {
    /// Products, clients, tokens, orders and licenses.
    Accounts {} -> Lines;
    |_this, records| {
        let mut lines = Lines::new();
        records.upsert_product("p", "P", "1", "h1", at(0)).await?;
        records.upsert_product("p", "P", "2", "h2", at(1)).await?;
        records.lock_product("p").await?;
        for (id, token) in [("c1", "t1"), ("c2", "t2"), ("c3", "t3")] {
            let client = ClientRecord {
                id: id.to_owned(),
                name: format!("Client {id}"),
                has_token: true,
                created_at: at(0),
            };
            records.insert_client(&client, token).await?;
        }
        say!(lines, "clients", records.clients_page(None, 100).await?);
        say!(lines, "client c1", records.client("c1").await?);
        say!(lines, "client none", records.client("none").await?);
        say!(lines, "clients_page first", records.clients_page(None, 2).await?);
        say!(lines, "clients_page after c2", records.clients_page(Some("c2"), 2).await?);
        say!(lines, "set_client_token c1", records.set_client_token("c1", "t1b").await?);
        say!(lines, "set_client_token none", records.set_client_token("none", "x").await?);
        records.insert_admin_token("root", "admin-hash", at(0)).await?;
        say!(lines, "token_owner admin", records.token_owner("admin-hash").await?);
        say!(lines, "token_owner c1", records.token_owner("t1b").await?);
        say!(lines, "token_owner old", records.token_owner("t1").await?);
        say!(lines, "client_password before", records.client_password("c1").await?);
        say!(lines, "set_client_password", records.set_client_password("c1", Some("argon")).await?);
        say!(lines, "client_password after", records.client_password("c1").await?);
        say!(lines, "set_client_password none", records.set_client_password("none", None).await?);
        say!(lines, "client_password none", records.client_password("none").await?);
        for (id, client) in [("o1", "c1"), ("o2", "c2"), ("o3", "c1")] {
            let order = OrderRecord {
                order: Order {
                    id: id.to_owned(),
                    client: client.to_owned(),
                    features: BTreeMap::from([("export".to_owned(), true)]),
                    counters: BTreeMap::new(),
                },
                product: "p".to_owned(),
                created_at: at(2),
            };
            records.insert_order(&order).await?;
        }
        let mut changed = records.order("o1").await?.expect("order o1").order;
        changed.counters.insert("users".to_owned(), 9);
        records.save_order(&changed).await?;
        say!(lines, "order o1", records.order("o1").await?);
        say!(lines, "orders", records.orders_page(None, None, 100).await?);
        say!(lines, "orders c1", records.orders_page(Some("c1"), None, 100).await?);
        say!(lines, "orders_page c1", records.orders_page(Some("c1"), None, 10).await?);
        say!(lines, "orders_page after o1", records.orders_page(None, Some("o1"), 1).await?);
        records.insert_license(&license("K1", Some("c1"))).await?;
        let mut ordered = license("K2", None);
        ordered.order = Some("o2".to_owned());
        records.insert_license(&ordered).await?;
        let mut dongle = license("K3", None);
        dongle.license.dongle = Some("SN-1".to_owned());
        records.insert_license(&dongle).await?;
        let mut saved = records.lock_license("K1").await?.expect("license K1").license;
        saved.seats = Some(4);
        saved.status = LicenseStatus::Revoked;
        saved.term = Term::Rental { ends_at: at(1_000_000) };
        records.save_license(&saved, at(3)).await?;
        say!(lines, "license K1", records.license("K1").await?);
        say!(lines, "lock_license none", records.lock_license("none").await?);
        let filter = |client: Option<&str>, order: Option<&str>, after: Option<&str>| LicenseFilter {
            product: Some("p".to_owned()),
            client: client.map(str::to_owned),
            order: order.map(str::to_owned),
            limit: 2,
            after: after.map(str::to_owned),
        };
        say!(lines, "licenses", records.licenses(&filter(None, None, None)).await?);
        say!(lines, "licenses after K2", records.licenses(&filter(None, None, Some("K2"))).await?);
        say!(lines, "licenses c2", records.licenses(&filter(Some("c2"), None, None)).await?);
        say!(lines, "licenses o2", records.licenses(&filter(None, Some("o2"), None)).await?);
        Ok(lines)
    }
}

job! {
    /// A license stored twice.
    Duplicate {} -> ();
    |_this, records| { records.insert_license(&license("K1", None)).await }
}

job! {
    /// Activations, their count and their index.
    Activations {} -> Lines;
    |_this, records| {
        let mut lines = Lines::new();
        let a = fingerprint(&[("disk", "d1"), ("mac", "aa"), ("machine-id", "m1")]);
        let b = fingerprint(&[("disk", "d2"), ("mac", "bb"), ("machine-id", "m2")]);
        let c = fingerprint(&[("disk", "d1"), ("mac", "cc"), ("machine-id", "m3")]);
        let c_anchor = fingerprint(&[("disk", "d0"), ("mac", "c0"), ("machine-id", "m0")]);
        records.insert_activation("K1", &Activation::new(a.clone(), at(10))).await?;
        records.insert_activation("K1", &Activation::new(b.clone(), at(11))).await?;
        let mut drifted = Activation::new(c.clone(), at(12));
        drifted.anchor = Some(c_anchor);
        records.insert_activation("K1", &drifted).await?;
        records.insert_activation("K3", &Activation::new(Binding::Dongle("SN-1".into()), at(13))).await?;
        records.insert_activation("K3", &Activation::new(Binding::Dongle("SN-2".into()), at(14))).await?;
        // The same machine on another license: what K1's activation goes through leaves it alone.
        records.insert_activation("K2", &Activation::new(a.clone(), at(15))).await?;
        say!(lines, "count K1", records.activation_count("K1").await?);
        say!(lines, "count K3", records.activation_count("K3").await?);
        say!(lines, "count none", records.activation_count("none").await?);
        say!(lines, "activations K1", records.activations_page("K1", 0, 100).await?);
        let ids = |found: Vec<super::ActivationRecord>| found.iter().map(|r| r.id).collect::<Vec<_>>();
        // 2 of 3 components differ from every activation, yet each shares one: all three, once.
        let probe = fingerprint(&[("disk", "d1"), ("mac", "bb"), ("machine-id", "m9")]);
        say!(lines, "sharing k-of-n", ids(records.activations_sharing("K1", &probe).await?));
        let anchor_only = fingerprint(&[("machine-id", "m0")]);
        say!(lines, "sharing anchor", ids(records.activations_sharing("K1", &anchor_only).await?));
        let nothing = fingerprint(&[("machine-id", "m1x"), ("mac", "zz")]);
        say!(lines, "sharing nothing", ids(records.activations_sharing("K1", &nothing).await?));
        say!(lines, "sharing other license", ids(records.activations_sharing("K3", &a).await?));
        let sn2 = Binding::Dongle("SN-2".into());
        say!(lines, "sharing dongle", ids(records.activations_sharing("K3", &sn2).await?));
        say!(lines, "sharing dongle elsewhere", ids(records.activations_sharing("K1", &sn2).await?));
        say!(lines, "set serial", records.set_activation_serial("K1", &a, "S-1").await?);
        say!(lines, "set serial none", records.set_activation_serial("K1", &nothing, "S-9").await?);
        say!(lines, "K2 after set serial", records.activations_page("K2", 0, 10).await?);
        let b2 = fingerprint(&[("disk", "d2"), ("mac", "b2"), ("machine-id", "m2")]);
        say!(lines, "rebind", records.rebind_activation("K1", &b, &b2).await?);
        say!(lines, "rebind none", records.rebind_activation("K1", &b, &b2).await?);
        say!(lines, "count after rebind", records.activation_count("K1").await?);
        let new_mac = fingerprint(&[("mac", "b2")]);
        say!(lines, "sharing new binding", ids(records.activations_sharing("K1", &new_mac).await?));
        let old_mac = fingerprint(&[("mac", "bb")]);
        say!(lines, "sharing kept anchor", ids(records.activations_sharing("K1", &old_mac).await?));
        say!(lines, "delete", records.delete_activation("K1", &a).await?);
        say!(lines, "delete none", records.delete_activation("K1", &a).await?);
        say!(lines, "count after delete", records.activation_count("K1").await?);
        say!(lines, "count K2 after delete", records.activation_count("K2").await?);
        say!(lines, "sharing after delete", ids(records.activations_sharing("K1", &probe).await?));
        say!(lines, "delete dongle", records.delete_activation("K3", &sn2).await?);
        say!(lines, "count K3 after delete", records.activation_count("K3").await?);
        say!(lines, "sharing deleted dongle", ids(records.activations_sharing("K3", &sn2).await?));
        say!(lines, "activations_page", records.activations_page("K1", 0, 1).await?);
        say!(lines, "activations_page after 2", records.activations_page("K1", 2, 10).await?);
        say!(lines, "activation_by_id 3", records.activation_by_id("K1", 3).await?);
        say!(lines, "activation_by_id other", records.activation_by_id("K3", 3).await?);
        Ok(lines)
    }
}

fn lease(session: &str, leased: i64, expires: i64, borrowed: Option<i64>) -> SeatLease {
    SeatLease {
        session: session.to_owned(),
        binding: fingerprint(&[("machine-id", session)]),
        leased_at: at(leased),
        expires_at: at(expires),
        borrowed_until: borrowed.map(at),
        certificate_serial: borrowed.map(|_| format!("B-{session}")),
        returned_at: None,
    }
}

job! {
    /// Leases and borrows, and the held-seat count.
    Seats {} -> Lines;
    |_this, records| {
        let mut lines = Lines::new();
        records.put_lease("K1", &lease("s1", 100, 160, None)).await?;
        records.put_lease("K1", &lease("s2", 100, 130, None)).await?;
        records.put_lease("K1", &lease("s3", 100, 160, Some(1_000))).await?;
        records.put_lease("K2", &lease("s9", 100, 5_000, None)).await?;
        say!(lines, "held at 100", records.held_seats("K1", at(100)).await?);
        say!(lines, "put again", records.put_lease("K1", &lease("s1", 100, 160, None)).await?);
        say!(lines, "held after put again", records.held_seats("K1", at(100)).await?);
        say!(lines, "lease s1", records.lease("K1", "s1").await?);
        say!(lines, "lease none", records.lease("K1", "none").await?);
        say!(lines, "leases", records.leases_page("K1", None, 100).await?);
        say!(lines, "leases_page", records.leases_page("K1", Some("s1"), 1).await?);
        say!(lines, "borrowed_leases", records.borrowed_leases("K1", at(100)).await?);
        say!(lines, "borrowed_seats", records.borrowed_seats("K1", at(100), 10).await?);
        say!(lines, "held_leases", records.held_leases_page(None, at(100), None, 100).await?);
        say!(lines, "held_leases other", records.held_leases_page(Some("other"), at(100), None, 100).await?);
        say!(lines, "held_leases_page", records.held_leases_page(Some("p"), at(100), Some(("K1", "s2")), 2).await?);
        say!(lines, "seat_usage", records.seat_usage(at(100), 100).await?);
        say!(lines, "renew s2", records.renew_lease("K1", "s2", at(500)).await?);
        say!(lines, "renew none", records.renew_lease("K1", "none", at(500)).await?);
        // s1 lapsed at 160: it stops counting.
        say!(lines, "held at 200", records.held_seats("K1", at(200)).await?);
        records.put_lease("K1", &lease("s1", 200, 400, None)).await?;
        say!(lines, "held after checkout again", records.held_seats("K1", at(200)).await?);
        say!(lines, "end_borrow", records.end_borrow("K1", "s3", at(250)).await?);
        say!(lines, "end_borrow lease", records.end_borrow("K1", "s2", at(250)).await?);
        say!(lines, "held after end_borrow", records.held_seats("K1", at(250)).await?);
        say!(lines, "borrowed after end_borrow", records.borrowed_leases("K1", at(250)).await?);
        say!(lines, "delete s2", records.delete_lease("K1", "s2").await?);
        say!(lines, "delete none", records.delete_lease("K1", "none").await?);
        say!(lines, "held after delete", records.held_seats("K1", at(250)).await?);
        // s1 ends at 400 and s3 at 1,000: a sweep at 600 removes s1 (still counted: nothing
        // asked for the license since it ended) and keeps s3.
        say!(lines, "sweep", records.sweep_leases(at(600)).await?);
        say!(lines, "held after sweep", records.held_seats("K1", at(600)).await?);
        say!(lines, "held after borrow ends", records.held_seats("K1", at(1_000)).await?);
        say!(lines, "held K2", records.held_seats("K2", at(600)).await?);
        say!(lines, "held none", records.held_seats("none", at(600)).await?);
        Ok(lines)
    }
}

job! {
    /// Transfers, trials, counters, returned certificates and response files.
    History {} -> Lines;
    |_this, records| {
        let mut lines = Lines::new();
        for offset in [40, 10, 30, 20] {
            records.insert_transfer("K1", at(offset)).await?;
        }
        records.insert_transfer("K2", at(50)).await?;
        say!(lines, "transfers limit 2", records.transfers_since("K1", at(15), 2).await?);
        say!(lines, "transfers all", records.transfers_since("K1", at(15), 10).await?);
        say!(lines, "transfers none", records.transfers_since("K1", at(40), 10).await?);
        let trial = |machine: &str, disk: &str, edition: &str| TrialRecord {
            binding: fingerprint(&[("disk", disk), ("machine-id", machine)]),
            edition: edition.to_owned(),
            started_at: at(5),
            ends_at: at(100),
        };
        records.insert_trial("p", &trial("m1", "d1", "pro")).await?;
        records.insert_trial("p", &trial("m2", "d1", "lite")).await?;
        records.insert_trial("q", &trial("m1", "d1", "pro")).await?;
        let probe = BTreeMap::from([("machine-id".to_owned(), "m1".to_owned()), ("disk".to_owned(), "d1".to_owned())]);
        say!(lines, "trials", records.trials("p", &probe).await?);
        say!(lines, "trials none", records.trials("p", &BTreeMap::from([("disk".to_owned(), "zz".to_owned())])).await?);
        say!(lines, "bump 1", records.bump_update_counter("K1").await?);
        say!(lines, "bump 2", records.bump_update_counter("K1").await?);
        records.insert_returned_serial("K1", "S-1", CertificateKind::Activation, at(7)).await?;
        records.insert_returned_serial("K1", "S-1", CertificateKind::Borrow, at(8)).await?;
        records.insert_returned_serial("K1", "B-s3", CertificateKind::Borrow, at(9)).await?;
        say!(lines, "returned S-1", records.returned_certificate("K1", "S-1").await?);
        say!(lines, "returned B-s3", records.returned_certificate("K1", "B-s3").await?);
        say!(lines, "returned elsewhere", records.returned_certificate("K2", "S-1").await?);
        let mut ids = Vec::new();
        for n in 0..22 {
            let file = ResponseFileRecord {
                id: 0,
                license_key: "K1".to_owned(),
                kind: if n % 2 == 0 { "activation" } else { "return" }.to_owned(),
                name: format!("r{n}.xml"),
                file: format!("<response n=\"{n}\"/>"),
                created_at: at(n),
            };
            ids.push(records.insert_response_file(&file).await?);
        }
        say!(lines, "response ids", ids);
        say!(lines, "response files", records.response_files("K1", 3).await?);
        say!(lines, "response files kept", records.response_files("K1", 100).await?.len());
        Ok(lines)
    }
}

job! {
    /// The audit log and what is read from it.
    Audit {} -> Lines;
    |_this, records| {
        let mut lines = Lines::new();
        let entries = [
            ("activate", Some("K1"), "allow", "OK", "end-user"),
            ("checkout", Some("K1"), "allow", "OK", "client:c1@127.0.0.1"),
            ("checkout", Some("K1"), "deny", "NO_SEATS", "end-user"),
            ("heartbeat", Some("K2"), "allow", "OK", "end-user"),
            ("activate", Some("K2"), "deny", "REVOKED", "end-user"),
            ("activate", None, "deny", "NO_SEATS", "end-user"),
            ("license-change", Some("K1"), "allow", "ADMIN_CHANGE", "administrator:root"),
        ];
        let mut ids = Vec::new();
        for (n, (action, key, verdict, code, actor)) in entries.into_iter().enumerate() {
            let entry = AuditEntry {
                id: 0,
                at: at(20 + n as i64),
                actor: actor.to_owned(),
                action: action.to_owned(),
                license_key: key.map(str::to_owned),
                verdict: verdict.to_owned(),
                code: code.to_owned(),
                rule: "rule".to_owned(),
                message: "message".to_owned(),
                detail: "{}".to_owned(),
            };
            ids.push(records.append_audit(&entry).await?);
        }
        say!(lines, "audit ids", ids);
        say!(lines, "audit first page", records.audit(None, 0, 3).await?);
        say!(lines, "audit next page", records.audit(None, 3, 3).await?);
        say!(lines, "audit K1", records.audit(Some("K1"), 1, 10).await?);
        let search = |license_key: Option<&str>, client: Option<&str>, code: Option<&str>, before: Option<i64>| AuditSearch {
            license_key: license_key.map(str::to_owned),
            client: client.map(str::to_owned),
            code: code.map(str::to_owned),
            before,
            limit: 2,
        };
        say!(lines, "search newest", records.search_audit(&search(None, None, None, None)).await?);
        say!(lines, "search before 5", records.search_audit(&search(None, None, None, Some(5))).await?);
        say!(lines, "search client c1", records.search_audit(&search(None, Some("c1"), None, None)).await?);
        say!(lines, "search code", records.search_audit(&search(None, None, Some("NO_SEATS"), None)).await?);
        say!(lines, "search K2", records.search_audit(&search(Some("K2"), None, None, None)).await?);
        say!(lines, "seat events", records.seat_events(at(0), at(100), None, 10).await?);
        say!(lines, "seat events K2", records.seat_events(at(0), at(100), Some("K2"), 10).await?);
        say!(lines, "seat events window", records.seat_events(at(22), at(100), None, 10).await?);
        say!(lines, "denials", records.denial_counts(at(0), at(100), None).await?);
        say!(lines, "denials K1", records.denial_counts(at(0), at(100), Some("K1")).await?);
        Ok(lines)
    }
}

/// The whole script against one store.
async fn transcript(store: &Store) -> Lines {
    let mut lines = store.execute(Accounts {}).await.unwrap();
    let duplicate = store
        .execute(Duplicate {})
        .await
        .map_err(|error| error.report());
    lines.push(("duplicate license".to_owned(), format!("{duplicate:?}")));
    for phase in [
        store.execute(Activations {}).await,
        store.execute(Seats {}).await,
        store.execute(History {}).await,
        store.execute(Audit {}).await,
    ] {
        lines.extend(phase.unwrap());
    }
    // A read-only job on the read path sees the same data.
    lines.push((
        "read path count".to_owned(),
        format!("{:?}", store.read(CountOnly {}).await.unwrap()),
    ));
    lines
}

job! {
    /// The activation count alone, for the read path.
    CountOnly {} -> u64;
    |_this, records| { records.activation_count("K1").await }
}

fn line<'l>(lines: &'l Lines, label: &str) -> &'l str {
    lines
        .iter()
        .find(|(name, _)| name == label)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("no line `{label}`"))
}

/// The methods `Records` declares, read from its source.
fn declared_methods() -> BTreeSet<String> {
    let source = include_str!("records.rs");
    let start = source
        .find("pub(crate) trait Records")
        .expect("the Records trait");
    let body = &source[start..];
    let end = body.find("\n}\n").expect("the end of the Records trait");
    body[..end]
        .lines()
        .filter_map(|line| line.trim().strip_prefix("fn "))
        .map(|rest| rest.split(['(', '<']).next().unwrap_or(rest).to_owned())
        .collect()
}

/// The methods this file calls on the records.
fn called_methods() -> BTreeSet<String> {
    let source = include_str!("conformance.rs");
    source
        .split("records.")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest[name.len()..]
                .trim_start()
                .starts_with('(')
                .then_some(name)
        })
        .collect()
}

#[test]
fn every_records_method_is_exercised() {
    let declared = declared_methods();
    assert!(declared.len() > 40, "declared: {declared:?}");
    let called = called_methods();
    let missing: Vec<&String> = declared.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "Records methods the conformance test does not call: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(
        &Database::Sqlite(dir.path().join("conformance.db")),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    let (schema, url) = postgres_schema().await;
    let postgres = Store::open(&Database::Postgres(url), StoreOptions::default())
        .await
        .unwrap();
    let on_sqlite = transcript(&sqlite).await;
    let on_postgres = transcript(&postgres).await;
    drop_schema(&schema).await;
    for ((label, sqlite), (_, postgres)) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(
            sqlite, postgres,
            "`{label}` differs between SQLite and PostgreSQL"
        );
    }
    assert_eq!(on_sqlite.len(), on_postgres.len());

    let expect = |label: &str, value: &str| {
        assert_eq!(line(&on_sqlite, label), value, "`{label}`");
    };
    expect("duplicate license", "Err(\"license `K1` already exists\")");
    expect("count K1", "3");
    expect("count K3", "2");
    expect("count none", "0");
    expect("sharing k-of-n", "[1, 2, 3]");
    expect("sharing anchor", "[3]");
    expect("sharing nothing", "[]");
    expect("sharing other license", "[]");
    expect("sharing dongle", "[5]");
    expect("sharing dongle elsewhere", "[]");
    expect("rebind", "1");
    expect("rebind none", "0");
    expect("count after rebind", "3");
    expect("sharing new binding", "[2]");
    expect("sharing kept anchor", "[2]");
    expect("delete", "1");
    expect("delete none", "0");
    expect("count after delete", "2");
    expect("count K2 after delete", "1");
    expect("sharing after delete", "[2, 3]");
    expect("count K3 after delete", "1");
    expect("sharing deleted dongle", "[]");
    expect("read path count", "2");
    expect("held at 100", "3");
    expect("held after put again", "3");
    expect("held at 200", "2");
    expect("held after checkout again", "3");
    expect("end_borrow", "1");
    expect("end_borrow lease", "0");
    expect("held after end_borrow", "3");
    expect("borrowed after end_borrow", "[]");
    expect("delete s2", "1");
    expect("held after delete", "2");
    expect("sweep", "1");
    expect("held after sweep", "1");
    expect("held after borrow ends", "0");
    expect("held K2", "1");
    expect("transfers limit 2", &format!("{:?}", vec![at(40), at(30)]));
    expect(
        "transfers all",
        &format!("{:?}", vec![at(40), at(30), at(20)]),
    );
    expect("transfers none", "[]");
    expect("bump 2", "2");
    expect("response files kept", "20");
    expect("audit ids", "[1, 2, 3, 4, 5, 6, 7]");
    assert!(line(&on_sqlite, "returned S-1").contains("kind: Activation"));
    let other_license = line(&on_sqlite, "K2 after set serial");
    assert!(
        other_license.contains("certificate_serial: None") && !other_license.contains("S-1"),
        "{other_license}"
    );
    let audit_ids = |label: &str| -> Vec<i64> {
        line(&on_sqlite, label)
            .split("AuditEntry { id: ")
            .skip(1)
            .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(audit_ids("audit first page"), [1, 2, 3]);
    assert_eq!(audit_ids("audit next page"), [4, 5, 6]);
    assert_eq!(audit_ids("audit K1"), [2, 3, 7]);
    assert_eq!(audit_ids("search newest"), [7, 6]);
    assert_eq!(audit_ids("search before 5"), [4, 3]);
    assert_eq!(audit_ids("search client c1"), [7, 3]);
    assert_eq!(audit_ids("search code"), [6, 3]);
    assert_eq!(audit_ids("seat events"), [2, 4]);
    assert_eq!(audit_ids("seat events window"), [4]);
}
