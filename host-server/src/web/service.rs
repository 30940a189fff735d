//! The online service center (`/service`): end users sign in with their license key (no
//! account), upload an activation request file and download the response file (Activation), and
//! see their license, download its response files again and return it with a return request
//! file (License Management). Uploads are decided exactly like `POST /v1/exchange`: the same
//! parsing, the same rate limits, the same [`Licensing::answer_exchange`] call and audit entry.
//! A request file one of the server's transports made (a product's bundled `files` plugin) is
//! read and answered through that transport ([`super::files`]).
//!
//! [`Licensing::answer_exchange`]: crate::service::Licensing::answer_exchange

use askama::Template;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use licet_engine::exchange::{ActivationRequest, ReturnRequest, MAX_FILE_BYTES};
use licet_engine::Code;
use serde::Deserialize;

use super::view::{LicenseView, SeatRow};
use super::{time, Area, Notice, Page, Session, Web, WebActor, WebError, WebForm};
use crate::api::error::AppError;
use crate::api::extract::Caller;
use crate::service::{ExchangeStep, ServiceError};
use crate::store::ResponseFileRecord;

/// The sign-in form.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyLogin {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// The license key.
    #[serde(default)]
    pub key: String,
}

/// A form with only its CSRF token.
#[derive(Debug, Clone, Deserialize)]
pub struct CsrfOnly {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "service_login.html")]
struct LoginPage {
    page: Page,
    key: String,
}

#[derive(Template)]
#[template(path = "service_activation.html")]
pub(super) struct ActivationPage {
    pub page: Page,
    pub ready: Option<ResponseLink>,
    /// Whether the server takes text requests (it has the `transport-text` plugin).
    pub text: bool,
    /// The response block to a pasted request block.
    pub answer: Option<TextAnswer>,
    /// Whether the server reads request files its transports made (any file may be chosen).
    pub carried: bool,
    pub max_kib: usize,
}

/// A response block shown on the Activation tab.
#[derive(Debug, Clone)]
pub(super) struct TextAnswer {
    /// `activation response` or `return response`.
    pub title: &'static str,
    /// The block.
    pub block: String,
}

#[derive(Template)]
#[template(path = "service_licenses.html")]
struct LicensesPage {
    page: Page,
    license: LicenseView,
    borrowed: Vec<SeatRow>,
    in_use: usize,
    responses: Vec<ResponseLink>,
    ready: Option<ResponseLink>,
    carried: bool,
    max_kib: usize,
}

/// A response file offered for download.
#[derive(Debug, Clone)]
pub struct ResponseLink {
    /// The download address.
    pub href: String,
    /// The file name.
    pub name: String,
    /// `Activation` or `Return`.
    pub kind: &'static str,
    /// When it was answered.
    pub at: String,
}

impl ResponseLink {
    pub(super) fn of(record: &ResponseFileRecord) -> ResponseLink {
        ResponseLink {
            href: format!("/service/responses/{}", record.id),
            name: record.name.clone(),
            kind: if record.kind == "return" {
                "Return"
            } else {
                "Activation"
            },
            at: time(&record.created_at),
        }
    }
}

pub(super) fn signed_in_key(web: &Web) -> Result<(Session, String), WebError> {
    let session = web.signed_in(Area::Service)?;
    match &session.actor {
        WebActor::EndUser(key) => {
            let key = key.clone();
            Ok((session, key))
        }
        _ => Err(WebError::new(
            StatusCode::UNAUTHORIZED,
            "SESSION_INVALID",
            "the session is not an end user's",
        )
        .back(Area::Service.login(), "Sign in")),
    }
}

/// `GET /service`.
pub async fn home(web: Web) -> Redirect {
    match web.session(Area::Service) {
        super::SessionState::Valid(session) if session.actor != WebActor::Anonymous => {
            Redirect::to("/service/activation")
        }
        _ => Redirect::to(Area::Service.login()),
    }
}

/// `GET /service/login`.
pub async fn login_page(web: Web) -> Result<Response, WebError> {
    let session = web.sign_in_session(Area::Service)?;
    if session.actor != WebActor::Anonymous {
        return Ok(Redirect::to("/service/activation").into_response());
    }
    Ok(web.page(
        &session,
        &LoginPage {
            page: Page::new("Sign in with your license key", &session, ""),
            key: String::new(),
        },
    ))
}

/// `POST /service/login`: the license key is the login; attempts are limited like activation
/// attempts of the API, and an unknown key costs the address one more.
pub async fn login(web: Web, WebForm(form): WebForm<KeyLogin>) -> Result<Response, WebError> {
    let session = match web.session(Area::Service) {
        super::SessionState::Valid(session) => session,
        _ => {
            return Err(WebError::new(
                StatusCode::FORBIDDEN,
                "CSRF_MISSING",
                "the sign-in form came without its session cookie; cookies must be enabled",
            )
            .back(Area::Service.login(), "Open the sign-in page again"))
        }
    };
    web.check_csrf(&session, form.csrf.as_deref())?;
    let key = form.key.trim().to_owned();
    let refused = |code: &str, detail: &str| -> Result<Response, WebError> {
        let session = session.rotated(web.now())?;
        Ok(web.page_with_status(
            StatusCode::UNAUTHORIZED,
            &session,
            &LoginPage {
                page: Page::new("Sign in with your license key", &session, "")
                    .with_notice(Some(Notice::refused(code, detail))),
                key: key.clone(),
            },
        ))
    };
    if key.is_empty() || key.len() > 256 {
        return refused("LICENSE_NOT_FOUND", "enter the license key, as printed");
    }
    web.state
        .limiter
        .attempt(&web.peer.0, Some(&key))
        .map_err(|limit| {
            WebError::from(AppError::from(limit)).back(Area::Service.login(), "Sign in")
        })?;
    match web.state.licensing.license_detail(&key).await {
        Ok(_) => web.sign_in(Area::Service, WebActor::EndUser(key), "/service/activation"),
        Err(ServiceError::NotFound(_)) => {
            web.state.limiter.penalize(&web.peer.0);
            refused("LICENSE_NOT_FOUND", "no license has this key")
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /service/logout`.
pub async fn logout(web: Web, WebForm(form): WebForm<CsrfOnly>) -> Result<Response, WebError> {
    web.sign_out(Area::Service, form.csrf.as_deref())
}

/// `GET /service/activation`: the Activation tab.
pub async fn activation_page(
    web: Web,
    transports: super::text::Transports,
) -> Result<Response, WebError> {
    let (session, _) = signed_in_key(&web)?;
    Ok(web.page(
        &session,
        &ActivationPage {
            page: Page::new("Activation", &session, "/service/activation"),
            ready: None,
            text: super::text::text_plugin(&transports).is_some(),
            answer: None,
            carried: super::files::carries(&transports),
            max_kib: MAX_FILE_BYTES / 1024,
        },
    ))
}

async fn licenses_view(
    web: &Web,
    transports: &super::text::Transports,
    session: &Session,
    key: &str,
    notice: Option<Notice>,
    ready: Option<ResponseLink>,
) -> Result<Response, WebError> {
    let licensing = &web.state.licensing;
    let detail = licensing.license_detail(key).await?;
    let policy = licensing
        .policies()
        .get(&detail.record.license.product)
        .cloned();
    let order = match &detail.record.order {
        Some(order) => licensing.order(order).await.ok(),
        None => None,
    };
    let license = LicenseView::detail(policy.as_deref(), &detail, order.as_ref(), web.now());
    let responses = licensing
        .response_files(key)
        .await?
        .iter()
        .map(ResponseLink::of)
        .collect();
    let borrowed = license.borrowed().into_iter().cloned().collect();
    let in_use = license.seats_in_use();
    Ok(web.page(
        session,
        &LicensesPage {
            page: Page::new("License Management", session, "/service/licenses").with_notice(notice),
            license,
            borrowed,
            in_use,
            responses,
            ready,
            carried: super::files::carries(transports),
            max_kib: MAX_FILE_BYTES / 1024,
        },
    ))
}

/// `GET /service/licenses`: the License Management tab.
pub async fn licenses_page(
    web: Web,
    transports: super::text::Transports,
) -> Result<Response, WebError> {
    let (session, key) = signed_in_key(&web)?;
    licenses_view(&web, &transports, &session, &key, None, None).await
}

/// An uploaded file and the form's CSRF token.
#[derive(Debug, Default)]
pub struct Upload {
    /// The CSRF token.
    pub csrf: Option<String>,
    /// The file's name, as the browser gave it.
    pub name: Option<String>,
    /// The file's bytes.
    pub bytes: Option<Vec<u8>>,
}

fn upload_error(error: &axum::extract::multipart::MultipartError) -> WebError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the upload is larger than the server accepts",
        )
    } else {
        WebError::bad_form(error.body_text())
    }
}

/// Reads a `multipart/form-data` upload with fields `csrf` and `file` (any other field is
/// refused).
pub async fn read_upload(
    multipart: Result<Multipart, MultipartRejection>,
    back: &str,
) -> Result<Upload, WebError> {
    let mut multipart = multipart.map_err(|rejection| {
        WebError::bad_form(format!(
            "send the form as multipart/form-data ({})",
            rejection.body_text()
        ))
        .back(back, "Back")
    })?;
    let mut upload = Upload::default();
    let mut fields = 0;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| upload_error(&error).back(back, "Back"))?
    {
        fields += 1;
        if fields > 4 {
            return Err(WebError::bad_form("the form has too many fields").back(back, "Back"));
        }
        match field.name() {
            Some("csrf") => {
                upload.csrf = Some(
                    field
                        .text()
                        .await
                        .map_err(|error| upload_error(&error).back(back, "Back"))?,
                );
            }
            Some("file") => {
                upload.name = field.file_name().map(str::to_owned);
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|error| upload_error(&error).back(back, "Back"))?;
                upload.bytes = Some(bytes.to_vec());
            }
            _ => return Err(WebError::bad_form("the form has an unknown field").back(back, "Back")),
        }
    }
    Ok(upload)
}

/// Which form a file was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Activation,
    Return,
}

/// The name of the response file for an uploaded request file: `NAME.xml` answers
/// `NAME-resp.xml`, `NAME-return.xml` answers `NAME-resp-return.xml`.
pub fn response_name(uploaded: Option<&str>, is_return: bool) -> String {
    let base = uploaded
        .and_then(|name| name.rsplit(['/', '\\']).next())
        .unwrap_or("");
    let stem = base.strip_suffix(".xml").unwrap_or(base);
    let stem = if is_return {
        stem.strip_suffix("-return").unwrap_or(stem)
    } else {
        stem
    };
    let mut clean: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(80)
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        clean = "licet".to_owned();
    }
    if is_return {
        format!("{clean}-resp-return.xml")
    } else {
        format!("{clean}-resp.xml")
    }
}

/// Decides an uploaded request file and keeps its response file (see [`decide`]).
pub(super) async fn decide_upload(
    web: &Web,
    key: &str,
    upload: &Upload,
    expect: Expect,
    back: &str,
) -> Result<ResponseFileRecord, WebError> {
    let record = decide(web, key, upload, expect, back).await?;
    keep(web, record).await
}

/// Decides an uploaded request file of the form `expect` names, exactly as `POST /v1/exchange`
/// does; the response file, not kept yet.
pub(super) async fn decide(
    web: &Web,
    key: &str,
    upload: &Upload,
    expect: Expect,
    back: &str,
) -> Result<ResponseFileRecord, WebError> {
    let refuse = |status: StatusCode, code: &str, detail: String| {
        WebError::new(status, code, detail).back(back, "Back")
    };
    let Some(file) = &upload.bytes else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "WRONG_FILE",
            "choose a request file to upload".to_owned(),
        ));
    };
    if file.is_empty() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "WRONG_FILE",
            "the file is empty".to_owned(),
        ));
    }
    if file.len() > MAX_FILE_BYTES {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!(
                "the file has {} bytes; a request file has at most {MAX_FILE_BYTES}",
                file.len()
            ),
        ));
    }
    let limited =
        |limit: crate::ratelimit::Limited| WebError::from(AppError::from(limit)).back(back, "Back");
    let step = match ExchangeStep::parse(file) {
        Ok(step) => step,
        Err(error) => {
            // As on the API: a file that does not parse costs the address one attempt.
            web.state
                .limiter
                .attempt(&web.peer.0, None)
                .map_err(limited)?;
            // Say what is wrong with the file as the kind this form takes.
            let expected = match expect {
                Expect::Activation => ActivationRequest::from_xml(file).err(),
                Expect::Return => ReturnRequest::from_xml(file).err(),
            };
            let error = match (error, expected) {
                (ServiceError::Exchange { code, .. }, Some(expected))
                    if expected.code() == code =>
                {
                    ServiceError::Exchange {
                        code,
                        message: expected.to_string(),
                    }
                }
                (error, _) => error,
            };
            return Err(WebError::from(error).back(back, "Back"));
        }
    };
    match (&step, expect) {
        (ExchangeStep::Activation(..), Expect::Activation)
        | (ExchangeStep::Return(..), Expect::Return) => {}
        (ExchangeStep::Return(..), Expect::Activation) => return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "WRONG_FILE",
            "this is a return request file: upload it under License Management, Return the license"
                .to_owned(),
        )),
        (ExchangeStep::Activation(..), Expect::Return) => {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "WRONG_FILE",
                "this is an activation request file: upload it on the Activation tab".to_owned(),
            ))
        }
    }
    if step.license_key() != key {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "WRONG_LICENSE",
            "sign in with the license key the file names to upload it".to_owned(),
        ));
    }
    web.state
        .limiter
        .attempt(&web.peer.0, Some(key))
        .map_err(limited)?;
    let label = Caller::EndUser.label(&web.peer);
    let outcome = web
        .state
        .licensing
        .answer_exchange(step.clone(), label)
        .await
        .map_err(|error| WebError::from(error).back(back, "Back"))?;
    if outcome.decision.code == Code::LicenseNotFound {
        web.state.limiter.penalize(&web.peer.0);
    }
    if !outcome.decision.is_allowed() {
        return Err(WebError::from(AppError::denied(&outcome.decision)).back(back, "Back"));
    }
    let file = outcome
        .response_file
        .ok_or_else(|| WebError::internal("no response file was made"))?;
    let is_return = expect == Expect::Return;
    Ok(ResponseFileRecord {
        id: 0,
        license_key: key.to_owned(),
        kind: if is_return { "return" } else { "activation" }.to_owned(),
        name: response_name(upload.name.as_deref(), is_return),
        file,
        created_at: web.now(),
    })
}

/// Keeps a response file for the license's License Management tab; the record with its id.
pub(super) async fn keep(
    web: &Web,
    mut record: ResponseFileRecord,
) -> Result<ResponseFileRecord, WebError> {
    record.id = web
        .state
        .licensing
        .keep_response_file(record.clone())
        .await?;
    Ok(record)
}

/// `POST /service/activation`: an activation request file; answers the Activation tab with the
/// response file to download.
pub async fn activation_upload(
    web: Web,
    transports: super::text::Transports,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let (session, key) = signed_in_key(&web)?;
    let upload = read_upload(multipart, "/service/activation").await?;
    web.check_csrf(&session, upload.csrf.as_deref())?;
    let record = super::files::decide_any_upload(
        &web,
        &transports,
        &key,
        &upload,
        Expect::Activation,
        "/service/activation",
    )
    .await?;
    let session = session.rotated(web.now())?;
    let ready = ResponseLink::of(&record);
    Ok(web.page(
        &session,
        &ActivationPage {
            page: Page::new("Activation", &session, "/service/activation").with_notice(Some(
                Notice::ok(
                    "ACTIVATED",
                    "The license is activated for that computer. Download the response file and load it there.",
                    "",
                ),
            )),
            ready: Some(ready),
            text: super::text::text_plugin(&transports).is_some(),
            answer: None,
            carried: super::files::carries(&transports),
            max_kib: MAX_FILE_BYTES / 1024,
        },
    ))
}

/// `POST /service/return`: a return request file; answers License Management with the return
/// response file to download.
pub async fn return_upload(
    web: Web,
    transports: super::text::Transports,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let (session, key) = signed_in_key(&web)?;
    let upload = read_upload(multipart, "/service/licenses").await?;
    web.check_csrf(&session, upload.csrf.as_deref())?;
    let record = super::files::decide_any_upload(
        &web,
        &transports,
        &key,
        &upload,
        Expect::Return,
        "/service/licenses",
    )
    .await?;
    let session = session.rotated(web.now())?;
    let ready = ResponseLink::of(&record);
    licenses_view(
        &web,
        &transports,
        &session,
        &key,
        Some(Notice::ok(
            "RETURNED",
            "The license is returned. Download the return response file and load it on that computer; the key can then be activated elsewhere.",
            "",
        )),
        Some(ready),
    )
    .await
}

/// `GET /service/responses/{id}`: downloads one of the signed-in license's response files.
pub async fn download(web: Web, Path(id): Path<String>) -> Result<Response, WebError> {
    let (session, key) = signed_in_key(&web)?;
    let not_found = || {
        WebError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no response file of this license has that number",
        )
        .back("/service/licenses", "License Management")
    };
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let record = web
        .state
        .licensing
        .response_files(&key)
        .await?
        .into_iter()
        .find(|record| record.id == id)
        .ok_or_else(not_found)?;
    // A response file a transport framed is that plugin's text, not XML.
    let content_type = if record.name.ends_with(".xml") {
        "application/xml; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = record.file.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", record.name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(web.respond(&session, response))
}
