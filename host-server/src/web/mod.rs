//! The web pages: the online service center for end users (`/service`), the client interface
//! (`/client`) and the administrator interface (`/admin`).
//!
//! Pages are rendered on the server from askama templates (`host-server/templates/`, checked at
//! compile time, HTML-escaped by default) and work without JavaScript. Sessions are stateless
//! signed cookies ([`session`]); every form carries the session's CSRF token, checked on every
//! POST. Every action goes through the same [`crate::service::Licensing`] calls as the JSON API:
//! the engine decides and the audit log records exactly as it does for API requests.

use licet_engine::report::Report as _;
pub mod admin;
pub mod client;
pub mod data;
pub mod files;
pub mod plain;
pub mod service;
pub mod session;
pub mod text;
pub mod usage;
pub mod view;

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::api::error::{AppError, Failure};
use crate::api::extract::Peer;
use crate::api::AppState;
use crate::listener::ArrivedOverTls;
use crate::service::ServiceError;
pub use session::{Area, Session, SessionState, WebActor, WebSecret};

/// The style sheet every page links (no inline styles, so the content security policy can forbid
/// them).
const STYLE: &str = include_str!("../../templates/style.css");

/// The web routes, merged into the API router by [`crate::api::router`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/web/style.css", get(style))
        .route("/service", get(service::home))
        .route(
            "/service/login",
            get(service::login_page).post(service::login),
        )
        .route("/service/logout", post(service::logout))
        .route(
            "/service/activation",
            get(service::activation_page).post(service::activation_upload),
        )
        .route("/service/activation/text", post(text::activation_text))
        .route("/service/licenses", get(service::licenses_page))
        .route("/service/return", post(service::return_upload))
        .route("/service/responses/{id}", get(service::download))
        .route("/client", get(client::home))
        .route("/client/login", get(client::login_page).post(client::login))
        .route("/client/login-token", post(client::login_token))
        .route("/client/logout", post(client::logout))
        .route("/client/licenses/{key}", get(client::license_page))
        .route(
            "/client/licenses/{key}/remove",
            post(client::remove_activation),
        )
        .route("/admin", get(admin::home))
        .route("/admin/login", get(admin::login_page).post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin/products", get(admin::products))
        .route(
            "/admin/clients",
            get(admin::clients).post(admin::create_client),
        )
        .route("/admin/clients/{id}/password", post(admin::set_password))
        .route("/admin/clients/{id}/token", post(admin::rotate_token))
        .route(
            "/admin/orders",
            get(admin::orders).post(admin::create_order),
        )
        .route(
            "/admin/orders/{id}",
            get(admin::order_page).post(admin::update_order),
        )
        .route("/admin/licenses", get(admin::licenses).post(admin::issue))
        .route("/admin/licenses/new", get(admin::issue_page))
        .route("/admin/licenses/{key}", get(admin::license_page))
        .route("/admin/licenses/{key}/extend", post(admin::extend))
        .route("/admin/licenses/{key}/revoke", post(admin::revoke))
        .route(
            "/admin/licenses/{key}/remove",
            post(admin::remove_activation),
        )
        .route("/admin/licenses/{key}/release", post(admin::release_seat))
        .route("/admin/serials", get(admin::serials))
        .route("/admin/seats", get(admin::seats))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/usage", get(admin::usage))
        .layer(middleware::from_fn(security_headers))
}

/// Headers of every web page: no caching, no framing, no scripts, no inline styles.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn style() -> Response {
    let mut response = STYLE.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    page: Page,
}

async fn index() -> Result<Html<String>, WebError> {
    render(&IndexPage {
        page: Page::bare("Licet", None),
    })
}

/// A link of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// Whether it is the page shown.
    pub current: bool,
}

/// A message above a page's content: the outcome of the form just sent.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `ok` or `error`.
    pub kind: &'static str,
    /// The engine or page code, when any.
    pub code: String,
    /// Plain words.
    pub text: String,
    /// The engine's sentence, when any.
    pub detail: String,
}

impl Notice {
    /// A success.
    pub fn ok(code: &str, text: impl Into<String>, detail: impl Into<String>) -> Notice {
        Notice {
            kind: "ok",
            code: code.to_owned(),
            text: text.into(),
            detail: detail.into(),
        }
    }

    /// A refusal, in plain words with its code.
    pub fn refused(code: &str, detail: impl Into<String>) -> Notice {
        Notice {
            kind: "error",
            code: code.to_owned(),
            text: plain::explain(code).to_owned(),
            detail: detail.into(),
        }
    }
}

/// What the layout of every page shows.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's heading and title.
    pub title: String,
    /// The area's name.
    pub area_name: &'static str,
    /// Where the logout form posts, when signed in.
    pub logout: Option<&'static str>,
    /// The navigation bar.
    pub nav: Vec<NavLink>,
    /// Who is signed in.
    pub who: Option<String>,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// The outcome of the form just sent.
    pub notice: Option<Notice>,
}

impl Page {
    /// A page outside any session.
    pub fn bare(title: &str, area: Option<Area>) -> Page {
        Page {
            title: title.to_owned(),
            area_name: area.map_or("", Area::name),
            logout: None,
            nav: Vec::new(),
            who: None,
            csrf: String::new(),
            notice: None,
        }
    }

    /// A page of `session`'s area; `current` is the path of the page shown.
    pub fn new(title: impl Into<String>, session: &Session, current: &str) -> Page {
        let area = session.area;
        let links: &[(&'static str, &'static str)] = match area {
            Area::Service => &[
                ("/service/activation", "Activation"),
                ("/service/licenses", "License Management"),
            ],
            Area::Client => &[("/client", "Orders and licenses")],
            Area::Admin => &[
                ("/admin", "Overview"),
                ("/admin/products", "Products"),
                ("/admin/clients", "Clients"),
                ("/admin/orders", "Orders"),
                ("/admin/licenses", "Licenses"),
                ("/admin/serials", "Web serials"),
                ("/admin/seats", "Seats"),
                ("/admin/audit", "Audit log"),
                ("/admin/usage", "Usage"),
            ],
        };
        let who = match &session.actor {
            WebActor::Anonymous => None,
            WebActor::EndUser(key) => Some(format!("license {key}")),
            WebActor::Client(id) => Some(format!("client {id}")),
            WebActor::Administrator(name) => Some(format!("administrator {name}")),
        };
        let signed_in = who.is_some();
        Page {
            title: title.into(),
            area_name: area.name(),
            logout: signed_in.then_some(match area {
                Area::Service => "/service/logout",
                Area::Client => "/client/logout",
                Area::Admin => "/admin/logout",
            }),
            nav: if signed_in {
                links
                    .iter()
                    .map(|(href, label)| NavLink {
                        href,
                        label,
                        current: *href == current,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            who,
            csrf: session.csrf.clone(),
            notice: None,
        }
    }

    /// The same page with a notice.
    pub fn with_notice(mut self, notice: Option<Notice>) -> Page {
        self.notice = notice;
        self
    }
}

/// Renders a template.
pub fn render<T: Template>(template: &T) -> Result<Html<String>, WebError> {
    template
        .render()
        .map(Html)
        .map_err(|error| WebError::internal(format!("the page could not be rendered: {error}")))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Page,
    status: u16,
    code: String,
    explanation: String,
    detail: String,
    back: String,
    back_label: String,
}

/// A refusal shown as a page: plain words, the code, and a way back. Nothing was changed.
#[derive(Debug)]
pub struct WebError(Box<Refusal>);

#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: String,
    detail: String,
    back: String,
    back_label: String,
    clear: Option<Area>,
    redirect: Option<String>,
    /// What is logged and not shown: the cause of a failure the server is to blame for.
    failure: Option<Failure>,
}

impl WebError {
    /// A refusal with `status` and `code`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> WebError {
        WebError(Box::new(Refusal {
            status,
            code: code.to_owned(),
            detail: detail.into(),
            back: "/".to_owned(),
            back_label: "Start page".to_owned(),
            clear: None,
            redirect: None,
            failure: None,
        }))
    }

    /// Something that should not happen: the page says so, `cause` is logged.
    pub fn internal(cause: impl Into<String>) -> WebError {
        let mut error = WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "the server failed to answer; the failure is logged",
        );
        error.0.failure = Some(Failure(format!("internal error: {}", cause.into())));
        error
    }

    /// A form that could not be read.
    pub fn bad_form(detail: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, "INVALID_BODY", detail)
    }

    /// The page's way back.
    pub fn back(mut self, href: impl Into<String>, label: impl Into<String>) -> WebError {
        self.0.back = href.into();
        self.0.back_label = label.into();
        self
    }

    /// The code shown.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    fn sign_in(area: Area, code: &str, detail: &str, clear: bool) -> WebError {
        let mut error =
            WebError::new(StatusCode::UNAUTHORIZED, code, detail).back(area.login(), "Sign in");
        error.0.clear = clear.then_some(area);
        error
    }

    fn to_login(area: Area) -> WebError {
        let mut error = WebError::new(StatusCode::SEE_OTHER, "SIGN_IN_REQUIRED", "");
        error.0.redirect = Some(area.login().to_owned());
        error
    }
}

impl From<AppError> for WebError {
    fn from(error: AppError) -> Self {
        let (status, body) = error.parts();
        let mut refusal = WebError::new(status, &body.code, body.message);
        refusal.0.failure = error.failure();
        refusal
    }
}

impl From<ServiceError> for WebError {
    fn from(error: ServiceError) -> Self {
        AppError::from(error).into()
    }
}

impl From<session::RandomFailed> for WebError {
    fn from(error: session::RandomFailed) -> Self {
        WebError::internal(error.report())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let refusal = *self.0;
        if let Some(location) = &refusal.redirect {
            return Redirect::to(location).into_response();
        }
        let page = ErrorPage {
            page: Page::bare("Not done", None),
            status: refusal.status.as_u16(),
            explanation: plain::explain(&refusal.code).to_owned(),
            code: refusal.code,
            detail: refusal.detail,
            back: refusal.back,
            back_label: refusal.back_label,
        };
        let mut response = match page.render() {
            Ok(html) => (refusal.status, Html(html)).into_response(),
            Err(_) => (refusal.status, "the request was refused").into_response(),
        };
        if let Some(area) = refusal.clear {
            session::push_cookie(response.headers_mut(), session::clear_cookie(area, false));
        }
        if let Some(failure) = refusal.failure {
            response.extensions_mut().insert(failure);
        }
        response
    }
}

/// What every web handler gets: the shared state, the caller's address and the request headers.
#[derive(Debug, Clone)]
pub struct Web {
    /// The shared state.
    pub state: AppState,
    /// The caller's network address.
    pub peer: Peer,
    headers: HeaderMap,
    /// Whether the page came over TLS (directly, or through a proxy saying so).
    pub secure: bool,
    get: bool,
}

impl FromRequestParts<AppState> for Web {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = Peer::from_request_parts(parts, state)
            .await
            .map_err(WebError::from)?;
        let forwarded_https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("https"));
        let secure = parts.extensions.get::<ArrivedOverTls>().is_some()
            || parts.uri.scheme_str() == Some("https")
            || forwarded_https;
        Ok(Web {
            state: state.clone(),
            peer,
            headers: parts.headers.clone(),
            secure,
            get: parts.method == axum::http::Method::GET,
        })
    }
}

impl Web {
    /// The time now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.licensing.now()
    }

    /// The session the request carries for `area`.
    pub fn session(&self, area: Area) -> SessionState {
        session::read(&self.headers, area, &self.state.web, self.now())
    }

    /// The signed-in session of `area`: a page asked for without one goes to the sign-in page; a
    /// form sent without one, or with a forged or ended one, is refused.
    pub fn signed_in(&self, area: Area) -> Result<Session, WebError> {
        match self.session(area) {
            SessionState::Valid(session) if session.actor != WebActor::Anonymous => Ok(session),
            SessionState::Valid(_) | SessionState::Missing if self.get => {
                Err(WebError::to_login(area))
            }
            SessionState::Valid(_) | SessionState::Missing => Err(WebError::sign_in(
                area,
                "SIGN_IN_REQUIRED",
                "the form was sent without a signed-in session",
                false,
            )),
            SessionState::Expired => Err(WebError::sign_in(
                area,
                "SESSION_EXPIRED",
                "the session ended",
                true,
            )),
            SessionState::Invalid => Err(WebError::sign_in(
                area,
                "SESSION_INVALID",
                "the session cookie is not one this server made",
                true,
            )),
        }
    }

    /// The session of a sign-in page: the running one, or a new anonymous one.
    pub fn sign_in_session(&self, area: Area) -> Result<Session, WebError> {
        match self.session(area) {
            SessionState::Valid(session) => Ok(session),
            _ => Ok(Session::start(area, WebActor::Anonymous, self.now())?),
        }
    }

    /// Checks the CSRF token of a form sent in `session`.
    pub fn check_csrf(&self, session: &Session, token: Option<&str>) -> Result<(), WebError> {
        let back = match session.actor {
            WebActor::Anonymous => session.area.login(),
            _ => session.area.path(),
        };
        match token {
            None | Some("") => Err(WebError::new(
                StatusCode::FORBIDDEN,
                "CSRF_MISSING",
                "the form has no CSRF token",
            )
            .back(back, "Open the page again")),
            Some(token) if session.csrf_matches(token) => Ok(()),
            Some(_) => Err(WebError::new(
                StatusCode::FORBIDDEN,
                "CSRF_MISMATCH",
                "the form's CSRF token is not this session's current one",
            )
            .back(back, "Open the page again")),
        }
    }

    /// The signed-in session of `area` and a form's accepted CSRF token: the session to answer
    /// with (its CSRF secret renewed, so the form cannot be sent again).
    pub fn accept_form(&self, area: Area, token: Option<&str>) -> Result<Session, WebError> {
        let session = self.signed_in(area)?;
        self.check_csrf(&session, token)?;
        Ok(session.rotated(self.now())?)
    }

    /// Answers `body` with `session`'s cookie (kept alive).
    pub fn respond(&self, session: &Session, body: impl IntoResponse) -> Response {
        let now = self.now();
        let session = session.touched(now);
        let mut response = body.into_response();
        session::push_cookie(
            response.headers_mut(),
            session.set_cookie(&self.state.web, now, self.secure),
        );
        response
    }

    /// Renders `template` with `session`'s cookie.
    pub fn page<T: Template>(&self, session: &Session, template: &T) -> Response {
        match render(template) {
            Ok(html) => self.respond(session, html),
            Err(error) => error.into_response(),
        }
    }

    /// Renders `template` with `status` and `session`'s cookie.
    pub fn page_with_status<T: Template>(
        &self,
        status: StatusCode,
        session: &Session,
        template: &T,
    ) -> Response {
        match render(template) {
            Ok(html) => self.respond(session, (status, html)),
            Err(error) => error.into_response(),
        }
    }

    /// Signs out of `area`: removes its cookie and goes to its sign-in page.
    pub fn sign_out(&self, area: Area, token: Option<&str>) -> Result<Response, WebError> {
        let session = self.signed_in(area)?;
        self.check_csrf(&session, token)?;
        let mut response = Redirect::to(area.login()).into_response();
        session::push_cookie(
            response.headers_mut(),
            session::clear_cookie(area, self.secure),
        );
        Ok(response)
    }

    /// Starts a signed-in session of `area` for `actor` and goes to `to`.
    pub fn sign_in(&self, area: Area, actor: WebActor, to: &str) -> Result<Response, WebError> {
        let now = self.now();
        let session = Session::start(area, actor, now)?;
        let mut response = Redirect::to(to).into_response();
        session::push_cookie(
            response.headers_mut(),
            session.set_cookie(&self.state.web, now, self.secure),
        );
        Ok(response)
    }
}

/// An URL-encoded form; one that cannot be read is an error page.
#[derive(Debug, Clone)]
pub struct WebForm<T>(pub T);

impl<S, T> FromRequest<S> for WebForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(WebForm(value)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => WebError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    "the form is too large",
                ),
                _ => WebError::bad_form(rejection.body_text()),
            }),
        }
    }
}

/// A date as pages show it.
pub fn day(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// A time as pages show it.
pub fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
