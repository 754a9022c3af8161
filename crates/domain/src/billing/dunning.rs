//! Dunning: what happens to a subscriber as their oldest unpaid invoice ages past its due date.

use crate::ids::{DunningPolicyId, InvoiceId, SubscriberId};
use crate::validate::ValidationErrors;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DunningActionKind {
    /// Queue a reminder notification.
    Remind,
    /// Suspend every active service (cause: dunning, so a payment resumes them).
    Suspend,
    /// Terminate every service that is not terminated yet.
    Terminate,
}

impl DunningActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Remind => "remind",
            Self::Suspend => "suspend",
            Self::Terminate => "terminate",
        }
    }
}

impl FromStr for DunningActionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "remind" => Ok(Self::Remind),
            "suspend" => Ok(Self::Suspend),
            "terminate" => Ok(Self::Terminate),
            o => Err(format!("unknown dunning action `{o}`")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DunningStep {
    /// Days after the due date (1 = the day after).
    pub days_overdue: i64,
    pub action: DunningActionKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningPolicy {
    pub id: DunningPolicyId,
    pub code: String,
    pub name: String,
    pub steps: Vec<DunningStep>,
    /// Bill the days services spend suspended by this policy (rating's
    /// `bill_dunning_suspensions`).
    pub bill_suspended_days: bool,
    /// The policy of subscribers that have none of their own.
    pub is_default: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

/// Steps must be in strictly increasing days (1–730), nothing may follow a termination, and
/// suspending after terminating makes no sense.
pub fn validate_steps(steps: &[DunningStep]) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut last_day = 0;
    let mut terminated = false;
    for (i, s) in steps.iter().enumerate() {
        if !(1..=730).contains(&s.days_overdue) {
            errors.add(
                format!("steps[{i}].days_overdue"),
                "must be between 1 and 730",
            );
        } else if s.days_overdue <= last_day {
            errors.add(
                format!("steps[{i}].days_overdue"),
                "steps must be in strictly increasing days",
            );
        }
        if terminated {
            errors.add(
                format!("steps[{i}].action"),
                "no step may follow a termination",
            );
        }
        terminated |= s.action == DunningActionKind::Terminate;
        last_day = last_day.max(s.days_overdue);
    }
    errors.into_result()
}

/// A step recorded for an invoice; unique per (invoice, days, action), so the daily job is
/// idempotent. `passed`: the step was due but superseded by a later one of the same pass, so
/// it was recorded (never to be taken later) without being performed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningAction {
    pub id: crate::ids::DunningActionId,
    pub subscriber_id: SubscriberId,
    pub invoice_id: InvoiceId,
    pub days_overdue: i64,
    pub action: DunningActionKind,
    pub performed_at: Timestamp,
    pub passed: bool,
}

/// The steps reached for an invoice `days_overdue` days past due and not recorded yet, as
/// `(step, take)` in policy order: `take` false means the step is passed over, recorded but
/// not performed.
///
/// When a pass finds several steps due at once (the job did not run for a while, or a policy
/// has steps on close days), only the latest due step is taken, so a subscriber never gets
/// three identical reminders at once, nor a stale reminder next to the suspension it warned
/// of. One exception: a suspension or termination is never passed over by a later reminder;
/// then the latest of them is taken too (a termination covers a suspension).
pub fn due_steps(
    policy: &DunningPolicy,
    days_overdue: i64,
    taken: &[(i64, DunningActionKind)],
) -> Vec<(DunningStep, bool)> {
    let due: Vec<DunningStep> = policy
        .steps
        .iter()
        .filter(|s| s.days_overdue <= days_overdue)
        .filter(|s| !taken.contains(&(s.days_overdue, s.action)))
        .copied()
        .collect();
    let latest = due.last().copied();
    let latest_service_action = due
        .iter()
        .rev()
        .find(|s| s.action != DunningActionKind::Remind)
        .copied();
    due.into_iter()
        .map(|s| {
            let take = Some(s) == latest || Some(s) == latest_service_action;
            (s, take)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(d: i64, a: DunningActionKind) -> DunningStep {
        DunningStep {
            days_overdue: d,
            action: a,
        }
    }

    fn policy() -> DunningPolicy {
        DunningPolicy {
            id: DunningPolicyId::generate(),
            code: "std".into(),
            name: "Standard".into(),
            steps: vec![
                step(3, DunningActionKind::Remind),
                step(10, DunningActionKind::Suspend),
                step(45, DunningActionKind::Terminate),
            ],
            bill_suspended_days: false,
            is_default: true,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            revision: 1,
        }
    }

    #[test]
    fn due_steps_are_those_reached_and_not_taken() {
        let p = policy();
        assert!(due_steps(&p, 2, &[]).is_empty());
        assert_eq!(due_steps(&p, 3, &[]), vec![(p.steps[0], true)]);
        assert_eq!(
            due_steps(&p, 12, &[(3, DunningActionKind::Remind)]),
            vec![(p.steps[1], true)]
        );
        // A job that did not run for weeks records every step but takes only the latest.
        assert_eq!(
            due_steps(&p, 50, &[]),
            vec![(p.steps[0], false), (p.steps[1], false), (p.steps[2], true)]
        );
    }

    #[test]
    fn several_reminders_due_at_once_take_only_the_latest() {
        let mut p = policy();
        p.steps = vec![
            step(3, DunningActionKind::Remind),
            step(7, DunningActionKind::Remind),
            step(14, DunningActionKind::Remind),
            step(20, DunningActionKind::Suspend),
            step(25, DunningActionKind::Remind),
        ];
        let r = DunningActionKind::Remind;
        assert_eq!(
            due_steps(&p, 15, &[]),
            vec![
                (step(3, r), false),
                (step(7, r), false),
                (step(14, r), true)
            ]
        );
        assert_eq!(
            due_steps(&p, 15, &[(3, r)]),
            vec![(step(7, r), false), (step(14, r), true)]
        );
        // A suspension is never passed over by a later reminder.
        let later = due_steps(&p, 30, &[(3, r), (7, r), (14, r)]);
        assert_eq!(
            later,
            vec![
                (step(20, DunningActionKind::Suspend), true),
                (step(25, r), true)
            ]
        );
        // Exactly one reminder per pass, whatever was missed.
        for days in 0..40 {
            let reminders = due_steps(&p, days, &[])
                .into_iter()
                .filter(|(s, take)| *take && s.action == r)
                .count();
            assert!(reminders <= 1, "{days}: {reminders}");
        }
    }

    #[test]
    fn steps_are_validated() {
        assert!(validate_steps(&policy().steps).is_ok());
        let e = validate_steps(&[
            step(10, DunningActionKind::Terminate),
            step(5, DunningActionKind::Remind),
            step(0, DunningActionKind::Remind),
        ])
        .unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert!(fields.contains(&"steps[1].days_overdue"));
        assert!(fields.contains(&"steps[1].action"));
        assert!(fields.contains(&"steps[2].days_overdue"));
    }
}
