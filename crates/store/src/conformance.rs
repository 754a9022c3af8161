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
use lastmile_domain::auth::Role;
use lastmile_domain::billing::invoice::{BillingRunStatus, InvoiceLine};
use lastmile_domain::billing::rating::{ChargeKey, ChargeKind};
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::plan::{BillingInterval, Burst, CapPolicy, FreeWindow, PlanTerms};
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
            idempotency_concurrent_begin,
            next_counter_increments_per_name,
            operator_tokens,
            billing_plan_catalog,
            billing_inputs_pages_subscribers_with_history,
            billing_runs_insert_get_list,
            billing_run_unfinished_and_single_running,
            commit_billing_batch_numbers_and_progress,
            commit_billing_batch_concurrent_runs,
            commit_billing_batch_dangling_reference_writes_nothing,
            invoices_get_and_list_filters,
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
    kind: &str,
    subscriber_id: Option<SubscriberId>,
    service_id: Option<ServiceId>,
    run_after: Timestamp,
) -> ProvisioningJob {
    let mut j = ProvisioningJob::new(
        t0(),
        kind,
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

/// A job kind only this case uses.
fn kind(name: &str) -> String {
    format!("conformance.{}.{name}", tag())
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

async fn claim(
    store: &dyn Store,
    kinds: &[&String],
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Vec<ProvisioningJob> {
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    sorted_jobs(
        store
            .claim_jobs(&kinds, now, lease_until, limit)
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
    let k = kind("policy");
    let jobs = vec![
        job(&k, Some(w.sub.id), Some(s.id), t(10)),
        job(&kind("coa"), Some(w.sub.id), Some(s.id), t(70)),
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
    let k = kind("policy");
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
    let k = kind("policy");
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
    let k = kind("policy");
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
    let ka = kind("a");
    let kb = kind("b");
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
    let got = claim(store, &[&kb], t(10), t(100), 10).await;
    assert_eq!(job_ids(&got), sorted(&[j2.id, j5.id]));
    assert!(store
        .finish_job(j5.id, 1, &JobOutcome::Succeeded, t(11))
        .await
        .unwrap());

    let f = |filter| list_job_ids(store, filter);
    let by_kind = |k: &String| JobFilter {
        kind: Some(k.clone()),
        ..Default::default()
    };
    assert_eq!(f(by_kind(&ka)).await, sorted(&[j1.id, j3.id, j4.id]));
    assert_eq!(f(by_kind(&kb)).await, sorted(&[j2.id, j5.id]));
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
    assert_eq!(
        f(JobFilter {
            subscriber_id: Some(sub_b),
            ..by_kind(&kb)
        })
        .await,
        vec![j5.id]
    );
    assert_eq!(
        f(JobFilter {
            status: Some(JobStatus::Running),
            ..by_kind(&kb)
        })
        .await,
        vec![j2.id]
    );
    assert_eq!(
        f(JobFilter {
            status: Some(JobStatus::Succeeded),
            ..by_kind(&kb)
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
            ..by_kind(&ka)
        })
        .await,
        vec![]
    );

    // Whole jobs; keyset pagination.
    let ids = sorted(&[j1.id, j3.id, j4.id]);
    let pg = |after: Option<JobId>| {
        let filter = by_kind(&ka);
        async move {
            store
                .list_jobs(&filter, page(after.map(|a| a.0), 2))
                .await
                .unwrap()
        }
    };
    let p1 = pg(None).await;
    assert_eq!(job_ids(&p1), ids[0..2]);
    assert!(p1.contains(j1) && p1.contains(j3));
    assert_eq!(job_ids(&pg(Some(ids[1])).await), ids[2..3]);
    assert_eq!(job_ids(&pg(Some(ids[2])).await), vec![]);
}

pub async fn claim_jobs_selects_due_jobs_of_kinds(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let (k1, k2, k3) = (kind("one"), kind("two"), kind("three"));
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

    let got = claim(store, &[&k1], t(10), t(1_000), 10).await;
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
    assert_eq!(claim(store, &[&k1], t(20), t(1_000), 10).await, vec![]);
    // Nothing to claim for no kinds or a zero limit.
    assert_eq!(
        store.claim_jobs(&[], t(20), t(1_000), 10).await.unwrap(),
        vec![]
    );
    assert_eq!(claim(store, &[&k2], t(20), t(1_000), 0).await, vec![]);
    assert_eq!(job_of(store, c.id).await, c);
    // Several kinds at once, limited.
    let got = claim(store, &[&k1, &k2], t(20), t(1_000), 1).await;
    assert_eq!(got, vec![claimed(&c, t(20), t(1_000))]);
    // Due exactly at run_after.
    let got = claim(store, &[&k1, &k3], t(60), t(1_000), 10).await;
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
    let k = kind("busy");
    let jobs = enqueue(&*store, &w, |s| {
        (0..24)
            .map(|_| job(&k, Some(w.sub.id), Some(s.id), t(0)))
            .collect()
    })
    .await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_jobs(std::slice::from_ref(&k), t(1), t(600), 3)
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
    all.extend(claim(&*store, &[&k], t(1), t(600), 100).await);
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
    let k = kind("lease");
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    let first = claim(store, &[&k], t(0), t(30), 10).await;
    assert_eq!(first, vec![claimed(j, t(0), t(30))]);
    assert_eq!(claim(store, &[&k], t(29), t(90), 10).await, vec![]);
    // The worker died; the lease ran out.
    let second = claim(store, &[&k], t(31), t(90), 10).await;
    assert_eq!(second, vec![claimed(&first[0], t(31), t(90))]);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(job_of(store, j.id).await, second[0]);
    assert!(store
        .finish_job(j.id, 2, &JobOutcome::Succeeded, t(40))
        .await
        .unwrap());
    // Finished jobs are never reclaimed.
    assert_eq!(claim(store, &[&k], t(10_000), t(10_100), 10).await, vec![]);
}

pub async fn finish_job_success(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = kind("ok");
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    claim(store, &[&k], t(0), t(60), 10).await;
    assert!(store
        .finish_job(j.id, 1, &JobOutcome::Succeeded, t(5))
        .await
        .unwrap());
    let done = job_of(store, j.id).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.locked_until, None);
    assert_eq!(done.run_after, j.run_after);
    assert_eq!(done.updated_at, t(5));
    assert_eq!(done.last_error, None);
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
    assert_eq!(claim(store, &[&k], t(1_000), t(1_100), 10).await, vec![]);
    // Unknown jobs are ignored too.
    assert!(!store
        .finish_job(JobId::generate(), 1, &JobOutcome::Succeeded, t(7))
        .await
        .unwrap());
}

pub async fn finish_job_retry(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = kind("retry");
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    claim(store, &[&k], t(0), t(60), 10).await;
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
                kind: Some(k.clone()),
                ..Default::default()
            }
        )
        .await,
        vec![j.id]
    );
    // Not before the backoff is over.
    assert_eq!(claim(store, &[&k], t(19), t(80), 10).await, vec![]);
    let again = claim(store, &[&k], t(20), t(80), 10).await;
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
    assert_eq!(failed.locked_until, None);
}

pub async fn finish_job_final_failure_and_requeue(store: Arc<dyn Store>) {
    let store = &*store;
    let w = world(store).await;
    let k = kind("requeue");
    let jobs = enqueue(store, &w, |s| {
        vec![
            job(&k, Some(w.sub.id), Some(s.id), t(0)),
            job(&k, Some(w.sub.id), Some(s.id), t(5_000)),
        ]
    })
    .await;
    let (j, waiting) = (&jobs[0], &jobs[1]);
    claim(store, &[&k], t(0), t(60), 10).await;
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
    assert_eq!(claim(store, &[&k], t(100), t(200), 10).await, vec![]);

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

    let got = claim(store, &[&k], t(100), t(200), 10).await;
    assert_eq!(got, vec![claimed(&requeued, t(100), t(200))]);
    assert_eq!(got[0].attempts, 1);
    // A succeeded job is not failed: not requeued.
    assert!(store
        .finish_job(j.id, 1, &JobOutcome::Succeeded, t(150))
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
    let k = kind("stale");
    let jobs = enqueue(store, &w, |s| {
        vec![job(&k, Some(w.sub.id), Some(s.id), t(0))]
    })
    .await;
    let j = &jobs[0];
    claim(store, &[&k], t(0), t(10), 10).await;
    // Attempt 1 overran its lease; another worker took the job as attempt 2.
    let second = claim(store, &[&k], t(11), t(100), 10).await;
    assert_eq!(second.len(), 1);
    let running = second[0].clone();
    assert_eq!(running.attempts, 2);

    let late = JobOutcome::Failed {
        error: "late report".into(),
        retry_at: None,
    };
    assert!(!store.finish_job(j.id, 1, &late, t(12)).await.unwrap());
    assert!(!store
        .finish_job(j.id, 1, &JobOutcome::Succeeded, t(12))
        .await
        .unwrap());
    assert!(!store
        .finish_job(j.id, 3, &JobOutcome::Succeeded, t(12))
        .await
        .unwrap());
    assert_eq!(
        job_of(store, j.id).await,
        running,
        "stale reports change nothing"
    );

    assert!(store
        .finish_job(j.id, 2, &JobOutcome::Succeeded, t(13))
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

pub async fn idempotency_lifecycle(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let other_scope = format!("{scope}-other");
    let begin = |scope: &str, key: &str, hash: &str, at| {
        let (scope, key, hash) = (scope.to_string(), key.to_string(), hash.to_string());
        async move {
            store
                .begin_idempotency(&scope, &key, &hash, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        begin(&scope, "k1", "h1", t(0)).await,
        IdempotencyBegin::Reserved
    );
    assert_eq!(
        begin(&scope, "k1", "h1", t(1)).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin(&scope, "k1", "h2", t(1)).await,
        IdempotencyBegin::Mismatch
    );
    // Keys are per scope.
    assert_eq!(
        begin(&other_scope, "k1", "h1", t(1)).await,
        IdempotencyBegin::Reserved
    );
    assert_eq!(
        begin(&scope, "k2", "h1", t(1)).await,
        IdempotencyBegin::Reserved
    );

    let resp = response(201);
    store.finish_idempotency(&scope, "k1", &resp).await.unwrap();
    assert_eq!(
        begin(&scope, "k1", "h1", t(2)).await,
        IdempotencyBegin::Replay(resp.clone())
    );
    assert_eq!(
        begin(&scope, "k1", "h1", t(3)).await,
        IdempotencyBegin::Replay(resp.clone())
    );
    assert_eq!(
        begin(&scope, "k1", "h2", t(3)).await,
        IdempotencyBegin::Mismatch
    );
    // The other scope's key is still in progress.
    assert_eq!(
        begin(&other_scope, "k1", "h1", t(3)).await,
        IdempotencyBegin::InProgress
    );
    // Abandoning a finished key does not forget its response.
    store.abandon_idempotency(&scope, "k1").await.unwrap();
    assert_eq!(
        begin(&scope, "k1", "h1", t(4)).await,
        IdempotencyBegin::Replay(resp)
    );
    // An empty body is kept as such.
    let empty = StoredResponse {
        status: 204,
        body: vec![],
    };
    store
        .finish_idempotency(&scope, "k2", &empty)
        .await
        .unwrap();
    assert_eq!(
        begin(&scope, "k2", "h1", t(5)).await,
        IdempotencyBegin::Replay(empty)
    );
}

pub async fn idempotency_abandon(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let r = store
        .begin_idempotency(&scope, "k", "h1", t(0))
        .await
        .unwrap();
    assert_eq!(r, IdempotencyBegin::Reserved);
    store.abandon_idempotency(&scope, "k").await.unwrap();
    // The retry may even be a different request now.
    let r = store
        .begin_idempotency(&scope, "k", "h2", t(1))
        .await
        .unwrap();
    assert_eq!(r, IdempotencyBegin::Reserved);
    let r = store
        .begin_idempotency(&scope, "k", "h2", t(2))
        .await
        .unwrap();
    assert_eq!(r, IdempotencyBegin::InProgress);
    let r = store
        .begin_idempotency(&scope, "k", "h1", t(2))
        .await
        .unwrap();
    assert_eq!(r, IdempotencyBegin::Mismatch);
    // Abandoning an unknown key is harmless.
    store.abandon_idempotency(&scope, "nope").await.unwrap();
}

pub async fn idempotency_expiry(store: Arc<dyn Store>) {
    let store = &*store;
    let scope = format!("conformance-{}", tag());
    let day = 24 * 3600;
    let begin = |key: &'static str, hash: &'static str, at| {
        let scope = scope.clone();
        async move {
            store
                .begin_idempotency(&scope, key, hash, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(begin("done", "h1", t(0)).await, IdempotencyBegin::Reserved);
    let resp = response(200);
    store
        .finish_idempotency(&scope, "done", &resp)
        .await
        .unwrap();
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
    assert_eq!(
        begin("done", "h2", t(day + 1)).await,
        IdempotencyBegin::Reserved
    );
    assert_eq!(
        begin("done", "h2", t(day + 2)).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin("done", "h1", t(day + 2)).await,
        IdempotencyBegin::Mismatch
    );

    // A reservation whose request never finished expires too.
    assert_eq!(begin("stuck", "h1", t(0)).await, IdempotencyBegin::Reserved);
    assert_eq!(
        begin("stuck", "h1", t(day - 1)).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin("stuck", "h1", t(day + 3600)).await,
        IdempotencyBegin::Reserved
    );
}

pub async fn idempotency_concurrent_begin(store: Arc<dyn Store>) {
    let scope = format!("conformance-{}", tag());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let scope = scope.clone();
            tokio::spawn(async move {
                store
                    .begin_idempotency(&scope, "same-key", "same-hash", t(i))
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task").expect("begin_idempotency"));
    }
    let reserved = outcomes
        .iter()
        .filter(|o| **o == IdempotencyBegin::Reserved)
        .count();
    assert_eq!(reserved, 1, "exactly one request may proceed: {outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, IdempotencyBegin::Reserved | IdempotencyBegin::InProgress)));
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

/// An invoice of `svc`'s subscriber for the period starting `period`, one line per amount
/// (recurring, setup fee, early termination, then corrections). The lines are listed in
/// reverse position order: stores return them by position.
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
            charge_kind: kinds[i.min(2)],
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
        })
        .collect();
    lines.reverse();
    NewInvoice {
        id,
        subscriber_id: svc.subscriber_id,
        currency: Currency::parse("CHF").expect("currency"),
        period_start: period,
        period_end: days_after(period, 29),
        issued_at: t(3_600),
        due_date: days_after(period, 14),
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

/// `inv` as the store keeps it under `number`: issued, lines by position, total of the lines.
fn stored_invoice(inv: &NewInvoice, number: &str) -> Invoice {
    let mut lines = inv.lines.clone();
    lines.sort_by_key(|l| l.position);
    Invoice {
        id: inv.id,
        subscriber_id: inv.subscriber_id,
        number: number.into(),
        status: InvoiceStatus::Issued,
        currency: inv.currency.clone(),
        period_start: inv.period_start,
        period_end: inv.period_end,
        issued_at: inv.issued_at,
        due_date: inv.due_date,
        subtotal_minor: inv.total_minor(),
        tax_minor: 0,
        total_minor: inv.total_minor(),
        billing_run_id: inv.billing_run_id,
        lines,
    }
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
/// every batch that takes numbers inserts invoices in the same transaction, so if the
/// database holds only this case's `count` invoices, nobody else took a number. The exact
/// gap-free sequence (`000001`, `000002`, …) is asserted only then; the properties that hold
/// regardless (consecutive within a batch, increasing across batches, unique) always are.
async fn counter_is_ours(store: &dyn Store, prefix: &str, count: usize) -> bool {
    let all = store
        .list_invoices(&InvoiceFilter::default(), page(None, count as u32 + 1))
        .await
        .expect("list_invoices");
    all.len() == count && all.iter().all(|i| i.number.starts_with(prefix))
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
            .billing_inputs(Some(after), limit)
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
    let mut v: Vec<(ChargeKey, i64)> = invoices
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
    v.sort();
    v
}

fn invoiced_keys(input: &BillingInput) -> Vec<(ChargeKey, i64)> {
    let mut v: Vec<(ChargeKey, i64)> = input
        .invoiced
        .iter()
        .map(|i| (i.key, i.amount_minor))
        .collect();
    v.sort();
    v
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
        assert_eq!(ia.subscriber, a);
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
            assert_eq!(&got, events);
        }
        assert_eq!(invoiced_keys(ia), invoiced_of(&[&inv_a1]));
        assert_eq!(ia.invoiced_periods, vec![p1]);

        let ib = by_id(b.id);
        assert_eq!(ib.subscriber, b);
        assert_eq!(ib.services.len(), 1);
        assert_eq!(ib.services[0].service_id, b1.id);
        assert_eq!(
            ib.services[0].initial,
            ServiceState::pending(p.id, p.current.id)
        );
        let mut got = ib.services[0].events.clone();
        got.sort_by_key(|e| e.seq);
        assert_eq!(got, vec![f1.event.clone(), f2.event.clone()]);
        assert_eq!(invoiced_keys(ib), invoiced_of(&[&inv_b1, &inv_b2]));
        assert_eq!(sorted(&ib.invoiced_periods), vec![p1, p2]);

        let ic = by_id(c.id);
        assert_eq!(ic.services.len(), 1);
        assert_eq!(ic.services[0].service_id, c1.id);
        assert_eq!(ic.services[0].events, vec![g1.event.clone()]);
        assert!(ic.invoiced.is_empty() && ic.invoiced_periods.is_empty());

        let id_ = by_id(d.id);
        assert_eq!(id_.subscriber, d);
        assert_eq!(id_.services.len(), 1);
        assert!(id_.services[0].events.is_empty());
        assert!(id_.invoiced.is_empty() && id_.invoiced_periods.is_empty());
    }

    // Paging from the start follows subscriber id order, like the subscriber listing.
    let head = store.billing_inputs(None, 2).await.expect("billing_inputs");
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
        .billing_inputs(Some(SubscriberId(Uuid::max())), 10)
        .await
        .unwrap()
        .is_empty());
    // Voiding has no store operation yet, so that void invoices are left out of `invoiced`
    // is not covered here.
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
        .complete_billing_run(first.id, t(900))
        .await
        .expect("complete_billing_run");
    let mut completed = first.clone();
    completed.status = BillingRunStatus::Completed;
    completed.finished_at = Some(t(900));
    assert_eq!(run_of(store, first.id).await, completed);
    assert_eq!(store.unfinished_billing_run(as_of).await.unwrap(), None);
    assert_eq!(
        store.unfinished_billing_run(other_day).await.unwrap(),
        Some(elsewhere)
    );

    // Now a new run for the date may start.
    let third = add_run(store, as_of).await;
    assert_eq!(
        store.unfinished_billing_run(as_of).await.unwrap(),
        Some(third)
    );
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
    let first = seq_of(&got_b.number, &prefix);
    assert_eq!(got_b, stored_invoice(&inv_b, &got_b.number));
    assert_eq!(
        got_b.lines.iter().map(|l| l.position).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(got_b.total_minor, 14_300);
    let got_a = invoice_of(store, inv_a.id).await;
    assert_eq!(
        got_a,
        stored_invoice(&inv_a, &format!("{prefix}{:06}", first + 1))
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
    let third = seq_of(&got_c.number, &prefix);
    assert!(third > first + 1, "numbers increase from batch to batch");
    assert_eq!(got_c, stored_invoice(&inv_c, &got_c.number));
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
    let fourth = seq_of(&invoice_of(store, inv_a2.id).await.number, &prefix);
    let fifth = seq_of(&invoice_of(store, inv_d2.id).await.number, &prefix);
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
    store.complete_billing_run(run.id, t(7_200)).await.unwrap();
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
                        assert_eq!(*s, stored_invoice(inv, &s.number));
                        won.push(seq_of(&s.number, &prefix));
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
        seq_of(&invoice_of(store, first.id).await.number, &prefix),
        seq_of(&invoice_of(store, later.id).await.number, &prefix),
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
        assert_eq!(got, stored_invoice(inv, &got.number));
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
        3
    );
    for status in [
        InvoiceStatus::Draft,
        InvoiceStatus::Paid,
        InvoiceStatus::Void,
    ] {
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

#[cfg(test)]
mod tests {
    /// Every `pub async fn` case is listed in `conformance_suite!`, in order.
    #[test]
    fn the_macro_runs_every_case() {
        let src = include_str!("conformance.rs");
        let defined: Vec<&str> = src
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
