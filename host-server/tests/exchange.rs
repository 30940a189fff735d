//! Manual activation and return by request and response files, through the API and the web form.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request};
use chrono::{SubsecRound, Utc};
use common::{raw, TestServer};
use licet_engine::exchange::{
    ActivationRequest, ActivationResponse, Nonce, ReturnRequest, ReturnResponse, Role,
};
use licet_engine::{Fingerprint, ProductRef};
use tower::ServiceExt;

fn fingerprint(n: usize) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", format!("id-{n}")),
        ("mac", format!("mac-{n}")),
        ("cpu", format!("cpu-{n}")),
        ("disk", format!("disk-{n}")),
    ])
}

fn target() -> ProductRef {
    ProductRef {
        product: "gstarcad".into(),
        edition: "professional".into(),
        version: "2027".into(),
    }
}

async fn send_file(server: &TestServer, file: &str) -> (u16, Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/exchange")
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(file.to_owned()))
        .unwrap();
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

on_both_backends! {
    async fn a_request_file_gets_a_signed_response_file_and_a_return_is_final(server) {
        let key = server.standalone_key().await;
        let vendor = server.state.licensing.verifying_key();
        let request = ActivationRequest {
            role: Role::Machine,
            server_key: None,
            license_key: key.clone(),
            target: target(),
            machine: fingerprint(1),
            nonce: Nonce([7; 32]),
            created_at: Utc::now().trunc_subsecs(0),
        };
        let (status, body) = send_file(&server, &request.to_xml().unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let response = ActivationResponse::from_xml(&body, &vendor).unwrap();
        assert_eq!(response.nonce(), request.nonce);
        assert_eq!(response.update_counter(), 1);
        assert_eq!(response.certificate().claims().license_key, key);
        let serial = response.certificate().claims().serial.clone();

        // The same key on another machine is refused like an online activation.
        let other = ActivationRequest { machine: fingerprint(2), nonce: Nonce([8; 32]), ..request.clone() };
        let (status, body) = send_file(&server, &other.to_xml().unwrap()).await;
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, error["code"].as_str()), (409, Some("ACTIVATION_LIMIT_REACHED")), "{error}");

        let give_back = ReturnRequest {
            role: Role::Machine,
            license_key: key.clone(),
            target: target(),
            machine: fingerprint(1),
            nonce: Nonce([9; 32]),
            created_at: Utc::now().trunc_subsecs(0),
            certificate_serial: serial.clone(),
        };
        let file = give_back.to_xml().unwrap();
        let (status, body) = send_file(&server, &file).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let returned = ReturnResponse::from_xml(&body, &vendor).unwrap();
        assert_eq!(returned.certificate_serial(), serial);
        assert_eq!(returned.update_counter(), 2);
        // A replayed return of the same certificate is refused.
        let (status, body) = send_file(&server, &file).await;
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, error["code"].as_str()), (409, Some("EXCHANGE_SERIAL_RETURNED")), "{error}");
        let (status, body) = send_file(&server, &other.to_xml().unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

#[tokio::test]
async fn malformed_files_are_refused_and_the_web_form_answers_a_download() {
    let server = TestServer::start(common::Backend::Sqlite).await;
    let (status, body) = send_file(&server, "<licet-activation-request><oops/>").await;
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("EXCHANGE_MALFORMED")),
        "{error}"
    );
    let (status, page) = server.call(Method::GET, "/v1/exchange", None, None).await;
    assert_eq!(status, 200);
    assert!(page
        .as_str()
        .unwrap()
        .contains(r#"action="/v1/exchange/upload""#));

    let key = server.standalone_key().await;
    let request = ActivationRequest {
        role: Role::Machine,
        server_key: None,
        license_key: key,
        target: target(),
        machine: fingerprint(3),
        nonce: Nonce([3; 32]),
        created_at: Utc::now().trunc_subsecs(0),
    };
    let boundary = "licet-boundary-42";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"request.xml\"\r\n\
         Content-Type: application/xml\r\n\r\n{}\r\n--{boundary}--\r\n",
        request.to_xml().unwrap()
    );
    let upload = Request::builder()
        .method(Method::POST)
        .uri("/v1/exchange/upload")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(form))
        .unwrap();
    let response = server.router.clone().oneshot(upload).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("licet-activation-response.xml"),
        "{disposition}"
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    ActivationResponse::from_xml(&bytes, &server.state.licensing.verifying_key()).unwrap();
    let (status, body) = raw(
        &server.router,
        Request::builder()
            .method(Method::POST)
            .uri("/v1/exchange/upload")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(format!("--{boundary}--\r\n")))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("INVALID_BODY")),
        "{body}"
    );
    // The form is one field, `file`: another field, or a second `file`, is refused.
    let part = |name: &str| {
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nx\r\n")
    };
    for form in [
        format!("{}{}--{boundary}--\r\n", part("file"), part("note")),
        format!("{}{}--{boundary}--\r\n", part("note"), part("file")),
        format!("{}{}--{boundary}--\r\n", part("file"), part("file")),
    ] {
        let (status, body) = raw(
            &server.router,
            Request::builder()
                .method(Method::POST)
                .uri("/v1/exchange/upload")
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("INVALID_BODY")),
            "{body}"
        );
    }
}
