//! The records of one PostgreSQL transaction: every [`Records`] method as SQL on the pooled
//! connection's transaction, each statement prepared once per connection and cached.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use licet_engine::certificate::{Binding, CertificateKind};
use licet_engine::state::{
    Activation, License, Order, ReturnedCertificate, SeatLease, TrialRecord,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::error::StoreError;
use crate::store::records::*;

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn license_columns(row: &Row) -> Result<LicenseColumns, StoreError> {
    Ok(LicenseColumns {
        key: row.try_get(0)?,
        product: row.try_get(1)?,
        license_type: row.try_get(2)?,
        edition: row.try_get(3)?,
        version: row.try_get(4)?,
        rental_ends_at: row.try_get(5)?,
        seats: row.try_get(6)?,
        features: row.try_get(7)?,
        counters: row.try_get(8)?,
        status: row.try_get(9)?,
        dongle: row.try_get(10)?,
        client: row.try_get(11)?,
        order: row.try_get(12)?,
        limited: row.try_get(13)?,
        created_at: row.try_get(14)?,
    })
}

fn order_record(row: &Row) -> Result<OrderRecord, StoreError> {
    Ok(OrderRecord {
        order: Order {
            id: row.try_get(0)?,
            client: row.try_get(1)?,
            features: from_json(row.try_get(3)?)?,
            counters: from_json(row.try_get(4)?)?,
        },
        product: row.try_get(2)?,
        created_at: from_secs(row.try_get(5)?)?,
    })
}

fn client_record(row: &Row) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        has_token: row.try_get(2)?,
        created_at: from_secs(row.try_get(3)?)?,
    })
}

/// The lease of a row, from column `offset` on (in [`lease_columns!`] order).
fn lease_row(row: &Row, offset: usize) -> Result<SeatLease, StoreError> {
    LeaseColumns {
        session: row.try_get(offset)?,
        binding: row.try_get(offset + 1)?,
        leased_at: row.try_get(offset + 2)?,
        expires_at: row.try_get(offset + 3)?,
        borrowed_until: row.try_get(offset + 4)?,
        certificate_serial: row.try_get(offset + 5)?,
        returned_at: row.try_get(offset + 6)?,
    }
    .into_lease()
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

/// The transaction view of one pooled connection.
pub(super) struct PgRecords<'t, 'c> {
    pub(super) tx: &'t deadpool_postgres::Transaction<'c>,
}

impl PgRecords<'_, '_> {
    /// `sql` prepared on this connection, from its statement cache after the first time.
    async fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        Ok(self.tx.prepare_cached(sql).await?)
    }

    async fn query(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        Ok(self.tx.query(&statement, params).await?)
    }

    async fn query_opt(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        Ok(self.tx.query_opt(&statement, params).await?)
    }

    async fn execute(&mut self, sql: &'static str, params: &Params<'_>) -> Result<u64, StoreError> {
        let statement = self.statement(sql).await?;
        Ok(self.tx.execute(&statement, params).await?)
    }

    /// Like `execute`, but a unique violation means `what` already exists.
    async fn insert(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
        what: String,
    ) -> Result<(), StoreError> {
        let statement = self.statement(sql).await?;
        match self.tx.execute(&statement, params).await {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists(what)),
            Err(error) => Err(error.into()),
        }
    }

    async fn license_query(
        &mut self,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<LicenseRecord>, StoreError> {
        match self.query_opt(sql, &[&key]).await? {
            Some(row) => Ok(Some(license_columns(&row)?.into_record()?)),
            None => Ok(None),
        }
    }
}

impl PgRecords<'_, '_> {
    /// The ids of the license's activations bound to `binding`, found through the binding's hash
    /// index alone and filtered here, so the plan does not depend on the table's statistics (a
    /// planner without them would also scan the license's other activations).
    async fn activation_ids(
        &mut self,
        key: &str,
        binding: &Binding,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = self
            .query(
                "SELECT id, license_key FROM activations WHERE binding = $1",
                &[&to_json(binding)?],
            )
            .await?;
        let mut ids = Vec::new();
        for row in &rows {
            let license_key: &str = row.try_get(1)?;
            if license_key == key {
                ids.push(row.try_get(0)?);
            }
        }
        Ok(ids)
    }

    /// Writes the index entries of activation `id`.
    async fn index_activation(
        &mut self,
        id: i64,
        key: &str,
        binding: &Binding,
        anchor: Option<&Binding>,
    ) -> Result<(), StoreError> {
        let (names, values): (Vec<String>, Vec<String>) =
            activation_components(binding, anchor).into_iter().unzip();
        self.execute(
            "INSERT INTO activation_components (activation_id, license_key, name, value) \
             SELECT $1, $2, name, value FROM unnest($3::text[], $4::text[]) AS entry (name, value)",
            &[&id, &key, &names, &values],
        )
        .await?;
        Ok(())
    }
}

/// An activation row (id, binding, time, anchor, certificate serial), decoded.
fn activation_record(row: &Row) -> Result<ActivationRecord, StoreError> {
    let anchor: Option<String> = row.try_get(3)?;
    Ok(ActivationRecord {
        id: row.try_get(0)?,
        activation: activation_from(
            row.try_get(1)?,
            row.try_get(2)?,
            anchor.as_deref(),
            row.try_get(4)?,
        )?,
    })
}

impl Records for PgRecords<'_, '_> {
    async fn lock_license(&mut self, key: &str) -> Result<Option<LicenseRecord>, StoreError> {
        self.license_query(
            concat!(
                "SELECT ",
                license_columns!(),
                " FROM licenses WHERE key = $1 FOR UPDATE"
            ),
            key,
        )
        .await
    }

    async fn lock_product(&mut self, product: &str) -> Result<(), StoreError> {
        self.query_opt(
            "SELECT id FROM products WHERE id = $1 FOR UPDATE",
            &[&product],
        )
        .await?;
        Ok(())
    }

    async fn license(&mut self, key: &str) -> Result<Option<LicenseRecord>, StoreError> {
        self.license_query(
            concat!(
                "SELECT ",
                license_columns!(),
                " FROM licenses WHERE key = $1"
            ),
            key,
        )
        .await
    }

    async fn licenses(&mut self, filter: &LicenseFilter) -> Result<Vec<LicenseRecord>, StoreError> {
        let rows = self
            .query(
                concat!(
                    "SELECT ",
                    license_columns!(),
                    " FROM licenses WHERE ($1::text IS NULL OR product = $1) AND \
                     ($2::text IS NULL OR client_id = $2 OR order_id IN (SELECT id FROM orders WHERE client_id = $2)) AND \
                     ($3::text IS NULL OR order_id = $3) AND ($4::text IS NULL OR key > $4) ORDER BY key LIMIT $5"
                ),
                &[&filter.product, &filter.client, &filter.order, &filter.after, &filter.limit],
            )
            .await?;
        rows.iter()
            .map(|row| license_columns(row)?.into_record())
            .collect()
    }

    async fn insert_license(&mut self, record: &LicenseRecord) -> Result<(), StoreError> {
        let license = &record.license;
        self.insert(
            "INSERT INTO licenses (key, product, license_type, edition, version, rental_ends_at, seats, \
             features, counters, status, dongle, client_id, order_id, limited, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
            &[
                &license.key,
                &license.product,
                &license.license_type,
                &license.edition,
                &license.version,
                &rental_end(license.term),
                &license.seats.map(i64::from),
                &to_json(&license.features)?,
                &to_json(&license.counters)?,
                &status_name(license.status),
                &license.dongle,
                &license.client,
                &record.order,
                &limited_json(&license.limited)?,
                &to_secs(record.created_at),
            ],
            format!("license `{}`", license.key),
        )
        .await
    }

    async fn save_license(
        &mut self,
        license: &License,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let changed = self
            .execute(
                "UPDATE licenses SET rental_ends_at = $2, features = $3, counters = $4, status = $5, \
                 limited = $6, updated_at = $7, seats = $8 WHERE key = $1",
                &[
                    &license.key,
                    &rental_end(license.term),
                    &to_json(&license.features)?,
                    &to_json(&license.counters)?,
                    &status_name(license.status),
                    &limited_json(&license.limited)?,
                    &to_secs(now),
                    &license.seats.map(i64::from),
                ],
            )
            .await?;
        if changed != 1 {
            return Err(StoreError::Conflict(format!(
                "license `{}` vanished",
                license.key
            )));
        }
        Ok(())
    }

    async fn order(&mut self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.query_opt(
            "SELECT id, client_id, product, features, counters, created_at FROM orders WHERE id = $1",
            &[&id],
        )
        .await?
        .as_ref()
        .map(order_record)
        .transpose()
    }

    async fn insert_order(&mut self, record: &OrderRecord) -> Result<(), StoreError> {
        self.insert(
            "INSERT INTO orders (id, client_id, product, features, counters, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &record.order.id,
                &record.order.client,
                &record.product,
                &to_json(&record.order.features)?,
                &to_json(&record.order.counters)?,
                &to_secs(record.created_at),
            ],
            format!("order `{}`", record.order.id),
        )
        .await
    }

    async fn save_order(&mut self, order: &Order) -> Result<(), StoreError> {
        self.execute(
            "UPDATE orders SET features = $2, counters = $3 WHERE id = $1",
            &[
                &order.id,
                &to_json(&order.features)?,
                &to_json(&order.counters)?,
            ],
        )
        .await?;
        Ok(())
    }

    async fn client(&mut self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.query_opt(
            "SELECT id, name, token_hash IS NOT NULL, created_at FROM clients WHERE id = $1",
            &[&id],
        )
        .await?
        .as_ref()
        .map(client_record)
        .transpose()
    }

    async fn insert_client(
        &mut self,
        record: &ClientRecord,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        self.insert(
            "INSERT INTO clients (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
            &[
                &record.id,
                &record.name,
                &token_hash,
                &to_secs(record.created_at),
            ],
            format!("client `{}`", record.id),
        )
        .await
    }

    async fn set_client_token(&mut self, id: &str, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute(
                "UPDATE clients SET token_hash = $2 WHERE id = $1",
                &[&id, &token_hash],
            )
            .await?
            == 1)
    }

    async fn insert_admin_token(
        &mut self,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO admin_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)",
            &[&name, &token_hash, &to_secs(now)],
        )
        .await?;
        Ok(())
    }

    async fn token_owner(&mut self, token_hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        if let Some(row) = self
            .query_opt(
                "SELECT name FROM admin_tokens WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?
        {
            return Ok(Some(TokenOwner::Administrator(row.try_get(0)?)));
        }
        match self
            .query_opt(
                "SELECT id FROM clients WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?
        {
            Some(row) => Ok(Some(TokenOwner::Client(row.try_get(0)?))),
            None => Ok(None),
        }
    }

    async fn upsert_product(
        &mut self,
        id: &str,
        name: &str,
        version: &str,
        policy_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO products (id, name, version, policy_hash, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, \
             policy_hash = excluded.policy_hash, updated_at = excluded.updated_at",
            &[&id, &name, &version, &policy_hash, &to_secs(now)],
        )
        .await?;
        Ok(())
    }

    async fn insert_activation(
        &mut self,
        key: &str,
        activation: &Activation,
    ) -> Result<(), StoreError> {
        let row = self
            .query_opt(
                "INSERT INTO activations (license_key, binding, activated_at, anchor, certificate_serial) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &key,
                    &to_json(&activation.binding)?,
                    &to_secs(activation.activated_at),
                    &to_json(activation.anchor())?,
                    &activation.certificate_serial,
                ],
            )
            .await?
            .ok_or_else(|| StoreError::Conflict("the activation was not stored".to_owned()))?;
        let id: i64 = row.try_get(0)?;
        self.index_activation(id, key, &activation.binding, Some(activation.anchor()))
            .await?;
        self.execute(
            "UPDATE licenses SET activation_count = activation_count + 1 WHERE key = $1",
            &[&key],
        )
        .await?;
        Ok(())
    }

    async fn set_activation_serial(
        &mut self,
        key: &str,
        binding: &Binding,
        serial: &str,
    ) -> Result<u64, StoreError> {
        let mut changed = 0;
        for id in self.activation_ids(key, binding).await? {
            changed += self
                .execute(
                    "UPDATE activations SET certificate_serial = $2 WHERE id = $1",
                    &[&id, &serial],
                )
                .await?;
        }
        Ok(changed)
    }

    async fn rebind_activation(
        &mut self,
        key: &str,
        from: &Binding,
        to: &Binding,
    ) -> Result<u64, StoreError> {
        let ids = self.activation_ids(key, from).await?;
        let to_binding = to_json(to)?;
        for &id in &ids {
            let row = self
                .query_opt(
                    "UPDATE activations SET binding = $2 WHERE id = $1 RETURNING anchor",
                    &[&id, &to_binding],
                )
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("activation {id} vanished")))?;
            let anchor: Option<String> = row.try_get(0)?;
            let anchor: Option<Binding> = anchor.as_deref().map(from_json).transpose()?;
            self.execute(
                "DELETE FROM activation_components WHERE activation_id = $1",
                &[&id],
            )
            .await?;
            self.index_activation(id, key, to, anchor.as_ref()).await?;
        }
        Ok(ids.len() as u64)
    }

    async fn delete_activation(&mut self, key: &str, binding: &Binding) -> Result<u64, StoreError> {
        // Index entries go with their activation (ON DELETE CASCADE).
        let mut deleted = 0;
        for id in self.activation_ids(key, binding).await? {
            deleted += self
                .execute("DELETE FROM activations WHERE id = $1", &[&id])
                .await?;
        }
        if deleted > 0 {
            let deleted = i64::try_from(deleted).unwrap_or(i64::MAX);
            self.execute(
                "UPDATE licenses SET activation_count = activation_count - $2 WHERE key = $1",
                &[&key, &deleted],
            )
            .await?;
        }
        Ok(deleted)
    }

    async fn activation_count(&mut self, key: &str) -> Result<u64, StoreError> {
        let count: i64 = match self
            .query_opt(
                "SELECT activation_count FROM licenses WHERE key = $1",
                &[&key],
            )
            .await?
        {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        u64::try_from(count).map_err(|_| StoreError::corrupt(format!("activation count `{count}`")))
    }

    async fn activations_sharing(
        &mut self,
        key: &str,
        binding: &Binding,
    ) -> Result<Vec<ActivationRecord>, StoreError> {
        let (names, values): (Vec<String>, Vec<String>) =
            indexed_components(binding).into_iter().unzip();
        // The components drive the join, each an equality lookup of the index: `OFFSET 0` keeps
        // the lateral lookup from being flattened into a join that a planner without statistics
        // would run as one scan of all the license's components.
        let rows = self
            .query(
                "SELECT id, binding, activated_at, anchor, certificate_serial FROM activations \
                 WHERE id IN (SELECT found.activation_id \
                 FROM unnest($2::text[], $3::text[]) AS wanted (name, value) \
                 CROSS JOIN LATERAL (SELECT c.activation_id FROM activation_components c \
                 WHERE c.license_key = $1 AND c.name = wanted.name AND c.value = wanted.value \
                 OFFSET 0) AS found) ORDER BY id",
                &[&key, &names, &values],
            )
            .await?;
        rows.iter().map(activation_record).collect()
    }

    async fn held_seats(&mut self, key: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let ended = self
            .execute(
                "UPDATE leases SET counted = 0 WHERE license_key = $1 AND counted = 1 \
                 AND COALESCE(borrowed_until, expires_at) <= $2",
                &[&key, &to_secs(now)],
            )
            .await?;
        if ended > 0 {
            let ended = i64::try_from(ended).unwrap_or(i64::MAX);
            self.execute(
                "UPDATE licenses SET seats_held = seats_held - $2 WHERE key = $1",
                &[&key, &ended],
            )
            .await?;
        }
        let held: i64 = match self
            .query_opt("SELECT seats_held FROM licenses WHERE key = $1", &[&key])
            .await?
        {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        Ok(u64::try_from(held).unwrap_or(0))
    }

    async fn lease(&mut self, key: &str, session: &str) -> Result<Option<SeatLease>, StoreError> {
        self.query_opt(
            concat!(
                "SELECT ",
                lease_columns!(),
                " FROM leases WHERE license_key = $1 AND session = $2"
            ),
            &[&key, &session],
        )
        .await?
        .map(|row| lease_row(&row, 0))
        .transpose()
    }

    async fn borrowed_leases(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<SeatLease>, StoreError> {
        let rows = self
            .query(
                concat!(
                    "SELECT ",
                    lease_columns!(),
                    " FROM leases WHERE license_key = $1 AND counted = 1 AND borrowed_until > $2 \
                     AND returned_at IS NULL ORDER BY leased_at, session"
                ),
                &[&key, &to_secs(now)],
            )
            .await?;
        rows.iter().map(|row| lease_row(row, 0)).collect()
    }

    async fn put_lease(&mut self, key: &str, lease: &SeatLease) -> Result<(), StoreError> {
        // A lease written is held (its end is ahead): it counts, once.
        let counted: Option<i32> = match self
            .query_opt(
                "SELECT counted FROM leases WHERE license_key = $1 AND session = $2",
                &[&key, &lease.session],
            )
            .await?
        {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        };
        if counted != Some(1) {
            self.execute(
                "UPDATE licenses SET seats_held = seats_held + 1 WHERE key = $1",
                &[&key],
            )
            .await?;
        }
        self.execute(
            "INSERT INTO leases (license_key, session, binding, leased_at, expires_at, borrowed_until, \
             certificate_serial, returned_at, counted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1) ON CONFLICT (license_key, session) DO UPDATE SET \
             binding = excluded.binding, leased_at = excluded.leased_at, \
             expires_at = excluded.expires_at, borrowed_until = excluded.borrowed_until, \
             certificate_serial = excluded.certificate_serial, returned_at = excluded.returned_at, \
             counted = 1",
            &[
                &key,
                &lease.session,
                &to_json(&lease.binding)?,
                &to_secs(lease.leased_at),
                &to_secs(lease.expires_at),
                &lease.borrowed_until.map(to_secs),
                &lease.certificate_serial,
                &lease.returned_at.map(to_secs),
            ],
        )
        .await?;
        Ok(())
    }

    async fn end_borrow(
        &mut self,
        key: &str,
        session: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE leases SET returned_at = $3 WHERE license_key = $1 AND session = $2 \
             AND borrowed_until IS NOT NULL",
            &[&key, &session, &to_secs(at)],
        )
        .await
    }

    async fn renew_lease(
        &mut self,
        key: &str,
        session: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE leases SET expires_at = $3 WHERE license_key = $1 AND session = $2",
            &[&key, &session, &to_secs(expires_at)],
        )
        .await
    }

    async fn delete_lease(&mut self, key: &str, session: &str) -> Result<u64, StoreError> {
        // One lookup by primary key; the count drops only for a lease that still counted.
        let rows = self
            .query(
                "DELETE FROM leases WHERE license_key = $1 AND session = $2 RETURNING counted",
                &[&key, &session],
            )
            .await?;
        let mut counted: i64 = 0;
        for row in &rows {
            let flag: i32 = row.try_get(0)?;
            counted += i64::from(flag == 1);
        }
        if counted > 0 {
            self.execute(
                "UPDATE licenses SET seats_held = seats_held - $2 WHERE key = $1",
                &[&key, &counted],
            )
            .await?;
        }
        Ok(rows.len() as u64)
    }

    async fn sweep_leases(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        // Leases that ended long ago and still count (no request for their license since) stop
        // counting before they are deleted.
        self.execute(
            "UPDATE licenses SET seats_held = seats_held - (SELECT COUNT(*) FROM leases s \
             WHERE s.license_key = licenses.key AND s.counted = 1 \
             AND COALESCE(s.borrowed_until, s.expires_at) < $1) \
             WHERE key IN (SELECT license_key FROM leases WHERE counted = 1 \
             AND COALESCE(borrowed_until, expires_at) < $1)",
            &[&to_secs(cutoff)],
        )
        .await?;
        self.execute(
            "DELETE FROM leases WHERE COALESCE(borrowed_until, expires_at) < $1",
            &[&to_secs(cutoff)],
        )
        .await
    }

    async fn transfers_since(
        &mut self,
        key: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let rows = self
            .query(
                "SELECT at FROM transfers WHERE license_key = $1 AND at > $2 \
                 ORDER BY at DESC LIMIT $3",
                &[&key, &to_secs(since), &i64::from(limit)],
            )
            .await?;
        rows.iter().map(|row| from_secs(row.try_get(0)?)).collect()
    }

    async fn insert_transfer(&mut self, key: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO transfers (license_key, at) VALUES ($1, $2)",
            &[&key, &to_secs(at)],
        )
        .await?;
        Ok(())
    }

    async fn trials(
        &mut self,
        product: &str,
        components: &BTreeMap<String, String>,
    ) -> Result<Vec<TrialRecord>, StoreError> {
        let names: Vec<&str> = components.keys().map(String::as_str).collect();
        let values: Vec<&str> = components.values().map(String::as_str).collect();
        let rows = self
            .query(
                "SELECT t.binding, t.edition, t.started_at, t.ends_at FROM trials t WHERE t.id IN \
                 (SELECT found.trial_id FROM unnest($2::text[], $3::text[]) AS wanted (name, value) \
                  CROSS JOIN LATERAL (SELECT c.trial_id FROM trial_components c WHERE c.product = $1 \
                  AND c.name = wanted.name AND c.value = wanted.value OFFSET 0) AS found) ORDER BY t.id",
                &[&product, &names, &values],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TrialRecord {
                    binding: from_json(row.try_get(0)?)?,
                    edition: row.try_get(1)?,
                    started_at: from_secs(row.try_get(2)?)?,
                    ends_at: from_secs(row.try_get(3)?)?,
                })
            })
            .collect()
    }

    async fn insert_trial(&mut self, product: &str, trial: &TrialRecord) -> Result<(), StoreError> {
        let row = self
            .query_opt(
                "INSERT INTO trials (product, binding, edition, started_at, ends_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &product,
                    &to_json(&trial.binding)?,
                    &trial.edition,
                    &to_secs(trial.started_at),
                    &to_secs(trial.ends_at),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::corrupt("trial insert returned no id"))?;
        let id: i64 = row.try_get(0)?;
        for (name, value) in binding_components(&trial.binding) {
            self.execute(
                "INSERT INTO trial_components (trial_id, product, name, value) VALUES ($1, $2, $3, $4)",
                &[&id, &product, &name, &value],
            )
            .await?;
        }
        Ok(())
    }

    async fn bump_update_counter(&mut self, key: &str) -> Result<i64, StoreError> {
        let row = self
            .query_opt(
                "UPDATE licenses SET update_counter = update_counter + 1 WHERE key = $1 RETURNING update_counter",
                &[&key],
            )
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("license `{key}` vanished")))?;
        Ok(row.try_get(0)?)
    }

    async fn returned_certificate(
        &mut self,
        key: &str,
        serial: &str,
    ) -> Result<Option<ReturnedCertificate>, StoreError> {
        let row = self
            .query_opt(
                "SELECT kind, returned_at FROM returned_serials WHERE license_key = $1 AND serial = $2",
                &[&key, &serial],
            )
            .await?;
        row.map(|row| {
            let kind: String = row.try_get(0)?;
            Ok(ReturnedCertificate {
                serial: serial.to_owned(),
                kind: returned_kind_from(&kind)?,
                returned_at: from_secs(row.try_get(1)?)?,
            })
        })
        .transpose()
    }

    async fn insert_returned_serial(
        &mut self,
        key: &str,
        serial: &str,
        kind: CertificateKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO returned_serials (license_key, serial, returned_at, kind) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (license_key, serial) DO NOTHING",
            &[&key, &serial, &to_secs(at), &returned_kind_name(kind)],
        )
        .await?;
        Ok(())
    }

    async fn append_audit(&mut self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let row = self
            .query_opt(
                "INSERT INTO audit (at, actor, action, license_key, verdict, code, rule, message, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &to_secs(entry.at),
                    &entry.actor,
                    &entry.action,
                    &entry.license_key,
                    &entry.verdict,
                    &entry.code,
                    &entry.rule,
                    &entry.message,
                    &entry.detail,
                ],
            )
            .await?
            .ok_or_else(|| StoreError::corrupt("audit insert returned no id"))?;
        Ok(row.try_get(0)?)
    }

    async fn audit(
        &mut self,
        license_key: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .query(
                "SELECT id, at, actor, action, license_key, verdict, code, rule, message, detail FROM audit \
                 WHERE ($1::text IS NULL OR license_key = $1) AND id > $2 ORDER BY id LIMIT $3",
                &[&license_key, &after, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get(0)?,
                    at: from_secs(row.try_get(1)?)?,
                    actor: row.try_get(2)?,
                    action: row.try_get(3)?,
                    license_key: row.try_get(4)?,
                    verdict: row.try_get(5)?,
                    code: row.try_get(6)?,
                    rule: row.try_get(7)?,
                    message: row.try_get(8)?,
                    detail: row.try_get(9)?,
                })
            })
            .collect()
    }

    async fn search_audit(&mut self, search: &AuditSearch) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .query(
                "SELECT id, at, actor, action, license_key, verdict, code, rule, message, detail FROM audit \
                 WHERE ($1::text IS NULL OR license_key = $1) AND \
                 ($2::text IS NULL OR license_key IN (SELECT key FROM licenses WHERE client_id = $2 OR \
                   order_id IN (SELECT id FROM orders WHERE client_id = $2)) OR \
                   substr(actor, 1, length($2) + 8) = 'client:' || $2 || '@') AND \
                 ($3::text IS NULL OR code = $3) AND ($4::bigint IS NULL OR id < $4) \
                 ORDER BY id DESC LIMIT $5",
                &[
                    &search.license_key,
                    &search.client,
                    &search.code,
                    &search.before,
                    &search.limit,
                ],
            )
            .await?;
        rows.iter().map(audit_row).collect()
    }

    async fn seat_events(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .query(
                "SELECT id, at, actor, action, license_key, verdict, code, rule, message, detail FROM audit \
                 WHERE at >= $1 AND at < $2 AND verdict = 'allow' AND \
                 action IN ('checkout', 'heartbeat', 'release', 'borrow', 'return-borrowed') AND \
                 ($3::text IS NULL OR license_key = $3) ORDER BY id LIMIT $4",
                &[&to_secs(from), &to_secs(to), &license_key, &limit],
            )
            .await?;
        rows.iter().map(audit_row).collect()
    }

    async fn denial_counts(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        license_key: Option<&str>,
    ) -> Result<Vec<DenialCount>, StoreError> {
        let rows = self
            .query(
                "SELECT code, COUNT(*), MAX(at) FROM audit \
                 WHERE at >= $1 AND at < $2 AND verdict = 'deny' AND ($3::text IS NULL OR license_key = $3) \
                 GROUP BY code ORDER BY COUNT(*) DESC, code",
                &[&to_secs(from), &to_secs(to), &license_key],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DenialCount {
                    code: row.try_get(0)?,
                    count: row.try_get(1)?,
                    last_at: from_secs(row.try_get(2)?)?,
                })
            })
            .collect()
    }

    async fn client_password(&mut self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        match self
            .query_opt("SELECT password_hash FROM clients WHERE id = $1", &[&id])
            .await?
        {
            Some(row) => Ok(Some(row.try_get(0)?)),
            None => Ok(None),
        }
    }

    async fn set_client_password(
        &mut self,
        id: &str,
        password_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .execute(
                "UPDATE clients SET password_hash = $2 WHERE id = $1",
                &[&id, &password_hash],
            )
            .await?
            == 1)
    }

    async fn insert_response_file(
        &mut self,
        record: &ResponseFileRecord,
    ) -> Result<i64, StoreError> {
        let row = self
            .query_opt(
                "INSERT INTO response_files (license_key, kind, name, file, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &record.license_key,
                    &record.kind,
                    &record.name,
                    &record.file,
                    &to_secs(record.created_at),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::corrupt("response file insert returned no id"))?;
        let id: i64 = row.try_get(0)?;
        self.execute(
            "DELETE FROM response_files WHERE license_key = $1 AND id NOT IN \
             (SELECT id FROM response_files WHERE license_key = $1 ORDER BY id DESC LIMIT $2)",
            &[&record.license_key, &KEPT_RESPONSE_FILES],
        )
        .await?;
        Ok(id)
    }

    async fn response_files(
        &mut self,
        key: &str,
        limit: i64,
    ) -> Result<Vec<ResponseFileRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, license_key, kind, name, file, created_at FROM response_files \
                 WHERE license_key = $1 ORDER BY id DESC LIMIT $2",
                &[&key, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ResponseFileRecord {
                    id: row.try_get(0)?,
                    license_key: row.try_get(1)?,
                    kind: row.try_get(2)?,
                    name: row.try_get(3)?,
                    file: row.try_get(4)?,
                    created_at: from_secs(row.try_get(5)?)?,
                })
            })
            .collect()
    }

    async fn clients_page(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, name, token_hash IS NOT NULL, created_at FROM clients \
                 WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        rows.iter().map(client_record).collect()
    }

    async fn orders_page(
        &mut self,
        client: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, client_id, product, features, counters, created_at FROM orders \
                 WHERE ($1::text IS NULL OR client_id = $1) AND ($2::text IS NULL OR id > $2) \
                 ORDER BY id LIMIT $3",
                &[&client, &after, &limit],
            )
            .await?;
        rows.iter().map(order_record).collect()
    }

    async fn activations_page(
        &mut self,
        key: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ActivationRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT id, binding, activated_at, anchor, certificate_serial FROM activations \
                 WHERE license_key = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&key, &after, &limit],
            )
            .await?;
        rows.iter().map(activation_record).collect()
    }

    async fn activation_by_id(
        &mut self,
        key: &str,
        id: i64,
    ) -> Result<Option<ActivationRecord>, StoreError> {
        self.query_opt(
            "SELECT id, binding, activated_at, anchor, certificate_serial FROM activations \
             WHERE license_key = $1 AND id = $2",
            &[&key, &id],
        )
        .await?
        .as_ref()
        .map(activation_record)
        .transpose()
    }

    async fn leases_page(
        &mut self,
        key: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SeatLease>, StoreError> {
        let rows = self
            .query(
                concat!(
                    "SELECT ",
                    lease_columns!(),
                    " FROM leases WHERE license_key = $1 AND ($2::text IS NULL OR session > $2) \
                     ORDER BY session LIMIT $3"
                ),
                &[&key, &after, &limit],
            )
            .await?;
        rows.iter().map(|row| lease_row(row, 0)).collect()
    }

    async fn held_leases_page(
        &mut self,
        product: Option<&str>,
        now: DateTime<Utc>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<LeaseRecord>, StoreError> {
        let (after_key, after_session) = after.unzip();
        let rows = self
            .query(
                concat!(
                    "SELECT s.license_key, ",
                    lease_columns!(s),
                    " FROM leases s JOIN licenses l ON l.key = s.license_key \
                     WHERE ($1::text IS NULL OR l.product = $1) AND \
                     ((s.borrowed_until IS NULL AND s.expires_at > $2) OR s.borrowed_until > $2) \
                     AND ($3::text IS NULL OR s.license_key > $3 \
                     OR (s.license_key = $3 AND s.session > $4::text)) \
                     ORDER BY s.license_key, s.session LIMIT $5"
                ),
                &[&product, &to_secs(now), &after_key, &after_session, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LeaseRecord {
                    license_key: row.try_get(0)?,
                    lease: lease_row(row, 1)?,
                })
            })
            .collect()
    }

    async fn borrowed_seats(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
        at_most: i64,
    ) -> Result<u64, StoreError> {
        let count: i64 = match self
            .query_opt(
                "SELECT COUNT(*) FROM (SELECT 1 FROM leases WHERE license_key = $1 \
                 AND counted = 1 AND borrowed_until > $2 AND returned_at IS NULL LIMIT $3) b",
                &[&key, &to_secs(now), &at_most],
            )
            .await?
        {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn seat_usage(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SeatUsage>, StoreError> {
        let rows = self
            .query(
                "SELECT l.key, l.seats, \
                     (SELECT COUNT(*) FROM leases s WHERE s.license_key = l.key AND \
                      ((s.borrowed_until IS NULL AND s.expires_at > $1) OR s.borrowed_until > $1)), \
                     (SELECT COUNT(*) FROM leases s WHERE s.license_key = l.key AND s.counted = 1 \
                      AND s.borrowed_until > $1 AND s.returned_at IS NULL) \
                     FROM licenses l WHERE l.seats IS NOT NULL ORDER BY l.key LIMIT $2",
                &[&to_secs(now), &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let seats: i64 = row.try_get(1)?;
                let held: i64 = row.try_get(2)?;
                let borrowed: i64 = row.try_get(3)?;
                Ok(SeatUsage {
                    license_key: row.try_get(0)?,
                    seats: u64::try_from(seats).unwrap_or(0),
                    held: u64::try_from(held).unwrap_or(0),
                    borrowed: u64::try_from(borrowed).unwrap_or(0),
                })
            })
            .collect()
    }
}

fn audit_row(row: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: row.try_get(0)?,
        at: from_secs(row.try_get(1)?)?,
        actor: row.try_get(2)?,
        action: row.try_get(3)?,
        license_key: row.try_get(4)?,
        verdict: row.try_get(5)?,
        code: row.try_get(6)?,
        rule: row.try_get(7)?,
        message: row.try_get(8)?,
        detail: row.try_get(9)?,
    })
}
