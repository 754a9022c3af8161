use crate::retry::{optimistic, Attempt};
use crate::{App, AppError, AppResult};
use lastmile_api_types::{CreateService, ServiceActionBody, UpdateService};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::ids::{NasId, PlanId, ServiceEventId, ServiceId, SubscriberId};
use lastmile_domain::job::{JobKind, JobPayload, JobReason, ProvisioningJob};
use lastmile_domain::plan::PlanStatus;
use lastmile_domain::service::{self, AccessKind, Service, ServiceStatus, SuspensionCause};
use lastmile_domain::subscriber::SubscriberStatus;
use lastmile_domain::timeline::{self, EventKind, ServiceState, TimelineError, TimelineEvent};
use lastmile_domain::validate::{self, ValidationErrors};
use lastmile_domain::Timestamp;
use lastmile_store::{Page, ServiceChange, ServiceFilter};
use std::net::IpAddr;

/// What a service action asks for.
#[derive(Clone, Debug)]
pub enum ServiceAction {
    Activate,
    ChangePlan { plan_id: PlanId },
    Suspend { cause: SuspensionCause },
    Resume,
    Terminate,
}

impl ServiceAction {
    fn kind(&self) -> EventKind {
        match self {
            Self::Activate => EventKind::Activated,
            Self::ChangePlan { .. } => EventKind::PlanChanged,
            Self::Suspend { .. } => EventKind::Suspended,
            Self::Resume => EventKind::Resumed,
            Self::Terminate => EventKind::Terminated,
        }
    }
}

/// Everything one service action wrote.
#[derive(Clone, Debug)]
pub struct ServiceChangeOutcome {
    pub service: Service,
    pub event: TimelineEvent,
    pub jobs: Vec<ProvisioningJob>,
}

/// The provisioning jobs that bring the network in line with a service's new state.
fn jobs_for(
    now: Timestamp,
    before: &Service,
    after: &Service,
    event: &TimelineEvent,
) -> Vec<ProvisioningJob> {
    // A back-dated event that does not change the service as of now needs no network change.
    let unchanged =
        before.status == after.status && before.plan_version_id == after.plan_version_id;
    if unchanged {
        return Vec::new();
    }
    use ServiceStatus::{Active, Suspended, Terminated};
    let (kind, reason) = match (before.status, after.status) {
        // A live session must drop at once: otherwise a suspended subscriber stays online.
        (Active, Suspended) => (JobKind::NasDisconnect, JobReason::Suspended),
        (Active, Terminated) => (JobKind::NasDisconnect, JobReason::Terminated),
        // The walled-garden session re-authenticates into its real tier.
        (Suspended, Active) => (JobKind::NasDisconnect, JobReason::Resumed),
        // A live session picks up the new tier without reconnecting.
        (Active, Active) if before.plan_version_id != after.plan_version_id => {
            (JobKind::NasCoa, JobReason::PlanChanged)
        }
        // No session can be live (pending, or suspended → terminated), or nothing a NAS
        // enforces changed. The RADIUS directory follows the change feed by itself.
        _ => return Vec::new(),
    };
    let payload = JobPayload {
        service_id: after.id,
        subscriber_id: after.subscriber_id,
        event_id: event.id,
        reason,
    };
    vec![ProvisioningJob::nas(now, kind, &payload)]
}

impl App {
    pub async fn create_service(&self, actor: &Actor, req: CreateService) -> AppResult<Service> {
        let mut e = ValidationErrors::new();
        let kind = req.access_kind.unwrap_or(AccessKind::Pppoe);
        let username = match &req.username {
            Some(u) => e.check("username", service::username(u)),
            None => None,
        };
        let password = match &req.password {
            Some(p) => e.check("password", service::password(p)),
            None => None,
        };
        let mac = match &req.mac_address {
            Some(m) => e.check("mac_address", service::mac_address(m)),
            None => None,
        };
        let circuit_id = e
            .check(
                "circuit_id",
                validate::optional(req.circuit_id.as_deref(), 253),
            )
            .flatten();
        let static_ip: Option<IpAddr> = match &req.static_ip {
            Some(ip) => e.check(
                "static_ip",
                ip.trim()
                    .parse()
                    .map_err(|_| "must be an IPv4 or IPv6 address".to_string()),
            ),
            None => None,
        };
        let ip_pool = e
            .check("ip_pool", validate::optional(req.ip_pool.as_deref(), 64))
            .flatten();
        if req.static_ip.is_some() && ip_pool.is_some() {
            e.add("ip_pool", "give either a static_ip or an ip_pool, not both");
        }
        if kind.uses_password() {
            if req.username.is_none() {
                e.add("username", format!("required for {} access", kind.as_str()));
            }
            if req.password.is_none() {
                e.add("password", format!("required for {} access", kind.as_str()));
            }
        } else {
            if req.mac_address.is_none() && circuit_id.is_none() {
                e.add(
                    "mac_address",
                    "ipoe access needs a mac_address or a circuit_id",
                );
            }
            if req.password.is_some() {
                e.add("password", "ipoe access has no password");
            }
        }
        let simultaneous_use = e.check(
            "simultaneous_use",
            service::simultaneous_use(
                req.simultaneous_use
                    .unwrap_or(service::DEFAULT_SIMULTANEOUS_USE),
            ),
        );
        let service_address = crate::input::address(
            "service_address",
            &req.service_address.clone().unwrap_or_default(),
            &mut e,
        );

        // Referenced records: a wrong id in a body is a field error, not a missing resource.
        let subscriber_id = SubscriberId(req.subscriber_id);
        let subscriber = self.store.get_subscriber(subscriber_id).await?;
        if subscriber.is_none() {
            e.add("subscriber_id", "no such subscriber");
        }
        let plan = self.store.get_plan(PlanId(req.plan_id)).await?;
        match &plan {
            None => e.add("plan_id", "no such plan"),
            Some(p) if p.status == PlanStatus::Retired => {
                e.add("plan_id", "the plan is retired and can no longer be sold")
            }
            Some(p) => {
                if let Some(s) = &subscriber {
                    if s.currency != p.current.terms.currency {
                        e.add(
                            "plan_id",
                            format!(
                                "the plan is priced in {}, the subscriber is billed in {}",
                                p.current.terms.currency, s.currency
                            ),
                        );
                    }
                }
            }
        }
        if let Some(n) = req.nas_id {
            if self.store.get_nas(NasId(n)).await?.is_none() {
                e.add("nas_id", "no such NAS");
            }
        }
        e.into_result()?;
        let (Some(subscriber), Some(plan), Some(simultaneous_use)) =
            (subscriber, plan, simultaneous_use)
        else {
            return Err(AppError::Internal("validated references vanished".into()));
        };
        if subscriber.status == SubscriberStatus::Closed {
            return Err(AppError::invalid_state(
                "a closed subscriber cannot get new services",
                subscriber.status,
            ));
        }
        let now = self.clock.now();
        let s = Service {
            id: ServiceId::generate(),
            subscriber_id,
            plan_id: plan.id,
            plan_version_id: plan.current.id,
            status: ServiceStatus::Pending,
            suspension_cause: None,
            service_address,
            access_kind: kind,
            username,
            password_ciphertext: password.map(|p| self.secrets.encrypt(&p)).transpose()?,
            mac_address: mac,
            circuit_id,
            static_ip,
            ip_pool,
            nas_id: req.nas_id.map(NasId),
            simultaneous_use,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let audit = AuditEvent::new::<(), _>(
            now,
            actor,
            Some(subscriber_id),
            "service",
            s.id,
            "service.create",
            None,
            Some(&s),
        );
        self.store.insert_service(&s, &audit).await?;
        Ok(s)
    }

    /// Changes a service's settings that live outside its timeline (`simultaneous_use`),
    /// audited as `service.update`. Nothing to change writes nothing.
    pub async fn update_service(
        &self,
        actor: &Actor,
        id: ServiceId,
        req: UpdateService,
    ) -> AppResult<Service> {
        let before = self.get_service(id).await?;
        if before.status == ServiceStatus::Terminated {
            return Err(AppError::invalid_state(
                "a terminated service cannot change",
                before.status,
            ));
        }
        let mut s = before.clone();
        let mut e = ValidationErrors::new();
        if let Some(v) = req.simultaneous_use {
            if let Some(v) = e.check("simultaneous_use", service::simultaneous_use(v)) {
                s.simultaneous_use = v;
            }
        }
        e.into_result()?;
        if s == before {
            return Ok(before);
        }
        s.updated_at = self.clock.now();
        s.revision = before.revision + 1;
        let audit = AuditEvent::new(
            s.updated_at,
            actor,
            Some(s.subscriber_id),
            "service",
            id,
            "service.update",
            Some(&before),
            Some(&s),
        );
        self.store
            .update_service_settings(&s, before.revision, &audit)
            .await?;
        Ok(s)
    }

    pub async fn get_service(&self, id: ServiceId) -> AppResult<Service> {
        self.store
            .get_service(id)
            .await?
            .ok_or_else(|| AppError::not_found("service", id))
    }

    pub async fn list_services(
        &self,
        filter: &ServiceFilter,
        page: Page,
    ) -> AppResult<Vec<Service>> {
        Ok(self.store.list_services(filter, page).await?)
    }

    pub async fn service_timeline(&self, id: ServiceId) -> AppResult<Vec<TimelineEvent>> {
        self.get_service(id).await?;
        Ok(self.store.service_timeline(id).await?)
    }

    /// Records a service business event: validates it against the whole timeline (back-dated
    /// events included), then writes the projection, the event, the audit event and the
    /// provisioning jobs in one transaction. Concurrent actions on the same service are
    /// serialised by the service's revision: a loser re-reads and re-validates.
    pub async fn service_action(
        &self,
        actor: &Actor,
        id: ServiceId,
        action: ServiceAction,
        body: ServiceActionBody,
    ) -> AppResult<ServiceChangeOutcome> {
        let reason = validate::optional(body.reason.as_deref(), 500)
            .map_err(|m| AppError::invalid("reason", m))?;
        let effective_at = body.effective_at.map(crate::clock::to_micros);
        let target_plan = match &action {
            ServiceAction::ChangePlan { plan_id } => {
                let plan = self
                    .store
                    .get_plan(*plan_id)
                    .await?
                    .ok_or_else(|| AppError::invalid("plan_id", "no such plan"))?;
                if plan.status == PlanStatus::Retired {
                    return Err(AppError::invalid(
                        "plan_id",
                        "the plan is retired and can no longer be sold",
                    ));
                }
                Some(plan)
            }
            _ => None,
        };
        optimistic("the service", || async {
            let change = self
                .prepare_service_change(
                    actor,
                    id,
                    &action,
                    reason.clone(),
                    effective_at,
                    target_plan.as_ref(),
                )
                .await?;
            match Attempt::from_write(self.store.record_service_change(&change).await)? {
                Attempt::Retry => Ok(Attempt::Retry),
                Attempt::Done(()) => {
                    if !change.jobs.is_empty() {
                        (self.jobs_queued)();
                    }
                    Ok(Attempt::Done(ServiceChangeOutcome {
                        service: change.service,
                        event: change.event,
                        jobs: change.jobs,
                    }))
                }
            }
        })
        .await
    }

    /// Builds the change a service action makes as of now (timeline event validated against
    /// the whole timeline, the row's projection, audit, provisioning jobs) without writing it:
    /// the caller writes it alone or together with other changes (dunning, payments).
    pub(crate) async fn prepare_service_change(
        &self,
        actor: &Actor,
        id: ServiceId,
        action: &ServiceAction,
        reason: Option<String>,
        effective_at: Option<Timestamp>,
        target_plan: Option<&lastmile_domain::plan::Plan>,
    ) -> AppResult<ServiceChange> {
        let now = self.clock.now();
        let before = self.get_service(id).await?;
        let eff = effective_at.unwrap_or(now);
        timeline::check_effective_at(eff, now, self.config.backdate_window)
            .map_err(|m| AppError::invalid("effective_at", m))?;
        if let Some(plan) = &target_plan {
            let sub = self.get_subscriber(before.subscriber_id).await?;
            if sub.currency != plan.current.terms.currency {
                return Err(AppError::invalid(
                    "plan_id",
                    format!(
                        "the plan is priced in {}, the subscriber is billed in {}",
                        plan.current.terms.currency, sub.currency
                    ),
                ));
            }
        }
        let (initial_plan, initial_version) = self
            .store
            .service_initial_plan(id)
            .await?
            .ok_or_else(|| AppError::not_found("service", id))?;
        let existing = self.store.service_timeline(id).await?;
        let event = TimelineEvent {
            id: ServiceEventId::generate(),
            service_id: id,
            subscriber_id: before.subscriber_id,
            seq: existing.iter().map(|e| e.seq).max().unwrap_or(0) + 1,
            kind: action.kind(),
            effective_at: eff,
            recorded_at: now,
            plan_id: target_plan.as_ref().map(|p| p.id),
            plan_version_id: target_plan.as_ref().map(|p| p.current.id),
            suspension_cause: match action {
                ServiceAction::Suspend { cause } => Some(*cause),
                _ => None,
            },
            reason: reason.clone(),
            actor: actor.name.clone(),
        };
        let initial = ServiceState::pending(initial_plan, initial_version);
        let state = timeline::add_event(initial, &existing, &event).map_err(|e| {
            let current = match &e {
                TimelineError::Illegal { transition, .. } => transition.status.to_string(),
                _ => before.status.to_string(),
            };
            AppError::Conflict {
                kind: "invalid-state",
                message: e.to_string(),
                current_state: Some(current),
                field: None,
            }
        })?;
        let mut after = before.clone();
        after.status = state.status;
        after.plan_id = state.plan_id;
        after.plan_version_id = state.plan_version_id;
        after.suspension_cause = state.suspension_cause;
        after.updated_at = now;
        after.revision = before.revision + 1;
        let jobs = jobs_for(now, &before, &after, &event);
        let audit = AuditEvent::new(
            now,
            actor,
            Some(before.subscriber_id),
            "service",
            id,
            &format!("service.{}", event.kind.action()),
            Some(&before),
            Some(&after),
        )
        .with_reason(reason.clone());
        let change = ServiceChange {
            service: after,
            expected_revision: before.revision,
            event,
            audit,
            jobs,
        };
        Ok(change)
    }
}
