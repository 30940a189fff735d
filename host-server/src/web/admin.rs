//! The administrator interface (`/admin`): products with their default features and counters;
//! clients (with their password and token), orders and licenses (issue, edit features and
//! counters, extend, revoke, remove activations); web serials with their activation counts;
//! seats held and borrowed with force-release; the audit log searched by key, client and code;
//! usage. Administrators sign in with an administrator token. Every change is the same
//! [`crate::service::Licensing`] call as the matching `/v1/admin` route: extension, revocation,
//! removal and release are engine decisions, audited like any other.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use licet_engine::policy::{Method, Model};
use licet_engine::state::Term;
use licet_engine::{Action, Decision};
use serde::Deserialize;

use super::client::OrderRow;
use super::service::CsrfOnly;
use super::usage::{self, UsageReport};
use super::view::{kind_label, LicenseView, SeatRow};
use super::{
    segment, time, Area, Notice, Page, Session, SessionState, Web, WebActor, WebError, WebForm,
};
use crate::admin::{NewLicenses, NewOrder};
use crate::api::error::AppError;
use crate::api::extract::Caller;
use crate::keys::token_hash;
use crate::listing::{PageRequest, MAX_LIMIT};
use crate::service::{binding_as_machine, is_web_model, RequestContext, ServiceError};
use crate::store::{AuditEntry, AuditSearch, ClientRecord, LicenseFilter, TokenOwner};

/// A form of fields by name (features and counters have one field each).
type Fields = Vec<(String, String)>;

/// Features and counters a form sets.
type Settings = (BTreeMap<String, bool>, BTreeMap<String, i64>);

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn text(fields: &Fields, name: &str) -> Option<String> {
    field(fields, name)
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// The features (`feature.NAME` = `on`/`off`, `keep` or absent leaves it) and counters
/// (`counter.NAME` = a number, empty leaves it) a form sets.
fn settings(fields: &Fields) -> Result<Settings, WebError> {
    let mut features = BTreeMap::new();
    let mut counters = BTreeMap::new();
    for (name, value) in fields {
        if let Some(feature) = name.strip_prefix("feature.") {
            match value.as_str() {
                "on" => {
                    features.insert(feature.to_owned(), true);
                }
                "off" => {
                    features.insert(feature.to_owned(), false);
                }
                "" | "keep" => {}
                other => {
                    return Err(WebError::bad_form(format!(
                        "feature `{feature}`: `{other}` is not on, off or keep"
                    )))
                }
            }
        } else if let Some(counter) = name.strip_prefix("counter.") {
            let value = value.trim();
            if !value.is_empty() {
                let number = value.parse::<i64>().map_err(|_| {
                    WebError::bad_form(format!(
                        "counter `{counter}`: `{value}` is not a whole number"
                    ))
                })?;
                counters.insert(counter.to_owned(), number);
            }
        }
    }
    Ok((features, counters))
}

/// The end of the day `value` (`YYYY-MM-DD`) names, in UTC.
fn end_of_day(value: &str) -> Result<DateTime<Utc>, WebError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(23, 59, 59))
        .map(|at| at.and_utc())
        .ok_or_else(|| WebError::bad_form(format!("`{value}` is not a date (YYYY-MM-DD)")))
}

fn signed_in_admin(web: &Web) -> Result<(Session, String), WebError> {
    let session = web.signed_in(Area::Admin)?;
    match &session.actor {
        WebActor::Administrator(name) => {
            let name = name.clone();
            Ok((session, name))
        }
        _ => Err(WebError::new(
            StatusCode::UNAUTHORIZED,
            "SESSION_INVALID",
            "the session is not an administrator's",
        )
        .back(Area::Admin.login(), "Sign in")),
    }
}

/// A signed-in administrator's accepted form: the rotated session, the name, the fields.
fn accept(web: &Web, fields: &Fields) -> Result<(Session, String), WebError> {
    let (session, name) = signed_in_admin(web)?;
    web.check_csrf(&session, field(fields, "csrf"))?;
    Ok((session.rotated(web.now())?, name))
}

fn actor_label(web: &Web, name: &str) -> String {
    Caller::Administrator(name.to_owned()).label(&web.peer)
}

fn decision_notice(decision: &Decision, done: &str) -> Notice {
    if decision.is_allowed() {
        Notice::ok(decision.code.as_str(), done, decision.message.clone())
    } else {
        Notice::refused(decision.code.as_str(), decision.message.clone())
    }
}

fn service_notice(error: ServiceError) -> Notice {
    let (_, body) = AppError::from(error).parts();
    Notice::refused(&body.code, body.message)
}

// ---- sign-in ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    page: Page,
}

/// `GET /admin/login`.
pub async fn login_page(web: Web) -> Result<Response, WebError> {
    let session = web.sign_in_session(Area::Admin)?;
    if session.actor != WebActor::Anonymous {
        return Ok(Redirect::to("/admin").into_response());
    }
    Ok(web.page(
        &session,
        &LoginPage {
            page: Page::new("Administrator sign-in", &session, ""),
        },
    ))
}

/// `POST /admin/login`: an administrator token, checked like the API's bearer tokens (configured
/// tokens first; every unknown token costs the address one attempt).
pub async fn login(web: Web, WebForm(fields): WebForm<Fields>) -> Result<Response, WebError> {
    let session = match web.session(Area::Admin) {
        SessionState::Valid(session) => session,
        _ => {
            return Err(WebError::new(
                StatusCode::FORBIDDEN,
                "CSRF_MISSING",
                "the sign-in form came without its session cookie; cookies must be enabled",
            )
            .back(Area::Admin.login(), "Open the sign-in page again"))
        }
    };
    web.check_csrf(&session, field(&fields, "csrf"))?;
    let token = field(&fields, "token").unwrap_or("").trim().to_owned();
    let refused = |detail: &str| -> Result<Response, WebError> {
        let session = session.rotated(web.now())?;
        Ok(web.page_with_status(
            StatusCode::UNAUTHORIZED,
            &session,
            &LoginPage {
                page: Page::new("Administrator sign-in", &session, "")
                    .with_notice(Some(Notice::refused("BAD_CREDENTIALS", detail))),
            },
        ))
    };
    if token.is_empty() || token.len() > 256 {
        return refused("paste an administrator token");
    }
    if let Some(name) = web.state.admin_tokens.get(&token_hash(&token)) {
        return web.sign_in(Area::Admin, WebActor::Administrator(name.clone()), "/admin");
    }
    web.state.limiter.check(&web.peer.0).map_err(|limit| {
        WebError::from(AppError::from(limit)).back(Area::Admin.login(), "Sign in")
    })?;
    match web.state.licensing.token_owner(&token).await? {
        Some(TokenOwner::Administrator(name)) => {
            web.sign_in(Area::Admin, WebActor::Administrator(name), "/admin")
        }
        Some(TokenOwner::Client(_)) => {
            refused("this is a client token: clients sign in under /client")
        }
        None => {
            web.state.limiter.penalize(&web.peer.0);
            refused("the token is not valid")
        }
    }
}

/// `POST /admin/logout`.
pub async fn logout(web: Web, WebForm(form): WebForm<CsrfOnly>) -> Result<Response, WebError> {
    web.sign_out(Area::Admin, form.csrf.as_deref())
}

// ---- overview and products --------------------------------------------------------------------

/// An audit entry as the pages show it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Position.
    pub id: i64,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// The license.
    pub key: String,
    /// `allow` or `deny`.
    pub verdict: String,
    /// The code.
    pub code: String,
    /// The rule.
    pub rule: String,
    /// The sentence.
    pub message: String,
}

impl AuditRow {
    fn of(entry: &AuditEntry) -> AuditRow {
        AuditRow {
            id: entry.id,
            at: time(&entry.at),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            key: entry.license_key.clone().unwrap_or_default(),
            verdict: entry.verdict.clone(),
            code: entry.code.clone(),
            rule: entry.rule.clone(),
            message: entry.message.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_home.html")]
struct HomePage {
    page: Page,
    products: usize,
    clients: String,
    seats: String,
    borrowed: String,
    recent: Vec<AuditRow>,
}

/// How many rows a page counted: `1000+` when more exist.
fn counted(count: usize, more: bool) -> String {
    if more {
        format!("{count}+")
    } else {
        count.to_string()
    }
}

/// The largest page, which the overview counts and the pickers list.
fn largest_page() -> PageRequest {
    PageRequest {
        limit: MAX_LIMIT,
        after: None,
    }
}

/// `GET /admin`.
pub async fn home(web: Web) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    let licensing = &web.state.licensing;
    let seats = licensing.held_seats_page(None, &largest_page()).await?;
    let clients = licensing.clients_page(&largest_page()).await?;
    let recent = licensing
        .search_audit(AuditSearch {
            limit: 10,
            ..AuditSearch::default()
        })
        .await?;
    Ok(web.page(
        &session,
        &HomePage {
            page: Page::new("Overview", &session, "/admin"),
            products: licensing.policies().len(),
            clients: counted(clients.items.len(), clients.next.is_some()),
            borrowed: counted(
                seats.items.iter().filter(|s| s.state == "borrowed").count(),
                seats.next.is_some(),
            ),
            seats: counted(seats.items.len(), seats.next.is_some()),
            recent: recent.iter().map(AuditRow::of).collect(),
        },
    ))
}

/// A license type of a product.
#[derive(Debug, Clone)]
pub struct TypeRow {
    /// Name.
    pub name: String,
    /// Kind in words.
    pub kind: &'static str,
    /// Default seats.
    pub seats: String,
    /// Terms.
    pub terms: String,
    /// Activation methods.
    pub activation: String,
    /// Borrowing.
    pub borrowing: String,
}

/// A product as the pages show it.
#[derive(Debug, Clone)]
pub struct ProductRow {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `standard` or `web (N activations per serial)`.
    pub model: String,
    /// Editions.
    pub editions: Vec<String>,
    /// Languages.
    pub languages: String,
    /// Default features.
    pub features: Vec<(String, bool)>,
    /// Default counters.
    pub counters: Vec<(String, i64)>,
    /// License types.
    pub types: Vec<TypeRow>,
    /// Whether it uses the web model.
    pub web: bool,
}

fn methods(set: &std::collections::BTreeSet<Method>) -> String {
    set.iter()
        .map(|method| match method {
            Method::Online => "online",
            Method::Manual => "by files",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn product_rows(web: &Web) -> Vec<ProductRow> {
    web.state
        .licensing
        .policies()
        .values()
        .map(|policy| ProductRow {
            id: policy.product.id.clone(),
            name: policy.product.name.clone(),
            version: policy.product.version.clone(),
            model: match policy.model {
                Model::Standard => "standard (clients and orders)".to_owned(),
                Model::Web {
                    activations_per_serial,
                } => format!("web serials ({activations_per_serial} activations per serial)"),
            },
            editions: policy.product.editions.clone(),
            languages: policy.product.languages.join(", "),
            features: policy.product.features.clone().into_iter().collect(),
            counters: policy.product.counters.clone().into_iter().collect(),
            types: policy
                .license_types
                .iter()
                .map(|(name, t)| TypeRow {
                    name: name.clone(),
                    kind: kind_label(t.kind),
                    seats: t.default_seats.map_or_else(String::new, |s| s.to_string()),
                    terms: [(t.perpetual, "perpetual"), (t.rental, "rental")]
                        .iter()
                        .filter(|(on, _)| *on)
                        .map(|(_, name)| *name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    activation: methods(&t.activation),
                    borrowing: t
                        .borrowing
                        .map_or_else(String::new, |b| format!("up to {} days", b.max.num_days())),
                })
                .collect(),
            web: is_web_model(policy),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin_products.html")]
struct ProductsPage {
    page: Page,
    products: Vec<ProductRow>,
}

/// `GET /admin/products`.
pub async fn products(web: Web) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    Ok(web.page(
        &session,
        &ProductsPage {
            page: Page::new("Products", &session, "/admin/products"),
            products: product_rows(&web),
        },
    ))
}

// ---- clients ---------------------------------------------------------------------------------

/// A client as the page shows it.
#[derive(Debug, Clone)]
pub struct ClientRow {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Whether it has a token.
    pub has_token: bool,
    /// When it was created.
    pub created: String,
}

impl ClientRow {
    fn of(record: &ClientRecord) -> ClientRow {
        ClientRow {
            id: record.id.clone(),
            name: record.name.clone(),
            has_token: record.has_token,
            created: time(&record.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage {
    page: Page,
    clients: Vec<ClientRow>,
    token: Option<(String, String)>,
    next: Option<String>,
}

/// Query of the clients and seats pages: the next page's cursor.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AfterQuery {
    /// The previous page's last row.
    #[serde(default)]
    pub after: Option<String>,
}

fn web_page(after: Option<String>) -> PageRequest {
    PageRequest {
        limit: PAGE_SIZE,
        after: none_if_empty(after),
    }
}

async fn clients_page_view(
    web: &Web,
    session: &Session,
    after: Option<String>,
    notice: Option<Notice>,
    token: Option<(String, String)>,
) -> Result<Response, WebError> {
    let clients = web.state.licensing.clients_page(&web_page(after)).await?;
    Ok(web.page(
        session,
        &ClientsPage {
            page: Page::new("Clients", session, "/admin/clients").with_notice(notice),
            clients: clients.items.iter().map(ClientRow::of).collect(),
            token,
            next: clients.next,
        },
    ))
}

async fn clients_view(
    web: &Web,
    session: &Session,
    notice: Option<Notice>,
    token: Option<(String, String)>,
) -> Result<Response, WebError> {
    clients_page_view(web, session, None, notice, token).await
}

/// `GET /admin/clients` (`?after=`).
pub async fn clients(web: Web, Query(query): Query<AfterQuery>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    clients_page_view(&web, &session, query.after, None, None).await
}

/// `POST /admin/clients`: creates a client; its token is shown once.
pub async fn create_client(
    web: Web,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let id = text(&fields, "id").unwrap_or_default();
    let display = text(&fields, "name").unwrap_or_else(|| id.clone());
    match web
        .state
        .licensing
        .create_client(&actor_label(&web, &name), &id, &display)
        .await
    {
        Ok((client, token)) => {
            let notice = Notice::ok(
                "CREATED",
                format!(
                    "Client {} is created. Copy its token now: it is shown only once.",
                    client.id
                ),
                "",
            );
            clients_view(&web, &session, Some(notice), Some((client.id, token))).await
        }
        Err(error) => clients_view(&web, &session, Some(service_notice(error)), None).await,
    }
}

/// `POST /admin/clients/{id}/password`: sets the client's password (hashed with argon2).
pub async fn set_password(
    web: Web,
    Path(id): Path<String>,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let password = field(&fields, "password").unwrap_or("");
    let notice = match web
        .state
        .licensing
        .set_client_password(&actor_label(&web, &name), &id, Some(password))
        .await
    {
        Ok(()) => Notice::ok(
            "PASSWORD_SET",
            format!("Client {id} can now sign in with the new password."),
            "",
        ),
        Err(error) => service_notice(error),
    };
    clients_view(&web, &session, Some(notice), None).await
}

/// `POST /admin/clients/{id}/token`: gives the client a new token (shown once).
pub async fn rotate_token(
    web: Web,
    Path(id): Path<String>,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    match web
        .state
        .licensing
        .rotate_client_token(&actor_label(&web, &name), &id)
        .await
    {
        Ok(token) => {
            let notice = Notice::ok(
                "TOKEN_REPLACED",
                format!("Client {id} has a new token; the old one no longer works. Copy it now: it is shown only once."),
                "",
            );
            clients_view(&web, &session, Some(notice), Some((id, token))).await
        }
        Err(error) => clients_view(&web, &session, Some(service_notice(error)), None).await,
    }
}

// ---- orders ----------------------------------------------------------------------------------

/// Query of the order listing.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrdersQuery {
    /// Only this client's orders.
    #[serde(default)]
    pub client: Option<String>,
    /// The previous page's last order.
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_orders.html")]
struct OrdersPage {
    page: Page,
    orders: Vec<OrderRow>,
    clients: Vec<ClientRow>,
    products: Vec<ProductRow>,
    client: String,
    next: Option<String>,
}

async fn orders_view(
    web: &Web,
    session: &Session,
    query: OrdersQuery,
    notice: Option<Notice>,
) -> Result<Response, WebError> {
    let licensing = &web.state.licensing;
    let client = query.client.filter(|c| !c.is_empty());
    let orders = licensing
        .orders_page(client.as_deref(), &web_page(query.after))
        .await?;
    let clients = licensing.clients_page(&largest_page()).await?.items;
    Ok(web.page(
        session,
        &OrdersPage {
            page: Page::new("Orders", session, "/admin/orders").with_notice(notice),
            orders: orders.items.iter().map(OrderRow::of).collect(),
            next: orders.next,
            clients: clients.iter().map(ClientRow::of).collect(),
            products: product_rows(web).into_iter().filter(|p| !p.web).collect(),
            client: client.unwrap_or_default(),
        },
    ))
}

/// `GET /admin/orders` (`?client=`).
pub async fn orders(web: Web, Query(query): Query<OrdersQuery>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    orders_view(&web, &session, query, None).await
}

/// `POST /admin/orders`: creates an order.
pub async fn create_order(
    web: Web,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let (features, counters) = settings(&fields)?;
    let new = NewOrder {
        id: text(&fields, "id"),
        client: text(&fields, "client").unwrap_or_default(),
        product: text(&fields, "product").unwrap_or_default(),
        features,
        counters,
    };
    let notice = match web
        .state
        .licensing
        .create_order(&actor_label(&web, &name), new)
        .await
    {
        Ok(order) => Notice::ok(
            "CREATED",
            format!(
                "Order {} is created for client {}.",
                order.order.id, order.order.client
            ),
            "",
        ),
        Err(error) => service_notice(error),
    };
    orders_view(&web, &session, OrdersQuery::default(), Some(notice)).await
}

#[derive(Template)]
#[template(path = "admin_order.html")]
struct OrderPage {
    page: Page,
    order: OrderRow,
    client: String,
    product: String,
    features: Vec<(String, String)>,
    counters: Vec<(String, String)>,
    licenses: Vec<LicenseView>,
}

async fn order_view(
    web: &Web,
    session: &Session,
    id: &str,
    notice: Option<Notice>,
) -> Result<Response, WebError> {
    let licensing = &web.state.licensing;
    let order = licensing
        .order(id)
        .await
        .map_err(|error| WebError::from(error).back("/admin/orders", "Orders"))?;
    let policy = licensing.policies().get(&order.product).cloned();
    let features = policy
        .as_ref()
        .map(|p| {
            p.product
                .features
                .iter()
                .map(|(name, default)| {
                    let state = match order.order.features.get(name) {
                        Some(true) => "on",
                        Some(false) => "off",
                        None if *default => "default (on)",
                        None => "default (off)",
                    };
                    (name.clone(), state.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let counters = policy
        .as_ref()
        .map(|p| {
            p.product
                .counters
                .iter()
                .map(|(name, default)| {
                    let value = order
                        .order
                        .counters
                        .get(name)
                        .map_or_else(|| format!("default ({default})"), i64::to_string);
                    (name.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    let records = licensing
        .licenses(LicenseFilter {
            order: Some(id.to_owned()),
            limit: 1000,
            ..LicenseFilter::default()
        })
        .await?;
    let now = web.now();
    let licenses = records
        .iter()
        .map(|record| LicenseView::of(policy.as_deref(), record, Some(&order), now))
        .collect();
    Ok(web.page(
        session,
        &OrderPage {
            page: Page::new(format!("Order {id}"), session, "/admin/orders").with_notice(notice),
            client: order.order.client.clone(),
            product: order.product.clone(),
            order: OrderRow::of(&order),
            features,
            counters,
            licenses,
        },
    ))
}

/// `GET /admin/orders/{id}`.
pub async fn order_page(web: Web, Path(id): Path<String>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    order_view(&web, &session, &id, None).await
}

/// `POST /admin/orders/{id}`: sets order-level features and counters.
pub async fn update_order(
    web: Web,
    Path(id): Path<String>,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let (features, counters) = settings(&fields)?;
    let notice = match web
        .state
        .licensing
        .update_order(&actor_label(&web, &name), &id, features, counters)
        .await
    {
        Ok(_) => Notice::ok(
            "UPDATED",
            "The order's features and counters are changed; its licenses pick them up at their next validation.",
            "",
        ),
        Err(error) => service_notice(error),
    };
    order_view(&web, &session, &id, Some(notice)).await
}

// ---- licenses --------------------------------------------------------------------------------

/// Query of the license listing.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LicensesQuery {
    /// Only this product.
    #[serde(default)]
    pub product: Option<String>,
    /// Only this client's.
    #[serde(default)]
    pub client: Option<String>,
    /// Only this order's.
    #[serde(default)]
    pub order: Option<String>,
    /// Keys after this one.
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_licenses.html")]
struct LicensesPage {
    page: Page,
    licenses: Vec<(LicenseView, usize)>,
    products: Vec<ProductRow>,
    product: String,
    client: String,
    order: String,
    next: Option<String>,
}

const PAGE_SIZE: i64 = 100;

fn none_if_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `GET /admin/licenses` (`?product=&client=&order=&after=`).
pub async fn licenses(web: Web, Query(query): Query<LicensesQuery>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    let licensing = &web.state.licensing;
    let filter = LicenseFilter {
        product: none_if_empty(query.product),
        client: none_if_empty(query.client),
        order: none_if_empty(query.order),
        after: none_if_empty(query.after),
        limit: PAGE_SIZE,
    };
    let records = licensing.licenses(filter.clone()).await?;
    let counts = licensing
        .activation_counts(records.iter().map(|r| r.license.key.clone()).collect())
        .await?;
    let now = web.now();
    let next = (records.len() as i64 == PAGE_SIZE)
        .then(|| records.last().map(|r| r.license.key.clone()))
        .flatten();
    let licenses = records
        .iter()
        .map(|record| {
            let policy = licensing.policies().get(&record.license.product);
            (
                LicenseView::of(policy.map(AsRef::as_ref), record, None, now),
                counts.get(&record.license.key).copied().unwrap_or(0),
            )
        })
        .collect();
    Ok(web.page(
        &session,
        &LicensesPage {
            page: Page::new("Licenses", &session, "/admin/licenses"),
            licenses,
            products: product_rows(&web),
            product: filter.product.unwrap_or_default(),
            client: filter.client.unwrap_or_default(),
            order: filter.order.unwrap_or_default(),
            next,
        },
    ))
}

/// Query of the issue form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IssueQuery {
    /// The product to issue licenses of.
    #[serde(default)]
    pub product: Option<String>,
    /// Prefilled order.
    #[serde(default)]
    pub order: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_issue.html")]
struct IssuePage {
    page: Page,
    products: Vec<ProductRow>,
    product: Option<ProductRow>,
    order: String,
    issued: Vec<String>,
}

async fn issue_view(
    web: &Web,
    session: &Session,
    product: Option<String>,
    order: Option<String>,
    notice: Option<Notice>,
    issued: Vec<String>,
) -> Result<Response, WebError> {
    let products = product_rows(web);
    let product = product.and_then(|id| products.iter().find(|p| p.id == id).cloned());
    Ok(web.page(
        session,
        &IssuePage {
            page: Page::new("Issue licenses", session, "/admin/licenses").with_notice(notice),
            products,
            product,
            order: order.unwrap_or_default(),
            issued,
        },
    ))
}

/// `GET /admin/licenses/new` (`?product=&order=`): the issue form for a product.
pub async fn issue_page(web: Web, Query(query): Query<IssueQuery>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    issue_view(
        &web,
        &session,
        none_if_empty(query.product),
        query.order,
        None,
        Vec::new(),
    )
    .await
}

/// `POST /admin/licenses`: issues licenses (or web serials, for web-model products).
pub async fn issue(web: Web, WebForm(fields): WebForm<Fields>) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let product = text(&fields, "product").unwrap_or_default();
    let (features, counters) = settings(&fields)?;
    let term = match field(&fields, "term") {
        Some("rental") => Term::Rental {
            ends_at: end_of_day(field(&fields, "ends_at").unwrap_or(""))?,
        },
        _ => Term::Perpetual,
    };
    let number = |name: &str| -> Result<Option<u32>, WebError> {
        text(&fields, name)
            .map(|value| {
                value.parse::<u32>().map_err(|_| {
                    WebError::bad_form(format!("{name}: `{value}` is not a whole number"))
                })
            })
            .transpose()
    };
    let new = NewLicenses {
        product: product.clone(),
        license_type: text(&fields, "license_type").unwrap_or_default(),
        edition: text(&fields, "edition").unwrap_or_default(),
        version: text(&fields, "version"),
        order: text(&fields, "order"),
        client: text(&fields, "client"),
        term,
        seats: number("seats")?,
        features,
        counters,
        dongle: text(&fields, "dongle"),
        key: text(&fields, "key"),
        count: number("count")?.unwrap_or(1),
    };
    let licensing = &web.state.licensing;
    let actor = actor_label(&web, &name);
    let web_model = licensing
        .policy(&product)
        .map(|p| is_web_model(p))
        .unwrap_or(false);
    let issued = if web_model {
        licensing.issue_serials(&actor, new).await
    } else {
        licensing.issue_licenses(&actor, new).await
    };
    match issued {
        Ok(records) => {
            let keys: Vec<String> = records.into_iter().map(|r| r.license.key).collect();
            let notice = Notice::ok("ISSUED", format!("{} license(s) issued.", keys.len()), "");
            issue_view(&web, &session, Some(product), None, Some(notice), keys).await
        }
        Err(error) => {
            issue_view(
                &web,
                &session,
                Some(product),
                text(&fields, "order"),
                Some(service_notice(error)),
                Vec::new(),
            )
            .await
        }
    }
}

/// A feature of the license edit form.
#[derive(Debug, Clone)]
pub struct FeatureEdit {
    /// Name.
    pub name: String,
    /// Effective value now.
    pub on: bool,
}

#[derive(Template)]
#[template(path = "admin_license.html")]
struct LicensePage {
    page: Page,
    license: LicenseView,
    feature_names: Vec<FeatureEdit>,
    counter_names: Vec<(String, i64)>,
    extension: bool,
    activations_next: Option<String>,
    seats_next: Option<String>,
    seats_held: u64,
}

/// Query of a license's page: later pages of its activations or seats.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LicensePageQuery {
    /// The last activation of the previous page of activations.
    #[serde(default)]
    pub activations_after: Option<String>,
    /// The last session of the previous page of seats.
    #[serde(default)]
    pub seats_after: Option<String>,
}

async fn license_view(
    web: &Web,
    session: &Session,
    key: &str,
    notice: Option<Notice>,
) -> Result<Response, WebError> {
    license_page_view(web, session, key, LicensePageQuery::default(), notice).await
}

async fn license_page_view(
    web: &Web,
    session: &Session,
    key: &str,
    query: LicensePageQuery,
    notice: Option<Notice>,
) -> Result<Response, WebError> {
    let licensing = &web.state.licensing;
    let back = |error: ServiceError| WebError::from(error).back("/admin/licenses", "Licenses");
    let mut detail = licensing.license_detail(key).await.map_err(back)?;
    if let Some(after) = none_if_empty(query.activations_after) {
        let page = licensing
            .activations_page(key, &web_page(Some(after)))
            .await
            .map_err(back)?;
        (detail.activations, detail.activations_next) = (page.items, page.next);
    }
    if let Some(after) = none_if_empty(query.seats_after) {
        let page = licensing
            .license_seats_page(key, &web_page(Some(after)))
            .await
            .map_err(back)?;
        (detail.seats, detail.seats_next) = (page.items, page.next);
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
    let feature_names = license
        .features
        .iter()
        .map(|(name, on)| FeatureEdit {
            name: name.clone(),
            on: *on,
        })
        .collect();
    let counter_names = license.counters.clone();
    Ok(web.page(
        session,
        &LicensePage {
            page: Page::new(format!("License {key}"), session, "/admin/licenses")
                .with_notice(notice),
            extension: policy.as_ref().is_some_and(|p| p.extension.enabled),
            activations_next: detail.activations_next.clone(),
            seats_next: detail.seats_next.clone(),
            seats_held: detail.seats_held,
            license,
            feature_names,
            counter_names,
        },
    ))
}

/// `GET /admin/licenses/{key}` (`?activations_after=&seats_after=`).
pub async fn license_page(
    web: Web,
    Path(key): Path<String>,
    Query(query): Query<LicensePageQuery>,
) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    license_page_view(&web, &session, &key, query, None).await
}

async fn admin_decide(
    web: &Web,
    name: &str,
    action: Action,
    client_dongle: Option<String>,
) -> Result<Decision, WebError> {
    let caller = Caller::Administrator(name.to_owned());
    let context = RequestContext {
        actor_label: caller.label(&web.peer),
        client_dongle,
        product: None,
        server_key: None,
    };
    let outcome = web
        .state
        .licensing
        .decide(caller.actor(), action, context)
        .await?;
    Ok(outcome.decision)
}

/// `POST /admin/licenses/{key}/extend`: a new expiry, seats, features or counters (`EXTENDED`,
/// decided by the engine: the policy may forbid it with `EXTENSION_DISABLED`).
pub async fn extend(
    web: Web,
    Path(key): Path<String>,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let back = format!("/admin/licenses/{}", segment(&key));
    let (features, counters) = settings(&fields).map_err(|e| e.back(back.clone(), "Back"))?;
    let expires_at = text(&fields, "expires_at")
        .map(|value| end_of_day(&value))
        .transpose()
        .map_err(|e| e.back(back.clone(), "Back"))?;
    let seats = text(&fields, "seats")
        .map(|value| {
            value.parse::<u32>().map_err(|_| {
                WebError::bad_form(format!("seats: `{value}` is not a whole number"))
                    .back(back.clone(), "Back")
            })
        })
        .transpose()?;
    let action = Action::Extend {
        key: key.clone(),
        expires_at,
        features,
        counters,
        seats,
    };
    let decision = admin_decide(&web, &name, action, None).await?;
    let notice = decision_notice(
        &decision,
        "The license is changed; machines pick it up at their next validation.",
    );
    license_view(&web, &session, &key, Some(notice)).await
}

/// `POST /admin/licenses/{key}/revoke` (`REVOCATION_APPLIED`); the form must confirm it.
pub async fn revoke(
    web: Web,
    Path(key): Path<String>,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    if field(&fields, "confirm") != Some("yes") {
        let notice = Notice::refused("INVALID_BODY", "tick the box to confirm the revocation");
        return license_view(&web, &session, &key, Some(notice)).await;
    }
    let decision = admin_decide(&web, &name, Action::Revoke { key: key.clone() }, None).await?;
    let notice = decision_notice(&decision, "The license is revoked.");
    license_view(&web, &session, &key, Some(notice)).await
}

/// `POST /admin/licenses/{key}/remove`: removes any activation, limited licenses included
/// (`RETURNED`).
pub async fn remove_activation(
    web: Web,
    Path(key): Path<String>,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let activation = match field(&fields, "activation").and_then(|id| id.parse::<i64>().ok()) {
        Some(id) => match web.state.licensing.license_activation(&key, id).await {
            Ok(activation) => Some(activation),
            Err(ServiceError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    let Some(activation) = activation else {
        let notice = Notice::refused(
            "NOT_FOUND",
            format!("license `{key}` has no such activation"),
        );
        return license_view(&web, &session, &key, Some(notice)).await;
    };
    let (machine, dongle) = binding_as_machine(&activation.activation.binding);
    let action = Action::Return {
        key: key.clone(),
        machine,
        method: Method::Online,
        certificate_serial: None,
    };
    let decision = admin_decide(&web, &name, action, dongle).await?;
    let notice = decision_notice(&decision, "The activation is removed.");
    license_view(&web, &session, &key, Some(notice)).await
}

async fn release(web: &Web, name: &str, key: &str, session_id: &str) -> Result<Notice, WebError> {
    let seat = match web.state.licensing.license_seat(key, session_id).await {
        Ok(seat) => seat,
        Err(ServiceError::NotFound(_)) => {
            return Ok(Notice::refused(
                "LEASE_NOT_FOUND",
                format!("no seat of license `{key}` is held by session `{session_id}`"),
            ))
        }
        Err(error) => return Err(error.into()),
    };
    let action = if seat.state == "borrowed" {
        Action::ReturnBorrowed {
            key: key.to_owned(),
            session: session_id.to_owned(),
            certificate_serial: None,
        }
    } else {
        Action::Release {
            key: key.to_owned(),
            session: session_id.to_owned(),
        }
    };
    let decision = admin_decide(web, name, action, None).await?;
    Ok(decision_notice(
        &decision,
        "The seat is released back to the pool.",
    ))
}

/// `POST /admin/licenses/{key}/release`: force-releases a seat or a borrowed seat
/// (`SEAT_RELEASED`, `BORROW_RETURNED`); `from=seats` answers with the seats page.
pub async fn release_seat(
    web: Web,
    Path(key): Path<String>,
    WebForm(fields): WebForm<Fields>,
) -> Result<Response, WebError> {
    let (session, name) = accept(&web, &fields)?;
    let session_id = field(&fields, "session").unwrap_or("").to_owned();
    let notice = release(&web, &name, &key, &session_id).await?;
    if field(&fields, "from") == Some("seats") {
        seats_view(&web, &session, SeatsQuery::default(), Some(notice)).await
    } else {
        license_view(&web, &session, &key, Some(notice)).await
    }
}

// ---- web serials, seats, audit, usage ----------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_serials.html")]
struct SerialsPage {
    page: Page,
    products: Vec<ProductRow>,
    serials: Vec<(LicenseView, usize)>,
}

/// `GET /admin/serials`: serials of web-model products with their activation counts.
pub async fn serials(web: Web) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    let licensing = &web.state.licensing;
    let products: Vec<ProductRow> = product_rows(&web).into_iter().filter(|p| p.web).collect();
    let mut records = Vec::new();
    for product in &products {
        records.extend(
            licensing
                .licenses(LicenseFilter {
                    product: Some(product.id.clone()),
                    limit: 500,
                    ..LicenseFilter::default()
                })
                .await?,
        );
    }
    let counts = licensing
        .activation_counts(records.iter().map(|r| r.license.key.clone()).collect())
        .await?;
    let now = web.now();
    let serials = records
        .iter()
        .map(|record| {
            let policy = licensing.policies().get(&record.license.product);
            (
                LicenseView::of(policy.map(AsRef::as_ref), record, None, now),
                counts.get(&record.license.key).copied().unwrap_or(0),
            )
        })
        .collect();
    Ok(web.page(
        &session,
        &SerialsPage {
            page: Page::new("Web serials", &session, "/admin/serials"),
            products,
            serials,
        },
    ))
}

/// Query of the seats page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SeatsQuery {
    /// Only this product.
    #[serde(default)]
    pub product: Option<String>,
    /// The previous page's last seat (`LICENSE-KEY/SESSION`).
    #[serde(default)]
    pub after: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_seats.html")]
struct SeatsPage {
    page: Page,
    held: Vec<SeatRow>,
    borrowed: Vec<SeatRow>,
    product: String,
    next: Option<String>,
}

async fn seats_view(
    web: &Web,
    session: &Session,
    query: SeatsQuery,
    notice: Option<Notice>,
) -> Result<Response, WebError> {
    let product = none_if_empty(query.product);
    let seats = web
        .state
        .licensing
        .held_seats_page(product.as_deref(), &web_page(query.after))
        .await?;
    let rows: Vec<SeatRow> = seats.items.iter().map(SeatRow::new).collect();
    let (borrowed, held) = rows.into_iter().partition(|row| row.state == "borrowed");
    Ok(web.page(
        session,
        &SeatsPage {
            page: Page::new("Seats held and borrowed", session, "/admin/seats").with_notice(notice),
            held,
            borrowed,
            product: product.unwrap_or_default(),
            next: seats.next,
        },
    ))
}

/// `GET /admin/seats`.
pub async fn seats(web: Web, Query(query): Query<SeatsQuery>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    seats_view(&web, &session, query, None).await
}

/// Query of the audit page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    /// License key.
    #[serde(default)]
    pub key: Option<String>,
    /// Client.
    #[serde(default)]
    pub client: Option<String>,
    /// Code.
    #[serde(default)]
    pub code: Option<String>,
    /// Entries before this position.
    #[serde(default)]
    pub before: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    page: Page,
    entries: Vec<AuditRow>,
    key: String,
    client: String,
    code: String,
    next: Option<String>,
}

const AUDIT_PAGE: i64 = 100;

/// `GET /admin/audit` (`?key=&client=&code=&before=`): the audit log, newest first.
pub async fn audit(web: Web, Query(query): Query<AuditQuery>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    let search = AuditSearch {
        license_key: none_if_empty(query.key),
        client: none_if_empty(query.client),
        code: none_if_empty(query.code).map(|code| code.to_ascii_uppercase()),
        before: none_if_empty(query.before).and_then(|b| b.parse().ok()),
        limit: AUDIT_PAGE,
    };
    let entries = web.state.licensing.search_audit(search.clone()).await?;
    let next = (entries.len() as i64 == AUDIT_PAGE)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(web.page(
        &session,
        &AuditPage {
            page: Page::new("Audit log", &session, "/admin/audit"),
            entries: entries.iter().map(AuditRow::of).collect(),
            key: search.license_key.unwrap_or_default(),
            client: search.client.unwrap_or_default(),
            code: search.code.unwrap_or_default(),
            next,
        },
    ))
}

/// Query of the usage page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UsageQuery {
    /// Days to show (1 to 366, default 30).
    #[serde(default)]
    pub days: Option<String>,
    /// Only this license.
    #[serde(default)]
    pub key: Option<String>,
    /// Only this product.
    #[serde(default)]
    pub product: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_usage.html")]
struct UsagePage {
    page: Page,
    report: UsageReport,
    days: i64,
    key: String,
    product: String,
    products: Vec<ProductRow>,
}

/// `GET /admin/usage` (`?days=&key=&product=`).
pub async fn usage(web: Web, Query(query): Query<UsageQuery>) -> Result<Response, WebError> {
    let (session, _) = signed_in_admin(&web)?;
    let days = none_if_empty(query.days)
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(30)
        .clamp(1, usage::MAX_DAYS);
    let key = none_if_empty(query.key);
    let product = none_if_empty(query.product);
    let report = usage::report(
        &web.state.licensing,
        days,
        key.as_deref(),
        product.as_deref(),
    )
    .await?;
    Ok(web.page(
        &session,
        &UsagePage {
            page: Page::new("Usage", &session, "/admin/usage"),
            report,
            days,
            key: key.unwrap_or_default(),
            product: product.unwrap_or_default(),
            products: product_rows(&web),
        },
    ))
}
