//! Administration: clients, orders, licenses and serials, seats, tokens and the audit log.
//!
//! Changes are audited in the same transaction as they are made. Changes to issued licenses
//! (extension, revocation, removal of activations, release of seats) go through the engine, see
//! [`Licensing::decide`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use licet_engine::certificate::Binding;
use licet_engine::state::{License, LicenseStatus, Order, Term};
use serde::Serialize;

use crate::error::StoreError;
use crate::keys::{new_token, random_bytes, token_hash};
use crate::service::{admin_audit, is_web_model, Licensing, ServiceError};
use crate::store::{
    job, ActivationRecord, AuditEntry, ClientRecord, LeaseRecord, LicenseFilter, LicenseRecord,
    OrderRecord, SeatUsage, TokenOwner,
};

/// The most licenses or serials issued by one call.
pub const MAX_ISSUE: u32 = 1000;
/// Prefix of administrator tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "lct_admin_";
/// Prefix of client tokens.
pub const CLIENT_TOKEN_PREFIX: &str = "lct_client_";

/// A new order.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Identifier; generated when absent.
    pub id: Option<String>,
    /// Owning client.
    pub client: String,
    /// Product ordered.
    pub product: String,
    /// Order-level features.
    pub features: BTreeMap<String, bool>,
    /// Order-level counters.
    pub counters: BTreeMap<String, i64>,
}

/// Licenses (or serials) to issue.
#[derive(Debug, Clone)]
pub struct NewLicenses {
    /// Product.
    pub product: String,
    /// License type, a key of the policy's `license_types`.
    pub license_type: String,
    /// Edition.
    pub edition: String,
    /// Version; the policy's when absent.
    pub version: Option<String>,
    /// Order (standard model); the license's client is the order's.
    pub order: Option<String>,
    /// Client owning licenses outside any order.
    pub client: Option<String>,
    /// Perpetual or rental.
    pub term: Term,
    /// Seats of a network license.
    pub seats: Option<u32>,
    /// License-level features (the serial's features in the web model).
    pub features: BTreeMap<String, bool>,
    /// License-level counters.
    pub counters: BTreeMap<String, i64>,
    /// Dongle serial of a dongle license.
    pub dongle: Option<String>,
    /// The key to use, when issuing exactly one.
    pub key: Option<String>,
    /// How many to issue.
    pub count: u32,
}

/// A seat as administrators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Seat)]
pub struct SeatView {
    /// The license key.
    pub license_key: String,
    /// The session holding it.
    pub session: String,
    /// The client machine.
    #[schema(schema_with = crate::api::openapi::schemas::binding)]
    pub binding: Binding,
    /// When it was taken.
    pub leased_at: DateTime<Utc>,
    /// When the lease lapses without a heartbeat.
    pub expires_at: DateTime<Utc>,
    /// When a borrowed seat comes back.
    pub borrowed_until: Option<DateTime<Utc>>,
    /// `held`, `borrowed` or `lapsed`.
    #[schema(schema_with = crate::api::openapi::schemas::seat_state)]
    pub state: &'static str,
}

impl SeatView {
    /// The view of a stored lease at `now`.
    pub(crate) fn new(record: LeaseRecord, now: DateTime<Utc>) -> Self {
        let lease = record.lease;
        let state = if lease.is_borrowed(now) {
            "borrowed"
        } else if lease.is_held(now) {
            "held"
        } else {
            "lapsed"
        };
        SeatView {
            license_key: record.license_key,
            session: lease.session,
            binding: lease.binding,
            leased_at: lease.leased_at,
            expires_at: lease.expires_at,
            borrowed_until: lease.borrowed_until,
            state,
        }
    }
}

/// A license with the first page of its activations and of its seats. Serialized as the
/// license's fields with `seats` the page of seats, and the license's own seat count (the pool of
/// a network license) as `seat_count`, so that no key is written twice.
#[derive(Debug, Clone)]
pub struct LicenseDetail {
    /// The license.
    pub record: LicenseRecord,
    /// The client owning it, through its order or directly.
    pub owner: Option<String>,
    /// Its first activations, by stored identifier (at most a page,
    /// [`crate::listing::DEFAULT_LIMIT`]).
    pub activations: Vec<ActivationRecord>,
    /// When it has more activations: the `after` cursor of the next page of
    /// `GET /v1/admin/licenses/{key}/activations`.
    pub activations_next: Option<String>,
    /// Its first seat leases and borrows, by session, lapsed ones included until they are swept
    /// (at most a page).
    pub seats: Vec<SeatView>,
    /// When it has more seats: the `after` cursor of the next page of
    /// `GET /v1/admin/licenses/{key}/seats`.
    pub seats_next: Option<String>,
    /// How many seats are held or borrowed now (the store's count, whatever the size of the pool).
    pub seats_held: u64,
}

/// The shape [`LicenseDetail`] is serialized in: the license's fields, `seats` the page of seats
/// and the license's own seat count `seat_count`.
#[derive(utoipa::ToSchema)]
#[schema(as = LicenseDetail)]
#[allow(dead_code)]
struct LicenseDetailShape {
    /// The license key (serial number).
    key: String,
    /// Product identifier.
    product: String,
    /// License type name.
    license_type: String,
    /// Edition the key is valid for.
    edition: String,
    /// Version the key is valid for.
    version: String,
    /// Perpetual or rental.
    #[schema(schema_with = crate::api::openapi::schemas::output_term)]
    term: (),
    /// License-level features.
    features: BTreeMap<String, bool>,
    /// License-level counters.
    counters: BTreeMap<String, i64>,
    /// Enabled or revoked.
    #[schema(schema_with = crate::api::openapi::schemas::license_status)]
    status: (),
    /// The serial of the dongle a dongle license lives on.
    dongle: Option<String>,
    /// The client that owns the license directly.
    client: Option<String>,
    /// The order it belongs to (standard model).
    order: Option<String>,
    /// Terms fixed at the first activation of a limited license.
    limited: Option<crate::api::openapi::schemas::LimitedTerms>,
    /// When it was issued.
    created_at: DateTime<Utc>,
    /// Seats of a network license (the license's `seats`; null: the type's default).
    seat_count: Option<u32>,
    /// The client owning it, through its order or directly.
    owner: Option<String>,
    /// The first 100 activations, by ID.
    activations: Vec<ActivationRecord>,
    /// When there are more: the `after` of the next page of
    /// /v1/admin/licenses/{key}/activations.
    activations_next: Option<String>,
    /// The first 100 leases, by session.
    seats: Vec<SeatView>,
    /// When there are more: the `after` of the next page of /v1/admin/licenses/{key}/seats.
    seats_next: Option<String>,
    /// Seats held or borrowed now, as the store counts them.
    seats_held: u64,
}

impl utoipa::PartialSchema for LicenseDetail {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <LicenseDetailShape as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for LicenseDetail {
    fn name() -> std::borrow::Cow<'static, str> {
        <LicenseDetailShape as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <LicenseDetailShape as utoipa::ToSchema>::schemas(schemas);
    }
}

impl Serialize for LicenseDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let serde_json::Value::Object(mut license) =
            serde_json::to_value(&self.record).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom("a license record is a JSON object"));
        };
        let seat_count = license.remove("seats").unwrap_or(serde_json::Value::Null);
        let mut map = serializer.serialize_map(Some(license.len() + 7))?;
        for (name, value) in &license {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry("seat_count", &seat_count)?;
        map.serialize_entry("owner", &self.owner)?;
        map.serialize_entry("activations", &self.activations)?;
        map.serialize_entry("activations_next", &self.activations_next)?;
        map.serialize_entry("seats", &self.seats)?;
        map.serialize_entry("seats_next", &self.seats_next)?;
        map.serialize_entry("seats_held", &self.seats_held)?;
        map.end()
    }
}

fn check_names(
    licensing: &Licensing,
    product: &str,
    features: &BTreeMap<String, bool>,
    counters: &BTreeMap<String, i64>,
) -> Result<(), ServiceError> {
    let policy = licensing.policy(product)?;
    if let Some(name) = features
        .keys()
        .find(|name| !policy.product.features.contains_key(*name))
    {
        return Err(ServiceError::Invalid(format!(
            "feature `{name}` is not declared by product `{product}`"
        )));
    }
    if let Some(name) = counters
        .keys()
        .find(|name| !policy.product.counters.contains_key(*name))
    {
        return Err(ServiceError::Invalid(format!(
            "counter `{name}` is not declared by product `{product}`"
        )));
    }
    Ok(())
}

fn check_identifier(what: &str, id: &str) -> Result<(), ServiceError> {
    let valid = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "{what} `{id}` must be 1 to 128 letters, digits, `-`, `_` or `.`"
        )))
    }
}

/// Crockford base32 without I, L, O, U.
const KEY_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new license key: a product prefix and 100 random bits in four groups of five characters.
pub fn new_license_key(product: &str) -> Result<String, ServiceError> {
    let bytes = random_bytes::<20>().map_err(|_| ServiceError::Random)?;
    let prefix: String = product
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect::<String>()
        .to_ascii_uppercase();
    let mut key = if prefix.is_empty() {
        "LCT".to_owned()
    } else {
        prefix
    };
    for (index, byte) in bytes.iter().enumerate() {
        if index % 5 == 0 {
            key.push('-');
        }
        key.push(char::from(KEY_ALPHABET[usize::from(byte & 0x1f)]));
    }
    Ok(key)
}

impl Licensing {
    /// The seats of at most `limit` licenses with a pool, held and borrowed now (for metrics).
    pub async fn seat_usage(&self, limit: i64) -> Result<Vec<SeatUsage>, ServiceError> {
        let now = self.now();
        Ok(self.store().read(ListSeatUsage { now, limit }).await?)
    }

    /// Who holds an administrator or client token.
    pub async fn token_owner(&self, token: &str) -> Result<Option<TokenOwner>, ServiceError> {
        let hash = token_hash(token);
        Ok(self.store().read(FindToken { hash }).await?)
    }

    /// Creates an administrator token named `name`; returns the token (shown once).
    pub async fn create_admin_token(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<String, ServiceError> {
        check_identifier("token name", name)?;
        let token = new_token(ADMIN_TOKEN_PREFIX).map_err(|_| ServiceError::Random)?;
        let now = self.now();
        let audit = admin_audit(
            actor,
            "create-admin-token",
            None,
            format!("administrator token `{name}` created"),
            &serde_json::json!({ "name": name }),
            now,
        )?;
        self.store()
            .execute(CreateAdminToken {
                name: name.to_owned(),
                hash: token_hash(&token),
                audit,
                now,
            })
            .await?;
        Ok(token)
    }

    /// Creates a client account; returns it and its token (shown once).
    pub async fn create_client(
        &self,
        actor: &str,
        id: &str,
        name: &str,
    ) -> Result<(ClientRecord, String), ServiceError> {
        check_identifier("client", id)?;
        let token = new_token(CLIENT_TOKEN_PREFIX).map_err(|_| ServiceError::Random)?;
        let now = self.now();
        let record = ClientRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            has_token: true,
            created_at: now,
        };
        let audit = admin_audit(
            actor,
            "create-client",
            None,
            format!("client `{id}` created"),
            &record,
            now,
        )?;
        self.store()
            .execute(CreateClient {
                record: record.clone(),
                hash: token_hash(&token),
                audit,
            })
            .await
            .map_err(already_exists)?;
        Ok((record, token))
    }

    /// Gives a client a new token (the old one stops working); returns it.
    pub async fn rotate_client_token(&self, actor: &str, id: &str) -> Result<String, ServiceError> {
        let token = new_token(CLIENT_TOKEN_PREFIX).map_err(|_| ServiceError::Random)?;
        let now = self.now();
        let audit = admin_audit(
            actor,
            "rotate-client-token",
            None,
            format!("client `{id}` has a new token"),
            &serde_json::json!({ "client": id }),
            now,
        )?;
        let found = self
            .store()
            .execute(RotateClientToken {
                id: id.to_owned(),
                hash: token_hash(&token),
                audit,
            })
            .await?;
        if found {
            Ok(token)
        } else {
            Err(ServiceError::NotFound(format!("client `{id}`")))
        }
    }

    /// One client.
    pub async fn client(&self, id: &str) -> Result<ClientRecord, ServiceError> {
        self.store()
            .execute(GetClient { id: id.to_owned() })
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("client `{id}`")))
    }

    /// Creates an order for a client.
    pub async fn create_order(
        &self,
        actor: &str,
        new: NewOrder,
    ) -> Result<OrderRecord, ServiceError> {
        check_names(self, &new.product, &new.features, &new.counters)?;
        let id = match new.id {
            Some(id) => id,
            None => format!(
                "order-{}",
                crate::keys::hex(&random_bytes::<6>().map_err(|_| ServiceError::Random)?)
            ),
        };
        check_identifier("order", &id)?;
        let now = self.now();
        let record = OrderRecord {
            order: Order {
                id: id.clone(),
                client: new.client.clone(),
                features: new.features,
                counters: new.counters,
            },
            product: new.product,
            created_at: now,
        };
        let audit = admin_audit(
            actor,
            "create-order",
            None,
            format!("order `{id}` created for client `{}`", new.client),
            &record,
            now,
        )?;
        self.store()
            .execute(CreateOrder {
                record: record.clone(),
                audit,
            })
            .await
            .map_err(already_exists)?;
        Ok(record)
    }

    /// One order.
    pub async fn order(&self, id: &str) -> Result<OrderRecord, ServiceError> {
        self.store()
            .execute(GetOrder { id: id.to_owned() })
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("order `{id}`")))
    }

    /// Sets order-level features and counters (merged into the order's); licenses of the order
    /// pick them up at their next validation.
    pub async fn update_order(
        &self,
        actor: &str,
        id: &str,
        features: BTreeMap<String, bool>,
        counters: BTreeMap<String, i64>,
    ) -> Result<OrderRecord, ServiceError> {
        let current = self.order(id).await?;
        check_names(self, &current.product, &features, &counters)?;
        let now = self.now();
        let audit = admin_audit(
            actor,
            "update-order",
            None,
            format!("order `{id}` features or counters changed"),
            &serde_json::json!({ "order": id, "features": features, "counters": counters }),
            now,
        )?;
        self.store()
            .execute(UpdateOrder {
                id: id.to_owned(),
                features,
                counters,
                audit,
            })
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("order `{id}`")))
    }

    /// Issues license keys.
    pub async fn issue_licenses(
        &self,
        actor: &str,
        new: NewLicenses,
    ) -> Result<Vec<LicenseRecord>, ServiceError> {
        let policy = self.policy(&new.product)?.clone();
        if new.count == 0 || new.count > MAX_ISSUE {
            return Err(ServiceError::Invalid(format!(
                "count must be between 1 and {MAX_ISSUE}, not {}",
                new.count
            )));
        }
        if new.key.is_some() && new.count != 1 {
            return Err(ServiceError::Invalid(
                "a given key issues exactly one license".into(),
            ));
        }
        let license_type = policy.license_type(&new.license_type).ok_or_else(|| {
            ServiceError::Invalid(format!(
                "license type `{}` is not declared by product `{}`",
                new.license_type, new.product
            ))
        })?;
        if !policy.product.has_edition(&new.edition) {
            return Err(ServiceError::Invalid(format!(
                "`{}` is not an edition of `{}`",
                new.edition, new.product
            )));
        }
        let term_allowed = match new.term {
            Term::Perpetual => license_type.perpetual,
            Term::Rental { .. } => license_type.rental,
        };
        if !term_allowed {
            return Err(ServiceError::Invalid(format!(
                "`{}` licenses cannot have this term",
                license_type.name
            )));
        }
        if new.seats.is_some() && !license_type.kind.is_network() {
            return Err(ServiceError::Invalid(format!(
                "`{}` licenses have no seats",
                license_type.name
            )));
        }
        if license_type.kind.is_dongle() != new.dongle.is_some() {
            return Err(ServiceError::Invalid(if new.dongle.is_some() {
                format!("`{}` licenses are not dongle licenses", license_type.name)
            } else {
                format!(
                    "`{}` licenses need the serial of their dongle",
                    license_type.name
                )
            }));
        }
        if new.order.is_some() && new.client.is_some() {
            return Err(ServiceError::Invalid(
                "give an order or a client, not both: an order's licenses belong to its client"
                    .into(),
            ));
        }
        check_names(self, &new.product, &new.features, &new.counters)?;
        if let Some(key) = &new.key {
            check_identifier("license key", key)?;
        }
        let now = self.now();
        let mut records = Vec::with_capacity(usize::try_from(new.count).unwrap_or(0));
        for index in 0..new.count {
            let key = match (&new.key, index) {
                (Some(key), 0) => key.clone(),
                _ => new_license_key(&new.product)?,
            };
            records.push(LicenseRecord {
                license: License {
                    key,
                    product: new.product.clone(),
                    license_type: new.license_type.clone(),
                    edition: new.edition.clone(),
                    version: new
                        .version
                        .clone()
                        .unwrap_or_else(|| policy.product.version.clone()),
                    term: new.term,
                    seats: new.seats,
                    features: new.features.clone(),
                    counters: new.counters.clone(),
                    status: LicenseStatus::Enabled,
                    dongle: new.dongle.clone(),
                    client: new.client.clone(),
                    limited: None,
                },
                order: new.order.clone(),
                created_at: now,
            });
        }
        let audit = admin_audit(
            actor,
            "issue-licenses",
            None,
            format!("{} license(s) of `{}` issued", new.count, new.product),
            &records
                .iter()
                .map(|record| &record.license.key)
                .collect::<Vec<_>>(),
            now,
        )?;
        self.store()
            .execute(IssueLicenses {
                records: records.clone(),
                product: new.product.clone(),
                audit,
            })
            .await
            .map_err(|error| match error {
                StoreError::AlreadyExists(what) => ServiceError::AlreadyExists(what),
                StoreError::NotFound(what) => ServiceError::NotFound(what),
                StoreError::Conflict(message) => ServiceError::Invalid(message),
                other => ServiceError::Store(other),
            })?;
        Ok(records)
    }

    /// Issues serial numbers of the web model: licenses without client or order.
    pub async fn issue_serials(
        &self,
        actor: &str,
        new: NewLicenses,
    ) -> Result<Vec<LicenseRecord>, ServiceError> {
        let policy = self.policy(&new.product)?;
        if !is_web_model(policy) {
            return Err(ServiceError::Invalid(format!(
                "product `{}` uses the standard model; issue licenses in orders instead",
                new.product
            )));
        }
        if new.order.is_some() || new.client.is_some() {
            return Err(ServiceError::Invalid(
                "serial numbers have no client or order".into(),
            ));
        }
        self.issue_licenses(actor, new).await
    }

    /// Licenses matching `filter`.
    pub async fn licenses(
        &self,
        filter: LicenseFilter,
    ) -> Result<Vec<LicenseRecord>, ServiceError> {
        Ok(self.store().execute(ListLicenses { filter }).await?)
    }
}

fn already_exists(error: StoreError) -> ServiceError {
    match error {
        StoreError::AlreadyExists(what) => ServiceError::AlreadyExists(what),
        StoreError::NotFound(what) => ServiceError::NotFound(what),
        other => ServiceError::Store(other),
    }
}

job! {
    ListSeatUsage { now: DateTime<Utc>, limit: i64 } -> Vec<SeatUsage>;
    |this, records| { records.seat_usage(this.now, this.limit).await }
}

job! {
    FindToken { hash: String } -> Option<TokenOwner>;
    |this, records| { records.token_owner(&this.hash).await }
}

job! {
    CreateAdminToken { name: String, hash: String, audit: AuditEntry, now: DateTime<Utc> } -> ();
    |this, records| {
        records.insert_admin_token(&this.name, &this.hash, this.now).await?;
        records.append_audit(&this.audit).await?;
        Ok(())
    }
}

job! {
    CreateClient { record: ClientRecord, hash: String, audit: AuditEntry } -> ();
    |this, records| {
        records.insert_client(&this.record, &this.hash).await?;
        records.append_audit(&this.audit).await?;
        Ok(())
    }
}

job! {
    RotateClientToken { id: String, hash: String, audit: AuditEntry } -> bool;
    |this, records| {
        let found = records.set_client_token(&this.id, &this.hash).await?;
        if found {
            records.append_audit(&this.audit).await?;
        }
        Ok(found)
    }
}

job! {
    GetClient { id: String } -> Option<ClientRecord>;
    |this, records| { records.client(&this.id).await }
}

job! {
    CreateOrder { record: OrderRecord, audit: AuditEntry } -> ();
    |this, records| {
        if records.client(&this.record.order.client).await?.is_none() {
            return Err(StoreError::NotFound(format!("client `{}`", this.record.order.client)));
        }
        records.insert_order(&this.record).await?;
        records.append_audit(&this.audit).await?;
        Ok(())
    }
}

job! {
    GetOrder { id: String } -> Option<OrderRecord>;
    |this, records| { records.order(&this.id).await }
}

job! {
    UpdateOrder {
        id: String,
        features: BTreeMap<String, bool>,
        counters: BTreeMap<String, i64>,
        audit: AuditEntry,
    } -> Option<OrderRecord>;
    |this, records| {
        let Some(mut record) = records.order(&this.id).await? else {
            return Ok(None);
        };
        record.order.features.extend(this.features);
        record.order.counters.extend(this.counters);
        records.save_order(&record.order).await?;
        records.append_audit(&this.audit).await?;
        Ok(Some(record))
    }
}

job! {
    IssueLicenses { records: Vec<LicenseRecord>, product: String, audit: AuditEntry } -> ();
    |this, records| {
        if let Some(first) = this.records.first() {
            if let Some(order) = &first.order {
                let Some(found) = records.order(order).await? else {
                    return Err(StoreError::NotFound(format!("order `{order}`")));
                };
                if found.product != this.product {
                    return Err(StoreError::Conflict(format!(
                        "order `{order}` is for product `{}`, not `{}`",
                        found.product, this.product
                    )));
                }
            }
            if let Some(client) = &first.license.client {
                if records.client(client).await?.is_none() {
                    return Err(StoreError::NotFound(format!("client `{client}`")));
                }
            }
        }
        for record in &this.records {
            records.insert_license(record).await?;
        }
        records.append_audit(&this.audit).await?;
        Ok(())
    }
}

job! {
    ListLicenses { filter: LicenseFilter } -> Vec<LicenseRecord>;
    |this, records| { records.licenses(&this.filter).await }
}
