//! Rating: what a service should have been charged, per period, from its whole timeline; and
//! the lines that bring what was invoiced in line with that.
//!
//! Day rule: a day is charged at the plan and status in force at the *end* of that day in the
//! operator's time zone. So the activation day is charged, the suspension day is not, the
//! resumption day is, an upgrade's day is charged at the new plan, the termination day is not.
//!
//! Discounts ([`expected_for_subscriber`]) follow the same rule: a day is discounted when it is
//! billed and inside the discount's window, and the discount of a period never exceeds the
//! recurring charges it discounts.

use super::discount::{Discount, DiscountValue};
use super::money::{div_round_half_even, prorate};
use super::period::{day_number, days_between, local_date, Period};
use super::tax::Rate;
use crate::ids::{PlanVersionId, ServiceId};
use crate::plan::{BillingInterval, PlanTerms};
use crate::service::{ServiceStatus, SuspensionCause};
use crate::subscriber::BillingDay;
use crate::timeline::{self, EventKind, ServiceState, TimelineEvent};
use crate::validate::Currency;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// When a cheaper plan starts to be billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DowngradeBilling {
    /// From the next period: the current period was paid in advance at the higher price.
    NextPeriod,
    /// From the day of the change, like an upgrade.
    Immediate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillingPolicy {
    pub downgrades: DowngradeBilling,
    /// Bill days a service spent suspended by dunning (operator suspensions never are).
    pub bill_dunning_suspensions: bool,
}

impl Default for BillingPolicy {
    fn default() -> Self {
        Self {
            downgrades: DowngradeBilling::NextPeriod,
            bill_dunning_suspensions: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    Recurring,
    SetupFee,
    EarlyTermination,
    /// A discount of recurring charges (negative).
    Discount,
}

impl ChargeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recurring => "recurring",
            Self::SetupFee => "setup_fee",
            Self::EarlyTermination => "early_termination",
            Self::Discount => "discount",
        }
    }
}

impl FromStr for ChargeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "recurring" => Ok(Self::Recurring),
            "setup_fee" => Ok(Self::SetupFee),
            "early_termination" => Ok(Self::EarlyTermination),
            "discount" => Ok(Self::Discount),
            o => Err(format!("unknown charge kind `{o}`")),
        }
    }
}

/// What a charge is for: the unit in which expected and invoiced amounts are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChargeKey {
    pub period_start: Date,
    pub service_id: ServiceId,
    pub kind: ChargeKind,
    pub plan_version_id: PlanVersionId,
}

/// An expected charge: the exact amount for a key, rounded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub key: ChargeKey,
    pub period: Period,
    /// Charged days (recurring), discounted days (discount) or 0.
    pub days: i64,
    pub amount_minor: i64,
}

/// What earlier invoices charged for a key (summed over their lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoiced {
    pub key: ChargeKey,
    pub amount_minor: i64,
}

/// A line to put on the next invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftLine {
    pub key: ChargeKey,
    /// Expected days of the key after this line (recurring, discount), for the description.
    pub days: i64,
    pub period_days: i64,
    /// The end of the period the line is for (exclusive), for the description.
    pub period_end: Date,
    /// Recurring: the days billed for the key before this line, when they can be told.
    pub previous_days: Option<i64>,
    pub amount_minor: i64,
    /// True when it corrects an earlier invoice rather than charging a period for the first time.
    pub correction: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error("plan version {0} is unknown")]
    UnknownPlanVersion(PlanVersionId),
    #[error(
        "service {service} is on a plan priced in {plan}, the subscriber is billed in {subscriber}"
    )]
    CurrencyMismatch {
        service: ServiceId,
        plan: Currency,
        subscriber: Currency,
    },
    #[error("the timeline of service {0} does not replay")]
    IllegalTimeline(ServiceId),
    #[error("tax zone `{0}` is unknown")]
    UnknownTaxZone(String),
    #[error("the amounts of this invoice overflow: an amount is beyond any real invoice")]
    Overflow,
}

/// One service's history, as the store holds it.
#[derive(Clone, Debug)]
pub struct ServiceHistory {
    pub service_id: ServiceId,
    pub initial: ServiceState,
    pub events: Vec<TimelineEvent>,
}

/// Everything rating needs to know about the subscriber and the installation.
pub struct RatingContext<'a> {
    pub tz: &'a TimeZone,
    pub billing_day: BillingDay,
    pub currency: &'a Currency,
    pub plans: &'a HashMap<PlanVersionId, PlanTerms>,
    pub policy: BillingPolicy,
    /// The subscriber's discounts (of this subscriber only); read by
    /// [`expected_for_subscriber`], ignored by [`expected_charges`].
    pub discounts: &'a [Discount],
}

impl RatingContext<'_> {
    fn terms(&self, v: PlanVersionId) -> Result<&PlanTerms, RatingError> {
        self.plans.get(&v).ok_or(RatingError::UnknownPlanVersion(v))
    }
}

fn months(i: BillingInterval) -> i64 {
    match i {
        BillingInterval::Monthly => 1,
        BillingInterval::Quarterly => 3,
        BillingInterval::Annual => 12,
    }
}

/// Yearly price, to compare plans of different intervals.
fn annual(t: &PlanTerms) -> i128 {
    i128::from(t.price_minor) * i128::from(12 / months(t.billing_interval))
}

/// From `from` on (until the next change), the service is billed at this plan (`None`: not
/// billed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillableFrom {
    pub from: Date,
    pub plan: Option<PlanVersionId>,
}

/// Dated facts rating needs beyond the day function.
#[derive(Clone, Debug, Default)]
pub struct Milestones {
    /// Local date of activation and the plan billed then.
    pub activated: Option<(Date, PlanVersionId)>,
    /// Local date of termination and the plan billed then.
    pub terminated: Option<(Date, PlanVersionId)>,
}

/// The piecewise-constant billable plan of a service over civil days.
pub fn billable_days(
    h: &ServiceHistory,
    ctx: &RatingContext<'_>,
) -> Result<(Vec<BillableFrom>, Milestones), RatingError> {
    let mut events = h.events.clone();
    timeline::sort(&mut events);
    let mut state = h.initial;
    let mut billing_plan = h.initial.plan_version_id;
    let mut pending: Option<(Date, PlanVersionId)> = None;
    let mut out: Vec<BillableFrom> = Vec::new();
    let mut ms = Milestones::default();

    let billable = |s: &ServiceState, plan: PlanVersionId, policy: BillingPolicy| match s.status {
        ServiceStatus::Active => Some(plan),
        ServiceStatus::Suspended
            if policy.bill_dunning_suspensions
                && s.suspension_cause == Some(SuspensionCause::Dunning) =>
        {
            Some(plan)
        }
        _ => None,
    };
    let push = |out: &mut Vec<BillableFrom>, from: Date, plan: Option<PlanVersionId>| {
        match out.last_mut() {
            // Several changes on one day: the end-of-day state wins.
            Some(last) if last.from == from => last.plan = plan,
            _ => out.push(BillableFrom { from, plan }),
        }
    };

    for e in &events {
        let day = local_date(e.effective_at, ctx.tz);
        if let Some((switch, plan)) = pending {
            if switch <= day {
                billing_plan = plan;
                pending = None;
                push(&mut out, switch, billable(&state, billing_plan, ctx.policy));
            }
        }
        let before = state;
        state = before
            .apply(e)
            .map_err(|_| RatingError::IllegalTimeline(h.service_id))?;
        if e.kind == EventKind::PlanChanged {
            let new = state.plan_version_id;
            let cheaper = annual(ctx.terms(new)?) < annual(ctx.terms(billing_plan)?);
            if cheaper
                && before.status != ServiceStatus::Pending
                && ctx.policy.downgrades == DowngradeBilling::NextPeriod
            {
                let next = Period::containing(day, ctx.billing_day).end;
                pending = Some((next, new));
            } else {
                billing_plan = new;
                pending = None;
            }
        }
        match e.kind {
            EventKind::Activated => ms.activated = Some((day, billing_plan)),
            EventKind::Terminated => ms.terminated = Some((day, billing_plan)),
            _ => {}
        }
        push(&mut out, day, billable(&state, billing_plan, ctx.policy));
    }
    if let Some((switch, plan)) = pending {
        billing_plan = plan;
        push(&mut out, switch, billable(&state, billing_plan, ctx.policy));
    }
    Ok((out, ms))
}

/// The expected charges of a service for every period from its first event up to and
/// including `up_to` (the period being invoiced in advance). Discounts are not included: see
/// [`expected_for_subscriber`].
pub fn expected_charges(
    h: &ServiceHistory,
    ctx: &RatingContext<'_>,
    up_to: Period,
) -> Result<Vec<Expected>, RatingError> {
    let (changes, ms) = billable_days(h, ctx)?;
    expected_from(h, ctx, up_to, &changes, &ms)
}

/// [`expected_charges`] from the service's already computed billable days.
fn expected_from(
    h: &ServiceHistory,
    ctx: &RatingContext<'_>,
    up_to: Period,
    changes: &[BillableFrom],
    ms: &Milestones,
) -> Result<Vec<Expected>, RatingError> {
    let Some(first) = changes.first() else {
        return Ok(Vec::new());
    };
    for c in changes {
        if let Some(v) = c.plan {
            let t = ctx.terms(v)?;
            if &t.currency != ctx.currency {
                return Err(RatingError::CurrencyMismatch {
                    service: h.service_id,
                    plan: t.currency.clone(),
                    subscriber: ctx.currency.clone(),
                });
            }
        }
    }
    let mut out = Vec::new();
    let mut period = Period::containing(first.from, ctx.billing_day);
    while period.start <= up_to.start {
        // Recurring: days per plan in this period.
        let mut days: BTreeMap<PlanVersionId, i64> = BTreeMap::new();
        for (i, c) in changes.iter().enumerate() {
            let Some(plan) = c.plan else { continue };
            let seg_end = changes.get(i + 1).map(|n| n.from).unwrap_or(period.end);
            let from = c.from.max(period.start);
            let to = seg_end.min(period.end);
            if from < to {
                *days.entry(plan).or_default() += days_between(from, to);
            }
        }
        for (plan, d) in days {
            let t = ctx.terms(plan)?;
            let amount = prorate(t.price_minor, d, period.days() * months(t.billing_interval));
            out.push(Expected {
                key: ChargeKey {
                    period_start: period.start,
                    service_id: h.service_id,
                    kind: ChargeKind::Recurring,
                    plan_version_id: plan,
                },
                period,
                days: d,
                amount_minor: amount,
            });
        }
        if let Some((day, plan)) = ms.activated {
            let fee = ctx.terms(plan)?.setup_fee_minor;
            if period.contains(day) && fee > 0 {
                out.push(one_time(h, period, ChargeKind::SetupFee, plan, fee));
            }
        }
        if let (Some((act, _)), Some((day, plan))) = (ms.activated, ms.terminated) {
            let t = ctx.terms(plan)?;
            let contract_end = act
                .checked_add(i64::from(t.contract_months).months())
                .unwrap_or(act);
            if period.contains(day) && day < contract_end && t.early_termination_fee_minor > 0 {
                out.push(one_time(
                    h,
                    period,
                    ChargeKind::EarlyTermination,
                    plan,
                    t.early_termination_fee_minor,
                ));
            }
        }
        period = period.next(ctx.billing_day);
    }
    Ok(out)
}

fn one_time(
    h: &ServiceHistory,
    period: Period,
    kind: ChargeKind,
    plan: PlanVersionId,
    amount: i64,
) -> Expected {
    Expected {
        key: ChargeKey {
            period_start: period.start,
            service_id: h.service_id,
            kind,
            plan_version_id: plan,
        },
        period,
        days: 0,
        amount_minor: amount,
    }
}

/// The expected charges of all of a subscriber's services (as [`expected_charges`] computes
/// them, service by service) plus their discount lines, for every period up to and including
/// `up_to`; every key at most once, in key order.
///
/// Discount lines (kind [`ChargeKind::Discount`], negative) are keyed by the plan version whose
/// recurring charge they discount. Only days that are billed and inside a discount's window are
/// discounted:
///
/// - a percentage takes `price × discounted days × rate / (period days × interval months)` off
///   each plan version's recurring charge; several percentages add up, into one line rounded
///   once;
/// - a fixed amount is per period, prorated by discounted days over period days, and goes on
///   the plan version billed most days of the period (tie: the later one);
/// - a subscriber-wide fixed amount (no service) is taken once per period from the services
///   with discounted days, in service-id order, each up to what is left of its charges.
///
/// Whatever the discounts, a service's discount in a period never exceeds its recurring
/// charges in that period: percentages first, then the service's fixed amounts, then the
/// subscriber-wide ones, each up to what is left.
pub fn expected_for_subscriber(
    services: &[ServiceHistory],
    ctx: &RatingContext<'_>,
    up_to: Period,
) -> Result<Vec<Expected>, RatingError> {
    let mut out = Vec::new();
    // Recurring charges by period, then by service id: the order a subscriber-wide fixed
    // discount is spread in.
    let mut periods: BTreeMap<Period, BTreeMap<ServiceId, Slot>> = BTreeMap::new();
    for h in services {
        let (changes, ms) = billable_days(h, ctx)?;
        let expected = expected_from(h, ctx, up_to, &changes, &ms)?;
        for e in expected
            .iter()
            .filter(|e| e.key.kind == ChargeKind::Recurring)
        {
            periods
                .entry(e.period)
                .or_default()
                .entry(h.service_id)
                .or_insert_with(|| Slot::new(e.period, &changes))
                .recurring
                .insert(e.key.plan_version_id, e.amount_minor);
        }
        out.extend(expected);
    }
    if !ctx.discounts.is_empty() {
        // Id order (creation order), so the result does not depend on how they were listed.
        let mut discounts: Vec<&Discount> = ctx.discounts.iter().collect();
        discounts.sort_by_key(|d| d.id);
        let mut lines = DiscountLines::default();
        for (period, slots) in &mut periods {
            discount_period(*period, slots, &discounts, ctx, &mut lines)?;
        }
        out.extend(lines.into_expected());
    }
    out.sort_by_key(|e| e.key);
    Ok(out)
}

/// One service's recurring charges in one period, and what discounting them needs.
struct Slot {
    period: Period,
    /// The plan billed on each day of the period (index 0 = the first day; `None`: not billed).
    day_plans: Vec<Option<PlanVersionId>>,
    /// The recurring charge of each plan version, as rated.
    recurring: BTreeMap<PlanVersionId, i64>,
    /// Discount taken so far in this period.
    discounted: i64,
}

impl Slot {
    fn new(period: Period, changes: &[BillableFrom]) -> Slot {
        let first = day_number(period.start);
        let end = day_number(period.end);
        let mut day_plans = vec![None; usize::try_from(end - first).unwrap_or(0)];
        // The same segments as `expected_from`: each change lasts until the next one.
        for (i, c) in changes.iter().enumerate() {
            let Some(plan) = c.plan else { continue };
            let from = day_number(c.from).max(first);
            let to = changes
                .get(i + 1)
                .map_or(end, |n| day_number(n.from))
                .min(end);
            for d in from..to {
                if let Some(slot) = usize::try_from(d - first)
                    .ok()
                    .and_then(|i| day_plans.get_mut(i))
                {
                    *slot = Some(plan);
                }
            }
        }
        Slot {
            period,
            day_plans,
            recurring: BTreeMap::new(),
            discounted: 0,
        }
    }

    /// What discounts can still take off: the recurring charges not yet discounted.
    fn remaining(&self) -> i64 {
        (self.recurring.values().sum::<i64>() - self.discounted).max(0)
    }

    /// The days `d` discounts: billed (at `plan`, if given) and in its window.
    fn covered(&self, d: &Discount, plan: Option<PlanVersionId>) -> Vec<bool> {
        let first = day_number(self.period.start);
        (first..)
            .zip(&self.day_plans)
            .map(|(day, p)| p.is_some() && (plan.is_none() || *p == plan) && d.covers_day(day))
            .collect()
    }

    /// The plan version billed most days of the period; on a tie, the one billed last.
    fn main_plan(&self) -> Option<PlanVersionId> {
        let mut stats: BTreeMap<PlanVersionId, (usize, usize)> = BTreeMap::new();
        for (i, p) in self.day_plans.iter().enumerate() {
            if let Some(p) = p {
                let s = stats.entry(*p).or_default();
                s.0 += 1;
                s.1 = i;
            }
        }
        stats
            .into_iter()
            .max_by_key(|(_, (days, last))| (*days, *last))
            .map(|(p, _)| p)
    }
}

fn count(days: &[bool]) -> i64 {
    days.iter().filter(|d| **d).count() as i64
}

/// Discount lines being built: amount taken off (positive) and the days discounted, per key.
#[derive(Default)]
struct DiscountLines(BTreeMap<ChargeKey, (Period, Vec<bool>, i64)>);

impl DiscountLines {
    fn add(&mut self, slot: &mut Slot, key: ChargeKey, days: &[bool], amount: i64) {
        if amount <= 0 {
            return;
        }
        slot.discounted += amount;
        let line = self
            .0
            .entry(key)
            .or_insert_with(|| (slot.period, vec![false; days.len()], 0));
        for (seen, d) in line.1.iter_mut().zip(days) {
            *seen |= *d;
        }
        line.2 += amount;
    }

    fn into_expected(self) -> impl Iterator<Item = Expected> {
        self.0
            .into_iter()
            .map(|(key, (period, days, amount))| Expected {
                key,
                period,
                days: count(&days),
                amount_minor: -amount,
            })
    }
}

fn discount_key(period: Period, service_id: ServiceId, plan: PlanVersionId) -> ChargeKey {
    ChargeKey {
        period_start: period.start,
        service_id,
        kind: ChargeKind::Discount,
        plan_version_id: plan,
    }
}

/// The discount lines of one period, for the services billed in it.
fn discount_period(
    period: Period,
    slots: &mut BTreeMap<ServiceId, Slot>,
    discounts: &[&Discount],
    ctx: &RatingContext<'_>,
    lines: &mut DiscountLines,
) -> Result<(), RatingError> {
    let one = i128::from(Rate::HUNDRED_PERCENT.millionths());
    for (&service, slot) in slots.iter_mut() {
        // Percentages: per plan version, the exact sum over discounts of price × days × rate,
        // rounded once.
        let plans: Vec<(PlanVersionId, i64)> =
            slot.recurring.iter().map(|(p, a)| (*p, *a)).collect();
        for (plan, charged) in plans {
            let t = ctx.terms(plan)?;
            let mut weighted: i128 = 0;
            let mut days = vec![false; slot.day_plans.len()];
            for d in discounts.iter().filter(|d| d.applies_to(service)) {
                let DiscountValue::Percent { percent } = d.value else {
                    continue;
                };
                let covered = slot.covered(d, Some(plan));
                weighted += i128::from(count(&covered)) * i128::from(percent.millionths());
                for (seen, c) in days.iter_mut().zip(&covered) {
                    *seen |= *c;
                }
            }
            if weighted == 0 {
                continue;
            }
            let den = i128::from(period.days() * months(t.billing_interval)) * one;
            let exact = div_round_half_even(i128::from(t.price_minor) * weighted, den);
            // Stacked percentages can pass 100 %: never more than the charge itself.
            let cap = charged.min(slot.remaining()).max(0);
            let amount = exact.clamp(0, i128::from(cap));
            let amount = i64::try_from(amount).unwrap_or(0);
            lines.add(slot, discount_key(period, service, plan), &days, amount);
        }
        // The service's own fixed amounts.
        let Some(main) = slot.main_plan() else {
            continue;
        };
        for d in discounts.iter().filter(|d| d.service_id == Some(service)) {
            let DiscountValue::Fixed { amount_minor } = d.value else {
                continue;
            };
            let covered = slot.covered(d, None);
            let amount = prorate(amount_minor, count(&covered), period.days());
            let amount = amount.min(slot.remaining());
            lines.add(slot, discount_key(period, service, main), &covered, amount);
        }
    }
    // Subscriber-wide fixed amounts: prorated by the days on which any service is discounted,
    // then taken from the services in id order.
    for d in discounts.iter().filter(|d| d.service_id.is_none()) {
        let DiscountValue::Fixed { amount_minor } = d.value else {
            continue;
        };
        let covered: Vec<(ServiceId, Vec<bool>)> = slots
            .iter()
            .map(|(s, slot)| (*s, slot.covered(d, None)))
            .collect();
        let any_day = (0..usize::try_from(period.days()).unwrap_or(0))
            .filter(|i| {
                covered
                    .iter()
                    .any(|(_, c)| c.get(*i).copied().unwrap_or(false))
            })
            .count() as i64;
        let mut left = prorate(amount_minor, any_day, period.days());
        for (service, days) in covered {
            if left <= 0 {
                break;
            }
            let Some(slot) = slots.get_mut(&service) else {
                continue;
            };
            let Some(main) = slot.main_plan() else {
                continue;
            };
            if count(&days) == 0 {
                continue;
            }
            let take = left.min(slot.remaining());
            lines.add(slot, discount_key(period, service, main), &days, take);
            left -= take;
        }
    }
    Ok(())
}

/// The lines that make invoiced equal expected, key by key; nothing when nothing changed.
/// `current` is the period being invoiced now: its first charges are not corrections.
///
/// Only periods up to `current` are compared: a run as of a date never charges or credits a
/// period after it, whatever was invoiced for later periods (a run dated in the past must not
/// reverse what a later run billed in advance).
pub fn difference(
    expected: &[Expected],
    invoiced: &[Invoiced],
    current: Period,
    ctx: &RatingContext<'_>,
) -> Result<Vec<DraftLine>, RatingError> {
    let in_scope = |k: &ChargeKey| k.period_start <= current.start;
    let mut inv: BTreeMap<ChargeKey, i64> = BTreeMap::new();
    for i in invoiced.iter().filter(|i| in_scope(&i.key)) {
        let x = inv.entry(i.key).or_default();
        *x = x.checked_add(i.amount_minor).ok_or(RatingError::Overflow)?;
    }
    let mut exp: BTreeMap<ChargeKey, (i64, i64, Period)> = BTreeMap::new();
    for e in expected.iter().filter(|e| in_scope(&e.key)) {
        let x = exp.entry(e.key).or_insert((0, 0, e.period));
        x.0 =
            x.0.checked_add(e.amount_minor)
                .ok_or(RatingError::Overflow)?;
        x.1 += e.days;
    }
    let mut keys: Vec<ChargeKey> = inv.keys().chain(exp.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let charged = inv.get(&k).copied().unwrap_or(0);
        let (want, days, period) = exp
            .get(&k)
            .copied()
            .unwrap_or_else(|| (0, 0, Period::containing(k.period_start, ctx.billing_day)));
        let diff = want.checked_sub(charged).ok_or(RatingError::Overflow)?;
        if diff == 0 {
            continue;
        }
        let previous_days = match k.kind {
            ChargeKind::Recurring if charged != 0 => ctx
                .plans
                .get(&k.plan_version_id)
                .and_then(|t| charged_days(t, period, charged)),
            ChargeKind::Recurring => Some(0),
            _ => None,
        };
        out.push(DraftLine {
            key: k,
            days,
            period_days: period.days(),
            period_end: period.end,
            previous_days,
            amount_minor: diff,
            correction: charged != 0 || k.period_start < current.start,
        });
    }
    Ok(out)
}

/// The days a recurring key was billed for, from what was invoiced for it. Every line of a key
/// brings its sum to the rounded price of the days expected at the time, so the sum is
/// `prorate(price, days, period days × months)` for exactly one `days` when the price has at
/// least one minor unit per day; otherwise (or if nothing matches) `None`.
fn charged_days(t: &PlanTerms, period: Period, charged: i64) -> Option<i64> {
    let den = period.days() * months(t.billing_interval);
    let mut found = (0..=period.days()).filter(|d| prorate(t.price_minor, *d, den) == charged);
    match (found.next(), found.next()) {
        (Some(d), None) => Some(d),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
