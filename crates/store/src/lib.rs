//! The storage port. Use cases talk to a `dyn Store`; the SQL that implements it is written
//! once (`lastmile-store-sql`), each backend crate (SQLite, PostgreSQL) binds it to its driver
//! and has its own migrations, and both pass the same conformance suite (`conformance`, behind
//! the feature of that name).
//!
//! Every method that changes state takes the audit event (and, for service events, the
//! timeline event and provisioning jobs) that belongs to the change and writes all of it in
//! one database transaction: a service change reaches billing, provisioning and the audit
//! trail together or not at all, and the store is where that is kept.

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod ports;
pub mod radius;
pub mod rows;

pub use ports::*;

pub use error::StoreError;

use jiff::Timestamp;
use lastmile_domain::audit::AuditEvent;
use lastmile_domain::billing::account::{
    Account, Allocation, CreditNote, DocumentKind, Payment, Refund,
};
use lastmile_domain::billing::discount::Discount;
use lastmile_domain::billing::dunning::DunningAction;
use lastmile_domain::billing::invoice::{BillingRunError, InvoiceStatus, NewInvoice};
use lastmile_domain::billing::rating::{Invoiced, ServiceHistory};
use lastmile_domain::ids::*;
use lastmile_domain::job::{JobKind, JobStatus, ProvisioningJob};
use lastmile_domain::plan::PlanStatus;
use lastmile_domain::service::{Service, ServiceStatus};
use lastmile_domain::subscriber::{Subscriber, SubscriberStatus};
use lastmile_domain::timeline::TimelineEvent;
use std::collections::{BTreeMap, BTreeSet};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Keyset pagination: items with an id greater than `after`, in id (= creation) order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    pub after: Option<uuid::Uuid>,
    pub limit: u32,
}

#[derive(Clone, Debug, Default)]
pub struct SubscriberFilter {
    /// Case-insensitive substring of name, number or e-mail.
    pub q: Option<String>,
    pub status: Option<SubscriberStatus>,
    /// Exactly this subscriber number.
    pub number: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct PlanFilter {
    pub status: Option<PlanStatus>,
}

#[derive(Clone, Debug, Default)]
pub struct ServiceFilter {
    pub subscriber_id: Option<SubscriberId>,
    pub status: Option<ServiceStatus>,
    pub plan_id: Option<PlanId>,
    pub nas_id: Option<NasId>,
}

/// Whose jobs a claim may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobScope {
    /// Everyone's: the job runner.
    All,
    /// One subscriber's (e.g. to work off one account's queue, or to keep tests that share
    /// a database apart).
    Subscriber(SubscriberId),
}

#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<JobKind>,
    pub service_id: Option<ServiceId>,
    pub subscriber_id: Option<SubscriberId>,
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    pub subscriber_id: Option<SubscriberId>,
    /// Inclusive lower bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
}

#[derive(Clone, Debug, Default)]
pub struct InvoiceFilter {
    pub subscriber_id: Option<SubscriberId>,
    pub status: Option<InvoiceStatus>,
    pub period_start: Option<jiff::civil::Date>,
    /// Exactly this invoice number.
    pub number: Option<String>,
}

/// What billing needs of a subscriber: a light projection (no address, no custom fields), so
/// a run decodes no JSON per subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingSubscriber {
    pub id: SubscriberId,
    pub currency: lastmile_domain::validate::Currency,
    pub billing_day: lastmile_domain::subscriber::BillingDay,
    pub tax_zone: Option<String>,
    pub dunning_policy: Option<String>,
}

impl From<&Subscriber> for BillingSubscriber {
    fn from(s: &Subscriber) -> Self {
        Self {
            id: s.id,
            currency: s.currency.clone(),
            billing_day: s.billing_day,
            tax_zone: s.tax_zone.clone(),
            dunning_policy: s.dunning_policy.clone(),
        }
    }
}

/// Everything a billing run needs to know about one subscriber.
#[derive(Clone, Debug)]
pub struct BillingInput {
    pub subscriber: BillingSubscriber,
    /// Every service the subscriber ever had, with its whole timeline.
    pub services: Vec<ServiceHistory>,
    /// What earlier (not void) invoices charged, one entry per stored line.
    pub invoiced: Vec<Invoiced>,
    /// Period starts that already have an invoice.
    pub invoiced_periods: Vec<jiff::civil::Date>,
    /// The subscriber's discounts (ended ones too: rating rebuilds past periods).
    pub discounts: Vec<Discount>,
}

#[derive(Clone, Debug, Default)]
pub struct PaymentFilter {
    pub subscriber_id: Option<SubscriberId>,
}

#[derive(Clone, Debug, Default)]
pub struct CreditNoteFilter {
    pub subscriber_id: Option<SubscriberId>,
    pub invoice_id: Option<InvoiceId>,
}

/// Issue a draft invoice: the store numbers it in the transaction (gap-free).
#[derive(Clone, Debug)]
pub struct IssueInvoice {
    pub invoice_id: InvoiceId,
    pub issued_at: Timestamp,
    pub due_date: jiff::civil::Date,
    pub number_prefix: String,
}

#[derive(Clone, Debug)]
pub struct VoidInvoice {
    pub invoice_id: InvoiceId,
    pub voided_at: Timestamp,
    pub reason: String,
}

/// A credit note to create; the store numbers it (`number_prefix` + gap-free sequence).
#[derive(Clone, Debug)]
pub struct NewCreditNote {
    pub note: CreditNote,
    pub number_prefix: String,
}

/// Everything that changes a subscriber's money in one transaction, guarded by the
/// account revision: the documents, the allocations they cause, invoices becoming paid,
/// dunning steps and the service changes they (or a payment resuming services) bring.
#[derive(Clone, Debug)]
pub struct AccountChange {
    pub subscriber_id: SubscriberId,
    pub expected_revision: i64,
    pub payment: Option<Payment>,
    pub refund: Option<Refund>,
    pub credit_note: Option<NewCreditNote>,
    pub issue_invoice: Option<IssueInvoice>,
    pub void_invoice: Option<VoidInvoice>,
    pub allocations: Vec<Allocation>,
    /// Issued invoices fully allocated by now.
    pub paid_invoices: Vec<InvoiceId>,
    pub dunning_actions: Vec<DunningAction>,
    pub service_changes: Vec<ServiceChange>,
    /// Jobs not tied to a service change (dunning reminders).
    pub jobs: Vec<ProvisioningJob>,
    pub audit: Vec<AuditEvent>,
}

impl AccountChange {
    pub fn new(account: &Account) -> Self {
        Self {
            subscriber_id: account.subscriber_id,
            expected_revision: account.revision,
            payment: None,
            refund: None,
            credit_note: None,
            issue_invoice: None,
            void_invoice: None,
            allocations: Vec::new(),
            paid_invoices: Vec::new(),
            dunning_actions: Vec::new(),
            service_changes: Vec::new(),
            jobs: Vec::new(),
            audit: Vec::new(),
        }
    }

    /// The documents the change's allocations (both sides) and dunning steps (their invoice)
    /// name, per kind, with the table holding them: a store checks in the transaction that
    /// every one of them is the subscriber's, and refuses the whole change otherwise. Also
    /// refused here: an allocation or a step that names another subscriber outright.
    pub fn named_documents(&self) -> Result<Vec<(DocumentKind, &'static str, Vec<uuid::Uuid>)>> {
        let foreign = || StoreError::NotFound {
            entity: "document of this subscriber",
        };
        let mut named: BTreeMap<DocumentKind, BTreeSet<uuid::Uuid>> = BTreeMap::new();
        for a in &self.allocations {
            if a.subscriber_id != self.subscriber_id {
                return Err(foreign());
            }
            for d in [a.credit, a.debit] {
                named.entry(d.kind).or_default().insert(d.id);
            }
        }
        for d in &self.dunning_actions {
            if d.subscriber_id != self.subscriber_id {
                return Err(foreign());
            }
            named
                .entry(DocumentKind::Invoice)
                .or_default()
                .insert(d.invoice_id.0);
        }
        Ok(named
            .into_iter()
            .map(|(kind, ids)| {
                let table = match kind {
                    DocumentKind::Invoice => "invoices",
                    DocumentKind::CreditNote => "credit_notes",
                    DocumentKind::Payment => "payments",
                    DocumentKind::Refund => "refunds",
                };
                (kind, table, ids.into_iter().collect())
            })
            .collect())
    }
}

/// The outcome of a write that is queued already: it resolves once the write has committed
/// (or failed).
pub type Pending<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

/// One batch of a billing run, committed atomically.
#[derive(Clone, Debug)]
pub struct BillingBatch {
    pub run: BillingRunId,
    pub invoices: Vec<NewInvoice>,
    /// The last subscriber of the batch: the run resumes after it.
    pub cursor: SubscriberId,
    pub subscribers: i64,
    pub errors: Vec<BillingRunError>,
    /// Invoice numbers are `prefix` + a zero-padded gap-free sequence.
    pub number_prefix: String,
}

/// A stored API token. The token itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub operator_id: OperatorId,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A service business event: everything that must land together (the service row, its
/// timeline event, the audit event and the provisioning jobs).
#[derive(Clone, Debug)]
pub struct ServiceChange {
    /// The service row after the event (the timeline's projection as of now), with
    /// `revision = expected_revision + 1`.
    pub service: Service,
    pub expected_revision: i64,
    pub event: TimelineEvent,
    pub audit: AuditEvent,
    pub jobs: Vec<ProvisioningJob>,
}

/// The response kept for an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// How long a reservation of an idempotency key belongs to the request that took it. A
/// request runs far shorter than this; a reservation still in progress when its lease has
/// passed belongs to a request whose process died (crash, SIGKILL, power loss), and a retry
/// may take it over. Time-based because several nodes share one database: no node can tell
/// whether another is still alive.
pub const IDEMPOTENCY_LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// What the business transaction of an idempotent request committed, recorded on its key in
/// that same transaction: enough to rebuild the response if the process died before storing
/// it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyCommit {
    /// The audit event that marked the key (the request's first of its entity type).
    pub audit_event_id: uuid::Uuid,
    /// The audit event's entity (`subscriber`, `service`, `payment` …) and id.
    pub entity_type: String,
    pub entity_id: String,
    pub subscriber_id: Option<uuid::Uuid>,
    /// For a service business event: the timeline event and the provisioning jobs it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_event_id: Option<uuid::Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub job_ids: Vec<uuid::Uuid>,
}

/// Outcome of reserving an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use, or a takeover of a dead request's reservation that committed nothing: the
    /// caller runs the request (inside [`IDEMPOTENT_REQUEST`] with this `owner`) and then calls
    /// `finish_idempotency`.
    Reserved { owner: String },
    /// Seen before with the same request: replay this response.
    Replay(StoredResponse),
    /// Seen before with a different request.
    Mismatch,
    /// The first request with this key is still being processed (its lease is live).
    InProgress,
    /// A dead request's reservation whose business transaction committed, but whose response
    /// was never stored: the caller (now `owner`) rebuilds the response from `commit` and
    /// stores it with `finish_idempotency`. The request must not run again.
    Recover {
        owner: String,
        commit: IdempotencyCommit,
    },
}

/// The idempotent request the current task is processing. The HTTP middleware runs the
/// request inside `IDEMPOTENT_REQUEST.scope(…)`; every backend, in the transaction where it
/// inserts an audit event of `entity_type` (any type when `None`), records on the key that the
/// change committed (`IdempotencyCommit`), guarded by `owner`: if a retry took the
/// reservation over meanwhile, the business transaction fails with `Stale` instead of
/// committing a second time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub scope: String,
    pub key: String,
    pub owner: String,
    /// The entity the request's success response is about.
    pub entity_type: Option<String>,
}

tokio::task_local! {
    /// See [`IdempotentRequest`]. Not inherited by spawned tasks: background work started by
    /// a request (a billing run) never marks its key.
    pub static IDEMPOTENT_REQUEST: IdempotentRequest;
}

/// The idempotent request of the current task, if any.
pub fn idempotent_request() -> Option<IdempotentRequest> {
    IDEMPOTENT_REQUEST.try_with(Clone::clone).ok()
}

/// How a job attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// `summary` is what was done, stored as the job's `last_result`.
    Succeeded { summary: String },
    /// Failed; retried at `retry_at`, or failed for good when `None`. `error` is stored as
    /// both `last_error` and `last_result`.
    Failed {
        error: String,
        retry_at: Option<Timestamp>,
    },
}

impl JobOutcome {
    pub fn succeeded(summary: impl Into<String>) -> Self {
        Self::Succeeded {
            summary: summary.into(),
        }
    }

    /// The text stored as `last_result`.
    pub fn result(&self) -> &str {
        match self {
            Self::Succeeded { summary } => summary,
            Self::Failed { error, .. } => error,
        }
    }
}
