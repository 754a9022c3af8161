//! Scratch directories for tests, and clean-up that runs when the test process exits.
//!
//! Rust runs no destructors for statics, and a test process may end by `exit` or by a signal,
//! so clean-up is delegated to a watchdog: a small `sh` child that blocks reading a pipe whose
//! write end only this process holds. When the process ends, however it ends, the kernel closes
//! the pipe, the watchdog's `read` returns, and it runs its clean-up script.

use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Write ends of the watchdogs' pipes: held until the process exits, never written.
static WATCHDOG_PIPES: Mutex<Vec<ChildStdin>> = Mutex::new(Vec::new());

/// Starts `sh -c script sh args…` that runs `script` after reading EOF on its stdin, i.e.
/// once this process has exited. The script should start with `read _`.
pub(crate) fn run_at_exit(script: &str, args: &[&Path]) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new("sh")
        .arg("-c")
        // Ctrl-C in a terminal signals the whole foreground process group: the watchdog has its
        // own group and ignores the usual termination signals anyway, so it outlives the tests.
        .arg(format!("trap '' INT TERM HUP\n{script}"))
        .arg("sh")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .process_group(0)
        .spawn()?;
    let pipe = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("watchdog has no stdin"))?;
    WATCHDOG_PIPES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(pipe);
    // The child is reaped by init once we are gone; dropping `Child` does not kill it.
    Ok(())
}

/// A name that is unique across processes and within this one.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// This process's scratch directory under the system temp dir, removed when the process exits.
pub(crate) fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(unique_name("lastmile-test"));
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create test scratch dir {}: {e}", root.display()));
        if let Err(e) = run_at_exit("read _\nrm -rf \"$1\"", &[&root]) {
            panic!(
                "cannot start the clean-up watchdog for {}: {e}",
                root.display()
            );
        }
        root
    })
}

/// A fresh directory, removed (with its contents) on drop, and in any case when the test
/// process exits.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = scratch_root().join(unique_name(prefix));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        Self { path, keep: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory in place until the test process exits (for stores handed out as
    /// `Arc<dyn Store>`, which may outlive any guard).
    pub fn keep_until_exit(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
