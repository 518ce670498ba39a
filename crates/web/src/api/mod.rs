//! The JSON API under `/api/v1`, documented by an OpenAPI 3.1 document generated from the
//! handlers (`/api/openapi.json`).

pub(crate) mod audit;
pub(crate) mod automation;
pub(crate) mod calendar;
mod campaigns;
pub(crate) mod clv;
mod company;
pub(crate) mod customers;
pub(crate) mod dashboard;
pub(crate) mod deals;
pub(crate) mod experiments;
pub(crate) mod funnel;
mod health;
pub(crate) mod leads;
pub(crate) mod org;
mod playbook;
pub(crate) mod referrals;
pub(crate) mod reports;
pub(crate) mod sla;
mod subscriptions;
pub(crate) mod tokens;

pub use health::health_router;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use domain::Fields;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MarketOps API",
        description = "The marketing management system's JSON API. Authenticate with `Authorization: Bearer <token>` \
                       (create tokens under Account in the UI, or `marketops user token`). Errors have the shape \
                       `{\"error\": {\"code\", \"message\", \"fields\"}}`; bad input is 422 with a message per field."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "me", description = "The calling account"),
        (name = "company", description = "Company profile (O-1)"),
        (name = "org", description = "Departments, teams and accounts (O-2)"),
        (name = "playbook", description = "The versioned playbook (P-1, E-3)"),
        (name = "calendar", description = "Working calendar (O-1)"),
        (name = "audit", description = "Audit log (P-3)"),
        (name = "tokens", description = "API tokens of the calling account"),
        (name = "leads", description = "Lead capture, grading and routing (L-1…L-4)"),
        (name = "campaigns", description = "Campaigns and their cost ledger (L-1, L-9)"),
        (name = "notifications", description = "In-app notifications of the calling account (L-5)"),
        (name = "webhooks", description = "Outbound webhooks: generic JSON, WeCom, DingTalk, Feishu (L-5)"),
        (name = "reports", description = "Reports"),
        (name = "deals", description = "Deals from converted leads (L-8)"),
        (name = "automation", description = "Automation rules, lead signals and tasks (L-10)"),
        (name = "customers", description = "Customers, orders, RFM, lifetime value and the funnel (C-1, C-2, C-3, C-5)"),
        (name = "experiments", description = "Experiments: variants by hash, conversions, tests and recommendations (C-6)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(tokens::me))
        .routes(routes!(company::get_company, company::put_company, company::patch_company))
        .routes(routes!(org::list_departments, org::create_department))
        .routes(routes!(org::get_department, org::update_department, org::delete_department))
        .routes(routes!(org::list_teams, org::create_team))
        .routes(routes!(org::get_team, org::update_team, org::delete_team))
        .routes(routes!(org::list_users, org::create_user))
        .routes(routes!(org::get_user, org::update_user, org::delete_user))
        .routes(routes!(org::set_user_password))
        .routes(routes!(org::set_user_availability))
        .routes(routes!(playbook::get_playbook, playbook::create_version))
        .routes(routes!(playbook::check_playbook))
        .routes(routes!(playbook::list_versions))
        .routes(routes!(playbook::get_version))
        .routes(routes!(playbook::diff_versions))
        .routes(routes!(calendar::list_days))
        .routes(routes!(calendar::put_day, calendar::delete_day))
        .routes(routes!(calendar::load_shipped))
        .routes(routes!(calendar::due))
        .routes(routes!(audit::list_audit))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(leads::capture_lead, leads::list_leads))
        .routes(routes!(leads::get_lead))
        .routes(routes!(leads::regrade_preview, leads::regrade))
        .routes(routes!(leads::duplicates))
        .routes(routes!(leads::merge))
        .routes(routes!(leads::not_duplicate))
        .routes(routes!(leads::set_lead_answers))
        .routes(routes!(campaigns::list_campaigns, campaigns::create_campaign))
        .routes(routes!(campaigns::get_campaign, campaigns::update_campaign))
        .routes(routes!(campaigns::add_campaign_spend))
        .routes(routes!(sla::add_activity, sla::list_activities))
        .routes(routes!(sla::list_notifications))
        .routes(routes!(sla::mark_read))
        .routes(routes!(sla::list_webhooks, sla::create_webhook))
        .routes(routes!(sla::delete_webhook))
        .routes(routes!(sla::list_deliveries))
        .routes(routes!(sla::sla_report))
        .routes(routes!(deals::reassign_lead))
        .routes(routes!(deals::accept_lead))
        .routes(routes!(deals::reject_lead))
        .routes(routes!(deals::add_touch, deals::list_touches))
        .routes(routes!(deals::convert_lead))
        .routes(routes!(deals::list_deals))
        .routes(routes!(deals::get_deal))
        .routes(routes!(deals::set_deal_stage))
        .routes(routes!(reports::channel_report))
        .routes(routes!(reports::lead_quality))
        .routes(routes!(automation::list_rules, automation::create_rule))
        .routes(routes!(automation::set_rule_enabled))
        .routes(routes!(automation::delete_rule))
        .routes(routes!(automation::lead_runs))
        .routes(routes!(automation::add_signal))
        .routes(routes!(automation::my_tasks))
        .routes(routes!(automation::task_done))
        .routes(routes!(customers::add_orders))
        .routes(routes!(subscriptions::add_subscriptions))
        .routes(routes!(customers::list_customers))
        .routes(routes!(customers::get_customer))
        .routes(routes!(customers::rfm))
        .routes(routes!(clv::clv))
        .routes(routes!(clv::ltv))
        .routes(routes!(dashboard::dashboard))
        .routes(routes!(referrals::code))
        .routes(routes!(referrals::refer))
        .routes(routes!(referrals::payout))
        .routes(routes!(referrals::referral_report))
        .routes(routes!(experiments::list, experiments::create))
        .routes(routes!(experiments::plan))
        .routes(routes!(experiments::get))
        .routes(routes!(experiments::start))
        .routes(routes!(experiments::stop))
        .routes(routes!(experiments::assign))
        .routes(routes!(experiments::convert))
        .routes(routes!(funnel::add_events))
        .routes(routes!(funnel::funnel));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .route("/api/openapi.json", axum::routing::get(openapi_json))
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(crate::openapi())
}

/// A JSON object body, as [`Fields`] so that each field's type is checked by the parser
/// that needs it and every problem is reported under its field name.
pub struct JsonBody(pub Fields);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::field("body", e.body_text())
            }
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::field("body", format!("is not valid JSON: {e}")))?;
        Ok(JsonBody(Fields::from_json(value)?))
    }
}

/// A path parameter whose parse failure is a JSON 422 naming it, like every other input.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::field("path", e.body_text()))
    }
}

/// Timestamps in API bodies are RFC 3339 in UTC with microseconds.
fn ts(t: store::Ts) -> String {
    t.to_text()
}
