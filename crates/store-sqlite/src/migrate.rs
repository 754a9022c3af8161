//! Embedded migrations, applied in order, each in its own transaction. The PostgreSQL crate
//! has the same versions and names (a test checks it).

use crate::conn::db_err;
use lastmile_store::rows::micros;
use lastmile_store::Result;

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
];

/// Applies pending migrations on the writer's connection, all in one transaction.
pub fn apply(conn: &mut rusqlite::Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT",
    )
    .map_err(db_err)?;
    let applied: Vec<i64> = {
        let mut stmt = tx
            .prepare("SELECT version FROM schema_migrations")
            .map_err(db_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
    };
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.execute_batch(sql).map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, micros(jiff::Timestamp::now())],
        )
        .map_err(db_err)?;
        tracing::info!(version, name, "applied migration");
    }
    tx.commit().map_err(db_err)
}
