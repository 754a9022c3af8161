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
    let Some(needle) = filter.q.as_deref() else {
        let mut q = Sql::new("SELECT * FROM subscribers WHERE 1 = 1");
        if let Some(st) = filter.status {
            q.push(" AND status = ").bind(st.as_str());
        }
        if let Some(n) = &filter.number {
            q.push(" AND number = ").bind(n.as_str());
        }
        q.paginate("id", page);
        return collect(q.fetch(c).await?, rows::subscriber);
    };
    search_subscribers(c, needle, filter, page).await
}

// Subscriber search --------------------------------------------------------------------------
//
// `q` matches a subscriber when it is a case-insensitive substring (`lower(col) LIKE
// lower('%q%')`, wildcards literal) of their name, number, e-mail or phone, or of the login,
// MAC or static address of any of their services (terminated ones too: an old login still
// finds its subscriber). That predicate is the definition, on both backends; the indexes only
// find candidates faster:
//
// - PostgreSQL: pg_trgm GIN indexes (`subscribers_search_idx`, `services_search_idx`) answer
//   the LIKE itself when the needle has 3 or more characters; the planner chooses between
//   them and walking the primary key in id order.
// - SQLite: FTS5 trigram tables (`subscribers_fts`, `services_fts`, external content, kept by
//   triggers) give the candidates of a needle of 3 or more characters; each is re-checked
//   with the LIKE (the index folds case by Unicode rules, SQLite's lower() only ASCII, so the
//   index finds a superset and the LIKE decides).
//
// A page is the first `limit` matching ids after the cursor. The two sources (the
// subscriber's own columns; their services') each give their first `limit` subscriber ids in
// id order, and the page is the first `limit` of the union. Each source is read one of two
// ways: from the index (cost: every candidate, sorted), or by walking the table in id order
// and testing each row until `limit` match (cost: about limit × rows / matches). The first
// is right for rare needles, the second for common ones (a mail domain, an address prefix),
// where the index would hand over most of the table to sort. On SQLite the store counts a
// source's candidates up to √(limit × rows), where the two costs meet, and walks the table
// when there are more; on PostgreSQL the planner weighs the same two ways with its
// statistics, planning for the needle at hand (not a generic plan). A walk assumes the
// matches are spread over the id order; a common needle whose matches all lie late in it
// walks further.
//
// Needles of 1 or 2 characters have no trigram, on either backend: they walk the table in id
// order, testing each subscriber and probing their services. That is quick when the needle
// matches often, as such a needle nearly always does (a few ms), and a full scan when it
// matches little or nothing (about 0.2 s on SQLite, 0.35 s on PostgreSQL at 100,000
// subscribers on the 2-core bench machine). A prefix index would not help: the search is for
// substrings. So the API refuses them (`validate::search_term`); the store still answers them.

/// Needles shorter than this (in characters) cannot use a trigram index.
const TRIGRAM: usize = 3;

/// Binds `p` once and returns its placeholder, for a value used in several places.
fn placeholder(q: &mut Sql, p: impl Into<Param>) -> String {
    q.params.push(p.into());
    format!("${}", q.params.len())
}

/// How one source of matches is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// From the full-text index (SQLite), then sorted.
    Index,
    /// Walking the table in id order, testing each row.
    Walk,
}

async fn search_subscribers<C: Conn>(
    c: &mut C,
    needle: &str,
    filter: &SubscriberFilter,
    page: Page,
) -> Result<Vec<Subscriber>> {
    let limit = i64::from(page.limit);
    // The FTS5 phrase: the needle, quotes doubled. A needle with control characters (the API
    // refuses them) is left to the LIKE alone.
    let indexable = needle.chars().count() >= TRIGRAM && !needle.chars().any(char::is_control);
    let phrase = format!("\"{}\"", needle.replace('"', "\"\""));
    let (subscribers_src, services_src) = if C::DIALECT == Dialect::Sqlite && indexable {
        sqlite_sources(c, &phrase, limit).await?
    } else {
        (Source::Walk, Source::Walk)
    };

    if C::DIALECT == Dialect::Postgres {
        // A plan for this very needle: a prepared statement's generic plan cannot know
        // whether the needle is rare (read the trigram indexes) or common (walk the primary
        // key), and walking for a rare one reads the whole table (over 100 ms at 100,000
        // subscribers). Local to the read's transaction.
        c.execute("SET LOCAL plan_cache_mode = force_custom_plan", &[])
            .await?;
    }
    let mut q = Sql::default();
    let like = placeholder(&mut q, like_pattern(needle));
    let fts = (subscribers_src == Source::Index || services_src == Source::Index)
        .then(|| placeholder(&mut q, phrase));
    let lim = placeholder(&mut q, limit);
    // The subscriber filters, as conditions on `s`.
    let mut on_s = String::new();
    if let Some(st) = filter.status {
        on_s.push_str(&format!(
            " AND s.status = {}",
            placeholder(&mut q, st.as_str())
        ));
    }
    if let Some(n) = &filter.number {
        on_s.push_str(&format!(
            " AND s.number = {}",
            placeholder(&mut q, n.as_str())
        ));
    }
    let after = page.after.map(|a| placeholder(&mut q, a));
    // ESCAPE is explicit: SQLite has no default LIKE escape; PostgreSQL's default is the same
    // backslash.
    let m = |col: &str| format!("lower({col}) LIKE lower({like}) ESCAPE '\\'");
    let own = format!(
        "({} OR {} OR {} OR {})",
        m("s.name"),
        m("s.number"),
        m("s.email"),
        m("s.phone")
    );
    let theirs = format!(
        "({} OR {} OR {})",
        m("v.username"),
        m("v.mac_address"),
        m("v.static_ip")
    );
    let fts = fts.unwrap_or_default();

    // Both sources walked (SQLite: both common; either backend: no trigram): one walk in id
    // order that tests a subscriber's own columns and then probes their services, so it
    // stops after `limit` matches of either kind. (Two walks would each go on until their
    // own `limit`, through the whole table for a needle common in one and absent from the
    // other.) On PostgreSQL a trigram needle keeps the two branches below, each of which
    // the planner may answer from its GIN index. The probe is a scalar subquery, not EXISTS:
    // PostgreSQL would run an EXISTS inside an OR as a hashed subplan, reading every
    // matching service up front (a scan of all services) before the walk starts.
    if subscribers_src == Source::Walk
        && services_src == Source::Walk
        && (C::DIALECT == Dialect::Sqlite || !indexable)
    {
        q.push(&format!(
            "SELECT * FROM subscribers s
             WHERE ({own} OR (SELECT 1 FROM services v
                              WHERE v.subscriber_id = s.id AND {theirs} LIMIT 1) IS NOT NULL){on_s}"
        ));
        if let Some(a) = &after {
            q.push(&format!(" AND s.id > {a}"));
        }
        q.push(&format!(" ORDER BY s.id LIMIT {lim}"));
        return collect(q.fetch(c).await?, rows::subscriber);
    }

    let mut own_branch = match subscribers_src {
        Source::Index => format!(
            "SELECT s.id FROM subscribers_fts JOIN subscribers s ON s.rowid = subscribers_fts.rowid
             WHERE subscribers_fts MATCH {fts} AND {own}{on_s}"
        ),
        Source::Walk => format!("SELECT s.id FROM subscribers s WHERE {own}{on_s}"),
    };
    if let Some(a) = &after {
        own_branch.push_str(&format!(" AND s.id > {a}"));
    }
    own_branch.push_str(&format!(" ORDER BY s.id LIMIT {lim}"));

    // The subscriber row is joined only when a filter needs it.
    let join_s = if on_s.is_empty() {
        ""
    } else {
        " JOIN subscribers s ON s.id = v.subscriber_id"
    };
    let mut services_branch = match services_src {
        Source::Index => format!(
            "SELECT DISTINCT v.subscriber_id AS id
             FROM services_fts JOIN services v ON v.rowid = services_fts.rowid{join_s}
             WHERE services_fts MATCH {fts} AND {theirs}{on_s}"
        ),
        Source::Walk => format!(
            "SELECT DISTINCT v.subscriber_id AS id FROM services v{join_s}
             WHERE {theirs}{on_s}"
        ),
    };
    if let Some(a) = &after {
        services_branch.push_str(&format!(" AND v.subscriber_id > {a}"));
    }
    services_branch.push_str(&format!(" ORDER BY v.subscriber_id LIMIT {lim}"));

    q.push(&format!(
        "SELECT * FROM subscribers WHERE id IN (
             SELECT id FROM ({own_branch}) AS own
             UNION SELECT id FROM ({services_branch}) AS theirs)
         ORDER BY id LIMIT {lim}"
    ));
    collect(q.fetch(c).await?, rows::subscriber)
}

/// SQLite: how to read each source for an FTS5 phrase. A source with more candidates than
/// √(limit × rows) is walked in id order (see above); the count stops there, so it costs no
/// more than reading the candidates would. Rows: the largest rowid, O(log n) (neither table
/// is ever deleted from, so it is about the row count).
async fn sqlite_sources<C: Conn>(c: &mut C, fts: &str, limit: i64) -> Result<(Source, Source)> {
    let sizes = c
        .fetch(
            "SELECT (SELECT max(rowid) FROM subscribers) AS own,
                    (SELECT max(rowid) FROM services) AS theirs",
            &[],
        )
        .await?;
    // The square root is near enough: it only picks between two correct plans.
    let cap = |rows: Option<i64>| {
        (limit.saturating_mul(rows.unwrap_or(0)).max(1) as f64).sqrt() as i64 + 1
    };
    let (cap_own, cap_theirs) = match sizes.first() {
        Some(r) => (cap(r.opt_i64("own")?), cap(r.opt_i64("theirs")?)),
        None => (cap(None), cap(None)),
    };
    let counts = c
        .fetch(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM subscribers_fts
                         WHERE subscribers_fts MATCH $1 LIMIT $2)) AS own,
                    (SELECT count(*) FROM (SELECT 1 FROM services_fts
                         WHERE services_fts MATCH $1 LIMIT $3)) AS theirs",
            &[fts.into(), cap_own.into(), cap_theirs.into()],
        )
        .await?;
    let (own, theirs) = match counts.first() {
        Some(r) => (r.i64("own")?, r.i64("theirs")?),
        None => (0, 0),
    };
    let source = |n: i64, cap: i64| {
        if n >= cap {
            Source::Walk
        } else {
            Source::Index
        }
    };
    Ok((source(own, cap_own), source(theirs, cap_theirs)))
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
         api_url, api_username, api_password_ciphertext, created_at, updated_at, revision,
         require_message_authenticator, interim_interval_secs, session_timeout_secs,
         suspended_action, suspended_reply_message, suspended_address_list, suspended_pool,
         stale_session_multiplier)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
         $19, $20)";

const UPDATE_NAS: &str = "UPDATE nas SET name = $2, ip = $3, secret_ciphertext = $4,
         vendor = $5, coa_port = $6, api_url = $7, api_username = $8,
         api_password_ciphertext = $9, updated_at = $10, revision = $11,
         require_message_authenticator = $13, interim_interval_secs = $14,
         session_timeout_secs = $15, suspended_action = $16, suspended_reply_message = $17,
         suspended_address_list = $18, suspended_pool = $19, stale_session_multiplier = $20
     WHERE id = $1 AND revision = $12";

/// `$13` to `$20` of `INSERT_NAS` and `UPDATE_NAS`: the RADIUS settings.
fn nas_radius_params(n: &Nas) -> [Param; 8] {
    let (reply, list, pool) = match &n.suspended_action {
        SuspendedAction::Reject { reply_message } => (reply_message.as_deref(), None, None),
        SuspendedAction::WalledGarden { address_list, pool } => {
            (None, address_list.as_deref(), pool.as_deref())
        }
    };
    [
        n.require_message_authenticator.into(),
        n.interim_interval_secs.into(),
        n.session_timeout_secs.into(),
        n.suspended_action.kind().into(),
        reply.into(),
        list.into(),
        pool.into(),
        n.stale_session_multiplier.into(),
    ]
}

const DELETE_NAS: &str = "DELETE FROM nas WHERE id = $1";

const GET_NAS: &str = "SELECT * FROM nas WHERE id = $1";

pub async fn insert_nas<C: Conn>(c: &mut C, nas: &Nas, audit: &AuditEvent) -> Result<()> {
    let n = nas;
    let [p13, p14, p15, p16, p17, p18, p19, p20] = nas_radius_params(n);
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
            p13,
            p14,
            p15,
            p16,
            p17,
            p18,
            p19,
            p20,
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
    let [p13, p14, p15, p16, p17, p18, p19, p20] = nas_radius_params(n);
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
                p13,
                p14,
                p15,
                p16,
                p17,
                p18,
                p19,
                p20,
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
