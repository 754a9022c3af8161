//! Embedded migrations, applied in order inside one transaction that holds a transaction-level
//! advisory lock, so two processes starting at once do not both apply them. The SQLite crate
//! has the same versions and names (a test checks it).

use crate::row::db_err;
use lastmile_store::rows::micros;
use lastmile_store::Result;
use sqlx::PgPool;

/// `(version, name, sql)`.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("../migrations/0001_core.sql")),
    (2, "billing", include_str!("../migrations/0002_billing.sql")),
    (3, "money", include_str!("../migrations/0003_money.sql")),
    (
        4,
        "settings",
        include_str!("../migrations/0004_settings.sql"),
    ),
    (
        5,
        "idempotency",
        include_str!("../migrations/0005_idempotency.sql"),
    ),
    (
        6,
        "billing_run_failure",
        include_str!("../migrations/0006_billing_run_failure.sql"),
    ),
    (
        7,
        "dunning_passed",
        include_str!("../migrations/0007_dunning_passed.sql"),
    ),
    (
        8,
        "read_indexes",
        include_str!("../migrations/0008_read_indexes.sql"),
    ),
    (9, "radius", include_str!("../migrations/0009_radius.sql")),
    (
        10,
        "radius_settings",
        include_str!("../migrations/0010_radius_settings.sql"),
    ),
    (
        11,
        "typed_jobs",
        include_str!("../migrations/0011_typed_jobs.sql"),
    ),
    (
        12,
        "billing_references",
        include_str!("../migrations/0012_billing_references.sql"),
    ),
];

/// Key of the advisory lock that serialises migration runs (per database): "lastmile" in
/// ASCII.
const MIGRATION_LOCK: i64 = 0x006c_6173_746d_696c;

pub async fn run(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(micros(jiff::Timestamp::now()))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tracing::info!(version, name, "applied migration");
    }
    tx.commit().await.map_err(db_err)
}
