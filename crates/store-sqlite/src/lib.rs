//! SQLite backend: the embedded default. One file, zero set-up.
//!
//! The store's SQL is shared with PostgreSQL (`lastmile-store-sql`); this crate is the rusqlite
//! glue ([`conn`]), the database with its writer thread, group commit and read pool ([`db`]),
//! and its migrations.

pub mod conn;
pub mod db;
mod migrate;

pub use migrate::MIGRATIONS;

/// The store on SQLite.
pub type SqliteStore = lastmile_store_sql::SqlStore<db::SqliteDb>;
