//! Use cases: each public method of [`App`] is one business operation. It validates input into
//! domain values, asks the domain what the change means, and hands the store everything that
//! must be written together (the change, its timeline event, its audit event, its provisioning
//! jobs) so it lands in one transaction.

mod audit;
pub mod billing;
mod billing_config;
pub mod clock;
pub mod dunning;
mod error;
mod input;
mod jobs;
pub mod money;
mod nas;
pub mod payment_import;
mod plans;
mod retry;
pub mod secrets;
pub mod services;
mod sessions;
mod subscribers;
pub mod tokens;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppError, AppResult};
pub use secrets::SecretBox;

use jiff::SignedDuration;
use lastmile_domain::audit::Actor;
use lastmile_domain::auth::Operator;
use lastmile_store::Store;
use std::sync::Arc;

/// Settings the use cases need.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// How far in the past a service event may be dated.
    pub backdate_window: SignedDuration,
    /// Job kinds that have an executor in this installation (others wait, visibly).
    pub executor_kinds: Vec<lastmile_domain::job::JobKind>,
    pub billing: billing::BillingConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            backdate_window: SignedDuration::from_hours(24 * 90),
            executor_kinds: Vec::new(),
            billing: billing::BillingConfig::default(),
        }
    }
}

/// The application: the store, the clock, the secret box and the configuration. Cheap to
/// clone; shared by the HTTP handlers, the job runner and the CLI.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub secrets: SecretBox,
    pub config: Arc<AppConfig>,
    /// Called after a transaction that queued provisioning jobs, to wake the job runner.
    pub jobs_queued: Arc<dyn Fn() + Send + Sync>,
    /// Becomes true when the process is shutting down: long work (billing runs) stops at its
    /// next safe point and resumes when started again.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        secrets: SecretBox,
        config: AppConfig,
    ) -> Self {
        Self {
            store,
            clock,
            secrets,
            config: Arc::new(config),
            jobs_queued: Arc::new(|| {}),
            // Never stops: the sender is gone, the value stays false.
            stopping: tokio::sync::watch::channel(false).1,
        }
    }

    /// Long work watches `stopping` and stops at its next safe point once it is true.
    pub fn with_stopping(mut self, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stopping = stopping;
        self
    }

    /// True once shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    pub fn with_jobs_queued(mut self, f: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.jobs_queued = f;
        self
    }

    pub fn has_executor(&self, kind: lastmile_domain::job::JobKind) -> bool {
        self.config.executor_kinds.contains(&kind)
    }
}

/// The actor recorded in audit events for an operator.
pub fn actor(op: &Operator) -> Actor {
    Actor {
        id: format!("operator:{}", op.id),
        name: op.name.clone(),
    }
}
