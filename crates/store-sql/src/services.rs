//! Services and their timeline, provisioning jobs, the audit trail, idempotency keys, counters.

use crate::prelude::*;

pub async fn ping<C: Conn>(c: &mut C) -> Result<()> {
    c.fetch("SELECT 1", &[]).await?;
    Ok(())
}

/// Both dialects accept the table-qualified column in the upsert's SET; PostgreSQL needs it
/// (an unqualified `value` is ambiguous with `excluded.value` there).
const NEXT_COUNTER: &str = "INSERT INTO counters (name, value) VALUES ($1, 1)
     ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
     RETURNING value";

pub async fn next_counter<C: Conn>(c: &mut C, name: &str) -> Result<i64> {
    fetch_opt(c, NEXT_COUNTER, &[name.into()], |r| r.i64("value"))
        .await?
        .ok_or_else(|| StoreError::corrupt(format!("counter {name}: the upsert returned no row")))
}

const INSERT_SERVICE: &str = "INSERT INTO services (id, subscriber_id, plan_id, plan_version_id,
         initial_plan_id, initial_plan_version_id, status, suspension_cause, service_address,
         access_kind, username, password_ciphertext, mac_address, circuit_id, static_ip,
         ip_pool, nas_id, created_at, updated_at, revision, simultaneous_use)
     VALUES ($1, $2, $3, $4, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
         $18, $19)";

pub async fn update_service_settings<C: Conn>(
    c: &mut C,
    service: &Service,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let s = service;
    let done = c
        .execute(
            "UPDATE services SET simultaneous_use = $2, updated_at = $3, revision = $4
             WHERE id = $1 AND revision = $5",
            &[
                s.id.0.into(),
                s.simultaneous_use.into(),
                Param::at(s.updated_at),
                s.revision.into(),
                expected_revision.into(),
            ],
        )
        .await?;
    expect_one(done, "service")?;
    insert_audit(c, audit).await
}

pub async fn insert_service<C: Conn>(
    c: &mut C,
    service: &Service,
    audit: &AuditEvent,
) -> Result<()> {
    let s = service;
    refuse_service_of_closed_subscriber(c, s.subscriber_id).await?;
    c.execute(
        INSERT_SERVICE,
        &[
            s.id.0.into(),
            s.subscriber_id.0.into(),
            s.plan_id.0.into(),
            s.plan_version_id.0.into(),
            s.status.as_str().into(),
            s.suspension_cause.map(|c| c.as_str()).into(),
            Param::json(to_json(&s.service_address)?),
            s.access_kind.as_str().into(),
            s.username.as_deref().into(),
            s.password_ciphertext.clone().into(),
            s.mac_address.as_deref().into(),
            s.circuit_id.as_deref().into(),
            s.static_ip.map(|ip| ip.to_string()).into(),
            s.ip_pool.as_deref().into(),
            s.nas_id.map(|n| n.0).into(),
            Param::at(s.created_at),
            Param::at(s.updated_at),
            s.revision.into(),
            s.simultaneous_use.into(),
        ],
    )
    .await?;
    insert_audit(c, audit).await
}

/// A service is never added to a closed subscriber: checked in the inserting transaction
/// (`Stale`: the use case read the subscriber before it was closed; a retry sees it closed).
/// Closing a subscriber checks for live services the other way round (`catalog`), so the two
/// exclude each other: on SQLite because the single writer serialises write transactions; on
/// PostgreSQL because this read holds a share lock of the subscriber row, which the close's
/// `FOR UPDATE` waits for (and the close's later read of the services sees this insert).
async fn refuse_service_of_closed_subscriber<C: Conn>(c: &mut C, sub: SubscriberId) -> Result<()> {
    let sql = match C::DIALECT {
        Dialect::Sqlite => "SELECT status FROM subscribers WHERE id = $1",
        Dialect::Postgres => "SELECT status FROM subscribers WHERE id = $1 FOR SHARE",
    };
    let status = fetch_opt(c, sql, &[sub.0.into()], |r| r.text("status")).await?;
    if status.as_deref() == Some(lastmile_domain::subscriber::SubscriberStatus::Closed.as_str()) {
        return Err(StoreError::Stale {
            entity: "subscriber",
        });
    }
    Ok(())
}

pub async fn get_service<C: Conn>(c: &mut C, id: ServiceId) -> Result<Option<Service>> {
    fetch_opt(
        c,
        "SELECT * FROM services WHERE id = $1",
        &[id.0.into()],
        rows::service,
    )
    .await
}

pub async fn list_services<C: Conn>(
    c: &mut C,
    filter: &ServiceFilter,
    page: Page,
) -> Result<Vec<Service>> {
    let mut q = Sql::new("SELECT * FROM services WHERE 1 = 1");
    equal_filters::<C>(
        &mut q,
        [
            ("subscriber_id", filter.subscriber_id.map(|s| s.0.into())),
            ("nas_id", filter.nas_id.map(|n| n.0.into())),
            ("plan_id", filter.plan_id.map(|p| p.0.into())),
            ("status", filter.status.map(|st| st.as_str().into())),
        ],
    );
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::service)
}

/// Appends `AND col = value` for each present filter, given most selective first. On SQLite
/// only the first may pick the index (the others are written `+col`, which no index serves):
/// without statistics SQLite cannot tell a subscriber's few rows from all active ones, and
/// each filter has an index (`(col, id)`, migration 0008) that would serve the id order.
/// PostgreSQL's planner has statistics and chooses itself.
pub(crate) fn equal_filters<C: Conn>(
    q: &mut Sql,
    filters: impl IntoIterator<Item = (&'static str, Option<Param>)>,
) {
    let mut first = true;
    for (col, value) in filters {
        let Some(value) = value else { continue };
        q.push(" AND ");
        if !first && C::DIALECT == Dialect::Sqlite {
            q.push("+");
        }
        q.push(col).push(" = ").bind(value);
        first = false;
    }
}

pub async fn service_initial_plan<C: Conn>(
    c: &mut C,
    id: ServiceId,
) -> Result<Option<(PlanId, PlanVersionId)>> {
    fetch_opt(
        c,
        "SELECT initial_plan_id, initial_plan_version_id FROM services WHERE id = $1",
        &[id.0.into()],
        |r| {
            Ok((
                PlanId(r.uuid("initial_plan_id")?),
                PlanVersionId(r.uuid("initial_plan_version_id")?),
            ))
        },
    )
    .await
}

pub async fn service_timeline<C: Conn>(c: &mut C, id: ServiceId) -> Result<Vec<TimelineEvent>> {
    fetch_all(
        c,
        "SELECT * FROM service_events WHERE service_id = $1 ORDER BY seq",
        &[id.0.into()],
        rows::timeline_event,
    )
    .await
}

pub async fn record_service_change<C: Conn>(c: &mut C, change: &ServiceChange) -> Result<()> {
    write_service_change(c, change).await
}

pub async fn get_job<C: Conn>(c: &mut C, id: JobId) -> Result<Option<ProvisioningJob>> {
    fetch_opt(
        c,
        "SELECT * FROM provisioning_jobs WHERE id = $1",
        &[id.0.into()],
        rows::job,
    )
    .await
}

pub async fn list_jobs<C: Conn>(
    c: &mut C,
    filter: &JobFilter,
    page: Page,
) -> Result<Vec<ProvisioningJob>> {
    let mut q = Sql::new("SELECT * FROM provisioning_jobs WHERE 1 = 1");
    equal_filters::<C>(
        &mut q,
        [
            ("service_id", filter.service_id.map(|s| s.0.into())),
            ("subscriber_id", filter.subscriber_id.map(|s| s.0.into())),
            ("kind", filter.kind.map(|k| Param::from(k.as_str()))),
            ("status", filter.status.map(|st| st.as_str().into())),
        ],
    );
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::job)
}

const REQUEUE_FAILED_JOB: &str =
    "UPDATE provisioning_jobs SET status = 'pending', attempts = 0, run_after = $2,
         locked_until = NULL, updated_at = $2
     WHERE id = $1 AND status = 'failed'
     RETURNING *";

pub async fn requeue_failed_job<C: Conn>(
    c: &mut C,
    id: JobId,
    now: Timestamp,
    audit: &AuditEvent,
) -> Result<Option<ProvisioningJob>> {
    let job = fetch_opt(
        c,
        REQUEUE_FAILED_JOB,
        &[id.0.into(), Param::at(now)],
        rows::job,
    )
    .await?;
    // Not failed: nothing changed, so nothing is audited.
    let Some(job) = job else {
        return Ok(None);
    };
    insert_audit(c, audit).await?;
    Ok(Some(job))
}

pub async fn claim_jobs<C: Conn>(
    c: &mut C,
    kinds: &[JobKind],
    scope: JobScope,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<ProvisioningJob>> {
    if kinds.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    // $1 = now, $2 = lease_until, $3 = limit; the kinds follow as an IN list. The picked ids
    // are materialised so the selection runs once. On SQLite the single writer makes
    // select-then-update atomic. On PostgreSQL, SKIP LOCKED passes over rows another claimer
    // is taking right now, and a row claimed (and committed) since this statement's snapshot
    // is re-checked against the WHERE clause after locking, so it no longer qualifies.
    let mut q = Sql {
        text: String::new(),
        params: vec![
            Param::at(now),
            Param::at(lease_until),
            i64::from(limit).into(),
        ],
    };
    q.push("WITH picked AS MATERIALIZED (SELECT id FROM provisioning_jobs WHERE kind IN ")
        .bind_list(kinds.iter().map(|k| k.as_str()));
    if let JobScope::Subscriber(s) = scope {
        q.push(" AND subscriber_id = ").bind(s.0);
    }
    q.push(
        " AND ((status = 'pending' AND run_after <= $1)
                  OR (status = 'running' AND locked_until < $1))
             ORDER BY run_after, id LIMIT $3",
    );
    if C::DIALECT == Dialect::Postgres {
        q.push(" FOR UPDATE SKIP LOCKED");
    }
    q.push(
        ") UPDATE provisioning_jobs SET status = 'running', attempts = attempts + 1,
             locked_until = $2, updated_at = $1
         WHERE id IN (SELECT id FROM picked)
         RETURNING *",
    );
    let mut jobs = collect(q.fetch(c).await?, rows::job)?;
    // RETURNING follows no particular order: hand them out in claim order.
    jobs.sort_by_key(|j| (j.run_after, j.id));
    Ok(jobs)
}

const FINISH_JOB: &str =
    "UPDATE provisioning_jobs SET status = $3, last_error = COALESCE($4, last_error),
         run_after = COALESCE($5, run_after), locked_until = NULL, updated_at = $6,
         last_result = $7
     WHERE id = $1 AND status = 'running' AND attempts = $2";

pub async fn finish_job<C: Conn>(
    c: &mut C,
    id: JobId,
    attempt: i32,
    outcome: &JobOutcome,
    now: Timestamp,
) -> Result<bool> {
    let (status, error, run_after) = match outcome {
        JobOutcome::Succeeded { .. } => (JobStatus::Succeeded, None, None),
        JobOutcome::Failed {
            error,
            retry_at: Some(at),
        } => (JobStatus::Pending, Some(error.as_str()), Some(*at)),
        JobOutcome::Failed {
            error,
            retry_at: None,
        } => (JobStatus::Failed, Some(error.as_str()), None),
    };
    let done = c
        .execute(
            FINISH_JOB,
            &[
                id.0.into(),
                attempt.into(),
                status.as_str().into(),
                error.into(),
                Param::opt_at(run_after),
                Param::at(now),
                outcome.result().into(),
            ],
        )
        .await?;
    Ok(done == 1)
}

pub async fn list_audit_events<C: Conn>(
    c: &mut C,
    filter: &AuditFilter,
    page: Page,
) -> Result<Vec<AuditEvent>> {
    let mut q = Sql::new("SELECT * FROM audit_events WHERE 1 = 1");
    equal_filters::<C>(
        &mut q,
        [
            ("entity_id", filter.entity_id.as_deref().map(Param::from)),
            ("subscriber_id", filter.subscriber_id.map(|s| s.0.into())),
            ("actor_id", filter.actor_id.as_deref().map(Param::from)),
            (
                "entity_type",
                filter.entity_type.as_deref().map(Param::from),
            ),
        ],
    );
    if let Some(from) = filter.from {
        q.push(" AND at >= ").bind(Param::at(from));
    }
    if let Some(to) = filter.to {
        q.push(" AND at < ").bind(Param::at(to));
    }
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::audit_event)
}

/// How many times `begin_idempotency` starts over when the key it found vanished (abandoned
/// by a concurrent request) before it could lock it. Only PostgreSQL can get there: on
/// SQLite the single writer runs this transaction alone, so the row cannot vanish.
const IDEMPOTENCY_RETRIES: usize = 3;

/// First use of a key. Concurrent first uses on PostgreSQL: one insert wins, the others
/// wait for it to commit and then do nothing.
const IDEMPOTENCY_INSERT: &str =
    "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, owner, lease_until)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (scope, key) DO NOTHING";

/// Reuse of a key past its time to live, as a fresh reservation (the row is locked, or the
/// writer is alone).
const IDEMPOTENCY_RENEW: &str = "UPDATE idempotency_keys SET request_hash = $3,
         status_code = NULL, response_body = NULL, created_at = $4, owner = $5,
         lease_until = $6, committed = NULL
     WHERE scope = $1 AND key = $2";

pub async fn begin_idempotency<C: Conn>(
    c: &mut C,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<IdempotencyBegin> {
    let owner = rows::idempotency_owner();
    // On PostgreSQL the lock waits for a business transaction marking the key to end.
    let locked;
    let select = match C::DIALECT {
        Dialect::Sqlite => rows::IDEMPOTENCY_SELECT,
        Dialect::Postgres => {
            locked = format!("{} FOR UPDATE", rows::IDEMPOTENCY_SELECT);
            locked.as_str()
        }
    };
    let reservation = [
        scope.into(),
        key.into(),
        request_hash.into(),
        Param::at(now),
        owner.as_str().into(),
        Param::at(lease_until),
    ];
    for _ in 0..IDEMPOTENCY_RETRIES {
        if c.execute(IDEMPOTENCY_INSERT, &reservation).await? == 1 {
            return Ok(IdempotencyBegin::Reserved { owner });
        }
        let existing = c.fetch(select, &[scope.into(), key.into()]).await?;
        // Abandoned between the insert and the lock: try again.
        let Some(r) = existing.first() else { continue };
        return Ok(match rows::idempotency_step(r, request_hash, now)? {
            rows::IdempotencyStep::Answer(a) => a,
            rows::IdempotencyStep::Fresh => {
                c.execute(IDEMPOTENCY_RENEW, &reservation).await?;
                IdempotencyBegin::Reserved { owner }
            }
            rows::IdempotencyStep::TakeOver {
                owner: old_owner,
                lease_until: old_lease,
                commit,
            } => {
                let done = c
                    .execute(
                        rows::IDEMPOTENCY_TAKE_OVER,
                        &[
                            scope.into(),
                            key.into(),
                            owner.as_str().into(),
                            Param::at(lease_until),
                            old_owner.into(),
                            old_lease.into(),
                        ],
                    )
                    .await?;
                rows::idempotency_taken_over(done, owner, commit)
            }
        });
    }
    Err(StoreError::Stale {
        entity: "idempotency key",
    })
}

pub async fn finish_idempotency<C: Conn>(
    c: &mut C,
    scope: &str,
    key: &str,
    owner: &str,
    response: &StoredResponse,
) -> Result<bool> {
    let done = c
        .execute(
            rows::IDEMPOTENCY_FINISH,
            &[
                scope.into(),
                key.into(),
                owner.into(),
                response.status.into(),
                response.body.as_slice().into(),
            ],
        )
        .await?;
    Ok(done == 1)
}

pub async fn abandon_idempotency<C: Conn>(
    c: &mut C,
    scope: &str,
    key: &str,
    owner: &str,
    now: Timestamp,
) -> Result<()> {
    // Forgotten if nothing committed under it; if that matched nothing, the release ends
    // the lease of a reservation under which something committed.
    c.execute(
        rows::IDEMPOTENCY_FORGET,
        &[scope.into(), key.into(), owner.into()],
    )
    .await?;
    c.execute(
        rows::IDEMPOTENCY_RELEASE,
        &[scope.into(), key.into(), owner.into(), Param::at(now)],
    )
    .await?;
    Ok(())
}
