//! Billing runs: rebuild every subscriber's expected charges from the timeline, invoice the
//! difference, one atomic batch at a time, resumable after a crash.

use crate::{App, AppError, AppResult};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::ToSpan;
use lastmile_domain::billing::invoice::{
    line_from_draft, BillingRun, BillingRunError, BillingRunStatus, Invoice, NewInvoice,
};
use lastmile_domain::billing::period::Period;
use lastmile_domain::billing::rating::{
    difference, expected_charges, BillingPolicy, RatingContext, RatingError,
};
use lastmile_domain::ids::{BillingRunId, InvoiceId, PlanVersionId};
use lastmile_domain::plan::PlanTerms;
use lastmile_store::{BillingBatch, BillingInput, InvoiceFilter, Page, StoreError};
use std::collections::HashMap;

/// Installation-wide billing settings.
#[derive(Clone, Debug)]
pub struct BillingConfig {
    /// The operator's time zone: billing periods and days are civil dates here.
    pub time_zone: TimeZone,
    /// Due date = billing date + this many days.
    pub payment_terms_days: i64,
    /// Invoice numbers are this prefix and a gap-free, zero-padded sequence.
    pub invoice_prefix: String,
    pub policy: BillingPolicy,
    /// Subscribers per atomic batch (bounded memory; the unit of resumption).
    pub batch_size: u32,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            time_zone: TimeZone::UTC,
            payment_terms_days: 14,
            invoice_prefix: "INV-".into(),
            policy: BillingPolicy::default(),
            batch_size: 1000,
        }
    }
}

/// The plan catalogue, loaded once per run.
struct Catalog {
    terms: HashMap<PlanVersionId, PlanTerms>,
    names: HashMap<PlanVersionId, String>,
}

impl App {
    /// The operator-local date today.
    pub fn billing_today(&self) -> Date {
        self.clock
            .now()
            .to_zoned(self.config.billing.time_zone.clone())
            .date()
    }

    /// Starts the run for `as_of`, or returns the unfinished one to resume it. A finished run
    /// for the same date may be followed by another: it invoices only what changed (usually
    /// nothing).
    pub async fn start_billing_run(&self, as_of: Date) -> AppResult<BillingRun> {
        if let Some(run) = self.store.unfinished_billing_run(as_of).await? {
            return Ok(run);
        }
        let run = BillingRun {
            id: BillingRunId::generate(),
            as_of,
            status: BillingRunStatus::Running,
            started_at: self.clock.now(),
            finished_at: None,
            cursor: None,
            subscribers_processed: 0,
            invoices_created: 0,
            errors: Vec::new(),
        };
        match self.store.insert_billing_run(&run).await {
            Ok(()) => Ok(run),
            // Another process started it a moment ago: join that one.
            Err(StoreError::Duplicate { .. }) => self
                .store
                .unfinished_billing_run(as_of)
                .await?
                .ok_or_else(|| AppError::Internal("a concurrent billing run vanished".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs (or resumes) a billing run to completion, reporting after every batch. Each batch
    /// commits atomically; a crash loses at most the batch in flight, and running again
    /// continues after the last committed one with the same result as an uninterrupted run.
    pub async fn execute_billing_run(
        &self,
        run: BillingRun,
        progress: &(dyn Fn(&BillingRun) + Send + Sync),
    ) -> AppResult<BillingRun> {
        let catalog = self.catalog().await?;
        let cfg = &self.config.billing;
        let mut loaded = self
            .store
            .billing_inputs(run.cursor, cfg.batch_size)
            .await?;
        while let Some(last) = loaded.last().map(|i| i.subscriber.id) {
            let inputs = std::mem::take(&mut loaded);
            let started = std::time::Instant::now();
            // Load the next batch while this one is rated and committed: reads and the write
            // go over different connections, so the two overlap.
            let work = async {
                let mut invoices = Vec::new();
                let mut errors = Vec::new();
                for input in &inputs {
                    match self.rate_subscriber(input, run.id, run.as_of, &catalog) {
                        Ok(Some(inv)) => invoices.push(inv),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(subscriber = %input.subscriber.id, error = %e, "subscriber not billed");
                            errors.push(BillingRunError {
                                subscriber_id: input.subscriber.id,
                                message: e.to_string(),
                            });
                        }
                    }
                }
                let rated = started.elapsed();
                self.store
                    .commit_billing_batch(&BillingBatch {
                        run: run.id,
                        invoices,
                        cursor: last,
                        subscribers: inputs.len() as i64,
                        errors,
                        number_prefix: cfg.invoice_prefix.clone(),
                    })
                    .await?;
                Ok::<_, AppError>((rated, started.elapsed()))
            };
            let prefetch = self.store.billing_inputs(Some(last), cfg.batch_size);
            let (done, next) = tokio::join!(work, prefetch);
            let (rated, committed) = done?;
            loaded = next?;
            tracing::debug!(
                subscribers = inputs.len(),
                rate_ms = rated.as_millis() as u64,
                commit_ms = (committed - rated).as_millis() as u64,
                with_next_load_ms = started.elapsed().as_millis() as u64,
                "billing batch"
            );
            if let Some(r) = self.store.get_billing_run(run.id).await? {
                progress(&r);
            }
        }
        self.store
            .complete_billing_run(run.id, self.clock.now())
            .await?;
        self.store
            .get_billing_run(run.id)
            .await?
            .ok_or_else(|| AppError::not_found("billing run", run.id))
    }

    async fn catalog(&self) -> AppResult<Catalog> {
        let mut terms = HashMap::new();
        let mut names = HashMap::new();
        for (name, v) in self.store.plan_catalog().await? {
            names.insert(v.id, name);
            terms.insert(v.id, v.terms);
        }
        Ok(Catalog { terms, names })
    }

    /// The invoice a subscriber gets for the period containing `as_of`, if any is due.
    fn rate_subscriber(
        &self,
        input: &BillingInput,
        run: BillingRunId,
        as_of: Date,
        catalog: &Catalog,
    ) -> Result<Option<NewInvoice>, RatingError> {
        let cfg = &self.config.billing;
        let s = &input.subscriber;
        let period = Period::containing(as_of, s.billing_day);
        if input.invoiced_periods.contains(&period.start) {
            return Ok(None);
        }
        let ctx = RatingContext {
            tz: &cfg.time_zone,
            billing_day: s.billing_day,
            currency: &s.currency,
            plans: &catalog.terms,
            policy: cfg.policy,
        };
        let mut expected = Vec::new();
        for h in &input.services {
            expected.extend(expected_charges(h, &ctx, period)?);
        }
        let drafts = difference(&expected, &input.invoiced, period);
        if drafts.is_empty() {
            return Ok(None);
        }
        let id = InvoiceId::generate();
        let lines = drafts
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let name = catalog
                    .names
                    .get(&d.key.plan_version_id)
                    .map(String::as_str)
                    .unwrap_or("plan");
                line_from_draft(id, s.id, i as i32 + 1, d, name)
            })
            .collect();
        Ok(Some(NewInvoice {
            id,
            subscriber_id: s.id,
            currency: s.currency.clone(),
            period_start: period.start,
            period_end: period.end,
            issued_at: self.clock.now(),
            due_date: as_of
                .checked_add(cfg.payment_terms_days.days())
                .unwrap_or(as_of),
            billing_run_id: Some(run),
            lines,
        }))
    }

    pub async fn get_billing_run(&self, id: BillingRunId) -> AppResult<BillingRun> {
        self.store
            .get_billing_run(id)
            .await?
            .ok_or_else(|| AppError::not_found("billing run", id))
    }

    pub async fn list_billing_runs(&self, page: Page) -> AppResult<Vec<BillingRun>> {
        Ok(self.store.list_billing_runs(page).await?)
    }

    pub async fn get_invoice(&self, id: InvoiceId) -> AppResult<Invoice> {
        self.store
            .get_invoice(id)
            .await?
            .ok_or_else(|| AppError::not_found("invoice", id))
    }

    pub async fn list_invoices(
        &self,
        filter: &InvoiceFilter,
        page: Page,
    ) -> AppResult<Vec<Invoice>> {
        Ok(self.store.list_invoices(filter, page).await?)
    }
}
