//! The job runner: claims provisioning jobs from the outbox the use cases write, runs the
//! executor registered for their kind, and records the outcome: success, a retry after an
//! exponential backoff, or final failure after `max_attempts`.
//!
//! Jobs are claimed with a lease; a worker that dies mid-job leaves it `running` until the
//! lease expires, then another worker takes it over. Executors must therefore be idempotent
//! (re-publishing a policy or re-sending a CoA twice is harmless). Kinds without an executor
//! are never claimed: they wait, visibly, until one is installed.

use async_trait::async_trait;
use jiff::SignedDuration;
use lastmile_app::Clock;
use lastmile_domain::job::{backoff, ProvisioningJob};
use lastmile_store::{JobOutcome, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Carries out one kind of job against the network.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    /// `Err` with a human-readable reason on failure; the runner retries.
    async fn execute(&self, job: &ProvisioningJob) -> Result<(), String>;
}

/// Called after every attempt with the job kind and `succeeded` / `retry` / `failed`.
pub type AttemptHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

pub struct Runner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    executors: HashMap<String, Arc<dyn Executor>>,
    wake: Arc<Notify>,
    lease: SignedDuration,
    batch: u32,
    poll: Duration,
    on_attempt: AttemptHook,
}

impl Runner {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            executors: HashMap::new(),
            wake: Arc::new(Notify::new()),
            lease: SignedDuration::from_secs(60),
            batch: 32,
            poll: Duration::from_secs(5),
            on_attempt: Arc::new(|_, _| {}),
        }
    }

    pub fn register(mut self, e: Arc<dyn Executor>) -> Self {
        self.executors.insert(e.kind().to_string(), e);
        self
    }

    pub fn on_attempt(mut self, hook: AttemptHook) -> Self {
        self.on_attempt = hook;
        self
    }

    /// How long a claimed job is reserved for one attempt.
    pub fn lease(mut self, lease: SignedDuration) -> Self {
        self.lease = lease;
        self
    }

    /// Kinds this runner executes.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.executors.keys().cloned().collect();
        k.sort();
        k
    }

    /// Notify this to make the runner look for work at once (new jobs were written).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims and runs one batch; returns how many jobs it attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let kinds = self.kinds();
        let now = self.clock.now();
        let jobs = self
            .store
            .claim_jobs(&kinds, now, now + self.lease, self.batch)
            .await?;
        for job in &jobs {
            let Some(exec) = self.executors.get(&job.kind) else {
                continue;
            };
            let result = exec.execute(job).await;
            let now = self.clock.now();
            let (outcome, label) = match result {
                Ok(()) => (JobOutcome::Succeeded, "succeeded"),
                Err(error) if job.attempts >= job.max_attempts => {
                    tracing::error!(job = %job.id, kind = %job.kind, %error, "provisioning job failed for good");
                    (
                        JobOutcome::Failed {
                            error,
                            retry_at: None,
                        },
                        "failed",
                    )
                }
                Err(error) => {
                    tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, %error, "provisioning job attempt failed");
                    let retry_at = Some(now + backoff(job.attempts));
                    (JobOutcome::Failed { error, retry_at }, "retry")
                }
            };
            if !self
                .store
                .finish_job(job.id, job.attempts, &outcome, now)
                .await?
            {
                tracing::warn!(job = %job.id, "job lease expired before it finished; outcome dropped");
            }
            (self.on_attempt)(&job.kind, label);
        }
        Ok(jobs.len())
    }

    /// Runs until `shutdown` turns true. A job in progress is finished before returning.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.executors.is_empty() {
            tracing::info!("no job executors installed; provisioning jobs stay pending");
        }
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.run_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "job runner could not claim jobs"),
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        tracing::info!("job runner stopped");
    }
}
