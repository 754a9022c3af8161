//! PostgreSQL backend: the production store.
//!
//! Same tables, columns and constraint names as the SQLite backend, with native types (`uuid`,
//! `jsonb`, `bytea`, `BIGINT` everywhere). The store's SQL is shared with SQLite
//! (`lastmile-store-sql`, which branches on the dialect where PostgreSQL differs: row locks,
//! `FOR UPDATE SKIP LOCKED`); this crate is the sqlx glue ([`conn`]: binding, rows, `COPY`
//! for bulk inserts), the database with its pool and transactions ([`db`]), and the
//! migrations.
//!
//! Concurrency comes from the database instead of a single writer: each optimistic write
//! starts with `UPDATE … WHERE id = … AND revision = …`, which locks the row it checks (a
//! concurrent writer waits, re-reads the row and finds the revision moved on: `Stale`), job
//! claims use `FOR UPDATE SKIP LOCKED`, and idempotency reservations `INSERT … ON CONFLICT DO
//! NOTHING` and then lock the key with `FOR UPDATE`. Billing batches lock the invoice counter
//! row first, so concurrent runs commit one batch at a time. Writes run at PostgreSQL's
//! default `READ COMMITTED`, reads in a read-only snapshot (`REPEATABLE READ`).

pub mod conn;
pub mod db;
mod migrate;
mod row;

pub use migrate::MIGRATIONS;

/// The store on PostgreSQL.
pub type PgStore = lastmile_store_sql::SqlStore<db::PgDb>;
