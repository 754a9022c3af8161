//! The job runner against real stores: retries with backoff, final failure, manual retry,
//! lease takeover after a crash, and kinds without an executor left alone.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use lastmile_api_types::{
    CreatePlan, CreateService, CreateSubscriber, PlanTermsBody, ServiceActionBody,
};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, Clock, ManualClock, SecretBox};
use lastmile_domain::audit::Actor;
use lastmile_domain::ids::JobId;
use lastmile_domain::job::{JobKind, JobStatus, ProvisioningJob};
use lastmile_jobs::{Executor, JobFailure, JobReport, Runner};
use lastmile_store::{JobOutcome, JobScope, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Fails its first `fail_first` attempts, then succeeds; records what it ran.
struct Flaky {
    fail_first: usize,
    calls: AtomicUsize,
    ran: Mutex<Vec<JobId>>,
}

#[async_trait]
impl Executor for Flaky {
    fn kind(&self) -> JobKind {
        JobKind::NasDisconnect
    }
    async fn execute(&self, job: &ProvisioningJob) -> Result<JobReport, JobFailure> {
        self.ran.lock().unwrap().push(job.id);
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            Err(JobFailure::Retry("NAS did not answer".into()))
        } else {
            Ok(JobReport::new("Disconnect-ACK from core-1 for 1 session"))
        }
    }
}

fn flaky(fail_first: usize) -> Arc<Flaky> {
    Arc::new(Flaky {
        fail_first,
        calls: AtomicUsize::new(0),
        ran: Mutex::new(vec![]),
    })
}

struct Fixture {
    app: App,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_773_576_000).unwrap(),
        ));
        let secrets = SecretBox::from_hex(&SecretBox::generate_key().unwrap()).unwrap();
        let app = App::new(store, clock.clone(), secrets, AppConfig::default());
        Self { app, clock }
    }

    fn runner(&self, exec: Arc<dyn Executor>) -> Runner {
        Runner::new(self.app.store.clone(), self.clock.clone()).register(exec)
    }

    /// Activates and suspends a new service; returns the jobs the suspension wrote (one
    /// disconnect).
    async fn suspended_service(&self, login: &str) -> Vec<ProvisioningJob> {
        let actor = Actor::system("test");
        let sub = self
            .app
            .create_subscriber(
                &actor,
                CreateSubscriber {
                    number: None,
                    name: format!("Job {login}"),
                    email: None,
                    phone: None,
                    billing_address: None,
                    currency: "EUR".into(),
                    tax_zone: None,
                    dunning_policy: None,
                    billing_day: None,
                    custom_fields: None,
                },
            )
            .await
            .unwrap();
        let plan = self
            .app
            .create_plan(
                &actor,
                CreatePlan {
                    code: format!("JOB-{}", login.to_uppercase()),
                    name: "Job plan".into(),
                    terms: PlanTermsBody {
                        download_kbps: 10_000,
                        upload_kbps: 2_000,
                        burst: None,
                        price_minor: 1_000,
                        currency: "EUR".into(),
                        billing_interval: None,
                        setup_fee_minor: None,
                        data_cap_bytes: None,
                        cap_policy: None,
                        free_window: None,
                        contract_months: None,
                        early_termination_fee_minor: None,
                        tax_class: None,
                    },
                },
            )
            .await
            .unwrap();
        let svc = self
            .app
            .create_service(
                &actor,
                CreateService {
                    subscriber_id: sub.id.0,
                    plan_id: plan.id.0,
                    access_kind: None,
                    username: Some(login.into()),
                    password: Some("pw".into()),
                    mac_address: None,
                    circuit_id: None,
                    static_ip: None,
                    ip_pool: None,
                    nas_id: None,
                    service_address: None,
                    simultaneous_use: None,
                },
            )
            .await
            .unwrap();
        self.app
            .service_action(
                &actor,
                svc.id,
                ServiceAction::Activate,
                ServiceActionBody::default(),
            )
            .await
            .unwrap();
        self.app
            .service_action(
                &actor,
                svc.id,
                ServiceAction::Suspend {
                    cause: lastmile_domain::service::SuspensionCause::Operator,
                },
                ServiceActionBody::default(),
            )
            .await
            .unwrap()
            .jobs
    }

    async fn job(&self, id: JobId) -> ProvisioningJob {
        self.app.store.get_job(id).await.unwrap().unwrap()
    }
}

async fn retries_with_backoff_then_succeeds(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let jobs = f.suspended_service("retry").await;
    assert_eq!(jobs.len(), 1);
    let id = jobs[0].id;
    let exec = flaky(2);
    let runner = f.runner(exec.clone());

    assert_eq!(runner.run_once().await.unwrap(), 1);
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 1));
    assert_eq!(j.last_error.as_deref(), Some("NAS did not answer"));
    assert_eq!(j.last_result.as_deref(), Some("NAS did not answer"));
    assert_eq!(j.run_after, f.clock.now() + SignedDuration::from_secs(5));

    // Not due yet: nothing is claimed.
    assert_eq!(runner.run_once().await.unwrap(), 0);
    f.clock.advance(SignedDuration::from_secs(5));
    assert_eq!(runner.run_once().await.unwrap(), 1);
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 2));
    assert_eq!(j.run_after, f.clock.now() + SignedDuration::from_secs(10));

    f.clock.advance(SignedDuration::from_secs(10));
    assert_eq!(runner.run_once().await.unwrap(), 1);
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Succeeded, 3));
    assert_eq!(
        j.last_result.as_deref(),
        Some("Disconnect-ACK from core-1 for 1 session")
    );
    assert_eq!(exec.ran.lock().unwrap().as_slice(), [id, id, id]);
    f.clock.advance(SignedDuration::from_hours(2));
    assert_eq!(
        runner.run_once().await.unwrap(),
        0,
        "a finished job never runs again"
    );
}

async fn exhausted_jobs_fail_and_can_be_retried(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let id = f.suspended_service("fail").await[0].id;
    let exec = flaky(usize::MAX);
    let runner = f.runner(exec.clone());
    for attempt in 1..=10 {
        assert_eq!(runner.run_once().await.unwrap(), 1, "attempt {attempt}");
        f.clock.advance(SignedDuration::from_hours(1));
    }
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Failed, 10));
    assert_eq!(
        runner.run_once().await.unwrap(),
        0,
        "failed jobs are not retried by themselves"
    );

    let retried = f.app.retry_job(&Actor::system("test"), id).await.unwrap();
    assert_eq!((retried.status, retried.attempts), (JobStatus::Pending, 0));
    assert_eq!(runner.run_once().await.unwrap(), 1);
    assert_eq!(exec.ran.lock().unwrap().len(), 11);
}

async fn a_crashed_workers_job_is_taken_over_after_its_lease(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let id = f.suspended_service("crash").await[0].id;
    // A worker claims the job and dies without finishing it.
    let now = f.clock.now();
    let lost = f
        .app
        .store
        .claim_jobs(
            &[JobKind::NasDisconnect],
            JobScope::All,
            now,
            now + SignedDuration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(lost.len(), 1);

    let exec = flaky(0);
    let runner = f.runner(exec.clone());
    assert_eq!(
        runner.run_once().await.unwrap(),
        0,
        "leased to the dead worker"
    );
    f.clock.advance(SignedDuration::from_secs(61));
    assert_eq!(runner.run_once().await.unwrap(), 1);
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Succeeded, 2));
    // The dead worker's late report is ignored.
    let late = f
        .app
        .store
        .finish_job(
            id,
            1,
            &JobOutcome::Failed {
                error: "late".into(),
                retry_at: None,
            },
            f.clock.now(),
        )
        .await
        .unwrap();
    assert!(!late);
    assert_eq!(f.job(id).await.status, JobStatus::Succeeded);
}

/// Executes CoA jobs only.
struct CoaOnly;

#[async_trait]
impl Executor for CoaOnly {
    fn kind(&self) -> JobKind {
        JobKind::NasCoa
    }
    async fn execute(&self, _: &ProvisioningJob) -> Result<JobReport, JobFailure> {
        Ok(JobReport::new("CoA-ACK"))
    }
}

async fn kinds_without_executor_stay_pending(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let jobs = f.suspended_service("nocoa").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::NasDisconnect);
    let runner = f.runner(Arc::new(CoaOnly));
    assert_eq!(
        runner.run_once().await.unwrap(),
        0,
        "no disconnect executor"
    );
    let j = f.job(jobs[0].id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 0));
}

/// Holds attempts of jobs for `blocked` (a service id as the concurrency key) until `release`
/// is notified; reports every attempt's entry with the number in flight for its key.
struct Gated {
    blocked: Option<String>,
    release: Arc<tokio::sync::Semaphore>,
    entered: tokio::sync::mpsc::UnboundedSender<(String, usize)>,
    in_flight: Mutex<std::collections::HashMap<String, usize>>,
}

#[async_trait]
impl Executor for Gated {
    fn kind(&self) -> JobKind {
        JobKind::NasDisconnect
    }
    async fn concurrency_key(&self, job: &ProvisioningJob) -> Option<String> {
        job.service_id.map(|s| s.0.to_string())
    }
    async fn execute(&self, job: &ProvisioningJob) -> Result<JobReport, JobFailure> {
        let key = job.service_id.map(|s| s.0.to_string()).unwrap_or_default();
        let now = {
            let mut m = self.in_flight.lock().unwrap();
            let n = m.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        let _ = self.entered.send((key.clone(), now));
        let gated = self.blocked.as_deref().is_none_or(|b| b == key);
        if gated {
            if let Ok(p) = self.release.acquire().await {
                p.forget();
            }
        }
        *self.in_flight.lock().unwrap().entry(key).or_default() -= 1;
        Ok(JobReport::new("ok"))
    }
}

fn gated(
    blocked: Option<String>,
) -> (
    Arc<Gated>,
    tokio::sync::mpsc::UnboundedReceiver<(String, usize)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let g = Arc::new(Gated {
        blocked,
        release: Arc::new(tokio::sync::Semaphore::new(0)),
        entered: tx,
        in_flight: Mutex::new(Default::default()),
    });
    (g, rx)
}

async fn a_blocked_key_does_not_hold_up_other_keys(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let slow = f.suspended_service("slownas").await[0].clone();
    let fast = f.suspended_service("fastnas").await[0].clone();
    let slow_key = slow.service_id.unwrap().0.to_string();
    let (exec, mut entered) = gated(Some(slow_key.clone()));
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    let runner = Arc::new(f.runner(exec.clone()).on_attempt(Arc::new(move |_, label| {
        let _ = done_tx.send(label.to_string());
    })));
    let r = runner.clone();
    let batch = tokio::spawn(async move { r.run_once().await.unwrap() });
    // Both attempts start, the slow one stays blocked, and the fast one's outcome is recorded
    // meanwhile.
    let mut keys = vec![
        entered.recv().await.unwrap().0,
        entered.recv().await.unwrap().0,
    ];
    keys.sort();
    let mut want = vec![slow_key, fast.service_id.unwrap().0.to_string()];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(done.recv().await.unwrap(), "succeeded");
    assert_eq!(f.job(fast.id).await.status, JobStatus::Succeeded);
    assert_eq!(f.job(slow.id).await.status, JobStatus::Running);
    exec.release.add_permits(1);
    assert_eq!(batch.await.unwrap(), 2);
    assert_eq!(f.job(slow.id).await.status, JobStatus::Succeeded);
}

async fn the_per_key_bound_holds(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let jobs = f.suspended_service("boundnas").await;
    let svc = jobs[0].service_id.unwrap();
    // Five more disconnects for the same service (same key): resume and suspend again.
    let actor = Actor::system("test");
    for _ in 0..5 {
        for action in [
            ServiceAction::Resume,
            ServiceAction::Suspend {
                cause: lastmile_domain::service::SuspensionCause::Operator,
            },
        ] {
            f.clock.advance(SignedDuration::from_secs(1));
            f.app
                .service_action(&actor, svc, action, ServiceActionBody::default())
                .await
                .unwrap();
        }
    }
    let (exec, mut entered) = gated(None);
    let runner = Arc::new(f.runner(exec.clone()).per_key(2));
    let r = runner.clone();
    let batch = tokio::spawn(async move { r.run_once().await.unwrap() });
    // Each attempt reports how many were in flight for its key when it entered; letting one
    // finish per entry keeps the queue moving.
    for _ in 0..11 {
        let (_, in_flight) = entered.recv().await.unwrap();
        assert!(in_flight <= 2, "{in_flight} attempts in flight for one key");
        exec.release.add_permits(1);
    }
    assert_eq!(batch.await.unwrap(), 11);
}

/// Never answers.
struct Hangs;

#[async_trait]
impl Executor for Hangs {
    fn kind(&self) -> JobKind {
        JobKind::NasDisconnect
    }
    async fn execute(&self, _: &ProvisioningJob) -> Result<JobReport, JobFailure> {
        std::future::pending().await
    }
}

async fn a_hanging_attempt_times_out_and_is_retried(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let id = f.suspended_service("hangs").await[0].id;
    let runner = f
        .runner(Arc::new(Hangs))
        .attempt_timeout(std::time::Duration::from_millis(20));
    assert_eq!(runner.run_once().await.unwrap(), 1);
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 1));
    assert!(
        j.last_error.as_deref().unwrap_or("").contains("timed out"),
        "{:?}",
        j.last_error
    );
    assert_eq!(j.last_result, j.last_error);
    f.clock.advance(SignedDuration::from_secs(5));
    let runner = f.runner(flaky(0));
    assert_eq!(runner.run_once().await.unwrap(), 1, "retried later");
    assert_eq!(f.job(id).await.status, JobStatus::Succeeded);
}

/// Fails for good.
struct Refuses;

#[async_trait]
impl Executor for Refuses {
    fn kind(&self) -> JobKind {
        JobKind::NasDisconnect
    }
    async fn execute(&self, _: &ProvisioningJob) -> Result<JobReport, JobFailure> {
        Err(JobFailure::Permanent("payload names no service".into()))
    }
}

async fn a_permanent_failure_fails_at_once(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let id = f.suspended_service("refused").await[0].id;
    let runner = f.runner(Arc::new(Refuses));
    assert_eq!(runner.run_once().await.unwrap(), 1);
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Failed, 1));
    assert_eq!(j.last_error.as_deref(), Some("payload names no service"));
    assert_eq!(j.last_result.as_deref(), Some("payload names no service"));
    f.clock.advance(SignedDuration::from_hours(2));
    assert_eq!(runner.run_once().await.unwrap(), 0);
}

macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite { $(
            #[tokio::test]
            async fn $name() { super::$name(lastmile_testing::sqlite_store().await).await }
        )* }
        mod postgres { $(
            #[tokio::test]
            async fn $name() {
                if let Some(s) = lastmile_testing::pg_store().await { super::$name(s).await }
            }
        )* }
    };
}

both!(
    retries_with_backoff_then_succeeds,
    exhausted_jobs_fail_and_can_be_retried,
    a_crashed_workers_job_is_taken_over_after_its_lease,
    kinds_without_executor_stay_pending,
    a_blocked_key_does_not_hold_up_other_keys,
    the_per_key_bound_holds,
    a_hanging_attempt_times_out_and_is_retried,
    a_permanent_failure_fails_at_once
);
