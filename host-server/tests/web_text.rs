//! The service center's text form: a request block made by the client library through the
//! `transport-text` plugin, pasted on the Activation tab, answered with a response block that
//! activates the machine; a block with a typo, garbage and a huge paste are refused with a page
//! and nothing is recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use chrono::Utc;
use common::{Backend, TestServer};
use licet_client::client::load_text_transport;
use licet_client::{Client, FixedProbe};
use licet_engine::{Fingerprint, Policy};
use licet_server::ratelimit::{Rate, RateLimits};
use tower::ServiceExt;

/// A cookie-keeping caller of the router.
struct Browser {
    router: Router,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("the page has a form") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// The text of the `<pre>` holding the response block, unescaped.
    fn block(&self) -> String {
        let marker = "<pre class=\"block\" id=\"answer-block\">";
        let start = self.body.find(marker).expect("the page shows a block") + marker.len();
        let end = self.body[start..].find("</pre>").unwrap() + start;
        self.body[start..end].replace("&#x20;", " ")
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

impl Browser {
    /// Signs in to the service center with the license `key`.
    async fn sign_in(&mut self, key: &str) {
        let login = self.send(Method::GET, "/service/login", None).await;
        let signed_in = self
            .send(
                Method::POST,
                "/service/login",
                Some(&[("csrf", &login.csrf()), ("key", key)]),
            )
            .await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, cookie);
        let body = match form {
            Some(fields) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let text = fields
                    .iter()
                    .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
                    .collect::<Vec<_>>()
                    .join("&");
                Body::from(text)
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let (pair, attributes) = value.to_str().unwrap().split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        Page {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_text_request_is_answered_with_a_response_block() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.standalone_key().await;
    let (plugin_dir, vendor, app) = common::with_text_transport(&server);
    let mut browser = Browser {
        router: app,
        cookies: BTreeMap::new(),
    };

    let source =
        std::fs::read_to_string(common::repo_root().join("policies/gstarcad.yaml")).unwrap();
    let machine_dir = tempfile::tempdir().unwrap();
    let computer = Client::new(
        machine_dir.path(),
        Policy::from_yaml("gstarcad.yaml", &source).unwrap(),
        vendor,
        Box::new(FixedProbe::new(Fingerprint {
            components: serde_json::from_value(common::machine(1)).unwrap(),
        })),
    );
    let client_side = load_text_transport(&plugin_dir, vendor).unwrap();
    let request = computer
        .begin_text_activation(&client_side, &key, "professional", Utc::now())
        .unwrap();

    browser.sign_in(&key).await;
    let tab = browser.send(Method::GET, "/service/activation", None).await;
    assert!(
        tab.body.contains("action=\"/service/activation/text\""),
        "{}",
        tab.body
    );

    // Hostile pastes: a typo, garbage and a huge paste are refused on a page; nothing recorded.
    let mut typo: Vec<String> = request.text.lines().map(str::to_owned).collect();
    let first = typo[2].remove(0);
    typo[2].insert(0, if first == '7' { '8' } else { '7' });
    let huge = "7".repeat(70 * 1024);
    for (block, status, says) in [
        (typo.join("\n"), 400, "line 3"),
        (
            "<script>alert(1)</script>".to_owned(),
            400,
            "TRANSPORT_REQUEST",
        ),
        (huge, 413, "PAYLOAD_TOO_LARGE"),
    ] {
        let tab = browser.send(Method::GET, "/service/activation", None).await;
        let refused = browser
            .send(
                Method::POST,
                "/service/activation/text",
                Some(&[("csrf", &tab.csrf()), ("block", &block)]),
            )
            .await;
        assert_eq!(refused.status, status, "{}", refused.body);
        assert!(refused.body.contains(says), "{}", refused.body);
        assert!(!refused.body.contains("<script>"));
    }
    let (_, license) = server
        .admin(Method::GET, &format!("/v1/admin/licenses/{key}"), None)
        .await;
    assert_eq!(
        license["activations"].as_array().unwrap().len(),
        0,
        "{license}"
    );

    // Without the CSRF token nothing is decided.
    let forged = browser
        .send(
            Method::POST,
            "/service/activation/text",
            Some(&[("block", &request.text)]),
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    let tab = browser.send(Method::GET, "/service/activation", None).await;
    let answered = browser
        .send(
            Method::POST,
            "/service/activation/text",
            Some(&[
                ("csrf", &tab.csrf()),
                ("block", &request.text.to_lowercase()),
            ]),
        )
        .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let block = unescape(&answered.block());
    assert!(block.starts_with("LICET ACTIVATION RESPONSE\n"), "{block}");
    let report = computer
        .load_text_activation_response(&client_side, &block, Utc::now())
        .unwrap();
    assert!(report.decision.is_allowed(), "{:?}", report.decision);
    let (_, license) = server
        .admin(Method::GET, &format!("/v1/admin/licenses/{key}"), None)
        .await;
    assert_eq!(license["activations"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paste_from_an_address_the_limiter_refuses_reaches_no_plugin() {
    let limits = RateLimits {
        per_key: Rate {
            burst: 1000,
            per_minute: 1,
        },
        per_address: Rate {
            burst: 3,
            per_minute: 1,
        },
        max_tracked: 1000,
    };
    let server = TestServer::start_with(Backend::Sqlite, limits).await;
    let key = server.standalone_key().await;
    let (_, _, app) = common::with_text_transport(&server);
    let mut browser = Browser {
        router: app.clone(),
        cookies: BTreeMap::new(),
    };
    browser.sign_in(&key).await;

    // The signed-in user's address spends the rest of its attempts on blocks no plugin reads.
    let garbage = "<script>alert(1)</script>";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(common::paste_text(&app, None, garbage).await.0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    let calls = common::plugin_calls(&server);
    let tab = browser.send(Method::GET, "/service/activation", None).await;
    let refused = browser
        .send(
            Method::POST,
            "/service/activation/text",
            Some(&[("csrf", &tab.csrf()), ("block", garbage)]),
        )
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body.contains("RATE_LIMITED"), "{}", refused.body);
    assert_eq!(
        common::plugin_calls(&server),
        calls,
        "the plugin read the paste"
    );
}
