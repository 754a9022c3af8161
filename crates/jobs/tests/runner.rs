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
use lastmile_domain::job::{JobStatus, ProvisioningJob};
use lastmile_jobs::{Executor, Runner};
use lastmile_store::{JobOutcome, Store};
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
    fn kind(&self) -> &'static str {
        "radius.update-policy"
    }
    async fn execute(&self, job: &ProvisioningJob) -> Result<(), String> {
        self.ran.lock().unwrap().push(job.id);
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            Err("NAS did not answer".into())
        } else {
            Ok(())
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

    fn runner(&self, exec: Arc<Flaky>) -> Runner {
        Runner::new(self.app.store.clone(), self.clock.clone()).register(exec)
    }

    /// Activates a new service; returns the ids of the jobs that wrote (one policy update).
    async fn activated_service(&self, login: &str) -> Vec<ProvisioningJob> {
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
            .unwrap()
            .jobs
    }

    async fn job(&self, id: JobId) -> ProvisioningJob {
        self.app.store.get_job(id).await.unwrap().unwrap()
    }
}

async fn retries_with_backoff_then_succeeds(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let jobs = f.activated_service("retry").await;
    assert_eq!(jobs.len(), 1);
    let id = jobs[0].id;
    let exec = flaky(2);
    let runner = f.runner(exec.clone());

    assert_eq!(runner.run_once().await.unwrap(), 1);
    let j = f.job(id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 1));
    assert_eq!(j.last_error.as_deref(), Some("NAS did not answer"));
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
    let id = f.activated_service("fail").await[0].id;
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
    let id = f.activated_service("crash").await[0].id;
    // A worker claims the job and dies without finishing it.
    let now = f.clock.now();
    let kinds = vec!["radius.update-policy".to_string()];
    let lost = f
        .app
        .store
        .claim_jobs(&kinds, now, now + SignedDuration::from_secs(60), 10)
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

async fn kinds_without_executor_stay_pending(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let actor = Actor::system("test");
    let jobs = f.activated_service("nocoa").await;
    let svc = jobs[0].service_id.unwrap();
    f.app
        .service_action(
            &actor,
            svc,
            ServiceAction::Suspend {
                cause: lastmile_domain::service::SuspensionCause::Operator,
            },
            ServiceActionBody::default(),
        )
        .await
        .unwrap();
    let runner = f.runner(flaky(0));
    assert_eq!(runner.run_once().await.unwrap(), 2, "two policy updates");
    let all = f
        .app
        .store
        .list_jobs(
            &Default::default(),
            lastmile_store::Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let disconnect: Vec<_> = all.iter().filter(|j| j.kind == "nas.disconnect").collect();
    assert_eq!(disconnect.len(), 1);
    assert_eq!(
        (disconnect[0].status, disconnect[0].attempts),
        (JobStatus::Pending, 0)
    );
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
    kinds_without_executor_stay_pending
);
