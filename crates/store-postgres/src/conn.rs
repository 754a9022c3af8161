//! sqlx glue: binding [`Param`]s, rows for the shared decoders ([`Row`]), and the bulk insert
//! (`COPY`) the generic billing code uses when the backend offers it.

use crate::row::{db_err, Row};
use lastmile_store::{Result, StoreError};
use lastmile_store_sql::{Conn, Dialect, Param};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgRow, PgTypeInfo};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Encode, PgConnection, PgPool, Postgres, Type};

/// A connection as the generic store code sees it: inside the transaction [`PgDb`] opened
/// for the read or the write (committed or rolled back by it, never here), or, for a
/// [`Conn::spare`], a pooled connection outside any transaction.
///
/// [`PgDb`]: crate::db::PgDb
pub struct PgConn {
    pub(crate) inner: Inner,
    /// Where spare connections come from.
    pub(crate) pool: PgPool,
}

pub(crate) enum Inner {
    Tx(sqlx::Transaction<'static, Postgres>),
    Spare(PoolConnection<Postgres>),
    /// A [`Db::read_statement`](lastmile_store_sql::Db::read_statement): no transaction, so
    /// at most one statement (`true` once it has run), which is its own snapshot.
    OneStatement(PoolConnection<Postgres>, bool),
}

impl PgConn {
    /// The underlying connection, for statements outside the generic code.
    pub fn connection(&mut self) -> &mut PgConnection {
        match &mut self.inner {
            Inner::Tx(tx) => tx,
            Inner::Spare(c) | Inner::OneStatement(c, _) => c,
        }
    }

    /// The connection for the next statement. A second statement of a one-statement read is
    /// refused: it would see another snapshot than the first.
    fn statement(&mut self) -> Result<&mut PgConnection> {
        if let Inner::OneStatement(_, ran) = &mut self.inner {
            if std::mem::replace(ran, true) {
                return Err(StoreError::Backend(
                    "store bug: a one-statement read ran a second statement".into(),
                ));
            }
        }
        Ok(self.connection())
    }
}

/// A NULL of no declared type: PostgreSQL infers the parameter's type from where it is used
/// (the column it is inserted into or compared with), as for a literal `NULL`. A NULL typed
/// as, say, `int8` would fail going into a `uuid` column.
///
/// The statement is prepared with the types of its first execution's parameters (sqlx caches
/// it by its text): a position bound here first gets the type the server infers, and later
/// executions that bind a value there must bind that type (which they do when every `Param`
/// matches its column's type, as the store's SQL does).
struct Untyped;

impl Type<Postgres> for Untyped {
    fn type_info() -> PgTypeInfo {
        // OID 0 in Parse: "unspecified", left to the server.
        PgTypeInfo::with_oid(Oid(0))
    }
}

impl Encode<'_, Postgres> for Untyped {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> std::result::Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}

/// `p` bound to `q` in its column's PostgreSQL form: `uuid`, `int8`, `text`, `jsonb`, `bool`,
/// `bytea`, or an untyped NULL.
fn bind<'q>(q: Query<'q, Postgres, PgArguments>, p: &'q Param) -> Query<'q, Postgres, PgArguments> {
    match p {
        Param::Null => q.bind(Untyped),
        Param::I64(v) => q.bind(*v),
        Param::Text(v) => q.bind(v.as_str()),
        Param::Uuid(v) => q.bind(*v),
        Param::Json(v) => q.bind(v),
        Param::Bool(v) => q.bind(*v),
        Param::Bytes(v) => q.bind(v.as_slice()),
    }
}

fn query<'q>(sql: &'q str, params: &'q [Param]) -> Query<'q, Postgres, PgArguments> {
    params
        .iter()
        .fold(sqlx::query(AssertSqlSafe(sql)), |q, p| bind(q, p))
}

impl Conn for PgConn {
    type Row = Row<PgRow>;
    const DIALECT: Dialect = Dialect::Postgres;

    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row<PgRow>>> {
        let rows = query(sql, params)
            .fetch_all(self.statement()?)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(Row).collect())
    }

    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64> {
        let done = query(sql, params)
            .execute(self.statement()?)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn copy_in<const N: usize>(
        &mut self,
        table: &str,
        columns: &[&str; N],
        rows: &mut (dyn Iterator<Item = Result<[Param; N]>> + Send),
    ) -> Result<Option<u64>> {
        let statement = format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            columns.join(", ")
        );
        let mut copy = self
            .connection()
            .copy_in_raw(&statement)
            .await
            .map_err(db_err)?;
        // The rows go out in chunks as they are made: the server stores each while the next
        // is made. A row that cannot be made aborts the COPY, waiting for the server to
        // acknowledge it, so the connection is ready for the rollback that follows.
        let mut data = CopyRows::new();
        for row in rows {
            if let Err(e) = row.and_then(|row| data.row(&row)) {
                if let Err(abort) = copy.abort(e.to_string()).await {
                    tracing::warn!(error = %abort, "a COPY did not abort cleanly");
                }
                return Err(e);
            }
            if data.buf.len() >= COPY_CHUNK {
                copy.send(data.buf.as_slice()).await.map_err(db_err)?;
                data.buf.clear();
            }
        }
        copy.send(data.finish()).await.map_err(db_err)?;
        let copied = copy.finish().await.map_err(db_err)?;
        Ok(Some(copied))
    }

    fn spare(&mut self) -> Option<Self> {
        let conn = self.pool.try_acquire()?;
        Some(PgConn {
            inner: Inner::Spare(conn),
            pool: self.pool.clone(),
        })
    }
}

/// Rows in PostgreSQL's binary COPY format: a header, then per row its field count and each
/// field as a length and its binary form (`uuid`: 16 bytes; `int8`: 8 bytes, big-endian;
/// `text`: UTF-8; `jsonb`: a version byte and the JSON text; NULL: length -1), then a
/// trailer. The binary forms are those of the types `bind` declares, so a column takes in
/// COPY exactly the `Param`s it takes in an INSERT (NULL goes into any column).
struct CopyRows {
    buf: Vec<u8>,
}

/// Bytes of COPY data sent at a time.
const COPY_CHUNK: usize = 256 * 1024;

impl CopyRows {
    /// The header.
    fn new() -> Self {
        let mut buf = Vec::with_capacity(COPY_CHUNK + 64 * 1024);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self { buf }
    }

    fn row(&mut self, fields: &[Param]) -> Result<()> {
        let n = i16::try_from(fields.len())
            .map_err(|_| StoreError::Backend("a COPY row has too many fields".into()))?;
        self.buf.extend_from_slice(&n.to_be_bytes());
        for f in fields {
            match f {
                Param::Null => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
                Param::I64(v) => self.field(&v.to_be_bytes())?,
                Param::Text(s) => self.field(s.as_bytes())?,
                Param::Uuid(u) => self.field(u.as_bytes())?,
                Param::Json(v) => {
                    let mut b = Vec::with_capacity(64);
                    b.push(1); // jsonb format version
                    serde_json::to_writer(&mut b, v)
                        .map_err(|e| StoreError::Backend(Box::new(e)))?;
                    self.field(&b)?
                }
                Param::Bool(v) => self.field(&[u8::from(*v)])?,
                Param::Bytes(b) => self.field(b)?,
            }
        }
        Ok(())
    }

    fn field(&mut self, bytes: &[u8]) -> Result<()> {
        let len = i32::try_from(bytes.len())
            .map_err(|_| StoreError::Backend("a value exceeds PostgreSQL's 1 GB limit".into()))?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}
