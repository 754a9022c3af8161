//! The directory change feed misses nothing when transactions commit out of order: the trap
//! of "rows with id > last seen" on PostgreSQL, where a sequence number taken by a transaction
//! that commits late is below numbers a reader has already passed. Skipped when PostgreSQL is
//! not installed (see `lastmile_testing::pg`).

use lastmile_domain::ids::NasId;
use lastmile_store::radius::{ChangeCursor, ChangedEntity};
use lastmile_store::RadiusStore;
use lastmile_store_postgres::PgStore;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

async fn change(c: &mut PgConnection, id: Uuid) {
    sqlx::query("INSERT INTO directory_changes (entity, entity_id) VALUES ('nas', $1)")
        .bind(id)
        .execute(c)
        .await
        .expect("insert a change");
}

/// Reads the feed until it says there is no more; returns the NAS ids seen and the cursor.
async fn drain(store: &PgStore, mut cursor: ChangeCursor) -> (Vec<Uuid>, ChangeCursor) {
    let mut seen = Vec::new();
    loop {
        let batch = store
            .directory_changes(cursor, 100)
            .await
            .expect("directory_changes");
        assert!(batch.next >= cursor);
        seen.extend(batch.changes.iter().filter_map(|c| match c {
            ChangedEntity::Nas(NasId(id)) => Some(*id),
            ChangedEntity::Service(_) => None,
        }));
        cursor = batch.next;
        if !batch.more {
            return (seen, cursor);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_late_is_not_lost() {
    let Some(url) = lastmile_testing::pg::database_url().await else {
        eprintln!("skipped: PostgreSQL not available");
        return;
    };
    let store = PgStore::connect(&url).await.expect("connect the store");
    let mut a = PgConnection::connect(&url).await.expect("connect a");
    let mut b = PgConnection::connect(&url).await.expect("connect b");
    let cursor = store.directory_cursor().await.expect("directory_cursor");

    // A takes its transaction id and sequence number first, and holds them uncommitted.
    let (early, late) = (Uuid::from_u128(0xea71), Uuid::from_u128(0x1a7e));
    sqlx::query("BEGIN").execute(&mut a).await.expect("begin a");
    change(&mut a, early).await;
    // B writes after A (a higher sequence number) and commits first.
    change(&mut b, late).await;

    let (seen, cursor) = drain(&store, cursor).await;
    assert_eq!(seen, vec![late], "B's change is visible, A's is not yet");

    sqlx::query("COMMIT")
        .execute(&mut a)
        .await
        .expect("commit a");
    let (seen, cursor) = drain(&store, cursor).await;
    assert!(
        seen.contains(&early),
        "A's change, committed after B's was read, must still be reported: {seen:?}"
    );

    // Once no transaction is in flight, the feed comes to rest: nothing is reported again.
    let (seen, _) = drain(&store, cursor).await;
    assert!(!seen.contains(&early) && !seen.contains(&late), "{seen:?}");
}
