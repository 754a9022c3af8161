//! `lastmile bench store`.

use anyhow::Result;

/// `lastmile bench store`, on the backend the URL names.
pub async fn store(url: &str, requests: usize, in_flight: usize, sessions: usize) -> Result<()> {
    use lastmile_store_sql::Db;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let db = lastmile_store_postgres::db::PgDb::connect(url).await?;
        let r = store_on(&db, requests, in_flight, sessions).await;
        db.close().await;
        r
    } else {
        let db = lastmile_store_sqlite::db::SqliteDb::connect(url).await?;
        let r = store_on(&db, requests, in_flight, sessions).await;
        db.close().await;
        r
    }
}

async fn store_on<D: lastmile_store_sql::Db>(
    db: &D,
    requests: usize,
    in_flight: usize,
    sessions: usize,
) -> Result<()> {
    let r = lastmile_store_sql::bench::accounting_writes(db, requests, in_flight, sessions).await?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "store writes ({}): {} requests in {:.2} s = {:.0} requests/s; submit→commit p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({in_flight} in flight, {sessions} sessions)",
        D::BACKEND,
        r.requests,
        r.elapsed.as_secs_f64(),
        r.per_second(),
        ms(r.percentile(50.0)),
        ms(r.percentile(99.0)),
        ms(r.percentile(100.0)),
    );
    Ok(())
}
