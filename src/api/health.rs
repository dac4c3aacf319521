//! `/health/live` and `/health/ready` (docs/wire-contract.md §3.8): for load balancers and
//! orchestrators.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::AppState;
use super::{
    ApiTags,
    errors::{ApiError, error_set},
    jsonapi::{JsonApi, resource_type},
};

/// The attributes of a health report.
#[derive(Debug, Object)]
pub struct HealthAttributes {
    /// `up` when the checked part works.
    pub status: String,
}

resource_type!(HealthType, Health, "health");

/// A health report resource.
#[derive(Debug, Object)]
pub struct HealthResource {
    /// Always `health`.
    #[oai(rename = "type")]
    pub ty: HealthType,
    /// What was checked: `live` or `ready`.
    pub id: String,
    pub attributes: HealthAttributes,
}

/// The document of a health report.
#[derive(Debug, Object)]
pub struct HealthDocument {
    pub data: HealthResource,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The checked part works.
    #[oai(status = 200)]
    Ok(JsonApi<HealthDocument>),
}

fn report(id: &str) -> HealthResponse {
    HealthResponse::Ok(JsonApi(HealthDocument {
        data: HealthResource {
            ty: HealthType::Health,
            id: id.into(),
            attributes: HealthAttributes { status: "up".into() },
        },
    }))
}

error_set!(
    /// Health checks only fail with the common errors (503 when the database is down).
    HealthErrors:
);

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: the process is up and answers HTTP.
    #[oai(path = "/health/live", method = "get", operation_id = "getHealthLive")]
    async fn live(&self) -> Result<HealthResponse, ApiError<HealthErrors>> {
        Ok(report("live"))
    }

    /// Readiness: the database answers; 503 when it does not.
    #[oai(path = "/health/ready", method = "get", operation_id = "getHealthReady")]
    async fn ready(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<HealthResponse, ApiError<HealthErrors>> {
        crate::service::health::ping(&state.db).await?;
        Ok(report("ready"))
    }
}
