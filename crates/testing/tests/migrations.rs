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

/// Tables (and views), their columns, NOT NULL columns, CHECK counts and named indexes, as a
/// sorted list of lines.
type Schema = Vec<String>;

/// Subscriber search is indexed differently on each backend (migration 0008): SQLite has FTS5
/// trigram virtual tables, PostgreSQL pg_trgm GIN indexes. These pairs, and nothing else, are
/// left out of the comparison; each side is checked to have its half.
const SEARCH_INDEXES: &[(&str, &str, &str)] = &[
    // (SQLite FTS5 table, PostgreSQL table, its GIN index)
    ("subscribers_fts", "subscribers", "subscribers_search_idx"),
    ("services_fts", "services", "services_search_idx"),
];

/// The shadow tables FTS5 keeps a virtual table `t`'s index in: `t_data`, `t_idx`, … (an
/// external-content table has no `t_content`, listed for completeness).
const FTS5_SHADOW_SUFFIXES: &[&str] = &["data", "idx", "content", "docsize", "config"];

/// Removes the SQLite half of [`SEARCH_INDEXES`]: each FTS5 table and its shadow tables, with
/// their columns. Panics if an FTS5 table is missing.
fn without_fts(schema: Schema) -> Schema {
    let mut names = Vec::new();
    for (fts, _, _) in SEARCH_INDEXES {
        assert!(
            schema.iter().any(|l| *l == format!("table {fts}")),
            "SQLite has no search table {fts}"
        );
        names.push(fts.to_string());
        names.extend(FTS5_SHADOW_SUFFIXES.iter().map(|s| format!("{fts}_{s}")));
    }
    schema
        .into_iter()
        .filter(|l| {
            !names.iter().any(|n| {
                *l == format!("table {n}")
                    || l.starts_with(&format!("column {n}."))
                    || l.starts_with(&format!("not null {n}."))
                    || l.starts_with(&format!("checks {n} "))
            })
        })
        .collect()
}

/// Removes the PostgreSQL half of [`SEARCH_INDEXES`]: the GIN indexes. Panics if one is
/// missing.
fn without_trigram_indexes(schema: Schema) -> Schema {
    let lines: Vec<String> = SEARCH_INDEXES
        .iter()
        .map(|(_, table, index)| format!("index {table}.{index}"))
        .collect();
    for l in &lines {
        assert!(schema.contains(l), "PostgreSQL has no search index: {l}");
    }
    schema.into_iter().filter(|l| !lines.contains(l)).collect()
}

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
            .prepare(&format!(
                "SELECT name, \"notnull\" OR pk > 0 FROM pragma_table_info('{name}')"
            ))
            .unwrap();
        let rows = cols
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))
            .unwrap();
        for col in rows {
            let (col, not_null) = col.unwrap();
            out.push(format!("column {name}.{col}"));
            // A view's columns carry no constraint on either side.
            if not_null && kind == "table" {
                out.push(format!("not null {name}.{col}"));
            }
        }
        if kind == "table" {
            let sql: String = c
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .unwrap();
            // A boolean is an INTEGER checked to be 0 or 1 here; PostgreSQL's BOOLEAN needs no
            // check, so those are not counted.
            let checks = sql.matches("CHECK").count() - sql.matches("IN (0, 1))").count();
            out.push(format!("checks {name} {checks}"));
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
    let not_null: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text FROM information_schema.columns c
           JOIN information_schema.tables t
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name
          WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
            AND c.is_nullable = 'NO'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    out.extend(
        not_null
            .iter()
            .map(|(t, col)| format!("not null {t}.{col}")),
    );
    // CHECK constraints per table (SQLite's may be unnamed, so they are counted, not named).
    let checks: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.table_name::text,
                (SELECT count(*) FROM pg_constraint k
                  WHERE k.contype = 'c' AND k.conrelid = ('public.' || t.table_name)::regclass)
           FROM information_schema.tables t
          WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    out.extend(checks.iter().map(|(t, n)| format!("checks {t} {n}")));
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
/// columns, the same NOT NULL columns, as many CHECK constraints per table, and the same
/// named indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_schemas_match() {
    let sqlite = without_fts(sqlite_schema().await);
    let Some(postgres) = postgres_schema().await else {
        return;
    };
    let postgres = without_trigram_indexes(postgres);
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
    assert!(sqlite
        .iter()
        .any(|l| l == "not null radius_sessions.started_at"));
    assert!(sqlite.iter().any(|l| l == "checks radius_sessions 2"));
}
