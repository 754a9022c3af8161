//! Writes several areas share: the audit event (with the idempotency mark), provisioning jobs,
//! and a service's business event.

use crate::prelude::*;

/// Inserts an audit event, and marks the idempotency key of the request in progress as
/// committed in the same transaction (`rows::idempotency_mark`). Every business write goes
/// through here.
pub async fn insert_audit<C: Conn>(c: &mut C, a: &AuditEvent) -> Result<()> {
    insert_audit_row(c, a).await?;
    mark_idempotency(c, a, None).await
}

/// Records on the current idempotent request's key what this transaction commits; fails the
/// transaction if a retry took the reservation over.
pub async fn mark_idempotency<C: Conn>(
    c: &mut C,
    a: &AuditEvent,
    change: Option<&ServiceChange>,
) -> Result<()> {
    let Some((req, commit)) = rows::idempotency_mark(a, change)? else {
        return Ok(());
    };
    let done = c
        .execute(
            rows::IDEMPOTENCY_MARK,
            &[
                req.scope.into(),
                req.key.into(),
                req.owner.into(),
                Param::json(commit),
            ],
        )
        .await?;
    if done == 1 {
        Ok(())
    } else {
        Err(rows::idempotency_mark_lost())
    }
}

pub async fn insert_audit_row<C: Conn>(c: &mut C, a: &AuditEvent) -> Result<()> {
    c.execute(
        "INSERT INTO audit_events (id, at, actor_id, actor_name, subscriber_id, entity_type,
             entity_id, action, before, after, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            a.id.0.into(),
            Param::at(a.at),
            a.actor.id.as_str().into(),
            a.actor.name.as_str().into(),
            a.subscriber_id.map(|s| s.0).into(),
            a.entity_type.as_str().into(),
            a.entity_id.as_str().into(),
            a.action.as_str().into(),
            Param::opt_json(a.before.clone()),
            Param::opt_json(a.after.clone()),
            a.reason.as_deref().into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn insert_job<C: Conn>(c: &mut C, j: &ProvisioningJob) -> Result<()> {
    c.execute(
        "INSERT INTO provisioning_jobs (id, subscriber_id, service_id, kind, payload, status,
             attempts, max_attempts, run_after, locked_until, last_error, last_result, created_at,
             updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            j.id.0.into(),
            j.subscriber_id.map(|s| s.0).into(),
            j.service_id.map(|s| s.0).into(),
            j.kind.as_str().into(),
            Param::json(j.payload.clone()),
            j.status.as_str().into(),
            j.attempts.into(),
            j.max_attempts.into(),
            Param::at(j.run_after),
            Param::opt_at(j.locked_until),
            j.last_error.as_deref().into(),
            j.last_result.as_deref().into(),
            Param::at(j.created_at),
            Param::at(j.updated_at),
        ],
    )
    .await?;
    Ok(())
}

/// Writes a service business event (row, timeline event, audit, jobs) in the caller's
/// transaction; `Stale` if the service's revision moved on.
pub async fn write_service_change<C: Conn>(c: &mut C, ch: &ServiceChange) -> Result<()> {
    let s = &ch.service;
    let e = &ch.event;
    let done = c
        .execute(
            "UPDATE services SET plan_id = $2, plan_version_id = $3, status = $4,
                 suspension_cause = $5, updated_at = $6, revision = $7
             WHERE id = $1 AND revision = $8",
            &[
                s.id.0.into(),
                s.plan_id.0.into(),
                s.plan_version_id.0.into(),
                s.status.as_str().into(),
                s.suspension_cause.map(|c| c.as_str()).into(),
                Param::at(s.updated_at),
                s.revision.into(),
                ch.expected_revision.into(),
            ],
        )
        .await?;
    expect_one(done, "service")?;
    c.execute(
        "INSERT INTO service_events (id, subscriber_id, service_id, seq, kind, effective_at,
                 recorded_at, plan_id, plan_version_id, suspension_cause, reason, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            e.id.0.into(),
            e.subscriber_id.0.into(),
            e.service_id.0.into(),
            e.seq.into(),
            e.kind.as_str().into(),
            Param::at(e.effective_at),
            Param::at(e.recorded_at),
            e.plan_id.map(|p| p.0).into(),
            e.plan_version_id.map(|p| p.0).into(),
            e.suspension_cause.map(|c| c.as_str()).into(),
            e.reason.as_deref().into(),
            e.actor.as_str().into(),
        ],
    )
    .await?;
    insert_audit_row(c, &ch.audit).await?;
    mark_idempotency(c, &ch.audit, Some(ch)).await?;
    for j in &ch.jobs {
        insert_job(c, j).await?;
    }
    Ok(())
}
