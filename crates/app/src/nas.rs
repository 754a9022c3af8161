use crate::{App, AppError, AppResult};
use lastmile_api_types::{CreateNas, SuspendedActionBody, UpdateNas};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::ids::NasId;
use lastmile_domain::nas::{self, Nas, SuspendedAction};
use lastmile_domain::validate::{self, ValidationErrors};
use lastmile_store::Page;
use std::net::IpAddr;

/// RFC 5176's port for CoA and Disconnect-Request.
pub const DEFAULT_COA_PORT: u16 = 3799;

fn ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| "must be an IPv4 or IPv6 address".to_string())
}

fn api_url(s: &str) -> Result<String, String> {
    let s = validate::non_empty(s, 300)?;
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return Err("must be an http:// or https:// URL".into());
    }
    Ok(s)
}

const API_PASSWORD_RULE: &str = "must be 1 to 200 characters without control characters";

fn api_password_ok(p: &str) -> bool {
    !p.is_empty() && p.len() <= 200 && !p.chars().any(char::is_control)
}

fn coa_port(p: u16) -> Result<u16, String> {
    if p == 0 {
        return Err("must be between 1 and 65535".into());
    }
    Ok(p)
}

/// The suspended action of a request, checked: a walled garden names an address list or a
/// pool (or it would be an Accept with nothing to redirect the subscriber).
fn suspended_action(
    e: &mut ValidationErrors,
    body: &SuspendedActionBody,
) -> Option<SuspendedAction> {
    match body {
        SuspendedActionBody::Reject { reply_message } => {
            let reply_message = match reply_message {
                Some(m) => e.check("suspended_action.reply_message", nas::reply_message(m))?,
                None => None,
            };
            Some(SuspendedAction::Reject { reply_message })
        }
        SuspendedActionBody::WalledGarden { address_list, pool } => {
            let mut name = |field: &str, v: &Option<String>| match v {
                Some(v) => e.check(field, nas::garden_name(v)),
                None => Some(None),
            };
            let address_list = name("suspended_action.address_list", address_list);
            let pool = name("suspended_action.pool", pool);
            let (Some(address_list), Some(pool)) = (address_list, pool) else {
                return None;
            };
            Some(SuspendedAction::WalledGarden { address_list, pool })
        }
    }
}

impl App {
    pub async fn create_nas(&self, actor: &Actor, req: CreateNas) -> AppResult<Nas> {
        let mut e = ValidationErrors::new();
        let name = e.check("name", validate::non_empty(&req.name, 100));
        let addr = e.check("ip", ip(&req.ip));
        let secret = e.check("secret", nas::shared_secret(&req.secret));
        let port = e.check(
            "coa_port",
            coa_port(req.coa_port.unwrap_or(DEFAULT_COA_PORT)),
        );
        let url = match &req.api_url {
            Some(u) => e.check("api_url", api_url(u)),
            None => None,
        };
        let user = e
            .check(
                "api_username",
                validate::optional(req.api_username.as_deref(), 100),
            )
            .flatten();
        let pass = match &req.api_password {
            Some(p) if !api_password_ok(p) => {
                e.add("api_password", API_PASSWORD_RULE);
                None
            }
            p => p.clone(),
        };
        let interim = e.check(
            "interim_interval_secs",
            nas::interim_interval_secs(
                req.interim_interval_secs
                    .unwrap_or(nas::DEFAULT_INTERIM_INTERVAL_SECS),
            ),
        );
        let session_timeout = match req.session_timeout_secs {
            Some(v) => e
                .check("session_timeout_secs", nas::session_timeout_secs(v))
                .map(Some),
            None => Some(None),
        };
        let suspended = match &req.suspended_action {
            Some(b) => suspended_action(&mut e, b),
            None => Some(SuspendedAction::default()),
        };
        let stale = e.check(
            "stale_session_multiplier",
            nas::stale_session_multiplier(
                req.stale_session_multiplier
                    .unwrap_or(nas::DEFAULT_STALE_SESSION_MULTIPLIER),
            ),
        );
        let (
            Some(name),
            Some(addr),
            Some(secret),
            Some(port),
            Some(interim),
            Some(session_timeout),
            Some(suspended),
            Some(stale),
            true,
        ) = (
            name,
            addr,
            secret,
            port,
            interim,
            session_timeout,
            suspended,
            stale,
            e.is_empty(),
        )
        else {
            return Err(e.into());
        };
        let now = self.clock.now();
        let n = Nas {
            id: NasId::generate(),
            name,
            ip: addr,
            secret_ciphertext: self.secrets.encrypt(&secret)?,
            vendor: req.vendor,
            coa_port: port,
            api_url: url,
            api_username: user,
            api_password_ciphertext: pass.map(|p| self.secrets.encrypt(&p)).transpose()?,
            require_message_authenticator: req.require_message_authenticator.unwrap_or(true),
            interim_interval_secs: interim,
            session_timeout_secs: session_timeout,
            suspended_action: suspended,
            stale_session_multiplier: stale,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let audit =
            AuditEvent::new::<(), _>(now, actor, None, "nas", n.id, "nas.create", None, Some(&n));
        self.store.insert_nas(&n, &audit).await?;
        Ok(n)
    }

    pub async fn get_nas(&self, id: NasId) -> AppResult<Nas> {
        self.store
            .get_nas(id)
            .await?
            .ok_or_else(|| AppError::not_found("nas", id))
    }

    pub async fn list_nas(&self, page: Page) -> AppResult<Vec<Nas>> {
        Ok(self.store.list_nas(page).await?)
    }

    pub async fn update_nas(&self, actor: &Actor, id: NasId, req: UpdateNas) -> AppResult<Nas> {
        let before = self.get_nas(id).await?;
        let mut n = before.clone();
        let mut e = ValidationErrors::new();
        if let Some(v) = &req.name {
            if let Some(v) = e.check("name", validate::non_empty(v, 100)) {
                n.name = v;
            }
        }
        if let Some(v) = &req.ip {
            if let Some(v) = e.check("ip", ip(v)) {
                n.ip = v;
            }
        }
        if let Some(v) = &req.secret {
            if let Some(v) = e.check("secret", nas::shared_secret(v)) {
                n.secret_ciphertext = self.secrets.encrypt(&v)?;
            }
        }
        if let Some(v) = req.vendor {
            n.vendor = v;
        }
        if let Some(v) = req.coa_port {
            if let Some(v) = e.check("coa_port", coa_port(v)) {
                n.coa_port = v;
            }
        }
        if let Some(v) = &req.api_url {
            n.api_url = match v {
                None => None,
                Some(u) => e.check("api_url", api_url(u)),
            };
        }
        if let Some(v) = &req.api_username {
            n.api_username = e
                .check("api_username", validate::optional(v.as_deref(), 100))
                .flatten();
        }
        if let Some(v) = &req.api_password {
            n.api_password_ciphertext = match v {
                None => None,
                Some(p) if !api_password_ok(p) => {
                    e.add("api_password", API_PASSWORD_RULE);
                    None
                }
                Some(p) => Some(self.secrets.encrypt(p)?),
            };
        }
        if let Some(v) = req.require_message_authenticator {
            n.require_message_authenticator = v;
        }
        if let Some(v) = req.interim_interval_secs {
            if let Some(v) = e.check("interim_interval_secs", nas::interim_interval_secs(v)) {
                n.interim_interval_secs = v;
            }
        }
        match req.session_timeout_secs {
            None => {}
            Some(None) => n.session_timeout_secs = None,
            Some(Some(v)) => {
                if let Some(v) = e.check("session_timeout_secs", nas::session_timeout_secs(v)) {
                    n.session_timeout_secs = Some(v);
                }
            }
        }
        if let Some(b) = &req.suspended_action {
            if let Some(v) = suspended_action(&mut e, b) {
                n.suspended_action = v;
            }
        }
        if let Some(v) = req.stale_session_multiplier {
            if let Some(v) = e.check("stale_session_multiplier", nas::stale_session_multiplier(v)) {
                n.stale_session_multiplier = v;
            }
        }
        e.into_result()?;
        if n == before {
            return Ok(before);
        }
        n.updated_at = self.clock.now();
        n.revision = before.revision + 1;
        let audit = AuditEvent::new(
            n.updated_at,
            actor,
            None,
            "nas",
            id,
            "nas.update",
            Some(&before),
            Some(&n),
        );
        self.store.update_nas(&n, before.revision, &audit).await?;
        Ok(n)
    }

    /// Deletes a NAS no service references, terminated ones included (`409 in-use` otherwise).
    pub async fn delete_nas(&self, actor: &Actor, id: NasId) -> AppResult<()> {
        let before = self.get_nas(id).await?;
        let audit = AuditEvent::new::<_, ()>(
            self.clock.now(),
            actor,
            None,
            "nas",
            id,
            "nas.delete",
            Some(&before),
            None,
        );
        self.store
            .delete_nas(id, &audit)
            .await
            .map_err(|e| match e {
                lastmile_store::StoreError::InUse { .. } => AppError::Conflict {
                    kind: "in-use",
                    // Terminated services keep their NAS for the record, so they block deletion too.
                    message:
                        "services reference this NAS (terminated ones included, whose history \
                          keeps it); move them to another NAS first"
                            .into(),
                    current_state: None,
                    field: None,
                },
                lastmile_store::StoreError::NotFound { .. } => AppError::not_found("nas", id),
                other => other.into(),
            })
    }
}
