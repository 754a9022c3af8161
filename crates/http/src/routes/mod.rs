mod audit;
mod billing;
mod jobs;
mod money;
mod nas;
mod plans;
mod services;
mod sessions;
mod subscribers;

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(subscribers::router())
        .merge(plans::router())
        .merge(nas::router())
        .merge(services::router())
        .merge(sessions::router())
        .merge(jobs::router())
        .merge(audit::router())
        .merge(billing::router())
        .merge(money::router())
}
