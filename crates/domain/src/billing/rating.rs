//! Rating: what a service should have been charged, per period, from its whole timeline; and
//! the lines that bring what was invoiced in line with that.
//!
//! Day rule: a day is charged at the plan and status in force at the *end* of that day in the
//! operator's time zone. So the activation day is charged, the suspension day is not, the
//! resumption day is, an upgrade's day is charged at the new plan, the termination day is not.

use super::money::prorate;
use super::period::{days_between, local_date, Period};
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
}

impl ChargeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recurring => "recurring",
            Self::SetupFee => "setup_fee",
            Self::EarlyTermination => "early_termination",
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
    /// Charged days (recurring) or 0.
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
    /// Expected days of the key after this line (recurring), for the description.
    pub days: i64,
    pub period_days: i64,
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
/// including `up_to` (the period being invoiced in advance).
pub fn expected_charges(
    h: &ServiceHistory,
    ctx: &RatingContext<'_>,
    up_to: Period,
) -> Result<Vec<Expected>, RatingError> {
    let (changes, ms) = billable_days(h, ctx)?;
    let Some(first) = changes.first() else {
        return Ok(Vec::new());
    };
    for c in &changes {
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

/// The lines that make invoiced equal expected, key by key; nothing when nothing changed.
/// `current` is the period being invoiced now: its first charges are not corrections.
pub fn difference(expected: &[Expected], invoiced: &[Invoiced], current: Period) -> Vec<DraftLine> {
    let mut inv: BTreeMap<ChargeKey, i64> = BTreeMap::new();
    for i in invoiced {
        *inv.entry(i.key).or_default() += i.amount_minor;
    }
    let mut exp: BTreeMap<ChargeKey, (i64, i64, i64)> = BTreeMap::new();
    for e in expected {
        let x = exp.entry(e.key).or_default();
        x.0 += e.amount_minor;
        x.1 += e.days;
        x.2 = e.period.days();
    }
    let mut keys: Vec<ChargeKey> = inv.keys().chain(exp.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let charged = inv.get(&k).copied().unwrap_or(0);
            let (want, days, period_days) = exp.get(&k).copied().unwrap_or((0, 0, 0));
            let diff = want - charged;
            (diff != 0).then_some(DraftLine {
                key: k,
                days,
                period_days,
                amount_minor: diff,
                correction: charged != 0 || k.period_start < current.start,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
