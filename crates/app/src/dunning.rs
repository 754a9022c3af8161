//! The daily dunning pass: every subscriber with an overdue invoice is walked through their
//! dunning policy. Suspension and termination are the API's service actions, written with the
//! dunning step in one transaction; reminders are queued as notification jobs.

use crate::retry::{optimistic, Attempt};
use crate::services::ServiceAction;
use crate::{App, AppError, AppResult};
use jiff::civil::Date;
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::billing::account::DocumentKind;
use lastmile_domain::billing::dunning::{due_steps, DunningAction, DunningActionKind};
use lastmile_domain::billing::invoice::BillingRunError;
use lastmile_domain::ids::{DunningActionId, InvoiceId, SubscriberId};
use lastmile_domain::job::{JobKind, ProvisioningJob};
use lastmile_domain::service::{ServiceStatus, SuspensionCause};
use lastmile_store::{AccountChange, Page, ServiceFilter, StoreError};

/// The job kind of a dunning reminder (delivered by notifications; until then it stays
/// visible in the job list).
pub const REMINDER_JOB: JobKind = JobKind::DunningReminder;

#[derive(Clone, Debug, Default)]
pub struct DunningReport {
    pub subscribers_checked: u64,
    pub reminders: u64,
    pub suspensions: u64,
    pub terminations: u64,
    pub errors: Vec<BillingRunError>,
}

impl App {
    /// Runs the dunning pass for `today` (operator-local date). Idempotent: a step already
    /// taken for an invoice is never taken again.
    ///
    /// `today` is at most the operator's today: a pass dated ahead would find invoices overdue
    /// that are not, and suspend their services.
    pub async fn run_dunning(&self, today: Date) -> AppResult<DunningReport> {
        lastmile_domain::validate::date_in_range(today)
            .map_err(|m| AppError::invalid("as_of", m))?;
        if today > self.billing_today() {
            return Err(AppError::invalid(
                "as_of",
                format!("must not be after today ({})", self.billing_today()),
            ));
        }
        let catalog = self.catalog().await?;
        let mut report = DunningReport::default();
        let mut after = None;
        loop {
            let subs = self.store.overdue_subscribers(today, after, 500).await?;
            let Some(last) = subs.last().copied() else {
                break;
            };
            for sub in subs {
                report.subscribers_checked += 1;
                if let Err(e) = self.dun_subscriber(sub, today, &catalog, &mut report).await {
                    tracing::warn!(subscriber = %sub, error = %e, "dunning failed");
                    report.errors.push(BillingRunError {
                        subscriber_id: sub,
                        message: e.to_string(),
                    });
                }
            }
            after = Some(last);
        }
        Ok(report)
    }

    async fn dun_subscriber(
        &self,
        sub: SubscriberId,
        today: Date,
        catalog: &crate::billing::Catalog,
        report: &mut DunningReport,
    ) -> AppResult<()> {
        let actor = Actor::system("dunning");
        let subscriber = self.get_subscriber(sub).await?;
        // What this pass performed: (reminders, suspensions, terminations).
        let (reminders, suspensions, terminations) =
            optimistic("the subscriber's account", || async {
                let before = self.get_account(sub).await?;
                let mut account = before.clone();
                let now = self.clock.now();
                let mut change = AccountChange::new(&before);
                // Credit that was never applied (a crash after a billing batch) first.
                change.allocations = account.settle(now)?;
                change.paid_invoices = account.invoices_settled_by(&change.allocations);
                // A subscriber who owes nothing is never dunned, whatever the order payments
                // and invoices arrived in.
                let due = if account.balance_minor()? <= 0 {
                    None
                } else {
                    account.oldest_overdue(today).and_then(|(d, days)| {
                        (d.doc.kind == DocumentKind::Invoice)
                            .then(|| (InvoiceId(d.doc.id), d.label.clone(), days, d.open_minor()))
                    })
                };
                let policy = catalog.dunning_policy(subscriber.dunning_policy.as_deref());
                let (mut reminders, mut suspensions, mut terminations) = (0, 0, 0);
                let mut stale = false;
                if let (Some((invoice, number, days, open)), Some(policy)) = (due, policy) {
                    let taken = self.store.dunning_actions(invoice).await?;
                    let steps = due_steps(policy, days, &taken);
                    for (step, take) in &steps {
                        // Every due step is recorded, so no later pass takes it; only the latest
                        // is performed (see `due_steps`), the others are passed over.
                        change.dunning_actions.push(DunningAction {
                            id: DunningActionId::generate(),
                            subscriber_id: sub,
                            invoice_id: invoice,
                            days_overdue: step.days_overdue,
                            action: step.action,
                            performed_at: now,
                            passed: !take,
                        });
                        if !take {
                            continue;
                        }
                        let reason = format!(
                            "dunning policy {}: invoice {number} {days} days overdue",
                            policy.code
                        );
                        match step.action {
                            DunningActionKind::Remind => {
                                reminders += 1;
                                change.jobs.push(ProvisioningJob::new(
                                    now,
                                    REMINDER_JOB,
                                    Some(sub),
                                    None,
                                    serde_json::json!({
                                        "invoice_id": invoice.0,
                                        "invoice_number": number,
                                        "days_overdue": days,
                                        "amount_due_minor": open,
                                        "currency": account.currency.as_str(),
                                    }),
                                ));
                            }
                            DunningActionKind::Suspend | DunningActionKind::Terminate => {
                                let suspend = step.action == DunningActionKind::Suspend;
                                let (statuses, action): (&[ServiceStatus], ServiceAction) =
                                    if suspend {
                                        (
                                            &[ServiceStatus::Active],
                                            ServiceAction::Suspend {
                                                cause: SuspensionCause::Dunning,
                                            },
                                        )
                                    } else {
                                        (
                                            &[
                                                ServiceStatus::Active,
                                                ServiceStatus::Suspended,
                                                ServiceStatus::Pending,
                                            ],
                                            ServiceAction::Terminate,
                                        )
                                    };
                                for s in self.services_of(sub, statuses).await? {
                                    let sc = self
                                        .prepare_service_change(
                                            &actor,
                                            s,
                                            &action,
                                            Some(reason.clone()),
                                            None,
                                            None,
                                        )
                                        .await;
                                    let sc = match sc {
                                        Ok(sc) => sc,
                                        // Changed meanwhile (another pass, an operator): the
                                        // account change is retried on fresh state below.
                                        Err(AppError::Conflict {
                                            kind: "invalid-state",
                                            ..
                                        }) => {
                                            stale = true;
                                            break;
                                        }
                                        Err(e) => return Err(e),
                                    };
                                    change.service_changes.push(sc);
                                    if suspend {
                                        suspensions += 1;
                                    } else {
                                        terminations += 1;
                                    }
                                }
                            }
                        }
                    }
                    if !steps.is_empty() {
                        let recorded: Vec<_> = steps
                            .iter()
                            .map(|(s, take)| {
                                serde_json::json!({
                                    "days_overdue": s.days_overdue,
                                    "action": s.action,
                                    "passed": !take,
                                })
                            })
                            .collect();
                        change.audit.push(AuditEvent::new(
                            now,
                            &actor,
                            Some(sub),
                            "invoice",
                            invoice,
                            "dunning.step",
                            None::<&()>,
                            // An object, like every audit's `after`.
                            Some(&serde_json::json!({ "steps": recorded })),
                        ));
                    }
                } else if !change.allocations.is_empty() {
                    // The waiting credit cleared what was overdue: the same rule as for any
                    // other account change lifts the dunning suspensions.
                    self.resume_dunning_suspensions(&actor, &account, &mut change, today)
                        .await?;
                }
                if stale {
                    return Ok(Attempt::Retry);
                }
                if change.allocations.is_empty()
                    && change.dunning_actions.is_empty()
                    && change.service_changes.is_empty()
                {
                    return Ok(Attempt::Done((0, 0, 0)));
                }
                match self.store.record_account_change(&change).await {
                    Ok(()) => {
                        if !change.jobs.is_empty() || !change.service_changes.is_empty() {
                            (self.jobs_queued)();
                        }
                        Ok(Attempt::Done((reminders, suspensions, terminations)))
                    }
                    Err(StoreError::Stale { .. }) => Ok(Attempt::Retry),
                    // Another dunning pass took this step a moment ago.
                    Err(StoreError::Duplicate { .. }) => Ok(Attempt::Done((0, 0, 0))),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        report.reminders += reminders;
        report.suspensions += suspensions;
        report.terminations += terminations;
        Ok(())
    }

    async fn services_of(
        &self,
        sub: SubscriberId,
        statuses: &[ServiceStatus],
    ) -> AppResult<Vec<lastmile_domain::ids::ServiceId>> {
        let all = self
            .store
            .list_services(
                &ServiceFilter {
                    subscriber_id: Some(sub),
                    ..ServiceFilter::default()
                },
                Page {
                    after: None,
                    limit: 1000,
                },
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|s| statuses.contains(&s.status))
            .map(|s| s.id)
            .collect())
    }
}
