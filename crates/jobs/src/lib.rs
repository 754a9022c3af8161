//! The job runner: claims provisioning jobs from the outbox the use cases write, runs the
//! executor registered for their kind, and records the outcome: success, a retry after an
//! exponential backoff, or final failure after `max_attempts`.
//!
//! Claimed jobs run concurrently: at most `max_in_flight` at once, and at most `per_key` per
//! concurrency key the executor names (the NAS), so a dead NAS holds only its own slots. Each
//! attempt has a timeout (a timed-out attempt is retried) and each outcome is recorded as soon
//! as that attempt ends.
//!
//! Jobs are claimed with a lease; a worker that dies mid-job leaves it `running` until the
//! lease expires, then another worker takes it over. Executors must therefore be idempotent
//! (re-publishing a policy or re-sending a CoA twice is harmless). Kinds without an executor
//! are never claimed: they wait, visibly, until one is installed.

use async_trait::async_trait;
use jiff::SignedDuration;
use lastmile_app::Clock;
use lastmile_domain::job::{backoff, JobKind, ProvisioningJob};
use lastmile_store::{JobOutcome, JobScope, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

/// What a successful attempt did, as a person reads it; stored as the job's `last_result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobReport {
    pub summary: String,
}

impl JobReport {
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
        }
    }
}

/// Why an attempt failed; the text lands in `last_error` and `last_result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobFailure {
    /// Worth trying again after a backoff (NAS unreachable, timeout, NAK).
    Retry(String),
    /// Can never succeed (malformed payload): the job fails at once.
    Permanent(String),
}

impl JobFailure {
    pub fn message(&self) -> &str {
        match self {
            Self::Retry(m) | Self::Permanent(m) => m,
        }
    }
}

/// Carries out one kind of job against the network.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    fn kind(&self) -> JobKind;
    /// Jobs with the same key share a concurrency bound (e.g. the NAS they talk to, so one
    /// slow or dead NAS holds only its own slots). `None`: only the global bound applies.
    async fn concurrency_key(&self, _job: &ProvisioningJob) -> Option<String> {
        None
    }
    async fn execute(&self, job: &ProvisioningJob) -> Result<JobReport, JobFailure>;
}

/// Called after every attempt with the job kind and `succeeded` / `retry` / `failed`.
pub type AttemptHook = Arc<dyn Fn(JobKind, &str) + Send + Sync>;

pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
pub const DEFAULT_PER_KEY: usize = 4;
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Runner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    executors: HashMap<JobKind, Arc<dyn Executor>>,
    wake: Arc<Notify>,
    lease: SignedDuration,
    batch: u32,
    poll: Duration,
    on_attempt: AttemptHook,
    attempt_timeout: Duration,
    per_key: usize,
    max_in_flight: usize,
    /// Global slots; a claimed job holds one until its outcome is recorded.
    slots: Arc<Semaphore>,
    keys: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
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
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            per_key: DEFAULT_PER_KEY,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            slots: Arc::new(Semaphore::new(DEFAULT_MAX_IN_FLIGHT)),
            keys: Arc::default(),
        }
    }

    pub fn register(mut self, e: Arc<dyn Executor>) -> Self {
        self.executors.insert(e.kind(), e);
        self
    }

    pub fn on_attempt(mut self, hook: AttemptHook) -> Self {
        self.on_attempt = hook;
        self
    }

    /// The shortest lease a claim takes; it is raised to cover the worst wait (see
    /// `claim_lease`).
    pub fn lease(mut self, lease: SignedDuration) -> Self {
        self.lease = lease;
        self
    }

    /// How long one attempt may take; a slower one counts as a failed attempt (retried).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// At most this many attempts in flight per concurrency key (at least 1).
    pub fn per_key(mut self, n: usize) -> Self {
        self.per_key = n.max(1);
        self
    }

    /// At most this many claimed jobs at once (at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self.slots = Arc::new(Semaphore::new(self.max_in_flight));
        self
    }

    /// Kinds this runner executes.
    pub fn kinds(&self) -> Vec<JobKind> {
        let mut k: Vec<JobKind> = self.executors.keys().copied().collect();
        k.sort();
        k
    }

    /// Notify this to make the runner look for work at once (new jobs were written).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// The lease a claim takes. A claimed job may wait for its key behind every other
    /// claimed job of the same key (at most `max_in_flight`, `per_key` at a time, each
    /// bounded by the timeout), then run its own attempt: the lease covers all of that, so a
    /// slow NAS cannot let a job's lease expire while it waits or runs.
    fn claim_lease(&self) -> SignedDuration {
        let rounds = self.max_in_flight.div_ceil(self.per_key) + 1;
        let worst = self
            .attempt_timeout
            .saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
            .saturating_add(Duration::from_secs(30));
        let worst = SignedDuration::try_from(worst).unwrap_or(SignedDuration::MAX);
        worst.max(self.lease)
    }

    /// Claims as many jobs as there are free slots and starts their attempts in `tasks`;
    /// returns how many it claimed.
    async fn claim_and_start(&self, tasks: &mut JoinSet<()>) -> Result<usize, StoreError> {
        let free = self.slots.available_permits();
        let limit = u32::try_from(free).unwrap_or(u32::MAX).min(self.batch);
        if limit == 0 || self.executors.is_empty() {
            return Ok(0);
        }
        let kinds = self.kinds();
        let now = self.clock.now();
        let jobs = self
            .store
            .claim_jobs(&kinds, JobScope::All, now, now + self.claim_lease(), limit)
            .await?;
        let n = jobs.len();
        for job in jobs {
            let Some(exec) = self.executors.get(&job.kind).cloned() else {
                continue;
            };
            // Only this loop takes slots and it claimed no more than were free.
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                continue;
            };
            let attempt = Attempt {
                store: self.store.clone(),
                clock: self.clock.clone(),
                exec,
                on_attempt: self.on_attempt.clone(),
                timeout: self.attempt_timeout,
                keys: self.keys.clone(),
                per_key: self.per_key,
            };
            tasks.spawn(async move {
                attempt.run(job).await;
                drop(slot);
            });
        }
        Ok(n)
    }

    /// Claims one batch, runs it to the end (concurrently, within the bounds) and returns
    /// how many jobs it attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let mut tasks = JoinSet::new();
        let n = self.claim_and_start(&mut tasks).await?;
        while tasks.join_next().await.is_some() {}
        Ok(n)
    }

    /// Runs until `shutdown` turns true. Attempts in flight are finished (and recorded)
    /// before returning.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.executors.is_empty() {
            tracing::info!("no job executors installed; provisioning jobs stay pending");
        }
        let mut tasks = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.claim_and_start(&mut tasks).await {
                // More may be waiting; a full runner waits for a slot below.
                Ok(n) if n > 0 && self.slots.available_permits() > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "job runner could not claim jobs"),
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = self.wake.notified() => {}
                // A slot freed up.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!("job runner stopped");
    }
}

/// One job's attempt, run on its own task.
struct Attempt {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    exec: Arc<dyn Executor>,
    on_attempt: AttemptHook,
    timeout: Duration,
    keys: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    per_key: usize,
}

impl Attempt {
    fn key_semaphore(&self, key: &str) -> Arc<Semaphore> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
            .clone()
    }

    /// Forgets a key nobody holds or waits for, so the map does not grow with every NAS
    /// ever seen.
    fn release_key(&self, key: &str, sem: Arc<Semaphore>) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and ours: nobody else holds or waits on it; new users clone
        // under this lock.
        if Arc::strong_count(&sem) == 2 {
            keys.remove(key);
        }
    }

    async fn run(self, job: ProvisioningJob) {
        let key = self.exec.concurrency_key(&job).await;
        let sem = key.as_deref().map(|k| self.key_semaphore(k));
        let permit = match &sem {
            // The semaphore is never closed.
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        let result = match tokio::time::timeout(self.timeout, self.exec.execute(&job)).await {
            Ok(r) => r,
            Err(_) => Err(JobFailure::Retry(format!(
                "attempt timed out after {} s",
                self.timeout.as_secs_f64()
            ))),
        };
        drop(permit);
        if let (Some(k), Some(s)) = (key.as_deref(), sem) {
            self.release_key(k, s);
        }
        let now = self.clock.now();
        let (outcome, label) = match result {
            Ok(report) => (JobOutcome::succeeded(report.summary), "succeeded"),
            Err(failure)
                if job.attempts >= job.max_attempts
                    || matches!(failure, JobFailure::Permanent(_)) =>
            {
                let error = failure.message().to_string();
                tracing::error!(job = %job.id, kind = %job.kind, %error, "provisioning job failed for good");
                (
                    JobOutcome::Failed {
                        error,
                        retry_at: None,
                    },
                    "failed",
                )
            }
            Err(failure) => {
                let error = failure.message().to_string();
                tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, %error, "provisioning job attempt failed");
                let retry_at = Some(now + backoff(job.attempts));
                (JobOutcome::Failed { error, retry_at }, "retry")
            }
        };
        match self
            .store
            .finish_job(job.id, job.attempts, &outcome, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %job.id, "job lease expired before it finished; outcome dropped")
            }
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "could not record a job's outcome; it runs again after its lease")
            }
        }
        (self.on_attempt)(job.kind, label);
    }
}
