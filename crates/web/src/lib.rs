//! The HTTP face of MarketOps: the JSON API under `/api/v1` (with its OpenAPI document),
//! the server-rendered UI, authentication, CSRF protection, i18n and metrics.
//!
//! Handlers stay thin: load what is needed, let `domain` decide, persist through `store`.

pub mod api;
pub mod auth;
pub mod csrf;
pub mod error;
pub mod i18n;
pub mod metrics;
pub mod password;
pub mod rules;
pub mod sheets;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use jiff::Timestamp;
use std::sync::Arc;
use store::Db;
use store::auth::{SessionPolicy, ThrottlePolicy};

/// The instant "now" comes from. Production reads the system clock; tests move time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// Everything configurable about the web layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The origin browsers use to reach us (`https://mkt.example.com`). When unset, the
    /// request's own `Host` is trusted as the origin for the CSRF check.
    pub public_origin: Option<String>,
    /// Mark cookies `Secure` (on behind HTTPS; off for plain-HTTP local use).
    pub secure_cookies: bool,
    pub session: SessionPolicy,
    pub throttle: ThrottlePolicy,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    pub password: password::Params,
    /// Submissions of public lead forms one address may make per hour (spam limit).
    pub form_per_hour: i64,
    /// See `dashboard_refresh_ms` in the configuration.
    pub dashboard_refresh_ms: u64,
    /// See `capture_timeout_ms` in the configuration.
    pub capture_timeout: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_origin: None,
            secure_cookies: false,
            session: SessionPolicy::default(),
            throttle: ThrottlePolicy::default(),
            body_limit: 1024 * 1024,
            password: password::Params::default(),
            form_per_hour: 10,
            dashboard_refresh_ms: 250,
            capture_timeout: std::time::Duration::from_secs(30),
        }
    }
}

pub struct Inner {
    pub db: Db,
    pub settings: Settings,
    pub clock: Clock,
    pub metrics: metrics::Metrics,
    /// The active playbook and calendar, parsed once per change.
    pub rules: store::rules::Cache,
    /// L-1: the capture writer (group commit).
    pub captures: store::capture::Queue,
    /// C-2: recent RFM scorings, reused until an order arrives or the playbook changes.
    pub rfm: api::customers::RfmCache,
    /// C-3: recent lifetime-value fits, reused the same way.
    pub clv: api::clv::ClvCache,
    /// C-3: recent historical-value reports, reused the same way.
    pub ltv: api::clv::LtvCache,
    /// C-5: recent funnels, reused until an event arrives.
    pub funnels: api::funnel::FunnelCache,
    /// C-7: the dashboard's customer sections (segments and moves, lifetime value), reused
    /// until an order or customer arrives or the playbook changes.
    pub dashboard: api::dashboard::CustomerSectionsCache,
    /// Whether the dashboard's customer sections are being computed again beside.
    pub dashboard_refreshing: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(db: Db, settings: Settings, clock: Clock) -> AppState {
        let captures = store::capture::Queue::start(db.clone(), settings.capture_timeout);
        let rules = store::rules::Cache::default();
        AppState(Arc::new(Inner {
            db,
            settings,
            clock,
            metrics: metrics::Metrics::default(),
            rules,
            captures,
            rfm: Default::default(),
            clv: Default::default(),
            ltv: Default::default(),
            funnels: Default::default(),
            dashboard: Default::default(),
            dashboard_refreshing: Default::default(),
        }))
    }

    pub fn now(&self) -> store::Ts {
        store::Ts::new((self.clock)())
    }
}

/// The whole application: UI, API, health and metrics, with the cross-cutting layers.
pub fn router(state: AppState) -> Router {
    let (api_router, _) = api::router().split_for_parts();
    let body_limit = state.settings.body_limit;
    Router::new()
        .merge(ui::router())
        .merge(api_router)
        .merge(api::health_router())
        .fallback(ui::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::guard))
        .layer(axum::middleware::from_fn(ui::security_headers))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), refuse_oversized))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Refuses a body whose declared length is over the limit before reading any of it (the
/// streaming limit above catches bodies without a length).
async fn refuse_oversized(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.settings.body_limit as u64) {
        return error::ApiError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}

/// The OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().split_for_parts().1
}
