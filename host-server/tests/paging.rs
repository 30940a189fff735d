//! Every administrator listing pages: `limit` (1 to 1000, default 100) and `after`, the next
//! page's cursor in the `Licet-Next` header; walking the pages returns every row once, in order;
//! the license detail embeds at most a page of activations and seats. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request};
use common::{gstarcad, machine, TestServer, ADMIN_TOKEN};
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// `GET path` as the administrator: status, JSON body and the `Licet-Next` header.
async fn get(server: &TestServer, path: &str) -> (u16, Value, Option<String>) {
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let next = response
        .headers()
        .get("licet-next")
        .map(|value| value.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), next)
}

/// Walks `path` (which has a `?`) page by page with `limit`; every row's `field`, in the order
/// served, and how many pages it took.
async fn walk(server: &TestServer, path: &str, limit: usize, field: &str) -> (Vec<String>, usize) {
    let mut rows = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{path}&limit={limit}");
        if let Some(after) = &after {
            url.push_str(&format!("&after={}", encode(after)));
        }
        let (status, body, next) = get(server, &url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let page = body.as_array().unwrap();
        assert!(page.len() <= limit, "{url}: {} rows", page.len());
        pages += 1;
        rows.extend(page.iter().map(|row| match &row[field] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }));
        match next {
            Some(next) => {
                assert_eq!(page.len(), limit, "{url}: a page before the last is full");
                after = Some(next);
            }
            None => return (rows, pages),
        }
        assert!(pages < 1000, "{path} never ends");
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn sorted(mut rows: Vec<String>) -> Vec<String> {
    rows.sort();
    rows
}

fn checkout(key: &str, session: &str, n: usize) -> Value {
    json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": session })
}

async fn viewer_target(server: &TestServer) -> Value {
    let (_, products) = server.admin(Method::GET, "/v1/admin/products", None).await;
    let viewer = products
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "acme-viewer")
        .unwrap()
        .clone();
    json!({ "product": "acme-viewer", "edition": "standard", "version": viewer["version"] })
}

on_both_backends! {
    async fn walking_next_returns_every_row_once_in_order(server) {
        // Clients and orders, created out of order.
        let clients: Vec<String> = ["delta", "alpha", "echo", "charlie", "bravo"].map(String::from).into();
        for id in &clients {
            let (status, body) = server.admin(Method::POST, "/v1/admin/clients", Some(json!({ "id": id, "name": id }))).await;
            assert_eq!(status, 201, "{body}");
        }
        let (rows, pages) = walk(&server, "/v1/admin/clients?", 2, "id").await;
        assert_eq!((rows, pages), (sorted(clients.clone()), 3));
        // A limit that divides the rows exactly: the last full page names no next one.
        let (rows, pages) = walk(&server, "/v1/admin/clients?", 5, "id").await;
        assert_eq!((rows.len(), pages), (5, 1));

        let mut orders = Vec::new();
        for n in [3, 1, 4, 5, 9, 2, 6] {
            let id = format!("PO-{n}");
            let client = if n % 2 == 0 { "alpha" } else { "bravo" };
            let (status, body) = server.admin(Method::POST, "/v1/admin/orders", Some(json!({ "id": id, "client": client, "product": "acme-designer" }))).await;
            assert_eq!(status, 201, "{body}");
            orders.push((id, client));
        }
        let (rows, _) = walk(&server, "/v1/admin/orders?", 3, "id").await;
        assert_eq!(rows, sorted(orders.iter().map(|(id, _)| id.clone()).collect()));
        let (rows, _) = walk(&server, "/v1/admin/orders?client=bravo", 2, "id").await;
        let bravo: Vec<String> = orders.iter().filter(|(_, c)| *c == "bravo").map(|(id, _)| id.clone()).collect();
        assert_eq!(rows, sorted(bravo));

        // Licenses, and a client's own listing.
        let (status, issued) = server.admin(Method::POST, "/v1/admin/licenses", Some(json!({
            "product": "gstarcad", "license_type": "standalone-key", "edition": "professional", "count": 7
        }))).await;
        assert_eq!(status, 201, "{issued}");
        let keys: Vec<String> = issued["licenses"].as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap().to_owned()).collect();
        let (rows, pages) = walk(&server, "/v1/admin/licenses?product=gstarcad", 3, "key").await;
        assert_eq!((rows, pages), (sorted(keys), 3));

        // Seats of one license, and of every license (cursor `KEY/SESSION`).
        let pool = server.network_key(12).await;
        let other = server.network_key(3).await;
        let mut sessions = Vec::new();
        for n in 0..9 {
            let session = format!("s/{}", (n * 7) % 9);
            let (status, body) = server.post("/v1/seats/checkout", checkout(&pool, &session, n)).await;
            assert_eq!(status, 200, "{body}");
            sessions.push(session);
        }
        for n in 0..2 {
            let (status, body) = server.post("/v1/seats/checkout", checkout(&other, &format!("o{n}"), 100 + n)).await;
            assert_eq!(status, 200, "{body}");
        }
        let (rows, pages) = walk(&server, &format!("/v1/admin/licenses/{pool}/seats?"), 4, "session").await;
        assert_eq!((rows, pages), (sorted(sessions.clone()), 3));
        let (status, all, _) = get(&server, "/v1/admin/seats?limit=1000").await;
        assert_eq!(status, 200, "{all}");
        let every: Vec<String> = all.as_array().unwrap().iter().map(|s| format!("{}/{}", s["license_key"].as_str().unwrap(), s["session"].as_str().unwrap())).collect();
        assert_eq!(every.len(), 11);
        assert_eq!(every, sorted(every.clone()));
        let mut walked = Vec::new();
        let mut after = String::new();
        loop {
            let (status, page, next) = get(&server, &format!("/v1/admin/seats?limit=2&after={}", encode(&after))).await;
            assert_eq!(status, 200, "{page}");
            walked.extend(page.as_array().unwrap().iter().map(|s| format!("{}/{}", s["license_key"].as_str().unwrap(), s["session"].as_str().unwrap())));
            match next {
                Some(next) => after = next,
                None => break,
            }
        }
        assert_eq!(walked, every);

        // Activations of a web serial (three per serial).
        let (status, issued) = server.admin(Method::POST, "/v1/admin/serials", Some(json!({
            "product": "acme-viewer", "license_type": "serial", "edition": "standard"
        }))).await;
        assert_eq!(status, 201, "{issued}");
        let serial = issued["licenses"][0]["key"].as_str().unwrap().to_owned();
        let target = viewer_target(&server).await;
        for n in 1..=3 {
            let (status, body) = server.post("/v1/activate", json!({ "key": serial, "target": target, "machine": machine(n) })).await;
            assert_eq!(status, 200, "{body}");
        }
        let (rows, pages) = walk(&server, &format!("/v1/admin/licenses/{serial}/activations?"), 2, "id").await;
        assert_eq!(pages, 2);
        let ids: Vec<i64> = rows.iter().map(|id| id.parse().unwrap()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert_eq!(ids.len(), 3);
        // An activation on the second page is removed by its ID.
        let (status, body) = server.admin(Method::DELETE, &format!("/v1/admin/licenses/{serial}/activations/{}", ids[2]), None).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("RETURNED")), "{body}");

        // The audit log, oldest first: every entry once.
        let (everything, _) = walk(&server, "/v1/admin/audit?", 1000, "id").await;
        let (rows, pages) = walk(&server, "/v1/admin/audit?", 7, "id").await;
        assert_eq!(rows, everything);
        assert!(pages > 3, "{pages}");
        let ids: Vec<i64> = rows.iter().map(|id| id.parse().unwrap()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    async fn the_license_detail_embeds_one_page_of_a_large_pool(server) {
        let pool = server.network_key(150).await;
        for n in 0..130 {
            let (status, body) = server.post("/v1/seats/checkout", checkout(&pool, &format!("s{n:03}"), n)).await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, detail, _) = get(&server, &format!("/v1/admin/licenses/{pool}")).await;
        assert_eq!(status, 200, "{detail}");
        let seats = detail["seats"].as_array().unwrap();
        assert_eq!(seats.len(), 100);
        assert_eq!(seats[99]["session"], "s099");
        assert_eq!(detail["seats_next"], "s099");
        assert_eq!(detail["seats_held"], 130);
        assert_eq!(detail["activations_next"], Value::Null);
        // The rest from the paged listing the detail points to.
        let (status, rest, next) = get(&server, &format!("/v1/admin/licenses/{pool}/seats?after=s099")).await;
        assert_eq!(status, 200, "{rest}");
        assert_eq!((rest.as_array().unwrap().len(), next), (30, None));
        assert_eq!(rest[0]["session"], "s100");
        // A seat past the first page is force-released by its session.
        let (status, body) = server.admin(Method::DELETE, &format!("/v1/admin/licenses/{pool}/seats/s120"), None).await;
        assert_eq!((status, body["code"].as_str()), (200, Some("SEAT_RELEASED")), "{body}");
        let (_, detail, _) = get(&server, &format!("/v1/admin/licenses/{pool}")).await;
        assert_eq!(detail["seats_held"], 129);
        // The default page of every seat is 100 rows.
        let (_, page, next) = get(&server, "/v1/admin/seats").await;
        assert_eq!((page.as_array().unwrap().len(), next.is_some()), (100, true));
    }

    async fn a_limit_out_of_range_is_a_400_json_error(server) {
        let key = server.network_key(2).await;
        let listings = [
            "/v1/admin/clients".to_owned(),
            "/v1/admin/orders".to_owned(),
            "/v1/admin/licenses".to_owned(),
            "/v1/admin/seats".to_owned(),
            "/v1/admin/audit".to_owned(),
            format!("/v1/admin/licenses/{key}/activations"),
            format!("/v1/admin/licenses/{key}/seats"),
        ];
        for listing in &listings {
            for limit in ["0", "1001", "-5"] {
                let (status, body, next) = get(&server, &format!("{listing}?limit={limit}")).await;
                assert_eq!((status, body["code"].as_str(), body["rule"].as_str()), (400, Some("INVALID_QUERY"), Some("api.query")), "{listing} {limit}: {body}");
                assert!(body["message"].as_str().unwrap().contains("1 to 1000"), "{body}");
                assert_eq!(next, None);
            }
            for limit in ["1", "1000"] {
                let (status, body, _) = get(&server, &format!("{listing}?limit={limit}")).await;
                assert_eq!(status, 200, "{listing} {limit}: {body}");
            }
        }
        // The listings of an unknown license are 404.
        let (status, body, _) = get(&server, "/v1/admin/licenses/NOPE-1/seats").await;
        assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
        let (status, body, _) = get(&server, "/v1/admin/licenses/NOPE-1/activations").await;
        assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
        // A cursor that is not one of the listing's.
        let (status, body, _) = get(&server, "/v1/admin/seats?after=no-slash").await;
        assert_eq!((status, body["code"].as_str()), (422, Some("INVALID_BODY")), "{body}");
    }
}
