//! `licet-server admin ...` against a real `licet-server --demo` on loopback: an administrator's
//! day from the command line (clients, orders, licenses, serials, extension, revocation,
//! removal, seats and force-release, the audit log), tables and JSON, and the token's rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{Duration, Utc};
use common::{binaries, gstarcad_policy, post_bytes, DemoServer, Outcome};
use licet_engine::Code;
use licet_tests::policies_dir;
use serde_json::{json, Value};

/// The demo server licensing GstarCAD (web model, network keys) and Acme Designer (standard
/// model: clients and orders).
fn server() -> DemoServer {
    DemoServer::start_with_products(
        gstarcad_policy(),
        &[policies_dir().join("acen-standard.yaml")],
    )
}

/// `licet-server admin ARGS` with nothing from the test's environment: `env` is the whole of
/// the `LICET_*` environment it sees.
fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Outcome {
    let mut command = Command::new(binaries().join("licet-server"));
    command
        .arg("admin")
        .args(args)
        .env_remove("LICET_ADMIN_TOKEN")
        .env_remove("LICET_SERVER")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    Outcome::from(child.wait_with_output().unwrap())
}

/// The administrator's command line: the server and the token file given as options.
struct Admin<'a> {
    server: &'a DemoServer,
    token_file: PathBuf,
}

impl<'a> Admin<'a> {
    fn new(server: &'a DemoServer) -> Admin<'a> {
        let token_file = write_secret(server.dir.path(), "admin.token", &server.admin_token);
        Admin { server, token_file }
    }

    fn run(&self, args: &[&str]) -> Outcome {
        let mut all = vec![
            "--server",
            self.server.url.as_str(),
            "--token-file",
            self.token_file.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        run(&all, &[], None)
    }

    /// Runs and expects success; the standard output.
    fn ok(&self, args: &[&str]) -> String {
        let outcome = self.run(args);
        assert_eq!(outcome.code, 0, "admin {args:?}: {outcome:#?}");
        outcome.stdout
    }

    /// Runs with `--json` and expects success; the JSON answer.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs and expects the server's refusal: exit 1 and `CODE: message` on standard error.
    fn refused(&self, args: &[&str], code: &str) -> Outcome {
        let outcome = self.run(args);
        assert!(
            outcome.code == 1 && outcome.stderr.starts_with(&format!("{code}: ")),
            "admin {args:?}: expected {code}, got {outcome:#?}"
        );
        outcome
    }
}

fn write_secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// The table row (a line) that contains `needle`.
fn row<'t>(table: &'t str, needle: &str) -> &'t str {
    table
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no row with `{needle}` in\n{table}"))
}

fn date_in(days: i64) -> String {
    (Utc::now() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn an_administrator_works_from_the_command_line() {
    let server = server();
    let admin = Admin::new(&server);

    // Products, with their license types and defaults.
    let products = admin.ok(&["products"]);
    assert!(
        row(&products, "acme-designer").contains("export-pdf=on"),
        "{products}"
    );
    assert!(
        products.contains("network-key (network, 5 seats, borrow 30 d)"),
        "{products}"
    );

    // A client, its password and a fresh token; an order with features and counters.
    let created = admin.ok(&[
        "clients",
        "create",
        "northwind",
        "--name",
        "Northwind Traders",
    ]);
    assert!(
        created.contains("| name      | Northwind Traders"),
        "{created}"
    );
    let first_token = created
        .lines()
        .find_map(|line| line.strip_prefix("client token (shown once): "))
        .unwrap()
        .to_owned();
    assert!(first_token.starts_with("lct_client_"), "{created}");
    let password = write_secret(
        server.dir.path(),
        "northwind.password",
        "correct horse battery",
    );
    let set = admin.ok(&[
        "clients",
        "password",
        "northwind",
        "--password-file",
        password.to_str().unwrap(),
    ]);
    assert!(set.contains("northwind"), "{set}");
    // From standard input too; a short one is refused by the server.
    let short = run(
        &[
            "--server",
            &server.url,
            "--token-file",
            admin.token_file.to_str().unwrap(),
            "clients",
            "password",
            "northwind",
            "--password-file",
            "-",
        ],
        &[],
        Some("short\n"),
    );
    assert!(
        short.code == 1 && short.stderr.starts_with("INVALID_BODY: "),
        "{short:#?}"
    );
    let rotated = admin.ok(&["clients", "token", "northwind"]);
    assert!(rotated.contains("lct_client_"), "{rotated}");
    assert!(!rotated.contains(&first_token), "{rotated}");
    let (status, _) = server.call_as(&first_token, "GET", "/v1/client/licenses", &Value::Null);
    assert_eq!(status, 401, "the old client token stops working");
    let clients = admin.ok(&["clients", "list"]);
    assert!(
        row(&clients, "northwind").contains("Northwind Traders"),
        "{clients}"
    );
    let client = admin.json(&["clients", "show", "northwind"]);
    assert_eq!(client["has_token"], true);

    let order = admin.ok(&[
        "orders",
        "create",
        "--id",
        "nw-1",
        "--client",
        "northwind",
        "--product",
        "acme-designer",
        "--feature",
        "export-dwg=on",
        "--counter",
        "projects=50",
    ]);
    assert!(
        order.contains("export-dwg=on") && order.contains("projects=50"),
        "{order}"
    );
    let updated = admin.json(&["orders", "update", "nw-1", "--feature", "scripting=on"]);
    assert_eq!(
        updated["features"],
        json!({ "export-dwg": true, "scripting": true })
    );
    let orders = admin.ok(&["orders", "list", "--client", "northwind"]);
    assert!(row(&orders, "nw-1").contains("acme-designer"), "{orders}");
    assert_eq!(
        admin.json(&["orders", "show", "nw-1"])["client"],
        "northwind"
    );
    // An order names features its product declares.
    admin.refused(
        &["orders", "update", "nw-1", "--feature", "teleport=on"],
        "INVALID_BODY",
    );

    // Three rental licenses of the order at once, as JSON, then listed as a table and as JSON.
    let ends = date_in(400);
    let issued = admin.json(&[
        "licenses",
        "issue",
        "--product",
        "acme-designer",
        "--type",
        "standard",
        "--edition",
        "business",
        "--order",
        "nw-1",
        "--count",
        "3",
        "--ends-at",
        &ends,
        "--counter",
        "users=3",
    ]);
    let keys: Vec<String> = issued["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|license| license["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3, "{issued}");
    // Listings are ordered by key.
    let mut keys = keys;
    keys.sort();
    let listed = admin.ok(&["licenses", "list", "--order", "nw-1"]);
    for key in &keys {
        let line = row(&listed, key);
        assert!(
            line.contains(&format!("rental until {ends} 00:00:00Z"))
                && line.contains("enabled")
                && line.contains("nw-1"),
            "{listed}"
        );
    }
    assert!(listed.lines().next().unwrap().starts_with("+-"), "{listed}");
    let as_json = admin.json(&["licenses", "list", "--order", "nw-1"]);
    assert_eq!(as_json.as_array().unwrap().len(), 3);
    assert!(as_json
        .as_array()
        .unwrap()
        .iter()
        .all(|license| license["order"] == "nw-1" && license["counters"]["users"] == 3));
    // Paging: one at a time, the next page named on standard error.
    let page = admin.run(&["licenses", "list", "--order", "nw-1", "--limit", "1"]);
    assert!(
        page.code == 0 && page.stderr.contains(&format!("--after {}", keys[0])),
        "{page:#?}"
    );

    // An activation on an end user's machine, shown and removed by the administrator.
    let key = &keys[0];
    let (status, body) = post_bytes(
        &server.url,
        "/v1/activate",
        "application/json",
        json!({ "key": key,
                "target": { "product": "acme-designer", "edition": "business", "version": "5" },
                "machine": { "machine-id": "office-pc", "mac": "a1", "cpu": "c1", "disk": "d1" } })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let shown = admin.ok(&["licenses", "show", key]);
    assert!(shown.contains("| owner        | northwind"), "{shown}");
    assert!(
        row(&shown, "machine office-pc").starts_with("| 1 "),
        "{shown}"
    );
    let detail = admin.json(&["licenses", "show", key]);
    let activation = detail["activations"][0]["id"].to_string();
    let removed = admin.ok(&["licenses", "remove-activation", key, &activation]);
    assert!(removed.starts_with("RETURNED: "), "{removed}");
    assert!(admin
        .ok(&["licenses", "show", key])
        .contains("activations: none"));
    admin.refused(
        &["licenses", "remove-activation", key, &activation],
        "NOT_FOUND",
    );

    // Extension: a later end and more users; revocation of another.
    let later = date_in(800);
    let extended = admin.ok(&[
        "licenses",
        "extend",
        key,
        "--expires-at",
        &later,
        "--counter",
        "users=5",
    ]);
    assert!(extended.starts_with("EXTENDED: "), "{extended}");
    let after = admin.json(&["licenses", "show", key]);
    assert_eq!(after["counters"]["users"], 5, "{after}");
    assert_eq!(
        after["term"]["rental"]["ends_at"],
        format!("{later}T00:00:00Z"),
        "{after}"
    );
    let revoked = admin.ok(&["licenses", "revoke", &keys[1]]);
    assert!(revoked.starts_with("REVOCATION_APPLIED: "), "{revoked}");
    assert!(row(
        &admin.ok(&["licenses", "list", "--order", "nw-1"]),
        &keys[1]
    )
    .contains("revoked"));
    // The engine decides: what a license does not have is not extended.
    admin.refused(
        &["licenses", "extend", key, "--seats", "4"],
        Code::InvalidRequest.as_str(),
    );
    admin.refused(
        &["licenses", "extend", "ACME-NOPE", "--expires-at", &later],
        Code::LicenseNotFound.as_str(),
    );

    // Web serials of GstarCAD.
    let serials = admin.ok(&[
        "serials",
        "issue",
        "--product",
        "gstarcad",
        "--type",
        "standalone-key",
        "--edition",
        "professional",
        "--count",
        "2",
    ]);
    assert_eq!(
        serials
            .lines()
            .filter(|line| line.contains("| GSTA-"))
            .count(),
        2,
        "{serials}"
    );
    assert!(serials.contains("issued 2"), "{serials}");

    // Seats: one held, one borrowed; listed, then force-released.
    let network = server.network_key().to_owned();
    // More seats bought.
    let more = admin.ok(&["licenses", "extend", &network, "--seats", "7"]);
    assert!(more.starts_with("EXTENDED: "), "{more}");
    let pool = admin.json(&["licenses", "list", "--product", "gstarcad"]);
    let pool = pool
        .as_array()
        .unwrap()
        .iter()
        .find(|license| license["key"] == network.as_str())
        .unwrap();
    assert_eq!(pool["seats"], 7, "{pool}");
    let mut transport = server.transport();
    let holder = server.machine("holder");
    let granted = holder
        .checkout(&mut transport, &network, "professional", Utc::now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
    let borrower = server.machine("borrower");
    let borrowed = borrower
        .borrow(
            &mut transport,
            &network,
            "professional",
            Utc::now() + Duration::days(7),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(borrowed.code, Code::Borrowed, "{borrowed:?}");
    let held_session = holder.seat().unwrap().unwrap().session;
    let borrowed_session = borrower.seat().unwrap().unwrap().session;
    let seats = admin.ok(&["seats", "list"]);
    assert!(row(&seats, &held_session).contains("| held "), "{seats}");
    assert!(
        row(&seats, &borrowed_session).contains("| borrowed "),
        "{seats}"
    );
    let seats_json = admin.json(&["seats", "list", "--product", "gstarcad"]);
    assert_eq!(seats_json.as_array().unwrap().len(), 2, "{seats_json}");
    let released = admin.ok(&["licenses", "release-seat", &network, &held_session]);
    assert!(released.starts_with("SEAT_RELEASED: "), "{released}");
    let returned = admin.ok(&["licenses", "release-seat", &network, &borrowed_session]);
    assert!(returned.starts_with("BORROW_RETURNED: "), "{returned}");
    assert_eq!(admin.json(&["seats", "list"]), json!([]));
    let heartbeat = holder.heartbeat(&mut transport, Utc::now()).unwrap();
    assert_eq!(heartbeat.code, Code::LeaseNotFound, "{heartbeat:?}");
    admin.refused(
        &["licenses", "release-seat", &network, &held_session],
        "NOT_FOUND",
    );

    // The audit log: by license, by position, as a table and as JSON.
    let history = admin.ok(&["audit", "--license", key]);
    for action in ["activate", "return", "extend"] {
        assert!(
            history
                .lines()
                .any(|line| line.contains(&format!("| {action} "))),
            "{action}: {history}"
        );
    }
    assert!(history.contains("EXTENDED"), "{history}");
    let everything = admin.json(&["audit", "--limit", "1000"]);
    let entries = everything.as_array().unwrap();
    assert!(entries
        .iter()
        .any(|entry| entry["action"] == "set-client-password"));
    assert!(entries.iter().any(|entry| entry["code"] == "SEAT_RELEASED"
        && entry["actor"]
            .as_str()
            .unwrap()
            .starts_with("administrator:")));
    let middle = entries[entries.len() / 2]["id"].as_i64().unwrap();
    let later_entries = admin.json(&["audit", "--after", &middle.to_string(), "--limit", "2"]);
    let ids: Vec<i64> = later_entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![middle + 1, middle + 2]);
    let two = admin.run(&["audit", "--limit", "2"]);
    assert!(
        two.code == 0 && two.stderr.contains("2 shown; the next page: --after 2"),
        "{two:#?}"
    );

    // A new administrator token, used from the environment, with the server as HOST:PORT
    // from the environment too.
    let created = admin.ok(&["tokens", "create", "ops"]);
    let ops = created
        .trim()
        .strip_prefix("administrator token (shown once): ")
        .unwrap()
        .to_owned();
    let address = server.url.trim_start_matches("http://");
    let from_env = run(
        &["clients", "list"],
        &[("LICET_ADMIN_TOKEN", &ops), ("LICET_SERVER", address)],
        None,
    );
    assert!(
        from_env.code == 0 && from_env.stdout.contains("northwind"),
        "{from_env:#?}"
    );
    let audit = admin.json(&["audit", "--limit", "1000"]);
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|entry| entry["action"] == "create-admin-token"
            && entry["message"].as_str().unwrap().contains("ops")));
}

#[test]
fn the_token_is_required_checked_and_never_taken_from_the_command_line() {
    let server = server();
    let admin = Admin::new(&server);
    let url = server.url.as_str();

    // A wrong token: the server's refusal, nothing done.
    let wrong = write_secret(server.dir.path(), "wrong.token", "lct_admin_0000");
    let refused = run(
        &[
            "--server",
            url,
            "--token-file",
            wrong.to_str().unwrap(),
            "clients",
            "create",
            "intruder",
            "--name",
            "Intruder",
        ],
        &[],
        None,
    );
    assert!(
        refused.code == 1 && refused.stderr.starts_with("UNAUTHORIZED: "),
        "{refused:#?}"
    );
    assert!(refused.stdout.is_empty(), "{refused:#?}");
    // The token file comes before the environment.
    let both = run(
        &[
            "--server",
            url,
            "--token-file",
            wrong.to_str().unwrap(),
            "products",
        ],
        &[("LICET_ADMIN_TOKEN", &server.admin_token)],
        None,
    );
    assert_eq!(both.code, 1, "{both:#?}");

    // No token at all.
    let missing = run(&["--server", url, "products"], &[], None);
    assert_eq!(missing.code, 2, "{missing:#?}");
    assert!(
        missing.stderr.contains("no administrator token")
            && missing.stderr.contains("--token-file FILE")
            && missing.stderr.contains("LICET_ADMIN_TOKEN"),
        "{missing:#?}"
    );
    // A token file that does not exist, or is empty.
    let absent = run(
        &[
            "--server",
            url,
            "--token-file",
            "/nonexistent/admin.token",
            "products",
        ],
        &[],
        None,
    );
    assert!(
        absent.code == 2 && absent.stderr.contains("cannot read the token file"),
        "{absent:#?}"
    );
    let empty = write_secret(server.dir.path(), "empty.token", "");
    let blank = run(
        &[
            "--server",
            url,
            "--token-file",
            empty.to_str().unwrap(),
            "products",
        ],
        &[],
        None,
    );
    assert!(
        blank.code == 2 && blank.stderr.contains("is empty"),
        "{blank:#?}"
    );

    // A token on the command line is refused before anything is sent, even with a valid one,
    // in any position, and nothing is done.
    for args in [
        vec![
            "--server",
            url,
            "--token",
            &server.admin_token,
            "clients",
            "create",
            "cli",
            "--name",
            "C",
        ],
        vec![
            "--server",
            url,
            "clients",
            "create",
            "cli",
            "--name",
            "C",
            "--token",
            &server.admin_token,
        ],
        vec![
            "--server",
            url,
            &format!("--token={}", server.admin_token),
            "clients",
            "create",
            "cli",
            "--name",
            "C",
        ],
    ] {
        let args: Vec<&str> = args.iter().map(|arg| arg.as_ref()).collect();
        let outcome = run(&args, &[("LICET_ADMIN_TOKEN", &server.admin_token)], None);
        assert_eq!(outcome.code, 2, "{args:?}: {outcome:#?}");
        assert!(
            outcome.stderr.contains("not taken from the command line"),
            "{outcome:#?}"
        );
    }
    // Nor as a stray argument.
    let stray = run(
        &["--server", url, &server.admin_token, "products"],
        &[],
        None,
    );
    assert_eq!(stray.code, 2, "{stray:#?}");
    assert!(
        !admin.ok(&["clients", "list"]).contains("cli "),
        "no client was created"
    );
    assert!(!admin.ok(&["clients", "list"]).contains("intruder"));

    // A server that does not answer, and an address that is not one.
    let nobody = run(
        &[
            "--server",
            "127.0.0.1:1",
            "--token-file",
            admin.token_file.to_str().unwrap(),
            "products",
        ],
        &[],
        None,
    );
    assert!(
        nobody.code == 3 && nobody.stderr.contains("cannot reach the server"),
        "{nobody:#?}"
    );
    // Plain HTTP to a host that is not loopback (TEST-NET-1) is refused before connecting.
    let plain = run(
        &[
            "--server",
            "http://192.0.2.1:8440",
            "--token-file",
            admin.token_file.to_str().unwrap(),
            "products",
        ],
        &[],
        None,
    );
    assert!(
        plain.code == 2
            && plain
                .stderr
                .contains("plain HTTP to `192.0.2.1` is refused"),
        "{plain:#?}"
    );
    // With --allow-plain-http it is tried: nothing answers there, so it cannot be reached.
    let tried = run(
        &[
            "--server",
            "http://192.0.2.1:9/",
            "--allow-plain-http",
            "--timeout",
            "1",
            "--token-file",
            admin.token_file.to_str().unwrap(),
            "products",
        ],
        &[],
        None,
    );
    assert!(
        tried.code == 3
            && tried.stderr.contains("cannot reach the server")
            && !tried.stderr.contains("is refused"),
        "{tried:#?}"
    );
    // A pinned certificate that cannot be read, or is not a certificate, is refused before
    // connecting.
    let dir = tempfile::tempdir().unwrap();
    let not_a_certificate = dir.path().join("server.pem");
    std::fs::write(
        &not_a_certificate,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    for (pin, why) in [
        (&missing, "cannot read the server certificate"),
        (&not_a_certificate, "invalid pinned server certificate"),
    ] {
        let pinned = run(
            &[
                "--server",
                "https://192.0.2.1:9/",
                "--server-certificate",
                pin.to_str().unwrap(),
                "--token-file",
                admin.token_file.to_str().unwrap(),
                "products",
            ],
            &[],
            None,
        );
        assert!(
            pinned.code == 2 && pinned.stderr.contains(why),
            "{pinned:#?}"
        );
    }
    let bad = run(
        &[
            "--server",
            "ftp://licenses.example.com",
            "--token-file",
            admin.token_file.to_str().unwrap(),
            "products",
        ],
        &[],
        None,
    );
    assert!(
        bad.code == 2 && bad.stderr.contains("invalid server address"),
        "{bad:#?}"
    );
    // A bad setting is the command line's error, found before anything is sent.
    let bad = admin.run(&["orders", "update", "nw-1", "--feature", "lisp=maybe"]);
    assert_eq!(bad.code, 2, "{bad:#?}");
}
