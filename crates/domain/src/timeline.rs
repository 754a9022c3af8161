//! The service timeline: dated events that are the single source of truth for a service's
//! state. The `services` row is a projection of the timeline as of now; provisioning, usage and
//! billing all read the timeline.
//!
//! Events are ordered by `(effective_at, seq)`: `seq` is the order of recording, so two events
//! with the same effective time apply in the order they were entered. A back-dated event is
//! accepted only if the whole timeline, replayed with it in place, is still a legal sequence of
//! transitions.

use crate::ids::{PlanId, PlanVersionId, ServiceEventId, ServiceId, SubscriberId};
use crate::service::{ServiceStatus, SuspensionCause};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventKind {
    Activated,
    PlanChanged,
    Suspended,
    Resumed,
    Terminated,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activated => "activated",
            Self::PlanChanged => "plan_changed",
            Self::Suspended => "suspended",
            Self::Resumed => "resumed",
            Self::Terminated => "terminated",
        }
    }

    /// The verb of the API action that records this event.
    pub fn action(self) -> &'static str {
        match self {
            Self::Activated => "activate",
            Self::PlanChanged => "change-plan",
            Self::Suspended => "suspend",
            Self::Resumed => "resume",
            Self::Terminated => "terminate",
        }
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "activated" => Ok(Self::Activated),
            "plan_changed" => Ok(Self::PlanChanged),
            "suspended" => Ok(Self::Suspended),
            "resumed" => Ok(Self::Resumed),
            "terminated" => Ok(Self::Terminated),
            o => Err(format!("unknown timeline event kind `{o}`")),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dated event of a service's life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub id: ServiceEventId,
    pub service_id: ServiceId,
    pub subscriber_id: SubscriberId,
    /// 1, 2, 3… in order of recording, per service.
    pub seq: i64,
    pub kind: EventKind,
    /// When it happened in the world (may be back-dated).
    pub effective_at: Timestamp,
    /// When it was entered.
    pub recorded_at: Timestamp,
    /// For `plan_changed`: the plan moved to. Other events leave the plan as it is, so a
    /// back-dated plan change can never be undone by a later event that merely repeats a plan.
    pub plan_id: Option<PlanId>,
    pub plan_version_id: Option<PlanVersionId>,
    /// For `suspended`: who suspended.
    pub suspension_cause: Option<SuspensionCause>,
    pub reason: Option<String>,
    /// Who recorded it (operator name, or `system:dunning` …).
    pub actor: String,
}

/// The state of a service at a point of its timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceState {
    pub status: ServiceStatus,
    pub plan_id: PlanId,
    pub plan_version_id: PlanVersionId,
    pub suspension_cause: Option<SuspensionCause>,
}

impl ServiceState {
    /// A freshly created service: pending, on the plan it was sold.
    pub fn pending(plan_id: PlanId, plan_version_id: PlanVersionId) -> Self {
        Self {
            status: ServiceStatus::Pending,
            plan_id,
            plan_version_id,
            suspension_cause: None,
        }
    }

    /// The state after `event`, or why the event cannot happen in this state.
    pub fn apply(&self, event: &TimelineEvent) -> Result<ServiceState, IllegalTransition> {
        use ServiceStatus::*;
        let illegal = || IllegalTransition {
            kind: event.kind,
            status: self.status,
        };
        let mut next = *self;
        match (event.kind, self.status) {
            (EventKind::Activated, Pending) => next.status = Active,
            (EventKind::PlanChanged, Pending | Active | Suspended) => {
                match (event.plan_id, event.plan_version_id) {
                    (Some(p), Some(v)) if v != self.plan_version_id => {
                        next.plan_id = p;
                        next.plan_version_id = v;
                    }
                    _ => return Err(illegal()),
                }
            }
            (EventKind::Suspended, Active) => {
                next.status = Suspended;
                next.suspension_cause =
                    Some(event.suspension_cause.unwrap_or(SuspensionCause::Operator));
            }
            (EventKind::Resumed, Suspended) => {
                next.status = Active;
                next.suspension_cause = None;
            }
            (EventKind::Terminated, Pending | Active | Suspended) => {
                next.status = Terminated;
                next.suspension_cause = None;
            }
            _ => return Err(illegal()),
        }
        Ok(next)
    }
}

/// An event that the state machine does not allow in the state it would apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a service that is {status}", kind.action())]
pub struct IllegalTransition {
    pub kind: EventKind,
    pub status: ServiceStatus,
}

/// Why a new event cannot be added to a timeline.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimelineError {
    /// The event itself is illegal in the state the service is in at its effective time.
    #[error("{transition} (at {at})")]
    Illegal {
        transition: IllegalTransition,
        at: Timestamp,
    },
    /// The event is legal where it lands, but makes a later, already recorded event illegal.
    #[error("a back-dated {new} at {at} conflicts with the later `{later}` event at {later_at}")]
    ConflictsWithLater {
        new: EventKind,
        at: Timestamp,
        later: EventKind,
        later_at: Timestamp,
    },
    #[error("changing to the plan version already in force at {at}")]
    SamePlan { at: Timestamp },
}

/// Orders events as they apply: by effective time, then recording order.
pub fn sort(events: &mut [TimelineEvent]) {
    events.sort_by_key(|e| (e.effective_at, e.seq));
}

/// Replays a timeline (any order) from the state of a new service and returns the final state.
pub fn replay(
    initial: ServiceState,
    events: &[TimelineEvent],
) -> Result<ServiceState, (ServiceEventId, IllegalTransition)> {
    let mut sorted = events.to_vec();
    sort(&mut sorted);
    let mut state = initial;
    for e in &sorted {
        state = state.apply(e).map_err(|t| (e.id, t))?;
    }
    Ok(state)
}

/// Checks that `new` can join `existing` (with `new.seq` greater than every existing seq) and
/// returns the service's state after the whole timeline.
pub fn add_event(
    initial: ServiceState,
    existing: &[TimelineEvent],
    new: &TimelineEvent,
) -> Result<ServiceState, TimelineError> {
    let mut all = existing.to_vec();
    all.push(new.clone());
    sort(&mut all);
    let mut state = initial;
    for e in &all {
        match state.apply(e) {
            Ok(next) => state = next,
            Err(t) if e.id == new.id => {
                if e.kind == EventKind::PlanChanged && t.status != ServiceStatus::Terminated {
                    return Err(TimelineError::SamePlan { at: e.effective_at });
                }
                return Err(TimelineError::Illegal {
                    transition: t,
                    at: e.effective_at,
                });
            }
            Err(_) => {
                return Err(TimelineError::ConflictsWithLater {
                    new: new.kind,
                    at: new.effective_at,
                    later: e.kind,
                    later_at: e.effective_at,
                })
            }
        }
    }
    Ok(state)
}

/// The state of the service at `at` (events effective at `at` included), per a stored timeline.
pub fn state_at(initial: ServiceState, existing: &[TimelineEvent], at: Timestamp) -> ServiceState {
    let mut sorted = existing.to_vec();
    sort(&mut sorted);
    let mut state = initial;
    for e in sorted.iter().filter(|e| e.effective_at <= at) {
        // The stored timeline was validated when each event was added.
        if let Ok(next) = state.apply(e) {
            state = next;
        }
    }
    state
}

/// Back-dating rule: an event may be dated at most `window` before `now`, and not in the future
/// (scheduled changes are a separate feature).
pub fn check_effective_at(
    effective_at: Timestamp,
    now: Timestamp,
    window: SignedDuration,
) -> Result<(), String> {
    if effective_at > now {
        return Err("must not be in the future".into());
    }
    if now.duration_since(effective_at) > window {
        return Err(format!(
            "must be at most {} days in the past (the back-dating window)",
            window.as_secs() / 86_400
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids() -> (PlanId, PlanVersionId, PlanId, PlanVersionId) {
        (
            PlanId::generate(),
            PlanVersionId::generate(),
            PlanId::generate(),
            PlanVersionId::generate(),
        )
    }

    fn ev(kind: EventKind, seq: i64, day: i64, plan: (PlanId, PlanVersionId)) -> TimelineEvent {
        TimelineEvent {
            id: ServiceEventId::generate(),
            service_id: ServiceId(uuid::Uuid::nil()),
            subscriber_id: SubscriberId(uuid::Uuid::nil()),
            seq,
            kind,
            effective_at: Timestamp::from_second(day * 86_400).unwrap(),
            recorded_at: Timestamp::from_second(day * 86_400).unwrap(),
            plan_id: (kind == EventKind::PlanChanged).then_some(plan.0),
            plan_version_id: (kind == EventKind::PlanChanged).then_some(plan.1),
            suspension_cause: None,
            reason: None,
            actor: "test".into(),
        }
    }

    #[test]
    fn lifecycle() {
        let (p, v, q, w) = ids();
        let init = ServiceState::pending(p, v);
        let events = vec![
            ev(EventKind::Activated, 1, 1, (p, v)),
            ev(EventKind::PlanChanged, 2, 5, (q, w)),
            ev(EventKind::Suspended, 3, 6, (q, w)),
            ev(EventKind::Resumed, 4, 9, (q, w)),
            ev(EventKind::Terminated, 5, 20, (q, w)),
        ];
        let s = replay(init, &events).unwrap();
        assert_eq!(s.status, ServiceStatus::Terminated);
        assert_eq!(s.plan_version_id, w);
    }

    #[test]
    fn illegal_transitions_name_the_state() {
        let (p, v, _, _) = ids();
        let init = ServiceState::pending(p, v);
        let e = add_event(init, &[], &ev(EventKind::Suspended, 1, 1, (p, v))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot suspend a service that is pending (at 1970-01-02T00:00:00Z)"
        );
        let term = ev(EventKind::Terminated, 1, 1, (p, v));
        let e = add_event(
            init,
            std::slice::from_ref(&term),
            &ev(EventKind::Resumed, 2, 2, (p, v)),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            TimelineError::Illegal {
                transition: IllegalTransition {
                    status: ServiceStatus::Terminated,
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn back_dated_event_must_keep_later_events_legal() {
        let (p, v, q, w) = ids();
        let init = ServiceState::pending(p, v);
        let existing = vec![
            ev(EventKind::Activated, 1, 1, (p, v)),
            ev(EventKind::Suspended, 2, 10, (p, v)),
        ];
        // Back-dated plan change on day 5: legal, later suspension still legal.
        let s = add_event(init, &existing, &ev(EventKind::PlanChanged, 3, 5, (q, w))).unwrap();
        assert_eq!((s.status, s.plan_version_id), (ServiceStatus::Suspended, w));
        // Back-dated suspension on day 5 makes the day-10 suspension illegal.
        let e = add_event(init, &existing, &ev(EventKind::Suspended, 3, 5, (p, v))).unwrap_err();
        assert!(matches!(
            e,
            TimelineError::ConflictsWithLater {
                later: EventKind::Suspended,
                ..
            }
        ));
        // Back-dated before activation: illegal where it lands.
        let e = add_event(init, &existing, &ev(EventKind::Resumed, 3, 0, (p, v))).unwrap_err();
        assert!(matches!(e, TimelineError::Illegal { .. }));
    }

    #[test]
    fn same_plan_is_refused() {
        let (p, v, _, _) = ids();
        let init = ServiceState::pending(p, v);
        let e = add_event(init, &[], &ev(EventKind::PlanChanged, 1, 1, (p, v))).unwrap_err();
        assert!(matches!(e, TimelineError::SamePlan { .. }));
    }

    #[test]
    fn effective_at_window() {
        let now = Timestamp::from_second(100 * 86_400).unwrap();
        let w = SignedDuration::from_hours(24 * 30);
        assert!(check_effective_at(now, now, w).is_ok());
        assert!(check_effective_at(now - SignedDuration::from_hours(24 * 30), now, w).is_ok());
        assert!(check_effective_at(now - SignedDuration::from_hours(24 * 31), now, w).is_err());
        assert!(check_effective_at(now + SignedDuration::from_secs(1), now, w).is_err());
    }

    fn arb_kind() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            Just(EventKind::Activated),
            Just(EventKind::PlanChanged),
            Just(EventKind::Suspended),
            Just(EventKind::Resumed),
            Just(EventKind::Terminated),
        ]
    }

    proptest! {
        /// Whatever events are offered, in whatever order and with whatever back-dating, the
        /// accepted ones always form a timeline that replays legally to the state `add_event`
        /// reported.
        #[test]
        fn accepted_timelines_always_replay(
            offers in proptest::collection::vec((arb_kind(), 0i64..60, any::<bool>()), 1..40)
        ) {
            let plans: Vec<(PlanId, PlanVersionId)> =
                (0..3).map(|_| (PlanId::generate(), PlanVersionId::generate())).collect();
            let init = ServiceState::pending(plans[0].0, plans[0].1);
            let mut accepted: Vec<TimelineEvent> = Vec::new();
            let mut last_state = init;
            for (i, (kind, day, alt)) in offers.into_iter().enumerate() {
                let before = state_at(init, &accepted, Timestamp::from_second(day * 86_400).unwrap());
                let plan = if kind == EventKind::PlanChanged {
                    let idx = plans.iter().position(|p| p.1 == before.plan_version_id).unwrap_or(0);
                    plans[(idx + if alt { 1 } else { 2 }) % 3]
                } else {
                    (before.plan_id, before.plan_version_id)
                };
                let e = ev(kind, i as i64 + 1, day, plan);
                if let Ok(s) = add_event(init, &accepted, &e) {
                    accepted.push(e);
                    last_state = s;
                }
            }
            let replayed = replay(init, &accepted).unwrap();
            prop_assert_eq!(replayed, last_state);
        }
    }
}
