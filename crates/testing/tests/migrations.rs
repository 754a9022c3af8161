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
