//! Embedded migrations, applied in order, each in its own transaction. The PostgreSQL crate
//! has the same versions and names (a test checks it).

use crate::row::db_err;
use lastmile_store::rows::micros;
use lastmile_store::Result;
use sqlx::SqlitePool;

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
];

pub async fn run(pool: &SqlitePool) -> Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT",
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
