//! Request files a transport plugin made, on the service center's upload forms: the file a
//! product writes through its bundle's `files` plugin (the shipped `transport-file` armors the
//! exchange file in base64 lines) is not an exchange file itself. When an uploaded file is not
//! one, the server's transports (`transports:`) are asked in turn to read it (their
//! `accept.decode-request`); the first that reads it (into something other than the bytes that
//! came) carries it. What it read is decided exactly as an uploaded request file is (a changed
//! request is refused as the changed exchange file it holds), and the response file goes back
//! through the same plugin's `accept.encode-answer`: what is kept and downloaded is the plugin's
//! response file, which the product reads through the same plugin.
//!
//! A file no transport reads is refused as it always was, as the exchange file it is not; either
//! way a file that is no request costs the address one attempt, and nothing is decided or
//! recorded.

use std::sync::Arc;

use licet_engine::exchange::MAX_FILE_BYTES;
use licet_plugin_host::TransportPlugin;

use super::service::{decide, keep, response_name, Expect, Upload};
use super::text::Transports;
use super::{AppError, Web, WebError};
use crate::api::transport::{decode_request, encode_answer};
use crate::metrics::Metrics;
use crate::service::ExchangeStep;
use crate::store::ResponseFileRecord;

/// The file name extension of a response file a transport plugin framed.
pub const CARRIED_RESPONSE_EXTENSION: &str = "licresp";

/// Whether the server has transports, whose request files the upload forms read.
pub fn carries(transports: &Transports) -> bool {
    transports
        .as_ref()
        .is_some_and(|axum::Extension(accepting)| !accepting.transports().is_empty())
}

/// The transport that reads `file`, and what it read (the exchange request file inside, or what
/// is wrong with it is then said of that); `None` when `file` is an exchange file itself (or too
/// large to be a request) or no transport reads it.
async fn carrier(
    metrics: &Metrics,
    transports: &Transports,
    file: &[u8],
) -> Option<(Arc<TransportPlugin>, Vec<u8>)> {
    let axum::Extension(accepting) = transports.as_ref()?;
    if file.is_empty() || file.len() > MAX_FILE_BYTES || ExchangeStep::parse(file).is_ok() {
        return None;
    }
    for plugin in accepting.transports().plugins() {
        let decoded = decode_request(metrics, plugin, "text/plain", file.to_vec()).await;
        // A transport that hands the bytes on unchanged (`transport-http`) does not read them.
        if let Ok(decoded) = decoded.map_err(drop).and_then(|decoded| {
            if decoded == file {
                Err(())
            } else {
                Ok(decoded)
            }
        }) {
            return Some((Arc::clone(plugin), decoded));
        }
    }
    None
}

/// The name of the response file a transport framed for an uploaded request file `NAME.EXT`:
/// `NAME-resp.licresp`, or `NAME-resp-return.licresp` for a return.
pub fn carried_response_name(uploaded: Option<&str>, is_return: bool) -> String {
    let stem = uploaded.map(|name| name.rsplit_once('.').map_or(name, |(stem, _)| stem));
    let name = response_name(stem, is_return);
    let base = name.strip_suffix(".xml").unwrap_or(&name);
    format!("{base}.{CARRIED_RESPONSE_EXTENSION}")
}

/// Decides an uploaded request file of the form `expect` names, as an exchange file or as the
/// file of one of the server's transports, and keeps its response file (the transport's, for a
/// transport's request file).
pub(super) async fn decide_any_upload(
    web: &Web,
    transports: &Transports,
    key: &str,
    upload: &Upload,
    expect: Expect,
    back: &str,
) -> Result<ResponseFileRecord, WebError> {
    // An address the limiter refuses gets no plugin call; the decision below counts the
    // attempt.
    web.state
        .limiter
        .check(&web.peer.0)
        .map_err(|limit| WebError::from(AppError::from(limit)).back(back, "Back"))?;
    let carried = match &upload.bytes {
        Some(file) => carrier(&web.state.metrics, transports, file).await,
        None => None,
    };
    let Some((plugin, file)) = carried else {
        let record = decide(web, key, upload, expect, back).await?;
        return keep(web, record).await;
    };
    let inner = Upload {
        csrf: None,
        name: upload.name.clone(),
        bytes: Some(file),
    };
    let mut record = decide(web, key, &inner, expect, back).await?;
    let response = record.file.clone();
    let answer = encode_answer(&web.state.metrics, &plugin, response).await;
    match answer.map(|answer| String::from_utf8(answer.body)) {
        Ok(Ok(framed)) => {
            record.file = framed;
            record.name = carried_response_name(upload.name.as_deref(), expect == Expect::Return);
            keep(web, record).await
        }
        // The decision stands: its exchange response file is kept, to be downloaded again.
        failed => {
            keep(web, record).await?;
            Err(match failed {
                Err(error) => WebError::from(error).back(back, "Back"),
                Ok(_) => WebError::internal(format!(
                    "the transport `{}` framed the response file as something other than text",
                    plugin.manifest().name
                )),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::carried_response_name;

    #[test]
    fn carried_response_files_are_named_after_the_request() {
        assert_eq!(
            carried_response_name(Some("office.licreq"), false),
            "office-resp.licresp"
        );
        assert_eq!(
            carried_response_name(Some("office-return.licreq"), true),
            "office-resp-return.licresp"
        );
        assert_eq!(carried_response_name(None, false), "licet-resp.licresp");
        assert_eq!(
            carried_response_name(Some("../x/.licreq"), false),
            "licet-resp.licresp"
        );
    }
}
