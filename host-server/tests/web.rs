//! The web pages driven through the router: the service center's manual activation and return,
//! the client interface, the administrator interface, and every kind of bad input (forged and
//! expired sessions, missing and replayed CSRF tokens, another client's ids, markup in fields,
//! oversized uploads) refused with a page and nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use chrono::Utc;
use common::{machine, Backend, TestServer, ADMIN_TOKEN};
use licet_client::{Client, FixedProbe};
use licet_engine::{Fingerprint, Policy};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A cookie-keeping caller of the router, like a browser without JavaScript.
struct Browser {
    router: Router,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    body: String,
    headers: axum::http::HeaderMap,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("the page has a form") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    fn location(&self) -> String {
        self.headers[header::LOCATION].to_str().unwrap().to_owned()
    }

    fn link(&self, prefix: &str) -> String {
        let marker = format!("href=\"{prefix}");
        let start = self.body.find(&marker).expect("the page has the link") + 6;
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Browser {
    fn new(router: &Router) -> Browser {
        Browser {
            router: router.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Page {
        let request = request
            .header(header::COOKIE, self.cookie_header())
            .body(body)
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            assert!(
                text.contains("HttpOnly") && text.contains("SameSite=Strict"),
                "{text}"
            );
            let (pair, attributes) = text.split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap();
        Page {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            headers,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(
            Request::builder().method(Method::GET).uri(path),
            Body::empty(),
        )
        .await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    async fn upload(&mut self, path: &str, csrf: &str, name: &str, file: &[u8]) -> Page {
        let boundary = "licet-test-boundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/xml\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            Request::builder().method(Method::POST).uri(path).header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            ),
            Body::from(body),
        )
        .await
    }

    /// Signs in to the service center with `key`.
    async fn service_login(&mut self, key: &str) -> Page {
        let login = self.get("/service/login").await;
        assert_eq!(login.status, 200);
        self.post("/service/login", &[("csrf", &login.csrf()), ("key", key)])
            .await
    }

    async fn admin_login(&mut self) {
        let login = self.get("/admin/login").await;
        let page = self
            .post(
                "/admin/login",
                &[("csrf", &login.csrf()), ("token", ADMIN_TOKEN)],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location(), "/admin");
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn fingerprint(n: usize) -> Fingerprint {
    Fingerprint {
        components: serde_json::from_value(machine(n)).unwrap(),
    }
}

/// A client machine of the GstarCAD product with state under `dir`.
fn client_machine(server: &TestServer, dir: &Path, n: usize) -> Client {
    let source =
        std::fs::read_to_string(common::repo_root().join("policies/gstarcad.yaml")).unwrap();
    let policy = Policy::from_yaml("gstarcad.yaml", &source).unwrap();
    let vendor =
        licet_server::keys::read_verifying_key(&server.dir.path().join("vendor.pub")).unwrap();
    Client::new(
        dir,
        policy,
        vendor,
        Box::new(FixedProbe::new(fingerprint(n))),
    )
}

async fn audit_count(server: &TestServer) -> usize {
    let (_, entries) = server
        .admin(Method::GET, "/v1/admin/audit?limit=1000", None)
        .await;
    entries.as_array().unwrap().len()
}

async fn license(server: &TestServer, key: &str) -> Value {
    let (status, body) = server
        .admin(Method::GET, &format!("/v1/admin/licenses/{key}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_center_activates_and_returns_by_files_like_the_api() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.standalone_key().await;
    let machine_dir = tempfile::tempdir().unwrap();
    let computer = client_machine(&server, machine_dir.path(), 1);
    let request = computer
        .begin_manual_activation(&key, "professional", Utc::now())
        .unwrap();

    let mut browser = Browser::new(&server.router);
    let signed_in = browser.service_login(&key).await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.location(), "/service/activation");
    let tab = browser.get("/service/activation").await;
    assert_eq!(tab.status, 200);
    let answered = browser
        .upload(
            "/service/activation",
            &tab.csrf(),
            "office-pc.xml",
            request.as_bytes(),
        )
        .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert!(answered.body.contains("office-pc-resp.xml"));
    let download = answered.link("/service/responses/");
    let file = browser.get(&download).await;
    assert_eq!(file.status, 200);
    assert!(file.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("office-pc-resp.xml"));
    let report = computer
        .load_activation_response(file.body.as_bytes(), Utc::now())
        .unwrap();
    assert!(report.decision.is_allowed(), "{:?}", report.decision);
    assert_eq!(
        license(&server, &key).await["activations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The same audit entry as an upload to the API: the end user's manual activation.
    let (_, entries) = server
        .admin(Method::GET, &format!("/v1/admin/audit?license={key}"), None)
        .await;
    let last = entries.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "activate");
    assert_eq!(last["code"], "ACTIVATED");
    assert!(last["actor"].as_str().unwrap().starts_with("end-user@"));

    // License Management lists the license and the response file; a return request answers.
    let management = browser.get("/service/licenses").await;
    assert!(management.body.contains(&key));
    assert!(management.body.contains("Stand-alone"));
    assert!(management.body.contains("office-pc-resp.xml"));
    let return_request = computer.begin_manual_return(Utc::now()).unwrap();
    let returned = browser
        .upload(
            "/service/return",
            &management.csrf(),
            "office-pc-return.xml",
            return_request.as_bytes(),
        )
        .await;
    assert_eq!(returned.status, 200, "{}", returned.body);
    assert!(returned.body.contains("office-pc-resp-return.xml"));
    let download = returned.link("/service/responses/");
    let file = browser.get(&download).await;
    computer
        .load_return_response(file.body.as_bytes(), Utc::now())
        .unwrap();
    assert!(license(&server, &key).await["activations"]
        .as_array()
        .unwrap()
        .is_empty());

    // The same return request again: already answered, in plain words with the code.
    let page = browser.get("/service/licenses").await;
    let again = browser
        .upload(
            "/service/return",
            &page.csrf(),
            "office-pc-return.xml",
            return_request.as_bytes(),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("EXCHANGE_SERIAL_RETURNED"));
    assert!(again.body.contains("already answered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_errors_are_plain_words_with_the_engines_code() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.standalone_key().await;
    let other = server.standalone_key().await;
    let mut browser = Browser::new(&server.router);
    browser.service_login(&key).await;
    let before = audit_count(&server).await;

    let tab = browser.get("/service/activation").await;
    let page = browser
        .upload(
            "/service/activation",
            &tab.csrf(),
            "x.xml",
            b"<not-a-request/>",
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("EXCHANGE_MALFORMED"));
    assert!(page
        .body
        .contains("not a request file this server can read"));

    // A file for another key than the one signed in with.
    let machine_dir = tempfile::tempdir().unwrap();
    let computer = client_machine(&server, machine_dir.path(), 2);
    let request = computer
        .begin_manual_activation(&other, "professional", Utc::now())
        .unwrap();
    let page = browser
        .upload(
            "/service/activation",
            &tab.csrf(),
            "x.xml",
            request.as_bytes(),
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("WRONG_LICENSE"));

    // Oversized files: above the request file limit, and above the body limit.
    let big = vec![b'a'; 100 * 1024];
    let page = browser
        .upload("/service/activation", &tab.csrf(), "big.xml", &big)
        .await;
    assert_eq!(page.status, 413);
    assert!(page.body.contains("PAYLOAD_TOO_LARGE"));
    let huge = vec![b'a'; 400 * 1024];
    let page = browser
        .upload("/service/activation", &tab.csrf(), "huge.xml", &huge)
        .await;
    assert_eq!(page.status, 413, "{}", page.body);
    assert!(page.body.contains("PAYLOAD_TOO_LARGE"));

    // Nothing was decided, so nothing was audited; the other license is untouched.
    assert_eq!(audit_count(&server).await, before);
    assert!(license(&server, &other).await["activations"]
        .as_array()
        .unwrap()
        .is_empty());

    // An unknown key does not sign in.
    let mut stranger = Browser::new(&server.router);
    let page = stranger.service_login("GSTA-NOPE").await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("LICENSE_NOT_FOUND"));
    assert!(stranger.get("/service/licenses").await.status == 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_expired_sessions_are_refused_and_change_nothing() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.network_key(2).await;
    let mut admin = Browser::new(&server.router);
    admin.admin_login().await;
    let page = admin.get(&format!("/admin/licenses/{key}")).await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let genuine = admin.cookies["licet_admin"].clone();

    // A cookie whose payload was altered (another administrator's name), its tag kept.
    let (payload, tag) = genuine.split_once('.').unwrap();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut json: Value = serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
    json["actor"] = json!({ "administrator": "mallory" });
    let forged = format!(
        "{}.{tag}",
        engine.encode(serde_json::to_vec(&json).unwrap())
    );
    let mut mallory = Browser::new(&server.router);
    let forged_again = forged.clone();
    mallory.cookies.insert("licet_admin".into(), forged);
    let refused = mallory
        .post(
            &format!("/admin/licenses/{key}/revoke"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("SESSION_INVALID"));
    assert!(refused.body.contains("Nothing was changed"));
    assert_eq!(license(&server, &key).await["status"], "enabled");
    // The refusal removed the cookie; the same for a page, for garbage and for a cookie signed
    // with another secret.
    assert!(!mallory.cookies.contains_key("licet_admin"));
    mallory.cookies.insert("licet_admin".into(), forged_again);
    assert_eq!(mallory.get("/admin/licenses").await.status, 401);
    for cookie in [
        "garbage",
        "a.b",
        &format!("{payload}.{}", engine.encode([0u8; 32])),
    ] {
        let mut browser = Browser::new(&server.router);
        browser
            .cookies
            .insert("licet_admin".into(), cookie.to_owned());
        let page = browser.get("/admin").await;
        assert_eq!(page.status, 401, "{cookie}");
        assert!(page.body.contains("SESSION_INVALID"));
    }
    // A service center cookie is no administrator session.
    let mut end_user = Browser::new(&server.router);
    end_user.service_login(&key).await;
    let service_cookie = end_user.cookies["licet_service"].clone();
    let mut confused = Browser::new(&server.router);
    confused
        .cookies
        .insert("licet_admin".into(), service_cookie);
    assert_eq!(confused.get("/admin").await.status, 401);

    // An expired session: the idle time passed.
    server.clock.advance(chrono::Duration::minutes(31));
    let expired = admin
        .post(
            &format!("/admin/licenses/{key}/revoke"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(expired.status, 401);
    assert!(expired.body.contains("SESSION_EXPIRED"));
    assert_eq!(license(&server, &key).await["status"], "enabled");
    // Without any session a page goes to the sign-in page.
    let mut nobody = Browser::new(&server.router);
    let page = nobody.get("/admin/seats").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/admin/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_tokens_are_required_bound_to_the_session_and_used_once() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.standalone_key().await;
    let mut admin = Browser::new(&server.router);
    admin.admin_login().await;
    let page = admin.get(&format!("/admin/licenses/{key}")).await;
    let csrf = page.csrf();
    let before = audit_count(&server).await;

    let missing = admin
        .post(
            &format!("/admin/licenses/{key}/revoke"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("CSRF_MISSING"));

    // A token from another administrator session.
    let mut other = Browser::new(&server.router);
    other.admin_login().await;
    let other_csrf = other.get("/admin").await.csrf();
    let mismatch = admin
        .post(
            &format!("/admin/licenses/{key}/revoke"),
            &[("csrf", &other_csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(mismatch.status, 403);
    assert!(mismatch.body.contains("CSRF_MISMATCH"));
    assert_eq!(license(&server, &key).await["status"], "enabled");
    assert_eq!(audit_count(&server).await, before);

    // Accepted once; the same form again (replayed) is refused.
    let done = admin
        .post(
            &format!("/admin/licenses/{key}/extend"),
            &[("csrf", &csrf), ("expires_at", "2099-12-31")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("EXTENDED"), "{}", done.body);
    let replay = admin
        .post(
            &format!("/admin/licenses/{key}/extend"),
            &[("csrf", &csrf), ("expires_at", "2098-12-31")],
        )
        .await;
    assert_eq!(replay.status, 403);
    assert!(replay.body.contains("CSRF_MISMATCH"));
    let detail = license(&server, &key).await;
    assert_eq!(detail["term"]["rental"]["ends_at"], "2099-12-31T23:59:59Z");

    // The sign-in forms need their token too.
    let mut fresh = Browser::new(&server.router);
    fresh.get("/admin/login").await;
    let page = fresh.post("/admin/login", &[("token", ADMIN_TOKEN)]).await;
    assert_eq!(page.status, 403);
    assert!(!fresh
        .cookies
        .get("licet_admin")
        .is_some_and(|c| c.contains("administrator")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sign_in_with_a_password_and_see_and_change_only_their_own_licenses() {
    let server = TestServer::start(Backend::Sqlite).await;
    for (id, order) in [("alpha", "order-a"), ("beta", "order-b")] {
        server
            .admin(
                Method::POST,
                "/v1/admin/clients",
                Some(json!({ "id": id, "name": id })),
            )
            .await;
        server
            .admin(
                Method::POST,
                "/v1/admin/orders",
                Some(json!({ "id": order, "client": id, "product": "acme-designer" })),
            )
            .await;
    }
    let issue = |order: &str| json!({ "product": "acme-designer", "license_type": "standard", "edition": "business", "order": order });
    let mine = server.issue(issue("order-a")).await;
    let theirs = server.issue(issue("order-b")).await;
    for (key, n) in [(&mine, 1), (&theirs, 2)] {
        let (status, body) = server
            .post(
                "/v1/activate",
                json!({ "key": key, "target": { "product": "acme-designer", "edition": "business", "version": "5" }, "machine": machine(n) }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // The administrator sets alpha's password.
    let mut admin = Browser::new(&server.router);
    admin.admin_login().await;
    let clients = admin.get("/admin/clients").await;
    let set = admin
        .post(
            "/admin/clients/alpha/password",
            &[
                ("csrf", &clients.csrf()),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(set.status, 200);
    assert!(set.body.contains("PASSWORD_SET"), "{}", set.body);

    let mut alpha = Browser::new(&server.router);
    let login = alpha.get("/client/login").await;
    let wrong = alpha
        .post(
            "/client/login",
            &[
                ("csrf", &login.csrf()),
                ("client", "alpha"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("BAD_CREDENTIALS"));
    let ok = alpha
        .post(
            "/client/login",
            &[
                ("csrf", &wrong.csrf()),
                ("client", "alpha"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let home = alpha.get("/client").await;
    assert!(home.body.contains(&mine));
    assert!(!home.body.contains(&theirs));

    // Another client's license: refused, to see and to change.
    let page = alpha.get(&format!("/client/licenses/{theirs}")).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("ACCESS_DENIED"));
    let their_activation = license(&server, &theirs).await["activations"][0]["id"]
        .as_i64()
        .unwrap();
    let detail = alpha.get(&format!("/client/licenses/{mine}")).await;
    let refused = alpha
        .post(
            &format!("/client/licenses/{theirs}/remove"),
            &[
                ("csrf", &detail.csrf()),
                ("activation", &their_activation.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        license(&server, &theirs).await["activations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Their activation's id under my license's address: not one of mine.
    let refused = alpha
        .post(
            &format!("/client/licenses/{mine}/remove"),
            &[
                ("csrf", &detail.csrf()),
                ("activation", &their_activation.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(
        license(&server, &theirs).await["activations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // My own activation: removed, as the policy lets end users remove.
    let my_activation = license(&server, &mine).await["activations"][0]["id"]
        .as_i64()
        .unwrap();
    let removed = alpha
        .post(
            &format!("/client/licenses/{mine}/remove"),
            &[
                ("csrf", &detail.csrf()),
                ("activation", &my_activation.to_string()),
            ],
        )
        .await;
    assert_eq!(removed.status, 200);
    assert!(removed.body.contains("RETURNED"), "{}", removed.body);
    assert!(license(&server, &mine).await["activations"]
        .as_array()
        .unwrap()
        .is_empty());

    // The client token signs in too.
    let (_, rotated) = server
        .admin(Method::POST, "/v1/admin/clients/beta/token", None)
        .await;
    let mut beta = Browser::new(&server.router);
    let login = beta.get("/client/login").await;
    let ok = beta
        .post(
            "/client/login-token",
            &[
                ("csrf", &login.csrf()),
                ("token", rotated["token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert!(beta.get("/client").await.body.contains(&theirs));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_every_field_is_escaped() {
    let server = TestServer::start(Backend::Sqlite).await;
    let script = "<script>alert(1)</script>";
    let mut admin = Browser::new(&server.router);
    admin.admin_login().await;
    let page = admin.get("/admin/clients").await;
    let created = admin
        .post(
            "/admin/clients",
            &[("csrf", &page.csrf()), ("id", "evil"), ("name", script)],
        )
        .await;
    assert!(
        created.body.contains("&#60;script&#62;"),
        "{}",
        created.body
    );
    let refused = admin
        .post(
            "/admin/clients",
            &[("csrf", &created.csrf()), ("id", script), ("name", "x")],
        )
        .await;
    for page in [&created, &refused] {
        assert!(!page.body.contains(script));
    }
    assert!(refused.body.contains("INVALID_BODY"));
    for path in [
        format!(
            "/admin/audit?key={}&client={}&code={}",
            encode(script),
            encode(script),
            encode(script)
        ),
        format!(
            "/admin/licenses?client={}&order={}",
            encode(script),
            encode(script)
        ),
        format!("/admin/usage?key={}", encode(script)),
        format!("/admin/licenses/{}", encode(script)),
        format!("/admin/orders/{}", encode(script)),
    ] {
        let page = admin.get(&path).await;
        assert!(!page.body.contains(script), "{path}: {}", page.body);
    }
    let mut end_user = Browser::new(&server.router);
    let login = end_user.get("/service/login").await;
    let page = end_user
        .post(
            "/service/login",
            &[("csrf", &login.csrf()), ("key", script)],
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("&#60;script&#62;"));
    assert!(!page.body.contains(script));
    // Every page forbids scripts anyway.
    assert!(page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_issue_extend_revoke_and_force_release() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mut admin = Browser::new(&server.router);
    admin.admin_login().await;
    let form = admin.get("/admin/licenses/new?product=gstarcad").await;
    assert!(form.body.contains("network-key"));
    let issued = admin
        .post(
            "/admin/licenses",
            &[
                ("csrf", &form.csrf()),
                ("product", "gstarcad"),
                ("license_type", "network-key"),
                ("edition", "professional"),
                ("term", "perpetual"),
                ("seats", "1"),
                ("count", "1"),
                ("feature.drawing", "keep"),
            ],
        )
        .await;
    assert_eq!(issued.status, 200);
    assert!(issued.body.contains("ISSUED"), "{}", issued.body);
    let key = issued
        .link("/admin/licenses/GSTA")
        .trim_start_matches("/admin/licenses/")
        .to_owned();

    // Two checkouts: one seat, one denial (for the usage page).
    for (n, session) in [(1, "s1"), (2, "s2")] {
        server
            .post(
                "/v1/seats/checkout",
                json!({ "key": key, "target": common::gstarcad("professional"), "machine": machine(n), "session": session }),
            )
            .await;
    }
    let seats = admin.get("/admin/seats").await;
    assert!(seats.body.contains("s1"));
    let released = admin
        .post(
            &format!("/admin/licenses/{key}/release"),
            &[
                ("csrf", &seats.csrf()),
                ("session", "s1"),
                ("from", "seats"),
            ],
        )
        .await;
    assert!(released.body.contains("SEAT_RELEASED"), "{}", released.body);
    assert!(license(&server, &key).await["seats"]
        .as_array()
        .unwrap()
        .is_empty());

    let page = admin.get(&format!("/admin/licenses/{key}")).await;
    let extended = admin
        .post(
            &format!("/admin/licenses/{key}/extend"),
            &[("csrf", &page.csrf()), ("seats", "3")],
        )
        .await;
    assert!(extended.body.contains("EXTENDED"), "{}", extended.body);
    assert_eq!(license(&server, &key).await["seats"], json!([]));
    assert_eq!(license(&server, &key).await["license_type"], "network-key");
    let unconfirmed = admin
        .post(
            &format!("/admin/licenses/{key}/revoke"),
            &[("csrf", &extended.csrf())],
        )
        .await;
    assert_eq!(license(&server, &key).await["status"], "enabled");
    let revoked = admin
        .post(
            &format!("/admin/licenses/{key}/revoke"),
            &[("csrf", &unconfirmed.csrf()), ("confirm", "yes")],
        )
        .await;
    assert!(
        revoked.body.contains("REVOCATION_APPLIED"),
        "{}",
        revoked.body
    );
    assert_eq!(license(&server, &key).await["status"], "revoked");

    // Audit search by key and code; usage shows the seat and the denial.
    let audit = admin
        .get(&format!("/admin/audit?key={key}&code=SEATS_EXHAUSTED"))
        .await;
    assert!(audit.body.contains("SEATS_EXHAUSTED"));
    assert!(!audit.body.contains("SEAT_GRANTED"));
    let usage = admin.get("/admin/usage?days=7").await;
    assert_eq!(usage.status, 200);
    assert!(usage.body.contains(&key));
    assert!(usage.body.contains("<svg"));
    assert!(usage.body.contains("SEATS_EXHAUSTED"));
    for path in [
        "/admin",
        "/admin/products",
        "/admin/clients",
        "/admin/orders",
        "/admin/serials",
        "/admin/licenses",
    ] {
        assert_eq!(admin.get(path).await.status, 200, "{path}");
    }
}

mod both_backends {
    use super::*;
    use licet_server::store::AuditSearch;

    on_both_backends! {
        async fn audit_search_passwords_and_response_files_work_on_every_backend(server) {
            let licensing = &server.state.licensing;
            licensing.create_client("tests", "acme", "Acme").await.unwrap();
            licensing
                .set_client_password("tests", "acme", Some("a long enough password"))
                .await
                .unwrap();
            assert!(licensing.verify_client_password("acme", "a long enough password").await.unwrap());
            assert!(!licensing.verify_client_password("acme", "another password").await.unwrap());
            assert!(!licensing.verify_client_password("nobody", "a long enough password").await.unwrap());
            assert!(licensing.set_client_password("tests", "acme", Some("short")).await.is_err());

            let key = server.network_key(1).await;
            for (n, session) in [(1, "a"), (2, "b")] {
                server
                    .post(
                        "/v1/seats/checkout",
                        json!({ "key": key, "target": common::gstarcad("professional"), "machine": machine(n), "session": session }),
                    )
                    .await;
            }
            let denied = licensing
                .search_audit(AuditSearch { code: Some("SEATS_EXHAUSTED".into()), limit: 10, ..AuditSearch::default() })
                .await
                .unwrap();
            assert_eq!(denied.len(), 1);
            let by_client = licensing
                .search_audit(AuditSearch { client: Some("acme".into()), limit: 10, ..AuditSearch::default() })
                .await
                .unwrap();
            assert!(by_client.is_empty());
            let now = licensing.now();
            let events = licensing
                .seat_events(now - chrono::Duration::hours(1), now + chrono::Duration::hours(1), Some(&key), 100)
                .await
                .unwrap();
            assert_eq!(events.len(), 1);
            let counts = licensing
                .denial_counts(now - chrono::Duration::hours(1), now + chrono::Duration::hours(1), None)
                .await
                .unwrap();
            assert_eq!(counts[0].code, "SEATS_EXHAUSTED");
            assert_eq!(counts[0].count, 1);

            for index in 0..25 {
                licensing
                    .keep_response_file(licet_server::store::ResponseFileRecord {
                        id: 0,
                        license_key: key.clone(),
                        kind: "activation".into(),
                        name: format!("f{index}-resp.xml"),
                        file: "<x/>".into(),
                        created_at: now,
                    })
                    .await
                    .unwrap();
            }
            let files = licensing.response_files(&key).await.unwrap();
            assert_eq!(files.len(), 20);
            assert_eq!(files[0].name, "f24-resp.xml");
        }
    }
}
