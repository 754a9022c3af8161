//! Billing configuration as data: tax zones, dunning policies and discounts.

use crate::{App, AppError, AppResult};
use lastmile_api_types::{CreateDiscount, DunningPolicyBody, EndDiscount, TaxZoneBody};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::billing::discount::{self, Discount};
use lastmile_domain::billing::dunning::{validate_steps, DunningPolicy};
use lastmile_domain::billing::tax::TaxZone;
use lastmile_domain::ids::{DiscountId, DunningPolicyId, ServiceId, SubscriberId, TaxZoneId};
use lastmile_domain::validate::{self, ValidationErrors};

/// Codes are short identifiers that subscribers refer to: `de`, `ca-qc`, `standard`.
fn code(s: &str) -> Result<String, String> {
    let c = s.trim();
    if c.is_empty() || c.len() > 40 {
        return Err("must be 1 to 40 characters".into());
    }
    if !c
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(c.to_string())
}

fn zone_fields(req: &TaxZoneBody) -> Result<(String, String), AppError> {
    let mut e = ValidationErrors::new();
    let c = e.check("code", code(&req.code));
    let name = e.check("name", validate::non_empty(&req.name, 100));
    if let Err(te) = TaxZone::validate_taxes(&req.taxes) {
        e.0.extend(te.0);
    }
    match (c, name, e.is_empty()) {
        (Some(c), Some(n), true) => Ok((c, n)),
        _ => Err(AppError::Validation(e)),
    }
}

fn policy_fields(req: &DunningPolicyBody) -> Result<(String, String), AppError> {
    let mut e = ValidationErrors::new();
    let c = e.check("code", code(&req.code));
    let name = e.check("name", validate::non_empty(&req.name, 100));
    if let Err(se) = validate_steps(&req.steps) {
        e.0.extend(se.0);
    }
    match (c, name, e.is_empty()) {
        (Some(c), Some(n), true) => Ok((c, n)),
        _ => Err(AppError::Validation(e)),
    }
}

impl App {
    pub async fn create_tax_zone(&self, actor: &Actor, req: TaxZoneBody) -> AppResult<TaxZone> {
        let (code, name) = zone_fields(&req)?;
        let now = self.clock.now();
        let z = TaxZone {
            id: TaxZoneId::generate(),
            code,
            name,
            prices_include_tax: req.prices_include_tax,
            taxes: req.taxes,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let audit = AuditEvent::new::<(), _>(
            now,
            actor,
            None,
            "tax_zone",
            z.id,
            "tax_zone.create",
            None,
            Some(&z),
        );
        self.store.insert_tax_zone(&z, &audit).await?;
        Ok(z)
    }

    /// Replaces a zone's definition. Invoices already issued keep the tax they were issued
    /// with; corrections and new periods use the new rates.
    pub async fn update_tax_zone(
        &self,
        actor: &Actor,
        id: TaxZoneId,
        req: TaxZoneBody,
    ) -> AppResult<TaxZone> {
        let (code, name) = zone_fields(&req)?;
        let before = self.get_tax_zone(id).await?;
        if code != before.code {
            // Subscribers refer to the zone by its code.
            return Err(AppError::invalid(
                "code",
                "a tax zone's code cannot change; create a new zone and move subscribers",
            ));
        }
        let mut z = before.clone();
        z.code = code;
        z.name = name;
        z.prices_include_tax = req.prices_include_tax;
        z.taxes = req.taxes;
        z.updated_at = self.clock.now();
        z.revision = before.revision + 1;
        let audit = AuditEvent::new(
            z.updated_at,
            actor,
            None,
            "tax_zone",
            id,
            "tax_zone.update",
            Some(&before),
            Some(&z),
        );
        self.store
            .update_tax_zone(&z, before.revision, &audit)
            .await?;
        Ok(z)
    }

    pub async fn get_tax_zone(&self, id: TaxZoneId) -> AppResult<TaxZone> {
        self.store
            .get_tax_zone(id)
            .await?
            .ok_or_else(|| AppError::not_found("tax zone", id))
    }

    pub async fn list_tax_zones(&self) -> AppResult<Vec<TaxZone>> {
        Ok(self.store.list_tax_zones().await?)
    }

    pub async fn create_dunning_policy(
        &self,
        actor: &Actor,
        req: DunningPolicyBody,
    ) -> AppResult<DunningPolicy> {
        let (code, name) = policy_fields(&req)?;
        let now = self.clock.now();
        let p = DunningPolicy {
            id: DunningPolicyId::generate(),
            code,
            name,
            steps: req.steps,
            bill_suspended_days: req.bill_suspended_days,
            is_default: req.is_default,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let audit = AuditEvent::new::<(), _>(
            now,
            actor,
            None,
            "dunning_policy",
            p.id,
            "dunning_policy.create",
            None,
            Some(&p),
        );
        self.store.insert_dunning_policy(&p, &audit).await?;
        Ok(p)
    }

    pub async fn update_dunning_policy(
        &self,
        actor: &Actor,
        id: DunningPolicyId,
        req: DunningPolicyBody,
    ) -> AppResult<DunningPolicy> {
        let (code, name) = policy_fields(&req)?;
        let before = self.get_dunning_policy(id).await?;
        if code != before.code {
            // Subscribers refer to the policy by its code.
            return Err(AppError::invalid(
                "code",
                "a dunning policy's code cannot change; create a new policy and move subscribers",
            ));
        }
        let mut p = before.clone();
        p.code = code;
        p.name = name;
        p.steps = req.steps;
        p.bill_suspended_days = req.bill_suspended_days;
        p.is_default = req.is_default;
        p.updated_at = self.clock.now();
        p.revision = before.revision + 1;
        let audit = AuditEvent::new(
            p.updated_at,
            actor,
            None,
            "dunning_policy",
            id,
            "dunning_policy.update",
            Some(&before),
            Some(&p),
        );
        self.store
            .update_dunning_policy(&p, before.revision, &audit)
            .await?;
        Ok(p)
    }

    pub async fn get_dunning_policy(&self, id: DunningPolicyId) -> AppResult<DunningPolicy> {
        self.store
            .get_dunning_policy(id)
            .await?
            .ok_or_else(|| AppError::not_found("dunning policy", id))
    }

    pub async fn list_dunning_policies(&self) -> AppResult<Vec<DunningPolicy>> {
        Ok(self.store.list_dunning_policies().await?)
    }

    pub async fn create_discount(
        &self,
        actor: &Actor,
        sub: SubscriberId,
        req: CreateDiscount,
    ) -> AppResult<Discount> {
        self.get_subscriber(sub).await?;
        discount::validate_terms(&req.value, req.starts_on, req.ends_on, &req.description)
            .map_err(AppError::Validation)?;
        if let Some(svc) = req.service_id {
            let s = self
                .store
                .get_service(ServiceId(svc))
                .await?
                .ok_or_else(|| AppError::invalid("service_id", "no such service"))?;
            if s.subscriber_id != sub {
                return Err(AppError::invalid(
                    "service_id",
                    "the service belongs to another subscriber",
                ));
            }
        }
        let now = self.clock.now();
        let d = Discount {
            id: DiscountId::generate(),
            subscriber_id: sub,
            service_id: req.service_id.map(ServiceId),
            value: req.value,
            starts_on: req.starts_on,
            ends_on: req.ends_on,
            description: req.description.trim().to_string(),
            created_at: now,
        };
        let audit = AuditEvent::new::<(), _>(
            now,
            actor,
            Some(sub),
            "discount",
            d.id,
            "discount.create",
            None,
            Some(&d),
        );
        self.store.insert_discount(&d, &audit).await?;
        Ok(d)
    }

    /// Ends a discount (back-dating allowed: the next run corrects what was over-discounted).
    pub async fn end_discount(
        &self,
        actor: &Actor,
        id: DiscountId,
        req: EndDiscount,
    ) -> AppResult<Discount> {
        validate::date_in_range(req.ends_on).map_err(|m| AppError::invalid("ends_on", m))?;
        let before = self.get_discount(id).await?;
        if req.ends_on <= before.starts_on {
            return Err(AppError::invalid(
                "ends_on",
                "must be after the discount's first day",
            ));
        }
        let mut after = before.clone();
        after.ends_on = Some(req.ends_on);
        let audit = AuditEvent::new(
            self.clock.now(),
            actor,
            Some(before.subscriber_id),
            "discount",
            id,
            "discount.end",
            Some(&before),
            Some(&after),
        );
        self.store.end_discount(id, req.ends_on, &audit).await?;
        Ok(after)
    }

    pub async fn get_discount(&self, id: DiscountId) -> AppResult<Discount> {
        self.store
            .get_discount(id)
            .await?
            .ok_or_else(|| AppError::not_found("discount", id))
    }

    pub async fn list_discounts(&self, sub: SubscriberId) -> AppResult<Vec<Discount>> {
        self.get_subscriber(sub).await?;
        Ok(self.store.list_discounts(sub).await?)
    }
}
