//! The sqlx glue on a real server: how each `Param` is bound (an untyped NULL goes into a
//! column of any type), the array parameters of `Sql::in_ids`, the `COPY` bulk insert, and
//! spare connections. Skipped when PostgreSQL is not installed (see `lastmile_testing::pg`).

use lastmile_store::rows::RowGet;
use lastmile_store::StoreError;
use lastmile_store_postgres::db::PgDb;
use lastmile_store_sql::{text_array, uuid_array, Conn, Db, Dialect, Param, Sql};
use uuid::Uuid;

const TABLE: &str = "CREATE TABLE binding_test (
    id uuid PRIMARY KEY, n BIGINT, t TEXT, j jsonb, b BOOLEAN, raw bytea, u uuid)";
const COLUMNS: [&str; 7] = ["id", "n", "t", "j", "b", "raw", "u"];

async fn db() -> Option<PgDb> {
    let url = lastmile_testing::pg::database_url().await?;
    let db = PgDb::connect(&url).await.expect("connect");
    db.write(|c| Box::pin(async move { c.execute(TABLE, &[]).await }))
        .await
        .expect("create the table");
    Some(db)
}

fn full_row(id: Uuid) -> [Param; 7] {
    [
        id.into(),
        (-7i64).into(),
        "tab\there, \"quoted\" and \\ back".into(),
        Param::json(serde_json::json!({"a": [1, "x"]})),
        true.into(),
        Param::Bytes(vec![0, 1, 255]),
        Uuid::from_u128(42).into(),
    ]
}

fn null_row(id: Uuid) -> [Param; 7] {
    std::array::from_fn(|i| if i == 0 { id.into() } else { Param::Null })
}

async fn check_rows(db: &PgDb, full: Uuid, null: Uuid) {
    let rows = db
        .read(move |c| {
            Box::pin(async move {
                let rows = c
                    .fetch("SELECT * FROM binding_test ORDER BY n NULLS LAST", &[])
                    .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push((
                        r.uuid("id")?,
                        r.opt_i64("n")?,
                        r.opt_text("t")?,
                        r.opt_json("j")?,
                        r.opt_bytes("raw")?,
                        r.opt_uuid("u")?,
                    ));
                }
                Ok(out)
            })
        })
        .await
        .expect("read back");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, full);
    assert_eq!(rows[0].1, Some(-7));
    assert_eq!(
        rows[0].2.as_deref(),
        Some("tab\there, \"quoted\" and \\ back")
    );
    assert_eq!(rows[0].3, Some(serde_json::json!({"a": [1, "x"]})));
    assert_eq!(rows[0].4, Some(vec![0, 1, 255]));
    assert_eq!(rows[0].5, Some(Uuid::from_u128(42)));
    assert_eq!(rows[1], (null, None, None, None, None, None));
}

#[tokio::test]
async fn insert_binds_every_param_and_untyped_nulls() {
    let Some(db) = db().await else { return };
    let (full, null) = (Uuid::now_v7(), Uuid::now_v7());
    db.write(move |c| {
        Box::pin(async move {
            // The NULL row first: the statement is prepared with the types the server infers
            // for the untyped NULLs, and then takes the typed values of the other row.
            for row in [null_row(null), full_row(full)] {
                let mut q = Sql::new("INSERT INTO binding_test (id, n, t, j, b, raw, u) VALUES ");
                q.bind_list(row);
                q.execute(c).await?;
            }
            Ok(())
        })
    })
    .await
    .expect("insert");
    check_rows(&db, full, null).await;
}

#[tokio::test]
async fn copy_in_takes_the_same_params_as_insert() {
    let Some(db) = db().await else { return };
    let (full, null) = (Uuid::now_v7(), Uuid::now_v7());
    let copied = db
        .write(move |c| {
            Box::pin(async move {
                let mut rows = [full_row(full), null_row(null)].into_iter().map(Ok);
                c.copy_in("binding_test", &COLUMNS, &mut rows).await
            })
        })
        .await
        .expect("copy");
    assert_eq!(copied, Some(2));
    check_rows(&db, full, null).await;
    // A duplicate key fails like the INSERT's would, and the transaction is rolled back.
    let again = Uuid::now_v7();
    let r = db
        .write(move |c| {
            Box::pin(async move {
                let mut rows = [null_row(again), null_row(full)].into_iter().map(Ok);
                c.copy_in("binding_test", &COLUMNS, &mut rows).await
            })
        })
        .await;
    assert!(matches!(r, Err(StoreError::Duplicate { .. })), "{r:?}");
    check_rows(&db, full, null).await;
    // A row that cannot be made fails the copy with its error, after rows already sent (more
    // than one chunk of them), and the connection stays usable.
    let r = db
        .write(move |c| {
            Box::pin(async move {
                let mut rows = (0..20_000)
                    .map(|_| Ok(null_row(Uuid::now_v7())))
                    .chain([Err(StoreError::corrupt("no such row"))]);
                c.copy_in("binding_test", &COLUMNS, &mut rows).await
            })
        })
        .await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    for _ in 0..3 {
        check_rows(&db, full, null).await;
    }
}

#[tokio::test]
async fn arrays_bind_lists_of_any_length() {
    let Some(db) = db().await else { return };
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let stored = ids.clone();
    db.write(move |c| {
        Box::pin(async move {
            for id in stored {
                c.execute("INSERT INTO binding_test (id) VALUES ($1)", &[id.into()])
                    .await?;
            }
            Ok(())
        })
    })
    .await
    .expect("insert");
    for wanted in [vec![], vec![ids[1]], vec![ids[0], ids[2], Uuid::now_v7()]] {
        let expected = wanted.iter().filter(|id| ids.contains(id)).count() as i64;
        let n = db
            .read(move |c| {
                Box::pin(async move {
                    let mut q = Sql::new("SELECT count(*) AS n FROM binding_test WHERE id");
                    q.in_ids(Dialect::Postgres, wanted);
                    q.fetch(c).await?.first().map(|r| r.i64("n")).transpose()
                })
            })
            .await
            .expect("count");
        assert_eq!(n, Some(expected));
    }
    let texts = [
        "",
        "plain",
        "a,b",
        "{braces}",
        "\"quoted\"",
        "back\\slash",
        "NULL",
        "ünï",
    ];
    let back = db
        .read(move |c| {
            Box::pin(async move {
                let rows = c
                    .fetch(
                        "SELECT t, CAST($2 AS uuid[]) AS u
                         FROM UNNEST(CAST($1 AS text[])) WITH ORDINALITY AS x (t, i)
                         ORDER BY i",
                        &[text_array(texts), uuid_array([Uuid::from_u128(7)])],
                    )
                    .await?;
                rows.iter()
                    .map(|r| r.text("t"))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .await
        .expect("unnest");
    assert_eq!(back, texts);
}

#[tokio::test]
async fn a_spare_connection_reads_outside_the_transaction() {
    let Some(db) = db().await else { return };
    // Two connections in the pool (it opens them on demand), so one is idle during the write.
    let hold =
        || db.read(|c| Box::pin(async move { c.execute("SELECT pg_sleep(0.05)", &[]).await }));
    let (a, b) = tokio::join!(hold(), hold());
    a.and(b).expect("warm the pool");
    let id = Uuid::now_v7();
    let seen = db
        .write(move |c| {
            Box::pin(async move {
                c.execute("INSERT INTO binding_test (id) VALUES ($1)", &[id.into()])
                    .await?;
                let Some(mut spare) = c.spare() else {
                    return Ok(None);
                };
                // Not committed yet: the spare connection does not see it.
                let rows = spare
                    .fetch("SELECT id FROM binding_test WHERE id = $1", &[id.into()])
                    .await?;
                Ok(Some(rows.len()))
            })
        })
        .await
        .expect("write");
    // `spare` gives a connection only when the pool has one idle at that moment (not so when
    // other tests hold them all); one that is given must not see the uncommitted row.
    assert!(matches!(seen, None | Some(0)), "{seen:?}");
}

/// The schema has no `integer` column (every integer is `BIGINT`), but an `int8` parameter
/// would go into one, and compare with one, all the same (PostgreSQL's assignment cast and
/// cross-type operators). `COPY` in binary format would not take it: it needs the exact type.
#[tokio::test]
async fn int8_params_fit_integer_columns() {
    let Some(db) = db().await else { return };
    let n = db
        .write(|c| {
            Box::pin(async move {
                c.execute("CREATE TABLE small_test (n INTEGER, v VARCHAR(10))", &[])
                    .await?;
                c.execute(
                    "INSERT INTO small_test (n, v) VALUES ($1, $2)",
                    &[7i64.into(), "seven".into()],
                )
                .await?;
                c.fetch(
                    "SELECT count(*) AS n FROM small_test WHERE n = $1 AND v = $2",
                    &[7i64.into(), "seven".into()],
                )
                .await?
                .first()
                .map(|r| r.i64("n"))
                .transpose()
            })
        })
        .await
        .expect("insert and compare");
    assert_eq!(n, Some(1));
}

/// A one-statement read runs its statement outside a transaction, and refuses a second one
/// (it would see another snapshot than the first).
#[tokio::test]
async fn a_one_statement_read_refuses_a_second_statement() {
    let Some(db) = db().await else { return };
    let one = db
        .read_statement(|c| {
            Box::pin(async move {
                let rows = c
                    .fetch(
                        "SELECT current_setting('transaction_isolation') AS iso",
                        &[],
                    )
                    .await?;
                rows[0].text("iso")
            })
        })
        .await
        .expect("one statement");
    // Not in a read's `REPEATABLE READ` transaction: the server's default for one statement.
    assert_eq!(one, "read committed");
    let two = db
        .read_statement(|c| {
            Box::pin(async move {
                c.fetch("SELECT 1 AS n", &[]).await?;
                c.fetch("SELECT 2 AS n", &[]).await
            })
        })
        .await;
    match two {
        Err(StoreError::Backend(e)) => assert!(e.to_string().contains("second statement"), "{e}"),
        other => panic!("a second statement ran: {:?}", other.map(|r| r.len())),
    }
}
