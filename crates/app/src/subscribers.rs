use crate::retry::{optimistic, Attempt};
use crate::{input, App, AppError, AppResult};
use lastmile_api_types::{CreateSubscriber, UpdateSubscriber};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::ids::SubscriberId;
use lastmile_domain::service::ServiceStatus;
use lastmile_domain::subscriber::{BillingDay, Subscriber, SubscriberNumber, SubscriberStatus};
use lastmile_domain::validate::{self, Currency, ValidationErrors};
use lastmile_store::{Page, ServiceFilter, StoreError, SubscriberFilter};

type JsonMap = serde_json::Map<String, serde_json::Value>;

const MAX_CUSTOM_FIELDS: usize = 50;
const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;

fn custom_fields(m: &JsonMap, e: &mut ValidationErrors) {
    if m.len() > MAX_CUSTOM_FIELDS {
        e.add(
            "custom_fields",
            format!("at most {MAX_CUSTOM_FIELDS} fields"),
        );
    }
    if serde_json::to_vec(m).map(|v| v.len()).unwrap_or(0) > MAX_CUSTOM_FIELDS_BYTES {
        e.add("custom_fields", "at most 16 KiB of JSON");
    }
    // NUL cannot be stored in PostgreSQL text or jsonb; refuse it on every backend alike.
    if serde_json::to_string(m)
        .map(|j| j.contains("\\u0000"))
        .unwrap_or(false)
    {
        e.add("custom_fields", "must not contain NUL characters");
    }
    if m.keys().any(|k| k.is_empty() || k.len() > 64) {
        e.add("custom_fields", "keys must be 1 to 64 characters");
    }
}

impl App {
    pub async fn create_subscriber(
        &self,
        actor: &Actor,
        req: CreateSubscriber,
    ) -> AppResult<Subscriber> {
        let mut e = ValidationErrors::new();
        let number = match &req.number {
            Some(n) => e.check("number", SubscriberNumber::parse(n)),
            None => None,
        };
        let name = e.check("name", validate::non_empty(&req.name, 200));
        let email = match req.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(m) => e.check("email", validate::email(m)),
        };
        let phone = e
            .check("phone", validate::optional(req.phone.as_deref(), 40))
            .flatten();
        let billing_address = input::address(
            "billing_address",
            &req.billing_address.clone().unwrap_or_default(),
            &mut e,
        );
        let currency = e.check("currency", Currency::parse(&req.currency));
        let tax_zone = e
            .check("tax_zone", validate::optional(req.tax_zone.as_deref(), 40))
            .flatten();
        let dunning_policy = e
            .check(
                "dunning_policy",
                validate::optional(req.dunning_policy.as_deref(), 40),
            )
            .flatten();
        let billing_day = e.check("billing_day", BillingDay::new(req.billing_day.unwrap_or(1)));
        let custom = req.custom_fields.clone().unwrap_or_default();
        custom_fields(&custom, &mut e);
        let (Some(name), Some(currency), Some(billing_day), true) =
            (name, currency, billing_day, e.is_empty())
        else {
            return Err(e.into());
        };
        self.check_billing_codes(tax_zone.as_deref(), dunning_policy.as_deref())
            .await?;

        // An auto-assigned number can collide with one chosen by hand: the next number from
        // the sequence is tried then, like a lost race.
        let auto_number = number.is_none();
        optimistic("the subscriber numbers", || async {
            let now = self.clock.now();
            let number = match &number {
                Some(n) => n.clone(),
                None => {
                    let seq = self.store.next_counter("subscriber_number").await?;
                    SubscriberNumber::from_sequence(seq.unsigned_abs())
                }
            };
            let s = Subscriber {
                id: SubscriberId::generate(),
                number,
                name: name.clone(),
                email: email.clone(),
                phone: phone.clone(),
                billing_address: billing_address.clone(),
                currency: currency.clone(),
                tax_zone: tax_zone.clone(),
                dunning_policy: dunning_policy.clone(),
                billing_day,
                status: SubscriberStatus::Active,
                custom_fields: custom.clone(),
                created_at: now,
                updated_at: now,
                revision: 1,
            };
            let audit = AuditEvent::new::<(), _>(
                now,
                actor,
                Some(s.id),
                "subscriber",
                s.id,
                "subscriber.create",
                None,
                Some(&s),
            );
            match self.store.insert_subscriber(&s, &audit).await {
                Ok(()) => Ok(Attempt::Done(s)),
                Err(StoreError::Duplicate {
                    field: "number", ..
                }) if auto_number => Ok(Attempt::Retry),
                Err(err) => Err(err.into()),
            }
        })
        .await
    }

    pub async fn get_subscriber(&self, id: SubscriberId) -> AppResult<Subscriber> {
        self.store
            .get_subscriber(id)
            .await?
            .ok_or_else(|| AppError::not_found("subscriber", id))
    }

    /// Subscribers by status and search needle (`q`, trimmed: at least
    /// [`validate::MIN_SEARCH_CHARS`] characters, else 422 naming `q`).
    pub async fn list_subscribers(
        &self,
        filter: &SubscriberFilter,
        page: Page,
    ) -> AppResult<Vec<Subscriber>> {
        let q = match filter.q.as_deref() {
            Some(q) => Some(validate::search_term(q).map_err(|m| AppError::invalid("q", m))?),
            None => None,
        };
        let filter = SubscriberFilter {
            q,
            ..filter.clone()
        };
        Ok(self.store.list_subscribers(&filter, page).await?)
    }

    pub async fn update_subscriber(
        &self,
        actor: &Actor,
        id: SubscriberId,
        req: UpdateSubscriber,
    ) -> AppResult<Subscriber> {
        let before = self.get_subscriber(id).await?;
        if before.status == SubscriberStatus::Closed {
            return Err(AppError::invalid_state(
                "a closed subscriber cannot be changed",
                before.status,
            ));
        }
        let mut s = before.clone();
        let mut e = ValidationErrors::new();
        if let Some(n) = &req.number {
            if let Some(n) = e.check("number", SubscriberNumber::parse(n)) {
                s.number = n;
            }
        }
        if let Some(n) = &req.name {
            if let Some(n) = e.check("name", validate::non_empty(n, 200)) {
                s.name = n;
            }
        }
        if let Some(m) = &req.email {
            s.email = match m.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(m) => e.check("email", validate::email(m)),
            };
        }
        if let Some(p) = &req.phone {
            s.phone = e
                .check("phone", validate::optional(p.as_deref(), 40))
                .flatten();
        }
        if let Some(a) = &req.billing_address {
            s.billing_address = input::address("billing_address", a, &mut e);
        }
        if let Some(t) = &req.tax_zone {
            s.tax_zone = e
                .check("tax_zone", validate::optional(t.as_deref(), 40))
                .flatten();
        }
        if let Some(p) = &req.dunning_policy {
            s.dunning_policy = e
                .check("dunning_policy", validate::optional(p.as_deref(), 40))
                .flatten();
        }
        if let Some(d) = req.billing_day {
            if let Some(d) = e.check("billing_day", BillingDay::new(d)) {
                s.billing_day = d;
            }
        }
        if let Some(c) = &req.custom_fields {
            custom_fields(c, &mut e);
            s.custom_fields = c.clone();
        }
        e.into_result()?;
        if s == before {
            return Ok(before);
        }
        self.check_billing_codes(s.tax_zone.as_deref(), s.dunning_policy.as_deref())
            .await?;
        s.updated_at = self.clock.now();
        s.revision = before.revision + 1;
        let audit = AuditEvent::new(
            s.updated_at,
            actor,
            Some(id),
            "subscriber",
            id,
            "subscriber.update",
            Some(&before),
            Some(&s),
        );
        self.store
            .update_subscriber(&s, before.revision, &audit)
            .await?;
        Ok(s)
    }

    /// Closes an account. Every service must be terminated first: closing must never leave a
    /// subscriber online or billed without an account.
    pub async fn close_subscriber(
        &self,
        actor: &Actor,
        id: SubscriberId,
        reason: Option<String>,
    ) -> AppResult<Subscriber> {
        let reason = validate::optional(reason.as_deref(), 500)
            .map_err(|m| AppError::invalid("reason", m))?;
        let before = self.get_subscriber(id).await?;
        if before.status == SubscriberStatus::Closed {
            return Err(AppError::invalid_state(
                "the subscriber is already closed",
                before.status,
            ));
        }
        for status in [
            ServiceStatus::Pending,
            ServiceStatus::Active,
            ServiceStatus::Suspended,
        ] {
            let open = self
                .store
                .list_services(
                    &ServiceFilter {
                        subscriber_id: Some(id),
                        status: Some(status),
                        ..Default::default()
                    },
                    Page {
                        after: None,
                        limit: 1,
                    },
                )
                .await?;
            if !open.is_empty() {
                return Err(AppError::Conflict {
                    kind: "services-not-terminated",
                    message: format!(
                        "terminate the subscriber's services first (at least one is {status})"
                    ),
                    current_state: Some(before.status.to_string()),
                    field: None,
                });
            }
        }
        let mut s = before.clone();
        s.status = SubscriberStatus::Closed;
        s.updated_at = self.clock.now();
        s.revision += 1;
        let audit = AuditEvent::new(
            s.updated_at,
            actor,
            Some(id),
            "subscriber",
            id,
            "subscriber.close",
            Some(&before),
            Some(&s),
        )
        .with_reason(reason);
        // The store repeats the check in its transaction: a service created since the check
        // above refuses the close.
        match self
            .store
            .update_subscriber(&s, before.revision, &audit)
            .await
        {
            Ok(()) => Ok(s),
            Err(StoreError::InUse { .. }) => Err(AppError::Conflict {
                kind: "services-not-terminated",
                message: "terminate the subscriber's services first (one was just created)".into(),
                current_state: Some(before.status.to_string()),
                field: None,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// A subscriber's tax zone and dunning policy must exist: billing would fail on them.
    async fn check_billing_codes(
        &self,
        tax_zone: Option<&str>,
        dunning_policy: Option<&str>,
    ) -> AppResult<()> {
        let mut e = ValidationErrors::new();
        if let Some(z) = tax_zone {
            if !self
                .store
                .list_tax_zones()
                .await?
                .iter()
                .any(|t| t.code == z)
            {
                e.add(
                    "tax_zone",
                    format!("no tax zone `{z}` (see GET /api/v1/tax-zones)"),
                );
            }
        }
        if let Some(p) = dunning_policy {
            if !self
                .store
                .list_dunning_policies()
                .await?
                .iter()
                .any(|d| d.code == p)
            {
                e.add(
                    "dunning_policy",
                    format!("no dunning policy `{p}` (see GET /api/v1/dunning-policies)"),
                );
            }
        }
        Ok(e.into_result()?)
    }
}
