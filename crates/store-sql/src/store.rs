//! The [`Store`] port implemented once over any [`Db`]: each method runs its area's generic
//! code as a read or as a write transaction. The SQL is in the area modules.

use crate::{accounting, billing, catalog, money, radius, services, Conn, ConnFuture, Db, Dialect};
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
use lastmile_store::radius::{ChangeBatch, ChangeCursor, DirectoryService, SessionFilter};
use lastmile_store::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The store over the database `D`.
#[derive(Clone)]
pub struct SqlStore<D> {
    pub db: D,
    /// Said when the last queued billing batch has taken the invoice counter (see
    /// `billing::Turn`).
    billing_turn: Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
}

impl<D: Db> SqlStore<D> {
    /// Opens the database named by `url` (applying pending migrations).
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self {
            db: D::connect(url).await?,
            billing_turn: Default::default(),
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut D::Conn) -> ConnFuture<'c, T> + Send + 'static,
    {
        self.db.read(f).await
    }

    /// See [`Db::read_statement`].
    async fn read_statement<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut D::Conn) -> ConnFuture<'c, T> + Send + 'static,
    {
        self.db.read_statement(f).await
    }

    /// A write transaction. The idempotent request in progress (a task-local of the calling
    /// task) goes with it, wherever the backend runs the transaction, so the audit insert can
    /// mark its key in the same commit.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut D::Conn) -> ConnFuture<'c, T> + Send + 'static,
    {
        match idempotent_request() {
            None => self.db.write(f).await,
            Some(req) => {
                self.db
                    .write(move |c| Box::pin(IDEMPOTENT_REQUEST.scope(req, f(c))))
                    .await
            }
        }
    }
}

#[async_trait]
impl<D: Db> SubscriberStore for SqlStore<D> {
    async fn insert_operator(
        &self,
        operator: &Operator,
        token: &ApiToken,
        audit: &AuditEvent,
    ) -> Result<()> {
        let operator = operator.clone();
        let token = token.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { catalog::insert_operator(c, &operator, &token, &audit).await })
        })
        .await
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, Operator)>> {
        let token_hash = token_hash.to_string();
        self.read_statement(move |c| {
            Box::pin(async move { catalog::find_token(c, &token_hash).await })
        })
        .await
    }

    async fn insert_subscriber(&self, subscriber: &Subscriber, audit: &AuditEvent) -> Result<()> {
        let subscriber = subscriber.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { catalog::insert_subscriber(c, &subscriber, &audit).await })
        })
        .await
    }

    async fn update_subscriber(
        &self,
        subscriber: &Subscriber,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let subscriber = subscriber.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move {
                catalog::update_subscriber(c, &subscriber, expected_revision, &audit).await
            })
        })
        .await
    }

    async fn get_subscriber(&self, id: SubscriberId) -> Result<Option<Subscriber>> {
        self.read_statement(move |c| Box::pin(async move { catalog::get_subscriber(c, id).await }))
            .await
    }

    async fn list_subscribers(
        &self,
        filter: &SubscriberFilter,
        page: Page,
    ) -> Result<Vec<Subscriber>> {
        let filter = filter.clone();
        self.read(move |c| {
            Box::pin(async move { catalog::list_subscribers(c, &filter, page).await })
        })
        .await
    }
}

#[async_trait]
impl<D: Db> CatalogStore for SqlStore<D> {
    async fn insert_plan(&self, plan: &Plan, audit: &AuditEvent) -> Result<()> {
        let plan = plan.clone();
        let audit = audit.clone();
        self.write(move |c| Box::pin(async move { catalog::insert_plan(c, &plan, &audit).await }))
            .await
    }

    async fn update_plan(
        &self,
        plan: &Plan,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let plan = plan.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { catalog::update_plan(c, &plan, expected_revision, &audit).await })
        })
        .await
    }

    async fn get_plan(&self, id: PlanId) -> Result<Option<Plan>> {
        self.read_statement(move |c| Box::pin(async move { catalog::get_plan(c, id).await }))
            .await
    }

    async fn list_plans(&self, filter: &PlanFilter, page: Page) -> Result<Vec<Plan>> {
        let filter = filter.clone();
        self.read_statement(move |c| {
            Box::pin(async move { catalog::list_plans(c, &filter, page).await })
        })
        .await
    }

    async fn get_plan_version(&self, id: PlanVersionId) -> Result<Option<PlanVersion>> {
        self.read_statement(move |c| {
            Box::pin(async move { catalog::get_plan_version(c, id).await })
        })
        .await
    }

    async fn list_plan_versions(&self, plan_id: PlanId) -> Result<Vec<PlanVersion>> {
        self.read_statement(move |c| {
            Box::pin(async move { catalog::list_plan_versions(c, plan_id).await })
        })
        .await
    }

    async fn insert_nas(&self, nas: &Nas, audit: &AuditEvent) -> Result<()> {
        let nas = nas.clone();
        let audit = audit.clone();
        self.write(move |c| Box::pin(async move { catalog::insert_nas(c, &nas, &audit).await }))
            .await
    }

    async fn update_nas(
        &self,
        nas: &Nas,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let nas = nas.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { catalog::update_nas(c, &nas, expected_revision, &audit).await })
        })
        .await
    }

    async fn delete_nas(&self, id: NasId, audit: &AuditEvent) -> Result<()> {
        let audit = audit.clone();
        self.write(move |c| Box::pin(async move { catalog::delete_nas(c, id, &audit).await }))
            .await
    }

    async fn get_nas(&self, id: NasId) -> Result<Option<Nas>> {
        self.read_statement(move |c| Box::pin(async move { catalog::get_nas(c, id).await }))
            .await
    }

    async fn list_nas(&self, page: Page) -> Result<Vec<Nas>> {
        self.read_statement(move |c| Box::pin(async move { catalog::list_nas(c, page).await }))
            .await
    }
}

#[async_trait]
impl<D: Db> ServiceStore for SqlStore<D> {
    async fn insert_service(&self, service: &Service, audit: &AuditEvent) -> Result<()> {
        let service = service.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { services::insert_service(c, &service, &audit).await })
        })
        .await
    }

    async fn update_service_settings(
        &self,
        service: &Service,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let service = service.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move {
                services::update_service_settings(c, &service, expected_revision, &audit).await
            })
        })
        .await
    }

    async fn get_service(&self, id: ServiceId) -> Result<Option<Service>> {
        self.read_statement(move |c| Box::pin(async move { services::get_service(c, id).await }))
            .await
    }

    async fn list_services(&self, filter: &ServiceFilter, page: Page) -> Result<Vec<Service>> {
        let filter = filter.clone();
        self.read_statement(move |c| {
            Box::pin(async move { services::list_services(c, &filter, page).await })
        })
        .await
    }

    async fn service_initial_plan(&self, id: ServiceId) -> Result<Option<(PlanId, PlanVersionId)>> {
        self.read_statement(move |c| {
            Box::pin(async move { services::service_initial_plan(c, id).await })
        })
        .await
    }

    async fn service_timeline(&self, id: ServiceId) -> Result<Vec<TimelineEvent>> {
        self.read_statement(move |c| {
            Box::pin(async move { services::service_timeline(c, id).await })
        })
        .await
    }

    async fn record_service_change(&self, change: &ServiceChange) -> Result<()> {
        let change = change.clone();
        self.write(move |c| {
            Box::pin(async move { services::record_service_change(c, &change).await })
        })
        .await
    }
}

#[async_trait]
impl<D: Db> JobStore for SqlStore<D> {
    async fn get_job(&self, id: JobId) -> Result<Option<ProvisioningJob>> {
        self.read_statement(move |c| Box::pin(async move { services::get_job(c, id).await }))
            .await
    }

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<ProvisioningJob>> {
        let filter = filter.clone();
        self.read_statement(move |c| {
            Box::pin(async move { services::list_jobs(c, &filter, page).await })
        })
        .await
    }

    async fn requeue_failed_job(
        &self,
        id: JobId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Option<ProvisioningJob>> {
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { services::requeue_failed_job(c, id, now, &audit).await })
        })
        .await
    }

    async fn claim_jobs(
        &self,
        kinds: &[JobKind],
        scope: JobScope,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ProvisioningJob>> {
        let kinds = kinds.to_vec();
        self.write(move |c| {
            Box::pin(async move {
                services::claim_jobs(c, &kinds, scope, now, lease_until, limit).await
            })
        })
        .await
    }

    async fn finish_job(
        &self,
        id: JobId,
        attempt: i32,
        outcome: &JobOutcome,
        now: Timestamp,
    ) -> Result<bool> {
        let outcome = outcome.clone();
        self.write(move |c| {
            Box::pin(async move { services::finish_job(c, id, attempt, &outcome, now).await })
        })
        .await
    }
}

#[async_trait]
impl<D: Db> BillingStore for SqlStore<D> {
    async fn plan_catalog(&self) -> Result<Vec<(String, PlanVersion)>> {
        self.read_statement(move |c| Box::pin(async move { billing::plan_catalog(c).await }))
            .await
    }

    async fn billing_inputs(
        &self,
        after: Option<SubscriberId>,
        limit: u32,
        as_of: Option<jiff::civil::Date>,
    ) -> Result<Vec<BillingInput>> {
        self.read(move |c| {
            Box::pin(async move { billing::billing_inputs(c, after, limit, as_of).await })
        })
        .await
    }

    async fn insert_billing_run(&self, run: &BillingRun) -> Result<()> {
        let run = run.clone();
        self.write(move |c| Box::pin(async move { billing::insert_billing_run(c, &run).await }))
            .await
    }

    async fn get_billing_run(&self, id: BillingRunId) -> Result<Option<BillingRun>> {
        self.read_statement(move |c| Box::pin(async move { billing::get_billing_run(c, id).await }))
            .await
    }

    async fn list_billing_runs(&self, page: Page) -> Result<Vec<BillingRun>> {
        self.read_statement(move |c| {
            Box::pin(async move { billing::list_billing_runs(c, page).await })
        })
        .await
    }

    async fn unfinished_billing_run(&self, as_of: jiff::civil::Date) -> Result<Option<BillingRun>> {
        self.read_statement(move |c| {
            Box::pin(async move { billing::unfinished_billing_run(c, as_of).await })
        })
        .await
    }

    async fn queue_billing_batch(&self, batch: BillingBatch) -> Result<Pending<u64>> {
        let dialect = <D::Conn as Conn>::DIALECT;
        let mut prepared = billing::PreparedBatch::new(batch, dialect)?;
        // On PostgreSQL queued batches run at once, each in a transaction of its own, and
        // take the invoice counter in the order they were queued. SQLite's writer runs them
        // one after another anyway (and its transactions cannot wait for anything).
        let turn = match dialect {
            Dialect::Postgres => {
                let (mine, next) = tokio::sync::oneshot::channel();
                let before = self
                    .billing_turn
                    .lock()
                    // Only an `Option` swap happens under it: a panic cannot leave it half done.
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .replace(next);
                Some(billing::Turn { before, mine })
            }
            Dialect::Sqlite => None,
        };
        // A run's batches are written by its own tasks, never inside a keyed API request, so
        // this is `Db::queue_write` itself rather than `SqlStore::write`.
        let pending = self
            .db
            .queue_write(move |c| {
                Box::pin(async move {
                    let n = billing::commit_billing_batch(c, &mut prepared, turn).await?;
                    // The statements go back to be freed by the caller, not the writer.
                    Ok((n, prepared))
                })
            })
            .await?;
        Ok(Box::pin(async move { pending.await.map(|(n, _spent)| n) }))
    }

    async fn complete_billing_run(
        &self,
        id: BillingRunId,
        now: Timestamp,
        failure: Option<&str>,
    ) -> Result<()> {
        let failure = failure.map(str::to_string);
        self.write(move |c| {
            Box::pin(
                async move { billing::complete_billing_run(c, id, now, failure.as_deref()).await },
            )
        })
        .await
    }

    async fn get_invoice(&self, id: InvoiceId) -> Result<Option<Invoice>> {
        self.read(move |c| Box::pin(async move { billing::get_invoice(c, id).await }))
            .await
    }

    async fn list_invoices(&self, filter: &InvoiceFilter, page: Page) -> Result<Vec<Invoice>> {
        let filter = filter.clone();
        self.read_statement(move |c| {
            Box::pin(async move { billing::list_invoices(c, &filter, page).await })
        })
        .await
    }

    async fn billing_input(&self, subscriber: SubscriberId) -> Result<Option<BillingInput>> {
        self.read(move |c| Box::pin(async move { billing::billing_input(c, subscriber).await }))
            .await
    }

    async fn subscribers_with_credit(&self, ids: &[SubscriberId]) -> Result<Vec<SubscriberId>> {
        let ids = ids.to_vec();
        self.read(move |c| Box::pin(async move { billing::subscribers_with_credit(c, &ids).await }))
            .await
    }
}

#[async_trait]
impl<D: Db> BillingConfigStore for SqlStore<D> {
    async fn insert_tax_zone(&self, zone: &TaxZone, audit: &AuditEvent) -> Result<()> {
        let zone = zone.clone();
        let audit = audit.clone();
        self.write(move |c| Box::pin(async move { money::insert_tax_zone(c, &zone, &audit).await }))
            .await
    }

    async fn update_tax_zone(
        &self,
        zone: &TaxZone,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let zone = zone.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(
                async move { money::update_tax_zone(c, &zone, expected_revision, &audit).await },
            )
        })
        .await
    }

    async fn get_tax_zone(&self, id: TaxZoneId) -> Result<Option<TaxZone>> {
        self.read_statement(move |c| Box::pin(async move { money::get_tax_zone(c, id).await }))
            .await
    }

    async fn list_tax_zones(&self) -> Result<Vec<TaxZone>> {
        self.read_statement(move |c| Box::pin(async move { money::list_tax_zones(c).await }))
            .await
    }

    async fn insert_dunning_policy(
        &self,
        policy: &DunningPolicy,
        audit: &AuditEvent,
    ) -> Result<()> {
        let policy = policy.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { money::insert_dunning_policy(c, &policy, &audit).await })
        })
        .await
    }

    async fn update_dunning_policy(
        &self,
        policy: &DunningPolicy,
        expected_revision: i64,
        audit: &AuditEvent,
    ) -> Result<()> {
        let policy = policy.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move {
                money::update_dunning_policy(c, &policy, expected_revision, &audit).await
            })
        })
        .await
    }

    async fn get_dunning_policy(&self, id: DunningPolicyId) -> Result<Option<DunningPolicy>> {
        self.read_statement(move |c| {
            Box::pin(async move { money::get_dunning_policy(c, id).await })
        })
        .await
    }

    async fn list_dunning_policies(&self) -> Result<Vec<DunningPolicy>> {
        self.read(move |c| Box::pin(async move { money::list_dunning_policies(c).await }))
            .await
    }

    async fn insert_discount(&self, discount: &Discount, audit: &AuditEvent) -> Result<()> {
        let discount = discount.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { money::insert_discount(c, &discount, &audit).await })
        })
        .await
    }

    async fn end_discount(
        &self,
        id: DiscountId,
        ends_on: jiff::civil::Date,
        audit: &AuditEvent,
    ) -> Result<()> {
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move { money::end_discount(c, id, ends_on, &audit).await })
        })
        .await
    }

    async fn get_discount(&self, id: DiscountId) -> Result<Option<Discount>> {
        self.read_statement(move |c| Box::pin(async move { money::get_discount(c, id).await }))
            .await
    }

    async fn list_discounts(&self, subscriber: SubscriberId) -> Result<Vec<Discount>> {
        self.read_statement(move |c| {
            Box::pin(async move { money::list_discounts(c, subscriber).await })
        })
        .await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<(serde_json::Value, i64)>> {
        let name = name.to_string();
        self.read_statement(move |c| Box::pin(async move { money::get_setting(c, &name).await }))
            .await
    }

    async fn put_setting(
        &self,
        name: &str,
        value: &serde_json::Value,
        expected_revision: i64,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<()> {
        let name = name.to_string();
        let value = value.clone();
        let audit = audit.clone();
        self.write(move |c| {
            Box::pin(async move {
                money::put_setting(c, &name, &value, expected_revision, now, &audit).await
            })
        })
        .await
    }
}

#[async_trait]
impl<D: Db> MoneyStore for SqlStore<D> {
    async fn get_account(&self, subscriber: SubscriberId) -> Result<Option<Account>> {
        self.read(move |c| Box::pin(async move { money::get_account(c, subscriber).await }))
            .await
    }

    async fn record_account_change(&self, change: &AccountChange) -> Result<()> {
        let change = change.clone();
        self.write(move |c| Box::pin(async move { money::record_account_change(c, &change).await }))
            .await
    }

    async fn ledger(&self, subscriber: SubscriberId) -> Result<Vec<LedgerEntry>> {
        self.read_statement(move |c| Box::pin(async move { money::ledger(c, subscriber).await }))
            .await
    }

    async fn get_payment(&self, id: PaymentId) -> Result<Option<Payment>> {
        self.read_statement(move |c| Box::pin(async move { money::get_payment(c, id).await }))
            .await
    }

    async fn find_payment_by_external_id(&self, external_id: &str) -> Result<Option<Payment>> {
        let external_id = external_id.to_string();
        self.read(move |c| {
            Box::pin(async move { money::find_payment_by_external_id(c, &external_id).await })
        })
        .await
    }

    async fn list_payments(&self, filter: &PaymentFilter, page: Page) -> Result<Vec<Payment>> {
        let filter = filter.clone();
        self.read_statement(move |c| {
            Box::pin(async move { money::list_payments(c, &filter, page).await })
        })
        .await
    }

    async fn payments_unallocated(&self, ids: &[PaymentId]) -> Result<HashMap<PaymentId, i64>> {
        let ids = ids.to_vec();
        self.read(move |c| Box::pin(async move { money::payments_unallocated(c, &ids).await }))
            .await
    }

    async fn get_credit_note(&self, id: CreditNoteId) -> Result<Option<CreditNote>> {
        self.read_statement(move |c| Box::pin(async move { money::get_credit_note(c, id).await }))
            .await
    }

    async fn list_credit_notes(
        &self,
        filter: &CreditNoteFilter,
        page: Page,
    ) -> Result<Vec<CreditNote>> {
        let filter = filter.clone();
        self.read(move |c| {
            Box::pin(async move { money::list_credit_notes(c, &filter, page).await })
        })
        .await
    }

    async fn list_refunds(&self, subscriber: SubscriberId) -> Result<Vec<Refund>> {
        self.read_statement(move |c| {
            Box::pin(async move { money::list_refunds(c, subscriber).await })
        })
        .await
    }

    async fn list_allocations(&self, subscriber: SubscriberId) -> Result<Vec<Allocation>> {
        self.read_statement(move |c| {
            Box::pin(async move { money::list_allocations(c, subscriber).await })
        })
        .await
    }

    async fn overdue_subscribers(
        &self,
        today: jiff::civil::Date,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberId>> {
        self.read(move |c| {
            Box::pin(async move { money::overdue_subscribers(c, today, after, limit).await })
        })
        .await
    }

    async fn dunning_actions(&self, invoice: InvoiceId) -> Result<Vec<(i64, DunningActionKind)>> {
        self.read_statement(move |c| {
            Box::pin(async move { money::dunning_actions(c, invoice).await })
        })
        .await
    }
}

#[async_trait]
impl<D: Db> AuditStore for SqlStore<D> {
    async fn list_audit_events(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditEvent>> {
        let filter = filter.clone();
        self.read(move |c| {
            Box::pin(async move { services::list_audit_events(c, &filter, page).await })
        })
        .await
    }
}

#[async_trait]
impl<D: Db> IdempotencyStore for SqlStore<D> {
    async fn begin_idempotency(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<IdempotencyBegin> {
        let scope = scope.to_string();
        let key = key.to_string();
        let request_hash = request_hash.to_string();
        self.write(move |c| {
            Box::pin(async move {
                services::begin_idempotency(c, &scope, &key, &request_hash, now, lease_until).await
            })
        })
        .await
    }

    async fn finish_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<bool> {
        let scope = scope.to_string();
        let key = key.to_string();
        let owner = owner.to_string();
        let response = response.clone();
        self.write(move |c| {
            Box::pin(async move {
                services::finish_idempotency(c, &scope, &key, &owner, &response).await
            })
        })
        .await
    }

    async fn abandon_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        now: Timestamp,
    ) -> Result<()> {
        let scope = scope.to_string();
        let key = key.to_string();
        let owner = owner.to_string();
        self.write(move |c| {
            Box::pin(
                async move { services::abandon_idempotency(c, &scope, &key, &owner, now).await },
            )
        })
        .await
    }
}

#[async_trait]
impl<D: Db> Store for SqlStore<D> {
    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.read_statement(move |c| Box::pin(async move { services::ping(c).await }))
            .await
    }

    async fn close(&self) {
        self.db.close().await
    }

    async fn next_counter(&self, name: &str) -> Result<i64> {
        let name = name.to_string();
        self.write(move |c| Box::pin(async move { services::next_counter(c, &name).await }))
            .await
    }
}

#[async_trait]
impl<D: Db> RadiusStore for SqlStore<D> {
    async fn record_accounting(&self, events: Vec<AccountingEvent>) -> Result<Vec<Result<()>>> {
        // Optimistic: the whole batch in one go (a savepoint per event costs a fifth of the
        // writer's time). Should one event fail, the batch is rolled back and recorded
        // again with each event isolated, so that only the failing ones are refused.
        let events = Arc::new(events);
        let all = events.clone();
        let n = events.len();
        let first = self
            .db
            .write(move |c| {
                Box::pin(async move { accounting::record_accounting_all(c, &all).await })
            })
            .await;
        match first {
            Ok(()) => Ok((0..n).map(|_| Ok(())).collect()),
            Err(e) if n <= 1 => Ok(vec![Err(e)]),
            Err(e) => {
                tracing::warn!(error = %e, events = n,
                    "an accounting batch failed; recording its events one by one");
                self.db
                    .write(move |c| {
                        Box::pin(
                            async move { accounting::record_accounting_isolated(c, &events).await },
                        )
                    })
                    .await
            }
        }
    }

    async fn close_stale_sessions(&self, nas_id: NasId, idle_since: Timestamp) -> Result<u64> {
        self.db
            .write(move |c| {
                Box::pin(async move { radius::close_stale_sessions(c, nas_id, idle_since).await })
            })
            .await
    }

    async fn get_session(&self, id: SessionId) -> Result<Option<RadiusSession>> {
        self.read_statement(move |c| Box::pin(async move { radius::get_session(c, id).await }))
            .await
    }

    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        page: Page,
    ) -> Result<Vec<RadiusSession>> {
        let filter = filter.clone();
        self.read_statement(move |c| {
            Box::pin(async move { radius::list_sessions(c, &filter, page).await })
        })
        .await
    }

    async fn set_session_policy(&self, id: SessionId, policy: &str, at: Timestamp) -> Result<()> {
        let policy = policy.to_string();
        self.db
            .write(move |c| {
                Box::pin(async move { radius::set_session_policy(c, id, &policy, at).await })
            })
            .await
    }

    async fn usage_hourly(
        &self,
        subscriber_id: SubscriberId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<HourlyUsage>> {
        self.read(move |c| {
            Box::pin(async move { radius::usage_hourly(c, subscriber_id, from, to).await })
        })
        .await
    }

    async fn directory_services(
        &self,
        after: Option<ServiceId>,
        limit: u32,
    ) -> Result<Vec<DirectoryService>> {
        self.read(move |c| {
            Box::pin(async move { radius::directory_services(c, after, limit).await })
        })
        .await
    }

    async fn directory_services_by_id(&self, ids: &[ServiceId]) -> Result<Vec<DirectoryService>> {
        let ids = ids.to_vec();
        self.read(move |c| Box::pin(async move { radius::directory_services_by_id(c, &ids).await }))
            .await
    }

    async fn directory_cursor(&self) -> Result<ChangeCursor> {
        self.read(|c| Box::pin(async move { radius::directory_cursor(c).await }))
            .await
    }

    async fn directory_changes(&self, after: ChangeCursor, limit: u32) -> Result<ChangeBatch> {
        self.read(move |c| {
            Box::pin(async move { radius::directory_changes(c, after, limit).await })
        })
        .await
    }
}
