//! The web pages in a real browser: headless Chromium driven over WebDriver (chromedriver started
//! here on a loopback port) through each workflow: manual activation and return on the service
//! center, a client removing a license, an administrator issuing, extending, revoking and
//! force-releasing. Screenshots of each page go to `docs/screenshots/` when `LICET_SCREENSHOTS` is
//! set.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`./scripts/setup` installs them). Without
//! chromedriver the test fails when `CI=true` and is skipped, with a message, otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::Method;
use chrono::Utc;
use common::{gstarcad, machine, Backend, TestServer, ADMIN_TOKEN};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use licet_client::{Client, FixedProbe};
use licet_engine::{Fingerprint, Policy};
use serde_json::{json, Value};

fn chromedriver() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("LICET_CHROMEDRIVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

fn chromium() -> String {
    std::env::var("LICET_CHROMIUM").unwrap_or_else(|_| {
        [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .unwrap_or("/usr/bin/chromium")
        .to_owned()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the screenshots go: `docs/screenshots/` when `LICET_SCREENSHOTS` is set (to refresh the
/// documentation's pictures), else the test's scratch directory under `target/`.
fn screenshots_dir() -> PathBuf {
    let dir = if std::env::var_os("LICET_SCREENSHOTS").is_some() {
        common::repo_root().join("docs/screenshots")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the whole page as `NAME.png` in [`screenshots_dir`].
async fn shot(browser: &Browser, name: &str) {
    let height = browser
        .execute(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);",
            Vec::new(),
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(900);
    let height = u32::try_from(height.clamp(500, 3000)).unwrap_or(900) + 40;
    browser.set_window_size(1280, height).await.unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
    browser.set_window_size(1280, 900).await.unwrap();
}

async fn wait_for_file(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    for _ in 0..100 {
        if let Ok(bytes) = std::fs::read(&path) {
            if !bytes.is_empty() {
                return bytes;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser did not download {name} into {}", dir.display());
}

async fn body_text(browser: &Browser) -> String {
    browser
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn fill(browser: &Browser, css: &str, value: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks what `css` finds and waits until the next page has loaded.
async fn click(browser: &Browser, css: &str) {
    browser
        .execute("window.licetOldPage = true;", Vec::new())
        .await
        .unwrap();
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..200 {
        let loaded = browser
            .execute(
                "return window.licetOldPage === undefined && document.readyState === 'complete';",
                Vec::new(),
            )
            .await
            .map(|value| value.as_bool() == Some(true))
            .unwrap_or(false);
        if loaded {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} loaded no page");
}

/// Clicks a link that downloads a file (the page stays).
async fn click_download(browser: &Browser) {
    browser
        .find(Locator::Css("#download"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn sign_out(browser: &Browser) {
    click(browser, "header form button").await;
}

fn computer(server: &TestServer, dir: &Path, n: usize) -> Client {
    let source =
        std::fs::read_to_string(common::repo_root().join("policies/gstarcad.yaml")).unwrap();
    let policy = Policy::from_yaml("gstarcad.yaml", &source).unwrap();
    let vendor =
        licet_server::keys::read_verifying_key(&server.dir.path().join("vendor.pub")).unwrap();
    let fingerprint = Fingerprint {
        components: serde_json::from_value(machine(n)).unwrap(),
    };
    Client::new(dir, policy, vendor, Box::new(FixedProbe::new(fingerprint)))
}

async fn license(server: &TestServer, key: &str) -> Value {
    server
        .admin(Method::GET, &format!("/v1/admin/licenses/{key}"), None)
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_workflows_in_a_real_browser() {
    let Some(driver) = chromedriver() else {
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("chromedriver is not installed: install Debian's `chromium` and `chromium-driver` (./scripts/setup does)");
        }
        // Written to the terminal directly, past the test harness's capture, so it is seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED seed_workflows_in_a_real_browser: chromedriver is not installed (./scripts/setup installs chromium and chromium-driver)"
        );
        return;
    };

    // The server, on a loopback socket.
    let server = TestServer::start(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = server
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    // chromedriver on a loopback port, and one browser for every workflow.
    let port = free_port();
    let mut driver = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let downloads = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=en-US", "--hide-scrollbars",
                     format!("--user-data-dir={}", profile.path().display())],
            "prefs": {
                "download.default_directory": downloads.path().display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false
            }
        }),
    );
    let mut connected = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => {
                connected = Some(client);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let browser = connected.expect("chromedriver accepts a session");
    // The workflows run in their own task so that a failure still stops the browser and
    // chromedriver before it is reported.
    let server = std::sync::Arc::new(server);
    let outcome = {
        let (server, browser, base) = (server.clone(), browser.clone(), base.clone());
        let downloads = downloads.path().to_owned();
        tokio::spawn(async move { workflows(&server, &browser, &base, &downloads).await }).await
    };
    let _ = browser.close().await;
    let _ = driver.kill().await;
    serving.abort();
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("the workflows did not finish: {error}"),
        }
    }
}

async fn workflows(server: &TestServer, browser: &Browser, base: &str, downloads: &Path) {
    service_center(server, browser, base, downloads).await;
    administrator(server, browser, base).await;
    client_account(server, browser, base).await;
}

/// Manual activation and return on the online service center, with a real request file.
async fn service_center(server: &TestServer, browser: &Browser, base: &str, downloads: &Path) {
    browser.goto(&format!("{base}/")).await.unwrap();
    shot(browser, "start").await;
    let key = server.standalone_key().await;
    let machine_dir = tempfile::tempdir().unwrap();
    let pc = computer(server, machine_dir.path(), 1);
    let files = tempfile::tempdir().unwrap();
    let request = files.path().join("office-pc.xml");
    std::fs::write(
        &request,
        pc.begin_manual_activation(&key, "professional", Utc::now())
            .unwrap(),
    )
    .unwrap();

    browser
        .goto(&format!("{base}/service/login"))
        .await
        .unwrap();
    fill(browser, "#key", &key).await;
    shot(browser, "service-login").await;
    click(browser, "main form button").await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/service/activation"));
    shot(browser, "service-activation").await;
    browser
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&request.display().to_string())
        .await
        .unwrap();
    click(browser, "main form button").await;
    assert!(body_text(browser).await.contains("office-pc-resp.xml"));
    shot(browser, "service-activation-response").await;
    click_download(browser).await;
    let response = wait_for_file(downloads, "office-pc-resp.xml").await;
    let report = pc.load_activation_response(&response, Utc::now()).unwrap();
    assert!(report.decision.is_allowed(), "{:?}", report.decision);

    browser
        .goto(&format!("{base}/service/licenses"))
        .await
        .unwrap();
    let text = body_text(browser).await;
    assert!(text.contains(&key) && text.contains("Stand-alone") && text.contains("Valid"));
    shot(browser, "service-licenses").await;

    let return_file = files.path().join("office-pc-return.xml");
    std::fs::write(&return_file, pc.begin_manual_return(Utc::now()).unwrap()).unwrap();
    browser
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&return_file.display().to_string())
        .await
        .unwrap();
    click(browser, "main form.card button").await;
    assert!(body_text(browser)
        .await
        .contains("office-pc-resp-return.xml"));
    shot(browser, "service-return-response").await;
    click_download(browser).await;
    let answer = wait_for_file(downloads, "office-pc-resp-return.xml").await;
    pc.load_return_response(&answer, Utc::now()).unwrap();
    assert!(license(server, &key).await["activations"]
        .as_array()
        .unwrap()
        .is_empty());

    // An upload error, in plain words with the engine's code.
    let wrong = files.path().join("notes.xml");
    std::fs::write(&wrong, "<notes>not a request</notes>").unwrap();
    browser
        .goto(&format!("{base}/service/activation"))
        .await
        .unwrap();
    browser
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&wrong.display().to_string())
        .await
        .unwrap();
    click(browser, "main form button").await;
    assert!(body_text(browser).await.contains("EXCHANGE_MALFORMED"));
    shot(browser, "service-upload-error").await;
    browser
        .goto(&format!("{base}/service/licenses"))
        .await
        .unwrap();
    sign_out(browser).await;

    // A network key: its borrowed seats and their end dates.
    let network = server.network_key(5).await;
    let until = (Utc::now() + chrono::Duration::days(7))
        .format("%Y-%m-%dT12:00:00Z")
        .to_string();
    let (status, body) = server
        .post(
            "/v1/seats/borrow",
            json!({ "key": network, "target": gstarcad("professional"), "machine": machine(7),
                    "session": "laptop-7", "until": until }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    browser
        .goto(&format!("{base}/service/login"))
        .await
        .unwrap();
    fill(browser, "#key", &network).await;
    click(browser, "main form button").await;
    browser
        .goto(&format!("{base}/service/licenses"))
        .await
        .unwrap();
    let text = body_text(browser).await;
    assert!(
        text.contains("laptop-7") && text.contains("Network"),
        "{text}"
    );
    shot(browser, "service-network-key").await;
    sign_out(browser).await;
}

/// An administrator issuing, extending, revoking and force-releasing, and the other pages.
async fn administrator(server: &TestServer, browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/admin/login")).await.unwrap();
    shot(browser, "admin-login").await;
    fill(browser, "#token", ADMIN_TOKEN).await;
    click(browser, "main form button").await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/admin"));

    // Clients and orders (the client workflow below signs in as this client).
    browser
        .goto(&format!("{base}/admin/clients"))
        .await
        .unwrap();
    fill(browser, "#id", "acme").await;
    fill(browser, "#name", "Acme Engineering").await;
    click(browser, "form.card button").await;
    assert!(body_text(browser).await.contains("shown only once"));
    fill(browser, "#password-1", "correct horse battery").await;
    click(browser, "td form button").await;
    assert!(body_text(browser).await.contains("PASSWORD_SET"));
    shot(browser, "admin-clients").await;
    browser.goto(&format!("{base}/admin/orders")).await.unwrap();
    browser
        .find(Locator::Css("#order-product"))
        .await
        .unwrap()
        .select_by_value("acme-designer")
        .await
        .unwrap();
    fill(browser, "#order-id", "acme-2027").await;
    click(browser, "form.card[method=post] button").await;
    let text = body_text(browser).await;
    assert!(text.contains("Order acme-2027 is created"), "{text}");
    shot(browser, "admin-orders").await;

    // Issue a network key of three seats.
    browser
        .goto(&format!("{base}/admin/licenses/new?product=gstarcad"))
        .await
        .unwrap();
    browser
        .find(Locator::Css("#license_type"))
        .await
        .unwrap()
        .select_by_value("network-key")
        .await
        .unwrap();
    fill(browser, "#seats", "3").await;
    shot(browser, "admin-issue").await;
    click(browser, "main form[method=post] button").await;
    let issued = browser
        .find(Locator::Css("#issued a"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(issued.starts_with("GSTA-"));
    // A license for the client's order too.
    browser
        .goto(&format!(
            "{base}/admin/licenses/new?product=acme-designer&order=acme-2027"
        ))
        .await
        .unwrap();
    click(browser, "main form[method=post] button").await;
    let text = body_text(browser).await;
    assert!(text.contains("ISSUED"), "{text}");
    let acme_key = browser
        .find(Locator::Css("#issued a"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (status, body) = server
        .post(
            "/v1/activate",
            json!({ "key": acme_key, "target": { "product": "acme-designer", "edition": "business", "version": "5" }, "machine": machine(5) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Seats in use, one borrowed, and a denial for the usage page.
    for (n, session) in [(1, "cad-1"), (2, "cad-2"), (3, "cad-3"), (4, "cad-4")] {
        server
            .post(
                "/v1/seats/checkout",
                json!({ "key": issued, "target": gstarcad("professional"), "machine": machine(n), "session": session }),
            )
            .await;
    }
    server
        .post(
            "/v1/seats/release",
            json!({ "key": issued, "session": "cad-3" }),
        )
        .await;
    let until = (Utc::now() + chrono::Duration::days(5))
        .format("%Y-%m-%dT12:00:00Z")
        .to_string();
    server
        .post(
            "/v1/seats/borrow",
            json!({ "key": issued, "target": gstarcad("professional"), "machine": machine(9), "session": "laptop-9", "until": until }),
        )
        .await;

    browser.goto(&format!("{base}/admin/seats")).await.unwrap();
    assert!(body_text(browser).await.contains("laptop-9"));
    shot(browser, "admin-seats").await;
    click(
        browser,
        "button[aria-label='Force-release the seat of session cad-1']",
    )
    .await;
    assert!(body_text(browser).await.contains("SEAT_RELEASED"));
    let seats: Vec<String> = license(server, &issued).await["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seat| seat["session"].as_str().unwrap().to_owned())
        .collect();
    assert!(!seats.contains(&"cad-1".to_owned()));

    // Extend: a later expiry and more seats; then revoke.
    browser
        .goto(&format!("{base}/admin/licenses/{issued}"))
        .await
        .unwrap();
    browser
        .execute(
            "document.getElementById('expires_at').value = '2099-06-30';",
            Vec::new(),
        )
        .await
        .unwrap();
    fill(browser, "#seats", "8").await;
    click(browser, "form[action$='/extend'] button").await;
    let text = body_text(browser).await;
    assert!(text.contains("EXTENDED"), "{text}");
    assert!(text.contains("until 2099-06-30"), "{text}");
    shot(browser, "admin-license").await;
    assert_eq!(
        license(server, &issued).await["term"]["rental"]["ends_at"],
        "2099-06-30T23:59:59Z"
    );
    browser
        .find(Locator::Css("#confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(browser, "form[action$='/revoke'] button").await;
    assert!(body_text(browser).await.contains("REVOCATION_APPLIED"));
    shot(browser, "admin-license-revoked").await;
    assert_eq!(license(server, &issued).await["status"], "revoked");

    for (path, name) in [
        ("/admin", "admin-home"),
        ("/admin/products", "admin-products"),
        ("/admin/licenses", "admin-licenses"),
        ("/admin/serials", "admin-serials"),
        ("/admin/audit?code=SEATS_EXHAUSTED", "admin-audit"),
        ("/admin/usage?days=14", "admin-usage"),
    ] {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        assert!(!body_text(browser).await.is_empty());
        shot(browser, name).await;
    }
    assert!(body_text(browser).await.contains("SEATS_EXHAUSTED"));
    sign_out(browser).await;
}

/// A client signing in with the password the administrator set and removing an activation.
async fn client_account(server: &TestServer, browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/client/login")).await.unwrap();
    fill(browser, "#client", "acme").await;
    fill(browser, "#password", "correct horse battery").await;
    shot(browser, "client-login").await;
    click(browser, "form[action='/client/login'] button").await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/client"));
    shot(browser, "client-home").await;
    click(browser, "td.key a").await;
    let key = browser
        .find(Locator::Css("td.key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        license(server, &key).await["activations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    click(browser, "button.danger").await;
    assert!(body_text(browser).await.contains("RETURNED"));
    shot(browser, "client-license").await;
    assert!(license(server, &key).await["activations"]
        .as_array()
        .unwrap()
        .is_empty());
    sign_out(browser).await;
}
