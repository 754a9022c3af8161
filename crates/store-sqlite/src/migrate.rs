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
    (
        12,
        "billing_references",
        include_str!("../migrations/0012_billing_references.sql"),
    ),
];

/// Applies pending migrations on the writer's connection, all in one transaction.
///
/// Foreign keys are off while they run, as SQLite prescribes for rebuilding a table (a
/// `DROP TABLE` of a referenced table would otherwise fail); `PRAGMA foreign_key_check` then
/// proves every reference still holds before the commit of any migration. (The pragma is a no-op inside a
/// transaction, so it is set around it.)
pub fn apply(conn: &mut rusqlite::Connection) -> Result<()> {
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(db_err)?;
    let applied = apply_all(conn);
    let restored = conn
        .execute_batch("PRAGMA foreign_keys = ON")
        .map_err(db_err);
    applied.and(restored)
}

fn apply_all(conn: &mut rusqlite::Connection) -> Result<()> {
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
    // Only after a migration ran: the check reads every table that has references.
    let ran = MIGRATIONS.iter().any(|(v, _, _)| !applied.contains(v));
    let broken: Option<String> = if !ran {
        None
    } else {
        let mut stmt = tx.prepare("PRAGMA foreign_key_check").map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        match rows.next().map_err(db_err)? {
            Some(r) => Some(r.get::<_, String>(0).map_err(db_err)?),
            None => None,
        }
    };
    if let Some(table) = broken {
        return Err(lastmile_store::StoreError::Backend(
            format!("a migration left a broken reference in table {table}").into(),
        ));
    }
    tx.commit().map_err(db_err)
}
