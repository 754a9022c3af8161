//! The backend-independent conformance suite: every [`Store`] implementation must pass it.
//!
//! Each case is a `pub async fn <case>(store: Arc<dyn Store>)` that panics on a violation.
//! A backend's integration test runs them all with one line:
//!
//! ```text
//! lastmile_store::conformance_suite!(my_backend_test_store());
//! ```
//!
//! where the expression is awaited once per case and yields anything implementing
//! [`TestStore`]: an `Arc<dyn Store>`, an `Option` of one (`None` skips the case, e.g. when no
//! PostgreSQL server can be started), or a backend's own guard type that cleans up on drop.
//!
//! The cases do not assume an empty database: everything they create carries a random tag
//! (names, numbers, usernames, job kinds, actor ids, idempotency scopes, counter names), and
//! listings are checked through filters that only match the case's own rows. So a backend may
//! hand out one database per case or share one between cases.
//!
//! Timestamps are fixed values around [`t0`] with whole seconds (stores keep microseconds).

use crate::*;
use jiff::civil::Date;
use jiff::SignedDuration;
use lastmile_domain::audit::Actor;
use lastmile_domain::auth::Operator;
use lastmile_domain::auth::Role;
use lastmile_domain::billing::account::{Account, CreditNote, LedgerEntry, Payment, Refund};
use lastmile_domain::billing::account::{
    Credit, Debit, DocumentKind, DocumentRef, LedgerEntryKind, PaymentMethod,
};
use lastmile_domain::billing::discount::DiscountValue;
use lastmile_domain::billing::dunning::DunningStep;
use lastmile_domain::billing::dunning::{DunningActionKind, DunningPolicy};
use lastmile_domain::billing::invoice::{BillingRun, Invoice};
use lastmile_domain::billing::invoice::{BillingRunStatus, InvoiceLine};
use lastmile_domain::billing::rating::{ChargeKey, ChargeKind};
use lastmile_domain::billing::tax::TaxZone;
use lastmile_domain::billing::tax::{AppliedTax, Rate, Tax};
use lastmile_domain::nas::Nas;
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::plan::{BillingInterval, Burst, CapPolicy, FreeWindow, PlanTerms};
use lastmile_domain::plan::{Plan, PlanVersion};
use lastmile_domain::service::{AccessKind, SuspensionCause};
use lastmile_domain::subscriber::{Address, BillingDay, SubscriberNumber};
use lastmile_domain::timeline::{EventKind, ServiceState};
use lastmile_domain::validate::Currency;
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

// The harness -------------------------------------------------------------------------------

/// What a backend's test helper hands the suite for one case. The value is kept alive until
/// the case has finished, so a guard (temporary file, throwaway database) may clean up in
/// `Drop`.
pub trait TestStore {
    /// The store to test, or `None` to skip the case (backend not available here).
    fn store(&self) -> Option<Arc<dyn Store>>;
}

impl TestStore for Arc<dyn Store> {
    fn store(&self) -> Option<Arc<dyn Store>> {
        Some(self.clone())
    }
}

impl<S: Store> TestStore for Arc<S> {
    fn store(&self) -> Option<Arc<dyn Store>> {
        Some(self.clone())
    }
}

impl<T: TestStore> TestStore for Option<T> {
    fn store(&self) -> Option<Arc<dyn Store>> {
        self.as_ref().and_then(T::store)
    }
}

/// Expands into one `#[tokio::test]` per conformance case. `$make` is an expression awaited
/// once per case, yielding a [`TestStore`](crate::conformance::TestStore). The calling crate
/// needs `tokio` (with `macros` and `rt-multi-thread`) among its dev-dependencies.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@cases ($make)
            backend_and_ping,
            subscriber_insert_get_update,
            subscriber_stale_update_writes_nothing,
            subscriber_duplicate_number,
            subscriber_search,
            subscriber_search_treats_wildcards_literally,
            subscriber_status_filter,
            subscriber_keyset_pagination,
            plan_versions,
            plan_stale_update_writes_nothing,
            plan_duplicate_code,
            plan_list_filter_and_pagination,
            nas_insert_update_delete,
            nas_duplicate_ip,
            nas_delete_in_use,
            service_insert_get_list,
            service_username_reusable_after_termination,
            service_static_ip_reusable_after_termination,
            service_mac_address_reusable_after_termination,
            record_service_change_writes_everything,
            record_service_change_stale_writes_nothing,
            record_service_change_rolls_back_on_failure,
            record_service_change_concurrent_single_winner,
            service_timeline_order_and_initial_plan,
            jobs_list_filters,
            claim_jobs_selects_due_jobs_of_kinds,
            claim_jobs_concurrent_claimers_disjoint,
            claim_jobs_reclaims_expired_lease,
            finish_job_success,
            finish_job_retry,
            finish_job_final_failure_and_requeue,
            finish_job_ignores_stale_attempt,
            audit_filters,
            audit_pagination,
            idempotency_lifecycle,
            idempotency_abandon,
            idempotency_expiry,
            idempotency_takeover_after_lease_expiry,
            idempotency_commit_marked_with_the_business_write,
            idempotency_concurrent_begin,
            idempotency_concurrent_takeover_once,
            next_counter_increments_per_name,
            operator_tokens,
            billing_plan_catalog,
            billing_inputs_pages_subscribers_with_history,
            billing_runs_insert_get_list,
            billing_run_unfinished_and_single_running,
            queued_billing_batches_commit_in_queue_order,
            commit_billing_batch_numbers_and_progress,
            commit_billing_batch_concurrent_runs,
            commit_billing_batch_dangling_reference_writes_nothing,
            invoices_get_and_list_filters,
            tax_zones_insert_get_list_update,
            dunning_policies_single_default,
            billing_inputs_skip_subscribers_invoiced_for_the_period,
            discounts_and_billing_input,
            draft_invoices_take_a_number_when_issued,
            void_invoice_frees_its_period,
            account_debits_credits_and_documents,
            account_change_stale_or_duplicate_writes_nothing,
            credit_notes_numbered_gap_free,
            ledger_chronological_with_signs,
            account_change_with_service_changes_and_jobs,
            dunning_actions_recorded_once,
            overdue_subscribers_lists_unpaid_past_due,
            subscribers_with_credit_lists_unallocated_credit,
            payments_unallocated_as_their_accounts_read_them,
            billing_runs_scoped_to_one_subscriber,
            account_change_concurrent_single_winner,
            issue_and_bill_concurrently_gap_free,
            settings_put_get_stale,
            account_change_refuses_documents_of_another_subscriber,
            closing_a_subscriber_and_adding_a_service_exclude_each_other,
            zero_and_negative_invoices_settle_like_any_document,
            dunning_steps_passed_over_count_as_taken,
            subscriber_search_matches_phone_and_services,
            subscriber_search_pages_through_own_and_service_matches,
            radius_accounting_start_interim_stop,
            radius_accounting_batch_equals_one_by_one,
            radius_usage_split_by_clock_hour,
            radius_accounting_batch_isolates_a_failing_event,
            radius_accounting_on_closes_the_nas_sessions,
            radius_stale_sessions_close_and_reopen,
            radius_sessions_list_filters_and_policy,
            radius_directory_loads_services_with_terms,
            radius_change_feed_reports_services_and_nas,
        );
    };
    (@cases ($make:expr) $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                // Kept alive (and dropped) after the case: it may be a cleanup guard.
                let made = $make.await;
                match $crate::conformance::TestStore::store(&made) {
                    Some(store) => $crate::conformance::$case(store).await,
                    None => eprintln!(
                        "conformance case `{}` skipped: backend not available",
                        stringify!($case)
                    ),
                }
            }
        )*
    };
}

mod radius;
pub use radius::*;

// Values ------------------------------------------------------------------------------------

/// The suite's reference instant (2025-06-15T15:06:40Z).
pub fn t0() -> Timestamp {
    Timestamp::from_second(1_750_000_000).expect("valid timestamp")
}

/// `t0` plus `secs` seconds.
pub fn t(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

/// A random 64-bit value (std's randomly keyed hasher; no extra dependency).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Uuid::now_v7().as_u128());
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random lower-case hex tag (16 characters) that makes a case's rows its own.
fn tag() -> String {
    format!("{:016x}", random_u64())
}

fn unique_ipv4() -> IpAddr {
    let [a, b, c, ..] = random_u64().to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, a, b, c))
}

fn unique_ipv6() -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(
        0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | u128::from(random_u64()),
    ))
}

fn unique_mac() -> String {
    let b = random_u64().to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

fn actor() -> Actor {
    Actor {
        id: "operator:conformance".into(),
        name: "Conformance Suite".into(),
    }
}

/// An audit event for `entity` with `after` as its snapshot.
fn audit_of<A: serde::Serialize>(
    at: Timestamp,
    subscriber_id: Option<SubscriberId>,
    entity_type: &str,
    entity_id: impl ToString,
    action: &str,
    after: &A,
) -> AuditEvent {
    AuditEvent::new::<(), A>(
        at,
        &actor(),
        subscriber_id,
        entity_type,
        entity_id,
        action,
        None,
        Some(after),
    )
}

fn subscriber(number: &str, name: &str, email: Option<&str>) -> Subscriber {
    let mut custom = serde_json::Map::new();
    custom.insert("vlan".into(), json!(120));
    custom.insert("tags".into(), json!(["business", "priority"]));
    custom.insert("note".into(), json!("Zürich ✓ \"quoted\""));
    Subscriber {
        id: SubscriberId::generate(),
        number: SubscriberNumber::parse(number).expect("valid subscriber number"),
        name: name.into(),
        email: email.map(str::to_string),
        phone: Some("+41 44 555 01 00".into()),
        billing_address: Address {
            line1: Some("Bahnhofstrasse 1".into()),
            line2: None,
            city: Some("Zürich".into()),
            postal_code: Some("8001".into()),
            region: Some("ZH".into()),
            country: Some("CH".into()),
        },
        currency: Currency::parse("CHF").expect("currency"),
        tax_zone: Some("ch-standard".into()),
        dunning_policy: None,
        billing_day: BillingDay::new(5).expect("billing day"),
        status: SubscriberStatus::Active,
        custom_fields: custom,
        created_at: t0(),
        updated_at: t0(),
        revision: 1,
    }
}

/// A unique subscriber number.
fn number() -> String {
    format!("C-{}", tag())
}

fn named(name: &str) -> Subscriber {
    subscriber(&number(), name, None)
}

async fn add_subscriber(store: &dyn Store, s: &Subscriber) {
    store
        .insert_subscriber(
            s,
            &audit_of(t0(), Some(s.id), "subscriber", s.id, "subscriber.create", s),
        )
        .await
        .expect("insert_subscriber");
}

/// `s` with `change` applied, the next revision and `updated_at = at`.
fn revised(s: &Subscriber, at: Timestamp, change: impl FnOnce(&mut Subscriber)) -> Subscriber {
    let mut next = s.clone();
    change(&mut next);
    next.updated_at = at;
    next.revision = s.revision + 1;
    next
}

fn terms(price_minor: i64) -> PlanTerms {
    PlanTerms {
        download_kbps: 100_000,
        upload_kbps: 20_000,
        burst: Some(Burst {
            download_kbps: 150_000,
            upload_kbps: 30_000,
            threshold_download_kbps: 80_000,
            threshold_upload_kbps: 16_000,
            time_secs: 16,
        }),
        price_minor,
        currency: Currency::parse("CHF").expect("currency"),
        billing_interval: BillingInterval::Monthly,
        setup_fee_minor: 9_900,
        data_cap_bytes: Some(500_000_000_000),
        cap_policy: CapPolicy::Throttle {
            download_kbps: 2_000,
            upload_kbps: 1_000,
        },
        free_window: Some(FreeWindow {
            start_minute: 120,
            end_minute: 360,
        }),
        contract_months: 12,
        early_termination_fee_minor: 15_000,
        tax_class: "standard".into(),
    }
}

fn plan(code: &str) -> Plan {
    let id = PlanId::generate();
    Plan {
        id,
        code: code.into(),
        name: format!("Fibre 100 ({code})"),
        status: PlanStatus::Active,
        created_at: t0(),
        updated_at: t0(),
        revision: 1,
        current: PlanVersion {
            id: PlanVersionId::generate(),
            plan_id: id,
            version: 1,
            terms: terms(4_900),
            created_at: t0(),
        },
    }
}

/// A unique plan code.
fn code() -> String {
    format!("P-{}", tag().to_uppercase())
}

async fn add_plan(store: &dyn Store, p: &Plan) {
    store
        .insert_plan(p, &audit_of(t0(), None, "plan", p.id, "plan.create", p))
        .await
        .expect("insert_plan");
}

/// `p` with a new current version (the next number) with `terms`, and the next revision.
fn new_version(p: &Plan, at: Timestamp, terms: PlanTerms) -> Plan {
    let mut next = p.clone();
    next.current = PlanVersion {
        id: PlanVersionId::generate(),
        plan_id: p.id,
        version: p.current.version + 1,
        terms,
        created_at: at,
    };
    next.updated_at = at;
    next.revision = p.revision + 1;
    next
}

fn nas(ip: IpAddr) -> Nas {
    Nas {
        id: NasId::generate(),
        name: format!("core-{ip}"),
        ip,
        secret_ciphertext: vec![0, 1, 2, 127, 128, 254, 255],
        vendor: VendorProfile::Mikrotik,
        coa_port: 3799,
        api_url: Some("https://192.0.2.1/rest".into()),
        api_username: Some("lastmile".into()),
        api_password_ciphertext: Some(vec![9, 8, 7, 0, 255]),
        require_message_authenticator: true,
        interim_interval_secs: 300,
        session_timeout_secs: None,
        suspended_action: Default::default(),
        stale_session_multiplier: 3,
        created_at: t0(),
        updated_at: t0(),
        revision: 1,
    }
}

async fn add_nas(store: &dyn Store, n: &Nas) {
    store
        .insert_nas(n, &audit_of(t0(), None, "nas", n.id, "nas.create", n))
        .await
        .expect("insert_nas");
}

/// A pending PPPoE service with a unique username.
fn service(sub: &Subscriber, plan: &Plan, nas: Option<&Nas>) -> Service {
    Service {
        id: ServiceId::generate(),
        subscriber_id: sub.id,
        plan_id: plan.id,
        plan_version_id: plan.current.id,
        status: ServiceStatus::Pending,
        suspension_cause: None,
        service_address: Address {
            line1: Some("Flat 2, 5 Tower Road".into()),
            line2: None,
            city: Some("Leeds".into()),
            postal_code: Some("LS1 1AA".into()),
            region: None,
            country: Some("GB".into()),
        },
        access_kind: AccessKind::Pppoe,
        username: Some(format!("user-{}@isp.example", tag())),
        password_ciphertext: Some(vec![0, 1, 2, 254, 255]),
        mac_address: None,
        circuit_id: None,
        static_ip: None,
        ip_pool: Some("residential".into()),
        nas_id: nas.map(|n| n.id),
        simultaneous_use: 1,
        created_at: t0(),
        updated_at: t0(),
        revision: 1,
    }
}

fn service_audit(s: &Service) -> AuditEvent {
    audit_of(
        t0(),
        Some(s.subscriber_id),
        "service",
        s.id,
        "service.create",
        s,
    )
}

/// Inserts `s`; returns the audit event written with it.
async fn add_service(store: &dyn Store, s: &Service) -> AuditEvent {
    let a = service_audit(s);
    store.insert_service(s, &a).await.expect("insert_service");
    a
}

/// A subscriber, a plan and a NAS, stored.
struct World {
    sub: Subscriber,
    plan: Plan,
    nas: Nas,
}

async fn world(store: &dyn Store) -> World {
    let w = World {
        sub: named("World Subscriber"),
        plan: plan(&code()),
        nas: nas(unique_ipv4()),
    };
    add_subscriber(store, &w.sub).await;
    add_plan(store, &w.plan).await;
    add_nas(store, &w.nas).await;
    w
}

/// A new pending service of the world's subscriber on its plan and NAS, stored.
async fn new_service(store: &dyn Store, w: &World) -> Service {
    let s = service(&w.sub, &w.plan, Some(&w.nas));
    add_service(store, &s).await;
    s
}

/// The timeline event `kind`, recorded as number `seq` of `before`'s timeline.
fn event(
    before: &Service,
    seq: i64,
    kind: EventKind,
    effective_at: Timestamp,
    recorded_at: Timestamp,
) -> TimelineEvent {
    TimelineEvent {
        id: ServiceEventId::generate(),
        service_id: before.id,
        subscriber_id: before.subscriber_id,
        seq,
        kind,
        effective_at,
        recorded_at,
        plan_id: None,
        plan_version_id: None,
        suspension_cause: (kind == EventKind::Suspended).then_some(SuspensionCause::Operator),
        reason: Some(format!("conformance {kind}")),
        actor: actor().name,
    }
}

/// The business event `kind` (recording number `seq`) applied to `before`: the service row
/// after it, the timeline event, the audit event, and `jobs`.
fn change(
    before: &Service,
    seq: i64,
    kind: EventKind,
    effective_at: Timestamp,
    recorded_at: Timestamp,
    jobs: Vec<ProvisioningJob>,
) -> ServiceChange {
    apply(
        before,
        event(before, seq, kind, effective_at, recorded_at),
        jobs,
    )
}

/// A `plan_changed` event to `to` applied to `before`.
fn plan_change(
    before: &Service,
    seq: i64,
    to: &Plan,
    effective_at: Timestamp,
    recorded_at: Timestamp,
) -> ServiceChange {
    let mut e = event(
        before,
        seq,
        EventKind::PlanChanged,
        effective_at,
        recorded_at,
    );
    e.plan_id = Some(to.id);
    e.plan_version_id = Some(to.current.id);
    apply(before, e, vec![])
}

fn apply(before: &Service, event: TimelineEvent, jobs: Vec<ProvisioningJob>) -> ServiceChange {
    let state = ServiceState {
        status: before.status,
        plan_id: before.plan_id,
        plan_version_id: before.plan_version_id,
        suspension_cause: before.suspension_cause,
    }
    .apply(&event)
    .expect("the suite only records legal transitions");
    let mut after = before.clone();
    after.status = state.status;
    after.plan_id = state.plan_id;
    after.plan_version_id = state.plan_version_id;
    after.suspension_cause = state.suspension_cause;
    after.updated_at = event.recorded_at;
    after.revision = before.revision + 1;
    let audit = AuditEvent::new(
        event.recorded_at,
        &actor(),
        Some(before.subscriber_id),
        "service",
        before.id,
        &format!("service.{}", event.kind.action()),
        Some(before),
        Some(&after),
    )
    .with_reason(event.reason.clone());
    ServiceChange {
        service: after,
        expected_revision: before.revision,
        event,
        audit,
        jobs,
    }
}

/// Records `c`, which must succeed; returns the service after it.
async fn record(store: &dyn Store, c: &ServiceChange) -> Service {
    store
        .record_service_change(c)
        .await
        .expect("record_service_change");
    c.service.clone()
}

/// A pending job of `kind`, due at `run_after`.
fn job(
    kind: &JobKind,
    subscriber_id: Option<SubscriberId>,
    service_id: Option<ServiceId>,
    run_after: Timestamp,
) -> ProvisioningJob {
    let mut j = ProvisioningJob::new(
        t0(),
        *kind,
        subscriber_id,
        service_id,
        json!({"service_id": service_id, "rate": "100M/20M", "attributes": [1, 2, 3]}),
    );
    j.run_after = run_after;
    j
}

/// Stores `jobs` by activating a new service of the world (jobs are only ever written with a
/// business event). `make` gets the new service.
async fn enqueue(
    store: &dyn Store,
    w: &World,
    make: impl FnOnce(&Service) -> Vec<ProvisioningJob>,
) -> Vec<ProvisioningJob> {
    let s = new_service(store, w).await;
    let jobs = make(&s);
    record(
        store,
        &change(&s, 1, EventKind::Activated, t0(), t0(), jobs.clone()),
    )
    .await;
    jobs
}

/// `j` as a claim at `now` with lease `lease_until` leaves it.
fn claimed(j: &ProvisioningJob, now: Timestamp, lease_until: Timestamp) -> ProvisioningJob {
    let mut c = j.clone();
    c.status = JobStatus::Running;
    c.attempts += 1;
    c.locked_until = Some(lease_until);
    c.updated_at = now;
    c
}

async fn job_of(store: &dyn Store, id: JobId) -> ProvisioningJob {
    store
        .get_job(id)
        .await
        .expect("get_job")
        .expect("job exists")
}

// Assertions --------------------------------------------------------------------------------

const ALL: Page = Page {
    after: None,
    limit: 1_000,
};

fn page(after: Option<Uuid>, limit: u32) -> Page {
    Page { after, limit }
}

fn expect_stale<T: Debug>(r: Result<T>, entity: &str) {
    match r {
        Err(StoreError::Stale { entity: e }) if e == entity => {}
        other => panic!("expected Stale {{ entity: {entity:?} }}, got {other:?}"),
    }
}

fn expect_duplicate<T: Debug>(r: Result<T>, entity: &str, field: &str) {
    match r {
        Err(StoreError::Duplicate {
            entity: e,
            field: f,
        }) if e == entity && f == field => {}
        other => {
            panic!("expected Duplicate {{ entity: {entity:?}, field: {field:?} }}, got {other:?}")
        }
    }
}

async fn audits(store: &dyn Store, entity_id: impl ToString) -> Vec<AuditEvent> {
    store
        .list_audit_events(
            &AuditFilter {
                entity_id: Some(entity_id.to_string()),
                ..Default::default()
            },
            ALL,
        )
        .await
        .expect("list_audit_events")
}

fn audit_ids(events: &[AuditEvent]) -> Vec<AuditEventId> {
    events.iter().map(|e| e.id).collect()
}

fn sub_ids(v: &[Subscriber]) -> Vec<SubscriberId> {
    v.iter().map(|s| s.id).collect()
}

fn svc_ids(v: &[Service]) -> Vec<ServiceId> {
    v.iter().map(|s| s.id).collect()
}

fn job_ids(v: &[ProvisioningJob]) -> Vec<JobId> {
    v.iter().map(|j| j.id).collect()
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn sorted_jobs(mut v: Vec<ProvisioningJob>) -> Vec<ProvisioningJob> {
    v.sort_by_key(|j| j.id);
    v
}

async fn search(
    store: &dyn Store,
    q: Option<&str>,
    status: Option<SubscriberStatus>,
) -> Vec<Subscriber> {
    store
        .list_subscribers(
            &SubscriberFilter {
                q: q.map(str::to_string),
                status,
                number: None,
            },
            ALL,
        )
        .await
        .expect("list_subscribers")
}

async fn list_svcs(store: &dyn Store, filter: ServiceFilter) -> Vec<ServiceId> {
    svc_ids(
        &store
            .list_services(&filter, ALL)
            .await
            .expect("list_services"),
    )
}

async fn list_job_ids(store: &dyn Store, filter: JobFilter) -> Vec<JobId> {
    job_ids(&store.list_jobs(&filter, ALL).await.expect("list_jobs"))
}

/// Claims `sub`'s jobs of `kinds` (cases share a database: each claims only its own).
async fn claim(
    store: &dyn Store,
    sub: SubscriberId,
    kinds: &[JobKind],
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Vec<ProvisioningJob> {
    sorted_jobs(
        store
            .claim_jobs(kinds, JobScope::Subscriber(sub), now, lease_until, limit)
            .await
            .expect("claim_jobs"),
    )
}

// Cases: basics -----------------------------------------------------------------------------

pub async fn backend_and_ping(store: Arc<dyn Store>) {
    assert!(
        matches!(store.backend(), "sqlite" | "postgres"),
        "unexpected backend name {:?}",
        store.backend()
    );
    store.ping().await.expect("ping");
}

// Cases: subscribers ------------------------------------------------------------------------

pub async fn subscriber_insert_get_update(store: Arc<dyn Store>) {
    let store = &*store;
    let s = subscriber(&number(), "Ada Lovelace", Some("ada@example.org"));
    let create = audit_of(
        t0(),
        Some(s.id),
        "subscriber",
        s.id,
        "subscriber.create",
        &s,
    );
    store.insert_subscriber(&s, &create).await.unwrap();
    assert_eq!(store.get_subscriber(s.id).await.unwrap(), Some(s.clone()));
    assert_eq!(
        store
            .get_subscriber(SubscriberId::generate())
            .await
            .unwrap(),
        None
    );

    // Stores keep microseconds.
    let s2 = revised(&s, t(60) + SignedDuration::from_micros(123_456), |s| {
        s.name = "Ada King, Countess of Lovelace".into();
        s.email = None;
        s.phone = None;
        s.tax_zone = None;
        s.dunning_policy = Some("strict «30»".into());
        s.billing_day = BillingDay::new(28).unwrap();
        s.status = SubscriberStatus::Suspended;
        s.billing_address.line2 = Some("c/o Babbage".into());
        s.custom_fields.insert("vlan".into(), json!(121));
        s.custom_fields.remove("tags");
        s.custom_fields
            .insert("nested".into(), json!({"a": {"b": [true, null, -5]}}));
    });
    let update = AuditEvent::new(
        t(60),
        &actor(),
        Some(s.id),
        "subscriber",
        s.id,
        "subscriber.update",
        Some(&s),
        Some(&s2),
    )
    .with_reason(Some("married".into()));
    store.update_subscriber(&s2, 1, &update).await.unwrap();
    assert_eq!(store.get_subscriber(s.id).await.unwrap(), Some(s2.clone()));

    // Both audit events, exactly as given, in order.
    let events = store
        .list_audit_events(
            &AuditFilter {
                entity_type: Some("subscriber".into()),
                entity_id: Some(s.id.to_string()),
                ..Default::default()
            },
            ALL,
        )
        .await
        .unwrap();
    assert_eq!(events, vec![create, update]);
}

pub async fn subscriber_stale_update_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let s = named("Stale Subscriber");
    add_subscriber(store, &s).await;
    let s2 = revised(&s, t(10), |s| s.name = "First Writer".into());
    let a2 = audit_of(
        t(10),
        Some(s.id),
        "subscriber",
        s.id,
        "subscriber.update",
        &s2,
    );
    store.update_subscriber(&s2, 1, &a2).await.unwrap();

    // A second writer that read revision 1.
    let stale = revised(&s, t(20), |s| {
        s.name = "Second Writer".into();
        s.status = SubscriberStatus::Closed;
    });
    let a3 = audit_of(
        t(20),
        Some(s.id),
        "subscriber",
        s.id,
        "subscriber.update",
        &stale,
    );
    expect_stale(store.update_subscriber(&stale, 1, &a3).await, "subscriber");
    // A revision from the future is just as stale.
    expect_stale(store.update_subscriber(&stale, 7, &a3).await, "subscriber");

    assert_eq!(store.get_subscriber(s.id).await.unwrap(), Some(s2));
    let events = audits(store, s.id).await;
    assert_eq!(events.len(), 2, "no audit event for a stale update");
    assert!(!audit_ids(&events).contains(&a3.id));

    // Updating a subscriber that does not exist writes nothing either.
    let ghost = named("Ghost");
    let a4 = audit_of(
        t(30),
        Some(ghost.id),
        "subscriber",
        ghost.id,
        "subscriber.update",
        &ghost,
    );
    let r = store.update_subscriber(&ghost, 1, &a4).await;
    assert!(
        matches!(
            r,
            Err(StoreError::Stale { .. }) | Err(StoreError::NotFound { .. })
        ),
        "update of a missing subscriber: {r:?}"
    );
    assert_eq!(store.get_subscriber(ghost.id).await.unwrap(), None);
    assert!(audits(store, ghost.id).await.is_empty());
}

pub async fn subscriber_duplicate_number(store: Arc<dyn Store>) {
    let store = &*store;
    let n = number();
    let a = subscriber(&n, "First Holder", None);
    add_subscriber(store, &a).await;

    let b = subscriber(&n, "Second Holder", None);
    let r = store
        .insert_subscriber(
            &b,
            &audit_of(
                t0(),
                Some(b.id),
                "subscriber",
                b.id,
                "subscriber.create",
                &b,
            ),
        )
        .await;
    expect_duplicate(r, "subscriber", "number");
    assert_eq!(store.get_subscriber(b.id).await.unwrap(), None);
    assert!(
        audits(store, b.id).await.is_empty(),
        "no audit for a failed insert"
    );

    // Renumbering another subscriber onto a taken number fails the same way.
    let c = named("Third Holder");
    add_subscriber(store, &c).await;
    let c2 = revised(&c, t(5), |c| {
        c.number = SubscriberNumber::parse(&n).unwrap()
    });
    let r = store
        .update_subscriber(
            &c2,
            1,
            &audit_of(
                t(5),
                Some(c.id),
                "subscriber",
                c.id,
                "subscriber.update",
                &c2,
            ),
        )
        .await;
    expect_duplicate(r, "subscriber", "number");
    assert_eq!(store.get_subscriber(c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(audits(store, c.id).await.len(), 1);
    assert_eq!(store.get_subscriber(a.id).await.unwrap(), Some(a));
}

pub async fn subscriber_search(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let up = tag.to_uppercase();
    let by_name = subscriber(&format!("A-{up}"), &format!("Hedy LAMARR{up}"), None);
    let by_email = subscriber(
        &format!("B-{up}"),
        "Grace Hopper",
        Some(&format!("Grace.{up}@Example.ORG")),
    );
    let by_number = subscriber(
        &format!("N{up}X"),
        "Katherine Johnson",
        Some("kj@example.org"),
    );
    let other = subscriber(
        &format!("D-{up}"),
        "Margaret Hamilton",
        Some("mh@example.org"),
    );
    // Non-ASCII letters: case-insensitivity is only promised for ASCII (SQLite's lower() knows
    // no other), but a substring in its stored case always matches.
    let accented = subscriber(&format!("E-{up}"), &format!("Jürgen Öhler {tag}"), None);
    for s in [&by_name, &by_email, &by_number, &other, &accented] {
        add_subscriber(store, s).await;
    }

    let q = |s: String| async move { sub_ids(&search(store, Some(&s), None).await) };
    // Name, e-mail and number, each case-insensitively in both directions.
    assert_eq!(q(format!("lamarr{tag}")).await, vec![by_name.id]);
    assert_eq!(q(format!("LaMaRr{tag}")).await, vec![by_name.id]);
    assert_eq!(q(format!("y lamarr{tag}")).await, vec![by_name.id]);
    assert_eq!(
        q(format!("grace.{tag}@example.org")).await,
        vec![by_email.id]
    );
    assert_eq!(q(format!("n{tag}x")).await, vec![by_number.id]);
    assert_eq!(q(format!("N{up}X")).await, vec![by_number.id]);
    assert_eq!(q(format!("Öhler {tag}")).await, vec![accented.id]);
    assert_eq!(q(format!("jürgen ÖHLER {up}")).await, vec![accented.id]);
    // The tag is in every number: all of them, in id order.
    assert_eq!(
        q(tag.clone()).await,
        sorted(&[by_name.id, by_email.id, by_number.id, other.id, accented.id])
    );
    assert_eq!(q(format!("{tag}-nobody")).await, vec![]);

    // Whole rows come back.
    let found = search(store, Some(&format!("lamarr{tag}")), None).await;
    assert_eq!(found, vec![by_name]);
}

pub async fn subscriber_search_treats_wildcards_literally(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let percent = named(&format!("Promo 50%_off {tag}"));
    let letters = named(&format!("Promo 50xyoff {tag}"));
    let backslash = named(&format!("Path a\\b {tag}"));
    let plain = named(&format!("Path ab {tag}"));
    for s in [&percent, &letters, &backslash, &plain] {
        add_subscriber(store, s).await;
    }
    let q = |s: String| async move { sub_ids(&search(store, Some(&s), None).await) };
    assert_eq!(q(format!("50%_off {tag}")).await, vec![percent.id]);
    assert_eq!(q(format!("50__off {tag}")).await, vec![]);
    assert_eq!(q(format!("50%off {tag}")).await, vec![]);
    assert_eq!(q(format!("%{tag}")).await, vec![]);
    assert_eq!(q(format!("{tag}%")).await, vec![]);
    assert_eq!(q(format!("_{tag}")).await, vec![]);
    assert_eq!(q(format!("a\\b {tag}")).await, vec![backslash.id]);
    assert_eq!(q(format!("ab {tag}")).await, vec![plain.id]);
    assert_eq!(q(format!("\\{tag}")).await, vec![]);
}

pub async fn subscriber_status_filter(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let mk = |name: &str, status| {
        let mut s = named(&format!("{name} {tag}"));
        s.status = status;
        s
    };
    let a1 = mk("Active One", SubscriberStatus::Active);
    let s1 = mk("Suspended One", SubscriberStatus::Suspended);
    let c1 = mk("Closed One", SubscriberStatus::Closed);
    let a2 = mk("Active Two", SubscriberStatus::Active);
    for s in [&a1, &s1, &c1, &a2] {
        add_subscriber(store, s).await;
    }
    let tag = &tag;
    let f = |st| async move { sub_ids(&search(store, Some(tag), Some(st)).await) };
    assert_eq!(f(SubscriberStatus::Active).await, sorted(&[a1.id, a2.id]));
    assert_eq!(f(SubscriberStatus::Suspended).await, vec![s1.id]);
    assert_eq!(f(SubscriberStatus::Closed).await, vec![c1.id]);

    // Without q: only that status, ours among them.
    let suspended = search(store, None, Some(SubscriberStatus::Suspended)).await;
    assert!(suspended
        .iter()
        .all(|s| s.status == SubscriberStatus::Suspended));
    let ids = sub_ids(&suspended);
    assert!(ids.contains(&s1.id));
    assert!(!ids.contains(&a1.id) && !ids.contains(&c1.id) && !ids.contains(&a2.id));

    // The filter sees updates.
    let a1c = revised(&a1, t(10), |s| s.status = SubscriberStatus::Closed);
    store
        .update_subscriber(
            &a1c,
            1,
            &audit_of(
                t(10),
                Some(a1.id),
                "subscriber",
                a1.id,
                "subscriber.close",
                &a1c,
            ),
        )
        .await
        .unwrap();
    assert_eq!(f(SubscriberStatus::Closed).await, sorted(&[a1.id, c1.id]));
    assert_eq!(f(SubscriberStatus::Active).await, vec![a2.id]);
}

pub async fn subscriber_keyset_pagination(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut s = named(&format!("Page Subscriber {i} {tag}"));
        if i % 3 == 1 {
            s.status = SubscriberStatus::Suspended;
        }
        add_subscriber(store, &s).await;
        ids.push(s.id);
    }
    ids.sort();
    let filter = SubscriberFilter {
        q: Some(tag.clone()),
        status: None,
        number: None,
    };
    let list = |after: Option<SubscriberId>, limit: u32| {
        let filter = filter.clone();
        async move {
            sub_ids(
                &store
                    .list_subscribers(&filter, page(after.map(|a| a.0), limit))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(list(None, 3).await, ids[0..3]);
    assert_eq!(list(Some(ids[2]), 3).await, ids[3..6]);
    assert_eq!(list(Some(ids[5]), 3).await, ids[6..7]);
    assert_eq!(list(Some(ids[6]), 3).await, vec![]);
    assert_eq!(list(None, 7).await, ids);
    assert_eq!(list(None, 100).await, ids);
    assert_eq!(list(Some(ids[2]), 2).await, ids[3..5]);
    assert_eq!(list(None, 1).await, ids[0..1]);
    // A cursor that is not a row of the result still works: everything after it.
    assert_eq!(list(Some(SubscriberId::generate()), 10).await, vec![]);

    // Walking the whole table, unfiltered, yields every row exactly once, in id order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let batch = store
            .list_subscribers(&SubscriberFilter::default(), page(after, 4))
            .await
            .unwrap();
        seen.extend(sub_ids(&batch));
        match batch.last() {
            Some(last) if batch.len() == 4 => after = Some(last.id.0),
            _ => break,
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing ids"
    );
    for id in &ids {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1);
    }
}

// Cases: plans ------------------------------------------------------------------------------

pub async fn plan_versions(store: Arc<dyn Store>) {
    let store = &*store;
    let p1 = plan(&code());
    add_plan(store, &p1).await;
    let v1 = p1.current.clone();
    assert_eq!(store.get_plan(p1.id).await.unwrap(), Some(p1.clone()));
    assert_eq!(
        store.get_plan_version(v1.id).await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        store.list_plan_versions(p1.id).await.unwrap(),
        vec![v1.clone()]
    );

    // A price change: a new version becomes current; the old one stays as it was.
    let mut t2 = terms(5_900);
    t2.download_kbps = 200_000;
    t2.burst = None;
    t2.data_cap_bytes = None;
    t2.cap_policy = CapPolicy::None;
    t2.free_window = None;
    t2.billing_interval = BillingInterval::Annual;
    let mut p2 = new_version(&p1, t(100), t2);
    p2.name = "Fibre 200".into();
    let v2 = p2.current.clone();
    assert_eq!(v2.version, 2);
    store
        .update_plan(
            &p2,
            1,
            &audit_of(t(100), None, "plan", p1.id, "plan.update", &p2),
        )
        .await
        .unwrap();
    assert_eq!(store.get_plan(p1.id).await.unwrap(), Some(p2.clone()));
    assert_eq!(
        store.list_plan_versions(p1.id).await.unwrap(),
        vec![v1.clone(), v2.clone()]
    );
    assert_eq!(
        store.get_plan_version(v1.id).await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        store.get_plan_version(v2.id).await.unwrap(),
        Some(v2.clone())
    );

    // Renaming and retiring keep the current version; no version is added.
    let mut p3 = p2.clone();
    p3.name = "Fibre 200 (legacy)".into();
    p3.status = PlanStatus::Retired;
    p3.updated_at = t(200);
    p3.revision = 3;
    store
        .update_plan(
            &p3,
            2,
            &audit_of(t(200), None, "plan", p1.id, "plan.retire", &p3),
        )
        .await
        .unwrap();
    assert_eq!(store.get_plan(p1.id).await.unwrap(), Some(p3));
    assert_eq!(store.list_plan_versions(p1.id).await.unwrap(), vec![v1, v2]);
    assert_eq!(audits(store, p1.id).await.len(), 3);

    assert_eq!(store.get_plan(PlanId::generate()).await.unwrap(), None);
    assert_eq!(
        store
            .get_plan_version(PlanVersionId::generate())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.list_plan_versions(PlanId::generate()).await.unwrap(),
        vec![]
    );
}

pub async fn plan_stale_update_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let p1 = plan(&code());
    add_plan(store, &p1).await;
    let p2 = new_version(&p1, t(10), terms(5_000));
    store
        .update_plan(
            &p2,
            1,
            &audit_of(t(10), None, "plan", p1.id, "plan.update", &p2),
        )
        .await
        .unwrap();

    // A writer that read revision 1 brings its own new version: neither the plan row, the
    // version nor the audit event may land. First with a version number nobody has …
    let mut stale = new_version(&p2, t(20), terms(6_000));
    stale.revision = 2;
    assert_eq!(stale.current.version, 3);
    let a = audit_of(t(20), None, "plan", p1.id, "plan.update", &stale);
    expect_stale(store.update_plan(&stale, 1, &a).await, "plan");
    // … then, as two editors of revision 1 really would, with the number the winner took.
    let racing = new_version(&p1, t(30), terms(7_000));
    assert_eq!(racing.current.version, 2);
    let b = audit_of(t(30), None, "plan", p1.id, "plan.update", &racing);
    let r = store.update_plan(&racing, 1, &b).await;

    assert_eq!(store.get_plan(p1.id).await.unwrap(), Some(p2.clone()));
    assert_eq!(
        store.get_plan_version(stale.current.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_plan_version(racing.current.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.list_plan_versions(p1.id).await.unwrap(),
        vec![p1.current.clone(), p2.current.clone()]
    );
    let events = audits(store, p1.id).await;
    assert_eq!(events.len(), 2);
    assert!(!audit_ids(&events).contains(&a.id) && !audit_ids(&events).contains(&b.id));
    expect_stale(r, "plan");
}

pub async fn plan_duplicate_code(store: Arc<dyn Store>) {
    let store = &*store;
    let c = code();
    let p1 = plan(&c);
    add_plan(store, &p1).await;
    let p2 = plan(&c);
    let r = store
        .insert_plan(
            &p2,
            &audit_of(t0(), None, "plan", p2.id, "plan.create", &p2),
        )
        .await;
    expect_duplicate(r, "plan", "code");
    assert_eq!(store.get_plan(p2.id).await.unwrap(), None);
    assert_eq!(store.get_plan_version(p2.current.id).await.unwrap(), None);
    assert_eq!(store.list_plan_versions(p2.id).await.unwrap(), vec![]);
    assert!(audits(store, p2.id).await.is_empty());

    // Recoding another plan onto a taken code.
    let p3 = plan(&code());
    add_plan(store, &p3).await;
    let mut p3b = p3.clone();
    p3b.code = c.clone();
    p3b.revision = 2;
    p3b.updated_at = t(5);
    let r = store
        .update_plan(
            &p3b,
            1,
            &audit_of(t(5), None, "plan", p3.id, "plan.update", &p3b),
        )
        .await;
    expect_duplicate(r, "plan", "code");
    assert_eq!(store.get_plan(p3.id).await.unwrap(), Some(p3));
    assert_eq!(store.get_plan(p1.id).await.unwrap(), Some(p1));
}

pub async fn plan_list_filter_and_pagination(store: Arc<dyn Store>) {
    let store = &*store;
    let a = plan(&code());
    let mut b = plan(&code());
    b.status = PlanStatus::Retired;
    let c = plan(&code());
    for p in [&a, &b, &c] {
        add_plan(store, p).await;
    }
    let list = |status| async move { store.list_plans(&PlanFilter { status }, ALL).await.unwrap() };
    let retired = list(Some(PlanStatus::Retired)).await;
    assert!(retired.iter().all(|p| p.status == PlanStatus::Retired));
    assert!(retired.contains(&b));
    assert!(!retired.iter().any(|p| p.id == a.id || p.id == c.id));
    let active = list(Some(PlanStatus::Active)).await;
    assert!(active.iter().all(|p| p.status == PlanStatus::Active));
    assert!(active.contains(&a) && active.contains(&c));
    assert!(!active.iter().any(|p| p.id == b.id));

    // Walk all plans two at a time: ours exactly once each, whole (with current version).
    let mut seen: Vec<Plan> = Vec::new();
    let mut after = None;
    loop {
        let batch = store
            .list_plans(&PlanFilter::default(), page(after, 2))
            .await
            .unwrap();
        let full = batch.len() == 2;
        after = batch.last().map(|p| p.id.0);
        seen.extend(batch);
        if !full {
            break;
        }
    }
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id));
    for p in [&a, &b, &c] {
        assert_eq!(seen.iter().filter(|s| *s == p).count(), 1, "{}", p.code);
    }
}

// Cases: NAS --------------------------------------------------------------------------------

pub async fn nas_insert_update_delete(store: Arc<dyn Store>) {
    let store = &*store;
    let n = nas(unique_ipv4());
    add_nas(store, &n).await;
    assert_eq!(store.get_nas(n.id).await.unwrap(), Some(n.clone()));
    assert_eq!(store.get_nas(NasId::generate()).await.unwrap(), None);

    let mut n2 = n.clone();
    n2.name = "edge-router".into();
    n2.ip = unique_ipv6();
    n2.secret_ciphertext = vec![42; 48];
    n2.vendor = VendorProfile::Cisco;
    n2.coa_port = 1700;
    n2.api_url = None;
    n2.api_username = None;
    n2.api_password_ciphertext = None;
    // Every RADIUS setting round-trips, the suspended action's fields included.
    n2.require_message_authenticator = false;
    n2.interim_interval_secs = 0;
    n2.session_timeout_secs = Some(2_592_000);
    n2.suspended_action = lastmile_domain::nas::SuspendedAction::WalledGarden {
        address_list: Some("unpaid".into()),
        pool: None,
    };
    n2.stale_session_multiplier = 100;
    n2.updated_at = t(30);
    n2.revision = 2;
    store
        .update_nas(
            &n2,
            1,
            &audit_of(t(30), None, "nas", n.id, "nas.update", &n2),
        )
        .await
        .unwrap();
    assert_eq!(store.get_nas(n.id).await.unwrap(), Some(n2.clone()));

    let mut stale = n.clone();
    stale.name = "stale".into();
    stale.revision = 2;
    let a = audit_of(t(40), None, "nas", n.id, "nas.update", &stale);
    expect_stale(store.update_nas(&stale, 1, &a).await, "nas");
    assert_eq!(store.get_nas(n.id).await.unwrap(), Some(n2.clone()));

    // Listed (walking all pages), whole.
    let mut found = None;
    let mut after = None;
    loop {
        let batch = store.list_nas(page(after, 50)).await.unwrap();
        if let Some(x) = batch.iter().find(|x| x.id == n.id) {
            found = Some(x.clone());
        }
        if batch.len() < 50 {
            break;
        }
        after = batch.last().map(|x| x.id.0);
    }
    assert_eq!(found, Some(n2.clone()));

    store
        .delete_nas(n.id, &audit_of(t(50), None, "nas", n.id, "nas.delete", &n2))
        .await
        .unwrap();
    assert_eq!(store.get_nas(n.id).await.unwrap(), None);
    let r = store
        .delete_nas(n.id, &audit_of(t(60), None, "nas", n.id, "nas.delete", &n2))
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound { .. })),
        "deleting a missing NAS: {r:?}"
    );
    let actions: Vec<String> = audits(store, n.id)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["nas.create", "nas.update", "nas.delete"]);
}

pub async fn nas_duplicate_ip(store: Arc<dyn Store>) {
    let store = &*store;
    for ip in [unique_ipv4(), unique_ipv6()] {
        let a = nas(ip);
        add_nas(store, &a).await;
        let b = nas(ip);
        let r = store
            .insert_nas(&b, &audit_of(t0(), None, "nas", b.id, "nas.create", &b))
            .await;
        expect_duplicate(r, "nas", "ip");
        assert_eq!(store.get_nas(b.id).await.unwrap(), None);
        assert!(audits(store, b.id).await.is_empty());

        // Readdressing another NAS onto the taken address.
        let c = nas(unique_ipv4());
        add_nas(store, &c).await;
        let mut c2 = c.clone();
        c2.ip = ip;
        c2.revision = 2;
        let r = store
            .update_nas(
                &c2,
                1,
                &audit_of(t(1), None, "nas", c.id, "nas.update", &c2),
            )
            .await;
        expect_duplicate(r, "nas", "ip");
        assert_eq!(store.get_nas(c.id).await.unwrap(), Some(c));

        // Deleting the holder frees the address.
        store
            .delete_nas(a.id, &audit_of(t(2), None, "nas", a.id, "nas.delete", &a))
            .await
            .unwrap();
        add_nas(store, &b).await;
        assert_eq!(store.get_nas(b.id).await.unwrap(), Some(b));
    }
}

pub async fn nas_delete_in_use(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let s = new_service(store, &w).await;
    let a = audit_of(t(10), None, "nas", w.nas.id, "nas.delete", &w.nas);
    let r = store.delete_nas(w.nas.id, &a).await;
    assert!(
        matches!(r, Err(StoreError::InUse { .. })),
        "deleting a NAS a service uses: {r:?}"
    );
    assert_eq!(store.get_nas(w.nas.id).await.unwrap(), Some(w.nas.clone()));
    assert!(!audit_ids(&audits(store, w.nas.id).await).contains(&a.id));
    assert_eq!(store.get_service(s.id).await.unwrap(), Some(s));
}

// Cases: services ---------------------------------------------------------------------------

pub async fn service_insert_get_list(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let sub_b = named("Second Subscriber");
    add_subscriber(store, &sub_b).await;
    let plan_q = plan(&code());
    add_plan(store, &plan_q).await;

    let svc1 = service(&w.sub, &w.plan, Some(&w.nas));
    let mut svc2 = service(&w.sub, &plan_q, None);
    svc2.access_kind = AccessKind::Ipoe;
    svc2.username = None;
    svc2.password_ciphertext = None;
    svc2.mac_address = Some(unique_mac());
    svc2.circuit_id = Some("olt-3/1/1:100".into());
    svc2.static_ip = Some(unique_ipv6());
    svc2.ip_pool = None;
    svc2.service_address = Address::default();
    let mut svc3 = service(&sub_b, &w.plan, Some(&w.nas));
    svc3.access_kind = AccessKind::Hotspot;
    svc3.static_ip = Some(unique_ipv4());
    let created = add_service(store, &svc1).await;
    add_service(store, &svc2).await;
    add_service(store, &svc3).await;
    for s in [&svc1, &svc2, &svc3] {
        assert_eq!(store.get_service(s.id).await.unwrap(), Some(s.clone()));
    }
    assert_eq!(
        store.get_service(ServiceId::generate()).await.unwrap(),
        None
    );
    assert_eq!(audits(store, svc1.id).await, vec![created]);

    let f = |filter| list_svcs(store, filter);
    let of_a = ServiceFilter {
        subscriber_id: Some(w.sub.id),
        ..Default::default()
    };
    assert_eq!(f(of_a.clone()).await, sorted(&[svc1.id, svc2.id]));
    assert_eq!(
        f(ServiceFilter {
            subscriber_id: Some(sub_b.id),
            ..Default::default()
        })
        .await,
        vec![svc3.id]
    );
    assert_eq!(
        f(ServiceFilter {
            plan_id: Some(w.plan.id),
            ..Default::default()
        })
        .await,
        sorted(&[svc1.id, svc3.id])
    );
    assert_eq!(
        f(ServiceFilter {
            plan_id: Some(plan_q.id),
            ..Default::default()
        })
        .await,
        vec![svc2.id]
    );
    assert_eq!(
        f(ServiceFilter {
            nas_id: Some(w.nas.id),
            ..Default::default()
        })
        .await,
        sorted(&[svc1.id, svc3.id])
    );
    assert_eq!(
        f(ServiceFilter {
            plan_id: Some(plan_q.id),
            ..of_a.clone()
        })
        .await,
        vec![svc2.id]
    );
    assert_eq!(
        f(ServiceFilter {
            status: Some(ServiceStatus::Pending),
            ..of_a.clone()
        })
        .await,
        sorted(&[svc1.id, svc2.id])
    );
    assert_eq!(
        f(ServiceFilter {
            status: Some(ServiceStatus::Active),
            ..of_a.clone()
        })
        .await,
        vec![]
    );
    // Whole rows in listings.
    assert_eq!(
        store
            .list_services(
                &ServiceFilter {
                    subscriber_id: Some(sub_b.id),
                    ..Default::default()
                },
                ALL
            )
            .await
            .unwrap(),
        vec![svc3.clone()]
    );

    // Keyset pagination.
    let ids = sorted(&[svc1.id, svc2.id]);
    let pg = |after: Option<ServiceId>| {
        let filter = of_a.clone();
        async move {
            svc_ids(
                &store
                    .list_services(&filter, page(after.map(|a| a.0), 1))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(pg(None).await, ids[0..1]);
    assert_eq!(pg(Some(ids[0])).await, ids[1..2]);
    assert_eq!(pg(Some(ids[1])).await, vec![]);

    // The status filter follows the timeline's projection.
    record(
        store,
        &change(&svc1, 1, EventKind::Activated, t(10), t(10), vec![]),
    )
    .await;
    assert_eq!(
        f(ServiceFilter {
            status: Some(ServiceStatus::Active),
            ..of_a.clone()
        })
        .await,
        vec![svc1.id]
    );
    assert_eq!(
        f(ServiceFilter {
            status: Some(ServiceStatus::Pending),
            ..of_a
        })
        .await,
        vec![svc2.id]
    );

    assert_eq!(
        store.service_initial_plan(svc1.id).await.unwrap(),
        Some((w.plan.id, w.plan.current.id))
    );
    assert_eq!(
        store.service_initial_plan(svc2.id).await.unwrap(),
        Some((plan_q.id, plan_q.current.id))
    );
    assert_eq!(
        store
            .service_initial_plan(ServiceId::generate())
            .await
            .unwrap(),
        None
    );
}

/// A credential (`field`, set on a service by `set`) is unique among services that are not
/// terminated, and reusable once its holder is terminated.
async fn unique_until_terminated(store: &dyn Store, field: &str, set: impl Fn(&mut Service)) {
    let w = world(store).await;
    let mut a = service(&w.sub, &w.plan, Some(&w.nas));
    set(&mut a);
    add_service(store, &a).await;

    let mut b = service(&w.sub, &w.plan, Some(&w.nas));
    set(&mut b);
    let r = store.insert_service(&b, &service_audit(&b)).await;
    expect_duplicate(r, "service", field);
    assert_eq!(store.get_service(b.id).await.unwrap(), None);
    assert!(audits(store, b.id).await.is_empty());

    // Still taken while the holder is active or suspended.
    let a = record(
        store,
        &change(&a, 1, EventKind::Activated, t(10), t(10), vec![]),
    )
    .await;
    let a = record(
        store,
        &change(&a, 2, EventKind::Suspended, t(20), t(20), vec![]),
    )
    .await;
    let r = store.insert_service(&b, &service_audit(&b)).await;
    expect_duplicate(r, "service", field);

    // Terminating the holder frees it.
    let a = record(
        store,
        &change(&a, 3, EventKind::Terminated, t(30), t(30), vec![]),
    )
    .await;
    add_service(store, &b).await;
    assert_eq!(store.get_service(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(store.get_service(a.id).await.unwrap(), Some(a.clone()));

    // … for one new holder only.
    let mut c = service(&w.sub, &w.plan, None);
    set(&mut c);
    let r = store.insert_service(&c, &service_audit(&c)).await;
    expect_duplicate(r, "service", field);
    assert_eq!(store.get_service(c.id).await.unwrap(), None);
}

pub async fn service_username_reusable_after_termination(store: Arc<dyn Store>) {
    let username = format!("Shared.{}@isp.example", tag());
    unique_until_terminated(&*store, "username", |s| s.username = Some(username.clone())).await;
    // RADIUS compares logins exactly: another case is another login.
    let w = world(&*store).await;
    let mut other_case = service(&w.sub, &w.plan, None);
    other_case.username = Some(username.to_lowercase());
    add_service(&*store, &other_case).await;
    assert_eq!(
        store.get_service(other_case.id).await.unwrap(),
        Some(other_case)
    );
}

pub async fn service_static_ip_reusable_after_termination(store: Arc<dyn Store>) {
    let ip = unique_ipv4();
    unique_until_terminated(&*store, "static_ip", |s| s.static_ip = Some(ip)).await;
}

pub async fn service_mac_address_reusable_after_termination(store: Arc<dyn Store>) {
    let mac = unique_mac();
    unique_until_terminated(&*store, "mac_address", |s| {
        s.access_kind = AccessKind::Ipoe;
        s.username = None;
        s.password_ciphertext = None;
        s.mac_address = Some(mac.clone());
    })
    .await;
}

// Cases: service business events ------------------------------------------------------------

pub async fn record_service_change_writes_everything(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let s = service(&w.sub, &w.plan, Some(&w.nas));
    let created = add_service(store, &s).await;
    let k = JobKind::NasDisconnect;
    let jobs = vec![
        job(&k, Some(w.sub.id), Some(s.id), t(10)),
        job(&JobKind::NasCoa, Some(w.sub.id), Some(s.id), t(70)),
    ];
    let activate = change(&s, 1, EventKind::Activated, t(5), t(10), jobs.clone());
    store.record_service_change(&activate).await.unwrap();

    assert_eq!(
        store.get_service(s.id).await.unwrap(),
        Some(activate.service.clone())
    );
    assert_eq!(
        store.service_timeline(s.id).await.unwrap(),
        vec![activate.event.clone()]
    );
    assert_eq!(
        audits(store, s.id).await,
        vec![created.clone(), activate.audit.clone()]
    );
    let listed = store
        .list_jobs(
            &JobFilter {
                service_id: Some(s.id),
                ..Default::default()
            },
            ALL,
        )
        .await
        .unwrap();
    assert_eq!(listed, sorted_jobs(jobs.clone()));
    for j in &jobs {
        assert_eq!(store.get_job(j.id).await.unwrap(), Some(j.clone()));
    }

    // A dunning suspension with a reason and no jobs.
    let mut suspend = change(
        &activate.service,
        2,
        EventKind::Suspended,
        t(20),
        t(20),
        vec![],
    );
    suspend.event.suspension_cause = Some(SuspensionCause::Dunning);
    suspend.event.reason = Some("invoice 2025-0042 overdue".into());
    let suspend = apply(&activate.service, suspend.event, vec![]);
    assert_eq!(
        suspend.service.suspension_cause,
        Some(SuspensionCause::Dunning)
    );
    store.record_service_change(&suspend).await.unwrap();
    assert_eq!(
        store.get_service(s.id).await.unwrap(),
        Some(suspend.service.clone())
    );
    assert_eq!(
        store.service_timeline(s.id).await.unwrap(),
        vec![activate.event, suspend.event]
    );
    assert_eq!(
        audits(store, s.id).await,
        vec![created, activate.audit, suspend.audit]
    );
    assert_eq!(
        list_job_ids(
            store,
            JobFilter {
                service_id: Some(s.id),
                ..Default::default()
            }
        )
        .await
        .len(),
        2
    );
}

/// Asserts that `c` left no trace: no timeline event, audit event or job.
async fn assert_not_written(store: &dyn Store, c: &ServiceChange) {
    let timeline = store.service_timeline(c.service.id).await.unwrap();
    assert!(
        !timeline.iter().any(|e| e.id == c.event.id),
        "timeline event of a failed change was written"
    );
    assert!(
        !audit_ids(&audits(store, c.service.id).await).contains(&c.audit.id),
        "audit event of a failed change was written"
    );
    for j in &c.jobs {
        if let Some(found) = store.get_job(j.id).await.unwrap() {
            // The only allowed case: a job id the change reused from an earlier, successful
            // write (see record_service_change_rolls_back_on_failure).
            assert_ne!(found, *j, "job of a failed change was written");
        }
    }
}

pub async fn record_service_change_stale_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let s = new_service(store, &w).await;
    let k = JobKind::NasCoa;
    let activate = change(
        &s,
        1,
        EventKind::Activated,
        t(10),
        t(10),
        vec![job(&k, Some(w.sub.id), Some(s.id), t(10))],
    );
    let active = record(store, &activate).await;

    // Another writer read the service before the activation (revision 1) and terminates it.
    let stale = change(
        &s,
        2,
        EventKind::Terminated,
        t(20),
        t(20),
        vec![
            job(&k, Some(w.sub.id), Some(s.id), t(20)),
            job(&k, Some(w.sub.id), Some(s.id), t(20)),
        ],
    );
    expect_stale(store.record_service_change(&stale).await, "service");
    assert_not_written(store, &stale).await;

    // Expecting a revision that was never reached is stale too.
    let mut future = change(
        &active,
        2,
        EventKind::Suspended,
        t(30),
        t(30),
        vec![job(&k, Some(w.sub.id), Some(s.id), t(30))],
    );
    future.expected_revision = 5;
    future.service.revision = 6;
    expect_stale(store.record_service_change(&future).await, "service");
    assert_not_written(store, &future).await;

    assert_eq!(store.get_service(s.id).await.unwrap(), Some(active));
    assert_eq!(
        store.service_timeline(s.id).await.unwrap(),
        vec![activate.event]
    );
    assert_eq!(audits(store, s.id).await.len(), 2);
    assert_eq!(
        list_job_ids(
            store,
            JobFilter {
                kind: Some(k),
                subscriber_id: Some(w.sub.id),
                ..Default::default()
            }
        )
        .await,
        job_ids(&activate.jobs)
    );
}

pub async fn record_service_change_rolls_back_on_failure(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let s = new_service(store, &w).await;
    let k = JobKind::NasCoa;
    let first = job(&k, Some(w.sub.id), Some(s.id), t(10));
    let activate = change(
        &s,
        1,
        EventKind::Activated,
        t(10),
        t(10),
        vec![first.clone()],
    );
    let active = record(store, &activate).await;

    // The right revision, but the last write of the transaction fails (a job id that exists):
    // the service row, timeline event, audit event and the other job must all roll back.
    let mut reused = job(&k, Some(w.sub.id), Some(s.id), t(20));
    reused.id = first.id;
    let fresh = job(&k, Some(w.sub.id), Some(s.id), t(20));
    let failing = change(
        &active,
        2,
        EventKind::Suspended,
        t(20),
        t(20),
        vec![fresh.clone(), reused],
    );
    let r = store.record_service_change(&failing).await;
    assert!(r.is_err(), "a change with a duplicate job id must fail");
    assert_not_written(store, &failing).await;
    assert_eq!(store.get_job(fresh.id).await.unwrap(), None);
    assert_eq!(store.get_job(first.id).await.unwrap(), Some(first.clone()));

    // The right revision but a timeline position that is taken: a concurrent writer won.
    let clash = change(&active, 1, EventKind::Suspended, t(30), t(30), vec![]);
    expect_stale(store.record_service_change(&clash).await, "service");
    assert_not_written(store, &clash).await;

    assert_eq!(store.get_service(s.id).await.unwrap(), Some(active.clone()));
    assert_eq!(
        store.service_timeline(s.id).await.unwrap(),
        vec![activate.event]
    );
    assert_eq!(audits(store, s.id).await.len(), 2);

    // And the service still takes the next change.
    record(
        store,
        &change(&active, 2, EventKind::Suspended, t(40), t(40), vec![]),
    )
    .await;
}

pub async fn record_service_change_concurrent_single_winner(store: Arc<dyn Store>) {
    let w = world(&*store).await;
    let s = new_service(&*store, &w).await;
    let k = JobKind::NasCoa;
    let changes: Vec<ServiceChange> = (0..8)
        .map(|i| {
            let kind = if i % 2 == 0 {
                EventKind::Activated
            } else {
                EventKind::Terminated
            };
            change(
                &s,
                1,
                kind,
                t(10),
                t(10 + i),
                vec![job(&k, Some(w.sub.id), Some(s.id), t(10))],
            )
        })
        .collect();
    let tasks: Vec<_> = changes
        .iter()
        .cloned()
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move { store.record_service_change(&c).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.expect("task") {
            Ok(()) => winners.push(i),
            Err(StoreError::Stale { entity: "service" }) => {}
            Err(e) => panic!("concurrent change {i}: unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent writer wins");
    let won = &changes[winners[0]];
    let store = &*store;
    assert_eq!(
        store.get_service(s.id).await.unwrap(),
        Some(won.service.clone())
    );
    assert_eq!(
        store.service_timeline(s.id).await.unwrap(),
        vec![won.event.clone()]
    );
    assert_eq!(audits(store, s.id).await.len(), 2);
    assert_eq!(
        list_job_ids(
            store,
            JobFilter {
                kind: Some(k),
                subscriber_id: Some(w.sub.id),
                ..Default::default()
            }
        )
        .await,
        job_ids(&won.jobs)
    );
}

pub async fn service_timeline_order_and_initial_plan(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let plan_q = plan(&code());
    add_plan(store, &plan_q).await;
    let s = new_service(store, &w).await;
    let other = new_service(store, &w).await;

    let c1 = change(&s, 1, EventKind::Activated, t(0), t(0), vec![]);
    let c2 = change(&c1.service, 2, EventKind::Suspended, t(100), t(100), vec![]);
    let c3 = change(&c2.service, 3, EventKind::Resumed, t(200), t(200), vec![]);
    // Recorded fourth, effective before the suspension: back-dated.
    let c4 = plan_change(&c3.service, 4, &plan_q, t(50), t(300));
    let c5 = change(
        &c4.service,
        5,
        EventKind::Terminated,
        t(400),
        t(400),
        vec![],
    );
    let o1 = change(&other, 1, EventKind::Activated, t(150), t(150), vec![]);
    for c in [&c1, &c2, &o1, &c3, &c4, &c5] {
        record(store, c).await;
    }

    // Recording order, not effective order; whole events.
    assert_eq!(
        store.service_timeline(s.id).await.unwrap(),
        vec![
            c1.event.clone(),
            c2.event.clone(),
            c3.event.clone(),
            c4.event.clone(),
            c5.event.clone()
        ]
    );
    assert_eq!(
        store.service_timeline(other.id).await.unwrap(),
        vec![o1.event.clone()]
    );
    assert_eq!(
        store.service_timeline(ServiceId::generate()).await.unwrap(),
        vec![]
    );

    let now = store.get_service(s.id).await.unwrap().unwrap();
    assert_eq!(now, c5.service);
    assert_eq!(now.status, ServiceStatus::Terminated);
    assert_eq!(now.plan_id, plan_q.id);
    assert_eq!(now.revision, 6);
    // The initial plan stays what the service was sold with.
    assert_eq!(
        store.service_initial_plan(s.id).await.unwrap(),
        Some((w.plan.id, w.plan.current.id))
    );
    assert_eq!(
        list_svcs(
            store,
            ServiceFilter {
                plan_id: Some(plan_q.id),
                ..Default::default()
            }
        )
        .await,
        vec![s.id]
    );
    assert_eq!(
        list_svcs(
            store,
            ServiceFilter {
                plan_id: Some(w.plan.id),
                subscriber_id: Some(w.sub.id),
                ..Default::default()
            }
        )
        .await,
        vec![other.id]
    );
}

// Cases: provisioning jobs ------------------------------------------------------------------

pub async fn jobs_list_filters(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let ka = JobKind::NasCoa;
    let kb = JobKind::NasDisconnect;
    let sub_a = w.sub.id;
    let first = enqueue(store, &w, |s| {
        vec![
            job(&ka, Some(sub_a), Some(s.id), t0()),
            job(&kb, Some(sub_a), Some(s.id), t0()),
            job(&ka, Some(sub_a), None, t0()),
        ]
    })
    .await;
    let (j1, j2, j3) = (&first[0], &first[1], &first[2]);
    let w_b = World {
        sub: named("Job Subscriber B"),
        plan: w.plan.clone(),
        nas: w.nas.clone(),
    };
    add_subscriber(store, &w_b.sub).await;
    let sub_b = w_b.sub.id;
    let second = enqueue(store, &w_b, |s| {
        vec![
            job(&ka, Some(sub_b), Some(s.id), t0()),
            job(&kb, Some(sub_b), Some(s.id), t0()),
        ]
    })
    .await;
    let (j4, j5) = (&second[0], &second[1]);
    let svc1 = j1.service_id.unwrap();

    // j2 and j5 claimed; j5 then succeeds.
    let got = claim(store, sub_a, &[kb], t(10), t(100), 10).await;
    assert_eq!(job_ids(&got), vec![j2.id]);
    let got = claim(store, sub_b, &[kb], t(10), t(100), 10).await;
    assert_eq!(job_ids(&got), vec![j5.id]);
    assert!(store
        .finish_job(j5.id, 1, &JobOutcome::succeeded("done"), t(11))
        .await
        .unwrap());

    let f = |filter| list_job_ids(store, filter);
    // Other cases' jobs share the kinds: filters by kind name a subscriber too.
    let by_kind = |k: JobKind, sub: SubscriberId| JobFilter {
        kind: Some(k),
        subscriber_id: Some(sub),
        ..Default::default()
    };
    assert_eq!(f(by_kind(ka, sub_a)).await, sorted(&[j1.id, j3.id]));
    assert_eq!(f(by_kind(ka, sub_b)).await, vec![j4.id]);
    assert_eq!(f(by_kind(kb, sub_a)).await, vec![j2.id]);
    assert_eq!(
        f(JobFilter {
            service_id: Some(svc1),
            ..Default::default()
        })
        .await,
        sorted(&[j1.id, j2.id])
    );
    assert_eq!(
        f(JobFilter {
            subscriber_id: Some(sub_a),
            ..Default::default()
        })
        .await,
        sorted(&[j1.id, j2.id, j3.id])
    );
    assert_eq!(f(by_kind(kb, sub_b)).await, vec![j5.id]);
    assert_eq!(
        f(JobFilter {
            status: Some(JobStatus::Running),
            ..by_kind(kb, sub_a)
        })
        .await,
        vec![j2.id]
    );
    assert_eq!(
        f(JobFilter {
            status: Some(JobStatus::Running),
            ..by_kind(kb, sub_b)
        })
        .await,
        vec![]
    );
    assert_eq!(
        f(JobFilter {
            status: Some(JobStatus::Succeeded),
            ..by_kind(kb, sub_b)
        })
        .await,
        vec![j5.id]
    );
    assert_eq!(
        f(JobFilter {
            status: Some(JobStatus::Pending),
            subscriber_id: Some(sub_a),
            ..Default::default()
        })
        .await,
        sorted(&[j1.id, j3.id])
    );
    assert_eq!(
        f(JobFilter {
            status: Some(JobStatus::Failed),
            ..by_kind(ka, sub_a)
        })
        .await,
        vec![]
    );

    // Whole jobs; keyset pagination.
    let ids = sorted(&[j1.id, j2.id, j3.id]);
    let pg = |after: Option<JobId>| {
        let filter = JobFilter {
            subscriber_id: Some(sub_a),
            ..Default::default()
        };
        async move {
            store
                .list_jobs(&filter, page(after.map(|a| a.0), 2))
                .await
                .unwrap()
        }
    };
    let p1 = pg(None).await;
    assert_eq!(job_ids(&p1), ids[0..2]);
    // Whole jobs as stored: j2 as its claim left it, the others as enqueued.
    for j in &p1 {
        if j.id == j2.id {
            assert_eq!(j.status, JobStatus::Running);
        } else {
            assert!(j == j1 || j == j3, "{j:?}");
        }
    }
    assert_eq!(job_ids(&pg(Some(ids[1])).await), ids[2..3]);
    assert_eq!(job_ids(&pg(Some(ids[2])).await), vec![]);
}

pub async fn claim_jobs_selects_due_jobs_of_kinds(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let (k1, k2, k3) = (
        JobKind::NasCoa,
        JobKind::NasDisconnect,
        JobKind::DunningReminder,
    );
    let jobs = enqueue(store, &w, |s| {
        let sid = Some(s.id);
        vec![
            job(&k1, Some(w.sub.id), sid, t(0)),  // a: due
            job(&k1, Some(w.sub.id), sid, t(60)), // b: not yet due
            job(&k2, Some(w.sub.id), sid, t(0)),  // c: other kind
            job(&k1, Some(w.sub.id), sid, t(5)),  // d: due
            job(&k3, Some(w.sub.id), sid, t(0)),  // e: other kind
        ]
    })
    .await;
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| jobs[i].clone());

    let got = claim(store, w.sub.id, &[k1], t(10), t(1_000), 10).await;
    assert_eq!(
        got,
        sorted_jobs(vec![
            claimed(&a, t(10), t(1_000)),
            claimed(&d, t(10), t(1_000))
        ])
    );
    assert_eq!(job_of(store, a.id).await, claimed(&a, t(10), t(1_000)));
    for j in [&b, &c, &e] {
        assert_eq!(job_of(store, j.id).await, *j, "untouched");
    }
    // Leased jobs are not handed out again; b is not due yet.
    assert_eq!(
        claim(store, w.sub.id, &[k1], t(20), t(1_000), 10).await,
        vec![]
    );
    // Nothing to claim for no kinds or a zero limit.
    assert_eq!(
        store
            .claim_jobs(&[], JobScope::Subscriber(w.sub.id), t(20), t(1_000), 10)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        claim(store, w.sub.id, &[k2], t(20), t(1_000), 0).await,
        vec![]
    );
    assert_eq!(job_of(store, c.id).await, c);
    // Several kinds at once, limited.
    let got = claim(store, w.sub.id, &[k1, k2], t(20), t(1_000), 1).await;
    assert_eq!(got, vec![claimed(&c, t(20), t(1_000))]);
    // Due exactly at run_after.
    let got = claim(store, w.sub.id, &[k1, k3], t(60), t(1_000), 10).await;
    assert_eq!(
        got,
        sorted_jobs(vec![
            claimed(&b, t(60), t(1_000)),
            claimed(&e, t(60), t(1_000))
        ])
    );
    assert_eq!(
        list_job_ids(
            store,
            JobFilter {
                status: Some(JobStatus::Running),
                subscriber_id: Some(w.sub.id),
                ..Default::default()
            }
        )
        .await,
        sorted(&[a.id, b.id, c.id, d.id, e.id])
    );
}

pub async fn claim_jobs_concurrent_claimers_disjoint(store: Arc<dyn Store>) {
    let w = world(&*store).await;
    let k = JobKind::NasCoa;
    let jobs = enqueue(&*store, &w, |s| {
        (0..24)
            .map(|_| job(&k, Some(w.sub.id), Some(s.id), t(0)))
            .collect()
    })
    .await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let sub = w.sub.id;
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_jobs(
                            std::slice::from_ref(&k),
                            JobScope::Subscriber(sub),
                            t(1),
                            t(600),
                            3,
                        )
                        .await
                        .expect("claim_jobs");
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    // A claimer may give up early while others hold rows; sweep the rest.
    all.extend(claim(&*store, w.sub.id, &[k], t(1), t(600), 100).await);
    assert!(
        all.iter().all(|j| j.attempts == 1),
        "a job was claimed twice"
    );
    let ids = sorted(&job_ids(&all));
    let unique: BTreeSet<JobId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a job was handed to two claimers");
    assert_eq!(ids, sorted(&job_ids(&jobs)));
}

pub async fn claim_jobs_reclaims_expired_lease(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = JobKind::NasCoa;
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    let first = claim(store, w.sub.id, &[k], t(0), t(30), 10).await;
    assert_eq!(first, vec![claimed(j, t(0), t(30))]);
    assert_eq!(claim(store, w.sub.id, &[k], t(29), t(90), 10).await, vec![]);
    // The worker died; the lease ran out.
    let second = claim(store, w.sub.id, &[k], t(31), t(90), 10).await;
    assert_eq!(second, vec![claimed(&first[0], t(31), t(90))]);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(job_of(store, j.id).await, second[0]);
    assert!(store
        .finish_job(j.id, 2, &JobOutcome::succeeded("done"), t(40))
        .await
        .unwrap());
    // Finished jobs are never reclaimed.
    assert_eq!(
        claim(store, w.sub.id, &[k], t(10_000), t(10_100), 10).await,
        vec![]
    );
}

pub async fn finish_job_success(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = JobKind::NasCoa;
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    claim(store, w.sub.id, &[k], t(0), t(60), 10).await;
    assert!(store
        .finish_job(j.id, 1, &JobOutcome::succeeded("done"), t(5))
        .await
        .unwrap());
    let done = job_of(store, j.id).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.locked_until, None);
    assert_eq!(done.run_after, j.run_after);
    assert_eq!(done.updated_at, t(5));
    assert_eq!(done.last_error, None);
    assert_eq!(done.last_result.as_deref(), Some("done"));
    // A second report of the same attempt is ignored.
    assert!(!store
        .finish_job(
            j.id,
            1,
            &JobOutcome::Failed {
                error: "late".into(),
                retry_at: None
            },
            t(6)
        )
        .await
        .unwrap());
    assert_eq!(job_of(store, j.id).await, done);
    assert_eq!(
        claim(store, w.sub.id, &[k], t(1_000), t(1_100), 10).await,
        vec![]
    );
    // Unknown jobs are ignored too.
    assert!(!store
        .finish_job(JobId::generate(), 1, &JobOutcome::succeeded("done"), t(7))
        .await
        .unwrap());
}

pub async fn finish_job_retry(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = JobKind::NasCoa;
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    claim(store, w.sub.id, &[k], t(0), t(60), 10).await;
    let retry = JobOutcome::Failed {
        error: "timeout talking to 10.0.0.1".into(),
        retry_at: Some(t(20)),
    };
    assert!(store.finish_job(j.id, 1, &retry, t(5)).await.unwrap());
    let pending = job_of(store, j.id).await;
    assert_eq!(pending.status, JobStatus::Pending);
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.run_after, t(20));
    assert_eq!(pending.locked_until, None);
    assert_eq!(
        pending.last_error.as_deref(),
        Some("timeout talking to 10.0.0.1")
    );
    assert_eq!(pending.updated_at, t(5));
    assert_eq!(
        list_job_ids(
            store,
            JobFilter {
                status: Some(JobStatus::Pending),
                kind: Some(k),
                subscriber_id: Some(w.sub.id),
                ..Default::default()
            }
        )
        .await,
        vec![j.id]
    );
    // Not before the backoff is over.
    assert_eq!(claim(store, w.sub.id, &[k], t(19), t(80), 10).await, vec![]);
    let again = claim(store, w.sub.id, &[k], t(20), t(80), 10).await;
    assert_eq!(again, vec![claimed(&pending, t(20), t(80))]);
    assert_eq!(again[0].attempts, 2);

    // The second attempt fails for good.
    let fail = JobOutcome::Failed {
        error: "refused".into(),
        retry_at: None,
    };
    assert!(store.finish_job(j.id, 2, &fail, t(25)).await.unwrap());
    let failed = job_of(store, j.id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.last_error.as_deref(), Some("refused"));
    assert_eq!(failed.last_result.as_deref(), Some("refused"));
    assert_eq!(failed.locked_until, None);
}

pub async fn finish_job_final_failure_and_requeue(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = JobKind::NasCoa;
    let jobs = enqueue(store, &w, |s| {
        vec![
            job(&k, Some(w.sub.id), Some(s.id), t(0)),
            job(&k, Some(w.sub.id), Some(s.id), t(5_000)),
        ]
    })
    .await;
    let (j, waiting) = (&jobs[0], &jobs[1]);
    claim(store, w.sub.id, &[k], t(0), t(60), 10).await;
    let fail = JobOutcome::Failed {
        error: "auth rejected".into(),
        retry_at: None,
    };
    assert!(store.finish_job(j.id, 1, &fail, t(5)).await.unwrap());
    let failed = job_of(store, j.id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_error.as_deref(), Some("auth rejected"));
    assert_eq!(failed.locked_until, None);
    assert_eq!(failed.updated_at, t(5));
    // Failed jobs are not claimed.
    assert_eq!(
        claim(store, w.sub.id, &[k], t(100), t(200), 10).await,
        vec![]
    );

    let requeue_audit = |id: JobId, at| {
        audit_of(
            at,
            Some(w.sub.id),
            "provisioning_job",
            id,
            "provisioning_job.requeue",
            &json!({"id": id}),
        )
    };
    // Only failed jobs can be requeued.
    let a = requeue_audit(waiting.id, t(100));
    assert_eq!(
        store
            .requeue_failed_job(waiting.id, t(100), &a)
            .await
            .unwrap(),
        None
    );
    assert_eq!(job_of(store, waiting.id).await, *waiting);
    assert!(audits(store, waiting.id).await.is_empty());
    let ghost = JobId::generate();
    assert_eq!(
        store
            .requeue_failed_job(ghost, t(100), &requeue_audit(ghost, t(100)))
            .await
            .unwrap(),
        None
    );

    let a = requeue_audit(j.id, t(100));
    let requeued = store
        .requeue_failed_job(j.id, t(100), &a)
        .await
        .unwrap()
        .expect("a failed job is requeued");
    assert_eq!(requeued.status, JobStatus::Pending);
    assert_eq!(requeued.attempts, 0);
    assert_eq!(requeued.run_after, t(100));
    assert_eq!(requeued.locked_until, None);
    assert_eq!(requeued.updated_at, t(100));
    assert_eq!(requeued.kind, j.kind);
    assert_eq!(requeued.payload, j.payload);
    assert_eq!(job_of(store, j.id).await, requeued);
    assert_eq!(audits(store, j.id).await, vec![a]);

    // Requeuing again is refused (it is pending now) and leaves no audit.
    let again = requeue_audit(j.id, t(110));
    assert_eq!(
        store
            .requeue_failed_job(j.id, t(110), &again)
            .await
            .unwrap(),
        None
    );
    assert_eq!(audits(store, j.id).await.len(), 1);

    let got = claim(store, w.sub.id, &[k], t(100), t(200), 10).await;
    assert_eq!(got, vec![claimed(&requeued, t(100), t(200))]);
    assert_eq!(got[0].attempts, 1);
    // A succeeded job is not failed: not requeued.
    assert!(store
        .finish_job(j.id, 1, &JobOutcome::succeeded("done"), t(150))
        .await
        .unwrap());
    assert_eq!(
        store
            .requeue_failed_job(j.id, t(160), &requeue_audit(j.id, t(160)))
            .await
            .unwrap(),
        None
    );
    assert_eq!(job_of(store, j.id).await.status, JobStatus::Succeeded);
}

pub async fn finish_job_ignores_stale_attempt(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = JobKind::NasCoa;
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    claim(store, w.sub.id, &[k], t(0), t(10), 10).await;
    // Attempt 1 overran its lease; another worker took the job as attempt 2.
    let second = claim(store, w.sub.id, &[k], t(11), t(100), 10).await;
    assert_eq!(second.len(), 1);
    let running = second[0].clone();
    assert_eq!(running.attempts, 2);

    let late = JobOutcome::Failed {
        error: "late report".into(),
        retry_at: None,
    };
    assert!(!store.finish_job(j.id, 1, &late, t(12)).await.unwrap());
    assert!(!store
        .finish_job(j.id, 1, &JobOutcome::succeeded("done"), t(12))
        .await
        .unwrap());
    assert!(!store
        .finish_job(j.id, 3, &JobOutcome::succeeded("done"), t(12))
        .await
        .unwrap());
    assert_eq!(
        job_of(store, j.id).await,
        running,
        "stale reports change nothing"
    );

    assert!(store
        .finish_job(j.id, 2, &JobOutcome::succeeded("done"), t(13))
        .await
        .unwrap());
    assert!(!store.finish_job(j.id, 2, &late, t(14)).await.unwrap());
    let done = job_of(store, j.id).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.last_error, None);
    assert_eq!(done.updated_at, t(13));
}

// Cases: audit ------------------------------------------------------------------------------

pub async fn audit_filters(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let op_a = Actor {
        id: format!("operator:{tag}-a"),
        name: "Alice".into(),
    };
    let op_b = Actor {
        id: format!("operator:{tag}-b"),
        name: "Bob".into(),
    };
    let ev = |at, actor: &Actor, sub: Option<SubscriberId>, ty: &str, id: String, action: &str| {
        let mut e = AuditEvent::new(
            at,
            actor,
            sub,
            ty,
            id,
            action,
            Some(&json!({"name": "before", "shared_secret": "x"})),
            Some(&json!({"name": "after", "n": 1})),
        );
        e.reason = Some("requested by customer".into());
        e
    };

    let s1 = named("Audited One");
    let e1 = ev(
        t(0),
        &op_a,
        Some(s1.id),
        "subscriber",
        s1.id.to_string(),
        "subscriber.create",
    );
    store.insert_subscriber(&s1, &e1).await.unwrap();
    let mut current = s1.clone();
    let mut updates = Vec::new();
    for i in 1..=3 {
        let next = revised(&current, t(10 * i), |s| {
            s.name = format!("Audited One v{i}")
        });
        let e = ev(
            t(10 * i),
            &op_b,
            Some(s1.id),
            "subscriber",
            s1.id.to_string(),
            "subscriber.update",
        );
        store
            .update_subscriber(&next, current.revision, &e)
            .await
            .unwrap();
        updates.push(e);
        current = next;
    }
    let (e2, e3, e4) = (updates[0].clone(), updates[1].clone(), updates[2].clone());
    let p = plan(&code());
    let e5 = ev(t(40), &op_a, None, "plan", p.id.to_string(), "plan.create");
    store.insert_plan(&p, &e5).await.unwrap();
    let s2 = named("Audited Two");
    let e6 = ev(
        t(50),
        &op_b,
        Some(s2.id),
        "subscriber",
        s2.id.to_string(),
        "subscriber.create",
    );
    store.insert_subscriber(&s2, &e6).await.unwrap();

    let f = |filter: AuditFilter| async move {
        let mut got = store.list_audit_events(&filter, ALL).await.unwrap();
        // Listing order is id order; compare by id.
        got.sort_by_key(|e| e.id);
        got
    };
    let by_id = |v: Vec<&AuditEvent>| {
        let mut v: Vec<AuditEvent> = v.into_iter().cloned().collect();
        v.sort_by_key(|e| e.id);
        v
    };
    let actor = |a: &Actor| AuditFilter {
        actor_id: Some(a.id.clone()),
        ..Default::default()
    };
    // Whole events, as written (secrets were redacted by the domain, not the store).
    assert_eq!(
        f(AuditFilter {
            entity_type: Some("subscriber".into()),
            entity_id: Some(s1.id.to_string()),
            ..Default::default()
        })
        .await,
        by_id(vec![&e1, &e2, &e3, &e4])
    );
    assert_eq!(
        f(AuditFilter {
            entity_type: Some("plan".into()),
            entity_id: Some(s1.id.to_string()),
            ..Default::default()
        })
        .await,
        vec![]
    );
    assert_eq!(
        f(AuditFilter {
            entity_type: Some("plan".into()),
            entity_id: Some(p.id.to_string()),
            ..Default::default()
        })
        .await,
        vec![e5.clone()]
    );
    assert_eq!(f(actor(&op_a)).await, by_id(vec![&e1, &e5]));
    assert_eq!(f(actor(&op_b)).await, by_id(vec![&e2, &e3, &e4, &e6]));
    assert_eq!(
        f(AuditFilter {
            subscriber_id: Some(s1.id),
            ..Default::default()
        })
        .await,
        by_id(vec![&e1, &e2, &e3, &e4])
    );
    assert_eq!(
        f(AuditFilter {
            subscriber_id: Some(s2.id),
            ..Default::default()
        })
        .await,
        vec![e6.clone()]
    );
    assert_eq!(
        f(AuditFilter {
            entity_type: Some("subscriber".into()),
            ..actor(&op_a)
        })
        .await,
        vec![e1.clone()]
    );
    assert_eq!(
        f(AuditFilter {
            subscriber_id: Some(s2.id),
            entity_type: Some("subscriber".into()),
            ..actor(&op_a)
        })
        .await,
        vec![]
    );
    // from is inclusive, to exclusive.
    assert_eq!(
        f(AuditFilter {
            from: Some(t(20)),
            ..actor(&op_b)
        })
        .await,
        by_id(vec![&e3, &e4, &e6])
    );
    assert_eq!(
        f(AuditFilter {
            to: Some(t(30)),
            ..actor(&op_b)
        })
        .await,
        by_id(vec![&e2, &e3])
    );
    assert_eq!(
        f(AuditFilter {
            from: Some(t(20)),
            to: Some(t(50)),
            ..actor(&op_b)
        })
        .await,
        by_id(vec![&e3, &e4])
    );
    assert_eq!(
        f(AuditFilter {
            from: Some(t(51)),
            ..actor(&op_b)
        })
        .await,
        vec![]
    );
    assert_eq!(
        f(AuditFilter {
            from: Some(t(0)),
            to: Some(t(1)),
            ..actor(&op_a)
        })
        .await,
        vec![e1.clone()]
    );
}

pub async fn audit_pagination(store: Arc<dyn Store>) {
    let store = &*store;
    let op = Actor {
        id: format!("operator:{}", tag()),
        name: "Pager".into(),
    };
    let s = named("Paged Audit");
    let mut ids = Vec::new();
    let first = AuditEvent::new::<(), _>(
        t(0),
        &op,
        Some(s.id),
        "subscriber",
        s.id,
        "subscriber.create",
        None,
        Some(&s),
    );
    ids.push(first.id);
    store.insert_subscriber(&s, &first).await.unwrap();
    let mut current = s.clone();
    for i in 1..5 {
        let next = revised(&current, t(i), |s| s.name = format!("Paged Audit {i}"));
        let e = AuditEvent::new(
            t(i),
            &op,
            Some(s.id),
            "subscriber",
            s.id,
            "subscriber.update",
            Some(&current),
            Some(&next),
        );
        ids.push(e.id);
        store
            .update_subscriber(&next, current.revision, &e)
            .await
            .unwrap();
        current = next;
    }
    let ids = sorted(&ids);
    let filter = AuditFilter {
        actor_id: Some(op.id.clone()),
        ..Default::default()
    };
    let pg = |after: Option<AuditEventId>, limit| {
        let filter = filter.clone();
        async move {
            audit_ids(
                &store
                    .list_audit_events(&filter, page(after.map(|a| a.0), limit))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(pg(None, 2).await, ids[0..2]);
    assert_eq!(pg(Some(ids[1]), 2).await, ids[2..4]);
    assert_eq!(pg(Some(ids[3]), 2).await, ids[4..5]);
    assert_eq!(pg(Some(ids[4]), 2).await, vec![]);
    assert_eq!(pg(None, 10).await, ids);
    // Pagination composes with the time window.
    let windowed = AuditFilter {
        from: Some(t(1)),
        to: Some(t(4)),
        ..filter.clone()
    };
    let got = store
        .list_audit_events(&windowed, page(Some(ids[1].0), 1))
        .await
        .unwrap();
    assert_eq!(audit_ids(&got), ids[2..3]);
}

// Cases: idempotency keys -------------------------------------------------------------------

fn response(status: u16) -> StoredResponse {
    StoredResponse {
        status,
        body: b"{\"id\":\"x\"}\n\x00\xff\xfe binary tail".to_vec(),
    }
}

/// `begin_idempotency` at `at` with the standard lease.
async fn begin_at(
    store: &dyn Store,
    scope: &str,
    key: &str,
    hash: &str,
    at: Timestamp,
) -> IdempotencyBegin {
    store
        .begin_idempotency(scope, key, hash, at, at + IDEMPOTENCY_LEASE)
        .await
        .expect("begin_idempotency")
}

/// The owner of a reservation `begin` must have made.
fn reserved(b: IdempotencyBegin) -> String {
    match b {
        IdempotencyBegin::Reserved { owner } => owner,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

/// The lease in whole seconds.
fn lease_secs() -> i64 {
    IDEMPOTENCY_LEASE.as_secs()
}

/// Runs `f` as the idempotent request (`scope`, `key`, `owner`) whose response is about
/// `entity_type`.
async fn as_request<T>(
    scope: &str,
    key: &str,
    owner: &str,
    entity_type: Option<&str>,
    f: impl std::future::Future<Output = T>,
) -> T {
    IDEMPOTENT_REQUEST
        .scope(
            IdempotentRequest {
                scope: scope.into(),
                key: key.into(),
                owner: owner.into(),
                entity_type: entity_type.map(str::to_string),
            },
            f,
        )
        .await
}

pub async fn idempotency_lifecycle(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let other_scope = format!("{scope}-other");
    let k1 = reserved(begin_at(store, &scope, "k1", "h1", t(0)).await);
    assert_eq!(
        begin_at(store, &scope, "k1", "h1", t(1)).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin_at(store, &scope, "k1", "h2", t(1)).await,
        IdempotencyBegin::Mismatch
    );
    // Keys are per scope.
    let other = reserved(begin_at(store, &other_scope, "k1", "h1", t(1)).await);
    let k2 = reserved(begin_at(store, &scope, "k2", "h1", t(1)).await);
    assert!(
        k1 != other && k1 != k2,
        "every reservation has its own owner"
    );

    let resp = response(201);
    // Only the owner stores the response.
    assert!(!store
        .finish_idempotency(&scope, "k1", &k2, &resp)
        .await
        .unwrap());
    assert!(store
        .finish_idempotency(&scope, "k1", &k1, &resp)
        .await
        .unwrap());
    assert_eq!(
        begin_at(store, &scope, "k1", "h1", t(2)).await,
        IdempotencyBegin::Replay(resp.clone())
    );
    // Replayed long after the lease, too.
    assert_eq!(
        begin_at(store, &scope, "k1", "h1", t(3 * lease_secs())).await,
        IdempotencyBegin::Replay(resp.clone())
    );
    assert_eq!(
        begin_at(store, &scope, "k1", "h2", t(3)).await,
        IdempotencyBegin::Mismatch
    );
    // A stored response is never overwritten.
    assert!(!store
        .finish_idempotency(&scope, "k1", &k1, &response(500))
        .await
        .unwrap());
    // The other scope's key is still in progress.
    assert_eq!(
        begin_at(store, &other_scope, "k1", "h1", t(3)).await,
        IdempotencyBegin::InProgress
    );
    // Abandoning a finished key does not forget its response.
    store
        .abandon_idempotency(&scope, "k1", &k1, t(4))
        .await
        .unwrap();
    assert_eq!(
        begin_at(store, &scope, "k1", "h1", t(4)).await,
        IdempotencyBegin::Replay(resp)
    );
    // An empty body is kept as such.
    let empty = StoredResponse {
        status: 204,
        body: vec![],
    };
    assert!(store
        .finish_idempotency(&scope, "k2", &k2, &empty)
        .await
        .unwrap());
    assert_eq!(
        begin_at(store, &scope, "k2", "h1", t(5)).await,
        IdempotencyBegin::Replay(empty)
    );
}

pub async fn idempotency_abandon(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let owner = reserved(begin_at(store, &scope, "k", "h1", t(0)).await);
    // Only the owner releases it.
    store
        .abandon_idempotency(&scope, "k", "someone-else", t(0))
        .await
        .unwrap();
    assert_eq!(
        begin_at(store, &scope, "k", "h1", t(1)).await,
        IdempotencyBegin::InProgress
    );
    store
        .abandon_idempotency(&scope, "k", &owner, t(1))
        .await
        .unwrap();
    // The retry may even be a different request now.
    reserved(begin_at(store, &scope, "k", "h2", t(1)).await);
    assert_eq!(
        begin_at(store, &scope, "k", "h2", t(2)).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin_at(store, &scope, "k", "h1", t(2)).await,
        IdempotencyBegin::Mismatch
    );
    // Abandoning an unknown key is harmless.
    store
        .abandon_idempotency(&scope, "nope", &owner, t(2))
        .await
        .unwrap();
}

pub async fn idempotency_expiry(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let day = 24 * 3600;
    let begin = |key: &'static str, hash: &'static str, at| begin_at(store, &scope, key, hash, at);
    let owner = reserved(begin("done", "h1", t(0)).await);
    let resp = response(200);
    assert!(store
        .finish_idempotency(&scope, "done", &owner, &resp)
        .await
        .unwrap());
    // Remembered for a day…
    assert_eq!(
        begin("done", "h1", t(day - 1)).await,
        IdempotencyBegin::Replay(resp)
    );
    assert_eq!(
        begin("done", "h2", t(day - 1)).await,
        IdempotencyBegin::Mismatch
    );
    // … then the key is free again, for any request, and the new reservation counts.
    reserved(begin("done", "h2", t(day + 1)).await);
    assert_eq!(
        begin("done", "h2", t(day + 2)).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin("done", "h1", t(day + 2)).await,
        IdempotencyBegin::Mismatch
    );
}

/// A reservation whose lease passed without a response and without a commit belongs to a
/// dead request: a retry takes it over and runs; while the lease is live, nobody does.
pub async fn idempotency_takeover_after_lease_expiry(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let lease = lease_secs();
    let first = reserved(begin_at(store, &scope, "k", "h", t(0)).await);
    // Live until the lease ends: no takeover, however often it is retried.
    for at in [1, lease / 2, lease - 1] {
        assert_eq!(
            begin_at(store, &scope, "k", "h", t(at)).await,
            IdempotencyBegin::InProgress,
            "{at} s after the reservation"
        );
    }
    // Another request under the key is still refused.
    assert_eq!(
        begin_at(store, &scope, "k", "other", t(lease + 1)).await,
        IdempotencyBegin::Mismatch
    );
    // The lease has passed: the retry takes it over, with a lease of its own.
    let second = reserved(begin_at(store, &scope, "k", "h", t(lease)).await);
    assert_ne!(first, second);
    assert_eq!(
        begin_at(store, &scope, "k", "h", t(2 * lease - 1)).await,
        IdempotencyBegin::InProgress
    );
    // The dead request can no longer store a response or release the key.
    assert!(!store
        .finish_idempotency(&scope, "k", &first, &response(201))
        .await
        .unwrap());
    store
        .abandon_idempotency(&scope, "k", &first, t(lease + 1))
        .await
        .unwrap();
    assert_eq!(
        begin_at(store, &scope, "k", "h", t(lease + 2)).await,
        IdempotencyBegin::InProgress
    );
    // Nor can it commit a business write under the key: its transaction fails, writes nothing.
    let late = named("Late Writer");
    let r = as_request(&scope, "k", &first, Some("subscriber"), async {
        store
            .insert_subscriber(
                &late,
                &audit_of(
                    t(lease + 3),
                    Some(late.id),
                    "subscriber",
                    late.id,
                    "subscriber.create",
                    &late,
                ),
            )
            .await
    })
    .await;
    expect_stale(r, "idempotency key");
    assert_eq!(store.get_subscriber(late.id).await.unwrap(), None);
    // The new owner finishes it.
    let resp = response(201);
    assert!(store
        .finish_idempotency(&scope, "k", &second, &resp)
        .await
        .unwrap());
    assert_eq!(
        begin_at(store, &scope, "k", "h", t(3 * lease)).await,
        IdempotencyBegin::Replay(resp)
    );
}

/// The business transaction marks the key committed, in the same transaction: a write that
/// fails or rolls back leaves it uncommitted (a retry runs), one that commits leaves what it
/// committed (a retry recovers the response and runs nothing).
pub async fn idempotency_commit_marked_with_the_business_write(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let lease = lease_secs();
    let after_lease = t(lease);

    // A subscriber insert that fails (its number is taken) marks nothing.
    let taken = named("Taken Number");
    add_subscriber(store, &taken).await;
    let owner = reserved(begin_at(store, &scope, "dup", "h", t(0)).await);
    let mut dup = named("Duplicate");
    dup.number = taken.number.clone();
    let r = as_request(&scope, "dup", &owner, Some("subscriber"), async {
        store
            .insert_subscriber(
                &dup,
                &audit_of(
                    t(1),
                    Some(dup.id),
                    "subscriber",
                    dup.id,
                    "subscriber.create",
                    &dup,
                ),
            )
            .await
    })
    .await;
    expect_duplicate(r, "subscriber", "number");
    reserved(begin_at(store, &scope, "dup", "h", after_lease).await);

    // One that commits marks the key with its audit event.
    let owner = reserved(begin_at(store, &scope, "ok", "h", t(0)).await);
    let sub = named("Committed");
    let audit = audit_of(
        t(1),
        Some(sub.id),
        "subscriber",
        sub.id,
        "subscriber.create",
        &sub,
    );
    as_request(&scope, "ok", &owner, Some("subscriber"), async {
        store.insert_subscriber(&sub, &audit).await
    })
    .await
    .expect("insert_subscriber");
    // Still its own while the lease is live.
    assert_eq!(
        begin_at(store, &scope, "ok", "h", t(2)).await,
        IdempotencyBegin::InProgress
    );
    let expected = IdempotencyCommit {
        audit_event_id: audit.id.0,
        entity_type: "subscriber".into(),
        entity_id: sub.id.to_string(),
        subscriber_id: Some(sub.id.0),
        service_event_id: None,
        job_ids: vec![],
    };
    let recovered = match begin_at(store, &scope, "ok", "h", after_lease).await {
        IdempotencyBegin::Recover { owner: o, commit } => {
            assert_ne!(o, owner, "the recovering retry holds a lease of its own");
            assert_eq!(commit, expected);
            o
        }
        other => panic!("a committed request is recovered, not run again: {other:?}"),
    };
    // One recovery at a time.
    assert_eq!(
        begin_at(store, &scope, "ok", "h", after_lease).await,
        IdempotencyBegin::InProgress
    );
    let resp = response(201);
    assert!(store
        .finish_idempotency(&scope, "ok", &recovered, &resp)
        .await
        .unwrap());
    assert_eq!(
        begin_at(store, &scope, "ok", "h", t(3 * lease)).await,
        IdempotencyBegin::Replay(resp)
    );

    // A service business event that rolls back (a job id that exists) marks nothing; one that
    // commits records its timeline event and jobs. Only audit events of the request's entity
    // type mark: the subscriber insert of the world below does not.
    let owner = reserved(begin_at(store, &scope, "svc", "h", t(0)).await);
    let w = as_request(&scope, "svc", &owner, Some("service"), world(store)).await;
    let s = new_service(store, &w).await;
    let k = JobKind::NasCoa;
    let existing = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t0())]
    })
    .await;
    let mut reused = job(&k, Some(w.sub.id), Some(s.id), t(1));
    reused.id = existing[0].id;
    let failing = change(&s, 1, EventKind::Activated, t(1), t(1), vec![reused]);
    let r = as_request(&scope, "svc", &owner, Some("service"), async {
        store.record_service_change(&failing).await
    })
    .await;
    assert!(r.is_err(), "a change with a duplicate job id must fail");
    assert_not_written(store, &failing).await;
    let jobs = vec![
        job(&k, Some(w.sub.id), Some(s.id), t(2)),
        job(&k, Some(w.sub.id), Some(s.id), t(2)),
    ];
    let ok = change(&s, 1, EventKind::Activated, t(2), t(2), jobs.clone());
    as_request(&scope, "svc", &owner, Some("service"), async {
        store.record_service_change(&ok).await
    })
    .await
    .expect("record_service_change");
    // A later write of the same request (another transaction) keeps the first mark.
    let later = change(&ok.service, 2, EventKind::Suspended, t(3), t(3), vec![]);
    as_request(&scope, "svc", &owner, Some("service"), async {
        store.record_service_change(&later).await
    })
    .await
    .expect("record_service_change");
    match begin_at(store, &scope, "svc", "h", after_lease).await {
        IdempotencyBegin::Recover { commit, .. } => assert_eq!(
            commit,
            IdempotencyCommit {
                audit_event_id: ok.audit.id.0,
                entity_type: "service".into(),
                entity_id: s.id.to_string(),
                subscriber_id: Some(w.sub.id.0),
                service_event_id: Some(ok.event.id.0),
                job_ids: jobs.iter().map(|j| j.id.0).collect(),
            }
        ),
        other => panic!("expected a recovery: {other:?}"),
    }

    // Released after a failure: forgotten if nothing committed (a retry runs at once)…
    let owner = reserved(begin_at(store, &scope, "fail", "h", t(0)).await);
    store
        .abandon_idempotency(&scope, "fail", &owner, t(1))
        .await
        .unwrap();
    reserved(begin_at(store, &scope, "fail", "h", t(1)).await);
    // … else recovered at once, the lease ended.
    let owner = reserved(begin_at(store, &scope, "half", "h", t(0)).await);
    let sub = named("Half Done");
    as_request(&scope, "half", &owner, None, async {
        store
            .insert_subscriber(
                &sub,
                &audit_of(
                    t(1),
                    Some(sub.id),
                    "subscriber",
                    sub.id,
                    "subscriber.create",
                    &sub,
                ),
            )
            .await
    })
    .await
    .expect("insert_subscriber");
    store
        .abandon_idempotency(&scope, "half", &owner, t(2))
        .await
        .unwrap();
    assert!(
        matches!(
            begin_at(store, &scope, "half", "h", t(2)).await,
            IdempotencyBegin::Recover { ref commit, .. } if commit.entity_id == sub.id.to_string()
        ),
        "a committed request is never forgotten"
    );
}

pub async fn idempotency_concurrent_begin(store: Arc<dyn Store>) {
    let scope = format!("conformance-{}", tag());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let scope = scope.clone();
            tokio::spawn(
                async move { begin_at(&*store, &scope, "same-key", "same-hash", t(i)).await },
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task"));
    }
    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, IdempotencyBegin::Reserved { .. }))
        .count();
    assert_eq!(reserved, 1, "exactly one request may proceed: {outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        IdempotencyBegin::Reserved { .. } | IdempotencyBegin::InProgress
    )));
}

/// Retries racing for the same expired reservation: exactly one takes it over (to run it, or
/// to recover its response), the others see it in progress.
pub async fn idempotency_concurrent_takeover_once(store: Arc<dyn Store>) {
    let scope = format!("conformance-{}", tag());
    let lease = lease_secs();
    reserved(begin_at(&*store, &scope, "dead", "h", t(0)).await);
    let owner = reserved(begin_at(&*store, &scope, "committed", "h", t(0)).await);
    let sub = named("Raced");
    as_request(&scope, "committed", &owner, Some("subscriber"), async {
        store
            .insert_subscriber(
                &sub,
                &audit_of(
                    t(1),
                    Some(sub.id),
                    "subscriber",
                    sub.id,
                    "subscriber.create",
                    &sub,
                ),
            )
            .await
    })
    .await
    .expect("insert_subscriber");
    for key in ["dead", "committed"] {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let scope = scope.clone();
                tokio::spawn(
                    async move { begin_at(&*store, &scope, key, "h", t(lease + i % 2)).await },
                )
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        let taken = outcomes
            .iter()
            .filter(|o| !matches!(o, IdempotencyBegin::InProgress))
            .collect::<Vec<_>>();
        assert_eq!(taken.len(), 1, "{key}: exactly one takeover: {outcomes:?}");
        match (key, taken[0]) {
            ("dead", IdempotencyBegin::Reserved { .. }) => {}
            ("committed", IdempotencyBegin::Recover { commit, .. }) => {
                assert_eq!(commit.entity_id, sub.id.to_string())
            }
            (k, o) => panic!("{k}: unexpected takeover {o:?}"),
        }
    }
}

// Cases: counters, operators ----------------------------------------------------------------

pub async fn next_counter_increments_per_name(store: Arc<dyn Store>) {
    let a = format!("conformance-{}-a", tag());
    let b = format!("conformance-{}-b", tag());
    for expected in 1..=3 {
        assert_eq!(store.next_counter(&a).await.unwrap(), expected);
    }
    assert_eq!(store.next_counter(&b).await.unwrap(), 1);
    assert_eq!(store.next_counter(&a).await.unwrap(), 4);
    assert_eq!(store.next_counter(&b).await.unwrap(), 2);

    // Concurrent callers get distinct, gap-free values.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let a = a.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..5 {
                    got.push(store.next_counter(&a).await.expect("next_counter"));
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort();
    assert_eq!(all, (5..=24).collect::<Vec<i64>>());
    assert_eq!(store.next_counter(&b).await.unwrap(), 3);
}

pub async fn operator_tokens(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let operator = |name: &str, role| Operator {
        id: OperatorId::generate(),
        name: name.into(),
        role,
        created_at: t(0),
    };
    let token = |op: &Operator, hash: String, revoked_at| ApiToken {
        id: TokenId::generate(),
        operator_id: op.id,
        token_hash: hash,
        created_at: t(1),
        revoked_at,
    };
    let op_audit = |op: &Operator| audit_of(t(1), None, "operator", op.id, "operator.create", op);

    let admin = operator("Alice Admin", Role::Admin);
    let live = token(&admin, format!("{tag}01"), None);
    let a = op_audit(&admin);
    store.insert_operator(&admin, &live, &a).await.unwrap();
    assert_eq!(
        store.find_token(&live.token_hash).await.unwrap(),
        Some((live.clone(), admin.clone()))
    );
    assert_eq!(audits(store, admin.id).await, vec![a]);

    let noc = operator("Nora Noc", Role::Noc);
    let revoked = token(&noc, format!("{tag}02"), Some(t(5)));
    store
        .insert_operator(&noc, &revoked, &op_audit(&noc))
        .await
        .unwrap();
    assert_eq!(store.find_token(&revoked.token_hash).await.unwrap(), None);
    assert_eq!(store.find_token(&format!("{tag}03")).await.unwrap(), None);

    // A token hash is unique; the operator of a failed insert is not created.
    let dup = operator("Dup", Role::Readonly);
    let r = store
        .insert_operator(
            &dup,
            &token(&dup, live.token_hash.clone(), None),
            &op_audit(&dup),
        )
        .await;
    expect_duplicate(r, "api token", "token");
    assert!(audits(store, dup.id).await.is_empty());
    assert_eq!(
        store.find_token(&live.token_hash).await.unwrap(),
        Some((live, admin))
    );
}

// Billing helpers ---------------------------------------------------------------------------

/// A random date (years 1000–8999): an as-of date or period no other case uses, so the
/// one-running-run-per-date rule and period filters only meet this case's rows.
fn unique_date() -> Date {
    let r = random_u64();
    Date::new(
        1000 + (r % 8000) as i16,
        1 + ((r >> 20) % 12) as i8,
        1 + ((r >> 40) % 28) as i8,
    )
    .expect("valid date")
}

fn days_after(d: Date, n: i64) -> Date {
    d.checked_add(SignedDuration::from_hours(24 * n))
        .expect("date in range")
}

/// A running billing run as of `as_of`, nothing processed yet.
fn billing_run(as_of: Date) -> BillingRun {
    BillingRun {
        id: BillingRunId::generate(),
        as_of,
        status: BillingRunStatus::Running,
        started_at: t(0),
        finished_at: None,
        cursor: None,
        subscribers_processed: 0,
        invoices_created: 0,
        errors: vec![],
        subscriber_id: None,
        failure: None,
    }
}

async fn add_run(store: &dyn Store, as_of: Date) -> BillingRun {
    let run = billing_run(as_of);
    store
        .insert_billing_run(&run)
        .await
        .expect("insert_billing_run");
    run
}

async fn run_of(store: &dyn Store, id: BillingRunId) -> BillingRun {
    store
        .get_billing_run(id)
        .await
        .expect("get_billing_run")
        .expect("billing run exists")
}

/// `n` subscribers, each with one pending service on one plan, stored; in id order.
async fn billing_world(store: &dyn Store, n: usize) -> (Plan, Vec<(Subscriber, Service)>) {
    let p = plan(&code());
    add_plan(store, &p).await;
    let mut subs = Vec::new();
    for i in 0..n {
        let sub = named(&format!("Billed Subscriber {i}"));
        add_subscriber(store, &sub).await;
        let svc = service(&sub, &p, None);
        add_service(store, &svc).await;
        subs.push((sub, svc));
    }
    subs.sort_by_key(|(s, _)| s.id);
    (p, subs)
}

/// An issued invoice of `svc`'s subscriber for the period starting `period` (created, and so
/// issued, at `t(3_600)`, due 14 days into the period), without tax, one line per amount:
/// recurring, setup fee and early termination for the period, then corrections of the
/// period before (a discount, then the kinds again). The lines are listed in reverse
/// position order: stores return them by position.
fn new_invoice(
    svc: &Service,
    period: Date,
    run: Option<BillingRunId>,
    amounts: &[i64],
) -> NewInvoice {
    let id = InvoiceId::generate();
    let kinds = [
        ChargeKind::Recurring,
        ChargeKind::SetupFee,
        ChargeKind::EarlyTermination,
        ChargeKind::Discount,
    ];
    let mut lines: Vec<InvoiceLine> = amounts
        .iter()
        .enumerate()
        .map(|(i, &amount_minor)| InvoiceLine {
            id: InvoiceLineId::generate(),
            invoice_id: id,
            subscriber_id: svc.subscriber_id,
            position: i as i32 + 1,
            description: format!("Line {} «Zürich» \"quoted\"", i + 1),
            service_id: svc.id,
            charge_kind: kinds[i % kinds.len()],
            charge_period_start: if i < 3 {
                period
            } else {
                days_after(period, -30)
            },
            plan_version_id: svc.plan_version_id,
            correction: i >= 3,
            days: 30 - i as i64,
            period_days: 30,
            amount_minor,
            tax_minor: 0,
            taxes: vec![],
        })
        .collect();
    lines.reverse();
    NewInvoice {
        id,
        subscriber_id: svc.subscriber_id,
        currency: Currency::parse("CHF").expect("currency"),
        period_start: period,
        period_end: days_after(period, 29),
        created_at: t(3_600),
        issue: Some(days_after(period, 14)),
        prices_include_tax: false,
        billing_run_id: run,
        lines,
    }
}

fn billing_batch(
    run: &BillingRun,
    invoices: Vec<NewInvoice>,
    cursor: SubscriberId,
    subscribers: i64,
    errors: Vec<BillingRunError>,
    prefix: &str,
) -> BillingBatch {
    BillingBatch {
        run: run.id,
        invoices,
        cursor,
        subscribers,
        errors,
        number_prefix: prefix.into(),
    }
}

fn run_error(sub: &Subscriber, message: &str) -> BillingRunError {
    BillingRunError {
        subscriber_id: sub.id,
        message: message.into(),
    }
}

/// `inv` as the store keeps it under `number` (`None` for a draft): issued at its creation
/// when it is to be issued, else a draft; lines by position; totals of the lines.
fn stored_invoice(inv: &NewInvoice, number: Option<&str>) -> Invoice {
    let mut lines = inv.lines.clone();
    lines.sort_by_key(|l| l.position);
    Invoice {
        id: inv.id,
        subscriber_id: inv.subscriber_id,
        number: number.map(str::to_string),
        // A zero invoice is settled as it is issued.
        status: match inv.issue {
            Some(_) => lastmile_domain::billing::invoice::status_at_issue(inv.total_minor()),
            None => InvoiceStatus::Draft,
        },
        currency: inv.currency.clone(),
        period_start: inv.period_start,
        period_end: inv.period_end,
        created_at: inv.created_at,
        issued_at: inv.issue.map(|_| inv.created_at),
        due_date: inv.issue,
        subtotal_minor: inv.subtotal_minor(),
        tax_minor: inv.tax_minor(),
        total_minor: inv.total_minor(),
        prices_include_tax: inv.prices_include_tax,
        billing_run_id: inv.billing_run_id,
        voided_at: None,
        void_reason: None,
        lines,
    }
}

/// The number of an issued invoice.
fn number_of(inv: &Invoice) -> &str {
    inv.number
        .as_deref()
        .unwrap_or_else(|| panic!("invoice {} has no number", inv.id))
}

async fn invoice_of(store: &dyn Store, id: InvoiceId) -> Invoice {
    store
        .get_invoice(id)
        .await
        .expect("get_invoice")
        .expect("invoice exists")
}

/// The sequence number in `number`, which must be `prefix` + at least six zero-padded digits.
fn seq_of(number: &str, prefix: &str) -> i64 {
    let digits = number
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("invoice number {number:?} lacks the prefix {prefix:?}"));
    let n: i64 = digits
        .parse()
        .unwrap_or_else(|e| panic!("invoice number {number:?}: {e}"));
    assert_eq!(
        format!("{prefix}{n:06}"),
        number,
        "zero-padded to six digits"
    );
    n
}

/// Invoice numbers come from one counter per database (`invoice_number`), so in a database
/// shared with other cases their batches take numbers between this case's. Whether the
/// counter was this case's alone is decidable afterwards: invoices are never deleted and
/// every write that takes numbers numbers invoices in the same transaction, so if the
/// database holds only this case's `count` invoices (drafts included), nobody else took a
/// number. The exact gap-free sequence (`000001`, `000002`, …) is asserted only then; the
/// properties that hold regardless (consecutive within a batch, increasing across batches,
/// unique) always are.
async fn counter_is_ours(store: &dyn Store, prefix: &str, count: usize) -> bool {
    let all = store
        .list_invoices(&InvoiceFilter::default(), page(None, count as u32 + 1))
        .await
        .expect("list_invoices");
    all.len() == count
        && all
            .iter()
            .all(|i| i.number.as_deref().is_none_or(|n| n.starts_with(prefix)))
}

fn just_before(id: SubscriberId) -> SubscriberId {
    SubscriberId(Uuid::from_u128(id.0.as_u128() - 1))
}

/// Walks `billing_inputs` in pages of `limit` from just before `first` until past `last`,
/// checking that every page is in strictly increasing id order, continues after its cursor,
/// holds at most `limit` subscribers and never mixes one subscriber's history into another's.
/// Returns the inputs of the subscribers in `ours`, in the order they came.
async fn billing_inputs_of(
    store: &dyn Store,
    ours: &[SubscriberId],
    limit: u32,
) -> Vec<BillingInput> {
    let first = *ours.iter().min().expect("some subscribers");
    let last = *ours.iter().max().expect("some subscribers");
    let mut after = just_before(first);
    let mut found = Vec::new();
    loop {
        let batch = store
            .billing_inputs(Some(after), limit, None)
            .await
            .expect("billing_inputs");
        assert!(
            batch.len() <= limit as usize,
            "a page holds at most `limit`"
        );
        let mut prev = after;
        for input in &batch {
            let id = input.subscriber.id;
            assert!(id > prev, "subscribers in strictly increasing id order");
            prev = id;
            for h in &input.services {
                assert!(
                    h.events
                        .iter()
                        .all(|e| e.subscriber_id == id && e.service_id == h.service_id),
                    "an event of another subscriber or service leaked into {id}"
                );
            }
        }
        let done = batch.len() < limit as usize || prev >= last;
        found.extend(
            batch
                .into_iter()
                .filter(|i| ours.contains(&i.subscriber.id)),
        );
        if done {
            return found;
        }
        after = prev;
    }
}

fn invoiced_of(invoices: &[&NewInvoice]) -> Vec<(ChargeKey, i64)> {
    let v: Vec<(ChargeKey, i64)> = invoices
        .iter()
        .flat_map(|i| i.lines.iter())
        .map(|l| {
            (
                ChargeKey {
                    period_start: l.charge_period_start,
                    service_id: l.service_id,
                    kind: l.charge_kind,
                    plan_version_id: l.plan_version_id,
                },
                l.amount_minor,
            )
        })
        .collect();
    per_key(v)
}

/// Sums amounts per charge key: what rating compares (stores may return lines pre-summed).
fn per_key(v: Vec<(ChargeKey, i64)>) -> Vec<(ChargeKey, i64)> {
    let mut m: std::collections::BTreeMap<ChargeKey, i64> = Default::default();
    for (k, a) in v {
        *m.entry(k).or_default() += a;
    }
    m.into_iter().collect()
}

/// Events as billing reads them: without reason and actor, which rating does not use.
fn for_billing(events: &[TimelineEvent]) -> Vec<TimelineEvent> {
    events
        .iter()
        .map(|e| TimelineEvent {
            reason: None,
            actor: String::new(),
            ..e.clone()
        })
        .collect()
}

fn invoiced_keys(input: &BillingInput) -> Vec<(ChargeKey, i64)> {
    let mut v: Vec<(ChargeKey, i64)> = input
        .invoiced
        .iter()
        .map(|i| (i.key, i.amount_minor))
        .collect();
    v.sort();
    per_key(v)
}

// Cases: billing ----------------------------------------------------------------------------

pub async fn billing_plan_catalog(store: Arc<dyn Store>) {
    let store = &*store;
    let a = plan(&code());
    add_plan(store, &a).await;
    let b = plan(&code());
    add_plan(store, &b).await;
    // A new version and a new name: every version is listed under the plan's current name.
    let mut t2 = terms(5_900);
    t2.billing_interval = BillingInterval::Quarterly;
    let mut b2 = new_version(&b, t(100), t2);
    b2.name = format!("{} renamed", b.name);
    store
        .update_plan(
            &b2,
            1,
            &audit_of(t(100), None, "plan", b.id, "plan.update", &b2),
        )
        .await
        .unwrap();

    let catalog = store.plan_catalog().await.expect("plan_catalog");
    let mut ours: Vec<(String, PlanVersion)> = catalog
        .into_iter()
        .filter(|(_, v)| v.plan_id == a.id || v.plan_id == b.id)
        .collect();
    ours.sort_by_key(|(_, v)| (v.plan_id == b.id, v.version));
    assert_eq!(
        ours,
        vec![
            (a.name.clone(), a.current.clone()),
            (b2.name.clone(), b.current.clone()),
            (b2.name.clone(), b2.current.clone()),
        ]
    );
}

pub async fn billing_inputs_pages_subscribers_with_history(store: Arc<dyn Store>) {
    let store = &*store;
    let (p, subs) = billing_world(store, 4).await;
    let q = plan(&code());
    add_plan(store, &q).await;
    let ((a, a1), (b, b1), (c, c1), (d, _)) = (
        subs[0].clone(),
        subs[1].clone(),
        subs[2].clone(),
        subs[3].clone(),
    );
    // a: a second service (pending, no events); the first activated, then moved to plan q.
    let a2 = service(&a, &p, None);
    add_service(store, &a2).await;
    let e1 = change(&a1, 1, EventKind::Activated, t(0), t(0), vec![]);
    let e2 = plan_change(&e1.service, 2, &q, t(86_400 * 10), t(86_400 * 10));
    let e3 = change(
        &e2.service,
        3,
        EventKind::Suspended,
        t(86_400 * 12),
        t(86_400 * 12),
        vec![],
    );
    // Recorded in another order than by seq would suggest for another subscriber's service.
    let f1 = change(&b1, 1, EventKind::Activated, t(5), t(5), vec![]);
    let f2 = change(
        &f1.service,
        2,
        EventKind::Terminated,
        t(86_400 * 40),
        t(86_400 * 40),
        vec![],
    );
    for ch in [&e1, &f1, &e2, &f2, &e3] {
        record(store, ch).await;
    }
    // c has a service with one event; d has a service and nothing else.
    let g1 = change(&c1, 1, EventKind::Activated, t(7), t(7), vec![]);
    record(store, &g1).await;

    // Invoices: b for two periods, a for one; c and d none.
    let p1 = unique_date();
    let p2 = days_after(p1, 30);
    let run = add_run(store, unique_date()).await;
    let prefix = format!("T{}-", tag());
    let inv_b1 = new_invoice(&b1, p1, Some(run.id), &[4_900, 9_900, -1_200, 300]);
    let inv_b2 = new_invoice(&b1, p2, Some(run.id), &[4_900]);
    let inv_a1 = new_invoice(&a1, p1, Some(run.id), &[2_450, 9_900]);
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![inv_b1.clone(), inv_a1.clone(), inv_b2.clone()],
            d.id,
            4,
            vec![],
            &prefix,
        ))
        .await
        .expect("commit_billing_batch");
    assert_eq!(n, 3);

    let ids = [a.id, b.id, c.id, d.id];
    for limit in [1, 2, 3, 100] {
        let inputs = billing_inputs_of(store, &ids, limit).await;
        assert_eq!(
            inputs.iter().map(|i| i.subscriber.id).collect::<Vec<_>>(),
            ids,
            "each subscriber once, in id order (limit {limit})"
        );
        let by_id = |id| inputs.iter().find(|i| i.subscriber.id == id).unwrap();

        let ia = by_id(a.id);
        assert_eq!(ia.subscriber, BillingSubscriber::from(&a));
        let mut services: Vec<&ServiceHistory> = ia.services.iter().collect();
        services.sort_by_key(|h| h.service_id);
        let mut expected = vec![
            (
                a1.id,
                vec![e1.event.clone(), e2.event.clone(), e3.event.clone()],
            ),
            (a2.id, vec![]),
        ];
        expected.sort_by_key(|(id, _)| *id);
        assert_eq!(services.len(), 2);
        for (h, (svc, events)) in services.iter().zip(&expected) {
            assert_eq!(h.service_id, *svc);
            // The initial plan, not the current one (a1 moved to q).
            assert_eq!(h.initial, ServiceState::pending(p.id, p.current.id));
            let mut got = h.events.clone();
            got.sort_by_key(|e| e.seq);
            assert_eq!(got, for_billing(events));
        }
        assert_eq!(invoiced_keys(ia), invoiced_of(&[&inv_a1]));
        assert_eq!(ia.invoiced_periods, vec![p1]);

        let ib = by_id(b.id);
        assert_eq!(ib.subscriber, BillingSubscriber::from(&b));
        assert_eq!(ib.services.len(), 1);
        assert_eq!(ib.services[0].service_id, b1.id);
        assert_eq!(
            ib.services[0].initial,
            ServiceState::pending(p.id, p.current.id)
        );
        let mut got = ib.services[0].events.clone();
        got.sort_by_key(|e| e.seq);
        assert_eq!(got, for_billing(&[f1.event.clone(), f2.event.clone()]));
        assert_eq!(invoiced_keys(ib), invoiced_of(&[&inv_b1, &inv_b2]));
        assert_eq!(sorted(&ib.invoiced_periods), vec![p1, p2]);

        let ic = by_id(c.id);
        assert_eq!(ic.services.len(), 1);
        assert_eq!(ic.services[0].service_id, c1.id);
        assert_eq!(
            ic.services[0].events,
            for_billing(std::slice::from_ref(&g1.event))
        );
        assert!(ic.invoiced.is_empty() && ic.invoiced_periods.is_empty());

        let id_ = by_id(d.id);
        assert_eq!(id_.subscriber, BillingSubscriber::from(&d));
        assert_eq!(id_.services.len(), 1);
        assert!(id_.services[0].events.is_empty());
        assert!(id_.invoiced.is_empty() && id_.invoiced_periods.is_empty());
    }

    // Paging from the start follows subscriber id order, like the subscriber listing.
    let head = store
        .billing_inputs(None, 2, None)
        .await
        .expect("billing_inputs");
    let listed = store
        .list_subscribers(&SubscriberFilter::default(), page(None, 2))
        .await
        .unwrap();
    assert_eq!(
        head.iter().map(|i| i.subscriber.id).collect::<Vec<_>>(),
        sub_ids(&listed)
    );
    // Nothing after the largest id.
    assert!(store
        .billing_inputs(Some(SubscriberId(Uuid::max())), 10, None)
        .await
        .unwrap()
        .is_empty());
    // That void invoices are left out of `invoiced`: void_invoice_frees_its_period.
}

pub async fn billing_runs_insert_get_list(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 1).await;
    let sub = &subs[0].0;
    let mut runs = Vec::new();
    for i in 0..5 {
        let mut run = billing_run(unique_date());
        if i % 2 == 1 {
            run.status = BillingRunStatus::Completed;
            run.finished_at = Some(t(600 + i));
            run.cursor = Some(sub.id);
            run.subscribers_processed = 1_000 + i;
            run.invoices_created = 900 + i;
            run.errors = vec![
                run_error(sub, "plan version is unknown"),
                run_error(sub, "ü ✓"),
            ];
        }
        store
            .insert_billing_run(&run)
            .await
            .expect("insert_billing_run");
        runs.push(run);
    }
    for run in &runs {
        assert_eq!(run_of(store, run.id).await, *run);
    }
    assert_eq!(
        store
            .get_billing_run(BillingRunId::generate())
            .await
            .unwrap(),
        None
    );
    runs.sort_by_key(|r| r.id);
    let ids: Vec<BillingRunId> = runs.iter().map(|r| r.id).collect();

    // Keyset pagination in id order: walk from just before the first of ours past the last.
    for limit in [1, 2, 5] {
        let mut seen = Vec::new();
        let mut after = Some(Uuid::from_u128(ids[0].0.as_u128() - 1));
        loop {
            let batch = store
                .list_billing_runs(page(after, limit))
                .await
                .expect("list_billing_runs");
            assert!(batch.len() <= limit as usize);
            assert!(batch.windows(2).all(|w| w[0].id < w[1].id));
            if let (Some(a), Some(f)) = (after, batch.first()) {
                assert!(f.id.0 > a);
            }
            let last = batch.last().map(|r| r.id);
            seen.extend(batch.into_iter().filter(|r| ids.contains(&r.id)));
            match last {
                Some(l) if l < ids[4] && seen.len() < ids.len() => after = Some(l.0),
                _ => break,
            }
        }
        assert_eq!(seen, runs, "limit {limit}");
    }
}

pub async fn billing_run_unfinished_and_single_running(store: Arc<dyn Store>) {
    let store = &*store;
    let as_of = unique_date();
    let other_day = unique_date();
    assert_eq!(store.unfinished_billing_run(as_of).await.unwrap(), None);

    // A completed run does not count as unfinished and does not block a new one.
    let mut done = billing_run(as_of);
    done.status = BillingRunStatus::Completed;
    done.finished_at = Some(t(10));
    store.insert_billing_run(&done).await.unwrap();
    assert_eq!(store.unfinished_billing_run(as_of).await.unwrap(), None);

    let first = add_run(store, as_of).await;
    let elsewhere = add_run(store, other_day).await;
    assert_eq!(
        store.unfinished_billing_run(as_of).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.unfinished_billing_run(other_day).await.unwrap(),
        Some(elsewhere.clone())
    );

    // A second running run for the same date is refused, and nothing is stored.
    let second = billing_run(as_of);
    expect_duplicate(
        store.insert_billing_run(&second).await,
        "billing run",
        "as_of",
    );
    assert_eq!(store.get_billing_run(second.id).await.unwrap(), None);
    // A completed one for that date is still fine.
    let mut done2 = billing_run(as_of);
    done2.status = BillingRunStatus::Completed;
    done2.finished_at = Some(t(20));
    store.insert_billing_run(&done2).await.unwrap();

    // Completing sets status and finish time, and leaves the rest as it was.
    store
        .complete_billing_run(first.id, t(900), None)
        .await
        .expect("complete_billing_run");
    let mut completed = first.clone();
    completed.status = BillingRunStatus::Completed;
    completed.finished_at = Some(t(900));
    assert_eq!(run_of(store, first.id).await, completed);
    assert_eq!(store.unfinished_billing_run(as_of).await.unwrap(), None);
    assert_eq!(
        store.unfinished_billing_run(other_day).await.unwrap(),
        Some(elsewhere.clone())
    );
    // A run that cannot finish is failed with its reason, and is no longer unfinished, so
    // the next start for its date begins a new run. A finished run stays as it is.
    store
        .complete_billing_run(elsewhere.id, t(950), Some("integer overflow"))
        .await
        .expect("fail the run");
    let failed = run_of(store, elsewhere.id).await;
    assert_eq!(failed.status, BillingRunStatus::Failed);
    assert_eq!(failed.failure.as_deref(), Some("integer overflow"));
    assert_eq!(failed.finished_at, Some(t(950)));
    assert_eq!(store.unfinished_billing_run(other_day).await.unwrap(), None);
    store
        .complete_billing_run(first.id, t(990), Some("late failure"))
        .await
        .unwrap();
    assert_eq!(run_of(store, first.id).await, completed);

    // Now a new run for the date may start.
    let third = add_run(store, as_of).await;
    assert_eq!(
        store.unfinished_billing_run(as_of).await.unwrap(),
        Some(third)
    );
}

/// Batches queued one after another (the next before the last has committed) commit in
/// that order: numbers follow the queue, and the cursor ends at the last batch's, having
/// counted every batch once.
pub async fn queued_billing_batches_commit_in_queue_order(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, mut subs) = billing_world(store, 4).await;
    // Cursors move forward in subscriber id order.
    subs.sort_by_key(|s| s.0.id);
    let period = unique_date();
    let run = add_run(store, unique_date()).await;
    let prefix = format!("Q{}-", tag());
    let mut pending = Vec::new();
    let mut ids = Vec::new();
    for s in &subs {
        let inv = new_invoice(&s.1, period, Some(run.id), &[1_000]);
        ids.push(inv.id);
        let batch = billing_batch(&run, vec![inv], s.0.id, 1, vec![], &prefix);
        pending.push(store.queue_billing_batch(batch).await.expect("queued"));
    }
    for p in pending {
        assert_eq!(p.await.expect("committed"), 1);
    }
    let mut numbers = Vec::new();
    for id in ids {
        numbers.push(seq_of(number_of(&invoice_of(store, id).await), &prefix));
    }
    let first = numbers[0];
    assert_eq!(numbers, (first..first + 4).collect::<Vec<_>>());
    let done = run_of(store, run.id).await;
    assert_eq!(done.cursor, subs.last().map(|s| s.0.id));
    assert_eq!(done.subscribers_processed, 4);
    assert_eq!(done.invoices_created, 4);
}

pub async fn commit_billing_batch_numbers_and_progress(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 6).await;
    let [a, b, c, d, e, f] = [0, 1, 2, 3, 4, 5].map(|i| &subs[i]);
    let p1 = unique_date();
    let p2 = days_after(p1, 31);
    let run = add_run(store, unique_date()).await;
    let prefix = format!("T{}-", tag());
    let mut expected_run = run.clone();

    // Batch 1 (a, b): two invoices, numbered consecutively in batch order (not id order).
    let inv_b = new_invoice(&b.1, p1, Some(run.id), &[4_900, 9_900, -500]);
    let inv_a = new_invoice(&a.1, p1, Some(run.id), &[4_900]);
    let e1 = run_error(&c.0, "plan version is unknown");
    let batch1 = billing_batch(
        &run,
        vec![inv_b.clone(), inv_a.clone()],
        b.0.id,
        2,
        vec![e1.clone()],
        &prefix,
    );
    let n = store
        .commit_billing_batch(&batch1)
        .await
        .expect("commit_billing_batch");
    assert_eq!(n, 2);
    let got_b = invoice_of(store, inv_b.id).await;
    let first = seq_of(number_of(&got_b), &prefix);
    assert_eq!(got_b, stored_invoice(&inv_b, got_b.number.as_deref()));
    assert_eq!(
        got_b.lines.iter().map(|l| l.position).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(got_b.total_minor, 14_300);
    let got_a = invoice_of(store, inv_a.id).await;
    assert_eq!(
        got_a,
        stored_invoice(&inv_a, Some(&format!("{prefix}{:06}", first + 1)))
    );
    expected_run.cursor = Some(b.0.id);
    expected_run.subscribers_processed = 2;
    expected_run.invoices_created = 2;
    expected_run.errors = vec![e1.clone()];
    assert_eq!(run_of(store, run.id).await, expected_run);

    // Batch 2 (up to c): the same (subscriber, period) pairs again, under new invoice ids,
    // and one new pair: only the new one is inserted, with the next number after batch 1's.
    let again_b = new_invoice(&b.1, p1, Some(run.id), &[1]);
    let again_a = new_invoice(&a.1, p1, Some(run.id), &[1]);
    let inv_c = new_invoice(&c.1, p1, Some(run.id), &[7_700, 100]);
    let (e2, e3) = (run_error(&d.0, "currency mismatch"), run_error(&a.0, "ü"));
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![again_b.clone(), inv_c.clone(), again_a.clone()],
            c.0.id,
            3,
            vec![e2.clone(), e3.clone()],
            &prefix,
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.get_invoice(again_b.id).await.unwrap(), None);
    assert_eq!(store.get_invoice(again_a.id).await.unwrap(), None);
    assert_eq!(
        invoice_of(store, inv_b.id).await,
        got_b,
        "the first invoice stays"
    );
    let got_c = invoice_of(store, inv_c.id).await;
    let third = seq_of(number_of(&got_c), &prefix);
    assert!(third > first + 1, "numbers increase from batch to batch");
    assert_eq!(got_c, stored_invoice(&inv_c, got_c.number.as_deref()));
    expected_run.cursor = Some(c.0.id);
    expected_run.subscribers_processed = 5;
    expected_run.invoices_created = 3;
    expected_run.errors = vec![e1.clone(), e2.clone(), e3.clone()];
    assert_eq!(run_of(store, run.id).await, expected_run);

    // Batch 3 (d): only an existing pair: nothing inserted, no number taken, progress
    // recorded.
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![new_invoice(&c.1, p1, Some(run.id), &[5])],
            d.0.id,
            1,
            vec![],
            &prefix,
        ))
        .await
        .unwrap();
    assert_eq!(n, 0);
    expected_run.cursor = Some(d.0.id);
    expected_run.subscribers_processed = 6;
    assert_eq!(run_of(store, run.id).await, expected_run);

    // Batch 1 committed again (a second executor of the run replaying it): its invoices
    // exist, and a batch behind the cursor does not count its subscribers or errors twice.
    assert_eq!(store.commit_billing_batch(&batch1).await.unwrap(), 0);
    assert_eq!(run_of(store, run.id).await, expected_run);

    // A batch of an unknown run fails as a whole: no invoice, no number taken.
    let stray = new_invoice(&d.1, p2, None, &[123]);
    let r = store
        .commit_billing_batch(&BillingBatch {
            run: BillingRunId::generate(),
            ..billing_batch(&run, vec![stray.clone()], e.0.id, 1, vec![], &prefix)
        })
        .await;
    assert!(
        matches!(
            r,
            Err(StoreError::NotFound {
                entity: "billing run"
            })
        ),
        "unknown run: got {r:?}"
    );
    assert_eq!(store.get_invoice(stray.id).await.unwrap(), None);

    // Batch 4 (e): no invoices, still progress and errors.
    let e4 = run_error(&e.0, "last");
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![],
            e.0.id,
            1,
            vec![e4.clone()],
            &prefix,
        ))
        .await
        .unwrap();
    assert_eq!(n, 0);
    expected_run.cursor = Some(e.0.id);
    expected_run.subscribers_processed = 7;
    expected_run.errors.push(e4);
    assert_eq!(run_of(store, run.id).await, expected_run);

    // Batch 5 (f): new periods for a and d; the numbers go on where they were.
    let inv_a2 = new_invoice(&a.1, p2, Some(run.id), &[4_900]);
    let inv_d2 = new_invoice(&d.1, p2, Some(run.id), &[4_900, 9_900]);
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![inv_a2.clone(), inv_d2.clone()],
            f.0.id,
            1,
            vec![],
            &prefix,
        ))
        .await
        .unwrap();
    assert_eq!(n, 2);
    let fourth = seq_of(number_of(&invoice_of(store, inv_a2.id).await), &prefix);
    let fifth = seq_of(number_of(&invoice_of(store, inv_d2.id).await), &prefix);
    assert!(fourth > third);
    assert_eq!(fifth, fourth + 1);
    expected_run.cursor = Some(f.0.id);
    expected_run.subscribers_processed = 8;
    expected_run.invoices_created = 5;
    assert_eq!(run_of(store, run.id).await, expected_run);

    // With the counter to itself, the sequence is exactly 1..=5: nothing skipped by the
    // re-commits, the batches without invoices or the failed batch.
    if counter_is_ours(store, &prefix, 5).await {
        assert_eq!(
            [first, first + 1, third, fourth, fifth],
            [1, 2, 3, 4, 5],
            "gap-free invoice numbers"
        );
    }

    // The run completes.
    store
        .complete_billing_run(run.id, t(7_200), None)
        .await
        .unwrap();
    expected_run.status = BillingRunStatus::Completed;
    expected_run.finished_at = Some(t(7_200));
    assert_eq!(run_of(store, run.id).await, expected_run);
}

pub async fn commit_billing_batch_concurrent_runs(store: Arc<dyn Store>) {
    const SUBS: usize = 6;
    const TASKS: usize = 4;
    let (_, subs) = billing_world(&*store, SUBS).await;
    let period = unique_date();
    let prefix = format!("T{}-", tag());
    let mut runs = Vec::new();
    for _ in 0..TASKS {
        runs.push(add_run(&*store, unique_date()).await);
    }
    // Every task bills every subscriber for the same period, in id order like a real run,
    // but with its own batch size (1, 2, 3, 4): every (subscriber, period) pair is contested
    // by all tasks, in batches that overlap differently.
    let services: Vec<Service> = subs.iter().map(|(_, s)| s.clone()).collect();
    let tasks: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(k, run)| {
            let store = store.clone();
            let run = run.clone();
            let prefix = prefix.clone();
            let services = services.clone();
            tokio::spawn(async move {
                let mut commits = Vec::new();
                for chunk in services.chunks(k + 1) {
                    let invoices: Vec<NewInvoice> = chunk
                        .iter()
                        .map(|svc| new_invoice(svc, period, Some(run.id), &[4_900, 9_900]))
                        .collect();
                    let n = store
                        .commit_billing_batch(&billing_batch(
                            &run,
                            invoices.clone(),
                            chunk[chunk.len() - 1].subscriber_id,
                            chunk.len() as i64,
                            vec![],
                            &prefix,
                        ))
                        .await
                        .expect("concurrent commit_billing_batch");
                    commits.push((invoices, n));
                }
                commits
            })
        })
        .collect();
    let mut commits = Vec::new();
    for task in tasks {
        commits.push(task.await.expect("task"));
    }
    let store = &*store;

    // Exactly one invoice per subscriber and period.
    let mut stored = Vec::new();
    for (sub, _) in &subs {
        let list = store
            .list_invoices(
                &InvoiceFilter {
                    subscriber_id: Some(sub.id),
                    ..Default::default()
                },
                ALL,
            )
            .await
            .unwrap();
        assert_eq!(list.len(), 1, "one invoice for subscriber {}", sub.id);
        assert_eq!(list[0].period_start, period);
        stored.push(invoice_of(store, list[0].id).await);
    }
    let inserted: u64 = commits.iter().flatten().map(|(_, n)| n).sum();
    assert_eq!(inserted, SUBS as u64);

    // Each commit's invoices that made it are numbered consecutively in batch order, and
    // each commit reported exactly those; the losers left nothing behind.
    let mut numbers = Vec::new();
    for (run, task) in runs.iter().zip(&commits) {
        let mut created = 0;
        for (invoices, n) in task {
            let mut won = Vec::new();
            for inv in invoices {
                match stored.iter().find(|s| s.id == inv.id) {
                    Some(s) => {
                        assert_eq!(*s, stored_invoice(inv, s.number.as_deref()));
                        won.push(seq_of(number_of(s), &prefix));
                    }
                    None => assert_eq!(store.get_invoice(inv.id).await.unwrap(), None),
                }
            }
            assert_eq!(won.len() as u64, *n);
            assert!(
                won.windows(2).all(|w| w[1] == w[0] + 1),
                "consecutive in a batch: {won:?}"
            );
            numbers.extend(won);
            created += n;
        }
        let r = run_of(store, run.id).await;
        assert_eq!(r.invoices_created, created as i64);
        assert_eq!(r.subscribers_processed, SUBS as i64);
        assert_eq!(r.cursor, Some(subs[SUBS - 1].0.id));
    }
    numbers.sort();
    let unique: BTreeSet<i64> = numbers.iter().copied().collect();
    assert_eq!(unique.len(), SUBS, "no number twice: {numbers:?}");
    if counter_is_ours(store, &prefix, SUBS).await {
        assert_eq!(numbers, (1..=SUBS as i64).collect::<Vec<_>>(), "gap-free");
    }

    // Only the winners' lines count as invoiced.
    let ids: Vec<SubscriberId> = subs.iter().map(|(s, _)| s.id).collect();
    let inputs = billing_inputs_of(store, &ids, 100).await;
    assert_eq!(inputs.len(), SUBS);
    for input in &inputs {
        let inv = stored
            .iter()
            .find(|s| s.subscriber_id == input.subscriber.id)
            .unwrap();
        let won = commits
            .iter()
            .flatten()
            .flat_map(|(invs, _)| invs)
            .find(|i| i.id == inv.id)
            .unwrap();
        assert_eq!(invoiced_keys(input), invoiced_of(&[won]));
        assert_eq!(input.invoiced_periods, vec![period]);
    }
}

pub async fn commit_billing_batch_dangling_reference_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let (p, subs) = billing_world(store, 2).await;
    let (a, b) = (&subs[0], &subs[1]);
    let period = unique_date();
    let run = add_run(store, unique_date()).await;
    let prefix = format!("T{}-", tag());
    let ghost = named("Never Stored");
    let ghost_service = service(&a.0, &p, None);
    let bad = |f: &dyn Fn(&mut NewInvoice)| {
        let mut inv = new_invoice(&a.1, period, Some(run.id), &[100, 200]);
        f(&mut inv);
        inv
    };
    let cases = [
        ("subscriber", bad(&|i| i.subscriber_id = ghost.id)),
        (
            "billing run",
            bad(&|i| i.billing_run_id = Some(BillingRunId::generate())),
        ),
        (
            "service",
            new_invoice(&ghost_service, period, Some(run.id), &[100]),
        ),
        (
            "plan version",
            bad(&|i| i.lines[1].plan_version_id = PlanVersionId::generate()),
        ),
        (
            "invoice",
            bad(&|i| i.lines[0].invoice_id = InvoiceId::generate()),
        ),
    ];
    for (what, bad) in cases {
        let good = new_invoice(&b.1, period, Some(run.id), &[4_900]);
        let r = store
            .commit_billing_batch(&billing_batch(
                &run,
                vec![good.clone(), bad.clone()],
                b.0.id,
                2,
                vec![run_error(&a.0, "not written")],
                &prefix,
            ))
            .await;
        assert!(
            matches!(r, Err(StoreError::InUse { .. })),
            "unknown {what}: got {r:?}"
        );
        assert_eq!(store.get_invoice(good.id).await.unwrap(), None, "{what}");
        assert_eq!(store.get_invoice(bad.id).await.unwrap(), None, "{what}");
        assert_eq!(run_of(store, run.id).await, run, "{what}: no progress");
    }
    // The failed batches took no number.
    let first = new_invoice(&a.1, period, Some(run.id), &[100]);
    let later = new_invoice(&b.1, period, Some(run.id), &[200, 300]);
    for (inv, cursor) in [(&first, a.0.id), (&later, b.0.id)] {
        let n = store
            .commit_billing_batch(&billing_batch(
                &run,
                vec![inv.clone()],
                cursor,
                1,
                vec![],
                &prefix,
            ))
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    let numbers = [
        seq_of(number_of(&invoice_of(store, first.id).await), &prefix),
        seq_of(number_of(&invoice_of(store, later.id).await), &prefix),
    ];
    assert!(numbers[1] > numbers[0]);
    if counter_is_ours(store, &prefix, 2).await {
        assert_eq!(numbers, [1, 2], "gap-free invoice numbers");
    }
}

pub async fn invoices_get_and_list_filters(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 2).await;
    let (a, b) = (&subs[0], &subs[1]);
    let p1 = unique_date();
    let p2 = days_after(p1, 30);
    let p3 = days_after(p1, 61);
    let run = add_run(store, unique_date()).await;
    let prefix = format!("T{}-", tag());
    let a1 = new_invoice(&a.1, p1, Some(run.id), &[100, 200, 300, -50, 25]);
    let a2 = new_invoice(&a.1, p2, None, &[100]);
    let a3 = new_invoice(&a.1, p3, Some(run.id), &[]);
    let b1 = new_invoice(&b.1, p1, Some(run.id), &[4_900]);
    let all = vec![a1.clone(), a2.clone(), a3.clone(), b1.clone()];
    assert_eq!(
        store
            .commit_billing_batch(&billing_batch(
                &run,
                all.clone(),
                b.0.id,
                2,
                vec![],
                &prefix
            ))
            .await
            .unwrap(),
        4
    );

    // get: the whole invoice, lines by position; an invoice without lines has none.
    let mut by_id = std::collections::BTreeMap::new();
    for inv in &all {
        let got = invoice_of(store, inv.id).await;
        assert_eq!(got, stored_invoice(inv, got.number.as_deref()));
        by_id.insert(inv.id, got);
    }
    assert_eq!(
        by_id[&a1.id]
            .lines
            .iter()
            .map(|l| l.position)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(by_id[&a3.id].lines.is_empty());
    assert_eq!(by_id[&a3.id].total_minor, 0);
    assert_eq!(
        store.get_invoice(InvoiceId::generate()).await.unwrap(),
        None
    );

    // list: without lines, in id order, filtered.
    let header = |id: InvoiceId| {
        let mut i = by_id[&id].clone();
        i.lines.clear();
        i
    };
    let list = |f: InvoiceFilter, p: Page| async move { store.list_invoices(&f, p).await.unwrap() };
    let of = |sub: &Subscriber| InvoiceFilter {
        subscriber_id: Some(sub.id),
        ..Default::default()
    };
    let mut a_ids = [a1.id, a2.id, a3.id];
    a_ids.sort();
    assert_eq!(
        list(of(&a.0), ALL).await,
        a_ids.iter().map(|&i| header(i)).collect::<Vec<_>>()
    );
    assert_eq!(list(of(&b.0), ALL).await, vec![header(b1.id)]);
    assert_eq!(
        list(
            InvoiceFilter {
                period_start: Some(p2),
                ..of(&a.0)
            },
            ALL
        )
        .await,
        vec![header(a2.id)]
    );
    assert_eq!(
        list(
            InvoiceFilter {
                period_start: Some(p2),
                ..of(&b.0)
            },
            ALL
        )
        .await,
        vec![]
    );
    let mut p1_ids = [a1.id, b1.id];
    p1_ids.sort();
    assert_eq!(
        list(
            InvoiceFilter {
                period_start: Some(p1),
                ..Default::default()
            },
            ALL
        )
        .await,
        p1_ids.iter().map(|&i| header(i)).collect::<Vec<_>>(),
        "the period is this case's own"
    );
    assert_eq!(
        list(
            InvoiceFilter {
                status: Some(InvoiceStatus::Issued),
                ..of(&a.0)
            },
            ALL
        )
        .await
        .len(),
        2
    );
    // The zero invoice is settled as it is issued.
    assert_eq!(
        list(
            InvoiceFilter {
                status: Some(InvoiceStatus::Paid),
                ..of(&a.0)
            },
            ALL
        )
        .await,
        vec![header(a3.id)]
    );
    for status in [InvoiceStatus::Draft, InvoiceStatus::Void] {
        assert_eq!(
            list(
                InvoiceFilter {
                    status: Some(status),
                    ..of(&a.0)
                },
                ALL
            )
            .await,
            vec![]
        );
    }
    assert_eq!(
        list(
            of(&Subscriber {
                id: SubscriberId::generate(),
                ..a.0.clone()
            }),
            ALL
        )
        .await,
        vec![]
    );

    // Keyset pagination.
    let ids_of = |v: Vec<Invoice>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids_of(list(of(&a.0), page(None, 2)).await), a_ids[0..2]);
    assert_eq!(
        ids_of(list(of(&a.0), page(Some(a_ids[1].0), 2)).await),
        a_ids[2..3]
    );
    assert_eq!(
        ids_of(list(of(&a.0), page(Some(a_ids[2].0), 2)).await),
        vec![]
    );
    assert_eq!(
        ids_of(list(of(&a.0), page(Some(a_ids[0].0), 1)).await),
        a_ids[1..2]
    );
}

// Money helpers -----------------------------------------------------------------------------

fn chf() -> Currency {
    Currency::parse("CHF").expect("currency")
}

fn rate(percent: &str) -> Rate {
    Rate::parse_percent(percent).expect("valid rate")
}

fn tax(name: &str, class: &str, percent: &str) -> Tax {
    Tax {
        name: name.into(),
        tax_class: class.into(),
        rate: rate(percent),
        valid_from: None,
    }
}

fn applied(name: &str, percent: &str, amount_minor: i64) -> AppliedTax {
    AppliedTax {
        name: name.into(),
        rate: rate(percent),
        amount_minor,
    }
}

fn tax_zone(code: &str, taxes: Vec<Tax>) -> TaxZone {
    TaxZone {
        id: TaxZoneId::generate(),
        code: code.into(),
        name: format!("Zone {code} «Zürich»"),
        prices_include_tax: false,
        taxes,
        created_at: t0(),
        updated_at: t0(),
        revision: 1,
    }
}

fn step(days_overdue: i64, action: DunningActionKind) -> DunningStep {
    DunningStep {
        days_overdue,
        action,
    }
}

fn dunning_policy(code: &str, is_default: bool) -> DunningPolicy {
    DunningPolicy {
        id: DunningPolicyId::generate(),
        code: code.into(),
        name: format!("Policy {code} «strict»"),
        steps: vec![
            step(3, DunningActionKind::Remind),
            step(10, DunningActionKind::Suspend),
            step(45, DunningActionKind::Terminate),
        ],
        bill_suspended_days: false,
        is_default,
        created_at: t0(),
        updated_at: t0(),
        revision: 1,
    }
}

fn discount(
    sub: &Subscriber,
    service_id: Option<ServiceId>,
    value: DiscountValue,
    starts_on: Date,
    ends_on: Option<Date>,
) -> Discount {
    Discount {
        id: DiscountId::generate(),
        subscriber_id: sub.id,
        service_id,
        value,
        starts_on,
        ends_on,
        description: "Loyalty «10 years» \"quoted\"".into(),
        created_at: t(30),
    }
}

/// A bank transfer with a unique reference and external id, recorded a minute after it
/// arrived.
fn payment(sub: SubscriberId, amount_minor: i64, received_at: Timestamp) -> Payment {
    Payment {
        id: PaymentId::generate(),
        subscriber_id: sub,
        currency: chf(),
        amount_minor,
        method: PaymentMethod::BankTransfer,
        reference: Some(format!("REF-{}", tag())),
        external_id: Some(format!("EXT-{}", tag())),
        received_at,
        recorded_at: received_at + SignedDuration::from_secs(60),
    }
}

fn refund(sub: SubscriberId, amount_minor: i64, refunded_at: Timestamp) -> Refund {
    Refund {
        id: RefundId::generate(),
        subscriber_id: sub,
        currency: chf(),
        amount_minor,
        method: PaymentMethod::Card,
        reference: Some(format!("RF-{}", tag())),
        reason: "Paid twice «by mistake»".into(),
        refunded_at,
    }
}

/// A credit note of `amount_minor` on `inv`, not numbered yet (the store numbers it).
fn credit_note(inv: &Invoice, amount_minor: i64, issued_at: Timestamp) -> CreditNote {
    CreditNote {
        id: CreditNoteId::generate(),
        number: String::new(),
        subscriber_id: inv.subscriber_id,
        invoice_id: inv.id,
        currency: chf(),
        reason: "Outage «3 days»".into(),
        subtotal_minor: amount_minor,
        tax_minor: 0,
        total_minor: amount_minor,
        issued_at,
    }
}

fn invoice_doc(id: InvoiceId) -> DocumentRef {
    DocumentRef {
        kind: DocumentKind::Invoice,
        id: id.0,
    }
}

fn payment_doc(p: &Payment) -> DocumentRef {
    DocumentRef {
        kind: DocumentKind::Payment,
        id: p.id.0,
    }
}

fn note_doc(n: &CreditNote) -> DocumentRef {
    DocumentRef {
        kind: DocumentKind::CreditNote,
        id: n.id.0,
    }
}

fn refund_doc(r: &Refund) -> DocumentRef {
    DocumentRef {
        kind: DocumentKind::Refund,
        id: r.id.0,
    }
}

fn allocation(
    sub: SubscriberId,
    credit: DocumentRef,
    debit: DocumentRef,
    amount_minor: i64,
    created_at: Timestamp,
) -> Allocation {
    Allocation {
        id: AllocationId::generate(),
        subscriber_id: sub,
        credit,
        debit,
        amount_minor,
        created_at,
    }
}

fn dunning_action(
    inv: &Invoice,
    days_overdue: i64,
    action: DunningActionKind,
    performed_at: Timestamp,
) -> DunningAction {
    DunningAction {
        id: DunningActionId::generate(),
        subscriber_id: inv.subscriber_id,
        invoice_id: inv.id,
        days_overdue,
        action,
        performed_at,
        passed: false,
    }
}

/// The subscriber's account, debits and credits by document (stores return them in no
/// particular order).
async fn account_of(store: &dyn Store, sub: SubscriberId) -> Account {
    let mut account = store
        .get_account(sub)
        .await
        .expect("get_account")
        .expect("account exists");
    account.debits.sort_by_key(|d| d.doc);
    account.credits.sort_by_key(|c| c.doc);
    account
}

/// An empty change of `account` (at its current revision) with one audit event.
fn account_change(account: &Account, at: Timestamp, action: &str) -> AccountChange {
    let mut c = AccountChange::new(account);
    c.audit.push(audit_of(
        at,
        Some(account.subscriber_id),
        "account",
        account.subscriber_id,
        action,
        &json!({ "revision": account.revision + 1 }),
    ));
    c
}

async fn change_account(store: &dyn Store, c: &AccountChange) {
    store
        .record_account_change(c)
        .await
        .expect("record_account_change");
}

/// Asserts that none of `c`'s audit events was written.
async fn assert_audit_absent(store: &dyn Store, c: &AccountChange) {
    for a in &c.audit {
        assert!(
            !audit_ids(&audits(store, &a.entity_id).await).contains(&a.id),
            "audit event of a failed account change was written"
        );
    }
}

/// Commits `invoices` in one batch of a run of their own (as of a unique date); returns them
/// as stored, in the given order.
async fn bill(store: &dyn Store, invoices: &[NewInvoice], prefix: &str) -> Vec<Invoice> {
    let run = add_run(store, unique_date()).await;
    let cursor = invoices
        .iter()
        .map(|i| i.subscriber_id)
        .max()
        .expect("some invoices");
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            invoices.to_vec(),
            cursor,
            invoices.len() as i64,
            vec![],
            prefix,
        ))
        .await
        .expect("commit_billing_batch");
    assert_eq!(n, invoices.len() as u64, "every invoice is new");
    let mut out = Vec::new();
    for inv in invoices {
        out.push(invoice_of(store, inv.id).await);
    }
    out
}

/// A billing input in a canonical order, to compare two reads of it.
#[allow(clippy::type_complexity)]
fn comparable(
    input: &BillingInput,
) -> (
    BillingSubscriber,
    Vec<(ServiceId, ServiceState, Vec<TimelineEvent>)>,
    Vec<(ChargeKey, i64)>,
    Vec<Date>,
    Vec<Discount>,
) {
    let mut services: Vec<_> = input
        .services
        .iter()
        .map(|h| {
            let mut events = h.events.clone();
            events.sort_by_key(|e| e.seq);
            (h.service_id, h.initial, events)
        })
        .collect();
    services.sort_by_key(|(id, _, _)| *id);
    let mut discounts = input.discounts.clone();
    discounts.sort_by_key(|d| d.id);
    (
        input.subscriber.clone(),
        services,
        invoiced_keys(input),
        sorted(&input.invoiced_periods),
        discounts,
    )
}

fn sorted_discounts(v: &[Discount]) -> Vec<Discount> {
    let mut v = v.to_vec();
    v.sort_by_key(|d| d.id);
    v
}

/// Walks `overdue_subscribers` in pages of `limit` from just before the first of `ours`
/// until past the last, checking the pages (at most `limit`, strictly increasing ids after
/// the cursor); returns those of `ours` it met, in order.
async fn overdue_of(
    store: &dyn Store,
    today: Date,
    ours: &[SubscriberId],
    limit: u32,
) -> Vec<SubscriberId> {
    let first = *ours.iter().min().expect("some subscribers");
    let last = *ours.iter().max().expect("some subscribers");
    let mut after = just_before(first);
    let mut found = Vec::new();
    loop {
        let batch = store
            .overdue_subscribers(today, Some(after), limit)
            .await
            .expect("overdue_subscribers");
        assert!(
            batch.len() <= limit as usize,
            "a page holds at most `limit`"
        );
        let mut prev = after;
        for &id in &batch {
            assert!(id > prev, "subscribers in strictly increasing id order");
            prev = id;
        }
        let done = batch.len() < limit as usize || prev >= last;
        found.extend(batch.into_iter().filter(|id| ours.contains(id)));
        if done {
            return found;
        }
        after = prev;
    }
}

/// One subscriber's money history, recorded as four account changes:
///
/// 1. invoices `invoices[0]` (14 800, issued at t(3 600)) and `invoices[1]` (4 900, at
///    t(3 700)) are billed;
/// 2. `payments[0]` (6 000, day 1) pays part of the first;
/// 3. credit note `note` (3 000, day 2) on the first, allocated to it;
/// 4. `payments[1]` (12 000, day 3) settles both invoices (they become paid), 1 300 left;
/// 5. `refund` (1 000, day 4) pays back part of what is left, allocated from `payments[1]`.
///
/// Balance: −300 (credit in the subscriber's favour).
struct MoneyWorld {
    sub: Subscriber,
    /// The account revision before the four changes.
    initial_revision: i64,
    /// As billed (issued, not paid yet).
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    /// As stored (numbered).
    note: CreditNote,
    note_prefix: String,
    refund: Refund,
    allocations: Vec<Allocation>,
    changes: Vec<AccountChange>,
}

const DAY: i64 = 86_400;

async fn money_world(store: &dyn Store) -> MoneyWorld {
    let (_, subs) = billing_world(store, 1).await;
    let (sub, svc) = subs[0].clone();
    let prefix = format!("T{}-", tag());
    let period = unique_date();
    let first = new_invoice(&svc, period, None, &[4_900, 9_900]);
    let mut second = new_invoice(&svc, days_after(period, 30), None, &[4_900]);
    second.created_at = t(3_700);
    let invoices = bill(store, &[first, second], &prefix).await;
    let (i1, i2) = (invoice_doc(invoices[0].id), invoice_doc(invoices[1].id));
    assert_eq!(
        (invoices[0].total_minor, invoices[1].total_minor),
        (14_800, 4_900)
    );
    let initial_revision = account_of(store, sub.id).await.revision;
    let mut changes = Vec::new();
    let mut allocations = Vec::new();

    let p1 = payment(sub.id, 6_000, t(DAY));
    let mut c = account_change(&account_of(store, sub.id).await, t(DAY), "payment.record");
    c.payment = Some(p1.clone());
    c.allocations = vec![allocation(sub.id, payment_doc(&p1), i1, 6_000, t(DAY))];
    change_account(store, &c).await;
    allocations.extend(c.allocations.clone());
    changes.push(c);

    let note_prefix = format!("CN{}-", tag());
    let note = credit_note(&invoices[0], 3_000, t(2 * DAY));
    let mut c = account_change(
        &account_of(store, sub.id).await,
        t(2 * DAY),
        "credit_note.create",
    );
    c.credit_note = Some(NewCreditNote {
        note: note.clone(),
        number_prefix: note_prefix.clone(),
    });
    c.allocations = vec![allocation(sub.id, note_doc(&note), i1, 3_000, t(2 * DAY))];
    change_account(store, &c).await;
    allocations.extend(c.allocations.clone());
    changes.push(c);
    let note = store
        .get_credit_note(note.id)
        .await
        .expect("get_credit_note")
        .expect("credit note stored");

    let p2 = payment(sub.id, 12_000, t(3 * DAY));
    let mut c = account_change(
        &account_of(store, sub.id).await,
        t(3 * DAY),
        "payment.record",
    );
    c.payment = Some(p2.clone());
    c.allocations = vec![
        allocation(sub.id, payment_doc(&p2), i1, 5_800, t(3 * DAY)),
        allocation(sub.id, payment_doc(&p2), i2, 4_900, t(3 * DAY)),
    ];
    c.paid_invoices = vec![invoices[0].id, invoices[1].id];
    change_account(store, &c).await;
    allocations.extend(c.allocations.clone());
    changes.push(c);

    let r = refund(sub.id, 1_000, t(4 * DAY));
    let mut c = account_change(
        &account_of(store, sub.id).await,
        t(4 * DAY),
        "refund.record",
    );
    c.refund = Some(r.clone());
    c.allocations = vec![allocation(
        sub.id,
        payment_doc(&p2),
        refund_doc(&r),
        1_000,
        t(4 * DAY),
    )];
    change_account(store, &c).await;
    allocations.extend(c.allocations.clone());
    changes.push(c);

    MoneyWorld {
        sub,
        initial_revision,
        invoices,
        payments: vec![p1, p2],
        note,
        note_prefix,
        refund: r,
        allocations,
        changes,
    }
}

// Cases: billing configuration ----------------------------------------------------------------

pub async fn tax_zones_insert_get_list_update(store: Arc<dyn Store>) {
    let store = &*store;
    let base = format!("Z-{}", tag());
    // Two taxes of one class on the same base (Quebec), a zero-rated class; and a zone whose
    // prices include its tax.
    let b = tax_zone(
        &format!("{base}-b"),
        vec![
            tax("GST", "standard", "5"),
            tax("QST", "standard", "9.975"),
            tax("GST", "zero-rated", "0"),
        ],
    );
    let mut a = tax_zone(&format!("{base}-a"), vec![tax("VAT", "standard", "20")]);
    a.prices_include_tax = true;
    let create = |z: &TaxZone| audit_of(t0(), None, "tax_zone", z.id, "tax_zone.create", z);
    let (create_a, create_b) = (create(&a), create(&b));
    store.insert_tax_zone(&b, &create_b).await.unwrap();
    store.insert_tax_zone(&a, &create_a).await.unwrap();
    assert_eq!(store.get_tax_zone(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_tax_zone(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(
        store.get_tax_zone(TaxZoneId::generate()).await.unwrap(),
        None
    );

    // Listed by code.
    let ours = |all: Vec<TaxZone>| {
        assert!(
            all.windows(2).all(|w| w[0].code < w[1].code),
            "zones by code"
        );
        all.into_iter()
            .filter(|z| z.code.starts_with(&base))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ours(store.list_tax_zones().await.unwrap()),
        vec![a.clone(), b.clone()]
    );

    // An update replaces everything but the id and creation time (stores keep microseconds).
    let mut a2 = a.clone();
    a2.name = "Schweiz «Normalsatz»".into();
    a2.prices_include_tax = false;
    a2.taxes = vec![
        tax("VAT", "standard", "8.1"),
        tax("VAT", "reduced", "2.6"),
        tax("Levy", "standard", "0.0001"),
    ];
    a2.updated_at = t(60) + SignedDuration::from_micros(123_456);
    a2.revision = 2;
    let update = AuditEvent::new(
        t(60),
        &actor(),
        None,
        "tax_zone",
        a.id,
        "tax_zone.update",
        Some(&a),
        Some(&a2),
    );
    store.update_tax_zone(&a2, 1, &update).await.unwrap();
    assert_eq!(store.get_tax_zone(a.id).await.unwrap(), Some(a2.clone()));

    // Another editor read revision 1: stale, nothing written.
    let mut stale = a.clone();
    stale.name = "Lost update".into();
    stale.taxes = vec![tax("VAT", "standard", "7.7")];
    stale.updated_at = t(120);
    stale.revision = 2;
    let stale_audit = audit_of(t(120), None, "tax_zone", a.id, "tax_zone.update", &stale);
    expect_stale(
        store.update_tax_zone(&stale, 1, &stale_audit).await,
        "tax zone",
    );
    // A revision never reached is stale too.
    stale.revision = 8;
    expect_stale(
        store.update_tax_zone(&stale, 7, &stale_audit).await,
        "tax zone",
    );
    assert_eq!(store.get_tax_zone(a.id).await.unwrap(), Some(a2.clone()));
    assert_eq!(
        audit_ids(&audits(store, a.id).await),
        vec![create_a.id, update.id]
    );

    // A code taken, by an insert or an update: nothing written.
    let dup = tax_zone(&a.code, vec![tax("VAT", "standard", "19")]);
    expect_duplicate(
        store.insert_tax_zone(&dup, &create(&dup)).await,
        "tax zone",
        "code",
    );
    assert_eq!(store.get_tax_zone(dup.id).await.unwrap(), None);
    assert!(audits(store, dup.id).await.is_empty());
    let mut b2 = b.clone();
    b2.code = a.code.clone();
    b2.updated_at = t(180);
    b2.revision = 2;
    let b2_audit = audit_of(t(180), None, "tax_zone", b.id, "tax_zone.update", &b2);
    expect_duplicate(
        store.update_tax_zone(&b2, 1, &b2_audit).await,
        "tax zone",
        "code",
    );
    assert_eq!(store.get_tax_zone(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(audit_ids(&audits(store, b.id).await), vec![create_b.id]);
    assert_eq!(ours(store.list_tax_zones().await.unwrap()), vec![a2, b]);
}

pub async fn dunning_policies_single_default(store: Arc<dyn Store>) {
    let store = &*store;
    let base = format!("D-{}", tag());
    let base = base.as_str();
    let create = |p: &DunningPolicy| {
        audit_of(
            t0(),
            None,
            "dunning_policy",
            p.id,
            "dunning_policy.create",
            p,
        )
    };
    let get = |id: DunningPolicyId| async move {
        store
            .get_dunning_policy(id)
            .await
            .expect("get_dunning_policy")
            .expect("policy exists")
    };
    // The defaults among every policy (the rule is global), and ours, by code.
    let listed = || async move {
        let all = store.list_dunning_policies().await.unwrap();
        assert!(
            all.windows(2).all(|w| w[0].code < w[1].code),
            "policies by code"
        );
        let defaults: Vec<DunningPolicyId> =
            all.iter().filter(|p| p.is_default).map(|p| p.id).collect();
        let ours: Vec<DunningPolicy> = all
            .into_iter()
            .filter(|p| p.code.starts_with(base))
            .collect();
        (defaults, ours)
    };

    let first = dunning_policy(&format!("{base}-1"), true);
    store
        .insert_dunning_policy(&first, &create(&first))
        .await
        .unwrap();
    let mut other = dunning_policy(&format!("{base}-2"), false);
    other.bill_suspended_days = true;
    other.steps = vec![
        step(1, DunningActionKind::Remind),
        step(7, DunningActionKind::Remind),
        step(21, DunningActionKind::Suspend),
    ];
    store
        .insert_dunning_policy(&other, &create(&other))
        .await
        .unwrap();
    assert_eq!(get(first.id).await, first);
    assert_eq!(get(other.id).await, other);
    assert_eq!(
        store
            .get_dunning_policy(DunningPolicyId::generate())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        listed().await,
        (vec![first.id], vec![first.clone(), other.clone()])
    );

    // A new default takes over: the previous one stops being the default (and its revision
    // moves on, so an editor holding it is stale), everything else of it unchanged.
    let second = dunning_policy(&format!("{base}-3"), true);
    store
        .insert_dunning_policy(&second, &create(&second))
        .await
        .unwrap();
    let first_now = get(first.id).await;
    assert!(!first_now.is_default);
    assert!(first_now.revision > first.revision);
    assert_eq!(
        first_now,
        DunningPolicy {
            is_default: false,
            revision: first_now.revision,
            updated_at: first_now.updated_at,
            ..first.clone()
        }
    );
    assert_eq!(get(other.id).await, other);
    assert_eq!(
        listed().await,
        (
            vec![second.id],
            vec![first_now.clone(), other.clone(), second.clone()]
        )
    );

    // Updating a policy into the default takes over too.
    let mut other2 = other.clone();
    other2.is_default = true;
    other2.name = "Relaxed «B2B»".into();
    other2.updated_at = t(60) + SignedDuration::from_micros(7);
    other2.revision = 2;
    let update = |before: &DunningPolicy, after: &DunningPolicy, at: i64| {
        AuditEvent::new(
            t(at),
            &actor(),
            None,
            "dunning_policy",
            before.id,
            "dunning_policy.update",
            Some(before),
            Some(after),
        )
    };
    store
        .update_dunning_policy(&other2, 1, &update(&other, &other2, 60))
        .await
        .unwrap();
    assert_eq!(get(other.id).await, other2);
    let second_now = get(second.id).await;
    assert!(!second_now.is_default);
    assert!(second_now.revision > second.revision);
    assert_eq!(listed().await.0, vec![other.id]);

    // Updating the default (it stays the default) keeps it the only one.
    let mut other3 = other2.clone();
    other3.steps.push(step(60, DunningActionKind::Terminate));
    other3.updated_at = t(120);
    other3.revision = 3;
    store
        .update_dunning_policy(&other3, 2, &update(&other2, &other3, 120))
        .await
        .unwrap();
    assert_eq!(get(other.id).await, other3);
    assert_eq!(listed().await.0, vec![other.id]);

    // A stale update that would make a policy the default changes nothing: not the policy,
    // not the current default.
    let mut stale = second.clone();
    stale.is_default = true;
    stale.revision = second.revision + 1;
    stale.updated_at = t(180);
    let stale_audit = update(&second, &stale, 180);
    expect_stale(
        store
            .update_dunning_policy(&stale, second.revision, &stale_audit)
            .await,
        "dunning policy",
    );
    assert_eq!(get(second.id).await, second_now);
    assert_eq!(get(other.id).await, other3);
    assert!(!audit_ids(&audits(store, second.id).await).contains(&stale_audit.id));

    // A code taken: a default with it is refused and takes nothing over.
    let dup = dunning_policy(&first.code, true);
    expect_duplicate(
        store.insert_dunning_policy(&dup, &create(&dup)).await,
        "dunning policy",
        "code",
    );
    assert_eq!(store.get_dunning_policy(dup.id).await.unwrap(), None);
    assert!(audits(store, dup.id).await.is_empty());
    let mut renamed = second_now.clone();
    renamed.code = first.code.clone();
    renamed.is_default = true;
    renamed.revision = second_now.revision + 1;
    renamed.updated_at = t(240);
    expect_duplicate(
        store
            .update_dunning_policy(
                &renamed,
                second_now.revision,
                &update(&second_now, &renamed, 240),
            )
            .await,
        "dunning policy",
        "code",
    );
    assert_eq!(get(second.id).await, second_now);
    assert_eq!(
        listed().await,
        (vec![other.id], vec![first_now, other3, second_now])
    );
}

/// With `as_of`, a subscriber already invoiced for the period containing it comes back
/// without history (nothing to bill: a rerun reads almost nothing); the others in full.
pub async fn billing_inputs_skip_subscribers_invoiced_for_the_period(store: Arc<dyn Store>) {
    use lastmile_domain::billing::period::Period;
    let store = &*store;
    let (_, subs) = billing_world(store, 3).await;
    let ((a, a1), (b, b1), (c, c1)) = (subs[0].clone(), subs[1].clone(), subs[2].clone());
    for svc in [&a1, &b1, &c1] {
        record(
            store,
            &change(svc, 1, EventKind::Activated, t(0), t(0), vec![]),
        )
        .await;
    }
    let as_of = unique_date();
    let current = |s: &Subscriber| Period::containing(as_of, s.billing_day).start;
    // a: invoiced for the current period; b: only for the one before; c: never.
    let earlier = Period::containing(days_after(current(&b), -1), b.billing_day).start;
    let prefix = format!("T{}-", tag());
    bill(
        store,
        &[
            new_invoice(&a1, current(&a), None, &[4_900]),
            new_invoice(&b1, earlier, None, &[4_900]),
        ],
        &prefix,
    )
    .await;
    let ours = [a.id, b.id, c.id];
    let first = *ours.iter().min().expect("ids");
    let mut found = Vec::new();
    let mut after = just_before(first);
    while found.len() < 3 {
        let batch = store
            .billing_inputs(Some(after), 2, Some(as_of))
            .await
            .expect("billing_inputs");
        let Some(last) = batch.last().map(|i| i.subscriber.id) else {
            break;
        };
        found.extend(
            batch
                .into_iter()
                .filter(|i| ours.contains(&i.subscriber.id)),
        );
        after = last;
    }
    let by_id = |id: SubscriberId| found.iter().find(|i| i.subscriber.id == id).expect("ours");
    let ia = by_id(a.id);
    assert!(ia.services.is_empty() && ia.invoiced.is_empty() && ia.discounts.is_empty());
    assert_eq!(ia.invoiced_periods, vec![current(&a)]);
    let ib = by_id(b.id);
    assert_eq!(ib.services.len(), 1);
    assert_eq!(ib.services[0].events.len(), 1);
    assert_eq!(ib.invoiced.len(), 1);
    assert_eq!(ib.invoiced_periods, vec![earlier]);
    let ic = by_id(c.id);
    assert_eq!(ic.services.len(), 1);
    assert!(ic.invoiced_periods.is_empty());
    // Without `as_of`, everybody's history.
    let full = store.billing_input(a.id).await.unwrap().expect("a");
    assert_eq!(full.services.len(), 1);
    assert_eq!(full.invoiced.len(), 1);
}

pub async fn discounts_and_billing_input(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 3).await;
    let ((a, a1), (b, b1), (c, _)) = (subs[0].clone(), subs[1].clone(), subs[2].clone());
    let e1 = change(&a1, 1, EventKind::Activated, t(0), t(0), vec![]);
    record(store, &e1).await;
    let f1 = change(&b1, 1, EventKind::Activated, t(5), t(5), vec![]);
    record(store, &f1).await;

    // a: a percentage on one service (open-ended) and a fixed amount on all (ending); b: all
    // of one service's charges; c: none.
    let start = unique_date();
    let percent = discount(
        &a,
        Some(a1.id),
        DiscountValue::Percent {
            percent: rate("12.5"),
        },
        start,
        None,
    );
    let fixed = discount(
        &a,
        None,
        DiscountValue::Fixed { amount_minor: 500 },
        start,
        Some(days_after(start, 90)),
    );
    let free = discount(
        &b,
        Some(b1.id),
        DiscountValue::Percent {
            percent: Rate::HUNDRED_PERCENT,
        },
        days_after(start, 1),
        None,
    );
    for d in [&percent, &fixed, &free] {
        store
            .insert_discount(
                d,
                &audit_of(
                    t(30),
                    Some(d.subscriber_id),
                    "discount",
                    d.id,
                    "discount.create",
                    d,
                ),
            )
            .await
            .expect("insert_discount");
        assert_eq!(store.get_discount(d.id).await.unwrap(), Some(d.clone()));
    }
    assert_eq!(
        store.get_discount(DiscountId::generate()).await.unwrap(),
        None
    );
    let list = |sub: SubscriberId| async move {
        sorted_discounts(&store.list_discounts(sub).await.expect("list_discounts"))
    };
    assert_eq!(
        list(a.id).await,
        sorted_discounts(&[percent.clone(), fixed.clone()])
    );
    assert_eq!(list(b.id).await, vec![free.clone()]);
    assert_eq!(list(c.id).await, vec![]);

    // Ending one sets its end date and nothing else.
    let ends = days_after(start, 45);
    let end_audit = audit_of(
        t(90),
        Some(a.id),
        "discount",
        percent.id,
        "discount.end",
        &json!({ "ends_on": ends }),
    );
    store
        .end_discount(percent.id, ends, &end_audit)
        .await
        .expect("end_discount");
    let ended = Discount {
        ends_on: Some(ends),
        ..percent.clone()
    };
    assert_eq!(
        store.get_discount(percent.id).await.unwrap(),
        Some(ended.clone())
    );
    assert_eq!(audits(store, percent.id).await.len(), 2);
    let r = store
        .end_discount(DiscountId::generate(), ends, &end_audit)
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound { entity: "discount" })),
        "ending an unknown discount: got {r:?}"
    );

    // Invoices for a and b.
    let period = unique_date();
    let prefix = format!("T{}-", tag());
    let inv_a = new_invoice(&a1, period, None, &[4_900, 9_900]);
    let inv_b = new_invoice(&b1, period, None, &[4_900]);
    bill(store, &[inv_a.clone(), inv_b.clone()], &prefix).await;

    // The billing inputs carry each subscriber's discounts, ended ones too, and
    // `billing_input` reads exactly what the batch read does for that subscriber.
    let ids = [a.id, b.id, c.id];
    for limit in [1, 2, 100] {
        let inputs = billing_inputs_of(store, &ids, limit).await;
        assert_eq!(
            inputs.iter().map(|i| i.subscriber.id).collect::<Vec<_>>(),
            ids
        );
        for input in &inputs {
            let one = store
                .billing_input(input.subscriber.id)
                .await
                .expect("billing_input")
                .expect("subscriber exists");
            assert_eq!(comparable(&one), comparable(input), "limit {limit}");
        }
        assert_eq!(
            sorted_discounts(&inputs[0].discounts),
            sorted_discounts(&[ended.clone(), fixed.clone()])
        );
        assert_eq!(inputs[1].discounts, vec![free.clone()]);
        assert!(inputs[2].discounts.is_empty());
    }

    // One subscriber's input holds their history and nobody else's.
    let ia = store.billing_input(a.id).await.unwrap().expect("a's input");
    assert_eq!(ia.subscriber, BillingSubscriber::from(&a));
    assert_eq!(ia.services.len(), 1);
    assert_eq!(ia.services[0].service_id, a1.id);
    assert_eq!(
        ia.services[0].events,
        for_billing(std::slice::from_ref(&e1.event))
    );
    assert_eq!(invoiced_keys(&ia), invoiced_of(&[&inv_a]));
    assert_eq!(ia.invoiced_periods, vec![period]);
    let ib = store.billing_input(b.id).await.unwrap().expect("b's input");
    assert_eq!(ib.subscriber, BillingSubscriber::from(&b));
    assert_eq!(ib.services.len(), 1);
    assert_eq!(
        ib.services[0].events,
        for_billing(std::slice::from_ref(&f1.event))
    );
    assert_eq!(invoiced_keys(&ib), invoiced_of(&[&inv_b]));
    assert_eq!(ib.discounts, vec![free]);
    let ic = store.billing_input(c.id).await.unwrap().expect("c's input");
    assert_eq!(ic.subscriber, BillingSubscriber::from(&c));
    assert_eq!(ic.services.len(), 1);
    assert!(ic.services[0].events.is_empty());
    assert!(ic.invoiced.is_empty() && ic.invoiced_periods.is_empty() && ic.discounts.is_empty());
    assert!(store
        .billing_input(SubscriberId::generate())
        .await
        .unwrap()
        .is_none());
}

// Cases: drafts and voids -------------------------------------------------------------------

pub async fn draft_invoices_take_a_number_when_issued(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 2).await;
    let (a, b) = (&subs[0], &subs[1]);
    let p1 = unique_date();
    let p2 = days_after(p1, 30);
    let p3 = days_after(p1, 61);
    let run = add_run(store, unique_date()).await;
    let prefix = format!("T{}-", tag());

    // A draft with prices including tax and taxed lines (two taxes on one line), and an
    // issued invoice, in one batch.
    let mut draft = new_invoice(&a.1, p1, Some(run.id), &[6_000, 9_900, 0, -1_000]);
    draft.issue = None;
    draft.prices_include_tax = true;
    draft.created_at = t(1_800);
    for l in &mut draft.lines {
        let taxes = match l.position {
            1 => vec![applied("VAT", "20", 1_000)],
            2 => vec![applied("GST", "5", 431), applied("QST", "9.975", 860)],
            4 => vec![applied("VAT", "20", -167)],
            _ => vec![],
        };
        l.tax_minor = taxes.iter().map(|t| t.amount_minor).sum();
        l.taxes = taxes;
    }
    let issued_b = new_invoice(&b.1, p1, Some(run.id), &[4_900]);
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![draft.clone(), issued_b.clone()],
            b.0.id,
            2,
            vec![],
            &prefix,
        ))
        .await
        .expect("commit_billing_batch");
    assert_eq!(n, 2);
    let got = invoice_of(store, draft.id).await;
    assert_eq!(got, stored_invoice(&draft, None));
    assert_eq!(
        (
            got.status,
            got.number.as_deref(),
            got.issued_at,
            got.due_date
        ),
        (InvoiceStatus::Draft, None, None, None)
    );
    assert_eq!(
        (got.subtotal_minor, got.tax_minor, got.total_minor),
        (12_776, 2_124, 14_900)
    );
    let first = seq_of(number_of(&invoice_of(store, issued_b.id).await), &prefix);

    // The draft holds its period and counts as invoiced, but owes nothing yet.
    let again = new_invoice(&a.1, p1, Some(run.id), &[1]);
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![again.clone()],
            b.0.id,
            0,
            vec![],
            &prefix,
        ))
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(store.get_invoice(again.id).await.unwrap(), None);
    let input = store.billing_input(a.0.id).await.unwrap().unwrap();
    assert_eq!(invoiced_keys(&input), invoiced_of(&[&draft]));
    assert_eq!(input.invoiced_periods, vec![p1]);
    let account = account_of(store, a.0.id).await;
    assert!(account.debits.is_empty() && account.credits.is_empty());
    assert!(store.ledger(a.0.id).await.unwrap().is_empty());
    let mut header = got.clone();
    header.lines.clear();
    assert_eq!(
        store
            .list_invoices(
                &InvoiceFilter {
                    subscriber_id: Some(a.0.id),
                    status: Some(InvoiceStatus::Draft),
                    ..Default::default()
                },
                ALL
            )
            .await
            .unwrap(),
        vec![header]
    );

    // The draft took no number: the next issued invoice has the next one.
    let next = new_invoice(&a.1, p2, Some(run.id), &[4_900]);
    bill(store, std::slice::from_ref(&next), &prefix).await;
    let second = seq_of(number_of(&invoice_of(store, next.id).await), &prefix);
    assert!(second > first);

    // Issuing numbers it in the account change, with its issue and due dates.
    let account = account_of(store, a.0.id).await;
    let mut issue = account_change(&account, t(7_200), "invoice.issue");
    issue.issue_invoice = Some(IssueInvoice {
        invoice_id: draft.id,
        issued_at: t(7_200),
        due_date: days_after(p1, 20),
        number_prefix: prefix.clone(),
    });
    change_account(store, &issue).await;
    let issued = invoice_of(store, draft.id).await;
    let third = seq_of(number_of(&issued), &prefix);
    assert!(third > second);
    assert_eq!(
        issued,
        Invoice {
            number: issued.number.clone(),
            status: InvoiceStatus::Issued,
            issued_at: Some(t(7_200)),
            due_date: Some(days_after(p1, 20)),
            ..stored_invoice(&draft, None)
        }
    );
    let account = account_of(store, a.0.id).await;
    assert_eq!(
        account.revision,
        issue.expected_revision + 1,
        "the account revision moved on"
    );
    assert_eq!(
        account.debit(invoice_doc(draft.id)),
        Some(&Debit {
            doc: invoice_doc(draft.id),
            label: number_of(&issued).to_string(),
            due: days_after(p1, 20),
            at: t(7_200),
            amount_minor: 14_900,
            allocated_minor: 0,
        })
    );
    assert!(store
        .ledger(a.0.id)
        .await
        .unwrap()
        .iter()
        .any(|e| e.document_id == draft.id.0 && e.kind == LedgerEntryKind::Invoice));

    // Issuing what is not a draft (any more): stale, nothing written, no number taken.
    let b_draft = NewInvoice {
        issue: None,
        ..new_invoice(&b.1, p2, Some(run.id), &[700])
    };
    bill(store, std::slice::from_ref(&b_draft), &prefix).await;
    for (what, invoice_id) in [
        ("the issued draft", draft.id),
        ("an invoice issued by a run", next.id),
        ("another subscriber's draft", b_draft.id),
        ("an unknown invoice", InvoiceId::generate()),
    ] {
        let before = account_of(store, a.0.id).await;
        let mut twice = account_change(&before, t(8_000), "invoice.issue");
        twice.issue_invoice = Some(IssueInvoice {
            invoice_id,
            issued_at: t(8_000),
            due_date: p3,
            number_prefix: prefix.clone(),
        });
        let r = store.record_account_change(&twice).await;
        assert!(
            matches!(r, Err(StoreError::Stale { entity: "invoice" })),
            "issuing {what}: got {r:?}"
        );
        assert_eq!(account_of(store, a.0.id).await, before, "{what}");
        assert_audit_absent(store, &twice).await;
    }
    assert_eq!(invoice_of(store, draft.id).await, issued);
    assert_eq!(
        invoice_of(store, b_draft.id).await,
        stored_invoice(&b_draft, None)
    );

    // The failed issues gave their numbers back.
    let last = new_invoice(&b.1, p3, Some(run.id), &[4_900]);
    bill(store, std::slice::from_ref(&last), &prefix).await;
    let fourth = seq_of(number_of(&invoice_of(store, last.id).await), &prefix);
    assert!(fourth > third);
    if counter_is_ours(store, &prefix, 5).await {
        assert_eq!(
            [first, second, third, fourth],
            [1, 2, 3, 4],
            "gap-free invoice numbers, drafts numbered when issued"
        );
    }
}

pub async fn void_invoice_frees_its_period(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 1).await;
    let (sub, svc) = &subs[0];
    let p1 = unique_date();
    let p2 = days_after(p1, 30);
    let prefix = format!("T{}-", tag());
    let run = add_run(store, unique_date()).await;
    let wrong = new_invoice(svc, p1, Some(run.id), &[4_900, 9_900]);
    let draft = NewInvoice {
        issue: None,
        ..new_invoice(svc, p2, Some(run.id), &[4_900])
    };
    let n = store
        .commit_billing_batch(&billing_batch(
            &run,
            vec![wrong.clone(), draft.clone()],
            sub.id,
            1,
            vec![],
            &prefix,
        ))
        .await
        .unwrap();
    assert_eq!(n, 2);
    let issued = invoice_of(store, wrong.id).await;

    // Voiding an issued invoice keeps its number and records when and why.
    let account = account_of(store, sub.id).await;
    assert_eq!(account.debits.len(), 1);
    let reason = "Wrong plan «Fibre 100» \"quoted\"";
    let mut void = account_change(&account, t(9_000), "invoice.void");
    void.void_invoice = Some(VoidInvoice {
        invoice_id: wrong.id,
        voided_at: t(9_000),
        reason: reason.into(),
    });
    change_account(store, &void).await;
    let voided = invoice_of(store, wrong.id).await;
    assert_eq!(
        voided,
        Invoice {
            status: InvoiceStatus::Void,
            voided_at: Some(t(9_000)),
            void_reason: Some(reason.into()),
            ..issued.clone()
        }
    );
    let account = account_of(store, sub.id).await;
    assert_eq!(account.revision, void.expected_revision + 1);
    assert!(
        account.debits.is_empty() && account.credits.is_empty(),
        "a void invoice is owed no more"
    );
    let mut header = voided.clone();
    header.lines.clear();
    assert_eq!(
        store
            .list_invoices(
                &InvoiceFilter {
                    subscriber_id: Some(sub.id),
                    status: Some(InvoiceStatus::Void),
                    ..Default::default()
                },
                ALL
            )
            .await
            .unwrap(),
        vec![header]
    );

    // Its lines are no longer invoiced and its period is free.
    let input = store.billing_input(sub.id).await.unwrap().unwrap();
    assert_eq!(invoiced_keys(&input), invoiced_of(&[&draft]));
    assert_eq!(input.invoiced_periods, vec![p2]);
    let batch_input = billing_inputs_of(store, &[sub.id], 10).await;
    assert_eq!(comparable(&batch_input[0]), comparable(&input));
    let right = NewInvoice {
        created_at: t(10_000),
        ..new_invoice(svc, p1, Some(run.id), &[2_450])
    };
    bill(store, std::slice::from_ref(&right), &prefix).await;
    let rebilled = invoice_of(store, right.id).await;
    assert_eq!(rebilled, stored_invoice(&right, rebilled.number.as_deref()));
    let input = store.billing_input(sub.id).await.unwrap().unwrap();
    assert_eq!(invoiced_keys(&input), invoiced_of(&[&draft, &right]));
    assert_eq!(sorted(&input.invoiced_periods), vec![p1, p2]);

    // The ledger shows the invoice, the void cancelling it, and the new invoice.
    let entry = |kind, inv: &Invoice, at, amount_minor| LedgerEntry {
        kind,
        document_id: inv.id.0,
        label: inv.number.clone(),
        at,
        amount_minor,
    };
    let expected = vec![
        entry(LedgerEntryKind::Invoice, &issued, t(3_600), 14_800),
        entry(LedgerEntryKind::InvoiceVoid, &issued, t(9_000), -14_800),
        entry(LedgerEntryKind::Invoice, &rebilled, t(10_000), 2_450),
    ];
    assert_eq!(store.ledger(sub.id).await.unwrap(), expected);
    assert_eq!(account_of(store, sub.id).await.balance_minor(), Ok(2_450));

    // Voiding it again: stale, nothing written.
    let before = account_of(store, sub.id).await;
    let mut again = account_change(&before, t(11_000), "invoice.void");
    again.void_invoice = Some(VoidInvoice {
        invoice_id: wrong.id,
        voided_at: t(11_000),
        reason: "again".into(),
    });
    expect_stale(store.record_account_change(&again).await, "invoice");
    assert_eq!(account_of(store, sub.id).await, before);
    assert_eq!(invoice_of(store, wrong.id).await, voided);
    assert_audit_absent(store, &again).await;

    // A draft may be voided too; never numbered, it never was on the ledger.
    let mut void_draft = account_change(&before, t(12_000), "invoice.void");
    void_draft.void_invoice = Some(VoidInvoice {
        invoice_id: draft.id,
        voided_at: t(12_000),
        reason: "not needed".into(),
    });
    change_account(store, &void_draft).await;
    let got = invoice_of(store, draft.id).await;
    assert_eq!(
        (got.status, got.number.as_deref(), got.voided_at),
        (InvoiceStatus::Void, None, Some(t(12_000)))
    );
    assert_eq!(store.ledger(sub.id).await.unwrap(), expected);
    let input = store.billing_input(sub.id).await.unwrap().unwrap();
    assert_eq!(invoiced_keys(&input), invoiced_of(&[&right]));
    assert_eq!(input.invoiced_periods, vec![p1]);
}

// Cases: accounts ---------------------------------------------------------------------------

pub async fn account_debits_credits_and_documents(store: Arc<dyn Store>) {
    let store = &*store;
    let w = money_world(store).await;
    let [p1, p2] = [&w.payments[0], &w.payments[1]];
    let [i1, i2] = [&w.invoices[0], &w.invoices[1]];

    // Settled invoices are paid.
    for inv in &w.invoices {
        assert_eq!(
            invoice_of(store, inv.id).await,
            Invoice {
                status: InvoiceStatus::Paid,
                ..inv.clone()
            }
        );
    }

    // The account: every document with what is allocated of it.
    let account = account_of(store, w.sub.id).await;
    assert_eq!(account.subscriber_id, w.sub.id);
    assert_eq!(account.currency, chf());
    assert_eq!(account.revision, w.initial_revision + 4);
    let mut debits = account.debits.clone();
    debits.sort_by_key(|d| d.doc);
    let invoice_debit = |inv: &Invoice| Debit {
        doc: invoice_doc(inv.id),
        label: number_of(inv).to_string(),
        due: inv.due_date.expect("issued"),
        at: inv.issued_at.expect("issued"),
        amount_minor: inv.total_minor,
        allocated_minor: inv.total_minor,
    };
    assert_eq!(debits.len(), 3);
    assert_eq!(account.debit(invoice_doc(i1.id)), Some(&invoice_debit(i1)));
    assert_eq!(account.debit(invoice_doc(i2.id)), Some(&invoice_debit(i2)));
    let r = account
        .debit(refund_doc(&w.refund))
        .expect("the refund is a debit");
    assert_eq!(
        (r.at, r.amount_minor, r.allocated_minor, r.label.as_str()),
        (
            w.refund.refunded_at,
            1_000,
            1_000,
            w.refund.reference.as_deref().unwrap()
        )
    );
    let mut credits = account.credits.clone();
    credits.sort_by_key(|c| c.doc);
    let mut expected = vec![
        Credit {
            doc: payment_doc(p1),
            at: p1.received_at,
            amount_minor: 6_000,
            allocated_minor: 6_000,
        },
        Credit {
            doc: note_doc(&w.note),
            at: w.note.issued_at,
            amount_minor: 3_000,
            allocated_minor: 3_000,
        },
        Credit {
            doc: payment_doc(p2),
            at: p2.received_at,
            amount_minor: 12_000,
            allocated_minor: 11_700,
        },
    ];
    expected.sort_by_key(|c| c.doc);
    assert_eq!(credits, expected);
    assert_eq!(account.balance_minor(), Ok(-300));
    assert_eq!(account.available_credit_minor(), Ok(300));
    assert_eq!(
        store.get_account(SubscriberId::generate()).await.unwrap(),
        None
    );

    // The documents, one by one and listed.
    for p in &w.payments {
        assert_eq!(store.get_payment(p.id).await.unwrap(), Some(p.clone()));
        assert_eq!(
            store
                .find_payment_by_external_id(p.external_id.as_deref().unwrap())
                .await
                .unwrap(),
            Some(p.clone())
        );
    }
    assert_eq!(
        store.get_payment(PaymentId::generate()).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .find_payment_by_external_id(&format!("EXT-{}", tag()))
            .await
            .unwrap(),
        None
    );
    let mut pays = w.payments.clone();
    pays.sort_by_key(|p| p.id);
    let of_sub = PaymentFilter {
        subscriber_id: Some(w.sub.id),
    };
    let list = |f: PaymentFilter, p: Page| async move { store.list_payments(&f, p).await.unwrap() };
    assert_eq!(list(of_sub.clone(), ALL).await, pays);
    assert_eq!(list(of_sub.clone(), page(None, 1)).await, pays[0..1]);
    assert_eq!(
        list(of_sub.clone(), page(Some(pays[0].id.0), 1)).await,
        pays[1..2]
    );
    assert_eq!(
        list(of_sub.clone(), page(Some(pays[1].id.0), 1)).await,
        vec![]
    );
    assert_eq!(
        list(
            PaymentFilter {
                subscriber_id: Some(SubscriberId::generate())
            },
            ALL
        )
        .await,
        vec![]
    );
    // Unfiltered, from just before ours: ours in id order among any others.
    let unfiltered = list(
        PaymentFilter::default(),
        page(Some(Uuid::from_u128(pays[0].id.0.as_u128() - 1)), 1_000),
    )
    .await;
    assert!(unfiltered.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        unfiltered
            .into_iter()
            .filter(|p| p.subscriber_id == w.sub.id)
            .collect::<Vec<_>>(),
        pays
    );

    assert!(seq_of(&w.note.number, &w.note_prefix) > 0);
    let NewCreditNote { note, .. } = w.changes[1].credit_note.clone().unwrap();
    assert_eq!(
        w.note,
        CreditNote {
            number: w.note.number.clone(),
            ..note
        }
    );
    assert_eq!(
        store
            .get_credit_note(CreditNoteId::generate())
            .await
            .unwrap(),
        None
    );
    let notes = |f: CreditNoteFilter| async move {
        store
            .list_credit_notes(&f, ALL)
            .await
            .expect("list_credit_notes")
    };
    assert_eq!(
        notes(CreditNoteFilter {
            invoice_id: Some(i1.id),
            ..Default::default()
        })
        .await,
        vec![w.note.clone()]
    );
    assert_eq!(
        notes(CreditNoteFilter {
            invoice_id: Some(i2.id),
            ..Default::default()
        })
        .await,
        vec![]
    );
    assert_eq!(
        notes(CreditNoteFilter {
            subscriber_id: Some(w.sub.id),
            ..Default::default()
        })
        .await,
        vec![w.note.clone()]
    );
    assert_eq!(
        notes(CreditNoteFilter {
            subscriber_id: Some(w.sub.id),
            invoice_id: Some(i2.id),
        })
        .await,
        vec![]
    );

    assert_eq!(
        store.list_refunds(w.sub.id).await.unwrap(),
        vec![w.refund.clone()]
    );
    assert_eq!(
        store.list_refunds(SubscriberId::generate()).await.unwrap(),
        vec![]
    );
    let mut allocations = store.list_allocations(w.sub.id).await.unwrap();
    allocations.sort_by_key(|a| a.id);
    let mut expected = w.allocations.clone();
    expected.sort_by_key(|a| a.id);
    assert_eq!(allocations, expected);
    assert!(store
        .list_allocations(SubscriberId::generate())
        .await
        .unwrap()
        .is_empty());

    // Every change wrote its audit event.
    let written = audit_ids(&audits(store, w.sub.id).await);
    for c in &w.changes {
        assert!(written.contains(&c.audit[0].id));
    }
}

pub async fn account_change_stale_or_duplicate_writes_nothing(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 2).await;
    let (sub, svc) = &subs[0];
    let prefix = format!("T{}-", tag());
    let inv = bill(
        store,
        &[new_invoice(svc, unique_date(), None, &[4_900, 9_900])],
        &prefix,
    )
    .await
    .remove(0);
    let debit = invoice_doc(inv.id);
    let read = account_of(store, sub.id).await;

    // A partial payment.
    let first = payment(sub.id, 6_000, t(DAY));
    let mut pay = account_change(&read, t(DAY), "payment.record");
    pay.payment = Some(first.clone());
    pay.allocations = vec![allocation(
        sub.id,
        payment_doc(&first),
        debit,
        6_000,
        t(DAY),
    )];
    change_account(store, &pay).await;
    let after_first = account_of(store, sub.id).await;
    assert_eq!(after_first.revision, read.revision + 1);

    // A change from the account as read before that payment: stale, nothing written (no
    // payment, allocation, credit note, paid invoice or audit event).
    let late = payment(sub.id, 8_800, t(2 * DAY));
    let late_note = credit_note(&inv, 100, t(2 * DAY));
    let mut stale = account_change(&read, t(2 * DAY), "payment.record");
    stale.payment = Some(late.clone());
    stale.credit_note = Some(NewCreditNote {
        note: late_note.clone(),
        number_prefix: format!("CN{}-", tag()),
    });
    stale.allocations = vec![allocation(
        sub.id,
        payment_doc(&late),
        debit,
        8_800,
        t(2 * DAY),
    )];
    stale.paid_invoices = vec![inv.id];
    expect_stale(store.record_account_change(&stale).await, "account");
    assert_eq!(store.get_payment(late.id).await.unwrap(), None);
    assert_eq!(store.get_credit_note(late_note.id).await.unwrap(), None);
    assert_eq!(account_of(store, sub.id).await, after_first);
    assert_eq!(
        store.list_allocations(sub.id).await.unwrap(),
        pay.allocations
    );
    assert_eq!(
        invoice_of(store, inv.id).await.status,
        InvoiceStatus::Issued
    );
    assert_audit_absent(store, &stale).await;

    // The same external id again (the bank statement imported twice), for this subscriber or
    // another: a duplicate, nothing written.
    let other = &subs[1].0;
    for (who, payer) in [("same subscriber", sub), ("other subscriber", other)] {
        let before = account_of(store, payer.id).await;
        let mut dup = payment(payer.id, 8_800, t(2 * DAY));
        dup.external_id = first.external_id.clone();
        let mut c = account_change(&before, t(2 * DAY), "payment.record");
        c.payment = Some(dup.clone());
        if payer.id == sub.id {
            c.allocations = vec![allocation(
                sub.id,
                payment_doc(&dup),
                debit,
                8_800,
                t(2 * DAY),
            )];
            c.paid_invoices = vec![inv.id];
        }
        expect_duplicate(
            store.record_account_change(&c).await,
            "payment",
            "external_id",
        );
        assert_eq!(store.get_payment(dup.id).await.unwrap(), None, "{who}");
        assert_eq!(account_of(store, payer.id).await, before, "{who}");
        assert_audit_absent(store, &c).await;
    }
    assert_eq!(
        store
            .find_payment_by_external_id(first.external_id.as_deref().unwrap())
            .await
            .unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        invoice_of(store, inv.id).await.status,
        InvoiceStatus::Issued
    );

    // Payments without an external id are never duplicates of each other; the second one
    // settles the invoice, which becomes paid.
    let mut paid = Vec::new();
    for (amount, settle) in [(500, false), (8_300, true)] {
        let mut p = payment(sub.id, amount, t(3 * DAY));
        p.external_id = None;
        p.reference = None;
        let mut c = account_change(
            &account_of(store, sub.id).await,
            t(3 * DAY),
            "payment.record",
        );
        c.payment = Some(p.clone());
        c.allocations = vec![allocation(
            sub.id,
            payment_doc(&p),
            debit,
            amount,
            t(3 * DAY),
        )];
        if settle {
            c.paid_invoices = vec![inv.id];
        }
        change_account(store, &c).await;
        assert_eq!(store.get_payment(p.id).await.unwrap(), Some(p.clone()));
        paid.push(p);
    }
    assert_eq!(
        invoice_of(store, inv.id).await,
        Invoice {
            status: InvoiceStatus::Paid,
            ..inv.clone()
        }
    );
    let account = account_of(store, sub.id).await;
    assert_eq!(account.revision, read.revision + 3);
    assert_eq!(
        account
            .debit(debit)
            .map(|d| (d.amount_minor, d.allocated_minor)),
        Some((14_800, 14_800))
    );
    assert_eq!(account.balance_minor(), Ok(0));
    let mut listed = store
        .list_payments(
            &PaymentFilter {
                subscriber_id: Some(sub.id),
            },
            ALL,
        )
        .await
        .unwrap();
    listed.sort_by_key(|p| p.id);
    let mut expected = vec![first, paid[0].clone(), paid[1].clone()];
    expected.sort_by_key(|p| p.id);
    assert_eq!(listed, expected);
}

pub async fn credit_notes_numbered_gap_free(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 1).await;
    let (sub, svc) = &subs[0];
    let prefix = format!("T{}-", tag());
    let note_prefix = format!("CN{}-", tag());
    let period = unique_date();
    let inv = bill(store, &[new_invoice(svc, period, None, &[4_900])], &prefix)
        .await
        .remove(0);
    let issue_note = |account: &Account, note: &CreditNote| {
        let mut c = account_change(account, note.issued_at, "credit_note.create");
        c.credit_note = Some(NewCreditNote {
            note: note.clone(),
            number_prefix: note_prefix.clone(),
        });
        c
    };
    let stored = |id: CreditNoteId| async move {
        store
            .get_credit_note(id)
            .await
            .expect("get_credit_note")
            .expect("credit note stored")
    };

    let one = credit_note(&inv, 1_000, t(DAY));
    change_account(store, &issue_note(&account_of(store, sub.id).await, &one)).await;
    let got = stored(one.id).await;
    assert_eq!(
        got,
        CreditNote {
            number: got.number.clone(),
            ..one.clone()
        }
    );
    let first = seq_of(&got.number, &note_prefix);

    // Failed changes give their numbers back: a stale one, and one failing after the note
    // was numbered (an allocation whose id is taken).
    let stale_note = credit_note(&inv, 200, t(2 * DAY));
    let mut old = account_of(store, sub.id).await;
    old.revision -= 1;
    expect_stale(
        store
            .record_account_change(&issue_note(&old, &stale_note))
            .await,
        "account",
    );
    let taken = allocation(
        sub.id,
        note_doc(&got),
        invoice_doc(inv.id),
        1_000,
        t(2 * DAY),
    );
    let mut c = account_change(
        &account_of(store, sub.id).await,
        t(2 * DAY),
        "allocation.create",
    );
    c.allocations = vec![taken.clone()];
    change_account(store, &c).await;
    let failing_note = credit_note(&inv, 300, t(2 * DAY));
    let mut failing = issue_note(&account_of(store, sub.id).await, &failing_note);
    let mut reused = allocation(
        sub.id,
        note_doc(&failing_note),
        invoice_doc(inv.id),
        300,
        t(2 * DAY),
    );
    reused.id = taken.id;
    failing.allocations = vec![reused];
    let before = account_of(store, sub.id).await;
    assert!(
        store.record_account_change(&failing).await.is_err(),
        "an allocation id that is taken fails the change"
    );
    for id in [stale_note.id, failing_note.id] {
        assert_eq!(store.get_credit_note(id).await.unwrap(), None);
    }
    assert_eq!(account_of(store, sub.id).await, before);
    assert_eq!(store.list_allocations(sub.id).await.unwrap(), vec![taken]);

    let two = credit_note(&inv, 2_000, t(3 * DAY));
    change_account(store, &issue_note(&account_of(store, sub.id).await, &two)).await;
    let second = seq_of(&stored(two.id).await.number, &note_prefix);
    assert!(second > first);
    let all = store
        .list_credit_notes(&CreditNoteFilter::default(), page(None, 3))
        .await
        .unwrap();
    if all.len() == 2 && all.iter().all(|n| n.number.starts_with(&note_prefix)) {
        assert_eq!([first, second], [1, 2], "gap-free credit note numbers");
    }

    // Credit notes have their own sequence: invoice numbers go on where they were.
    let later = bill(
        store,
        &[new_invoice(svc, days_after(period, 30), None, &[4_900])],
        &prefix,
    )
    .await
    .remove(0);
    let invoice_numbers = [
        seq_of(number_of(&inv), &prefix),
        seq_of(number_of(&later), &prefix),
    ];
    assert!(invoice_numbers[1] > invoice_numbers[0]);
    if counter_is_ours(store, &prefix, 2).await {
        assert_eq!(
            invoice_numbers,
            [1, 2],
            "credit notes took no invoice number"
        );
    }
    let listed = store
        .list_credit_notes(
            &CreditNoteFilter {
                invoice_id: Some(inv.id),
                ..Default::default()
            },
            ALL,
        )
        .await
        .unwrap();
    let mut expected = vec![stored(one.id).await, stored(two.id).await];
    expected.sort_by_key(|n| n.id);
    assert_eq!(listed, expected);
}

pub async fn ledger_chronological_with_signs(store: Arc<dyn Store>) {
    let store = &*store;
    let w = money_world(store).await;
    let [p1, p2] = [&w.payments[0], &w.payments[1]];
    let [i1, i2] = [&w.invoices[0], &w.invoices[1]];
    // Recorded last, received first: the ledger is in time order, not recording order.
    let early = payment(w.sub.id, 500, t(60));
    let mut c = account_change(
        &account_of(store, w.sub.id).await,
        t(5 * DAY),
        "payment.record",
    );
    c.payment = Some(early.clone());
    change_account(store, &c).await;

    let entry = |kind, document_id: Uuid, label: Option<&str>, at, amount_minor| LedgerEntry {
        kind,
        document_id,
        label: label.map(str::to_string),
        at,
        amount_minor,
    };
    let expected = vec![
        entry(
            LedgerEntryKind::Payment,
            early.id.0,
            early.reference.as_deref(),
            t(60),
            -500,
        ),
        entry(
            LedgerEntryKind::Invoice,
            i1.id.0,
            i1.number.as_deref(),
            t(3_600),
            14_800,
        ),
        entry(
            LedgerEntryKind::Invoice,
            i2.id.0,
            i2.number.as_deref(),
            t(3_700),
            4_900,
        ),
        entry(
            LedgerEntryKind::Payment,
            p1.id.0,
            p1.reference.as_deref(),
            t(DAY),
            -6_000,
        ),
        entry(
            LedgerEntryKind::CreditNote,
            w.note.id.0,
            Some(&w.note.number),
            t(2 * DAY),
            -3_000,
        ),
        entry(
            LedgerEntryKind::Payment,
            p2.id.0,
            p2.reference.as_deref(),
            t(3 * DAY),
            -12_000,
        ),
        entry(
            LedgerEntryKind::Refund,
            w.refund.id.0,
            w.refund.reference.as_deref(),
            t(4 * DAY),
            1_000,
        ),
    ];
    let ledger = store.ledger(w.sub.id).await.expect("ledger");
    assert_eq!(ledger, expected);
    let sum: i64 = ledger.iter().map(|e| e.amount_minor).sum();
    let account = account_of(store, w.sub.id).await;
    assert_eq!(sum, -800);
    assert_eq!(
        account.balance_minor(),
        Ok(sum),
        "the ledger sums to the balance"
    );
    assert!(store
        .ledger(SubscriberId::generate())
        .await
        .unwrap()
        .is_empty());
}

pub async fn account_change_with_service_changes_and_jobs(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let s1 = new_service(store, &w).await;
    let s2 = new_service(store, &w).await;
    let a1 = record(
        store,
        &change(&s1, 1, EventKind::Activated, t(0), t(0), vec![]),
    )
    .await;
    let a2 = record(
        store,
        &change(&s2, 1, EventKind::Activated, t(0), t(0), vec![]),
    )
    .await;
    let k = JobKind::DunningReminder;

    // A dunning suspension of both services (one with a job of its own), a reminder job and a
    // payment, in one change.
    let suspend = |before: &Service, jobs: Vec<ProvisioningJob>| {
        let mut e = event(before, 2, EventKind::Suspended, t(100), t(100));
        e.suspension_cause = Some(SuspensionCause::Dunning);
        apply(before, e, jobs)
    };
    let sc1 = suspend(&a1, vec![job(&k, Some(w.sub.id), Some(s1.id), t(100))]);
    let sc2 = suspend(&a2, vec![]);
    let read = account_of(store, w.sub.id).await;
    let pay = payment(w.sub.id, 5_000, t(100));
    let mut c = account_change(&read, t(100), "dunning.suspend");
    c.payment = Some(pay.clone());
    c.service_changes = vec![sc1.clone(), sc2.clone()];
    c.jobs = vec![job(&k, Some(w.sub.id), None, t(100))];
    change_account(store, &c).await;
    for sc in [&sc1, &sc2] {
        assert_eq!(
            store.get_service(sc.service.id).await.unwrap(),
            Some(sc.service.clone())
        );
        assert_eq!(
            store.service_timeline(sc.service.id).await.unwrap().last(),
            Some(&sc.event)
        );
        assert!(audit_ids(&audits(store, sc.service.id).await).contains(&sc.audit.id));
    }
    for j in sc1.jobs.iter().chain(&c.jobs) {
        assert_eq!(store.get_job(j.id).await.unwrap(), Some(j.clone()));
    }
    assert_eq!(store.get_payment(pay.id).await.unwrap(), Some(pay));
    assert!(audit_ids(&audits(store, w.sub.id).await).contains(&c.audit[0].id));
    assert_eq!(
        account_of(store, w.sub.id).await.revision,
        read.revision + 1
    );

    // One stale service change (read before the suspension) rolls back the whole change:
    // the other service change, the payment, the jobs, the audit event.
    let resume = change(
        &sc1.service,
        3,
        EventKind::Resumed,
        t(200),
        t(200),
        vec![job(&k, Some(w.sub.id), Some(s1.id), t(200))],
    );
    let stale = change(&a2, 3, EventKind::Terminated, t(200), t(200), vec![]);
    let before = account_of(store, w.sub.id).await;
    let late = payment(w.sub.id, 9_000, t(200));
    let mut c2 = account_change(&before, t(200), "payment.record");
    c2.payment = Some(late.clone());
    c2.service_changes = vec![resume.clone(), stale.clone()];
    c2.jobs = vec![job(&k, Some(w.sub.id), None, t(200))];
    expect_stale(store.record_account_change(&c2).await, "service");
    assert_not_written(store, &resume).await;
    assert_not_written(store, &stale).await;
    assert_eq!(
        store.get_service(s1.id).await.unwrap(),
        Some(sc1.service.clone())
    );
    assert_eq!(
        store.get_service(s2.id).await.unwrap(),
        Some(sc2.service.clone())
    );
    assert_eq!(store.get_payment(late.id).await.unwrap(), None);
    assert_eq!(store.get_job(c2.jobs[0].id).await.unwrap(), None);
    assert_eq!(account_of(store, w.sub.id).await, before);
    assert_audit_absent(store, &c2).await;
    assert_eq!(
        list_job_ids(
            store,
            JobFilter {
                kind: Some(k),
                subscriber_id: Some(w.sub.id),
                ..Default::default()
            }
        )
        .await,
        sorted(&job_ids(&[sc1.jobs[0].clone(), c.jobs[0].clone()]))
    );
}

// Cases: dunning ----------------------------------------------------------------------------

pub async fn dunning_actions_recorded_once(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 1).await;
    let (sub, svc) = &subs[0];
    let prefix = format!("T{}-", tag());
    let period = unique_date();
    let invs = bill(
        store,
        &[
            new_invoice(svc, period, None, &[4_900]),
            new_invoice(svc, days_after(period, 30), None, &[4_900]),
        ],
        &prefix,
    )
    .await;
    let (old, new) = (&invs[0], &invs[1]);
    let k = JobKind::DunningReminder;
    let steps = |inv: InvoiceId| async move {
        sorted(&store.dunning_actions(inv).await.expect("dunning_actions"))
    };

    let mut c = account_change(&account_of(store, sub.id).await, t(DAY), "dunning.step");
    c.dunning_actions = vec![
        dunning_action(old, 3, DunningActionKind::Remind, t(DAY)),
        dunning_action(old, 10, DunningActionKind::Suspend, t(DAY)),
        dunning_action(new, 3, DunningActionKind::Remind, t(DAY)),
    ];
    c.jobs = vec![job(&k, Some(sub.id), None, t(DAY))];
    change_account(store, &c).await;
    assert_eq!(
        steps(old.id).await,
        vec![
            (3, DunningActionKind::Remind),
            (10, DunningActionKind::Suspend)
        ]
    );
    assert_eq!(steps(new.id).await, vec![(3, DunningActionKind::Remind)]);
    assert_eq!(steps(InvoiceId::generate()).await, vec![]);
    assert_eq!(
        store.get_job(c.jobs[0].id).await.unwrap(),
        Some(c.jobs[0].clone())
    );

    // The same step of the same invoice again (the daily job run twice): a duplicate, and
    // nothing of the change is written.
    let before = account_of(store, sub.id).await;
    let mut twice = account_change(&before, t(2 * DAY), "dunning.step");
    twice.dunning_actions = vec![
        dunning_action(new, 6, DunningActionKind::Remind, t(2 * DAY)),
        dunning_action(old, 3, DunningActionKind::Remind, t(2 * DAY)),
    ];
    twice.jobs = vec![job(&k, Some(sub.id), None, t(2 * DAY))];
    expect_duplicate(
        store.record_account_change(&twice).await,
        "dunning action",
        "step",
    );
    assert_eq!(steps(new.id).await, vec![(3, DunningActionKind::Remind)]);
    assert_eq!(store.get_job(twice.jobs[0].id).await.unwrap(), None);
    assert_eq!(account_of(store, sub.id).await, before);
    assert_audit_absent(store, &twice).await;

    // Another action on the same day, or the same action on another day, is another step.
    let mut more = account_change(&before, t(3 * DAY), "dunning.step");
    more.dunning_actions = vec![
        dunning_action(old, 3, DunningActionKind::Suspend, t(3 * DAY)),
        dunning_action(old, 4, DunningActionKind::Remind, t(3 * DAY)),
    ];
    change_account(store, &more).await;
    assert_eq!(
        steps(old.id).await,
        vec![
            (3, DunningActionKind::Remind),
            (3, DunningActionKind::Suspend),
            (4, DunningActionKind::Remind),
            (10, DunningActionKind::Suspend),
        ]
    );
}

pub async fn overdue_subscribers_lists_unpaid_past_due(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 6).await;
    let [a, b, c, d, e, f] = [0, 1, 2, 3, 4, 5].map(|i| &subs[i]);
    let prefix = format!("T{}-", tag());
    let period = unique_date();
    let today = days_after(period, 20);
    let due = |inv: NewInvoice, on: Date| NewInvoice {
        issue: Some(on),
        ..inv
    };
    // a: two invoices past due (listed once); b: due today (not overdue yet); c: past due but
    // paid; d: a draft; e: past due but void; f: past due, the day before today.
    let invs = bill(
        store,
        &[
            new_invoice(&a.1, period, None, &[4_900]),
            due(
                new_invoice(&a.1, days_after(period, -30), None, &[4_900]),
                days_after(period, -16),
            ),
            due(new_invoice(&b.1, period, None, &[4_900]), today),
            new_invoice(&c.1, period, None, &[4_900]),
            NewInvoice {
                issue: None,
                ..new_invoice(&d.1, period, None, &[4_900])
            },
            new_invoice(&e.1, period, None, &[4_900]),
            due(
                new_invoice(&f.1, period, None, &[4_900]),
                days_after(today, -1),
            ),
        ],
        &prefix,
    )
    .await;
    let (c_inv, e_inv) = (&invs[3], &invs[5]);
    let p = payment(c.0.id, 4_900, t(DAY));
    let mut pay = account_change(&account_of(store, c.0.id).await, t(DAY), "payment.record");
    pay.payment = Some(p.clone());
    pay.allocations = vec![allocation(
        c.0.id,
        payment_doc(&p),
        invoice_doc(c_inv.id),
        4_900,
        t(DAY),
    )];
    pay.paid_invoices = vec![c_inv.id];
    change_account(store, &pay).await;
    let mut void = account_change(&account_of(store, e.0.id).await, t(DAY), "invoice.void");
    void.void_invoice = Some(VoidInvoice {
        invoice_id: e_inv.id,
        voided_at: t(DAY),
        reason: "duplicate".into(),
    });
    change_account(store, &void).await;

    let ours: Vec<SubscriberId> = subs.iter().map(|(s, _)| s.id).collect();
    for limit in [1, 2, 100] {
        assert_eq!(
            overdue_of(store, today, &ours, limit).await,
            sorted(&[a.0.id, f.0.id]),
            "limit {limit}"
        );
    }
    let from_start: Vec<SubscriberId> = store
        .overdue_subscribers(today, None, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|id| ours.contains(id))
        .collect();
    assert_eq!(from_start, sorted(&[a.0.id, f.0.id]));
    // A day later b is overdue too; on a's earliest due date nobody is, the day after a is.
    assert_eq!(
        overdue_of(store, days_after(today, 1), &ours, 2).await,
        sorted(&[a.0.id, b.0.id, f.0.id])
    );
    assert_eq!(
        overdue_of(store, days_after(period, -16), &ours, 2).await,
        vec![]
    );
    assert_eq!(
        overdue_of(store, days_after(period, -15), &ours, 2).await,
        vec![a.0.id]
    );
    // Nothing after the largest id.
    assert!(store
        .overdue_subscribers(today, Some(SubscriberId(Uuid::max())), 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn subscribers_with_credit_lists_unallocated_credit(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 8).await;
    let [a, b, c, d, e, f, g, h] = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| &subs[i]);
    let prefix = format!("T{}-", tag());
    let period = unique_date();
    let invs = bill(
        store,
        &[
            new_invoice(&a.1, period, None, &[4_900]),
            new_invoice(&b.1, period, None, &[4_900]),
            new_invoice(&e.1, period, None, &[-500]),
            new_invoice(&f.1, period, None, &[4_900]),
        ],
        &prefix,
    )
    .await;
    let pay = |sub: &Subscriber, amount: i64, debit: Option<(DocumentRef, i64)>| {
        let p = payment(sub.id, amount, t(DAY));
        (
            p.clone(),
            debit
                .map(|(doc, n)| vec![allocation(sub.id, payment_doc(&p), doc, n, t(DAY))])
                .unwrap_or_default(),
        )
    };
    // a: paid exactly; b: overpaid; c: paid without an invoice; d: paid and refunded;
    // e: an invoice with a negative total; f: a credit note not allocated; g: credit, but not
    // asked about; h: nothing.
    let mut changes = Vec::new();
    for (sub, (p, allocations)) in [
        (
            &a.0,
            pay(&a.0, 4_900, Some((invoice_doc(invs[0].id), 4_900))),
        ),
        (
            &b.0,
            pay(&b.0, 6_000, Some((invoice_doc(invs[1].id), 4_900))),
        ),
        (&c.0, pay(&c.0, 2_000, None)),
        (&g.0, pay(&g.0, 10_000, None)),
    ] {
        let mut ch = account_change(&account_of(store, sub.id).await, t(DAY), "payment.record");
        ch.payment = Some(p);
        ch.allocations = allocations;
        changes.push(ch);
    }
    let (p, _) = pay(&d.0, 1_000, None);
    let r = refund(d.0.id, 1_000, t(2 * DAY));
    let mut ch = account_change(&account_of(store, d.0.id).await, t(DAY), "refund.record");
    ch.allocations = vec![allocation(
        d.0.id,
        payment_doc(&p),
        refund_doc(&r),
        1_000,
        t(2 * DAY),
    )];
    ch.payment = Some(p);
    ch.refund = Some(r);
    changes.push(ch);
    let mut ch = account_change(
        &account_of(store, f.0.id).await,
        t(DAY),
        "credit_note.create",
    );
    ch.credit_note = Some(NewCreditNote {
        note: credit_note(&invs[3], 1_000, t(DAY)),
        number_prefix: format!("CN{}-", tag()),
    });
    changes.push(ch);
    for ch in &changes {
        change_account(store, ch).await;
    }

    let asked: Vec<SubscriberId> = [a, b, c, d, e, f, h].iter().map(|(s, _)| s.id).collect();
    let mut got = store.subscribers_with_credit(&asked).await.unwrap();
    got.sort();
    assert_eq!(got, sorted(&[b.0.id, c.0.id, e.0.id, f.0.id]));
    assert_eq!(
        store.subscribers_with_credit(&[g.0.id]).await.unwrap(),
        vec![g.0.id]
    );
    assert!(store
        .subscribers_with_credit(&[a.0.id, SubscriberId::generate()])
        .await
        .unwrap()
        .is_empty());
    assert!(store.subscribers_with_credit(&[]).await.unwrap().is_empty());
}

pub async fn payments_unallocated_as_their_accounts_read_them(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 2).await;
    let (a, b) = (&subs[0], &subs[1]);
    let period = unique_date();
    let invs = bill(
        store,
        &[
            new_invoice(&a.1, period, None, &[4_900, 4_900]),
            new_invoice(&b.1, period, None, &[4_900]),
        ],
        &format!("T{}-", tag()),
    )
    .await;
    let (inv_a, inv_b) = (invoice_doc(invs[0].id), invoice_doc(invs[1].id));
    // a: one payment allocated in full, one in part, one not at all; b: one allocated in
    // full, and one a refund was paid out of.
    let full_a = payment(a.0.id, 4_900, t(DAY));
    let partial = payment(a.0.id, 6_000, t(DAY + 1));
    let unallocated = payment(a.0.id, 2_500, t(DAY + 2));
    let full_b = payment(b.0.id, 2_000, t(DAY));
    let refunded = payment(b.0.id, 3_000, t(DAY + 1));
    for (p, debit) in [
        (&full_a, Some((inv_a, 4_900))),
        (&partial, Some((inv_a, 4_900))),
        (&unallocated, None),
        (&full_b, Some((inv_b, 2_000))),
        (&refunded, None),
    ] {
        let mut ch = account_change(
            &account_of(store, p.subscriber_id).await,
            p.received_at,
            "payment.record",
        );
        ch.payment = Some(p.clone());
        ch.allocations = debit
            .map(|(doc, n)| {
                vec![allocation(
                    p.subscriber_id,
                    payment_doc(p),
                    doc,
                    n,
                    p.received_at,
                )]
            })
            .unwrap_or_default();
        change_account(store, &ch).await;
    }
    let r = refund(b.0.id, 1_000, t(2 * DAY));
    let mut ch = account_change(&account_of(store, b.0.id).await, t(2 * DAY), "refund.paid");
    ch.allocations = vec![allocation(
        b.0.id,
        payment_doc(&refunded),
        refund_doc(&r),
        1_000,
        t(2 * DAY),
    )];
    ch.refund = Some(r);
    change_account(store, &ch).await;

    let expected = [
        (&full_a, 0),
        (&partial, 1_100),
        (&unallocated, 2_500),
        (&full_b, 0),
        (&refunded, 2_000),
    ];
    // Ids nobody has, past one statement's worth (500), before and among ours: the list is
    // read in chunks and the unknown ones are absent.
    let mut ids: Vec<PaymentId> = (0..600).map(|_| PaymentId::generate()).collect();
    ids.extend(expected.iter().map(|(p, _)| p.id));
    ids.insert(1, PaymentId::generate());
    let got = store.payments_unallocated(&ids).await.unwrap();
    assert_eq!(
        got,
        expected.iter().map(|(p, n)| (p.id, *n)).collect(),
        "only our payments, with what is left of each"
    );
    for (p, n) in expected {
        // The same amount the payment's credit has on its account, and asked about alone.
        let credit = account_of(store, p.subscriber_id)
            .await
            .credit(payment_doc(p))
            .map(Credit::available_minor);
        assert_eq!(credit, Some(n));
        assert_eq!(
            store.payments_unallocated(&[p.id]).await.unwrap(),
            [(p.id, n)].into_iter().collect()
        );
    }
    assert!(store.payments_unallocated(&[]).await.unwrap().is_empty());
}

pub async fn billing_runs_scoped_to_one_subscriber(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 2).await;
    let (a, b) = (&subs[0].0, &subs[1].0);
    let as_of = unique_date();

    // A run for one subscriber is not the date's run: it is not resumed as one.
    let scoped = BillingRun {
        subscriber_id: Some(a.id),
        ..billing_run(as_of)
    };
    store
        .insert_billing_run(&scoped)
        .await
        .expect("insert_billing_run");
    assert_eq!(run_of(store, scoped.id).await, scoped);
    assert_eq!(store.unfinished_billing_run(as_of).await.unwrap(), None);
    // Two scoped runs for one date may run at once.
    let scoped_b = BillingRun {
        subscriber_id: Some(b.id),
        ..billing_run(as_of)
    };
    store.insert_billing_run(&scoped_b).await.unwrap();
    assert_eq!(store.unfinished_billing_run(as_of).await.unwrap(), None);

    // The full run for the date can start while they run, and it is the one to resume.
    let full = add_run(store, as_of).await;
    assert_eq!(
        store.unfinished_billing_run(as_of).await.unwrap(),
        Some(full.clone())
    );
    // A second full run is still refused.
    let second = billing_run(as_of);
    expect_duplicate(
        store.insert_billing_run(&second).await,
        "billing run",
        "as_of",
    );
    assert_eq!(store.get_billing_run(second.id).await.unwrap(), None);

    // A scoped run records progress and completes like any other, keeping its scope.
    let svc_a = &subs[0].1;
    let inv = new_invoice(svc_a, unique_date(), Some(scoped.id), &[4_900]);
    let n = store
        .commit_billing_batch(&billing_batch(
            &scoped,
            vec![inv.clone()],
            a.id,
            1,
            vec![],
            &format!("T{}-", tag()),
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    store
        .complete_billing_run(scoped.id, t(60), None)
        .await
        .unwrap();
    assert_eq!(
        run_of(store, scoped.id).await,
        BillingRun {
            status: BillingRunStatus::Completed,
            finished_at: Some(t(60)),
            cursor: Some(a.id),
            subscribers_processed: 1,
            invoices_created: 1,
            ..scoped.clone()
        }
    );
    assert_eq!(
        store.unfinished_billing_run(as_of).await.unwrap(),
        Some(full)
    );
    let listed: Vec<BillingRun> = store
        .list_billing_runs(page(
            Some(Uuid::from_u128(scoped.id.0.as_u128() - 1)),
            1_000,
        ))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.id == scoped_b.id)
        .collect();
    assert_eq!(listed, vec![scoped_b]);
}

pub async fn account_change_concurrent_single_winner(store: Arc<dyn Store>) {
    let (_, subs) = billing_world(&*store, 1).await;
    let sub = subs[0].0.clone();
    let read = account_of(&*store, sub.id).await;
    // Eight payments recorded at once against the account as read: one wins, the others are
    // stale and leave nothing behind.
    let changes: Vec<AccountChange> = (0..8)
        .map(|i| {
            let mut c = account_change(&read, t(i), "payment.record");
            c.payment = Some(payment(sub.id, 100 + i, t(i)));
            c
        })
        .collect();
    let tasks: Vec<_> = changes
        .iter()
        .cloned()
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move { store.record_account_change(&c).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.expect("task") {
            Ok(()) => winners.push(i),
            Err(StoreError::Stale { entity: "account" }) => {}
            Err(e) => panic!("concurrent account change {i}: unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent writer wins");
    let store = &*store;
    let won = &changes[winners[0]];
    assert_eq!(
        store
            .list_payments(
                &PaymentFilter {
                    subscriber_id: Some(sub.id),
                },
                ALL,
            )
            .await
            .unwrap(),
        vec![won.payment.clone().unwrap()]
    );
    assert_eq!(account_of(store, sub.id).await.revision, read.revision + 1);
    for (i, c) in changes.iter().enumerate() {
        if i != winners[0] {
            assert_audit_absent(store, c).await;
        }
    }
}

pub async fn issue_and_bill_concurrently_gap_free(store: Arc<dyn Store>) {
    const N: usize = 4;
    let (_, subs) = billing_world(&*store, 2 * N).await;
    let prefix = format!("T{}-", tag());
    let period = unique_date();
    // Drafts for the first half, issued while batches bill the second half: every number is
    // taken once, and (with the counter to ourselves) none is skipped.
    let drafts: Vec<NewInvoice> = subs[..N]
        .iter()
        .map(|(_, svc)| NewInvoice {
            issue: None,
            ..new_invoice(svc, period, None, &[4_900])
        })
        .collect();
    bill(&*store, &drafts, &prefix).await;
    let mut runs = Vec::new();
    for _ in 0..N {
        runs.push(add_run(&*store, unique_date()).await);
    }
    let mut tasks = Vec::new();
    let mut issued = Vec::new();
    for i in 0..N {
        let account = account_of(&*store, subs[i].0.id).await;
        let mut issue = account_change(&account, t(7_200), "invoice.issue");
        issue.issue_invoice = Some(IssueInvoice {
            invoice_id: drafts[i].id,
            issued_at: t(7_200),
            due_date: days_after(period, 14),
            number_prefix: prefix.clone(),
        });
        let svc = &subs[N + i].1;
        let inv = new_invoice(svc, period, Some(runs[i].id), &[4_900]);
        issued.push(inv.clone());
        let batch = billing_batch(&runs[i], vec![inv], svc.subscriber_id, 1, vec![], &prefix);
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.record_account_change(&issue).await.map(|()| 0)
        }));
        let s = store.clone();
        tasks.push(tokio::spawn(
            async move { s.commit_billing_batch(&batch).await },
        ));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("concurrent issue or batch");
    }
    let store = &*store;
    let mut numbers = Vec::new();
    for inv in drafts.iter().chain(&issued) {
        let got = invoice_of(store, inv.id).await;
        assert_eq!(got.status, InvoiceStatus::Issued);
        numbers.push(seq_of(number_of(&got), &prefix));
    }
    numbers.sort();
    let unique: BTreeSet<i64> = numbers.iter().copied().collect();
    assert_eq!(unique.len(), 2 * N, "no number twice: {numbers:?}");
    if counter_is_ours(store, &prefix, 2 * N).await {
        assert_eq!(numbers, (1..=2 * N as i64).collect::<Vec<_>>(), "gap-free");
    }
}

/// A settings group is stored with a revision; a stale write changes nothing.
pub async fn settings_put_get_stale(store: Arc<dyn Store>) {
    let store = &*store;
    let name = format!("conformance-{}", tag());
    assert_eq!(store.get_setting(&name).await.unwrap(), None);
    let v1 = json!({"payment_terms_days": 30, "issuer": {"name": "Fibre Town"}});
    let audit = audit_of(t(0), None, "settings", &name, "settings.update", &v1);
    store
        .put_setting(&name, &v1, 0, t(0), &audit)
        .await
        .expect("first put");
    assert_eq!(
        store.get_setting(&name).await.unwrap(),
        Some((v1.clone(), 1))
    );
    // Creating it again, or writing over a revision that moved on, is stale.
    let v2 = json!({"payment_terms_days": 7});
    for expected in [0, 5] {
        let r = store.put_setting(&name, &v2, expected, t(1), &audit).await;
        assert!(
            matches!(r, Err(StoreError::Stale { .. })),
            "expected revision {expected}: {r:?}"
        );
    }
    assert_eq!(store.get_setting(&name).await.unwrap(), Some((v1, 1)));
    let audit = audit_of(t(2), None, "settings", &name, "settings.update", &v2);
    store
        .put_setting(&name, &v2, 1, t(2), &audit)
        .await
        .expect("second put");
    assert_eq!(store.get_setting(&name).await.unwrap(), Some((v2, 2)));
}

// Cases: issue 8 (account ownership, subscriber close, zero and negative invoices) ------------

/// `record_account_change` refuses, as a whole, a change whose allocations or dunning steps
/// name a document of another subscriber (or one that does not exist): the store checks it in
/// the transaction instead of trusting the use case.
pub async fn account_change_refuses_documents_of_another_subscriber(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 2).await;
    let ((a, a_svc), (b, b_svc)) = (&subs[0], &subs[1]);
    let prefix = format!("T{}-", tag());
    let period = unique_date();
    let invs = bill(
        store,
        &[
            new_invoice(a_svc, period, None, &[4_900]),
            new_invoice(b_svc, period, None, &[4_900]),
        ],
        &prefix,
    )
    .await;
    let (a_inv, b_inv) = (&invs[0], &invs[1]);
    let pb = payment(b.id, 1_000, t(DAY));
    let mut c = account_change(&account_of(store, b.id).await, t(DAY), "payment.record");
    c.payment = Some(pb.clone());
    change_account(store, &c).await;

    let before_a = account_of(store, a.id).await;
    let before_b = account_of(store, b.id).await;
    let pa = payment(a.id, 2_000, t(2 * DAY));
    let own = allocation(
        a.id,
        payment_doc(&pa),
        invoice_doc(a_inv.id),
        500,
        t(2 * DAY),
    );
    let base = || {
        let mut c = account_change(&before_a, t(2 * DAY), "payment.record");
        c.payment = Some(pa.clone());
        c.allocations = vec![own.clone()];
        c
    };
    let mut foreign_debit = base();
    foreign_debit.allocations.push(allocation(
        a.id,
        payment_doc(&pa),
        invoice_doc(b_inv.id),
        500,
        t(2 * DAY),
    ));
    let mut foreign_credit = base();
    foreign_credit.allocations.push(allocation(
        a.id,
        payment_doc(&pb),
        invoice_doc(a_inv.id),
        500,
        t(2 * DAY),
    ));
    let mut foreign_subscriber = base();
    foreign_subscriber.allocations[0].subscriber_id = b.id;
    let mut unknown = base();
    unknown.allocations.push(allocation(
        a.id,
        payment_doc(&pa),
        invoice_doc(InvoiceId::generate()),
        500,
        t(2 * DAY),
    ));
    let mut foreign_step = base();
    let mut step_of_b = dunning_action(b_inv, 3, DunningActionKind::Remind, t(2 * DAY));
    step_of_b.subscriber_id = a.id;
    foreign_step.dunning_actions = vec![step_of_b];
    let mut step_naming_b = base();
    step_naming_b.dunning_actions = vec![dunning_action(
        b_inv,
        3,
        DunningActionKind::Remind,
        t(2 * DAY),
    )];
    for (what, c) in [
        ("an invoice of another subscriber", &foreign_debit),
        ("a payment of another subscriber", &foreign_credit),
        ("another subscriber's id", &foreign_subscriber),
        ("an unknown invoice", &unknown),
        ("a dunning step on another's invoice", &foreign_step),
        ("a dunning step of another subscriber", &step_naming_b),
    ] {
        match store.record_account_change(c).await {
            Err(StoreError::NotFound { .. }) => {}
            other => panic!("{what}: expected NotFound, got {other:?}"),
        }
        assert_eq!(account_of(store, a.id).await, before_a, "{what}");
        assert_eq!(account_of(store, b.id).await, before_b, "{what}");
        assert_eq!(store.get_payment(pa.id).await.unwrap(), None, "{what}");
        assert_eq!(store.dunning_actions(b_inv.id).await.unwrap(), vec![]);
        assert_audit_absent(store, c).await;
    }
    // The same change with only its own documents is written.
    let mut ok = base();
    ok.dunning_actions = vec![dunning_action(
        a_inv,
        3,
        DunningActionKind::Remind,
        t(2 * DAY),
    )];
    change_account(store, &ok).await;
    let after = account_of(store, a.id).await;
    assert_eq!(after.revision, before_a.revision + 1);
    assert_eq!(
        after.debit(invoice_doc(a_inv.id)).unwrap().open_minor(),
        4_400
    );
    assert_eq!(
        store.dunning_actions(a_inv.id).await.unwrap(),
        vec![(3, DunningActionKind::Remind)]
    );
}

/// Closing a subscriber and adding a service to them exclude each other in the store, even
/// when the use case's check ran before the other write: a service created between the check
/// and the close refuses the close, and a service for a subscriber closed meanwhile is
/// refused.
pub async fn closing_a_subscriber_and_adding_a_service_exclude_each_other(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    // The use case checked: no service. Then a service is created, then the close is written.
    let checked = store.get_subscriber(w.sub.id).await.unwrap().unwrap();
    let svc = new_service(store, &w).await;
    let closed = revised(&checked, t(10), |s| s.status = SubscriberStatus::Closed);
    let audit = audit_of(
        t(10),
        Some(w.sub.id),
        "subscriber",
        w.sub.id,
        "subscriber.close",
        &closed,
    );
    match store
        .update_subscriber(&closed, checked.revision, &audit)
        .await
    {
        Err(StoreError::InUse { .. }) => {}
        other => panic!("expected InUse, got {other:?}"),
    }
    assert_eq!(
        store.get_subscriber(w.sub.id).await.unwrap(),
        Some(checked.clone())
    );
    assert!(!audit_ids(&audits(store, w.sub.id).await).contains(&audit.id));

    // A terminated service does not hold the close back.
    record(
        store,
        &change(&svc, 1, EventKind::Terminated, t(11), t(11), vec![]),
    )
    .await;
    store
        .update_subscriber(&closed, checked.revision, &audit)
        .await
        .expect("close without live services");

    // The use case read the subscriber open, the close committed meanwhile: the new service
    // is refused and nothing of it is written.
    let late = service(&checked, &w.plan, Some(&w.nas));
    expect_stale(
        store.insert_service(&late, &service_audit(&late)).await,
        "subscriber",
    );
    assert_eq!(store.get_service(late.id).await.unwrap(), None);
    assert!(audits(store, late.id).await.is_empty());

    // Other subscribers are unaffected.
    let other = named("Still Open");
    add_subscriber(store, &other).await;
    let ok = service(&other, &w.plan, Some(&w.nas));
    add_service(store, &ok).await;
    assert_eq!(store.get_service(ok.id).await.unwrap(), Some(ok));
}

/// A zero invoice is settled as it is issued (by a batch, or from a draft); a negative one
/// is a credit of the account like a credit note: it pays open invoices and is settled
/// (`paid`) once its credit is used up. Dunning passes over both.
pub async fn zero_and_negative_invoices_settle_like_any_document(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 1).await;
    let (sub, svc) = &subs[0];
    let prefix = format!("T{}-", tag());
    let p1 = unique_date();
    let (p2, p3, p4) = (days_after(p1, 30), days_after(p1, 61), days_after(p1, 91));
    let mut draft = new_invoice(svc, p4, None, &[1_000, -1_000]);
    draft.issue = None;
    let invs = bill(
        store,
        &[
            new_invoice(svc, p1, None, &[4_900]),
            new_invoice(svc, p2, None, &[]),
            new_invoice(svc, p3, None, &[100, -2_100]),
            draft,
        ],
        &prefix,
    )
    .await;
    let (open, zero, negative, draft) = (&invs[0], &invs[1], &invs[2], &invs[3]);
    assert_eq!(open.status, InvoiceStatus::Issued);
    assert_eq!(zero.status, InvoiceStatus::Paid);
    assert!(zero.number.is_some(), "a settled invoice is numbered too");
    assert_eq!(negative.status, InvoiceStatus::Issued);
    assert_eq!(negative.total_minor, -2_000);
    assert_eq!(draft.status, InvoiceStatus::Draft);

    let mut account = account_of(store, sub.id).await;
    assert_eq!(account.balance_minor(), Ok(2_900));
    let credit = account.credit(invoice_doc(negative.id)).expect("a credit");
    assert_eq!((credit.amount_minor, credit.allocated_minor), (2_000, 0));
    assert!(account.debit(invoice_doc(zero.id)).is_none());
    assert_eq!(
        store.subscribers_with_credit(&[sub.id]).await.unwrap(),
        vec![sub.id]
    );
    let late = days_after(p3, 60);
    assert_eq!(overdue_of(store, late, &[sub.id], 10).await, vec![sub.id]);

    // Settling pays the open invoice from the negative one, which is then used up.
    let before = account.clone();
    let mut c = account_change(&before, t(DAY), "account.settle");
    c.allocations = account.settle(t(DAY)).unwrap();
    c.paid_invoices = account.invoices_settled_by(&c.allocations);
    assert_eq!(c.paid_invoices, vec![negative.id]);
    change_account(store, &c).await;
    assert_eq!(
        invoice_of(store, negative.id).await.status,
        InvoiceStatus::Paid
    );
    assert_eq!(
        invoice_of(store, open.id).await.status,
        InvoiceStatus::Issued
    );
    let after = account_of(store, sub.id).await;
    assert_eq!(after.balance_minor(), Ok(2_900));
    assert_eq!(after.available_credit_minor(), Ok(0));
    assert_eq!(
        after.debit(invoice_doc(open.id)).unwrap().open_minor(),
        2_900
    );
    assert_eq!(
        store.subscribers_with_credit(&[sub.id]).await.unwrap(),
        vec![]
    );

    // A zero draft is paid as it is issued.
    let mut c = account_change(&after, t(2 * DAY), "invoice.issued");
    c.issue_invoice = Some(IssueInvoice {
        invoice_id: draft.id,
        issued_at: t(2 * DAY),
        due_date: days_after(p4, 14),
        number_prefix: prefix.clone(),
    });
    c.paid_invoices = vec![draft.id];
    change_account(store, &c).await;
    let issued = invoice_of(store, draft.id).await;
    assert_eq!(issued.status, InvoiceStatus::Paid);
    assert!(issued.number.is_some());
}

/// A dunning step recorded as passed (due, but superseded by a later one of the same pass)
/// counts as taken: it is never taken again.
pub async fn dunning_steps_passed_over_count_as_taken(store: Arc<dyn Store>) {
    let store = &*store;
    let (_, subs) = billing_world(store, 1).await;
    let (sub, svc) = &subs[0];
    let prefix = format!("T{}-", tag());
    let invs = bill(
        store,
        &[new_invoice(svc, unique_date(), None, &[4_900])],
        &prefix,
    )
    .await;
    let inv = &invs[0];
    let mut c = account_change(&account_of(store, sub.id).await, t(DAY), "dunning.step");
    let mut passed = dunning_action(inv, 3, DunningActionKind::Remind, t(DAY));
    passed.passed = true;
    c.dunning_actions = vec![
        passed,
        dunning_action(inv, 7, DunningActionKind::Remind, t(DAY)),
    ];
    change_account(store, &c).await;
    assert_eq!(
        sorted(&store.dunning_actions(inv.id).await.unwrap()),
        vec![
            (3, DunningActionKind::Remind),
            (7, DunningActionKind::Remind)
        ]
    );
    let mut again = account_change(&account_of(store, sub.id).await, t(2 * DAY), "dunning.step");
    again.dunning_actions = vec![dunning_action(
        inv,
        3,
        DunningActionKind::Remind,
        t(2 * DAY),
    )];
    expect_duplicate(
        store.record_account_change(&again).await,
        "dunning action",
        "step",
    );
}

/// The search also finds a subscriber by phone, and by the login, MAC or static address of
/// any of their services; case-insensitively, wildcards literal, each subscriber once.
pub async fn subscriber_search_matches_phone_and_services(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let up = tag.to_uppercase();
    let plan = plan(&code());
    add_plan(store, &plan).await;
    let mut by_phone = named("Ada Lovelace");
    by_phone.phone = Some(format!("+44 20 {tag}"));
    let by_login = named("Alan Turing");
    let by_mac = named("Barbara Liskov");
    let by_ip = named("Edsger Dijkstra");
    let twice = named("Donald Knuth");
    let nobody = named("Frances Allen");
    for s in [&by_phone, &by_login, &by_mac, &by_ip, &twice, &nobody] {
        add_subscriber(store, s).await;
    }
    let mut login = service(&by_login, &plan, None);
    login.username = Some(format!("pppoe-{tag}@isp.example"));
    let mac = unique_mac();
    let mut with_mac = service(&by_mac, &plan, None);
    with_mac.access_kind = AccessKind::Ipoe;
    with_mac.mac_address = Some(mac.clone());
    let ip = unique_ipv6();
    let mut with_ip = service(&by_ip, &plan, None);
    with_ip.static_ip = Some(ip);
    let mut first = service(&twice, &plan, None);
    first.username = Some(format!("first-{tag}"));
    let mut second = service(&twice, &plan, None);
    second.username = Some(format!("second-{tag}"));
    let unrelated = service(&nobody, &plan, None);
    for s in [&login, &with_mac, &with_ip, &first, &second, &unrelated] {
        add_service(store, s).await;
    }

    let q = |s: String| async move { sub_ids(&search(store, Some(&s), None).await) };
    assert_eq!(q(format!("20 {tag}")).await, vec![by_phone.id]);
    assert_eq!(q(format!("PPPoE-{up}@ISP")).await, vec![by_login.id]);
    assert_eq!(q(mac[3..].to_uppercase()).await, vec![by_mac.id]);
    assert_eq!(q(ip.to_string().to_uppercase()).await, vec![by_ip.id]);
    // Two matching services: the subscriber once.
    assert_eq!(q(format!("-{up}")).await, sorted(&[by_login.id, twice.id]));
    assert_eq!(
        q(tag.clone()).await,
        sorted(&[by_phone.id, by_login.id, twice.id])
    );
    // Wildcards stay literal in the service columns too.
    assert_eq!(q(format!("pppoe_{tag}")).await, vec![]);
    assert_eq!(q(format!("first%{tag}")).await, vec![]);
    // The status filter applies to matches through services.
    let active = search(store, Some(&tag), Some(SubscriberStatus::Active)).await;
    assert_eq!(
        sub_ids(&active),
        sorted(&[by_phone.id, by_login.id, twice.id])
    );
    let suspended = search(store, Some(&tag), Some(SubscriberStatus::Suspended)).await;
    assert_eq!(sub_ids(&suspended), vec![]);
    // Whole rows come back.
    assert_eq!(
        search(store, Some(&format!("first-{tag}")), None).await,
        vec![twice.clone()]
    );

    // A changed phone is found by its new value only.
    let moved = revised(&by_phone, t(10), |s| {
        s.phone = Some(format!("+1 555 {up}X"))
    });
    store
        .update_subscriber(
            &moved,
            1,
            &audit_of(
                t(10),
                Some(moved.id),
                "subscriber",
                moved.id,
                "subscriber.update",
                &moved,
            ),
        )
        .await
        .unwrap();
    assert_eq!(q(format!("20 {tag}")).await, vec![]);
    assert_eq!(q(format!("555 {tag}x")).await, vec![by_phone.id]);
    assert_eq!(
        q(tag.clone()).await,
        sorted(&[by_phone.id, by_login.id, twice.id])
    );
}

/// Search results page in id order whatever matched (own columns, one or two services, both),
/// every subscriber exactly once, for any page size.
pub async fn subscriber_search_pages_through_own_and_service_matches(store: Arc<dyn Store>) {
    let store = &*store;
    let tag = tag();
    let plan = plan(&code());
    add_plan(store, &plan).await;
    let mut expected = Vec::new();
    for i in 0..24 {
        let s = if i % 3 == 0 {
            named(&format!("Page {i} {tag}"))
        } else {
            named(&format!("Page {i}"))
        };
        add_subscriber(store, &s).await;
        if i % 3 != 0 {
            let mut v = service(&s, &plan, None);
            v.username = Some(format!("u{i}-{tag}"));
            add_service(store, &v).await;
            if i % 4 == 1 {
                let mut w = service(&s, &plan, None);
                w.username = Some(format!("w{i}-{tag}"));
                add_service(store, &w).await;
            }
        } else if i % 2 == 0 {
            let mut v = service(&s, &plan, None);
            v.username = Some(format!("both{i}-{tag}"));
            add_service(store, &v).await;
        }
        expected.push(s.id);
    }
    // Not found: a subscriber whose service has another tag.
    let other = named("Page other");
    add_subscriber(store, &other).await;
    add_service(store, &service(&other, &plan, None)).await;
    expected.sort();
    let filter = SubscriberFilter {
        q: Some(tag.clone()),
        status: None,
        number: None,
    };
    for limit in [1, 2, 5, 24, 100] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let batch = sub_ids(
                &store
                    .list_subscribers(&filter, page(after, limit))
                    .await
                    .unwrap(),
            );
            assert!(batch.len() <= limit as usize, "page size {limit}");
            let Some(last) = batch.last() else { break };
            after = Some(last.0);
            seen.extend(batch);
        }
        assert_eq!(seen, expected, "page size {limit}");
    }
    // From a cursor that is not a row of the result: everything after it.
    let mid = Uuid::from_u128(expected[9].0.as_u128() + 1);
    let rest = expected[10..].to_vec();
    assert_eq!(
        sub_ids(
            &store
                .list_subscribers(&filter, page(Some(mid), 100))
                .await
                .unwrap()
        ),
        rest
    );
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn` case (here and in the area files under `conformance/`) is listed
    /// in `conformance_suite!`, in order.
    #[test]
    fn the_macro_runs_every_case() {
        let src = include_str!("conformance.rs");
        let all = [src, include_str!("conformance/radius.rs")].concat();
        let defined: Vec<&str> = all
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .map(|l| l.split('(').next().unwrap_or_default())
            .collect();
        let listed: Vec<&str> = src
            .split("(@cases ($make)")
            .nth(1)
            .and_then(|rest| rest.split(");").next())
            .expect("the macro's case list")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(listed, defined);
    }
}
