//! Billing runs: rebuild every subscriber's expected charges from the timeline, invoice the
//! difference, one atomic batch at a time, resumable after a crash.

use crate::retry::{optimistic, Attempt};
use crate::{App, AppError, AppResult};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::ToSpan;
use lastmile_domain::billing::dunning::DunningPolicy;
use lastmile_domain::billing::invoice::{
    line_from_draft, BillingRun, BillingRunError, BillingRunStatus, Invoice, NewInvoice,
};
use lastmile_domain::billing::period::Period;
use lastmile_domain::billing::rating::{
    difference, expected_for_subscriber, BillingPolicy, RatingContext, RatingError,
};
use lastmile_domain::billing::tax::{tax_line, TaxZone};
use lastmile_domain::ids::{BillingRunId, InvoiceId, PlanVersionId, SubscriberId};
use lastmile_domain::plan::PlanTerms;
use lastmile_domain::validate::{date_in_range, LATEST_DATE, MAX_BILLING_DAYS_AHEAD};
use lastmile_store::{BillingBatch, BillingInput, InvoiceFilter, Page, StoreError};
use std::collections::HashMap;

pub use lastmile_domain::billing::settings::{BillingSettings, Issuer};

/// The setting group billing settings are stored under.
const BILLING_SETTINGS: &str = "billing";

/// Start-up billing configuration. The time zone and batch size are fixed for the process;
/// the rest are the defaults of the billing settings until they are saved through the API
/// (`PUT /settings/billing`), after which every node reads the stored ones.
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
    /// Runs issue invoices at once (numbered, due); when false they leave drafts for an
    /// operator to review and issue.
    pub issue_invoices: bool,
    /// Credit notes are this prefix and their own gap-free sequence.
    pub credit_note_prefix: String,
    pub issuer: Issuer,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            time_zone: TimeZone::UTC,
            payment_terms_days: 14,
            invoice_prefix: "INV-".into(),
            policy: BillingPolicy::default(),
            batch_size: 1000,
            issue_invoices: true,
            credit_note_prefix: "CN-".into(),
            issuer: Issuer {
                name: "Lastmile ISP".into(),
                ..Issuer::default()
            },
        }
    }
}

/// The plan catalogue and billing configuration, loaded once per run.
pub(crate) struct Catalog {
    terms: HashMap<PlanVersionId, PlanTerms>,
    names: HashMap<PlanVersionId, String>,
    zones: HashMap<String, TaxZone>,
    pub(crate) policies: HashMap<String, DunningPolicy>,
    pub(crate) settings: BillingSettings,
}

impl Catalog {
    /// The dunning policy of a subscriber: their own, else the default one.
    pub(crate) fn dunning_policy(&self, code: Option<&str>) -> Option<&DunningPolicy> {
        match code {
            Some(c) => self.policies.get(c),
            None => self.policies.values().find(|p| p.is_default),
        }
    }
}

/// Batches being written at once by a run (see `run_batches`).
const WRITES_IN_FLIGHT: usize = 2;

fn joined_settle(r: Result<AppResult<()>, tokio::task::JoinError>) -> AppResult<()> {
    r.map_err(|e| AppError::Internal(format!("billing settlement: {e}")))?
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
    pub async fn start_billing_run(
        &self,
        as_of: Date,
        subscriber: Option<SubscriberId>,
    ) -> AppResult<BillingRun> {
        self.check_billing_date(as_of)?;
        if let Some(sub) = subscriber {
            // A run for one subscriber is its own: it never joins a full run.
            let Some(input) = self.store.billing_input(sub).await? else {
                return Err(AppError::invalid("subscriber_id", "no such subscriber"));
            };
            let period = Period::containing(as_of, input.subscriber.billing_day);
            if let Some(latest) = input
                .invoiced_periods
                .iter()
                .copied()
                .filter(|p| *p > period.start)
                .max()
            {
                return Err(AppError::Conflict {
                    kind: "already-invoiced",
                    message: format!(
                        "the subscriber is invoiced up to the period starting {latest}, after the \
                         period of {as_of} (starting {}); a run as of {as_of} has nothing to bill",
                        period.start
                    ),
                    current_state: Some(latest.to_string()),
                    field: Some("as_of"),
                });
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
                subscriber_id: Some(sub),
                failure: None,
            };
            self.store.insert_billing_run(&run).await?;
            return Ok(run);
        }
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
            subscriber_id: None,
            failure: None,
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
    ///
    /// A run that cannot go on (the database fails, a batch cannot be written) is marked
    /// `failed` with the error before the error is returned: it never stays `running`. Once
    /// [`App::is_stopping`], the run stops after the batch being written and is returned still
    /// `running`: starting it again resumes it.
    pub async fn execute_billing_run(
        &self,
        run: BillingRun,
        progress: &(dyn Fn(&BillingRun) + Send + Sync),
    ) -> AppResult<BillingRun> {
        let id = run.id;
        match self.run_batches(run, progress).await {
            Ok(true) => {
                self.store
                    .complete_billing_run(id, self.clock.now(), None)
                    .await?
            }
            Ok(false) => {
                tracing::info!(run = %id, "billing run stopped for shutdown; it resumes when started again")
            }
            Err(e) => {
                tracing::error!(run = %id, error = %e, "billing run failed");
                let failure = e.to_string();
                if let Err(store) = self
                    .store
                    .complete_billing_run(id, self.clock.now(), Some(&failure))
                    .await
                {
                    tracing::error!(run = %id, error = %store, "could not mark the billing run failed");
                }
                return Err(e);
            }
        }
        self.store
            .get_billing_run(id)
            .await?
            .ok_or_else(|| AppError::not_found("billing run", id))
    }

    /// The batches of a run from its cursor on: `true` when every subscriber was processed,
    /// `false` when it stopped early for shutdown.
    async fn run_batches(
        &self,
        run: BillingRun,
        progress: &(dyn Fn(&BillingRun) + Send + Sync),
    ) -> AppResult<bool> {
        let catalog = self.catalog().await?;
        let cfg = &self.config.billing;
        let scoped = run.subscriber_id;
        let (batch_size, as_of) = (cfg.batch_size, run.as_of);
        // A task of its own: on a multi-threaded runtime the next batch is read and decoded on
        // another core while this one is rated and written.
        let load = |after: Option<SubscriberId>| {
            let store = self.store.clone();
            tokio::spawn(async move {
                match scoped {
                    // One batch: the subscriber, unless the run got past them already.
                    Some(sub) if after.is_none_or(|a| a < sub) => Ok(store
                        .billing_input(sub)
                        .await?
                        .into_iter()
                        .collect::<Vec<_>>()),
                    Some(_) => Ok(Vec::new()),
                    None => store.billing_inputs(after, batch_size, Some(as_of)).await,
                }
            })
        };
        let joined =
            |r: Result<lastmile_store::Result<Vec<BillingInput>>, tokio::task::JoinError>| {
                r.map_err(|e| AppError::Internal(format!("billing batch reader: {e}")))?
                    .map_err(AppError::from)
            };
        // A pipeline: while batch N is rated here, batch N+1 is being read and batches N−1
        // and N−2 written (and settled) by tasks of their own. Each write task queues its
        // batch only after the one before queued its own (`queue_billing_batch`), and queued
        // batches commit in that order, so the run's cursor still only moves forward batch
        // by batch and a crash still loses at most the batches not yet committed. On SQLite
        // two batches are then in the writer's queue at once: the writer starts the next
        // while the last one's WAL is synced. (Should a queued batch fail while the next
        // commits, the run fails; the next run for the date bills what that batch missed.)
        let mut next = load(run.cursor);
        let mut writing: std::collections::VecDeque<
            tokio::task::JoinHandle<AppResult<Vec<SubscriberId>>>,
        > = Default::default();
        let mut queued: Option<tokio::sync::oneshot::Receiver<()>> = None;
        // Settling a committed batch's credit is a fourth stage: it runs beside the next
        // batch's commit (one settle at a time), not in front of it.
        let mut settling: Option<tokio::task::JoinHandle<AppResult<()>>> = None;
        let mut finished = true;
        loop {
            if self.is_stopping() {
                finished = false;
                break;
            }
            let inputs = joined(next.await)?;
            let Some(last) = inputs.last().map(|i| i.subscriber.id) else {
                break;
            };
            next = load(Some(last));
            let started = std::time::Instant::now();
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
            while writing.len() >= WRITES_IN_FLIGHT {
                if let Some(w) = writing.pop_front() {
                    let billed = self.finish_write(w, run.id, progress).await?;
                    self.settle_after(&mut settling, billed).await?;
                }
            }
            tracing::debug!(
                subscribers = inputs.len(),
                invoices = invoices.len(),
                rate_ms = rated.as_millis() as u64,
                waited_for_previous_write_ms = (started.elapsed() - rated).as_millis() as u64,
                "billing batch rated"
            );
            let batch = BillingBatch {
                run: run.id,
                invoices,
                cursor: last,
                subscribers: inputs.len() as i64,
                errors,
                number_prefix: catalog.settings.invoice_prefix.clone(),
            };
            let app = self.clone();
            let issue = catalog.settings.issue_invoices;
            let after = queued.take();
            let (now_queued, then) = tokio::sync::oneshot::channel();
            queued = Some(then);
            writing.push_back(tokio::spawn(async move {
                app.write_batch(batch, issue, after, now_queued).await
            }));
        }
        while let Some(w) = writing.pop_front() {
            let billed = self.finish_write(w, run.id, progress).await?;
            self.settle_after(&mut settling, billed).await?;
        }
        if let Some(s) = settling.take() {
            joined_settle(s.await)?;
        }
        Ok(finished)
    }

    /// Commits one batch, queued after the batch before it (`after`: it says when that one is
    /// queued, and is dropped unsaid if it failed); says `queued` once this one is. Returns
    /// the subscribers it issued invoices to.
    async fn write_batch(
        &self,
        batch: BillingBatch,
        issued: bool,
        after: Option<tokio::sync::oneshot::Receiver<()>>,
        queued: tokio::sync::oneshot::Sender<()>,
    ) -> AppResult<Vec<SubscriberId>> {
        if let Some(before) = after {
            before.await.map_err(|_| {
                AppError::Internal("the batch before this one was not written".into())
            })?;
        }
        let started = std::time::Instant::now();
        let billed: Vec<SubscriberId> = if issued {
            batch.invoices.iter().map(|i| i.subscriber_id).collect()
        } else {
            Vec::new()
        };
        let invoices = batch.invoices.len();
        let pending = self.store.queue_billing_batch(batch).await?;
        // The next batch's task may queue now; nobody listening is no error.
        let _ = queued.send(());
        pending.await?;
        tracing::debug!(
            invoices,
            commit_ms = started.elapsed().as_millis() as u64,
            "billing batch written"
        );
        Ok(billed)
    }

    /// Waits for the previous batch's settling, then starts settling `billed`: the
    /// subscribers a committed batch invoiced who have credit waiting (an overpayment, a
    /// credit note, a negative invoice), so those invoices show paid. A crash before it ran
    /// leaves the credit for the next payment or dunning pass, which settle first.
    async fn settle_after(
        &self,
        settling: &mut Option<tokio::task::JoinHandle<AppResult<()>>>,
        billed: Vec<SubscriberId>,
    ) -> AppResult<()> {
        if let Some(s) = settling.take() {
            joined_settle(s.await)?;
        }
        if billed.is_empty() {
            return Ok(());
        }
        let app = self.clone();
        *settling = Some(tokio::spawn(async move {
            for sub in app.store.subscribers_with_credit(&billed).await? {
                app.settle_account(sub).await?;
            }
            Ok(())
        }));
        Ok(())
    }

    async fn finish_write(
        &self,
        w: tokio::task::JoinHandle<AppResult<Vec<SubscriberId>>>,
        run: BillingRunId,
        progress: &(dyn Fn(&BillingRun) + Send + Sync),
    ) -> AppResult<Vec<SubscriberId>> {
        let billed = w
            .await
            .map_err(|e| AppError::Internal(format!("billing batch writer: {e}")))??;
        if let Some(r) = self.store.get_billing_run(run).await? {
            progress(&r);
        }
        Ok(billed)
    }

    pub(crate) async fn catalog(&self) -> AppResult<Catalog> {
        let mut terms = HashMap::new();
        let mut names = HashMap::new();
        for (name, v) in self.store.plan_catalog().await? {
            names.insert(v.id, name);
            terms.insert(v.id, v.terms);
        }
        let zones = self
            .store
            .list_tax_zones()
            .await?
            .into_iter()
            .map(|z| (z.code.clone(), z))
            .collect();
        let policies = self
            .store
            .list_dunning_policies()
            .await?
            .into_iter()
            .map(|p| (p.code.clone(), p))
            .collect();
        Ok(Catalog {
            terms,
            names,
            zones,
            policies,
            settings: self.billing_settings().await?,
        })
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
        // Invoiced for this period, or for a later one: a run dated in the past bills nothing
        // (it must not credit what a later run billed in advance).
        if input.invoiced_periods.iter().any(|p| *p >= period.start) {
            return Ok(None);
        }
        let zone = match &s.tax_zone {
            Some(code) => Some(
                catalog
                    .zones
                    .get(code)
                    .ok_or_else(|| RatingError::UnknownTaxZone(code.clone()))?,
            ),
            None => None,
        };
        let mut policy = cfg.policy;
        policy.downgrades = catalog.settings.downgrades;
        if let Some(p) = catalog.dunning_policy(s.dunning_policy.as_deref()) {
            policy.bill_dunning_suspensions = p.bill_suspended_days;
        }
        let ctx = RatingContext {
            tz: &cfg.time_zone,
            billing_day: s.billing_day,
            currency: &s.currency,
            plans: &catalog.terms,
            policy,
            discounts: &input.discounts,
        };
        let expected = expected_for_subscriber(&input.services, &ctx, period)?;
        let drafts = difference(&expected, &input.invoiced, period, &ctx)?;
        if drafts.is_empty() {
            return Ok(None);
        }
        let id = InvoiceId::generate();
        let mut lines = Vec::with_capacity(drafts.len());
        for (i, d) in drafts.iter().enumerate() {
            let name = catalog
                .names
                .get(&d.key.plan_version_id)
                .map(String::as_str)
                .unwrap_or("plan");
            let mut line = line_from_draft(id, s.id, i as i32 + 1, d, name);
            if zone.is_some() {
                let class = &catalog
                    .terms
                    .get(&d.key.plan_version_id)
                    .ok_or(RatingError::UnknownPlanVersion(d.key.plan_version_id))?
                    .tax_class;
                // The rates in force for the period the line bills, corrections included.
                let t = tax_line(d.amount_minor, class, zone, d.key.period_start)
                    .ok_or(RatingError::Overflow)?;
                line.tax_minor = t.tax_minor;
                line.taxes = t.taxes;
            }
            lines.push(line);
        }
        let invoice = NewInvoice {
            id,
            subscriber_id: s.id,
            currency: s.currency.clone(),
            period_start: period.start,
            period_end: period.end,
            created_at: self.clock.now(),
            issue: catalog
                .settings
                .issue_invoices
                .then(|| due_date(&catalog.settings, as_of)),
            prices_include_tax: zone.is_some_and(|z| z.prices_include_tax),
            billing_run_id: Some(run),
            lines,
        };
        if invoice.totals().is_none() {
            return Err(RatingError::Overflow);
        }
        Ok(Some(invoice))
    }

    /// A billing date is in the accepted range and at most [`MAX_BILLING_DAYS_AHEAD`] days
    /// after today: a run walks every period up to its date, and one dated centuries ahead
    /// would bill periods nobody has used.
    fn check_billing_date(&self, as_of: Date) -> AppResult<()> {
        date_in_range(as_of).map_err(|m| AppError::invalid("as_of", m))?;
        let latest = self
            .billing_today()
            .checked_add(i64::from(MAX_BILLING_DAYS_AHEAD).days())
            .unwrap_or(LATEST_DATE);
        if as_of > latest {
            return Err(AppError::invalid(
                "as_of",
                format!(
                    "must be at most {MAX_BILLING_DAYS_AHEAD} days after today (on or before {latest})"
                ),
            ));
        }
        Ok(())
    }

    /// The billing settings in force: the stored ones, else the start-up defaults.
    pub async fn billing_settings(&self) -> AppResult<BillingSettings> {
        match self.store.get_setting(BILLING_SETTINGS).await? {
            Some((value, revision)) => {
                let mut s: BillingSettings = serde_json::from_value(value).map_err(|e| {
                    AppError::Internal(format!("stored billing settings do not decode: {e}"))
                })?;
                s.revision = revision;
                Ok(s)
            }
            None => {
                let c = &self.config.billing;
                Ok(BillingSettings {
                    payment_terms_days: c.payment_terms_days,
                    invoice_prefix: c.invoice_prefix.clone(),
                    credit_note_prefix: c.credit_note_prefix.clone(),
                    issue_invoices: c.issue_invoices,
                    downgrades: c.policy.downgrades,
                    issuer: c.issuer.clone(),
                    revision: 0,
                    updated_at: None,
                })
            }
        }
    }

    /// Replaces the billing settings for every node. Numbers already issued keep their
    /// prefix; the sequences go on where they were.
    pub async fn update_billing_settings(
        &self,
        actor: &lastmile_domain::audit::Actor,
        new: BillingSettings,
    ) -> AppResult<BillingSettings> {
        let new = new.validated().map_err(AppError::Validation)?;
        optimistic("the billing settings", || async {
            let before = self.billing_settings().await?;
            let now = self.clock.now();
            let after = BillingSettings {
                revision: before.revision + 1,
                updated_at: Some(now),
                ..new.clone()
            };
            let audit = lastmile_domain::audit::AuditEvent::new(
                now,
                actor,
                None,
                "settings",
                BILLING_SETTINGS,
                "settings.update",
                Some(&before),
                Some(&after),
            );
            let value = serde_json::to_value(&after)
                .map_err(|e| AppError::Internal(format!("billing settings: {e}")))?;
            let written = self
                .store
                .put_setting(BILLING_SETTINGS, &value, before.revision, now, &audit)
                .await;
            Ok(Attempt::from_write(written)?.map(|()| after))
        })
        .await
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

/// Due date of an invoice issued on `issued_on`.
pub(crate) fn due_date(settings: &BillingSettings, issued_on: Date) -> Date {
    issued_on
        .checked_add(settings.payment_terms_days.days())
        .unwrap_or(issued_on)
}
