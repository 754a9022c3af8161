//! The job executors for `nas.coa` and `nas.disconnect`: they find a service's live sessions
//! in the store and send each one's NAS a CoA (the current tier) or a Disconnect-Request.
//!
//! The plan is read from the store when the job runs, not from the in-memory directory (which
//! follows the change feed and may lag it slightly) nor from the job (a retried job must send
//! the newest tier).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lastmile_app::Clock;
use lastmile_domain::job::{JobKind, JobPayload, ProvisioningJob};
use lastmile_domain::radius::RadiusSession;
use lastmile_jobs::{Executor, JobFailure, JobReport, Runner};
use lastmile_radius_codec::dict::ErrorCause;
use lastmile_store::radius::SessionFilter;
use lastmile_store::{Page, Store};

use crate::coa::{CoaClient, CoaKind, CoaOutcome, SessionIdent};
use crate::directory::{Directory, Tier};
use crate::reply::ReplyAttrs;

/// How long to wait for a NAS and how often to resend (per session, per attempt; the job
/// runner retries the whole job on top).
#[derive(Debug, Clone, Copy)]
pub struct DynAuthConfig {
    /// Wait for a reply this long per send.
    pub timeout: Duration,
    /// Resend unchanged this many times after a timeout.
    pub retries: u32,
}

impl Default for DynAuthConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            retries: 2,
        }
    }
}

/// What both executors share.
pub struct DynAuth {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    client: CoaClient,
    config: DynAuthConfig,
    clock: Arc<dyn Clock>,
}

/// Executes `nas.coa`: moves live sessions to the service's current tier.
pub struct CoaExecutor(Arc<DynAuth>);

/// Executes `nas.disconnect`: ends the service's live sessions.
pub struct DisconnectExecutor(Arc<DynAuth>);

/// Registers both executors with `runner`; `lastmile serve` calls this.
pub fn register(
    runner: Runner,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    directory: Arc<Directory>,
    client: CoaClient,
    config: DynAuthConfig,
) -> Runner {
    let shared = Arc::new(DynAuth::new(store, clock, directory, client, config));
    runner
        .register(Arc::new(CoaExecutor(shared.clone())))
        .register(Arc::new(DisconnectExecutor(shared)))
}

/// How one session's request ended.
enum Sent {
    Acked,
    /// NAK 503: the session is already gone, which is what a disconnect wants and leaves a
    /// CoA nothing to do.
    Gone,
}

impl DynAuth {
    /// The clock stamps the policy a NAS accepted; NAS entries (with decrypted secrets) come
    /// from `directory`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        directory: Arc<Directory>,
        client: CoaClient,
        config: DynAuthConfig,
    ) -> Self {
        Self {
            store,
            directory,
            client,
            config,
            clock,
        }
    }

    fn payload(job: &ProvisioningJob) -> Result<JobPayload, JobFailure> {
        job.nas_payload()
            .ok_or_else(|| JobFailure::Permanent("the job's payload is not a NAS job".into()))
    }

    async fn live_sessions(&self, p: &JobPayload) -> Result<Vec<RadiusSession>, JobFailure> {
        let filter = SessionFilter {
            active: Some(true),
            service_id: Some(p.service_id),
            ..Default::default()
        };
        // A service has a handful of live sessions at most (usually one).
        self.store
            .list_sessions(
                &filter,
                Page {
                    after: None,
                    limit: 100,
                },
            )
            .await
            .map_err(|e| JobFailure::Retry(format!("could not list sessions: {e}")))
    }

    /// The NAS of the service's most recent live session: jobs for one NAS share its bound.
    async fn key(&self, job: &ProvisioningJob) -> Option<String> {
        let p = job.nas_payload()?;
        let sessions = self.live_sessions(&p).await.ok()?;
        sessions
            .iter()
            .max_by_key(|s| s.started_at)
            .map(|s| s.nas_id.0.to_string())
    }

    async fn send_one(
        &self,
        s: &RadiusSession,
        kind: CoaKind,
        tier: Option<&Tier>,
    ) -> Result<(CoaKind, Sent, String), JobFailure> {
        let nas = self.directory.nas_by_id(s.nas_id).ok_or_else(|| {
            JobFailure::Retry(format!(
                "NAS {} of session {} is not in the directory",
                s.nas_id.0, s.acct_session_id
            ))
        })?;
        let ident = SessionIdent {
            user_name: s.username.clone(),
            acct_session_id: Some(s.acct_session_id.clone()),
            framed_ip: match s.framed_ip {
                Some(IpAddr::V4(ip)) => Some(ip),
                _ => None,
            },
            nas_ip_address: None,
        };
        let (timeout, retries) = (self.config.timeout, self.config.retries);
        let result = match (kind, tier) {
            (CoaKind::Coa, Some(tier)) => {
                self.client
                    .apply_tier(&nas, &ident, tier, timeout, retries)
                    .await
            }
            _ => self
                .client
                .send(
                    &nas,
                    CoaKind::Disconnect,
                    &ident,
                    &ReplyAttrs::new(),
                    timeout,
                    retries,
                )
                .await
                .map(|o| (CoaKind::Disconnect, o)),
        };
        let what = |k: CoaKind| match k {
            CoaKind::Coa => "CoA",
            CoaKind::Disconnect => "Disconnect",
        };
        match result {
            Ok((sent, CoaOutcome::Ack)) => Ok((sent, Sent::Acked, nas.name.clone())),
            Ok((sent, CoaOutcome::Nak { error_cause })) => match error_cause {
                Some(ErrorCause::SessionContextNotFound) => {
                    Ok((sent, Sent::Gone, nas.name.clone()))
                }
                cause => {
                    let mut m = format!("{}-NAK from {}", what(sent), nas.name);
                    if let Some(c) = cause {
                        let _ = write!(m, ", Error-Cause {}", c.as_u32());
                        if let Some(name) = c.name() {
                            let _ = write!(m, " ({name})");
                        }
                    }
                    Err(JobFailure::Retry(m))
                }
            },
            Err(e) => Err(JobFailure::Retry(format!(
                "{} to {}: {e}",
                what(kind),
                nas.name
            ))),
        }
    }

    async fn run(&self, job: &ProvisioningJob, kind: CoaKind) -> Result<JobReport, JobFailure> {
        let p = Self::payload(job)?;
        let sessions = self.live_sessions(&p).await?;
        if sessions.is_empty() {
            return Ok(JobReport::new("no live session"));
        }
        let tier = match kind {
            CoaKind::Coa => {
                let found = self
                    .store
                    .directory_services_by_id(&[p.service_id])
                    .await
                    .map_err(|e| JobFailure::Retry(format!("could not read the plan: {e}")))?;
                let Some(ds) = found.into_iter().next() else {
                    return Ok(JobReport::new("service is gone; nothing to change"));
                };
                Some(Tier::from_terms(&ds.terms, &ds.plan_code))
            }
            CoaKind::Disconnect => None,
        };
        let (mut acked, mut gone) = (Vec::new(), 0usize);
        let mut failures = Vec::new();
        for s in &sessions {
            match self.send_one(s, kind, tier.as_ref()).await {
                Ok((sent, Sent::Acked, nas)) => {
                    if let (CoaKind::Coa, Some(t)) = (sent, &tier) {
                        // The NAS accepted the tier: recorded so operators see what is live.
                        if let Err(e) = self
                            .store
                            .set_session_policy(s.id, &t.policy_name, self.clock.now())
                            .await
                        {
                            failures.push(format!("could not record the policy: {e}"));
                        }
                    }
                    acked.push((sent, nas));
                }
                Ok((_, Sent::Gone, _)) => gone += 1,
                Err(f) => failures.push(f.message().to_string()),
            }
        }
        if !failures.is_empty() {
            // Sessions already handled are handled again on retry: harmless (idempotent).
            return Err(JobFailure::Retry(failures.join("; ")));
        }
        let mut summary = String::new();
        let mut by: Vec<(CoaKind, String)> = acked.clone();
        by.sort_by(|a, b| a.1.cmp(&b.1));
        by.dedup();
        for (sent, nas) in &by {
            let n = acked.iter().filter(|(k, n)| k == sent && n == nas).count();
            let word = match sent {
                CoaKind::Coa => "CoA-ACK",
                CoaKind::Disconnect => "Disconnect-ACK",
            };
            if !summary.is_empty() {
                summary.push_str("; ");
            }
            let plural = if n == 1 { "session" } else { "sessions" };
            let _ = write!(summary, "{word} from {nas} for {n} {plural}");
        }
        if gone > 0 {
            if !summary.is_empty() {
                summary.push_str("; ");
            }
            let _ = write!(summary, "{gone} already gone");
        }
        Ok(JobReport::new(summary))
    }
}

#[async_trait]
impl Executor for CoaExecutor {
    fn kind(&self) -> JobKind {
        JobKind::NasCoa
    }
    async fn concurrency_key(&self, job: &ProvisioningJob) -> Option<String> {
        self.0.key(job).await
    }
    async fn execute(&self, job: &ProvisioningJob) -> Result<JobReport, JobFailure> {
        self.0.run(job, CoaKind::Coa).await
    }
}

#[async_trait]
impl Executor for DisconnectExecutor {
    fn kind(&self) -> JobKind {
        JobKind::NasDisconnect
    }
    async fn concurrency_key(&self, job: &ProvisioningJob) -> Option<String> {
        self.0.key(job).await
    }
    async fn execute(&self, job: &ProvisioningJob) -> Result<JobReport, JobFailure> {
        self.0.run(job, CoaKind::Disconnect).await
    }
}
