use crate::{App, AppError, AppResult};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::ids::JobId;
use lastmile_domain::job::ProvisioningJob;
use lastmile_store::{JobFilter, Page};

impl App {
    pub async fn get_job(&self, id: JobId) -> AppResult<ProvisioningJob> {
        self.store
            .get_job(id)
            .await?
            .ok_or_else(|| AppError::not_found("provisioning job", id))
    }

    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: Page,
    ) -> AppResult<Vec<ProvisioningJob>> {
        Ok(self.store.list_jobs(filter, page).await?)
    }

    /// Puts a failed job back in the queue with a fresh set of attempts.
    pub async fn retry_job(&self, actor: &Actor, id: JobId) -> AppResult<ProvisioningJob> {
        let before = self.get_job(id).await?;
        let now = self.clock.now();
        let audit = AuditEvent::new(
            now,
            actor,
            before.subscriber_id,
            "provisioning_job",
            id,
            "provisioning_job.retry",
            Some(&before),
            None::<&()>,
        );
        match self.store.requeue_failed_job(id, now, &audit).await? {
            Some(job) => {
                (self.jobs_queued)();
                Ok(job)
            }
            None => {
                let current = self.get_job(id).await?;
                Err(AppError::invalid_state(
                    format!(
                        "only failed jobs can be retried; this one is {}",
                        current.status.as_str()
                    ),
                    current.status.as_str(),
                ))
            }
        }
    }
}
