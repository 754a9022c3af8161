//! Column access and error mapping for SQLite.

use lastmile_store::rows::RowGet;
use lastmile_store::{Result, StoreError};
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;
use std::borrow::Borrow;
use uuid::Uuid;

pub struct Row<R>(pub R);

fn col_err(col: &str, e: sqlx::Error) -> StoreError {
    StoreError::corrupt(format!("column {col}: {e}"))
}

fn parse_uuid(col: &str, s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::corrupt(format!("column {col}: {e}")))
}

impl<R: Borrow<SqliteRow>> RowGet for Row<R> {
    fn uuid(&self, col: &str) -> Result<Uuid> {
        parse_uuid(col, &self.text(col)?)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.opt_text(col)?.map(|s| parse_uuid(col, &s)).transpose()
    }
    fn i64(&self, col: &str) -> Result<i64> {
        self.0.borrow().try_get(col).map_err(|e| col_err(col, e))
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        self.0.borrow().try_get(col).map_err(|e| col_err(col, e))
    }
    fn text(&self, col: &str) -> Result<String> {
        self.0.borrow().try_get(col).map_err(|e| col_err(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.0.borrow().try_get(col).map_err(|e| col_err(col, e))
    }
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>> {
        self.0.borrow().try_get(col).map_err(|e| col_err(col, e))
    }
    fn bool(&self, col: &str) -> Result<bool> {
        Ok(self.i64(col)? != 0)
    }
    fn opt_json(&self, col: &str) -> Result<Option<serde_json::Value>> {
        self.opt_text(col)?
            .map(|s| {
                serde_json::from_str(&s)
                    .map_err(|e| StoreError::corrupt(format!("column {col}: {e}")))
            })
            .transpose()
    }
}

/// Maps a sqlx error to the store's vocabulary. SQLite names the columns of a violated unique
/// index in its message (`UNIQUE constraint failed: services.username`).
pub fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        match db.kind() {
            ErrorKind::UniqueViolation => {
                let msg = db.message();
                let cols = msg
                    .strip_prefix("UNIQUE constraint failed: ")
                    .unwrap_or(msg);
                return lastmile_store::rows::duplicate(cols);
            }
            ErrorKind::ForeignKeyViolation => {
                return StoreError::InUse {
                    entity: "record",
                    by: "other records",
                };
            }
            _ => {}
        }
    }
    StoreError::Backend(Box::new(e))
}
