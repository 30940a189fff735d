//! The service center's text form: a request block pasted on the Activation tab (made by the
//! `transport-text` plugin on a machine where no file can be moved) is decoded by the server's
//! transport plugin into the request file, decided exactly as an uploaded file is, and the
//! response file is shown as a block to type or paste back.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use licet_engine::exchange::MAX_FILE_BYTES;
use licet_plugin_host::TransportPlugin;
use serde::Deserialize;

use super::service::{
    decide_upload, signed_in_key, ActivationPage, Expect, ResponseLink, TextAnswer, Upload,
};
use super::{Notice, Page, Web, WebError, WebForm};
use crate::api::error::AppError;
use crate::api::transport::{decode_request, encode_answer, Accepting};
use crate::service::ExchangeStep;

/// The manifest name of the text transport.
pub const TEXT_TRANSPORT: &str = "transport-text";
/// The largest block the form takes: as large as a request file may be, far more than a block
/// needs.
pub const MAX_BLOCK_BYTES: usize = MAX_FILE_BYTES;

const BACK: &str = "/service/activation";

/// What the handlers get when the server accepts requests through transports.
pub type Transports = Option<Extension<Arc<Accepting>>>;

/// The server's text transport, when it has one.
pub fn text_plugin(transports: &Transports) -> Option<Arc<TransportPlugin>> {
    let Extension(accepting) = transports.as_ref()?;
    accepting.transports().get(TEXT_TRANSPORT).cloned()
}

/// The text form.
#[derive(Debug, Clone, Deserialize)]
pub struct TextForm {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// The pasted block.
    #[serde(default)]
    pub block: String,
}

fn refused(status: StatusCode, code: &str, detail: impl Into<String>) -> WebError {
    WebError::new(status, code, detail).back(BACK, "Back")
}

/// `POST /service/activation/text`: a pasted activation or return request block; answers the
/// Activation tab with the response block (and the response file, kept like an upload's).
pub async fn activation_text(
    web: Web,
    transports: Transports,
    WebForm(form): WebForm<TextForm>,
) -> Result<Response, WebError> {
    let (session, key) = signed_in_key(&web)?;
    web.check_csrf(&session, form.csrf.as_deref())?;
    let Some(plugin) = text_plugin(&transports) else {
        return Err(refused(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "this server does not take text requests",
        ));
    };
    if form.block.len() > MAX_BLOCK_BYTES {
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!(
                "the text has {} bytes; a request block has far fewer than {MAX_BLOCK_BYTES}",
                form.block.len()
            ),
        ));
    }
    if form.block.trim().is_empty() {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "WRONG_FILE",
            "paste the request block the computer without a connection shows",
        ));
    }
    // An address the limiter refuses gets no plugin call.
    web.state
        .limiter
        .check(&web.peer.0)
        .map_err(|limit| WebError::from(AppError::from(limit)).back(BACK, "Back"))?;
    let decoded = decode_request(
        &web.state.metrics,
        &plugin,
        "text/plain",
        form.block.into_bytes(),
    )
    .await;
    let file = match decoded {
        Ok(file) => file,
        Err(error) => {
            // Like a file that does not parse, a block that does not read costs the address one
            // attempt; nothing is decided or recorded.
            web.state
                .limiter
                .attempt(&web.peer.0, None)
                .map_err(|limit| WebError::from(AppError::from(limit)).back(BACK, "Back"))?;
            return Err(WebError::from(error).back(BACK, "Back"));
        }
    };
    let expect = match ExchangeStep::parse(&file) {
        Ok(ExchangeStep::Return(..)) => Expect::Return,
        _ => Expect::Activation,
    };
    let upload = Upload {
        csrf: None,
        name: None,
        bytes: Some(file),
    };
    let record = decide_upload(&web, &key, &upload, expect, BACK).await?;
    let response = record.file.clone();
    let answer = encode_answer(&web.state.metrics, &plugin, response)
        .await
        .map_err(|error| WebError::from(error).back(BACK, "Back"))?;
    let session = session.rotated(web.now())?;
    let (code, title, sentence) = match expect {
        Expect::Return => (
            "RETURNED",
            "return response",
            "The license is returned. Type or paste this block on that computer; the key can then be activated elsewhere.",
        ),
        Expect::Activation => (
            "ACTIVATED",
            "activation response",
            "The license is activated for that computer. Type or paste this block there.",
        ),
    };
    Ok(web.page(
        &session,
        &ActivationPage {
            page: Page::new("Activation", &session, BACK)
                .with_notice(Some(Notice::ok(code, sentence, ""))),
            ready: Some(ResponseLink::of(&record)),
            text: true,
            carried: super::files::carries(&transports),
            answer: Some(TextAnswer {
                title,
                block: String::from_utf8_lossy(&answer.body).into_owned(),
            }),
            max_kib: MAX_FILE_BYTES / 1024,
        },
    ))
}
