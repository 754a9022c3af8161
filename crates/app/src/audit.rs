use crate::{App, AppResult};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::auth::{Operator, Role};
use lastmile_domain::ids::{OperatorId, TokenId};
use lastmile_domain::validate;
use lastmile_store::{ApiToken, AuditFilter, Page};

impl App {
    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        page: Page,
    ) -> AppResult<Vec<AuditEvent>> {
        Ok(self.store.list_audit_events(filter, page).await?)
    }

    /// Creates an operator with one API token; returns the token (shown once).
    pub async fn create_operator(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
    ) -> AppResult<(Operator, String)> {
        let name =
            validate::non_empty(name, 100).map_err(|m| crate::AppError::invalid("name", m))?;
        let now = self.clock.now();
        let op = Operator {
            id: OperatorId::generate(),
            name,
            role,
            created_at: now,
        };
        let secret = crate::tokens::generate().map_err(crate::AppError::Internal)?;
        let token = ApiToken {
            id: TokenId::generate(),
            operator_id: op.id,
            token_hash: crate::tokens::hash(&secret),
            created_at: now,
            revoked_at: None,
        };
        let audit = AuditEvent::new::<(), _>(
            now,
            actor,
            None,
            "operator",
            op.id,
            "operator.create",
            None,
            Some(&op),
        );
        self.store.insert_operator(&op, &token, &audit).await?;
        Ok((op, secret))
    }

    /// The operator a bearer token belongs to, if it is live.
    pub async fn authenticate(&self, bearer: &str) -> AppResult<Option<Operator>> {
        if !bearer.starts_with(crate::tokens::PREFIX) {
            return Ok(None);
        }
        Ok(self
            .store
            .find_token(&crate::tokens::hash(bearer))
            .await?
            .map(|(_, op)| op))
    }
}
