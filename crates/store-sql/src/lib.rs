//! The SQL of the store, written once for both backends.
//!
//! Every query and every transaction of the [`Store`](lastmile_store::Store) port lives here,
//! generic over a [`Conn`]: a connection (inside a transaction, for writes) that runs one SQL
//! text with typed [`Param`]s and returns rows the shared decoders in `lastmile_store::rows`
//! read. A backend crate provides only its driver glue — a `Conn`, a [`Db`] that runs reads
//! and write transactions — and the few statements that really differ between the dialects
//! (chosen here by [`Conn::DIALECT`], or overridden on `Db`).
//!
//! SQL texts use `$1`, `$2`, … placeholders: PostgreSQL's own syntax, and for SQLite named
//! parameters that the SQLite binding maps back to their numbers.
//!
//! Value representations (both backends): ids are UUIDs (PostgreSQL `uuid`, SQLite hyphenated
//! text), timestamps integer microseconds since the Unix epoch (UTC), money integer minor units,
//! enums their snake_case names, nested structures JSON (`jsonb`, text), booleans `boolean` or
//! 0/1. [`Param`] carries the type, so each binding stores it in its column's form.

pub mod accounting;
pub mod bench;
pub mod billing;
pub mod catalog;
mod common;
pub mod money;
pub mod radius;
pub mod services;
mod store;

pub use store::SqlStore;

/// What every area module uses.
pub(crate) mod prelude {
    pub use crate::common::*;
    pub use crate::{
        collect, expect_one, fetch_all, fetch_opt, like_pattern, text_array, uuid_array, Conn,
        Dialect, Param, Sql,
    };
    pub use jiff::civil::Date;
    pub use jiff::Timestamp;
    pub use lastmile_domain::audit::AuditEvent;
    pub use lastmile_domain::auth::Operator;
    pub use lastmile_domain::billing::account::{
        Account, Allocation, CreditNote, LedgerEntry, Payment, Refund,
    };
    pub use lastmile_domain::billing::discount::Discount;
    pub use lastmile_domain::billing::dunning::{DunningActionKind, DunningPolicy};
    pub use lastmile_domain::billing::invoice::{BillingRun, Invoice};
    pub use lastmile_domain::billing::tax::TaxZone;
    pub use lastmile_domain::ids::*;
    pub use lastmile_domain::job::{JobKind, JobStatus, ProvisioningJob};
    pub use lastmile_domain::nas::{Nas, SuspendedAction};
    pub use lastmile_domain::plan::{Plan, PlanVersion};
    pub use lastmile_domain::service::Service;
    pub use lastmile_domain::subscriber::Subscriber;
    pub use lastmile_domain::timeline::TimelineEvent;
    pub use lastmile_store::rows::{self, to_json, RowGet};
    pub use lastmile_store::*;
    pub use uuid::Uuid;
}

use lastmile_store::rows::RowGet;
use lastmile_store::{Page, Pending, Result, StoreError};
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// The SQL dialect of a connection, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value. Owned: a query's parameters are built once and read by the binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Null,
    I64(i64),
    Text(String),
    Uuid(Uuid),
    Json(serde_json::Value),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl Param {
    /// A JSON column's value.
    pub fn json(v: serde_json::Value) -> Self {
        Param::Json(v)
    }
    /// An optional JSON column's value.
    pub fn opt_json(v: Option<serde_json::Value>) -> Self {
        v.map_or(Param::Null, Param::Json)
    }
    /// A timestamp column's value (microseconds since the epoch).
    pub fn at(t: jiff::Timestamp) -> Self {
        Param::I64(lastmile_store::rows::micros(t))
    }
    pub fn opt_at(t: Option<jiff::Timestamp>) -> Self {
        t.map_or(Param::Null, Param::at)
    }
}

macro_rules! param_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl From<$t> for Param {
            fn from($v: $t) -> Self { $e }
        }
    )*};
}

param_from!(
    i64 => |v| Param::I64(v),
    i32 => |v| Param::I64(i64::from(v)),
    u32 => |v| Param::I64(i64::from(v)),
    u16 => |v| Param::I64(i64::from(v)),
    u8 => |v| Param::I64(i64::from(v)),
    bool => |v| Param::Bool(v),
    String => |v| Param::Text(v),
    &str => |v| Param::Text(v.to_string()),
    &String => |v| Param::Text(v.clone()),
    Uuid => |v| Param::Uuid(v),
    Vec<u8> => |v| Param::Bytes(v),
    &[u8] => |v| Param::Bytes(v.to_vec()),
);

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// A connection of one backend, inside a transaction when it came from [`Db::write`].
///
/// The futures are `Send` so that generic code built on them runs on a multi-threaded runtime
/// (PostgreSQL) as well as on SQLite's writer and reader threads, whose connection answers at
/// once (its futures are always ready; see the SQLite crate).
pub trait Conn: Send {
    type Row: RowGet + Send + 'static;
    const DIALECT: Dialect;

    /// Runs `sql` and returns every row.
    fn fetch(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> impl Future<Output = Result<Vec<Self::Row>>> + Send;

    /// Runs `sql` and returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> impl Future<Output = Result<u64>> + Send;

    /// Bulk insert, where the backend has a faster way than multi-row `INSERT`s (PostgreSQL:
    /// `COPY`, which takes the rows as `rows` makes them, so that they are made while the
    /// database stores the ones before): inserts every row of `rows` into `table`'s
    /// `columns` and returns how many it inserted. Each value must be the `Param` of its
    /// column's type (as for an `INSERT`; NULL fits any column). `table` and `columns` are
    /// written into the statement as they are: the store's own names. A row that cannot be
    /// made (`Err`) fails the insert with its error; a constraint violation fails it as the
    /// same rows' `INSERT` would. `Ok(None)`, the default, means "not supported here", with
    /// `rows` untouched: the caller inserts them with `INSERT`s instead.
    fn copy_in<const N: usize>(
        &mut self,
        table: &str,
        columns: &[&str; N],
        rows: &mut (dyn Iterator<Item = Result<[Param; N]>> + Send),
    ) -> impl Future<Output = Result<Option<u64>>> + Send {
        let _ = (table, columns, rows);
        std::future::ready(Ok(None))
    }

    /// Another connection to the same database, outside this one's transaction (each of its
    /// statements commits on its own), if the backend has one idle right now: for a read
    /// that can run at the same time as this connection's statements (on another core of
    /// the database). Never waits for one. `None`, the default, where there is no such
    /// connection (SQLite's writer is a single connection).
    fn spare(&mut self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Runs a read or a write transaction of a backend.
pub type ConnFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// A backend: where reads and write transactions run.
pub trait Db: Clone + Send + Sync + 'static {
    type Conn: Conn;
    /// The backend's name, as `/healthz` reports it.
    const BACKEND: &'static str;

    /// Opens the database named by `url` and applies pending migrations.
    fn connect(url: &str) -> impl Future<Output = Result<Self>> + Send;

    /// Finishes what the database keeps in flight (SQLite: checkpoints the WAL into the
    /// database file). The store stays usable.
    fn close(&self) -> impl Future<Output = ()> + Send;

    /// Runs `f` on a read connection (it sees what committed, never waits for the writer).
    fn read<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Self::Conn) -> ConnFuture<'c, T> + Send + 'static;

    /// [`Db::read`] for an `f` that runs a single statement, which needs no snapshot of its
    /// own (a backend may run it outside a transaction, and refuses a second statement).
    fn read_statement<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Self::Conn) -> ConnFuture<'c, T> + Send + 'static,
    {
        self.read(f)
    }

    /// Runs `f` in a write transaction: committed if it returns `Ok` (and the answer comes
    /// only after the commit), rolled back if it returns `Err`.
    fn write<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Self::Conn) -> ConnFuture<'c, T> + Send + 'static;

    /// [`Db::write`] in two steps: returns once the transaction is queued, with its outcome
    /// to come. On a backend with one writer (SQLite) transactions queued one after another
    /// commit in that order; on one where each write has a connection of its own
    /// (PostgreSQL) they run at once, in no order the backend promises, so callers that need
    /// one take turns at a row lock (as billing batches do at the invoice counter). The
    /// default runs the transaction to its end before returning.
    fn queue_write<T, F>(&self, f: F) -> impl Future<Output = Result<Pending<T>>> + Send
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Self::Conn) -> ConnFuture<'c, T> + Send + 'static,
    {
        async move {
            let outcome = self.write(f).await;
            Ok(Box::pin(std::future::ready(outcome)) as Pending<T>)
        }
    }
}

/// Dynamic SQL: text with `$n` placeholders numbered as binds are pushed.
#[derive(Default, Debug)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            params: Vec::new(),
        }
    }
    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
    /// Appends a placeholder for `p`.
    pub fn bind(&mut self, p: impl Into<Param>) -> &mut Self {
        self.params.push(p.into());
        self.text.push('$');
        self.text.push_str(&self.params.len().to_string());
        self
    }
    /// Appends `(p1, p2, …)` for an `IN` list; `(NULL)` when empty, which matches nothing.
    pub fn bind_list<P: Into<Param>>(&mut self, items: impl IntoIterator<Item = P>) -> &mut Self {
        self.text.push('(');
        let mut any = false;
        for p in items {
            if any {
                self.text.push_str(", ");
            }
            self.bind(p);
            any = true;
        }
        if !any {
            self.text.push_str("NULL");
        }
        self.text.push(')');
        self
    }
    /// Appends ` IN (…)` for `ids`: on SQLite a list of placeholders (`(NULL)` when empty);
    /// on PostgreSQL ` = ANY(…)` of the ids bound once, as one array ([`uuid_array`]), so the
    /// statement has one text whatever the number of ids (prepared once, not parsed anew for
    /// each list length). The array is read by a sub-select: the planner then takes it for a
    /// parameter, instead of estimating each of its elements (milliseconds per thousand ids,
    /// on every execution).
    pub fn in_ids(&mut self, dialect: Dialect, ids: impl IntoIterator<Item = Uuid>) -> &mut Self {
        match dialect {
            Dialect::Sqlite => self.push(" IN ").bind_list(ids),
            Dialect::Postgres => self
                .push(" = ANY((SELECT CAST(")
                .bind(uuid_array(ids))
                .push(" AS uuid[]))::uuid[])"),
        }
    }
    /// Appends `AND <id_col> > after ORDER BY <id_col> LIMIT n`: keyset pagination.
    pub fn paginate(&mut self, id_col: &str, page: Page) -> &mut Self {
        if let Some(after) = page.after {
            self.push(" AND ").push(id_col).push(" > ").bind(after);
        }
        self.push(" ORDER BY ")
            .push(id_col)
            .push(" LIMIT ")
            .bind(i64::from(page.limit))
    }

    pub async fn fetch<C: Conn>(&self, c: &mut C) -> Result<Vec<C::Row>> {
        c.fetch(&self.text, &self.params).await
    }
    pub async fn execute<C: Conn>(&self, c: &mut C) -> Result<u64> {
        c.execute(&self.text, &self.params).await
    }
}

/// A PostgreSQL array literal (`{a,b,…}`) of `items`, each written by `element`: the text
/// form the `*_array` parameters below bind.
fn array_literal<T>(
    items: impl IntoIterator<Item = T>,
    mut element: impl FnMut(&mut String, T),
) -> Param {
    let mut s = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        element(&mut s, item);
    }
    s.push('}');
    Param::Text(s)
}

/// A PostgreSQL `uuid[]` as its text form (`{…}`), for `CAST($n AS uuid[])`: a list of ids
/// bound as one parameter.
pub fn uuid_array(ids: impl IntoIterator<Item = Uuid>) -> Param {
    let mut buf = Uuid::encode_buffer();
    array_literal(ids, |s, id| {
        s.push_str(id.hyphenated().encode_lower(&mut buf))
    })
}

/// A PostgreSQL `bigint[]` as its text form, for `CAST($n AS bigint[])`.
pub fn i64_array(items: impl IntoIterator<Item = i64>) -> Param {
    array_literal(items, |s, v| s.push_str(&v.to_string()))
}

/// A PostgreSQL `text[]` as its text form, for `CAST($n AS text[])`: each element quoted,
/// with `"` and `\` escaped, so any text goes in as it is.
pub fn text_array<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Param {
    array_literal(items, |s, item| {
        s.push('"');
        for ch in item.as_ref().chars() {
            if matches!(ch, '"' | '\\') {
                s.push('\\');
            }
            s.push(ch);
        }
        s.push('"');
    })
}

/// Every row of `sql`, decoded.
pub async fn fetch_all<C: Conn, T>(
    c: &mut C,
    sql: &str,
    params: &[Param],
    decode: fn(&C::Row) -> Result<T>,
) -> Result<Vec<T>> {
    c.fetch(sql, params).await?.iter().map(decode).collect()
}

/// The first row of `sql`, decoded, if there is one.
pub async fn fetch_opt<C: Conn, T>(
    c: &mut C,
    sql: &str,
    params: &[Param],
    decode: fn(&C::Row) -> Result<T>,
) -> Result<Option<T>> {
    c.fetch(sql, params).await?.first().map(decode).transpose()
}

/// Decodes every row with one of the shared decoders.
pub fn collect<R, T>(rows: Vec<R>, decode: fn(&R) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(decode).collect()
}

/// `Stale` unless an optimistic update touched exactly one row.
pub fn expect_one(rows: u64, entity: &'static str) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale { entity })
    }
}

/// `%needle%` for `lower(col) LIKE lower($n) ESCAPE '\'`, with the needle's wildcards
/// escaped. Case is folded in SQL on both sides, so both follow the database's case rules.
pub fn like_pattern(needle: &str) -> String {
    let mut p = String::from("%");
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
