//! RADIUS sessions, read for support and the NOC.

use crate::{App, AppError, AppResult};
use lastmile_domain::ids::{ServiceId, SessionId};
use lastmile_domain::radius::RadiusSession;
use lastmile_store::radius::SessionFilter;
use lastmile_store::Page;

impl App {
    pub async fn get_session(&self, id: SessionId) -> AppResult<RadiusSession> {
        self.store
            .get_session(id)
            .await?
            .ok_or_else(|| AppError::not_found("session", id))
    }

    pub async fn list_sessions(
        &self,
        filter: &SessionFilter,
        page: Page,
    ) -> AppResult<Vec<RadiusSession>> {
        Ok(self.store.list_sessions(filter, page).await?)
    }

    /// The sessions of a service that exists (404 otherwise, not an empty list).
    pub async fn service_sessions(
        &self,
        id: ServiceId,
        mut filter: SessionFilter,
        page: Page,
    ) -> AppResult<Vec<RadiusSession>> {
        self.get_service(id).await?;
        filter.service_id = Some(id);
        self.list_sessions(&filter, page).await
    }
}
