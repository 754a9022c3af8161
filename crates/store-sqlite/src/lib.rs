//! SQLite backend: the embedded default. One file, zero set-up.
//!
//! WAL mode; reads go through a pool of connections, writes through a single writer connection
//! (a pool of one) with `BEGIN IMMEDIATE`, so concurrent writers queue in the process instead of
//! racing for SQLite's lock and surfacing `SQLITE_BUSY` to a client.

mod billing;
mod migrate;
mod money;
mod row;

pub use migrate::MIGRATIONS;

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::Timestamp;
use lastmile_domain::audit::AuditEvent;
use lastmile_domain::auth::Operator;
use lastmile_domain::billing::account::{
    Account, Allocation, CreditNote, LedgerEntry, Payment, Refund,
};
use lastmile_domain::billing::discount::Discount;
use lastmile_domain::billing::dunning::{DunningActionKind, DunningPolicy};
use lastmile_domain::billing::invoice::{BillingRun, Invoice};
use lastmile_domain::billing::tax::TaxZone;
use lastmile_domain::ids::*;
use lastmile_domain::job::{JobStatus, ProvisioningJob};
use lastmile_domain::nas::Nas;
use lastmile_domain::plan::{Plan, PlanVersion};
use lastmile_domain::service::Service;
use lastmile_domain::subscriber::Subscriber;
use lastmile_domain::timeline::TimelineEvent;
use lastmile_store::rows::{self, micros, to_json};
use lastmile_store::*;
use row::{db_err, Row};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) read: SqlitePool,
    write: SqlitePool,
}

/// The text form of an id column.
pub(crate) fn id(u: Uuid) -> String {
    u.hyphenated().to_string()
}

fn opt_id(u: Option<Uuid>) -> Option<String> {
    u.map(id)
}

/// Creates the database file readable by its owner only (it holds personal data) if it does
/// not exist yet. SQLite creates the WAL and shared-memory files with the database file's
/// mode, so they are private too. An existing file keeps the mode its operator gave it.
fn create_private(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(
            format!("cannot create the database file {}: {e}", path.display()).into(),
        )),
    }
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

fn opt_json_text(v: Option<&serde_json::Value>) -> Option<String> {
    v.map(json_text)
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path`, `sqlite:path` or a
    /// plain path) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(db_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        create_private(opts.get_filename())?;
        // The one writer keeps 32 MiB of pages (SQLite's default is 2 MiB): a billing batch
        // inserts into many indexes, whose pages then stay in memory between batches. It
        // checkpoints the WAL every ~40 MB rather than every 4 MB: each checkpoint syncs the
        // whole database file, and a billing run would otherwise wait on one per batch.
        // Readers keep the defaults.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                opts.clone()
                    .pragma("cache_size", "-32768")
                    .pragma("wal_autocheckpoint", "10000"),
            )
            .await
            .map_err(db_err)?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(db_err)?;
        let store = Self { read, write };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(&self.write).await
    }

    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Inserts an audit event, and marks the idempotency key of the request in progress as
/// committed in the same transaction (`rows::idempotency_mark`). Every business write goes
/// through here.
pub(crate) async fn insert_audit(c: &mut SqliteConnection, a: &AuditEvent) -> Result<()> {
    insert_audit_row(c, a).await?;
    mark_idempotency(c, a, None).await
}

/// Records on the current idempotent request's key what this transaction commits; fails the
/// transaction if a retry took the reservation over.
async fn mark_idempotency(
    c: &mut SqliteConnection,
    a: &AuditEvent,
    change: Option<&ServiceChange>,
) -> Result<()> {
    let Some((req, commit)) = rows::idempotency_mark(a, change)? else {
        return Ok(());
    };
    let done = sqlx::query(rows::IDEMPOTENCY_MARK)
        .bind(&req.scope)
        .bind(&req.key)
        .bind(&req.owner)
        .bind(json_text(&commit))
        .execute(c)
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(rows::idempotency_mark_lost())
    }
}

async fn insert_audit_row(c: &mut SqliteConnection, a: &AuditEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor_id, actor_name, subscriber_id, entity_type,
             entity_id, action, before, after, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id(a.id.0))
    .bind(micros(a.at))
    .bind(&a.actor.id)
    .bind(&a.actor.name)
    .bind(opt_id(a.subscriber_id.map(|s| s.0)))
    .bind(&a.entity_type)
    .bind(&a.entity_id)
    .bind(&a.action)
    .bind(opt_json_text(a.before.as_ref()))
    .bind(opt_json_text(a.after.as_ref()))
    .bind(&a.reason)
    .execute(c)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn insert_job(c: &mut SqliteConnection, j: &ProvisioningJob) -> Result<()> {
    sqlx::query(
        "INSERT INTO provisioning_jobs (id, subscriber_id, service_id, kind, payload, status,
             attempts, max_attempts, run_after, locked_until, last_error, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id(j.id.0))
    .bind(opt_id(j.subscriber_id.map(|s| s.0)))
    .bind(opt_id(j.service_id.map(|s| s.0)))
    .bind(&j.kind)
    .bind(json_text(&j.payload))
    .bind(j.status.as_str())
    .bind(j.attempts)
    .bind(j.max_attempts)
    .bind(micros(j.run_after))
    .bind(j.locked_until.map(micros))
    .bind(&j.last_error)
    .bind(micros(j.created_at))
    .bind(micros(j.updated_at))
    .execute(c)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn insert_plan_version(c: &mut SqliteConnection, v: &PlanVersion) -> Result<()> {
    let t = &v.terms;
    sqlx::query(
        "INSERT INTO plan_versions (id, plan_id, version, download_kbps, upload_kbps, burst,
             price_minor, currency, billing_interval, setup_fee_minor, data_cap_bytes, cap_policy,
             free_window, contract_months, early_termination_fee_minor, tax_class, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(id(v.id.0))
    .bind(id(v.plan_id.0))
    .bind(v.version)
    .bind(i64::from(t.download_kbps))
    .bind(i64::from(t.upload_kbps))
    .bind(
        t.burst
            .as_ref()
            .map(to_json)
            .transpose()?
            .as_ref()
            .map(json_text),
    )
    .bind(t.price_minor)
    .bind(t.currency.as_str())
    .bind(t.billing_interval.as_str())
    .bind(t.setup_fee_minor)
    .bind(t.data_cap_bytes)
    .bind(json_text(&to_json(&t.cap_policy)?))
    .bind(
        t.free_window
            .as_ref()
            .map(to_json)
            .transpose()?
            .as_ref()
            .map(json_text),
    )
    .bind(i64::from(t.contract_months))
    .bind(t.early_termination_fee_minor)
    .bind(&t.tax_class)
    .bind(micros(v.created_at))
    .execute(c)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Fails with `Stale` when an optimistic update touched no row.
/// Writes a service business event (row, timeline event, audit, jobs) in the caller's
/// transaction; `Stale` if the service's revision moved on.
pub(crate) async fn write_service_change(
    c_: &mut SqliteConnection,
    c: &ServiceChange,
) -> Result<()> {
    let s = &c.service;
    let e = &c.event;
    let done = sqlx::query(
        "UPDATE services SET plan_id = $2, plan_version_id = $3, status = $4,
                 suspension_cause = $5, updated_at = $6, revision = $7
             WHERE id = $1 AND revision = $8",
    )
    .bind(id(s.id.0))
    .bind(id(s.plan_id.0))
    .bind(id(s.plan_version_id.0))
    .bind(s.status.as_str())
    .bind(s.suspension_cause.map(|c| c.as_str()))
    .bind(micros(s.updated_at))
    .bind(s.revision)
    .bind(c.expected_revision)
    .execute(&mut *c_)
    .await
    .map_err(db_err)?;
    expect_one(done.rows_affected(), "service")?;
    sqlx::query(
        "INSERT INTO service_events (id, subscriber_id, service_id, seq, kind, effective_at,
                 recorded_at, plan_id, plan_version_id, suspension_cause, reason, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id(e.id.0))
    .bind(id(e.subscriber_id.0))
    .bind(id(e.service_id.0))
    .bind(e.seq)
    .bind(e.kind.as_str())
    .bind(micros(e.effective_at))
    .bind(micros(e.recorded_at))
    .bind(opt_id(e.plan_id.map(|p| p.0)))
    .bind(opt_id(e.plan_version_id.map(|p| p.0)))
    .bind(e.suspension_cause.map(|c| c.as_str()))
    .bind(&e.reason)
    .bind(&e.actor)
    .execute(&mut *c_)
    .await
    .map_err(db_err)?;
    insert_audit_row(c_, &c.audit).await?;
    mark_idempotency(c_, &c.audit, Some(c)).await?;
    for j in &c.jobs {
        insert_job(c_, j).await?;
    }
    Ok(())
}

pub(crate) fn expect_one(rows: u64, entity: &'static str) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale { entity })
    }
}

const PLAN_SELECT: &str =
    "SELECT p.*, v.id AS v_id, v.plan_id AS v_plan_id, v.version AS v_version,
    v.download_kbps AS v_download_kbps, v.upload_kbps AS v_upload_kbps, v.burst AS v_burst,
    v.price_minor AS v_price_minor, v.currency AS v_currency,
    v.billing_interval AS v_billing_interval, v.setup_fee_minor AS v_setup_fee_minor,
    v.data_cap_bytes AS v_data_cap_bytes, v.cap_policy AS v_cap_policy,
    v.free_window AS v_free_window, v.contract_months AS v_contract_months,
    v.early_termination_fee_minor AS v_early_termination_fee_minor, v.tax_class AS v_tax_class,
    v.created_at AS v_created_at
    FROM plans p JOIN plan_versions v ON v.id = p.current_version_id";

/// Appends `AND id > after ORDER BY id LIMIT n` for keyset pagination.
pub(crate) fn paginate(q: &mut QueryBuilder<Sqlite>, id_col: &str, page: Page) {
    if let Some(after) = page.after {
        q.push(format_args!(" AND {id_col} > "))
            .push_bind(id(after));
    }
    q.push(format_args!(" ORDER BY {id_col} LIMIT "))
        .push_bind(i64::from(page.limit));
}

/// Decodes every row of a result with one of the shared row decoders.
pub(crate) fn collect<T>(
    rows: Vec<sqlx::sqlite::SqliteRow>,
    decode: fn(&Row<sqlx::sqlite::SqliteRow>) -> Result<T>,
) -> Result<Vec<T>> {
    rows.into_iter().map(|r| decode(&Row(r))).collect()
}

/// `%needle%` for LIKE, with the wildcards in the needle escaped (ESCAPE '\').
fn like_pattern(needle: &str) -> String {
    let mut p = String::from("%");
    for c in needle.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn next_counter(&self, name: &str) -> Result<i64> {
        let mut tx = self.begin().await?;
        let v: i64 = sqlx::query_scalar(
            "INSERT INTO counters (name, value) VALUES ($1, 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1
             RETURNING value",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(v)
    }

    async fn insert_operator(
        &self,
        operator: &Operator,
        token: &ApiToken,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO operators (id, name, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id(operator.id.0))
            .bind(&operator.name)
            .bind(operator.role.as_str())
            .bind(micros(operator.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO api_tokens (id, operator_id, token_hash, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id(token.id.0))
        .bind(id(token.operator_id.0))
        .bind(&token.token_hash)
        .bind(micros(token.created_at))
        .bind(token.revoked_at.map(micros))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, Operator)>> {
        let row = sqlx::query(
            "SELECT t.*, o.name AS operator_name, o.role AS operator_role,
                    o.created_at AS operator_created_at
             FROM api_tokens t JOIN operators o ON o.id = t.operator_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await
        .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let r = Row(r);
                Ok(Some((rows::api_token(&r)?, rows::operator(&r)?)))
            }
        }
    }

    async fn insert_subscriber(&self, s: &Subscriber, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO subscribers (id, number, name, email, phone, billing_address, currency,
                 tax_zone, billing_day, status, custom_fields, created_at, updated_at, revision,
                 dunning_policy)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(id(s.id.0))
        .bind(s.number.as_str())
        .bind(&s.name)
        .bind(&s.email)
        .bind(&s.phone)
        .bind(json_text(&to_json(&s.billing_address)?))
        .bind(s.currency.as_str())
        .bind(&s.tax_zone)
        .bind(i64::from(s.billing_day.get()))
        .bind(s.status.as_str())
        .bind(json_text(&to_json(&s.custom_fields)?))
        .bind(micros(s.created_at))
        .bind(micros(s.updated_at))
        .bind(s.revision)
        .bind(&s.dunning_policy)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn update_subscriber(
        &self,
        s: &Subscriber,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if s.status == lastmile_domain::subscriber::SubscriberStatus::Closed {
            refuse_close_with_live_services(&mut tx, s.id).await?;
        }
        let done = sqlx::query(
            "UPDATE subscribers SET number = $2, name = $3, email = $4, phone = $5,
                 billing_address = $6, currency = $7, tax_zone = $8, billing_day = $9,
                 status = $10, custom_fields = $11, updated_at = $12, revision = $13,
                 dunning_policy = $15
             WHERE id = $1 AND revision = $14",
        )
        .bind(id(s.id.0))
        .bind(s.number.as_str())
        .bind(&s.name)
        .bind(&s.email)
        .bind(&s.phone)
        .bind(json_text(&to_json(&s.billing_address)?))
        .bind(s.currency.as_str())
        .bind(&s.tax_zone)
        .bind(i64::from(s.billing_day.get()))
        .bind(s.status.as_str())
        .bind(json_text(&to_json(&s.custom_fields)?))
        .bind(micros(s.updated_at))
        .bind(s.revision)
        .bind(expected_revision)
        .bind(&s.dunning_policy)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        expect_one(done.rows_affected(), "subscriber")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_subscriber(&self, sid: SubscriberId) -> Result<Option<Subscriber>> {
        sqlx::query("SELECT * FROM subscribers WHERE id = $1")
            .bind(id(sid.0))
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?
            .map(|r| rows::subscriber(&Row(r)))
            .transpose()
    }

    async fn list_subscribers(&self, f: &SubscriberFilter, page: Page) -> Result<Vec<Subscriber>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM subscribers WHERE 1 = 1");
        if let Some(needle) = &f.q {
            let p = like_pattern(needle);
            q.push(" AND (lower(name) LIKE ")
                .push_bind(p.clone())
                .push(" ESCAPE '\\' OR lower(number) LIKE ")
                .push_bind(p.clone())
                .push(" ESCAPE '\\' OR lower(email) LIKE ")
                .push_bind(p)
                .push(" ESCAPE '\\')");
        }
        if let Some(st) = f.status {
            q.push(" AND status = ").push_bind(st.as_str());
        }
        if let Some(n) = &f.number {
            q.push(" AND number = ").push_bind(n.clone());
        }
        paginate(&mut q, "id", page);
        let rows = q.build().fetch_all(&self.read).await.map_err(db_err)?;
        collect(rows, rows::subscriber)
    }

    async fn insert_plan(&self, p: &Plan, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO plans (id, code, name, status, current_version_id, created_at,
                 updated_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id(p.id.0))
        .bind(&p.code)
        .bind(&p.name)
        .bind(p.status.as_str())
        .bind(id(p.current.id.0))
        .bind(micros(p.created_at))
        .bind(micros(p.updated_at))
        .bind(p.revision)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_plan_version(&mut tx, &p.current).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn update_plan(
        &self,
        p: &Plan,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // The revision check comes first: a stale writer must fail as `Stale` before it tries to
        // insert a version that a concurrent writer may already have stored.
        let done = sqlx::query(
            "UPDATE plans SET code = $2, name = $3, status = $4, current_version_id = $5,
                 updated_at = $6, revision = $7
             WHERE id = $1 AND revision = $8",
        )
        .bind(id(p.id.0))
        .bind(&p.code)
        .bind(&p.name)
        .bind(p.status.as_str())
        .bind(id(p.current.id.0))
        .bind(micros(p.updated_at))
        .bind(p.revision)
        .bind(expected_revision)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        expect_one(done.rows_affected(), "plan")?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM plan_versions WHERE id = $1")
            .bind(id(p.current.id.0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            insert_plan_version(&mut tx, &p.current).await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_plan(&self, pid: PlanId) -> Result<Option<Plan>> {
        let mut q = QueryBuilder::<Sqlite>::new(PLAN_SELECT);
        q.push(" WHERE p.id = ").push_bind(id(pid.0));
        q.build()
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?
            .map(|r| rows::plan(&Row(r)))
            .transpose()
    }

    async fn list_plans(&self, f: &PlanFilter, page: Page) -> Result<Vec<Plan>> {
        let mut q = QueryBuilder::<Sqlite>::new(PLAN_SELECT);
        q.push(" WHERE 1 = 1");
        if let Some(st) = f.status {
            q.push(" AND p.status = ").push_bind(st.as_str());
        }
        paginate(&mut q, "p.id", page);
        let rows = q.build().fetch_all(&self.read).await.map_err(db_err)?;
        collect(rows, rows::plan)
    }

    async fn get_plan_version(&self, vid: PlanVersionId) -> Result<Option<PlanVersion>> {
        sqlx::query("SELECT * FROM plan_versions WHERE id = $1")
            .bind(id(vid.0))
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?
            .map(|r| rows::plan_version(&Row(r), ""))
            .transpose()
    }

    async fn list_plan_versions(&self, pid: PlanId) -> Result<Vec<PlanVersion>> {
        sqlx::query("SELECT * FROM plan_versions WHERE plan_id = $1 ORDER BY version")
            .bind(id(pid.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| rows::plan_version(&Row(r), ""))
            .collect()
    }

    async fn insert_nas(&self, n: &Nas, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO nas (id, name, ip, secret_ciphertext, vendor, coa_port, api_url,
                 api_username, api_password_ciphertext, created_at, updated_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(id(n.id.0))
        .bind(&n.name)
        .bind(n.ip.to_string())
        .bind(&n.secret_ciphertext)
        .bind(n.vendor.as_str())
        .bind(i64::from(n.coa_port))
        .bind(&n.api_url)
        .bind(&n.api_username)
        .bind(&n.api_password_ciphertext)
        .bind(micros(n.created_at))
        .bind(micros(n.updated_at))
        .bind(n.revision)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn update_nas(&self, n: &Nas, expected_revision: i64, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE nas SET name = $2, ip = $3, secret_ciphertext = $4, vendor = $5,
                 coa_port = $6, api_url = $7, api_username = $8, api_password_ciphertext = $9,
                 updated_at = $10, revision = $11
             WHERE id = $1 AND revision = $12",
        )
        .bind(id(n.id.0))
        .bind(&n.name)
        .bind(n.ip.to_string())
        .bind(&n.secret_ciphertext)
        .bind(n.vendor.as_str())
        .bind(i64::from(n.coa_port))
        .bind(&n.api_url)
        .bind(&n.api_username)
        .bind(&n.api_password_ciphertext)
        .bind(micros(n.updated_at))
        .bind(n.revision)
        .bind(expected_revision)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        expect_one(done.rows_affected(), "nas")?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_nas(&self, nid: NasId, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM nas WHERE id = $1")
            .bind(id(nid.0))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "nas" });
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_nas(&self, nid: NasId) -> Result<Option<Nas>> {
        sqlx::query("SELECT * FROM nas WHERE id = $1")
            .bind(id(nid.0))
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?
            .map(|r| rows::nas(&Row(r)))
            .transpose()
    }

    async fn list_nas(&self, page: Page) -> Result<Vec<Nas>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM nas WHERE 1 = 1");
        paginate(&mut q, "id", page);
        let rows = q.build().fetch_all(&self.read).await.map_err(db_err)?;
        collect(rows, rows::nas)
    }

    async fn insert_service(&self, s: &Service, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        refuse_service_of_closed_subscriber(&mut tx, s.subscriber_id).await?;
        sqlx::query(
            "INSERT INTO services (id, subscriber_id, plan_id, plan_version_id, initial_plan_id,
                 initial_plan_version_id, status, suspension_cause, service_address, access_kind,
                 username, password_ciphertext, mac_address, circuit_id, static_ip, ip_pool,
                 nas_id, created_at, updated_at, revision)
             VALUES ($1, $2, $3, $4, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 $16, $17, $18)",
        )
        .bind(id(s.id.0))
        .bind(id(s.subscriber_id.0))
        .bind(id(s.plan_id.0))
        .bind(id(s.plan_version_id.0))
        .bind(s.status.as_str())
        .bind(s.suspension_cause.map(|c| c.as_str()))
        .bind(json_text(&to_json(&s.service_address)?))
        .bind(s.access_kind.as_str())
        .bind(&s.username)
        .bind(&s.password_ciphertext)
        .bind(&s.mac_address)
        .bind(&s.circuit_id)
        .bind(s.static_ip.map(|ip| ip.to_string()))
        .bind(&s.ip_pool)
        .bind(opt_id(s.nas_id.map(|n| n.0)))
        .bind(micros(s.created_at))
        .bind(micros(s.updated_at))
        .bind(s.revision)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_service(&self, sid: ServiceId) -> Result<Option<Service>> {
        sqlx::query("SELECT * FROM services WHERE id = $1")
            .bind(id(sid.0))
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?
            .map(|r| rows::service(&Row(r)))
            .transpose()
    }

    async fn list_services(&self, f: &ServiceFilter, page: Page) -> Result<Vec<Service>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM services WHERE 1 = 1");
        if let Some(s) = f.subscriber_id {
            q.push(" AND subscriber_id = ").push_bind(id(s.0));
        }
        if let Some(st) = f.status {
            q.push(" AND status = ").push_bind(st.as_str());
        }
        if let Some(p) = f.plan_id {
            q.push(" AND plan_id = ").push_bind(id(p.0));
        }
        if let Some(n) = f.nas_id {
            q.push(" AND nas_id = ").push_bind(id(n.0));
        }
        paginate(&mut q, "id", page);
        let rows = q.build().fetch_all(&self.read).await.map_err(db_err)?;
        collect(rows, rows::service)
    }

    async fn service_initial_plan(
        &self,
        sid: ServiceId,
    ) -> Result<Option<(PlanId, PlanVersionId)>> {
        let row = sqlx::query(
            "SELECT initial_plan_id, initial_plan_version_id FROM services WHERE id = $1",
        )
        .bind(id(sid.0))
        .fetch_optional(&self.read)
        .await
        .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => {
                use lastmile_store::rows::RowGet;
                let r = Row(r);
                Ok(Some((
                    PlanId(r.uuid("initial_plan_id")?),
                    PlanVersionId(r.uuid("initial_plan_version_id")?),
                )))
            }
        }
    }

    async fn service_timeline(&self, sid: ServiceId) -> Result<Vec<TimelineEvent>> {
        sqlx::query("SELECT * FROM service_events WHERE service_id = $1 ORDER BY seq")
            .bind(id(sid.0))
            .fetch_all(&self.read)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| rows::timeline_event(&Row(r)))
            .collect()
    }

    async fn record_service_change(&self, c: &ServiceChange) -> Result<()> {
        let mut tx = self.begin().await?;
        write_service_change(&mut tx, c).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_job(&self, jid: JobId) -> Result<Option<ProvisioningJob>> {
        sqlx::query("SELECT * FROM provisioning_jobs WHERE id = $1")
            .bind(id(jid.0))
            .fetch_optional(&self.read)
            .await
            .map_err(db_err)?
            .map(|r| rows::job(&Row(r)))
            .transpose()
    }

    async fn list_jobs(&self, f: &JobFilter, page: Page) -> Result<Vec<ProvisioningJob>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM provisioning_jobs WHERE 1 = 1");
        if let Some(st) = f.status {
            q.push(" AND status = ").push_bind(st.as_str());
        }
        if let Some(k) = &f.kind {
            q.push(" AND kind = ").push_bind(k.clone());
        }
        if let Some(s) = f.service_id {
            q.push(" AND service_id = ").push_bind(id(s.0));
        }
        if let Some(s) = f.subscriber_id {
            q.push(" AND subscriber_id = ").push_bind(id(s.0));
        }
        paginate(&mut q, "id", page);
        let rows = q.build().fetch_all(&self.read).await.map_err(db_err)?;
        collect(rows, rows::job)
    }

    async fn requeue_failed_job(
        &self,
        jid: JobId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Option<ProvisioningJob>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE provisioning_jobs SET status = 'pending', attempts = 0, run_after = $2,
                 locked_until = NULL, updated_at = $2
             WHERE id = $1 AND status = 'failed'
             RETURNING *",
        )
        .bind(id(jid.0))
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job = rows::job(&Row(row))?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(job))
    }

    async fn claim_jobs(
        &self,
        kinds: &[String],
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ProvisioningJob>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // The single writer connection and BEGIN IMMEDIATE make select-then-update atomic.
        let mut tx = self.begin().await?;
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE provisioning_jobs SET status = 'running', attempts = attempts + 1,
                 locked_until = ",
        );
        q.push_bind(micros(lease_until))
            .push(", updated_at = ")
            .push_bind(micros(now))
            .push(" WHERE id IN (SELECT id FROM provisioning_jobs WHERE kind IN (");
        let mut sep = q.separated(", ");
        for k in kinds {
            sep.push_bind(k.clone());
        }
        q.push(") AND ((status = 'pending' AND run_after <= ")
            .push_bind(micros(now))
            .push(") OR (status = 'running' AND locked_until < ")
            .push_bind(micros(now))
            .push(")) ORDER BY run_after, id LIMIT ")
            .push_bind(i64::from(limit))
            .push(") RETURNING *");
        let jobs = q
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| rows::job(&Row(r)))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await.map_err(db_err)?;
        Ok(jobs)
    }

    async fn finish_job(
        &self,
        jid: JobId,
        attempt: i32,
        outcome: &JobOutcome,
        now: Timestamp,
    ) -> Result<bool> {
        let (status, error, run_after) = match outcome {
            JobOutcome::Succeeded => (JobStatus::Succeeded, None, None),
            JobOutcome::Failed {
                error,
                retry_at: Some(at),
            } => (JobStatus::Pending, Some(error.as_str()), Some(micros(*at))),
            JobOutcome::Failed {
                error,
                retry_at: None,
            } => (JobStatus::Failed, Some(error.as_str()), None),
        };
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE provisioning_jobs SET status = $3, last_error = COALESCE($4, last_error),
                 run_after = COALESCE($5, run_after), locked_until = NULL, updated_at = $6
             WHERE id = $1 AND status = 'running' AND attempts = $2",
        )
        .bind(id(jid.0))
        .bind(attempt)
        .bind(status.as_str())
        .bind(error)
        .bind(run_after)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn plan_catalog(&self) -> Result<Vec<(String, PlanVersion)>> {
        billing::plan_catalog(self).await
    }

    async fn billing_inputs(
        &self,
        after: Option<SubscriberId>,
        limit: u32,
        as_of: Option<Date>,
    ) -> Result<Vec<BillingInput>> {
        billing::billing_inputs(self, after, limit, as_of).await
    }

    async fn insert_billing_run(&self, run: &BillingRun) -> Result<()> {
        billing::insert_billing_run(self, run).await
    }

    async fn get_billing_run(&self, id: BillingRunId) -> Result<Option<BillingRun>> {
        billing::get_billing_run(self, id).await
    }

    async fn list_billing_runs(&self, page: Page) -> Result<Vec<BillingRun>> {
        billing::list_billing_runs(self, page).await
    }

    async fn unfinished_billing_run(&self, as_of: jiff::civil::Date) -> Result<Option<BillingRun>> {
        billing::unfinished_billing_run(self, as_of).await
    }

    async fn commit_billing_batch(&self, batch: &BillingBatch) -> Result<u64> {
        billing::commit_billing_batch(self, batch).await
    }

    async fn complete_billing_run(
        &self,
        id: BillingRunId,
        now: Timestamp,
        failure: Option<&str>,
    ) -> Result<()> {
        billing::complete_billing_run(self, id, now, failure).await
    }

    async fn get_invoice(&self, id: InvoiceId) -> Result<Option<Invoice>> {
        billing::get_invoice(self, id).await
    }

    async fn list_invoices(&self, filter: &InvoiceFilter, page: Page) -> Result<Vec<Invoice>> {
        billing::list_invoices(self, filter, page).await
    }

    async fn billing_input(&self, sub: SubscriberId) -> Result<Option<BillingInput>> {
        billing::billing_input(self, sub).await
    }
    async fn subscribers_with_credit(&self, ids: &[SubscriberId]) -> Result<Vec<SubscriberId>> {
        money::subscribers_with_credit(self, ids).await
    }
    async fn insert_tax_zone(&self, z: &TaxZone, audit: &AuditEvent) -> Result<()> {
        money::insert_tax_zone(self, z, audit).await
    }
    async fn update_tax_zone(&self, z: &TaxZone, rev: i64, audit: &AuditEvent) -> Result<()> {
        money::update_tax_zone(self, z, rev, audit).await
    }
    async fn get_tax_zone(&self, zid: TaxZoneId) -> Result<Option<TaxZone>> {
        money::get_tax_zone(self, zid).await
    }
    async fn list_tax_zones(&self) -> Result<Vec<TaxZone>> {
        money::list_tax_zones(self).await
    }
    async fn insert_dunning_policy(&self, p: &DunningPolicy, audit: &AuditEvent) -> Result<()> {
        money::insert_dunning_policy(self, p, audit).await
    }
    async fn update_dunning_policy(
        &self,
        p: &DunningPolicy,
        rev: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        money::update_dunning_policy(self, p, rev, audit).await
    }
    async fn get_dunning_policy(&self, pid: DunningPolicyId) -> Result<Option<DunningPolicy>> {
        money::get_dunning_policy(self, pid).await
    }
    async fn list_dunning_policies(&self) -> Result<Vec<DunningPolicy>> {
        money::list_dunning_policies(self).await
    }
    async fn insert_discount(&self, d: &Discount, audit: &AuditEvent) -> Result<()> {
        money::insert_discount(self, d, audit).await
    }
    async fn end_discount(&self, did: DiscountId, ends_on: Date, audit: &AuditEvent) -> Result<()> {
        money::end_discount(self, did, ends_on, audit).await
    }
    async fn get_discount(&self, did: DiscountId) -> Result<Option<Discount>> {
        money::get_discount(self, did).await
    }
    async fn list_discounts(&self, sub: SubscriberId) -> Result<Vec<Discount>> {
        money::list_discounts(self, sub).await
    }
    async fn get_setting(&self, name: &str) -> Result<Option<(serde_json::Value, i64)>> {
        money::get_setting(self, name).await
    }
    async fn put_setting(
        &self,
        name: &str,
        value: &serde_json::Value,
        expected_revision: i64,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<()> {
        money::put_setting(self, name, value, expected_revision, now, audit).await
    }
    async fn get_account(&self, sub: SubscriberId) -> Result<Option<Account>> {
        money::get_account(self, sub).await
    }
    async fn record_account_change(&self, c: &AccountChange) -> Result<()> {
        money::record_account_change(self, c).await
    }
    async fn ledger(&self, sub: SubscriberId) -> Result<Vec<LedgerEntry>> {
        money::ledger(self, sub).await
    }
    async fn get_payment(&self, pid: PaymentId) -> Result<Option<Payment>> {
        money::get_payment(self, pid).await
    }
    async fn find_payment_by_external_id(&self, ext: &str) -> Result<Option<Payment>> {
        money::find_payment_by_external_id(self, ext).await
    }
    async fn list_payments(&self, f: &PaymentFilter, page: Page) -> Result<Vec<Payment>> {
        money::list_payments(self, f, page).await
    }
    async fn get_credit_note(&self, cid: CreditNoteId) -> Result<Option<CreditNote>> {
        money::get_credit_note(self, cid).await
    }
    async fn list_credit_notes(&self, f: &CreditNoteFilter, page: Page) -> Result<Vec<CreditNote>> {
        money::list_credit_notes(self, f, page).await
    }
    async fn list_refunds(&self, sub: SubscriberId) -> Result<Vec<Refund>> {
        money::list_refunds(self, sub).await
    }
    async fn list_allocations(&self, sub: SubscriberId) -> Result<Vec<Allocation>> {
        money::list_allocations(self, sub).await
    }
    async fn overdue_subscribers(
        &self,
        today: Date,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberId>> {
        money::overdue_subscribers(self, today, after, limit).await
    }
    async fn dunning_actions(&self, inv: InvoiceId) -> Result<Vec<(i64, DunningActionKind)>> {
        money::dunning_actions(self, inv).await
    }

    async fn list_audit_events(&self, f: &AuditFilter, page: Page) -> Result<Vec<AuditEvent>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM audit_events WHERE 1 = 1");
        if let Some(t) = &f.entity_type {
            q.push(" AND entity_type = ").push_bind(t.clone());
        }
        if let Some(e) = &f.entity_id {
            q.push(" AND entity_id = ").push_bind(e.clone());
        }
        if let Some(a) = &f.actor_id {
            q.push(" AND actor_id = ").push_bind(a.clone());
        }
        if let Some(s) = f.subscriber_id {
            q.push(" AND subscriber_id = ").push_bind(id(s.0));
        }
        if let Some(from) = f.from {
            q.push(" AND at >= ").push_bind(micros(from));
        }
        if let Some(to) = f.to {
            q.push(" AND at < ").push_bind(micros(to));
        }
        paginate(&mut q, "id", page);
        let rows = q.build().fetch_all(&self.read).await.map_err(db_err)?;
        collect(rows, rows::audit_event)
    }

    async fn begin_idempotency(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<IdempotencyBegin> {
        // One writer: the read and the write below cannot interleave with another begin.
        let mut tx = self.begin().await?;
        let existing = sqlx::query(rows::IDEMPOTENCY_SELECT)
            .bind(scope)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let step = match existing {
            Some(r) => rows::idempotency_step(&Row(&r), request_hash, now)?,
            None => rows::IdempotencyStep::Fresh,
        };
        let owner = rows::idempotency_owner();
        let outcome = match step {
            rows::IdempotencyStep::Answer(a) => a,
            rows::IdempotencyStep::Fresh => {
                sqlx::query(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, owner,
                         lease_until)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (scope, key) DO UPDATE SET request_hash = $3,
                         status_code = NULL, response_body = NULL, created_at = $4, owner = $5,
                         lease_until = $6, committed = NULL",
                )
                .bind(scope)
                .bind(key)
                .bind(request_hash)
                .bind(micros(now))
                .bind(&owner)
                .bind(micros(lease_until))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                IdempotencyBegin::Reserved { owner }
            }
            rows::IdempotencyStep::TakeOver {
                owner: old_owner,
                lease_until: old_lease,
                commit,
            } => {
                let done = sqlx::query(rows::IDEMPOTENCY_TAKE_OVER)
                    .bind(scope)
                    .bind(key)
                    .bind(&owner)
                    .bind(micros(lease_until))
                    .bind(&old_owner)
                    .bind(old_lease)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                rows::idempotency_taken_over(done.rows_affected(), owner, commit)
            }
        };
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn finish_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        resp: &StoredResponse,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(rows::IDEMPOTENCY_FINISH)
            .bind(scope)
            .bind(key)
            .bind(owner)
            .bind(i64::from(resp.status))
            .bind(&resp.body)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn abandon_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(rows::IDEMPOTENCY_FORGET)
            .bind(scope)
            .bind(key)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(rows::IDEMPOTENCY_RELEASE)
            .bind(scope)
            .bind(key)
            .bind(owner)
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

/// Closing a subscriber is refused, in its own transaction, while a service of theirs is not
/// terminated (`InUse`): the check the use case made before may be stale. The writer
/// connection serialises write transactions, so no service can be added in between.
async fn refuse_close_with_live_services(
    tx: &mut SqliteConnection,
    sub: SubscriberId,
) -> Result<()> {
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM services WHERE subscriber_id = $1 AND status <> 'terminated' LIMIT 1",
    )
    .bind(id(sub.0))
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    match live {
        Some(_) => Err(StoreError::InUse {
            entity: "subscriber",
            by: "services not terminated",
        }),
        None => Ok(()),
    }
}

/// A service is never added to a closed subscriber: checked in the inserting transaction
/// (`Stale`: the use case read the subscriber before it was closed; a retry sees it closed).
async fn refuse_service_of_closed_subscriber(
    tx: &mut SqliteConnection,
    sub: SubscriberId,
) -> Result<()> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM subscribers WHERE id = $1")
        .bind(id(sub.0))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    if status.as_deref() == Some(lastmile_domain::subscriber::SubscriberStatus::Closed.as_str()) {
        return Err(StoreError::Stale {
            entity: "subscriber",
        });
    }
    Ok(())
}
