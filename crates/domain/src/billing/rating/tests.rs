use super::*;
use crate::billing::invoice::line_from_draft;
use crate::ids::{DiscountId, InvoiceId, PlanId, ServiceEventId, SubscriberId};
use crate::plan::CapPolicy;
use jiff::civil::date;
use jiff::Timestamp;
use proptest::prelude::*;

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn terms(price: i64) -> PlanTerms {
    PlanTerms {
        download_kbps: 1000,
        upload_kbps: 1000,
        burst: None,
        price_minor: price,
        currency: eur(),
        billing_interval: BillingInterval::Monthly,
        setup_fee_minor: 0,
        data_cap_bytes: None,
        cap_policy: CapPolicy::None,
        free_window: None,
        contract_months: 0,
        early_termination_fee_minor: 0,
        tax_class: "standard".into(),
    }
}

/// Plan A 60.00 and B 90.00, as in the worked examples.
struct World {
    a: (PlanId, PlanVersionId),
    b: (PlanId, PlanVersionId),
    plans: HashMap<PlanVersionId, PlanTerms>,
    tz: TimeZone,
    svc: ServiceId,
    events: Vec<TimelineEvent>,
    invoiced: Vec<Invoiced>,
    policy: BillingPolicy,
    discounts: Vec<Discount>,
    /// Other services of the same subscriber.
    others: Vec<ServiceHistory>,
}

impl World {
    fn new() -> Self {
        let a = (PlanId::generate(), PlanVersionId::generate());
        let b = (PlanId::generate(), PlanVersionId::generate());
        let plans = HashMap::from([(a.1, terms(6000)), (b.1, terms(9000))]);
        Self {
            a,
            b,
            plans,
            tz: TimeZone::UTC,
            svc: ServiceId::generate(),
            events: vec![],
            invoiced: vec![],
            policy: BillingPolicy::default(),
            discounts: vec![],
            others: vec![],
        }
    }

    fn at(&self, d: Date) -> Timestamp {
        d.at(12, 0, 0, 0)
            .to_zoned(self.tz.clone())
            .unwrap()
            .timestamp()
    }

    fn event(
        &mut self,
        kind: EventKind,
        d: Date,
        plan: Option<(PlanId, PlanVersionId)>,
        cause: Option<SuspensionCause>,
    ) {
        let at = self.at(d);
        let seq = self.events.len() as i64 + 1;
        self.events.push(TimelineEvent {
            id: ServiceEventId::generate(),
            service_id: self.svc,
            subscriber_id: SubscriberId(uuid::Uuid::nil()),
            seq,
            kind,
            effective_at: at,
            recorded_at: at,
            plan_id: plan.map(|p| p.0),
            plan_version_id: plan.map(|p| p.1),
            suspension_cause: cause,
            reason: None,
            actor: "test".into(),
        });
    }

    fn history(&self) -> ServiceHistory {
        ServiceHistory {
            service_id: self.svc,
            initial: ServiceState::pending(self.a.0, self.a.1),
            events: self.events.clone(),
        }
    }

    /// A billing run on `as_of` over all the subscriber's services: returns the new lines and
    /// records them as invoiced.
    fn run_lines(&mut self, as_of: Date) -> Vec<DraftLine> {
        let currency = eur();
        let ctx = RatingContext {
            tz: &self.tz,
            billing_day: BillingDay::new(1).unwrap(),
            currency: &currency,
            plans: &self.plans,
            policy: self.policy,
            discounts: &self.discounts,
        };
        let period = Period::containing(as_of, ctx.billing_day);
        let mut services = vec![self.history()];
        services.extend(self.others.iter().cloned());
        let expected = expected_for_subscriber(&services, &ctx, period).unwrap();
        if self.discounts.is_empty() && self.others.is_empty() {
            // Without discounts, the subscriber's charges are the service's.
            let mut alone = expected_charges(&self.history(), &ctx, period).unwrap();
            alone.sort_by_key(|e| e.key);
            assert_eq!(expected, alone);
        }
        let lines = difference(&expected, &self.invoiced, period, &ctx).unwrap();
        for l in &lines {
            self.invoiced.push(Invoiced {
                key: l.key,
                amount_minor: l.amount_minor,
            });
        }
        lines
    }

    /// [`Self::run_lines`] as (period start, plan, kind, amount) of the main service.
    fn run(&mut self, as_of: Date) -> Vec<(Date, PlanVersionId, ChargeKind, i64)> {
        let svc = self.svc;
        self.run_lines(as_of)
            .into_iter()
            .filter(|l| l.key.service_id == svc)
            .map(|l| {
                (
                    l.key.period_start,
                    l.key.plan_version_id,
                    l.key.kind,
                    l.amount_minor,
                )
            })
            .collect()
    }
}

const JUNE: fn(i8) -> Date = |d| date(2026, 6, d);
const JULY: Date = date(2026, 7, 1);

#[test]
fn activation_on_day_11_charges_20_days() {
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(11), None, None);
    let a = w.a.1;
    assert_eq!(w.run(JUNE(11)), [(JUNE(1), a, ChargeKind::Recurring, 4000)]);
    assert_eq!(w.run(JUNE(11)), [], "a second run changes nothing");
}

#[test]
fn upgrade_on_day_21_credits_a_charges_b_and_b_in_advance() {
    let mut w = World::new();
    w.event(EventKind::Activated, date(2026, 5, 20), None, None);
    w.run(JUNE(1));
    // May: 12 of 31 days = 23.2258 → 23.23; June in advance: 60.00.
    assert_eq!(
        w.invoiced.iter().map(|i| i.amount_minor).sum::<i64>(),
        2323 + 6000
    );
    let (a, b) = (w.a.1, w.b.1);
    let bb = w.b;
    w.event(EventKind::PlanChanged, JUNE(21), Some(bb), None);
    assert_eq!(
        w.run(JULY),
        [
            (JUNE(1), a, ChargeKind::Recurring, -2000),
            (JUNE(1), b, ChargeKind::Recurring, 3000),
            (JULY, b, ChargeKind::Recurring, 9000),
        ]
    );
}

#[test]
fn downgrade_applies_at_the_next_period_unless_immediate() {
    for immediate in [false, true] {
        let mut w = World::new();
        if immediate {
            w.policy.downgrades = DowngradeBilling::Immediate;
        }
        let (a, b) = (w.a.1, w.b.1);
        let (aa, bb) = (w.a, w.b);
        w.event(EventKind::PlanChanged, date(2026, 5, 1), Some(bb), None);
        w.event(EventKind::Activated, date(2026, 5, 1), None, None);
        w.run(JUNE(1));
        w.event(EventKind::PlanChanged, JUNE(16), Some(aa), None);
        let lines = w.run(JULY);
        if immediate {
            assert_eq!(
                lines,
                [
                    (JUNE(1), a, ChargeKind::Recurring, 3000),
                    (JUNE(1), b, ChargeKind::Recurring, -4500),
                    (JULY, a, ChargeKind::Recurring, 6000),
                ]
            );
        } else {
            assert_eq!(lines, [(JULY, a, ChargeKind::Recurring, 6000)]);
        }
    }
}

#[test]
fn suspension_days_are_credited_unless_dunning_suspensions_are_billed() {
    for (cause, bill_dunning, credit) in [
        (SuspensionCause::Operator, false, -2000),
        (SuspensionCause::Dunning, false, -2000),
        (SuspensionCause::Operator, true, -2000),
        (SuspensionCause::Dunning, true, 0),
    ] {
        let mut w = World::new();
        w.policy.bill_dunning_suspensions = bill_dunning;
        w.event(EventKind::Activated, date(2026, 5, 1), None, None);
        w.run(JUNE(1));
        w.event(EventKind::Suspended, JUNE(6), None, Some(cause));
        w.event(EventKind::Resumed, JUNE(16), None, None);
        let june: i64 = w
            .run(JULY)
            .iter()
            .filter(|l| l.0 == JUNE(1))
            .map(|l| l.3)
            .sum();
        assert_eq!(june, credit, "{cause:?} billed={bill_dunning}");
    }
}

#[test]
fn back_dated_changes_correct_on_the_next_invoice() {
    let mut w = World::new();
    let (a, b) = (w.a.1, w.b.1);
    let bb = w.b;
    w.event(EventKind::Activated, date(2026, 5, 1), None, None);
    w.run(JUNE(1));
    w.run(JULY);
    // Entered in July, effective June 21.
    w.event(EventKind::PlanChanged, JUNE(21), Some(bb), None);
    assert_eq!(
        w.run(date(2026, 8, 1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, -2000),
            (JUNE(1), b, ChargeKind::Recurring, 3000),
            (JULY, a, ChargeKind::Recurring, -6000),
            (JULY, b, ChargeKind::Recurring, 9000),
            (date(2026, 8, 1), b, ChargeKind::Recurring, 9000),
        ]
    );
}

#[test]
fn several_upgrades_never_credit_more_than_was_charged() {
    let mut w = World::new();
    let c = (PlanId::generate(), PlanVersionId::generate());
    w.plans.insert(c.1, terms(12000));
    let (aa, bb) = (w.a, w.b);
    w.event(EventKind::Activated, date(2026, 5, 1), None, None);
    w.run(JUNE(1));
    w.event(EventKind::PlanChanged, JUNE(5), Some(bb), None);
    w.event(EventKind::PlanChanged, JUNE(10), Some(c), None);
    w.event(EventKind::PlanChanged, JUNE(20), Some(aa), None);
    w.policy.downgrades = DowngradeBilling::Immediate;
    let lines = w.run(JULY);
    let credit_a: i64 = lines
        .iter()
        .filter(|l| l.0 == JUNE(1) && l.1 == aa.1)
        .map(|l| l.3)
        .sum();
    assert!(credit_a >= -6000, "credited {credit_a} of 6000 charged");
    // June: A 4 + 11 days, B 5 days, C 10 days.
    let june: i64 = w
        .invoiced
        .iter()
        .filter(|i| i.key.period_start == JUNE(1))
        .map(|i| i.amount_minor)
        .sum();
    assert_eq!(june, 3000 + 1500 + 4000);
}

#[test]
fn a_long_suspension_is_never_back_billed() {
    let mut w = World::new();
    w.event(
        EventKind::Activated,
        date(2026, 1, 1),
        None,
        Some(SuspensionCause::Operator),
    );
    w.run(date(2026, 1, 1));
    w.event(
        EventKind::Suspended,
        date(2026, 1, 31),
        None,
        Some(SuspensionCause::Operator),
    );
    for m in 2..=5 {
        w.run(date(2026, m, 1));
    }
    w.event(EventKind::Resumed, JUNE(16), None, None);
    let lines = w.run(JULY);
    let a = w.a.1;
    assert_eq!(
        lines,
        [
            (JUNE(1), a, ChargeKind::Recurring, 3000),
            (JULY, a, ChargeKind::Recurring, 6000)
        ]
    );
    let total: i64 = w.invoiced.iter().map(|i| i.amount_minor).sum();
    assert_eq!(
        total,
        6000 * 30 / 31 + 3000 + 6000,
        "January 30 days, June 15, July"
    );
}

#[test]
fn setup_and_early_termination_fees() {
    let mut w = World::new();
    let mut t = terms(6000);
    t.setup_fee_minor = 4900;
    t.contract_months = 12;
    t.early_termination_fee_minor = 9900;
    w.plans.insert(w.a.1, t);
    w.event(EventKind::Activated, JUNE(1), None, None);
    let a = w.a.1;
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 6000),
            (JUNE(1), a, ChargeKind::SetupFee, 4900)
        ]
    );
    w.event(EventKind::Terminated, date(2026, 7, 16), None, None);
    let lines = w.run(JULY);
    assert_eq!(
        lines,
        [
            (JULY, a, ChargeKind::Recurring, 2903),
            (JULY, a, ChargeKind::EarlyTermination, 9900)
        ]
    );
    assert_eq!(w.run(date(2026, 8, 1)), []);
}

#[test]
fn a_day_is_billed_once_in_any_time_zone_across_dst() {
    // Activation at 00:30 local on the DST day; runs at odd hours give the same result.
    let mut w = World::new();
    w.tz = TimeZone::get("Europe/Berlin").unwrap();
    let at = date(2026, 3, 29)
        .at(0, 30, 0, 0)
        .to_zoned(w.tz.clone())
        .unwrap()
        .timestamp();
    w.event(EventKind::Activated, date(2026, 3, 29), None, None);
    w.events[0].effective_at = at;
    let lines = w.run(date(2026, 3, 29));
    // March 29, 30, 31 of 31 days.
    assert_eq!(lines[0].3, prorate(6000, 3, 31));
    assert_eq!(w.run(date(2026, 3, 31)), []);
}

/// Plans for the property test: different prices, one quarterly.
fn plan_set() -> Vec<((PlanId, PlanVersionId), PlanTerms)> {
    let mut q = terms(14_999);
    q.billing_interval = BillingInterval::Quarterly;
    vec![
        (
            (PlanId::generate(), PlanVersionId::generate()),
            terms(2_999),
        ),
        (
            (PlanId::generate(), PlanVersionId::generate()),
            terms(4_999),
        ),
        ((PlanId::generate(), PlanVersionId::generate()), q),
    ]
}

fn arb_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        2 => Just(EventKind::Activated),
        4 => Just(EventKind::PlanChanged),
        3 => Just(EventKind::Suspended),
        3 => Just(EventKind::Resumed),
        1 => Just(EventKind::Terminated),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random timelines over a year, entered in random order (back-dated edits included),
    /// billed by monthly runs: in the end, every key's invoiced total equals its expected
    /// amount, every active day was billed exactly once at the plan in force that day (checked
    /// against a day-by-day replay), and the total is within one minor unit per key of the
    /// exact price-weighted count of active days.
    #[test]
    fn monthly_runs_bill_every_active_day_exactly_once(
        offers in proptest::collection::vec((arb_kind(), 0i64..365, 0i64..60, 0usize..3), 1..30),
        billing_day in 1i64..29,
        berlin in any::<bool>(),
    ) {
        let tz = if berlin { TimeZone::get("Europe/Berlin").unwrap() } else { TimeZone::UTC };
        let plans = plan_set();
        let lookup: HashMap<PlanVersionId, PlanTerms> = plans.iter().map(|(p, t)| (p.1, t.clone())).collect();
        let svc = ServiceId::generate();
        let initial = ServiceState::pending(plans[0].0 .0, plans[0].0 .1);
        let start = date(2026, 1, 1);
        let day_of = |n: i64| start.checked_add(n.days()).unwrap();
        let at = |n: i64, hour: i8| day_of(n).at(hour, 0, 0, 0).to_zoned(tz.clone()).unwrap().timestamp();
        // Each offer happens on `day` and is entered `delay` days later (a back-dated edit).
        let mut offers: Vec<_> = offers.into_iter().enumerate().map(|(i, (k, day, delay, p))| (day + delay, i, k, day, p)).collect();
        offers.sort_by_key(|o| (o.0, o.1));
        let currency = eur();
        let bd = BillingDay::new(billing_day).unwrap();
        let ctx = RatingContext { tz: &tz, billing_day: bd, currency: &currency, plans: &lookup, policy: BillingPolicy { downgrades: DowngradeBilling::Immediate, bill_dunning_suspensions: false }, discounts: &[] };

        let mut accepted: Vec<TimelineEvent> = Vec::new();
        let mut invoiced: Vec<Invoiced> = Vec::new();
        let mut offers = offers.into_iter().peekable();
        let mut period = Period::containing(start, bd);
        let end = start.checked_add(15.months()).unwrap();
        while period.start <= end {
            // Enter every edit recorded before this run.
            while let Some((entered, i, kind, day, p)) = offers.peek().cloned() {
                if day_of(entered) > period.start { break; }
                offers.next();
                let plan = (kind == EventKind::PlanChanged).then_some(plans[p].0);
                let e = TimelineEvent {
                    id: ServiceEventId::generate(), service_id: svc, subscriber_id: SubscriberId(uuid::Uuid::nil()),
                    seq: i as i64 + 1, kind, effective_at: at(day, (i % 24) as i8), recorded_at: at(entered, 0),
                    plan_id: plan.map(|x| x.0), plan_version_id: plan.map(|x| x.1),
                    suspension_cause: (kind == EventKind::Suspended).then_some(SuspensionCause::Operator),
                    reason: None, actor: "prop".into(),
                };
                if timeline::add_event(initial, &accepted, &e).is_ok() {
                    accepted.push(e);
                }
            }
            let h = ServiceHistory { service_id: svc, initial, events: accepted.clone() };
            let expected = expected_charges(&h, &ctx, period).unwrap();
            for l in difference(&expected, &invoiced, period, &ctx).unwrap() {
                invoiced.push(Invoiced { key: l.key, amount_minor: l.amount_minor });
            }
            period = period.next(bd);
        }
        let last = Period::containing(end, bd);
        let h = ServiceHistory { service_id: svc, initial, events: accepted.clone() };
        let expected = expected_charges(&h, &ctx, last).unwrap();
        // 1. Invoiced equals expected, key by key.
        prop_assert_eq!(difference(&expected, &invoiced, last, &ctx).unwrap(), vec![]);
        // 2. Day by day, an independent replay of the timeline agrees with the billed days.
        let mut billed_days: HashMap<(Date, PlanVersionId), i64> = HashMap::new();
        for e in expected.iter().filter(|e| e.key.kind == ChargeKind::Recurring) {
            billed_days.insert((e.key.period_start, e.key.plan_version_id), e.days);
        }
        let mut oracle: HashMap<(Date, PlanVersionId), i64> = HashMap::new();
        let mut day = Period::containing(start, bd).start;
        while day < last.end {
            let eod: Vec<TimelineEvent> = accepted.iter().filter(|e| local_date(e.effective_at, &tz) <= day).cloned().collect();
            let s = timeline::replay(initial, &eod).unwrap();
            if s.status == ServiceStatus::Active {
                *oracle.entry((Period::containing(day, bd).start, s.plan_version_id)).or_default() += 1;
            }
            day = day.tomorrow().unwrap();
        }
        prop_assert_eq!(&billed_days, &oracle);
        // 3. Money: the recurring total is the sum of one exact product per key, each rounded
        // once, so within half a minor unit per key of price × days / days-in-period.
        let total: i64 = invoiced.iter().filter(|i| i.key.kind == ChargeKind::Recurring).map(|i| i.amount_minor).sum();
        let mut sum = 0i64;
        for e in expected.iter().filter(|e| e.key.kind == ChargeKind::Recurring) {
            let t = &lookup[&e.key.plan_version_id];
            let den = i128::from(e.period.days() * months(t.billing_interval));
            let err = (i128::from(e.amount_minor) * den - i128::from(t.price_minor) * i128::from(e.days)).abs();
            prop_assert!(2 * err <= den, "{:?} off by more than half a unit", e.key);
            sum += e.amount_minor;
        }
        prop_assert_eq!(total, sum);
    }
}

// Discounts.

fn percent(p: &str) -> DiscountValue {
    DiscountValue::Percent {
        percent: Rate::parse_percent(p).unwrap(),
    }
}

fn fixed(amount_minor: i64) -> DiscountValue {
    DiscountValue::Fixed { amount_minor }
}

fn discount(
    service_id: Option<ServiceId>,
    value: DiscountValue,
    starts_on: Date,
    ends_on: Option<Date>,
) -> Discount {
    Discount {
        id: DiscountId::generate(),
        subscriber_id: SubscriberId(uuid::Uuid::nil()),
        service_id,
        value,
        starts_on,
        ends_on,
        description: "test".into(),
        created_at: Timestamp::UNIX_EPOCH,
    }
}

impl World {
    /// A discount of the main service.
    fn discount(&mut self, value: DiscountValue, starts_on: Date, ends_on: Option<Date>) {
        let d = discount(Some(self.svc), value, starts_on, ends_on);
        self.discounts.push(d);
    }

    /// Another service of the subscriber, on plan A, active from `from`.
    fn other_service(&mut self, from: Date) -> ServiceId {
        let svc = ServiceId::generate();
        let at = self.at(from);
        self.others.push(ServiceHistory {
            service_id: svc,
            initial: ServiceState::pending(self.a.0, self.a.1),
            events: vec![TimelineEvent {
                id: ServiceEventId::generate(),
                service_id: svc,
                subscriber_id: SubscriberId(uuid::Uuid::nil()),
                seq: 1,
                kind: EventKind::Activated,
                effective_at: at,
                recorded_at: at,
                plan_id: None,
                plan_version_id: None,
                suspension_cause: None,
                reason: None,
                actor: "test".into(),
            }],
        });
        svc
    }

    /// What was invoiced for (period, service, kind), summed over plan versions.
    fn invoiced_for(&self, period_start: Date, svc: ServiceId, kind: ChargeKind) -> i64 {
        self.invoiced
            .iter()
            .filter(|i| {
                i.key.period_start == period_start && i.key.service_id == svc && i.key.kind == kind
            })
            .map(|i| i.amount_minor)
            .sum()
    }
}

#[test]
fn charge_kinds_round_trip_through_their_names() {
    for k in [
        ChargeKind::Recurring,
        ChargeKind::SetupFee,
        ChargeKind::EarlyTermination,
        ChargeKind::Discount,
    ] {
        assert_eq!(k.as_str().parse::<ChargeKind>(), Ok(k));
        assert_eq!(
            serde_json::to_value(k).unwrap(),
            serde_json::json!(k.as_str())
        );
    }
}

#[test]
fn ten_percent_of_a_whole_month() {
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.discount(percent("10"), JUNE(1), None);
    let a = w.a.1;
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 6000),
            (JUNE(1), a, ChargeKind::Discount, -600)
        ]
    );
    assert_eq!(w.run(JUNE(20)), [], "a second run changes nothing");
}

#[test]
fn a_discount_starting_on_day_16_discounts_15_of_30_days() {
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.discount(percent("10"), JUNE(16), None);
    let a = w.a.1;
    let lines = w.run_lines(JUNE(1));
    let d = lines
        .iter()
        .find(|l| l.key.kind == ChargeKind::Discount)
        .unwrap();
    assert_eq!((d.amount_minor, d.days, d.period_days), (-300, 15, 30));
    assert_eq!(d.key.plan_version_id, a);
    assert_eq!(
        w.run(JULY),
        [
            (JULY, a, ChargeKind::Recurring, 6000),
            (JULY, a, ChargeKind::Discount, -600)
        ]
    );
}

#[test]
fn a_fixed_discount_is_prorated_by_billed_days() {
    let mut w = World::new();
    w.event(EventKind::Activated, date(2026, 5, 1), None, None);
    w.discount(fixed(500), JUNE(1), None);
    let a = w.a.1;
    w.run(JUNE(1));
    assert_eq!(w.invoiced_for(JUNE(1), w.svc, ChargeKind::Discount), -500);
    // Suspended from June 16: 15 days billed, so 15 days of the 5.00 discount.
    w.event(
        EventKind::Suspended,
        JUNE(16),
        None,
        Some(SuspensionCause::Operator),
    );
    assert_eq!(
        w.run(JULY),
        [
            (JUNE(1), a, ChargeKind::Recurring, -3000),
            (JUNE(1), a, ChargeKind::Discount, 250)
        ]
    );
    assert_eq!(w.invoiced_for(JUNE(1), w.svc, ChargeKind::Discount), -250);
}

#[test]
fn a_discount_never_exceeds_the_recurring_charges() {
    // Fixed 100.00 on a 60.00 plan.
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.discount(fixed(10_000), JUNE(1), None);
    let a = w.a.1;
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 6000),
            (JUNE(1), a, ChargeKind::Discount, -6000)
        ]
    );

    // Stacked percentages add up, to at most the charge.
    let mut w = World::new();
    let a = w.a.1;
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.discount(percent("60"), JUNE(1), None);
    w.discount(percent("60"), JUNE(1), None);
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 6000),
            (JUNE(1), a, ChargeKind::Discount, -6000)
        ]
    );

    // Percentages first, then fixed amounts up to what is left; one line per key.
    let mut w = World::new();
    let a = w.a.1;
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.discount(percent("10"), JUNE(1), None);
    w.discount(percent("40"), JUNE(1), None);
    w.discount(fixed(4000), JUNE(1), None);
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 6000),
            (JUNE(1), a, ChargeKind::Discount, -6000)
        ]
    );
}

#[test]
fn a_subscriber_wide_fixed_discount_is_spread_over_services_in_id_order() {
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    let other = w.other_service(JUNE(1));
    let (first, second) = (w.svc.min(other), w.svc.max(other));
    w.discounts
        .push(discount(None, fixed(10_000), JUNE(1), None));
    w.run(JUNE(1));
    assert_eq!(w.invoiced_for(JUNE(1), first, ChargeKind::Discount), -6000);
    assert_eq!(w.invoiced_for(JUNE(1), second, ChargeKind::Discount), -4000);

    // Once per subscriber, not once per service.
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    let other = w.other_service(JUNE(1));
    let (first, second) = (w.svc.min(other), w.svc.max(other));
    w.discounts.push(discount(None, fixed(2000), JUNE(1), None));
    w.run(JUNE(1));
    assert_eq!(w.invoiced_for(JUNE(1), first, ChargeKind::Discount), -2000);
    assert_eq!(w.invoiced_for(JUNE(1), second, ChargeKind::Discount), 0);

    // Services with no discounted day are skipped; the amount is prorated by the days on
    // which any service is discounted (June 16..30 here).
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.event(EventKind::Terminated, JUNE(10), None, None);
    let other = w.other_service(JUNE(1));
    w.discounts
        .push(discount(None, fixed(10_000), JUNE(16), None));
    w.run(JUNE(1));
    assert_eq!(w.invoiced_for(JUNE(1), w.svc, ChargeKind::Discount), 0);
    assert_eq!(w.invoiced_for(JUNE(1), other, ChargeKind::Discount), -5000);
}

#[test]
fn a_subscriber_wide_percentage_discounts_every_service() {
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    let other = w.other_service(JUNE(16));
    w.discounts
        .push(discount(None, percent("10"), JUNE(1), None));
    w.run(JUNE(1));
    assert_eq!(w.invoiced_for(JUNE(1), w.svc, ChargeKind::Discount), -600);
    assert_eq!(w.invoiced_for(JUNE(1), other, ChargeKind::Discount), -300);
}

#[test]
fn a_discount_ending_mid_period() {
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.discount(percent("10"), date(2026, 5, 1), Some(JUNE(16)));
    let a = w.a.1;
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 6000),
            (JUNE(1), a, ChargeKind::Discount, -300)
        ]
    );
    assert_eq!(w.run(JULY), [(JULY, a, ChargeKind::Recurring, 6000)]);
}

#[test]
fn discounts_follow_plan_changes() {
    // Upgrade on June 21: A 20 days, B 10 days; a percentage discounts each plan's days.
    let mut w = World::new();
    let (a, b, bb) = (w.a.1, w.b.1, w.b);
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.event(EventKind::PlanChanged, JUNE(21), Some(bb), None);
    w.discount(percent("10"), JUNE(1), None);
    w.discount(fixed(600), JUNE(1), None);
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 4000),
            (JUNE(1), b, ChargeKind::Recurring, 3000),
            (JUNE(1), a, ChargeKind::Discount, -400 - 600),
            (JUNE(1), b, ChargeKind::Discount, -300),
        ]
    );
    // A tie in days (15/15) puts a fixed discount on the later plan.
    let mut w = World::new();
    let (a, b, bb) = (w.a.1, w.b.1, w.b);
    w.event(EventKind::Activated, JUNE(1), None, None);
    w.event(EventKind::PlanChanged, JUNE(16), Some(bb), None);
    w.discount(fixed(600), JUNE(1), None);
    assert_eq!(
        w.run(JUNE(1)),
        [
            (JUNE(1), a, ChargeKind::Recurring, 3000),
            (JUNE(1), b, ChargeKind::Recurring, 4500),
            (JUNE(1), b, ChargeKind::Discount, -600),
        ]
    );
}

#[test]
fn a_back_dated_discount_end_is_corrected_on_the_next_invoice() {
    let mut w = World::new();
    w.event(EventKind::Activated, date(2026, 5, 1), None, None);
    w.discount(percent("10"), date(2026, 5, 1), None);
    let a = w.a.1;
    w.run(JUNE(1));
    w.run(JULY);
    for p in [date(2026, 5, 1), JUNE(1), JULY] {
        assert_eq!(w.invoiced_for(p, w.svc, ChargeKind::Discount), -600);
    }
    // Entered in July: the discount ended on June 16.
    w.discounts[0].ends_on = Some(JUNE(16));
    let lines = w.run_lines(date(2026, 8, 1));
    let got: Vec<(Date, ChargeKind, i64, bool)> = lines
        .iter()
        .map(|l| (l.key.period_start, l.key.kind, l.amount_minor, l.correction))
        .collect();
    assert_eq!(
        got,
        [
            (JUNE(1), ChargeKind::Discount, 300, true),
            (JULY, ChargeKind::Discount, 600, true),
            (date(2026, 8, 1), ChargeKind::Recurring, 6000, false),
        ]
    );
    let line = line_from_draft(
        InvoiceId::generate(),
        SubscriberId(uuid::Uuid::nil()),
        1,
        &lines[0],
        "Plan A",
    );
    assert_eq!(
        line.description,
        "Correction discount, Plan A, 2026-06-01 to 2026-06-30"
    );
    assert_eq!(
        (line.charge_kind, line.plan_version_id),
        (ChargeKind::Discount, a)
    );
    assert_eq!(w.run(date(2026, 8, 1)), []);
}

/// A random timeline of `svc`, its events offered in order and kept when legal.
fn random_history(
    svc: ServiceId,
    plans: &[((PlanId, PlanVersionId), PlanTerms)],
    offers: &[(EventKind, i64, usize)],
    tz: &TimeZone,
) -> ServiceHistory {
    let initial = ServiceState::pending(plans[0].0 .0, plans[0].0 .1);
    let start = date(2026, 1, 1);
    let mut accepted: Vec<TimelineEvent> = Vec::new();
    for (i, (kind, day, p)) in offers.iter().enumerate() {
        let plan = (*kind == EventKind::PlanChanged).then_some(plans[*p].0);
        let at = start
            .checked_add(day.days())
            .unwrap()
            .at((i % 24) as i8, 0, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp();
        let e = TimelineEvent {
            id: ServiceEventId::generate(),
            service_id: svc,
            subscriber_id: SubscriberId(uuid::Uuid::nil()),
            seq: i as i64 + 1,
            kind: *kind,
            effective_at: at,
            recorded_at: at,
            plan_id: plan.map(|x| x.0),
            plan_version_id: plan.map(|x| x.1),
            suspension_cause: (*kind == EventKind::Suspended).then_some(SuspensionCause::Operator),
            reason: None,
            actor: "prop".into(),
        };
        if timeline::add_event(initial, &accepted, &e).is_ok() {
            accepted.push(e);
        }
    }
    ServiceHistory {
        service_id: svc,
        initial,
        events: accepted,
    }
}

/// An activation in the first months, then random offers (most of them legal or not).
fn arb_offers() -> impl Strategy<Value = Vec<(EventKind, i64, usize)>> {
    (
        0i64..200,
        proptest::collection::vec((arb_kind(), 0i64..365, 0usize..3), 0..25),
    )
        .prop_map(|(activated, mut rest)| {
            rest.insert(0, (EventKind::Activated, activated, 0));
            rest
        })
}

fn arb_window() -> impl Strategy<Value = (Date, Option<Date>)> {
    (0i64..300, proptest::option::of(1i64..200)).prop_map(|(s, len)| {
        let start = date(2026, 1, 1).checked_add(s.days()).unwrap();
        (start, len.map(|l| start.checked_add(l.days()).unwrap()))
    })
}

fn sums_by_period_and_service(
    expected: &[Expected],
    kind: ChargeKind,
) -> HashMap<(Date, ServiceId), i64> {
    let mut out = HashMap::new();
    for e in expected.iter().filter(|e| e.key.kind == kind) {
        *out.entry((e.key.period_start, e.key.service_id))
            .or_default() += e.amount_minor;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// A percentage discount over a random window of a random timeline: each discount line is
    /// within half a unit (so each (period, service) within one unit per line) of
    /// −rate × Σ price × billed days in the window / (period days × interval months), with the
    /// billed days taken from an independent day-by-day replay; never more than the recurring
    /// charges; and the other lines are exactly those of `expected_charges`.
    #[test]
    fn percentage_discounts_follow_billed_days_in_the_window(
        offers in arb_offers(),
        billing_day in 1i64..29,
        berlin in any::<bool>(),
        window in arb_window(),
        rate in 1i64..=1_000_000,
        subscriber_wide in any::<bool>(),
    ) {
        let tz = if berlin { TimeZone::get("Europe/Berlin").unwrap() } else { TimeZone::UTC };
        let plans = plan_set();
        let lookup: HashMap<PlanVersionId, PlanTerms> = plans.iter().map(|(p, t)| (p.1, t.clone())).collect();
        let svc = ServiceId::generate();
        let h = random_history(svc, &plans, &offers, &tz);
        let rate = Rate::from_millionths(rate).unwrap();
        let d = discount((!subscriber_wide).then_some(svc), DiscountValue::Percent { percent: rate }, window.0, window.1);
        let currency = eur();
        let bd = BillingDay::new(billing_day).unwrap();
        let discounts = [d.clone()];
        let ctx = RatingContext { tz: &tz, billing_day: bd, currency: &currency, plans: &lookup, policy: BillingPolicy { downgrades: DowngradeBilling::Immediate, bill_dunning_suspensions: false }, discounts: &discounts };
        let last = Period::containing(date(2027, 3, 1), bd);
        let expected = expected_for_subscriber(std::slice::from_ref(&h), &ctx, last).unwrap();

        // Keys are unique; without the discount lines it is expected_charges.
        let mut keys: Vec<ChargeKey> = expected.iter().map(|e| e.key).collect();
        keys.dedup();
        prop_assert_eq!(keys.len(), expected.len());
        let mut alone = expected_charges(&h, &ctx, last).unwrap();
        alone.sort_by_key(|e| e.key);
        let others: Vec<Expected> = expected.iter().filter(|e| e.key.kind != ChargeKind::Discount).cloned().collect();
        prop_assert_eq!(others, alone);

        // Oracle: discounted days per (period, plan) from a day-by-day replay.
        let mut oracle: HashMap<(Period, PlanVersionId), i64> = HashMap::new();
        let mut day = Period::containing(date(2026, 1, 1), bd).start;
        while day < last.end {
            let eod: Vec<TimelineEvent> = h.events.iter().filter(|e| local_date(e.effective_at, &tz) <= day).cloned().collect();
            let s = timeline::replay(h.initial, &eod).unwrap();
            if s.status == ServiceStatus::Active && d.covers_day(day_number(day)) {
                *oracle.entry((Period::containing(day, bd), s.plan_version_id)).or_default() += 1;
            }
            day = day.tomorrow().unwrap();
        }
        let lines: HashMap<(Date, PlanVersionId), &Expected> = expected.iter().filter(|e| e.key.kind == ChargeKind::Discount).map(|e| ((e.key.period_start, e.key.plan_version_id), e)).collect();
        for ((period, plan), days) in &oracle {
            let t = &lookup[plan];
            let den = i128::from(period.days() * months(t.billing_interval)) * 1_000_000;
            let exact = i128::from(t.price_minor) * i128::from(*days) * i128::from(rate.millionths());
            let line = lines.get(&(period.start, *plan));
            let amount = line.map_or(0, |l| l.amount_minor);
            prop_assert!(2 * (i128::from(amount) * den + exact).abs() <= den, "{:?} {:?}: {} for {} days", period, plan, amount, days);
            if let Some(l) = line {
                prop_assert_eq!(l.days, *days);
            }
        }
        for (period_start, plan) in lines.keys() {
            prop_assert!(oracle.keys().any(|(p, v)| p.start == *period_start && v == plan), "a discount line without discounted days");
        }
        let recurring = sums_by_period_and_service(&expected, ChargeKind::Recurring);
        for (k, disc) in sums_by_period_and_service(&expected, ChargeKind::Discount) {
            prop_assert!(disc < 0 && -disc <= recurring.get(&k).copied().unwrap_or(0));
        }
    }

    /// Any mix of discounts on two services: one line per key, every discount line negative,
    /// no (period, service) discounted more than its recurring charges, and the result does not
    /// depend on the order discounts are listed in.
    #[test]
    fn discounts_never_exceed_the_recurring_charges(
        offers1 in arb_offers(),
        offers2 in arb_offers(),
        discounts in proptest::collection::vec((0usize..3, any::<bool>(), 1i64..=1_000_000, 1i64..20_000, arb_window()), 1..5),
    ) {
        let tz = TimeZone::UTC;
        let plans = plan_set();
        let lookup: HashMap<PlanVersionId, PlanTerms> = plans.iter().map(|(p, t)| (p.1, t.clone())).collect();
        let (s1, s2) = (ServiceId::generate(), ServiceId::generate());
        let services = [random_history(s1, &plans, &offers1, &tz), random_history(s2, &plans, &offers2, &tz)];
        let mut list: Vec<Discount> = discounts.into_iter().map(|(target, is_percent, rate, amount, window)| {
            let value = if is_percent {
                DiscountValue::Percent { percent: Rate::from_millionths(rate).unwrap() }
            } else {
                DiscountValue::Fixed { amount_minor: amount }
            };
            discount([Some(s1), Some(s2), None][target], value, window.0, window.1)
        }).collect();
        let currency = eur();
        let bd = BillingDay::new(1).unwrap();
        let last = Period::containing(date(2027, 3, 1), bd);
        let rate_with = |list: &[Discount]| {
            let ctx = RatingContext { tz: &tz, billing_day: bd, currency: &currency, plans: &lookup, policy: BillingPolicy::default(), discounts: list };
            expected_for_subscriber(&services, &ctx, last).unwrap()
        };
        let expected = rate_with(&list);
        let mut keys: Vec<ChargeKey> = expected.iter().map(|e| e.key).collect();
        keys.dedup();
        prop_assert_eq!(keys.len(), expected.len());
        let recurring = sums_by_period_and_service(&expected, ChargeKind::Recurring);
        for e in expected.iter().filter(|e| e.key.kind == ChargeKind::Discount) {
            prop_assert!(e.amount_minor < 0 && e.days > 0, "{:?}", e);
            prop_assert!(recurring.contains_key(&(e.key.period_start, e.key.service_id)));
        }
        for (k, disc) in sums_by_period_and_service(&expected, ChargeKind::Discount) {
            prop_assert!(-disc <= recurring.get(&k).copied().unwrap_or(0), "{:?}: {}", k, disc);
        }
        list.reverse();
        prop_assert_eq!(rate_with(&list), expected);
    }
}

/// Issue 8.1: a run dated before what is invoiced never touches the later periods. Plan at
/// 30.00, activated 2026-03-10, billed as of 2026-04-01 (March 22/31 = 21.29, April 30.00); a
/// run as of 2026-03-20 used to credit April −30.00.
#[test]
fn a_run_dated_in_the_past_never_charges_or_credits_later_periods() {
    let mut w = World::new();
    w.plans.insert(w.a.1, terms(3000));
    let a = w.a.1;
    w.event(EventKind::Activated, date(2026, 3, 10), None, None);
    assert_eq!(
        w.run(date(2026, 4, 1)),
        [
            (date(2026, 3, 1), a, ChargeKind::Recurring, 2129),
            (date(2026, 4, 1), a, ChargeKind::Recurring, 3000),
        ]
    );
    assert_eq!(w.run(date(2026, 3, 20)), []);
    assert_eq!(w.run(date(2026, 1, 1)), []);
    // A later back-dated change in March is corrected by a run dated in March for March only.
    w.event(
        EventKind::Suspended,
        date(2026, 3, 20),
        None,
        Some(SuspensionCause::Operator),
    );
    w.event(EventKind::Resumed, date(2026, 3, 25), None, None);
    assert_eq!(
        w.run(date(2026, 3, 28)),
        [(date(2026, 3, 1), a, ChargeKind::Recurring, -484)]
    );
}

/// Issue 8.4: a correction that removes every day of a period says which period and how many
/// days it removes (it used to say "now 0 of 0 days").
#[test]
fn a_correction_removing_a_whole_period_names_the_period_and_the_days() {
    let mut w = World::new();
    w.plans.insert(w.a.1, terms(3000));
    w.event(EventKind::Activated, date(2026, 3, 10), None, None);
    w.run(date(2026, 4, 1));
    w.event(EventKind::Terminated, date(2026, 3, 20), None, None);
    let lines = w.run_lines(date(2026, 5, 1));
    let april = lines
        .iter()
        .find(|l| l.key.period_start == date(2026, 4, 1))
        .expect("an April correction");
    assert_eq!(april.amount_minor, -3000);
    assert_eq!((april.days, april.period_days), (0, 30));
    assert_eq!(april.previous_days, Some(30));
    assert_eq!(april.period_end, date(2026, 5, 1));
    let line = line_from_draft(
        InvoiceId::generate(),
        SubscriberId::generate(),
        1,
        april,
        "Fibre",
    );
    assert_eq!(
        line.description,
        "Correction Fibre, 2026-04-01 to 2026-04-30: 30 of 30 days no longer billed"
    );
    assert_eq!((line.days, line.period_days), (0, 30));
    // March: 22 days billed, 10 (10th to 19th) remain.
    let march = lines
        .iter()
        .find(|l| l.key.period_start == date(2026, 3, 1))
        .expect("a March correction");
    assert_eq!(march.previous_days, Some(22));
    assert_eq!(march.days, 10);
    assert_eq!(
        line_from_draft(
            InvoiceId::generate(),
            SubscriberId::generate(),
            1,
            march,
            "Fibre"
        )
        .description,
        "Correction Fibre, 2026-03-01 to 2026-03-31: 22 → 10 of 31 days"
    );
}

/// Issue 8.3: sums that would overflow are an error, never a wrap.
#[test]
fn overflowing_sums_are_an_error() {
    let mut w = World::new();
    w.event(EventKind::Activated, JUNE(1), None, None);
    let key = ChargeKey {
        period_start: JUNE(1),
        service_id: w.svc,
        kind: ChargeKind::Recurring,
        plan_version_id: w.a.1,
    };
    let currency = eur();
    let ctx = RatingContext {
        tz: &w.tz,
        billing_day: BillingDay::new(1).unwrap(),
        currency: &currency,
        plans: &w.plans,
        policy: w.policy,
        discounts: &[],
    };
    let period = Period::containing(JUNE(1), ctx.billing_day);
    let expected = expected_charges(&w.history(), &ctx, period).unwrap();
    for invoiced in [
        vec![Invoiced {
            key,
            amount_minor: i64::MIN,
        }],
        vec![
            Invoiced {
                key,
                amount_minor: i64::MAX,
            },
            Invoiced {
                key,
                amount_minor: 1,
            },
        ],
    ] {
        assert_eq!(
            difference(&expected, &invoiced, period, &ctx),
            Err(RatingError::Overflow)
        );
    }
}
