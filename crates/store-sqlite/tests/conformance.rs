//! The backend-independent conformance suite (`lastmile_store::conformance`) against SQLite on
//! rusqlite (the shared SQL of `lastmile-store-sql` over the writer thread and readers):
//! one fresh database file per case, removed when the case ends.

use lastmile_store::conformance::TestStore;
use lastmile_store::Store;
use lastmile_store_sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

/// A store on a temporary database file; the file (and its WAL) goes when this is dropped.
struct TempSqlite {
    store: Arc<dyn Store>,
    path: PathBuf,
}

impl TestStore for TempSqlite {
    fn store(&self) -> Option<Arc<dyn Store>> {
        Some(self.store.clone())
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn sqlite_store() -> TempSqlite {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-conformance");
    std::fs::create_dir_all(&dir).expect("create the test database directory");
    let path = dir.join(format!("{}.db", uuid::Uuid::now_v7()));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open a SQLite test database");
    TempSqlite {
        store: Arc::new(store),
        path,
    }
}

lastmile_store::conformance_suite!(sqlite_store());
