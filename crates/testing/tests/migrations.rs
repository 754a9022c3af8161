//! The two backends keep separate migration trees with the same versions and names, so a
//! database's `schema_migrations` means the same on both.

fn versions(m: &[(i64, &'static str, &'static str)]) -> Vec<(i64, &'static str)> {
    m.iter().map(|(v, name, _)| (*v, *name)).collect()
}

#[test]
fn sqlite_and_postgres_migrations_match() {
    let sqlite = versions(lastmile_store_sqlite::MIGRATIONS);
    let postgres = versions(lastmile_store_postgres::MIGRATIONS);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}

#[test]
fn migration_versions_increase() {
    for m in [
        lastmile_store_sqlite::MIGRATIONS,
        lastmile_store_postgres::MIGRATIONS,
    ] {
        let v: Vec<i64> = m.iter().map(|(v, _, _)| *v).collect();
        assert!(
            v.windows(2).all(|w| w[0] < w[1]),
            "versions out of order: {v:?}"
        );
        assert!(v.iter().all(|v| *v > 0), "versions must be positive: {v:?}");
    }
}

/// Tables (and views), their columns, and the named indexes, as a sorted list of lines.
type Schema = Vec<String>;

async fn sqlite_schema() -> Schema {
    let (url, dir) = lastmile_testing::sqlite_url().await;
    lastmile_store_sqlite::SqliteStore::connect(&url)
        .await
        .expect("migrate a SQLite database");
    let path = dir.path().join("lastmile.db");
    let c = rusqlite::Connection::open(path).expect("open it again");
    let mut out = Vec::new();
    let mut tables = c
        .prepare(
            "SELECT type, name FROM sqlite_master
              WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .unwrap();
    let objects: Vec<(String, String)> = tables
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (kind, name) in objects {
        out.push(format!("{kind} {name}"));
        let mut cols = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{name}')"))
            .unwrap();
        for col in cols.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            out.push(format!("column {name}.{}", col.unwrap()));
        }
    }
    let mut idx = c
        .prepare(
            "SELECT tbl_name, name FROM sqlite_master
              WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'",
        )
        .unwrap();
    for r in idx
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (t, i) = r.unwrap();
        out.push(format!("index {t}.{i}"));
    }
    out.sort();
    out
}

async fn postgres_schema() -> Option<Schema> {
    use sqlx::Connection;
    let url = lastmile_testing::pg::database_url().await?;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let objects: Vec<(String, String)> = sqlx::query_as(
        "SELECT CASE table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END, table_name::text
           FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut out: Schema = objects.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
          WHERE table_schema = 'public'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    out.extend(cols.iter().map(|(t, col)| format!("column {t}.{col}")));
    // Indexes created as such, not those PostgreSQL makes for a primary key or a unique
    // constraint (SQLite's counterparts are its unnamed autoindexes).
    let idx: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.tablename::text, i.indexname::text FROM pg_indexes i
          WHERE i.schemaname = 'public'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    out.extend(idx.iter().map(|(t, i)| format!("index {t}.{i}")));
    out.sort();
    Some(out)
}

/// Both backends' migrations build the same schema: the same tables and views with the same
/// columns, and the same named indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_schemas_match() {
    let sqlite = sqlite_schema().await;
    let Some(postgres) = postgres_schema().await else {
        return;
    };
    let only_sqlite: Vec<_> = sqlite.iter().filter(|l| !postgres.contains(l)).collect();
    let only_postgres: Vec<_> = postgres.iter().filter(|l| !sqlite.contains(l)).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only on SQLite: {only_sqlite:#?}\nonly on PostgreSQL: {only_postgres:#?}"
    );
    assert!(sqlite.iter().any(|l| l == "table subscribers"));
    assert!(sqlite.iter().any(|l| l == "view ledger_entries"));
    assert!(sqlite.iter().any(|l| l == "column services.username"));
    assert!(sqlite.iter().any(|l| l.starts_with("index ")));
}
