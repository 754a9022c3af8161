//! Test support shared by the crates' tests: stores on fresh SQLite files and on fresh
//! databases of a throwaway PostgreSQL cluster ([`pg`]).

pub mod pg;
mod scratch;

pub use scratch::TempDir;

use lastmile_store::Store;
use lastmile_store_postgres::PgStore;
use lastmile_store_sqlite::SqliteStore;
use std::sync::Arc;

/// The URL of a fresh SQLite database file (not created yet) in a temp dir, and the guard that
/// removes the dir when dropped. Keep the guard alive as long as the database is in use.
pub async fn sqlite_url() -> (String, TempDir) {
    let dir = TempDir::new("sqlite");
    let url = format!("sqlite://{}", dir.path().join("lastmile.db").display());
    (url, dir)
}

/// A migrated store on a fresh SQLite file, removed when the test process exits.
pub async fn sqlite_store() -> Arc<dyn Store> {
    let (url, dir) = sqlite_url().await;
    let store = SqliteStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot open test SQLite database {url}: {e}"));
    dir.keep_until_exit();
    Arc::new(store)
}

/// A migrated store on a fresh PostgreSQL database, or `None` when PostgreSQL tests are
/// skipped (see [`pg`]).
pub async fn pg_store() -> Option<Arc<dyn Store>> {
    let url = pg::database_url().await?;
    let store = PgStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to test PostgreSQL database {url}: {e}"));
    Some(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_url_dir_is_removed_on_drop() {
        let (url, dir) = sqlite_url().await;
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        let store = SqliteStore::connect(&url).await.expect("connect");
        assert_eq!(store.next_counter("c").await.expect("counter"), 1);
        store.close().await;
        assert!(path.join("lastmile.db").is_file());
        drop(dir);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn sqlite_stores_are_independent() {
        let a = sqlite_store().await;
        let b = sqlite_store().await;
        assert_eq!(a.backend(), "sqlite");
        assert_eq!(a.next_counter("c").await.expect("a"), 1);
        assert_eq!(a.next_counter("c").await.expect("a"), 2);
        assert_eq!(b.next_counter("c").await.expect("b"), 1);
    }

    #[tokio::test]
    async fn pg_store_is_postgres() {
        let Some(store) = pg_store().await else {
            return;
        };
        assert_eq!(store.backend(), "postgres");
        store.ping().await.expect("ping");
    }
}
