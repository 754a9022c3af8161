//! What the binary's end-to-end tests share.

use std::process::Command;

/// The `lastmile` binary on database `db`, run in `dir` (where it keeps its secret key), with
/// info logs in plain text and no secret key from the environment.
pub fn lastmile(db: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lastmile"));
    c.current_dir(dir)
        .env("LASTMILE_DATABASE_URL", db)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("LASTMILE_SECRET_KEY");
    c
}
