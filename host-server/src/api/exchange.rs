//! Manual activation and return by request and response files: the API takes a request file and
//! answers the signed response file; a small web page does the same with an upload form.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use licet_engine::exchange::MAX_FILE_BYTES;
use licet_engine::Code;

use super::error::AppError;
use super::extract::{multipart_error, ApiBytes, ApiMultipart, Caller, Peer};
use super::AppState;
use crate::service::ExchangeStep;

/// The upload page.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Licet: manual activation and return</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.5}
form{border:1px solid #ccc;padding:1.5em;border-radius:6px}button{margin-top:1em}</style></head>
<body>
<h1>Manual activation and return</h1>
<p>On the computer without a connection, save an <b>activation request</b> or a <b>return request</b>
file. Upload it here and keep the <b>response file</b> you get back; load it on that computer.</p>
<form method="post" action="/v1/exchange/upload" enctype="multipart/form-data">
  <label for="file">Request file</label><br>
  <input type="file" id="file" name="file" accept=".xml,.lic,.req,text/xml,application/xml" required><br>
  <button type="submit">Get the response file</button>
</form>
</body>
</html>
"#;

/// The form of `POST /v1/exchange/upload`: one field, `file`.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = Upload)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The request file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// An exchange file (see docs/exchange-files.md).
const EXCHANGE_FILE: &str = "application/xml";

/// `GET /v1/exchange`: the upload page.
#[utoipa::path(
    get,
    path = "/v1/exchange",
    summary = "The manual activation web page (HTML upload form)",
    responses((status = 200, description = "success", body = String, content_type = "text/html"))
)]
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    peer: &Peer,
    file: &[u8],
) -> Result<Response, AppError> {
    if file.len() > MAX_FILE_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    // The file is parsed before the limits so that its license key is charged too; a file that
    // does not parse is charged to the address alone.
    let parsed = ExchangeStep::parse(file);
    // Everyone but administrators is limited.
    let limited = !matches!(caller, Caller::Administrator(_));
    if limited {
        let key = parsed.as_ref().ok().map(ExchangeStep::license_key);
        state.limiter.attempt(&peer.0, key)?;
    }
    let step = parsed?;
    let key = step.license_key().to_owned();
    let started = std::time::Instant::now();
    let outcome = state
        .licensing
        .answer_exchange(step.clone(), caller.label(peer))
        .await?;
    let action = match &step {
        ExchangeStep::Activation(..) => "exchange-activate",
        ExchangeStep::Return(..) => "exchange-return",
    };
    let took = started.elapsed();
    crate::logging::decision(action, Some(&key), caller.kind(), &outcome.decision, took);
    state.metrics.decision(
        action,
        outcome.decision.is_allowed(),
        outcome.decision.code.as_str(),
        took,
    );
    if limited && !outcome.decision.is_allowed() {
        state.limiter.fail(&peer.0, &key);
        if outcome.decision.code == Code::LicenseNotFound {
            state.limiter.penalize(&peer.0);
        }
    }
    if let Caller::Client(client) = caller {
        if matches!(
            outcome.decision.code,
            Code::LicenseNotFound | Code::AccessDenied
        ) {
            return Err(super::enduser::not_owned(client, &key));
        }
    }
    if !outcome.decision.is_allowed() {
        return Err(AppError::denied(&outcome.decision));
    }
    let file = outcome
        .response_file
        .ok_or_else(|| AppError::Internal("no response file was made".into()))?;
    let name = match step {
        ExchangeStep::Activation(..) => "licet-activation-response.xml",
        ExchangeStep::Return(..) => "licet-return-response.xml",
    };
    let mut response = file.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `POST /v1/exchange`: the body is an activation or return request file; the answer is the
/// signed response file (`application/xml`), or a JSON error.
#[utoipa::path(
    post,
    path = "/v1/exchange",
    summary = "Answer an activation or return request file with the signed response file",
    request_body(content = String, content_type = EXCHANGE_FILE, description = "an exchange file (see docs/exchange-files.md)"),
    responses((status = 200, description = "success", body = String, content_type = EXCHANGE_FILE))
)]
pub async fn exchange(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiBytes(body): ApiBytes,
) -> Result<Response, AppError> {
    answer(&state, &caller, &peer, &body).await
}

/// `POST /v1/exchange/upload`: the upload form's target, a form of one field, `file`. Another
/// field, or a second `file`, is a 422 `INVALID_BODY`, as the OpenAPI document states.
#[utoipa::path(
    post,
    path = "/v1/exchange/upload",
    summary = "The upload form's target: multipart field `file`; answers the response file",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "success", body = String, content_type = EXCHANGE_FILE))
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    peer: Peer,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Response, AppError> {
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| multipart_error(&error))?
    {
        if field.name() != Some("file") {
            return Err(AppError::InvalidBody(
                "the form has one field, `file`, and no other".into(),
            ));
        }
        if file.is_some() {
            return Err(AppError::InvalidBody(
                "the form has one `file` field, not more".into(),
            ));
        }
        file = Some(
            field
                .bytes()
                .await
                .map_err(|error| multipart_error(&error))?,
        );
    }
    match file {
        Some(bytes) => answer(&state, &caller, &peer, &bytes).await,
        None => Err(AppError::InvalidBody("the form has no `file` field".into())),
    }
}
