//! The client interface (`/client`, standard model): a client account signs in with its password
//! (argon2-hashed, set by an administrator) or its client token, sees its orders and licenses with
//! features, counters, activations and expiry, and removes activations where the policy lets end
//! users remove (decided by the engine as the client, exactly like
//! `DELETE /v1/client/licenses/{key}/activations/{id}`).

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use licet_engine::policy::Method;
use licet_engine::{Action, Code};
use serde::Deserialize;

use super::service::CsrfOnly;
use super::view::LicenseView;
use super::{Area, Notice, Page, Session, SessionState, Web, WebActor, WebError, WebForm};
use crate::api::error::AppError;
use crate::api::extract::Caller;
use crate::service::{binding_as_machine, RequestContext};
use crate::store::{LicenseFilter, OrderRecord, TokenOwner};

/// The password sign-in form.
#[derive(Debug, Clone, Deserialize)]
pub struct PasswordLogin {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// The client identifier.
    #[serde(default)]
    pub client: String,
    /// The password.
    #[serde(default)]
    pub password: String,
}

/// The token sign-in form.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenLogin {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// The token.
    #[serde(default)]
    pub token: String,
}

/// A form naming an activation.
#[derive(Debug, Clone, Deserialize)]
pub struct ActivationForm {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
    /// The activation's identifier.
    #[serde(default)]
    pub activation: String,
}

#[derive(Template)]
#[template(path = "client_login.html")]
struct LoginPage {
    page: Page,
    client: String,
}

/// An order as the client sees it.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Identifier.
    pub id: String,
    /// Product.
    pub product: String,
    /// Order-level features and counters.
    pub settings: String,
    /// When it was created.
    pub created: String,
}

impl OrderRow {
    /// The row of an order.
    pub fn of(order: &OrderRecord) -> OrderRow {
        let mut settings: Vec<String> = order
            .order
            .features
            .iter()
            .map(|(name, on)| format!("{name}: {}", if *on { "on" } else { "off" }))
            .collect();
        settings.extend(
            order
                .order
                .counters
                .iter()
                .map(|(name, value)| format!("{name} = {value}")),
        );
        OrderRow {
            id: order.order.id.clone(),
            product: order.product.clone(),
            settings: settings.join(", "),
            created: super::time(&order.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "client_home.html")]
struct HomePage {
    page: Page,
    orders: Vec<OrderRow>,
    licenses: Vec<(LicenseView, usize)>,
}

#[derive(Template)]
#[template(path = "client_license.html")]
struct LicensePage {
    page: Page,
    license: LicenseView,
}

fn signed_in_client(web: &Web) -> Result<(Session, String), WebError> {
    let session = web.signed_in(Area::Client)?;
    match &session.actor {
        WebActor::Client(id) => {
            let id = id.clone();
            Ok((session, id))
        }
        _ => Err(WebError::new(
            StatusCode::UNAUTHORIZED,
            "SESSION_INVALID",
            "the session is not a client's",
        )
        .back(Area::Client.login(), "Sign in")),
    }
}

fn login_session(web: &Web) -> Result<Session, WebError> {
    match web.session(Area::Client) {
        SessionState::Valid(session) => Ok(session),
        _ => Err(WebError::new(
            StatusCode::FORBIDDEN,
            "CSRF_MISSING",
            "the sign-in form came without its session cookie; cookies must be enabled",
        )
        .back(Area::Client.login(), "Open the sign-in page again")),
    }
}

fn refused_login(
    web: &Web,
    session: &Session,
    client: &str,
    code: &str,
    detail: &str,
) -> Result<Response, WebError> {
    let session = session.rotated(web.now())?;
    Ok(web.page_with_status(
        StatusCode::UNAUTHORIZED,
        &session,
        &LoginPage {
            page: Page::new("Client sign-in", &session, "")
                .with_notice(Some(Notice::refused(code, detail))),
            client: client.to_owned(),
        },
    ))
}

fn rate_limited(limit: crate::ratelimit::Limited) -> WebError {
    WebError::from(AppError::from(limit)).back(Area::Client.login(), "Sign in")
}

/// `GET /client/login`.
pub async fn login_page(web: Web) -> Result<Response, WebError> {
    let session = web.sign_in_session(Area::Client)?;
    if session.actor != WebActor::Anonymous {
        return Ok(Redirect::to("/client").into_response());
    }
    Ok(web.page(
        &session,
        &LoginPage {
            page: Page::new("Client sign-in", &session, ""),
            client: String::new(),
        },
    ))
}

/// `POST /client/login`: client identifier and password. Attempts cost the address and the
/// client one token each, like activation attempts; a wrong password costs the address one more.
pub async fn login(web: Web, WebForm(form): WebForm<PasswordLogin>) -> Result<Response, WebError> {
    let session = login_session(&web)?;
    web.check_csrf(&session, form.csrf.as_deref())?;
    let client = form.client.trim().to_owned();
    if client.is_empty() || client.len() > 128 || form.password.is_empty() {
        return refused_login(
            &web,
            &session,
            &client,
            "BAD_CREDENTIALS",
            "enter your client identifier and password",
        );
    }
    web.state
        .limiter
        .attempt(&web.peer.0, Some(&format!("client:{client}")))
        .map_err(rate_limited)?;
    if web
        .state
        .licensing
        .verify_client_password(&client, &form.password)
        .await?
    {
        web.sign_in(Area::Client, WebActor::Client(client), "/client")
    } else {
        web.state.limiter.penalize(&web.peer.0);
        refused_login(
            &web,
            &session,
            &client,
            "BAD_CREDENTIALS",
            "the client identifier or the password is wrong",
        )
    }
}

/// `POST /client/login-token`: a client token (as for the `/v1/client` API).
pub async fn login_token(
    web: Web,
    WebForm(form): WebForm<TokenLogin>,
) -> Result<Response, WebError> {
    let session = login_session(&web)?;
    web.check_csrf(&session, form.csrf.as_deref())?;
    let token = form.token.trim();
    web.state.limiter.check(&web.peer.0).map_err(rate_limited)?;
    if token.is_empty() || token.len() > 256 {
        return refused_login(
            &web,
            &session,
            "",
            "BAD_CREDENTIALS",
            "paste the client token",
        );
    }
    match web.state.licensing.token_owner(token).await? {
        Some(TokenOwner::Client(id)) => web.sign_in(Area::Client, WebActor::Client(id), "/client"),
        Some(TokenOwner::Administrator(_)) => refused_login(
            &web,
            &session,
            "",
            "BAD_CREDENTIALS",
            "this is an administrator token: administrators sign in under /admin",
        ),
        None => {
            web.state.limiter.penalize(&web.peer.0);
            refused_login(
                &web,
                &session,
                "",
                "BAD_CREDENTIALS",
                "the token is not valid",
            )
        }
    }
}

/// `POST /client/logout`.
pub async fn logout(web: Web, WebForm(form): WebForm<CsrfOnly>) -> Result<Response, WebError> {
    web.sign_out(Area::Client, form.csrf.as_deref())
}

/// `GET /client`: the client's orders and licenses.
pub async fn home(web: Web) -> Result<Response, WebError> {
    let (session, client) = signed_in_client(&web)?;
    let licensing = &web.state.licensing;
    let orders = licensing
        .orders_page(
            Some(&client),
            &crate::listing::PageRequest {
                limit: crate::listing::MAX_LIMIT,
                after: None,
            },
        )
        .await?
        .items;
    let records = licensing
        .licenses(LicenseFilter {
            client: Some(client.clone()),
            limit: 1000,
            ..LicenseFilter::default()
        })
        .await?;
    let counts = licensing
        .activation_counts(records.iter().map(|r| r.license.key.clone()).collect())
        .await?;
    let now = web.now();
    let licenses = records
        .iter()
        .map(|record| {
            let policy = licensing.policies().get(&record.license.product);
            let order = record
                .order
                .as_ref()
                .and_then(|id| orders.iter().find(|order| &order.order.id == id));
            (
                LicenseView::of(policy.map(AsRef::as_ref), record, order, now),
                counts.get(&record.license.key).copied().unwrap_or(0),
            )
        })
        .collect();
    Ok(web.page(
        &session,
        &HomePage {
            page: Page::new(
                format!("Orders and licenses of {client}"),
                &session,
                "/client",
            ),
            orders: orders.iter().map(OrderRow::of).collect(),
            licenses,
        },
    ))
}

fn not_owner(client: &str, key: &str) -> WebError {
    WebError::from(AppError::Denied {
        code: Code::AccessDenied,
        rule: "access.owner".into(),
        message: format!("client `{client}` does not own license `{key}`"),
    })
    .back("/client", "Orders and licenses")
}

async fn license_view(
    web: &Web,
    session: &Session,
    client: &str,
    key: &str,
    notice: Option<Notice>,
) -> Result<Response, WebError> {
    let licensing = &web.state.licensing;
    let detail = licensing
        .license_detail(key)
        .await
        .map_err(|_| not_owner(client, key))?;
    if detail.owner.as_deref() != Some(client) {
        return Err(not_owner(client, key));
    }
    let policy = licensing
        .policies()
        .get(&detail.record.license.product)
        .cloned();
    let order = match &detail.record.order {
        Some(order) => licensing.order(order).await.ok(),
        None => None,
    };
    let license = LicenseView::detail(policy.as_deref(), &detail, order.as_ref(), web.now());
    Ok(web.page(
        session,
        &LicensePage {
            page: Page::new(format!("License {key}"), session, "").with_notice(notice),
            license,
        },
    ))
}

/// `GET /client/licenses/{key}`: one of the client's licenses; another client's is refused.
pub async fn license_page(web: Web, Path(key): Path<String>) -> Result<Response, WebError> {
    let (session, client) = signed_in_client(&web)?;
    license_view(&web, &session, &client, &key, None).await
}

/// `POST /client/licenses/{key}/remove`: removes an activation of the client's license, decided
/// by the engine for the client (the policy may forbid it: `REMOVAL_FORBIDDEN`).
pub async fn remove_activation(
    web: Web,
    Path(key): Path<String>,
    WebForm(form): WebForm<ActivationForm>,
) -> Result<Response, WebError> {
    let (session, client) = signed_in_client(&web)?;
    web.check_csrf(&session, form.csrf.as_deref())?;
    let licensing = &web.state.licensing;
    let detail = licensing
        .license_detail(&key)
        .await
        .map_err(|_| not_owner(&client, &key))?;
    if detail.owner.as_deref() != Some(client.as_str()) {
        return Err(not_owner(&client, &key));
    }
    let back = format!("/client/licenses/{}", super::segment(&key));
    let activation = form
        .activation
        .parse::<i64>()
        .ok()
        .and_then(|id| detail.activations.iter().find(|a| a.id == id))
        .ok_or_else(|| {
            WebError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("license `{key}` has no such activation"),
            )
            .back(back.clone(), "Back to the license")
        })?;
    let (machine, dongle) = binding_as_machine(&activation.activation.binding);
    let caller = Caller::Client(client.clone());
    let context = RequestContext {
        actor_label: caller.label(&web.peer),
        client_dongle: dongle,
        product: None,
        server_key: None,
    };
    let outcome = licensing
        .decide(
            caller.actor(),
            Action::Return {
                key: key.clone(),
                machine,
                method: Method::Online,
                // A client account removes one of its own activations without the machine.
                certificate_serial: None,
            },
            context,
        )
        .await?;
    let session = session.rotated(web.now())?;
    let notice = if outcome.decision.is_allowed() {
        Notice::ok(
            outcome.decision.code.as_str(),
            "The activation is removed; the license can be activated on another computer.",
            outcome.decision.message.clone(),
        )
    } else {
        Notice::refused(
            outcome.decision.code.as_str(),
            outcome.decision.message.clone(),
        )
    };
    license_view(&web, &session, &client, &key, Some(notice)).await
}
