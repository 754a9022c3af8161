//! Operators and API tokens, subscribers, plans and their versions, NAS.

use crate::prelude::*;

// Operators and tokens ----------------------------------------------------------------------

const INSERT_OPERATOR: &str =
    "INSERT INTO operators (id, name, role, created_at) VALUES ($1, $2, $3, $4)";

const INSERT_TOKEN: &str =
    "INSERT INTO api_tokens (id, operator_id, token_hash, created_at, revoked_at)
     VALUES ($1, $2, $3, $4, $5)";

/// The token's own columns, and its operator's prefixed `operator_` (what `rows::operator`
/// reads; `operator_id` is the token's column).
const FIND_TOKEN: &str = "SELECT t.*, o.name AS operator_name, o.role AS operator_role,
         o.created_at AS operator_created_at
     FROM api_tokens t JOIN operators o ON o.id = t.operator_id
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL";

pub async fn insert_operator<C: Conn>(
    c: &mut C,
    operator: &Operator,
    token: &ApiToken,
    audit: &AuditEvent,
) -> Result<()> {
    c.execute(
        INSERT_OPERATOR,
        &[
            operator.id.0.into(),
            operator.name.as_str().into(),
            operator.role.as_str().into(),
            Param::at(operator.created_at),
        ],
    )
    .await?;
    c.execute(
        INSERT_TOKEN,
        &[
            token.id.0.into(),
            token.operator_id.0.into(),
            token.token_hash.as_str().into(),
            Param::at(token.created_at),
            Param::opt_at(token.revoked_at),
        ],
    )
    .await?;
    insert_audit(c, audit).await
}

pub async fn find_token<C: Conn>(
    c: &mut C,
    token_hash: &str,
) -> Result<Option<(ApiToken, Operator)>> {
    let rows = c.fetch(FIND_TOKEN, &[token_hash.into()]).await?;
    match rows.first() {
        None => Ok(None),
        Some(r) => Ok(Some((rows::api_token(r)?, rows::operator(r)?))),
    }
}

// Subscribers -------------------------------------------------------------------------------

const INSERT_SUBSCRIBER: &str = "INSERT INTO subscribers (id, number, name, email, phone,
         billing_address, currency, tax_zone, billing_day, status, custom_fields, created_at,
         updated_at, revision, dunning_policy)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

const UPDATE_SUBSCRIBER: &str = "UPDATE subscribers SET number = $2, name = $3, email = $4,
         phone = $5, billing_address = $6, currency = $7, tax_zone = $8, billing_day = $9,
         status = $10, custom_fields = $11, updated_at = $12, revision = $13,
         dunning_policy = $15
     WHERE id = $1 AND revision = $14";

const GET_SUBSCRIBER: &str = "SELECT * FROM subscribers WHERE id = $1";

pub async fn insert_subscriber<C: Conn>(
    c: &mut C,
    subscriber: &Subscriber,
    audit: &AuditEvent,
) -> Result<()> {
    let s = subscriber;
    c.execute(
        INSERT_SUBSCRIBER,
        &[
            s.id.0.into(),
            s.number.as_str().into(),
            s.name.as_str().into(),
            s.email.as_deref().into(),
            s.phone.as_deref().into(),
            Param::json(to_json(&s.billing_address)?),
            s.currency.as_str().into(),
            s.tax_zone.as_deref().into(),
            s.billing_day.get().into(),
            s.status.as_str().into(),
            Param::json(to_json(&s.custom_fields)?),
            Param::at(s.created_at),
            Param::at(s.updated_at),
            s.revision.into(),
            s.dunning_policy.as_deref().into(),
        ],
    )
    .await?;
    insert_audit(c, audit).await
}

pub async fn update_subscriber<C: Conn>(
    c: &mut C,
    subscriber: &Subscriber,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let s = subscriber;
    if s.status == lastmile_domain::subscriber::SubscriberStatus::Closed {
        refuse_close_with_live_services(c, s.id).await?;
    }
    let done = c
        .execute(
            UPDATE_SUBSCRIBER,
            &[
                s.id.0.into(),
                s.number.as_str().into(),
                s.name.as_str().into(),
                s.email.as_deref().into(),
                s.phone.as_deref().into(),
                Param::json(to_json(&s.billing_address)?),
                s.currency.as_str().into(),
                s.tax_zone.as_deref().into(),
                s.billing_day.get().into(),
                s.status.as_str().into(),
                Param::json(to_json(&s.custom_fields)?),
                Param::at(s.updated_at),
                s.revision.into(),
                expected_revision.into(),
                s.dunning_policy.as_deref().into(),
            ],
        )
        .await?;
    expect_one(done, "subscriber")?;
    insert_audit(c, audit).await
}

/// Closing a subscriber is refused in its own transaction while a service of theirs is not
/// terminated (`InUse`): the check the use case made before may be stale. On PostgreSQL the
/// subscriber row is locked first, so a concurrent service insert (which takes a share lock
/// on it) either committed before this check or waits and then sees the subscriber closed.
/// SQLite's single writer serialises write transactions, so nothing can slip in between.
async fn refuse_close_with_live_services<C: Conn>(c: &mut C, sub: SubscriberId) -> Result<()> {
    if C::DIALECT == Dialect::Postgres {
        c.fetch(
            "SELECT 1 FROM subscribers WHERE id = $1 FOR UPDATE",
            &[sub.0.into()],
        )
        .await?;
    }
    let live = c
        .fetch(
            "SELECT 1 FROM services WHERE subscriber_id = $1 AND status <> 'terminated' LIMIT 1",
            &[sub.0.into()],
        )
        .await?;
    if live.is_empty() {
        Ok(())
    } else {
        Err(StoreError::InUse {
            entity: "subscriber",
            by: "services not terminated",
        })
    }
}

pub async fn get_subscriber<C: Conn>(c: &mut C, id: SubscriberId) -> Result<Option<Subscriber>> {
    fetch_opt(c, GET_SUBSCRIBER, &[id.0.into()], rows::subscriber).await
}

pub async fn list_subscribers<C: Conn>(
    c: &mut C,
    filter: &SubscriberFilter,
    page: Page,
) -> Result<Vec<Subscriber>> {
    let mut q = Sql::new("SELECT * FROM subscribers WHERE 1 = 1");
    if let Some(needle) = &filter.q {
        // One parameter, used for the three columns. ESCAPE is explicit: SQLite has no
        // default LIKE escape; PostgreSQL's default is the same backslash.
        q.params.push(like_pattern(needle).into());
        let p = format!("lower(${}) ESCAPE '\\'", q.params.len());
        q.push(" AND (lower(name) LIKE ")
            .push(&p)
            .push(" OR lower(number) LIKE ")
            .push(&p)
            .push(" OR lower(email) LIKE ")
            .push(&p)
            .push(")");
    }
    if let Some(st) = filter.status {
        q.push(" AND status = ").bind(st.as_str());
    }
    if let Some(n) = &filter.number {
        q.push(" AND number = ").bind(n.as_str());
    }
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::subscriber)
}

// Plans -------------------------------------------------------------------------------------

/// A plan joined with its current version, whose columns are prefixed `v_` (`rows::plan`).
pub(crate) const PLAN_SELECT: &str =
    "SELECT p.*, v.id AS v_id, v.plan_id AS v_plan_id, v.version AS v_version,
         v.download_kbps AS v_download_kbps, v.upload_kbps AS v_upload_kbps, v.burst AS v_burst,
         v.price_minor AS v_price_minor, v.currency AS v_currency,
         v.billing_interval AS v_billing_interval, v.setup_fee_minor AS v_setup_fee_minor,
         v.data_cap_bytes AS v_data_cap_bytes, v.cap_policy AS v_cap_policy,
         v.free_window AS v_free_window, v.contract_months AS v_contract_months,
         v.early_termination_fee_minor AS v_early_termination_fee_minor,
         v.tax_class AS v_tax_class, v.created_at AS v_created_at
     FROM plans p JOIN plan_versions v ON v.id = p.current_version_id";

const INSERT_PLAN: &str = "INSERT INTO plans (id, code, name, status, current_version_id,
         created_at, updated_at, revision)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const UPDATE_PLAN: &str = "UPDATE plans SET code = $2, name = $3, status = $4,
         current_version_id = $5, updated_at = $6, revision = $7
     WHERE id = $1 AND revision = $8";

const INSERT_PLAN_VERSION: &str = "INSERT INTO plan_versions (id, plan_id, version,
         download_kbps, upload_kbps, burst, price_minor, currency, billing_interval,
         setup_fee_minor, data_cap_bytes, cap_policy, free_window, contract_months,
         early_termination_fee_minor, tax_class, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

const PLAN_VERSION_EXISTS: &str = "SELECT 1 FROM plan_versions WHERE id = $1";

const GET_PLAN_VERSION: &str = "SELECT * FROM plan_versions WHERE id = $1";

const LIST_PLAN_VERSIONS: &str = "SELECT * FROM plan_versions WHERE plan_id = $1 ORDER BY version";

async fn insert_plan_version<C: Conn>(c: &mut C, v: &PlanVersion) -> Result<()> {
    let t = &v.terms;
    c.execute(
        INSERT_PLAN_VERSION,
        &[
            v.id.0.into(),
            v.plan_id.0.into(),
            v.version.into(),
            t.download_kbps.into(),
            t.upload_kbps.into(),
            Param::opt_json(t.burst.as_ref().map(to_json).transpose()?),
            t.price_minor.into(),
            t.currency.as_str().into(),
            t.billing_interval.as_str().into(),
            t.setup_fee_minor.into(),
            t.data_cap_bytes.into(),
            Param::json(to_json(&t.cap_policy)?),
            Param::opt_json(t.free_window.as_ref().map(to_json).transpose()?),
            t.contract_months.into(),
            t.early_termination_fee_minor.into(),
            t.tax_class.as_str().into(),
            Param::at(v.created_at),
        ],
    )
    .await?;
    Ok(())
}

pub async fn insert_plan<C: Conn>(c: &mut C, plan: &Plan, audit: &AuditEvent) -> Result<()> {
    let p = plan;
    c.execute(
        INSERT_PLAN,
        &[
            p.id.0.into(),
            p.code.as_str().into(),
            p.name.as_str().into(),
            p.status.as_str().into(),
            p.current.id.0.into(),
            Param::at(p.created_at),
            Param::at(p.updated_at),
            p.revision.into(),
        ],
    )
    .await?;
    insert_plan_version(c, &p.current).await?;
    insert_audit(c, audit).await
}

pub async fn update_plan<C: Conn>(
    c: &mut C,
    plan: &Plan,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let p = plan;
    // The revision check comes first (and on PostgreSQL locks the plan row): a stale writer
    // fails with `Stale` before it tries to insert a version a concurrent writer may already
    // have stored. `current_version_id` has no foreign key, so the row may name the version
    // for a moment before it is inserted below.
    let done = c
        .execute(
            UPDATE_PLAN,
            &[
                p.id.0.into(),
                p.code.as_str().into(),
                p.name.as_str().into(),
                p.status.as_str().into(),
                p.current.id.0.into(),
                Param::at(p.updated_at),
                p.revision.into(),
                expected_revision.into(),
            ],
        )
        .await?;
    expect_one(done, "plan")?;
    let exists = c
        .fetch(PLAN_VERSION_EXISTS, &[p.current.id.0.into()])
        .await?;
    if exists.is_empty() {
        insert_plan_version(c, &p.current).await?;
    }
    insert_audit(c, audit).await
}

pub async fn get_plan<C: Conn>(c: &mut C, id: PlanId) -> Result<Option<Plan>> {
    let mut q = Sql::new(PLAN_SELECT);
    q.push(" WHERE p.id = ").bind(id.0);
    fetch_opt(c, &q.text, &q.params, rows::plan).await
}

pub async fn list_plans<C: Conn>(c: &mut C, filter: &PlanFilter, page: Page) -> Result<Vec<Plan>> {
    let mut q = Sql::new(PLAN_SELECT);
    q.push(" WHERE 1 = 1");
    if let Some(st) = filter.status {
        q.push(" AND p.status = ").bind(st.as_str());
    }
    q.paginate("p.id", page);
    collect(q.fetch(c).await?, rows::plan)
}

pub async fn get_plan_version<C: Conn>(
    c: &mut C,
    id: PlanVersionId,
) -> Result<Option<PlanVersion>> {
    fetch_opt(c, GET_PLAN_VERSION, &[id.0.into()], |r| {
        rows::plan_version(r, "")
    })
    .await
}

pub async fn list_plan_versions<C: Conn>(c: &mut C, plan_id: PlanId) -> Result<Vec<PlanVersion>> {
    fetch_all(c, LIST_PLAN_VERSIONS, &[plan_id.0.into()], |r| {
        rows::plan_version(r, "")
    })
    .await
}

// NAS ---------------------------------------------------------------------------------------

const INSERT_NAS: &str = "INSERT INTO nas (id, name, ip, secret_ciphertext, vendor, coa_port,
         api_url, api_username, api_password_ciphertext, created_at, updated_at, revision)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

const UPDATE_NAS: &str = "UPDATE nas SET name = $2, ip = $3, secret_ciphertext = $4,
         vendor = $5, coa_port = $6, api_url = $7, api_username = $8,
         api_password_ciphertext = $9, updated_at = $10, revision = $11
     WHERE id = $1 AND revision = $12";

const DELETE_NAS: &str = "DELETE FROM nas WHERE id = $1";

const GET_NAS: &str = "SELECT * FROM nas WHERE id = $1";

pub async fn insert_nas<C: Conn>(c: &mut C, nas: &Nas, audit: &AuditEvent) -> Result<()> {
    let n = nas;
    c.execute(
        INSERT_NAS,
        &[
            n.id.0.into(),
            n.name.as_str().into(),
            n.ip.to_string().into(),
            n.secret_ciphertext.as_slice().into(),
            n.vendor.as_str().into(),
            n.coa_port.into(),
            n.api_url.as_deref().into(),
            n.api_username.as_deref().into(),
            n.api_password_ciphertext.as_deref().into(),
            Param::at(n.created_at),
            Param::at(n.updated_at),
            n.revision.into(),
        ],
    )
    .await?;
    insert_audit(c, audit).await
}

pub async fn update_nas<C: Conn>(
    c: &mut C,
    nas: &Nas,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let n = nas;
    let done = c
        .execute(
            UPDATE_NAS,
            &[
                n.id.0.into(),
                n.name.as_str().into(),
                n.ip.to_string().into(),
                n.secret_ciphertext.as_slice().into(),
                n.vendor.as_str().into(),
                n.coa_port.into(),
                n.api_url.as_deref().into(),
                n.api_username.as_deref().into(),
                n.api_password_ciphertext.as_deref().into(),
                Param::at(n.updated_at),
                n.revision.into(),
                expected_revision.into(),
            ],
        )
        .await?;
    expect_one(done, "nas")?;
    insert_audit(c, audit).await
}

/// A NAS services still use fails on their foreign key, which both backends report as
/// `InUse`.
pub async fn delete_nas<C: Conn>(c: &mut C, id: NasId, audit: &AuditEvent) -> Result<()> {
    let done = c.execute(DELETE_NAS, &[id.0.into()]).await?;
    if done == 0 {
        return Err(StoreError::NotFound { entity: "nas" });
    }
    insert_audit(c, audit).await
}

pub async fn get_nas<C: Conn>(c: &mut C, id: NasId) -> Result<Option<Nas>> {
    fetch_opt(c, GET_NAS, &[id.0.into()], rows::nas).await
}

pub async fn list_nas<C: Conn>(c: &mut C, page: Page) -> Result<Vec<Nas>> {
    let mut q = Sql::new("SELECT * FROM nas WHERE 1 = 1");
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::nas)
}
