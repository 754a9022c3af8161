//! The storage port, split by area: each trait is small enough to read, and [`Store`] is all
//! of them (what the use cases hold, as `Arc<dyn Store>`). Bring the areas you call into scope
//! with `use lastmile_store::ports::*`.

use crate::radius::{ChangeBatch, ChangeCursor, DirectoryService, SessionFilter};
use crate::*;
use async_trait::async_trait;
use jiff::Timestamp;
use lastmile_domain::audit::AuditEvent;
use lastmile_domain::auth::Operator;
use lastmile_domain::billing::account::{
    Account, Allocation, CreditNote, LedgerEntry, Payment, Refund,
};
use lastmile_domain::billing::discount::Discount;
use lastmile_domain::billing::dunning::{DunningActionKind, DunningPolicy};
use lastmile_domain::billing::invoice::{BillingRun, Invoice};
use lastmile_domain::billing::tax::TaxZone;
use lastmile_domain::ids::*;
use lastmile_domain::job::{JobKind, ProvisioningJob};
use lastmile_domain::nas::Nas;
use lastmile_domain::plan::{Plan, PlanVersion};
use lastmile_domain::radius::{AccountingEvent, HourlyUsage, RadiusSession};
use lastmile_domain::service::Service;
use lastmile_domain::subscriber::Subscriber;
use lastmile_domain::timeline::TimelineEvent;

/// Operators, their API tokens, and subscribers.
#[async_trait]
pub trait SubscriberStore: Send + Sync {
    // Operators and tokens.

    async fn insert_operator(
        &self,
        operator: &Operator,
        token: &ApiToken,
        audit: &AuditEvent,
    ) -> Result<()>;
    /// The live (not revoked) token with this hash, and its operator.
    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, Operator)>>;

    // Subscribers.

    async fn insert_subscriber(&self, subscriber: &Subscriber, audit: &AuditEvent) -> Result<()>;
    /// Writes `subscriber` (its `revision` already incremented) if the stored revision is
    /// `expected_revision`, else `StoreError::Stale`.
    async fn update_subscriber(
        &self,
        subscriber: &Subscriber,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()>;
    async fn get_subscriber(&self, id: SubscriberId) -> Result<Option<Subscriber>>;
    async fn list_subscribers(
        &self,
        filter: &SubscriberFilter,
        page: Page,
    ) -> Result<Vec<Subscriber>>;
}

/// What the ISP sells and where: plans with their versions, and NAS.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    // Plans.

    /// Inserts the plan and its current version.
    async fn insert_plan(&self, plan: &Plan, audit: &AuditEvent) -> Result<()>;
    /// Writes the plan row; if `plan.current` is a version not stored yet, inserts it too.
    async fn update_plan(
        &self,
        plan: &Plan,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()>;
    async fn get_plan(&self, id: PlanId) -> Result<Option<Plan>>;
    async fn list_plans(&self, filter: &PlanFilter, page: Page) -> Result<Vec<Plan>>;
    async fn get_plan_version(&self, id: PlanVersionId) -> Result<Option<PlanVersion>>;
    async fn list_plan_versions(&self, plan_id: PlanId) -> Result<Vec<PlanVersion>>;

    // NAS.

    async fn insert_nas(&self, nas: &Nas, audit: &AuditEvent) -> Result<()>;
    async fn update_nas(&self, nas: &Nas, expected_revision: i64, audit: &AuditEvent)
        -> Result<()>;
    /// `StoreError::InUse` while services still reference it; `NotFound` if it does not exist.
    async fn delete_nas(&self, id: NasId, audit: &AuditEvent) -> Result<()>;
    async fn get_nas(&self, id: NasId) -> Result<Option<Nas>>;
    async fn list_nas(&self, page: Page) -> Result<Vec<Nas>>;
}

/// Services and their timeline; a service business event is written whole.
#[async_trait]
pub trait ServiceStore: Send + Sync {
    // Services and their timeline.

    async fn insert_service(&self, service: &Service, audit: &AuditEvent) -> Result<()>;
    /// Writes a service's settings outside its timeline (`simultaneous_use`); status and plan
    /// change only through `record_service_change`. `Stale` if the revision moved on.
    async fn update_service_settings(
        &self,
        service: &Service,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()>;
    async fn get_service(&self, id: ServiceId) -> Result<Option<Service>>;
    async fn list_services(&self, filter: &ServiceFilter, page: Page) -> Result<Vec<Service>>;
    /// The plan the service was created with: the start of its timeline.
    async fn service_initial_plan(&self, id: ServiceId) -> Result<Option<(PlanId, PlanVersionId)>>;
    /// The service's timeline in recording order (`seq`).
    async fn service_timeline(&self, id: ServiceId) -> Result<Vec<TimelineEvent>>;
    /// Writes a service business event atomically; `StoreError::Stale` if the service's
    /// revision moved on since it was read.
    async fn record_service_change(&self, change: &ServiceChange) -> Result<()>;
}

/// The provisioning-job outbox.
#[async_trait]
pub trait JobStore: Send + Sync {
    // Provisioning jobs.

    async fn get_job(&self, id: JobId) -> Result<Option<ProvisioningJob>>;
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<ProvisioningJob>>;
    /// Moves a `failed` job back to `pending` (attempts reset). `Ok(None)` if the job is not
    /// failed (the caller reports its state).
    async fn requeue_failed_job(
        &self,
        id: JobId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Option<ProvisioningJob>>;
    /// Claims up to `limit` runnable jobs of the given kinds (pending and due, or running with
    /// an expired lease) within `scope`, marking them `running` until `lease_until` and
    /// counting an attempt. Concurrent claimers never get the same job.
    async fn claim_jobs(
        &self,
        kinds: &[JobKind],
        scope: JobScope,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ProvisioningJob>>;
    /// Records the end of an attempt. Ignored (returns false) if the job is no longer
    /// `running` at `attempts` (its lease expired and another worker took it).
    async fn finish_job(
        &self,
        id: JobId,
        attempt: i32,
        outcome: &JobOutcome,
        now: Timestamp,
    ) -> Result<bool>;
}

/// Billing runs, invoices and what rating reads.
#[async_trait]
pub trait BillingStore: Send + Sync {
    // Billing.

    /// Every plan version with its plan's name (small: the catalogue).
    async fn plan_catalog(&self) -> Result<Vec<(String, PlanVersion)>>;
    /// The next `limit` subscribers after `after` (id order) with their billing history.
    /// With `as_of`, a subscriber whose billing period containing `as_of` already has an
    /// invoice (not void) comes back without history (no services, no invoiced lines,
    /// `invoiced_periods` holding that period's start): there is nothing to bill, and a rerun
    /// reads almost nothing.
    async fn billing_inputs(
        &self,
        after: Option<SubscriberId>,
        limit: u32,
        as_of: Option<jiff::civil::Date>,
    ) -> Result<Vec<BillingInput>>;
    async fn insert_billing_run(&self, run: &BillingRun) -> Result<()>;
    async fn get_billing_run(&self, id: BillingRunId) -> Result<Option<BillingRun>>;
    async fn list_billing_runs(&self, page: Page) -> Result<Vec<BillingRun>>;
    /// The run for `as_of` that has not completed (at most one exists), to resume it.
    async fn unfinished_billing_run(&self, as_of: jiff::civil::Date) -> Result<Option<BillingRun>>;
    /// In one transaction: inserts the batch's invoices whose (subscriber, period) has no
    /// invoice yet, numbering them without gaps, and records the run's progress. Returns the
    /// number of invoices inserted. Concurrent runs never produce two invoices for one
    /// subscriber and period (a unique key) nor a gap in the numbers.
    async fn commit_billing_batch(&self, batch: &BillingBatch) -> Result<u64> {
        self.queue_billing_batch(batch.clone()).await?.await
    }
    /// [`BillingStore::commit_billing_batch`] in two steps, for a run that keeps more than
    /// one batch in flight: returns once the batch is queued, with its commit's outcome to
    /// come. Batches queued one after another on a store commit in that order, so a run may
    /// queue batch N + 1 before batch N has committed and its cursor still only moves
    /// forward. (SQLite queues on its one writer thread; where writes cannot be queued, on
    /// PostgreSQL's pool of connections, the batch commits before this returns.)
    async fn queue_billing_batch(&self, batch: BillingBatch) -> Result<Pending<u64>>;
    /// Ends a running run: completed, or failed with `failure` (then it stays as far as its
    /// committed batches got). A run already finished is left as it is.
    async fn complete_billing_run(
        &self,
        id: BillingRunId,
        now: Timestamp,
        failure: Option<&str>,
    ) -> Result<()>;
    async fn get_invoice(&self, id: InvoiceId) -> Result<Option<Invoice>>;
    /// Invoices without their lines.
    async fn list_invoices(&self, filter: &InvoiceFilter, page: Page) -> Result<Vec<Invoice>>;
    /// The billing input of one subscriber (a run scoped to them).
    async fn billing_input(&self, subscriber: SubscriberId) -> Result<Option<BillingInput>>;
    /// Of these subscribers, those with credit not yet allocated (to settle after a run).
    async fn subscribers_with_credit(&self, ids: &[SubscriberId]) -> Result<Vec<SubscriberId>>;
}

/// Tax zones, dunning policies, discounts and settings.
#[async_trait]
pub trait BillingConfigStore: Send + Sync {
    // Billing configuration.

    async fn insert_tax_zone(&self, zone: &TaxZone, audit: &AuditEvent) -> Result<()>;
    async fn update_tax_zone(
        &self,
        zone: &TaxZone,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()>;
    async fn get_tax_zone(&self, id: TaxZoneId) -> Result<Option<TaxZone>>;
    /// All zones, by code (a small table).
    async fn list_tax_zones(&self) -> Result<Vec<TaxZone>>;
    /// Inserts the policy; if it is the default, the previous default stops being one.
    async fn insert_dunning_policy(&self, policy: &DunningPolicy, audit: &AuditEvent)
        -> Result<()>;
    async fn update_dunning_policy(
        &self,
        policy: &DunningPolicy,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()>;
    async fn get_dunning_policy(&self, id: DunningPolicyId) -> Result<Option<DunningPolicy>>;
    /// All policies, by code (a small table).
    async fn list_dunning_policies(&self) -> Result<Vec<DunningPolicy>>;
    async fn insert_discount(&self, discount: &Discount, audit: &AuditEvent) -> Result<()>;
    /// Sets the end date of a discount.
    async fn end_discount(
        &self,
        id: DiscountId,
        ends_on: jiff::civil::Date,
        audit: &AuditEvent,
    ) -> Result<()>;
    async fn get_discount(&self, id: DiscountId) -> Result<Option<Discount>>;
    async fn list_discounts(&self, subscriber: SubscriberId) -> Result<Vec<Discount>>;

    /// A named group of settings (a JSON document) and its revision.
    async fn get_setting(&self, name: &str) -> Result<Option<(serde_json::Value, i64)>>;
    /// Stores a settings group as revision `expected_revision + 1` (0: it must not exist yet);
    /// `Stale` if the stored revision is another.
    async fn put_setting(
        &self,
        name: &str,
        value: &serde_json::Value,
        expected_revision: i64,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<()>;
}

/// Accounts and every money movement: payments, credit notes, refunds, allocations, the ledger, dunning.
#[async_trait]
pub trait MoneyStore: Send + Sync {
    // Money.

    /// The subscriber's debits and credits with what is allocated of each.
    async fn get_account(&self, subscriber: SubscriberId) -> Result<Option<Account>>;
    /// Writes an account change atomically; `Stale` if the account revision moved on (or an
    /// invoice to issue or void is no longer in the state it was read in), `Duplicate` with
    /// field `external_id` for a payment already recorded.
    async fn record_account_change(&self, change: &AccountChange) -> Result<()>;
    /// The subscriber's ledger in chronological order.
    async fn ledger(&self, subscriber: SubscriberId) -> Result<Vec<LedgerEntry>>;
    async fn get_payment(&self, id: PaymentId) -> Result<Option<Payment>>;
    async fn find_payment_by_external_id(&self, external_id: &str) -> Result<Option<Payment>>;
    async fn list_payments(&self, filter: &PaymentFilter, page: Page) -> Result<Vec<Payment>>;
    /// What is not allocated yet of each payment named (its account credit's
    /// `available_minor`), in one read whatever their subscribers; unknown ids are absent.
    async fn payments_unallocated(
        &self,
        ids: &[PaymentId],
    ) -> Result<std::collections::HashMap<PaymentId, i64>>;
    async fn get_credit_note(&self, id: CreditNoteId) -> Result<Option<CreditNote>>;
    async fn list_credit_notes(
        &self,
        filter: &CreditNoteFilter,
        page: Page,
    ) -> Result<Vec<CreditNote>>;
    async fn list_refunds(&self, subscriber: SubscriberId) -> Result<Vec<Refund>>;
    /// Allocations touching a document (as credit or debit).
    async fn list_allocations(&self, subscriber: SubscriberId) -> Result<Vec<Allocation>>;
    /// Subscribers (after `after`, id order) with an issued, unpaid invoice due before
    /// `today`: the dunning job's worklist.
    async fn overdue_subscribers(
        &self,
        today: jiff::civil::Date,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberId>>;
    /// Dunning steps already taken for an invoice.
    async fn dunning_actions(&self, invoice: InvoiceId) -> Result<Vec<(i64, DunningActionKind)>>;
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    // Audit.

    async fn list_audit_events(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditEvent>>;
}

/// `Idempotency-Key` reservations and stored responses.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    // Idempotency keys.

    /// Reserves `key` (in `scope`) for a request with `request_hash`, or says what to do
    /// instead (see [`IdempotencyBegin`]). A new reservation, a takeover of one whose lease
    /// has passed (`lease_until <= now`) and a recovery hold the key until `lease_until`.
    /// Concurrent callers: at most one gets `Reserved` or `Recover`; a takeover is a
    /// conditional update guarded by the previous owner and lease.
    async fn begin_idempotency(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<IdempotencyBegin>;
    /// Stores the response, if `owner` still holds the reservation (returns whether it did).
    async fn finish_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<bool>;
    /// Releases `owner`'s reservation of a request that failed: forgotten if nothing
    /// committed under it, so a retry runs; if something did, its lease ends at `now`, so
    /// the next retry recovers the response at once.
    async fn abandon_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        now: Timestamp,
    ) -> Result<()>;
}

/// RADIUS: accounting into sessions and hourly usage, and what the RADIUS servers' in-memory
/// directories load and follow.
#[async_trait]
pub trait RadiusStore: Send + Sync {
    /// Records accounting events in one transaction (the accounting path's high-rate write):
    /// each event on its own savepoint, so a failing one is rolled back alone. Returns each
    /// event's outcome, in order; all of them are durable when this returns. Recording an
    /// event again changes nothing (see `lastmile_domain::radius`). Accounting-On and -Off
    /// close every open session of their NAS.
    async fn record_accounting(&self, events: Vec<AccountingEvent>) -> Result<Vec<Result<()>>>;
    /// Closes the NAS's open sessions last heard of before `idle_since` as stale (their
    /// stop time is when they were last heard of). Returns how many.
    async fn close_stale_sessions(&self, nas_id: NasId, idle_since: Timestamp) -> Result<u64>;
    async fn get_session(&self, id: SessionId) -> Result<Option<RadiusSession>>;
    /// Sessions in id (= start) order.
    async fn list_sessions(&self, filter: &SessionFilter, page: Page)
        -> Result<Vec<RadiusSession>>;
    /// Records the policy (tier) the NAS acknowledged for a session, by CoA.
    async fn set_session_policy(&self, id: SessionId, policy: &str, at: Timestamp) -> Result<()>;
    /// A subscriber's hourly usage with `from <= hour_start < to`, by hour then service.
    async fn usage_hourly(
        &self,
        subscriber_id: SubscriberId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<HourlyUsage>>;
    /// Services that are not terminated, with their plan terms, in id order.
    async fn directory_services(
        &self,
        after: Option<ServiceId>,
        limit: u32,
    ) -> Result<Vec<DirectoryService>>;
    /// These services (terminated ones too), with their plan terms.
    async fn directory_services_by_id(&self, ids: &[ServiceId]) -> Result<Vec<DirectoryService>>;
    /// Where the change feed stands now: take it before a full load, then follow from it.
    async fn directory_cursor(&self) -> Result<ChangeCursor>;
    /// Changes after `after`, at most about `limit`. None is ever skipped; some may repeat.
    async fn directory_changes(&self, after: ChangeCursor, limit: u32) -> Result<ChangeBatch>;
}

/// The whole store: every area, plus what belongs to none.
#[async_trait]
pub trait Store:
    SubscriberStore
    + CatalogStore
    + ServiceStore
    + JobStore
    + BillingStore
    + BillingConfigStore
    + MoneyStore
    + AuditStore
    + IdempotencyStore
    + RadiusStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip, for `/healthz`.
    async fn ping(&self) -> Result<()>;

    /// Ends the process's use of the database: PostgreSQL's pool closes; SQLite's WAL is
    /// checkpointed into the file and truncated, so the file alone holds every commit. A
    /// store not closed loses nothing (the WAL is replayed when next opened).
    async fn close(&self);

    /// Next value of a named counter (`subscriber_number` …). Gap-free per counter within a
    /// successful call; used outside the business transaction, so a failed insert may skip one.
    async fn next_counter(&self, name: &str) -> Result<i64>;
}
