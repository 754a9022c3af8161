use crate::{input, App, AppError, AppResult};
use lastmile_api_types::{CreatePlan, CreatePlanVersion, UpdatePlan};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::ids::{PlanId, PlanVersionId};
use lastmile_domain::plan::{self, Plan, PlanStatus, PlanVersion};
use lastmile_domain::validate::{self, ValidationErrors};
use lastmile_store::{Page, PlanFilter};

impl App {
    pub async fn create_plan(&self, actor: &Actor, req: CreatePlan) -> AppResult<Plan> {
        let mut e = ValidationErrors::new();
        let code = e.check("code", plan::plan_code(&req.code));
        let name = e.check("name", validate::non_empty(&req.name, 100));
        let terms = match input::plan_terms(&req.terms) {
            Ok(t) => Some(t),
            Err(te) => {
                e.0.extend(te.0);
                None
            }
        };
        let (Some(code), Some(name), Some(terms), true) = (code, name, terms, e.is_empty()) else {
            return Err(e.into());
        };
        let now = self.clock.now();
        let id = PlanId::generate();
        let p = Plan {
            id,
            code,
            name,
            status: PlanStatus::Active,
            created_at: now,
            updated_at: now,
            revision: 1,
            current: PlanVersion {
                id: PlanVersionId::generate(),
                plan_id: id,
                version: 1,
                terms,
                created_at: now,
            },
        };
        let audit =
            AuditEvent::new::<(), _>(now, actor, None, "plan", id, "plan.create", None, Some(&p));
        self.store.insert_plan(&p, &audit).await?;
        Ok(p)
    }

    pub async fn get_plan(&self, id: PlanId) -> AppResult<Plan> {
        self.store
            .get_plan(id)
            .await?
            .ok_or_else(|| AppError::not_found("plan", id))
    }

    pub async fn list_plans(&self, filter: &PlanFilter, page: Page) -> AppResult<Vec<Plan>> {
        Ok(self.store.list_plans(filter, page).await?)
    }

    pub async fn list_plan_versions(&self, id: PlanId) -> AppResult<Vec<PlanVersion>> {
        self.get_plan(id).await?;
        Ok(self.store.list_plan_versions(id).await?)
    }

    pub async fn rename_plan(&self, actor: &Actor, id: PlanId, req: UpdatePlan) -> AppResult<Plan> {
        let name = validate::non_empty(&req.name, 100).map_err(|m| AppError::invalid("name", m))?;
        let before = self.get_plan(id).await?;
        if before.name == name {
            return Ok(before);
        }
        let mut p = before.clone();
        p.name = name;
        self.save_plan(actor, before, p, "plan.update", None).await
    }

    /// A new version with new terms: new services and plan changes get it, existing services
    /// keep the version they have until moved.
    pub async fn create_plan_version(
        &self,
        actor: &Actor,
        id: PlanId,
        req: CreatePlanVersion,
    ) -> AppResult<Plan> {
        let terms = input::plan_terms(&req.terms)?;
        let before = self.get_plan(id).await?;
        if before.status == PlanStatus::Retired {
            return Err(AppError::invalid_state(
                "a retired plan gets no new versions",
                before.status.as_str(),
            ));
        }
        if terms == before.current.terms {
            return Err(AppError::invalid(
                "terms",
                "identical to the current version; nothing to version",
            ));
        }
        let mut p = before.clone();
        p.current = PlanVersion {
            id: PlanVersionId::generate(),
            plan_id: id,
            version: before.current.version + 1,
            terms,
            created_at: self.clock.now(),
        };
        self.save_plan(actor, before, p, "plan.version", None).await
    }

    /// Stops selling a plan. Services on it keep it.
    pub async fn retire_plan(
        &self,
        actor: &Actor,
        id: PlanId,
        reason: Option<String>,
    ) -> AppResult<Plan> {
        let reason = validate::optional(reason.as_deref(), 500)
            .map_err(|m| AppError::invalid("reason", m))?;
        let before = self.get_plan(id).await?;
        if before.status == PlanStatus::Retired {
            return Err(AppError::invalid_state(
                "the plan is already retired",
                before.status.as_str(),
            ));
        }
        let mut p = before.clone();
        p.status = PlanStatus::Retired;
        self.save_plan(actor, before, p, "plan.retire", reason)
            .await
    }

    async fn save_plan(
        &self,
        actor: &Actor,
        before: Plan,
        mut p: Plan,
        action: &str,
        reason: Option<String>,
    ) -> AppResult<Plan> {
        p.updated_at = self.clock.now();
        p.revision = before.revision + 1;
        let audit = AuditEvent::new(
            p.updated_at,
            actor,
            None,
            "plan",
            p.id,
            action,
            Some(&before),
            Some(&p),
        )
        .with_reason(reason);
        self.store.update_plan(&p, before.revision, &audit).await?;
        Ok(p)
    }
}
