//! Pages of the administrator listings: every listing reads at most `limit` rows (1 to
//! [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when not given) after the `after` cursor of the previous page,
//! in a stable order, and names the cursor of the next page when more rows exist.
//!
//! Cursors are the last row's key: a license key, a client or order identifier, an activation's
//! stored identifier, a session (the seats of one license) or `LICENSE-KEY/SESSION` (the seats of
//! every license; license keys never contain `/`).

use chrono::{DateTime, Utc};
use licet_engine::report::Report as _;
use serde::Serialize;

use crate::admin::{LicenseDetail, SeatView};
use crate::service::{owner_of, Licensing, ServiceError};
use crate::store::{
    job, ActivationRecord, AuditEntry, ClientRecord, LeaseRecord, LicenseFilter, LicenseRecord,
    OrderRecord,
};

/// The page size of a listing whose `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest page of any listing.
pub const MAX_LIMIT: i64 = 1000;

/// Why a page cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `limit` is outside 1 to [`MAX_LIMIT`].
    #[error("limit {0} is out of range: give 1 to {MAX_LIMIT}")]
    LimitOutOfRange(i64),
    /// `after` is not a cursor of this listing.
    #[error("after `{0}` is not a cursor of this listing")]
    BadCursor(String),
}

/// What page of a listing is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many rows (1 to [`MAX_LIMIT`]).
    pub limit: i64,
    /// The rows after this cursor (the previous page's `next`); from the first row when absent.
    pub after: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl PageRequest {
    /// A page of `limit` rows ([`DEFAULT_LIMIT`] when absent) after `after`; a limit outside 1 to
    /// [`MAX_LIMIT`] is refused. An empty `after` is the first page.
    pub fn new(limit: Option<i64>, after: Option<String>) -> Result<PageRequest, PageError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::LimitOutOfRange(limit));
        }
        Ok(PageRequest {
            limit,
            after: after.filter(|after| !after.is_empty()),
        })
    }

    /// The `after` cursor as a stored identifier (0, before every identifier, when absent).
    pub fn after_id(&self) -> Result<i64, PageError> {
        match &self.after {
            None => Ok(0),
            Some(after) => after
                .parse()
                .map_err(|_| PageError::BadCursor(after.clone())),
        }
    }

    /// The `after` cursor as a `(license key, session)` pair.
    pub fn after_seat(&self) -> Result<Option<(&str, &str)>, PageError> {
        match &self.after {
            None => Ok(None),
            Some(after) => after
                .split_once('/')
                .map(Some)
                .ok_or_else(|| PageError::BadCursor(after.clone())),
        }
    }

    /// How many rows to read: one more than the page, to know whether a next page exists.
    fn read(&self) -> i64 {
        self.limit.saturating_add(1)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The rows, in the listing's order.
    pub items: Vec<T>,
    /// The `after` cursor of the next page, when more rows exist.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The page of `rows` (read with [`PageRequest::read`]): at most `limit` of them, and the
    /// cursor of the last one shown when one more was read.
    fn of(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(cursor) } else { None };
        Page { items: rows, next }
    }

    /// The page with each row changed by `change`.
    pub fn map<U>(self, change: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(change).collect(),
            next: self.next,
        }
    }
}

/// The cursor of a seat of the listing of every license's seats.
pub fn seat_cursor(license_key: &str, session: &str) -> String {
    format!("{license_key}/{session}")
}

impl Licensing {
    /// A page of clients, by identifier.
    pub async fn clients_page(
        &self,
        page: &PageRequest,
    ) -> Result<Page<ClientRecord>, ServiceError> {
        let rows = self
            .store()
            .execute(ClientsPage {
                after: page.after.clone(),
                limit: page.read(),
            })
            .await?;
        Ok(Page::of(rows, page.limit, |client| client.id.clone()))
    }

    /// A page of orders, optionally of one client, by identifier.
    pub async fn orders_page(
        &self,
        client: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<OrderRecord>, ServiceError> {
        let rows = self
            .store()
            .execute(OrdersPage {
                client: client.map(str::to_owned),
                after: page.after.clone(),
                limit: page.read(),
            })
            .await?;
        Ok(Page::of(rows, page.limit, |order| order.order.id.clone()))
    }

    /// A page of licenses matching `filter` (its `limit` and `after` are the page's), by key.
    pub async fn licenses_page(
        &self,
        filter: LicenseFilter,
        page: &PageRequest,
    ) -> Result<Page<LicenseRecord>, ServiceError> {
        let filter = LicenseFilter {
            after: page.after.clone(),
            limit: page.read(),
            ..filter
        };
        let rows = self.licenses(filter).await?;
        Ok(Page::of(rows, page.limit, |record| {
            record.license.key.clone()
        }))
    }

    /// A page of the license's activations, by stored identifier; `NotFound` when there is no
    /// such license.
    pub async fn activations_page(
        &self,
        key: &str,
        page: &PageRequest,
    ) -> Result<Page<ActivationRecord>, ServiceError> {
        let rows = self
            .store()
            .execute(ActivationsPage {
                key: key.to_owned(),
                after: page.after_id().map_err(invalid)?,
                limit: page.read(),
            })
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("license `{key}`")))?;
        Ok(Page::of(rows, page.limit, |record| record.id.to_string()))
    }

    /// A page of the license's seat leases and borrows (lapsed ones included until they are
    /// swept), by session; `NotFound` when there is no such license.
    pub async fn license_seats_page(
        &self,
        key: &str,
        page: &PageRequest,
    ) -> Result<Page<SeatView>, ServiceError> {
        let now = self.now();
        let rows = self
            .store()
            .execute(LicenseSeatsPage {
                key: key.to_owned(),
                after: page.after.clone(),
                limit: page.read(),
            })
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("license `{key}`")))?;
        Ok(
            Page::of(rows, page.limit, |record| record.lease.session.clone())
                .map(|record| SeatView::new(record, now)),
        )
    }

    /// A page of the seats held or borrowed now, optionally of one product, by license key then
    /// session.
    pub async fn held_seats_page(
        &self,
        product: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<SeatView>, ServiceError> {
        let now = self.now();
        let after = page
            .after_seat()
            .map_err(invalid)?
            .map(|(key, session)| (key.to_owned(), session.to_owned()));
        let rows = self
            .store()
            .execute(HeldSeatsPage {
                product: product.map(str::to_owned),
                now,
                after,
                limit: page.read(),
            })
            .await?;
        Ok(Page::of(rows, page.limit, |record| {
            seat_cursor(&record.license_key, &record.lease.session)
        })
        .map(|record| SeatView::new(record, now)))
    }

    /// A page of the audit log, optionally about one license, oldest first, by position.
    pub async fn audit_page(
        &self,
        license_key: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, ServiceError> {
        let after = page.after_id().map_err(invalid)?;
        let rows = self
            .store()
            .execute(AuditPage {
                license_key: license_key.map(str::to_owned),
                after,
                limit: page.read(),
            })
            .await?;
        Ok(Page::of(rows, page.limit, |entry| entry.id.to_string()))
    }

    /// The license with its owner, the first page of its activations and of its seats and the
    /// number of seats held now (counted by the store, whatever the size of the pool).
    pub async fn license_detail(&self, key: &str) -> Result<LicenseDetail, ServiceError> {
        let read = PageRequest::default().read();
        let (record, owner, activations, seats, seats_held) = self
            .store()
            .execute(GetLicenseDetail {
                key: key.to_owned(),
                limit: read,
                now: self.now(),
            })
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("license `{key}`")))?;
        let now = self.now();
        let activations = Page::of(activations, DEFAULT_LIMIT, |record| record.id.to_string());
        let seats = Page::of(seats, DEFAULT_LIMIT, |record| record.lease.session.clone())
            .map(|record| SeatView::new(record, now));
        Ok(LicenseDetail {
            record,
            owner,
            activations: activations.items,
            activations_next: activations.next,
            seats: seats.items,
            seats_next: seats.next,
            seats_held,
        })
    }

    /// The license's activation with the stored identifier `id`.
    pub async fn license_activation(
        &self,
        key: &str,
        id: i64,
    ) -> Result<ActivationRecord, ServiceError> {
        self.store()
            .execute(GetActivation {
                key: key.to_owned(),
                id,
            })
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("activation {id} of license `{key}`")))
    }

    /// The license's seat lease or borrow of `session`.
    pub async fn license_seat(&self, key: &str, session: &str) -> Result<SeatView, ServiceError> {
        let now = self.now();
        self.store()
            .execute(GetSeat {
                key: key.to_owned(),
                session: session.to_owned(),
            })
            .await?
            .map(|lease| SeatView::new(lease, now))
            .ok_or_else(|| {
                ServiceError::NotFound(format!("seat of session `{session}` of license `{key}`"))
            })
    }
}

fn invalid(error: PageError) -> ServiceError {
    ServiceError::Invalid(error.report())
}

job! {
    ClientsPage { after: Option<String>, limit: i64 } -> Vec<ClientRecord>;
    |this, records| { records.clients_page(this.after.as_deref(), this.limit).await }
}

job! {
    OrdersPage { client: Option<String>, after: Option<String>, limit: i64 } -> Vec<OrderRecord>;
    |this, records| {
        records.orders_page(this.client.as_deref(), this.after.as_deref(), this.limit).await
    }
}

job! {
    ActivationsPage { key: String, after: i64, limit: i64 } -> Option<Vec<ActivationRecord>>;
    |this, records| {
        if records.license(&this.key).await?.is_none() {
            return Ok(None);
        }
        records.activations_page(&this.key, this.after, this.limit).await.map(Some)
    }
}

job! {
    LicenseSeatsPage { key: String, after: Option<String>, limit: i64 } -> Option<Vec<LeaseRecord>>;
    |this, records| {
        if records.license(&this.key).await?.is_none() {
            return Ok(None);
        }
        let leases = records.leases_page(&this.key, this.after.as_deref(), this.limit).await?;
        Ok(Some(
            leases
                .into_iter()
                .map(|lease| LeaseRecord { license_key: this.key.clone(), lease })
                .collect(),
        ))
    }
}

job! {
    HeldSeatsPage {
        product: Option<String>,
        now: DateTime<Utc>,
        after: Option<(String, String)>,
        limit: i64,
    } -> Vec<LeaseRecord>;
    |this, records| {
        let after = this.after.as_ref().map(|(key, session)| (key.as_str(), session.as_str()));
        records.held_leases_page(this.product.as_deref(), this.now, after, this.limit).await
    }
}

job! {
    AuditPage { license_key: Option<String>, after: i64, limit: i64 } -> Vec<AuditEntry>;
    |this, records| { records.audit(this.license_key.as_deref(), this.after, this.limit).await }
}

job! {
    GetActivation { key: String, id: i64 } -> Option<ActivationRecord>;
    |this, records| { records.activation_by_id(&this.key, this.id).await }
}

job! {
    GetSeat { key: String, session: String } -> Option<LeaseRecord>;
    |this, records| {
        Ok(records
            .lease(&this.key, &this.session)
            .await?
            .map(|lease| LeaseRecord { license_key: this.key.clone(), lease }))
    }
}

/// What the license detail reads: the record, its owner, a page (plus one) of activations and of
/// seats, and the seats held now.
type DetailRows = (
    LicenseRecord,
    Option<String>,
    Vec<ActivationRecord>,
    Vec<LeaseRecord>,
    u64,
);

job! {
    GetLicenseDetail { key: String, limit: i64, now: DateTime<Utc> } -> Option<DetailRows>;
    |this, records| {
        // The seat count is kept under the license's lock.
        let Some(record) = records.lock_license(&this.key).await? else {
            return Ok(None);
        };
        let order_client = match &record.order {
            Some(order) => records.order(order).await?.map(|order| order.order.client),
            None => None,
        };
        let owner = owner_of(&record, order_client.as_deref());
        let activations = records.activations_page(&this.key, 0, this.limit).await?;
        let seats = records
            .leases_page(&this.key, None, this.limit)
            .await?
            .into_iter()
            .map(|lease| LeaseRecord { license_key: this.key.clone(), lease })
            .collect();
        let held = records.held_seats(&this.key, this.now).await?;
        Ok(Some((record, owner, activations, seats, held)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert_eq!(
            PageRequest::new(Some(0), None),
            Err(PageError::LimitOutOfRange(0))
        );
        assert_eq!(
            PageRequest::new(Some(1001), None),
            Err(PageError::LimitOutOfRange(1001))
        );
        assert_eq!(
            PageRequest::new(None, Some(String::new())),
            Ok(PageRequest::default())
        );
        assert_eq!(
            PageRequest::new(Some(1000), None).map(|page| page.limit),
            Ok(1000)
        );
    }

    #[test]
    fn a_page_names_its_last_row_only_when_more_were_read() {
        let full = Page::of(vec![1, 2, 3], 2, ToString::to_string);
        assert_eq!((full.items, full.next), (vec![1, 2], Some("2".to_owned())));
        let last = Page::of(vec![1, 2], 2, ToString::to_string);
        assert_eq!((last.items, last.next), (vec![1, 2], None));
    }

    #[test]
    fn seat_cursors_split_at_the_license_key() {
        let page = PageRequest::new(None, Some(seat_cursor("K-1", "a/b"))).ok();
        assert_eq!(
            page.as_ref().map(|page| page.after_seat()),
            Some(Ok(Some(("K-1", "a/b"))))
        );
        let bad = PageRequest::new(None, Some("x".to_owned())).ok();
        assert!(bad.is_some_and(|page| page.after_seat().is_err()));
    }
}
