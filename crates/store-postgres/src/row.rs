//! Column access and error mapping for PostgreSQL.

use lastmile_store::rows::RowGet;
use lastmile_store::{Result, StoreError};
use sqlx::error::ErrorKind;
use sqlx::postgres::PgRow;
use sqlx::Row as _;
use std::borrow::Borrow;
use uuid::Uuid;

pub struct Row<R>(pub R);

fn col_err(col: &str, e: sqlx::Error) -> StoreError {
    StoreError::corrupt(format!("column {col}: {e}"))
}

impl<R: Borrow<PgRow>> Row<R> {
    fn get<'r, T>(&'r self, col: &str) -> Result<T>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        self.0.borrow().try_get(col).map_err(|e| col_err(col, e))
    }
}

impl<R: Borrow<PgRow>> RowGet for Row<R> {
    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.get(col)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.get(col)
    }
    fn i64(&self, col: &str) -> Result<i64> {
        self.get(col)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        self.get(col)
    }
    fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>> {
        self.get(col)
    }
    fn opt_json(&self, col: &str) -> Result<Option<serde_json::Value>> {
        self.get(col)
    }
    fn bool(&self, col: &str) -> Result<bool> {
        self.get(col)
    }
}

/// SQLSTATE `serialization_failure`.
const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE `deadlock_detected`.
const DEADLOCK_DETECTED: &str = "40P01";

/// Maps a sqlx error to the store's vocabulary. PostgreSQL names the violated constraint
/// (`services_username_key`), which `rows::duplicate` maps to the entity and field.
pub fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        match db.kind() {
            ErrorKind::UniqueViolation => {
                return lastmile_store::rows::duplicate(db.constraint().unwrap_or_default());
            }
            ErrorKind::ForeignKeyViolation => {
                return StoreError::InUse {
                    entity: "record",
                    by: "other records",
                };
            }
            _ => {}
        }
        if matches!(
            db.code().as_deref(),
            Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED)
        ) {
            return StoreError::Stale { entity: "record" };
        }
    }
    StoreError::Backend(Box::new(e))
}
