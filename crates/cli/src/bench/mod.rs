//! Load tools that measure the system on this machine (`lastmile bench …`):
//! - `billing`: seeds subscribers through the use cases, then times a full billing run and a
//!   second run over the same date (nothing to do); invoices per second and the run's peak
//!   memory;
//! - `store`: the store's write path alone;
//! - `api`: the latency of the read endpoints over HTTP on a seeded database;
//! - `radius`: Access-Requests and accounting over loopback against this process's server.

mod api;
mod billing;
mod http_client;
mod radius;
mod store;

pub use api::api;
pub use billing::billing;
pub use radius::{radius, Load as RadiusLoad, Phase as RadiusPhase};
pub use store::store;

/// Keeps the error's chain of causes (the store's database error under the use case's).
fn err(e: lastmile_app::AppError) -> anyhow::Error {
    anyhow::Error::from(e)
}

/// Peak resident memory of this process since the last reset, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
