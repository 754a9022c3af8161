//! The PostgreSQL database: a connection pool; each read and each write is a transaction of
//! its own on a pooled connection.
//!
//! Writes run at PostgreSQL's default `READ COMMITTED`: concurrency comes from the database,
//! and the store's SQL takes the locks it needs (the revision check of an optimistic update
//! locks its row, job claims use `FOR UPDATE SKIP LOCKED`, a billing batch locks the invoice
//! counter row first; see the area modules of `lastmile-store-sql`).
//!
//! Reads run in a `REPEATABLE READ, READ ONLY` transaction: every statement of one read sees
//! the same snapshot (a billing batch's inputs, read with several statements, are those of
//! one instant). A read takes no locks and never waits for a writer. A read of a single
//! statement ([`Db::read_statement`]) runs outside any transaction: the statement is its own
//! snapshot, and it saves the `BEGIN` round trip (a third of a point read's time).

use crate::conn::{Inner, PgConn};
use crate::migrate;
use crate::row::db_err;
use lastmile_store::{Pending, Result, StoreError};
use lastmile_store_sql::{ConnFuture, Db};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// Connections per store; PostgreSQL's default `max_connections` is 100.
const POOL_SIZE: u32 = 10;

/// Prepared statements each connection keeps (sqlx's default is 100). The store's SQL has
/// some two hundred texts (`IN` lists and multi-row inserts of a few sizes among them): kept
/// prepared, each is parsed and described once per connection instead of on every use.
const STATEMENT_CACHE: usize = 256;

const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

#[derive(Clone)]
pub struct PgDb {
    pool: PgPool,
}

impl PgDb {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or a unix
    /// socket: `postgres://user@localhost/db?host=/run/postgresql`) without migrating it.
    pub async fn open(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(db_err)?
            .application_name("lastmile")
            .statement_cache_capacity(STATEMENT_CACHE);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(db_err)?;
        Ok(Self { pool })
    }

    /// Applies pending migrations (idempotent; safe when several processes run it at once).
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(&self.pool).await
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `f` in `tx`. A write is committed if `f` returns `Ok` (the answer comes after the
    /// commit), rolled back if it returns `Err`. A read ends without waiting: its
    /// transaction is dropped, and sqlx sends the `ROLLBACK` (all a read-only transaction
    /// needs) with the connection's return to the pool, off the caller's path. A future
    /// dropped unfinished is rolled back the same way.
    async fn run<T, F>(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        write: bool,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let mut conn = PgConn {
            inner: Inner::Tx(tx),
            pool: self.pool.clone(),
        };
        let result = f(&mut conn).await;
        let Inner::Tx(tx) = conn.inner else {
            return Err(StoreError::Backend(
                "store bug: a transaction's connection was replaced".into(),
            ));
        };
        match result {
            Ok(v) if write => {
                tx.commit().await.map_err(db_err)?;
                Ok(v)
            }
            Err(e) if write => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "a transaction did not roll back cleanly");
                }
                Err(e)
            }
            read => read,
        }
    }
}

impl Db for PgDb {
    type Conn = PgConn;
    const BACKEND: &'static str = "postgres";

    async fn connect(url: &str) -> Result<Self> {
        let db = Self::open(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Closes the pool, waiting for checked-out connections to be returned.
    async fn close(&self) {
        self.pool.close().await;
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let tx = self.pool.begin_with(BEGIN_READ).await.map_err(db_err)?;
        self.run(tx, false, f).await
    }

    /// Outside a transaction: a single statement is a snapshot of its own, and the `BEGIN`
    /// a transaction needs would be a round trip more than the statement itself.
    async fn read_statement<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let conn = self.pool.acquire().await.map_err(db_err)?;
        let mut conn = PgConn {
            inner: Inner::OneStatement(conn, false),
            pool: self.pool.clone(),
        };
        f(&mut conn).await
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let tx = self.pool.begin().await.map_err(db_err)?;
        self.run(tx, true, f).await
    }

    /// Starts the transaction on a task of its own and returns: the caller can queue the
    /// next one while this one runs (see the trait for the order).
    async fn queue_write<T, F>(&self, f: F) -> Result<Pending<T>>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let db = self.clone();
        let task = tokio::spawn(async move { db.write(f).await });
        Ok(Box::pin(async move {
            task.await.map_err(|e| StoreError::Backend(Box::new(e)))?
        }))
    }
}
