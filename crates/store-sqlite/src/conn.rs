//! rusqlite glue: binding [`Param`]s, owned rows for the shared decoders, error mapping, and
//! running the store's generic (async) code on a connection that answers at once.

use lastmile_store::rows::RowGet;
use lastmile_store::{Result, StoreError};
use lastmile_store_sql::{Conn, Dialect, Param};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{ErrorCode, Statement};
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use uuid::Uuid;

/// A connection as the generic store code sees it. On the writer thread it is inside the
/// transaction (and savepoint) the writer opened; on a reader thread it is read-only.
pub struct SqliteConn {
    pub conn: rusqlite::Connection,
    texts: TextCache,
}

impl SqliteConn {
    pub fn new(conn: rusqlite::Connection) -> Self {
        SqliteConn {
            conn,
            texts: TextCache::default(),
        }
    }
}

/// What a statement text becomes for SQLite, kept per text so the hot path (an accounting
/// record runs three statements) neither rewrites placeholders nor collects column names
/// each time. Keyed by where the text lives: the store's statements are constants, so the
/// key is stable and hashing it is cheap; a hit is confirmed by comparing the text (a
/// dynamic text freed and another built at the same address is then a miss, not a mix-up).
#[derive(Default)]
struct TextCache {
    map: HashMap<(usize, usize), Arc<Prepared>>,
}

struct Prepared {
    original: Box<str>,
    positional: Box<str>,
    /// The result's column names, once a fetch has seen them.
    names: OnceLock<Arc<[String]>>,
}

/// Entries before the cache starts over (texts built at run time, such as multi-row
/// inserts, each take one; the constants come back at once).
const TEXT_CACHE_CAPACITY: usize = 512;

impl TextCache {
    fn get(&mut self, sql: &str) -> Arc<Prepared> {
        let key = (sql.as_ptr() as usize, sql.len());
        if let Some(p) = self.map.get(&key) {
            if *p.original == *sql {
                return p.clone();
            }
        }
        if self.map.len() >= TEXT_CACHE_CAPACITY {
            self.map.clear();
        }
        let p = Arc::new(Prepared {
            original: sql.into(),
            positional: positional(sql).into(),
            names: OnceLock::new(),
        });
        self.map.insert(key, p.clone());
        p
    }
}

/// A row copied out of its statement (rusqlite rows borrow the statement).
pub struct SqliteRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl SqliteRow {
    fn get(&self, col: &str) -> Result<&Value> {
        self.names
            .iter()
            .position(|n| n == col)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::corrupt(format!("no column {col} in the result")))
    }
}

fn wrong_type(col: &str, v: &Value) -> StoreError {
    StoreError::corrupt(format!("column {col}: unexpected {:?}", v.data_type()))
}

fn parse_uuid(col: &str, s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::corrupt(format!("column {col}: {e}")))
}

impl RowGet for SqliteRow {
    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.opt_uuid(col)?
            .ok_or_else(|| StoreError::corrupt(format!("{col} is NULL")))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.opt_text(col)?.map(|s| parse_uuid(col, &s)).transpose()
    }
    fn i64(&self, col: &str) -> Result<i64> {
        self.opt_i64(col)?
            .ok_or_else(|| StoreError::corrupt(format!("{col} is NULL")))
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        match self.get(col)? {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(*i)),
            v => Err(wrong_type(col, v)),
        }
    }
    fn text(&self, col: &str) -> Result<String> {
        self.opt_text(col)?
            .ok_or_else(|| StoreError::corrupt(format!("{col} is NULL")))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        match self.get(col)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            v => Err(wrong_type(col, v)),
        }
    }
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>> {
        match self.get(col)? {
            Value::Null => Ok(None),
            Value::Blob(b) => Ok(Some(b.clone())),
            v => Err(wrong_type(col, v)),
        }
    }
    fn opt_json(&self, col: &str) -> Result<Option<serde_json::Value>> {
        self.opt_text(col)?
            .map(|s| {
                serde_json::from_str(&s)
                    .map_err(|e| StoreError::corrupt(format!("column {col}: {e}")))
            })
            .transpose()
    }
    fn bool(&self, col: &str) -> Result<bool> {
        Ok(self.i64(col)? != 0)
    }
}

/// The SQL text with `$n` placeholders rewritten to SQLite's positional `?n`, so parameter
/// `n` is bound by index. (Binding `$n` as named parameters would need
/// `sqlite3_bind_parameter_name`, a linear walk per call: quadratic for a multi-row insert.)
/// Quoted strings and identifiers are left alone (`'$.path'` in a JSON function stays).
pub fn positional(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    // `$` becomes `?` in place: the text keeps its length, and every byte compared here is
    // ASCII, which never occurs inside a multi-byte UTF-8 sequence. (A multi-row insert's
    // text is tens of kilobytes and is rewritten at every execution, so this is a byte scan.)
    let mut out = sql.as_bytes().to_vec();
    let mut quote: Option<u8> = None;
    for i in 0..out.len() {
        let b = out[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'$' && out.get(i + 1).is_some_and(u8::is_ascii_digit) => out[i] = b'?',
            None => {}
        }
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        // Unreachable (only ASCII bytes were replaced by ASCII); the text as it was then fails
        // to prepare with SQLite's own error rather than panicking here.
        Err(_) => Cow::Borrowed(sql),
    }
}

/// Binds `params` by position (`?n` is parameter `n`).
fn bind(stmt: &mut Statement<'_>, params: &[Param]) -> Result<()> {
    let count = stmt.parameter_count();
    if count > params.len() {
        return Err(bug(&format!(
            "{count} parameters in the statement, {} values",
            params.len()
        )));
    }
    for (i, p) in params.iter().enumerate().take(count) {
        let i = i + 1;
        match p {
            Param::Null => stmt.raw_bind_parameter(i, rusqlite::types::Null),
            Param::I64(v) => stmt.raw_bind_parameter(i, v),
            Param::Text(v) => stmt.raw_bind_parameter(i, v.as_str()),
            Param::Uuid(v) => {
                let mut buf = Uuid::encode_buffer();
                stmt.raw_bind_parameter(i, &*v.hyphenated().encode_lower(&mut buf))
            }
            Param::Json(v) => stmt.raw_bind_parameter(i, v.to_string()),
            Param::Bool(v) => stmt.raw_bind_parameter(i, i64::from(*v)),
            Param::Bytes(v) => stmt.raw_bind_parameter(i, v.as_slice()),
        }
        .map_err(db_err)?;
    }
    Ok(())
}

fn bug(msg: &str) -> StoreError {
    StoreError::Backend(format!("store bug: {msg}").into())
}

impl SqliteConn {
    /// Runs `sql` (from the connection's statement cache) and copies out every row.
    pub fn fetch_now(&mut self, sql: &str, params: &[Param]) -> Result<Vec<SqliteRow>> {
        let text = self.texts.get(sql);
        let mut stmt = self.conn.prepare_cached(&text.positional).map_err(db_err)?;
        bind(&mut stmt, params)?;
        let names = match text.names.get() {
            Some(n) if n.len() == stmt.column_count() => n.clone(),
            _ => {
                let n: Arc<[String]> = stmt.column_names().iter().map(|s| s.to_string()).collect();
                let _ = text.names.set(n.clone());
                n
            }
        };
        let width = names.len();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i).map_err(db_err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Integer(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(SqliteRow {
                names: names.clone(),
                values,
            });
        }
        Ok(out)
    }

    /// Runs `sql` and returns how many rows it changed.
    pub fn execute_now(&mut self, sql: &str, params: &[Param]) -> Result<u64> {
        let text = self.texts.get(sql);
        let mut stmt = self.conn.prepare_cached(&text.positional).map_err(db_err)?;
        bind(&mut stmt, params)?;
        // A statement that returns rows (e.g. `INSERT … RETURNING`) is stepped to its end.
        let mut rows = stmt.raw_query();
        while rows.next().map_err(db_err)?.is_some() {}
        drop(rows);
        Ok(self.conn.changes())
    }
}

impl Conn for SqliteConn {
    type Row = SqliteRow;
    const DIALECT: Dialect = Dialect::Sqlite;

    fn fetch(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> impl Future<Output = Result<Vec<SqliteRow>>> + Send {
        std::future::ready(self.fetch_now(sql, params))
    }

    fn execute(&mut self, sql: &str, params: &[Param]) -> impl Future<Output = Result<u64>> + Send {
        std::future::ready(self.execute_now(sql, params))
    }
}

/// Runs the store's generic code to its end on this thread. Its only awaits are on a
/// [`SqliteConn`], whose futures are ready at once, so one poll finishes it; anything else
/// would be a bug, reported as an error rather than a hang.
pub fn run_now<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(bug("store code awaited something other than SQLite")),
    }
}

/// Maps a rusqlite error to the store's vocabulary, with a message an operator can act on.
pub fn db_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let msg = msg.as_deref().unwrap_or("");
        match f.code {
            ErrorCode::ConstraintViolation => {
                if let Some(cols) = msg.strip_prefix("UNIQUE constraint failed: ") {
                    return lastmile_store::rows::duplicate(cols);
                }
                if msg.starts_with("FOREIGN KEY constraint failed") {
                    return StoreError::InUse {
                        entity: "record",
                        by: "other records",
                    };
                }
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return backend(format!(
                    "the database is locked by another process ({msg}); is a second Lastmile \
                     or a tool holding it?"
                ));
            }
            ErrorCode::DiskFull => {
                return backend(format!(
                    "the disk holding the database is full ({msg}); nothing was written"
                ));
            }
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                return backend(format!(
                    "the database file is corrupt or not a database ({msg}); restore it from \
                     a backup"
                ));
            }
            ErrorCode::ReadOnly => {
                return backend(format!(
                    "the database is read-only ({msg}); check the file's and directory's \
                     permissions"
                ));
            }
            ErrorCode::CannotOpen => {
                return backend(format!("the database file cannot be opened ({msg})"));
            }
            _ => {}
        }
    }
    StoreError::Backend(Box::new(e))
}

fn backend(msg: String) -> StoreError {
    StoreError::Backend(msg.into())
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn placeholders_become_positional_outside_quotes() {
        assert_eq!(positional("SELECT 1"), "SELECT 1");
        assert_eq!(
            positional("UPDATE t SET a = $2 WHERE id = $1 AND b = $10"),
            "UPDATE t SET a = ?2 WHERE id = ?1 AND b = ?10"
        );
        assert_eq!(
            positional("SELECT json_extract(x, '$.a'), \"$1\" FROM t WHERE y = $1"),
            "SELECT json_extract(x, '$.a'), \"$1\" FROM t WHERE y = ?1"
        );
        assert_eq!(positional("SELECT 'it''s $1', $3"), "SELECT 'it''s $1', ?3");
    }
}
