//! The server-rendered UI: askama templates, plain forms (Post/Redirect/Get), htmx where a
//! partial update helps. Every visible string comes from the fluent files.

/// The current account if it may do `$action`; otherwise the handler returns the login
/// redirect or the 403 page.
macro_rules! allowed {
    ($ctx:expr, $action:expr) => {
        match $ctx.allowed($action) {
            Ok(u) => u.clone(),
            Err(r) => return r,
        }
    };
}

mod account;
mod audit;
mod automation;
mod calendar;
mod campaigns;
mod company;
mod customers;
mod dashboard;
mod deals;
mod experiments;
mod form;
pub(crate) mod import;
mod leads;
mod org;
mod playbook;
mod referrals;
mod reports;
mod sheet_import;
mod sla;

use crate::auth::{CurrentUser, LANG_COOKIE, cookie, from_session};
use crate::i18n::{I18n, Lang};
use crate::{AppState, error::ApiError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::role::Action;
use domain::{FieldErrors, Fields};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(account::login_page).post(account::login_submit))
        .route("/logout", post(account::logout))
        .route("/lang", post(account::set_lang))
        .route("/account", get(account::account_page))
        .route("/account/password", post(account::change_password))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/company", get(company::page).post(company::submit))
        .route("/org", get(org::overview))
        .route("/org/departments/new", get(org::new_department))
        .route("/org/departments", post(org::create_department))
        .route("/org/departments/{id}", get(org::edit_department).post(org::update_department))
        .route("/org/departments/{id}/delete", post(org::delete_department))
        .route("/org/teams/new", get(org::new_team))
        .route("/org/teams", post(org::create_team))
        .route("/org/teams/{id}", get(org::edit_team).post(org::update_team))
        .route("/org/teams/{id}/delete", post(org::delete_team))
        .route("/org/users/new", get(org::new_user))
        .route("/org/users", post(org::create_user))
        .route("/org/users/{id}", get(org::edit_user).post(org::update_user))
        .route("/org/users/{id}/delete", post(org::delete_user))
        .route("/org/users/{id}/availability", post(org::set_availability))
        .route("/playbook", get(playbook::page).post(playbook::save))
        .route("/playbook/edit", get(playbook::edit))
        .route("/playbook/check", post(playbook::check))
        .route("/playbook/regrade", post(playbook::regrade))
        .route("/playbook/history", get(playbook::history))
        .route("/playbook/versions/{version}", get(playbook::version_page))
        .route("/playbook/diff", get(playbook::diff_page))
        .route("/calendar", get(calendar::page))
        .route("/calendar/days", post(calendar::save_day))
        .route("/calendar/days/{date}/delete", post(calendar::delete_day))
        .route("/calendar/load", post(calendar::load_shipped))
        .route("/calendar/due", post(calendar::due))
        .route("/audit", get(audit::page))
        .route("/leads", get(leads::list).post(leads::create))
        .route("/leads/new", get(leads::new))
        .route(
            "/leads/import",
            get(import::upload_page)
                .post(import::upload)
                .layer(axum::extract::DefaultBodyLimit::max(import::MAX_UPLOAD)),
        )
        .route("/leads/import/{token}", get(import::map_form).post(import::map_submit))
        .route("/leads/export/{format}", get(import::export))
        .route("/leads/{id}", get(leads::show))
        .route("/leads/{id}/answers", post(leads::save_answers))
        .route("/leads/{id}/merge/{other}", post(leads::merge))
        .route("/leads/{id}/not-duplicate/{other}", post(leads::not_duplicate))
        .route("/customers", get(customers::list))
        .route(
            "/customers/import",
            get(sheet_import::orders_page)
                .post(sheet_import::orders_upload)
                .layer(axum::extract::DefaultBodyLimit::max(import::MAX_UPLOAD)),
        )
        .route(
            "/reports/funnel/import",
            get(sheet_import::events_page)
                .post(sheet_import::events_upload)
                .layer(axum::extract::DefaultBodyLimit::max(import::MAX_UPLOAD)),
        )
        .route("/customers/{id}", get(customers::show))
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::show))
        .route("/campaigns/{id}/spend", post(campaigns::add_spend))
        .route("/leads/{id}/activities", post(sla::add_activity))
        .route("/leads/{id}/accept", post(deals::accept))
        .route("/leads/{id}/reject", post(deals::reject))
        .route("/leads/{id}/reassign", post(deals::reassign))
        .route("/leads/{id}/touches", post(deals::touch))
        .route("/leads/{id}/convert", post(deals::convert))
        .route("/deals", get(deals::list))
        .route("/deals/{id}/stage", post(deals::stage))
        .route("/notifications", get(sla::notifications))
        .route("/notifications/read", post(sla::mark_read))
        .route("/settings/webhooks", get(sla::webhooks).post(sla::create_webhook))
        .route("/settings/webhooks/{id}/delete", post(sla::delete_webhook))
        .route("/reports/sla", get(sla::report))
        .route("/reports/channels", get(reports::page))
        .route("/reports/funnel", get(customers::funnel))
        .route("/reports/clv", get(customers::clv))
        .route("/dashboard", get(dashboard::show))
        .route("/reports/referrals", get(referrals::show).post(referrals::refer))
        .route("/customers/{id}/referral-code", post(referrals::create_code))
        .route("/reports/referrals/{id}/pay", post(referrals::pay))
        .route("/dashboard/export/{section}", get(dashboard::export))
        .route("/experiments", get(experiments::list).post(experiments::create))
        .route("/experiments/{key}", get(experiments::show))
        .route("/experiments/{key}/{to}", post(experiments::status))
        .route("/reports/clv/export", get(customers::clv_export))
        .route("/reports/channels.csv", get(reports::csv))
        .route("/reports/lead-quality", get(reports::quality))
        .route("/automation", get(automation::page))
        .route("/automation/rules", post(automation::create))
        .route("/automation/rules/{id}/enabled", post(automation::toggle))
        .route("/automation/rules/{id}/delete", post(automation::delete))
        .route("/tasks", get(automation::tasks))
        .route("/tasks/{id}/done", post(automation::task_done))
        .route("/leads/{id}/signals", post(automation::signal))
        .route("/f/{id}", get(form::show).post(form::submit))
        .route("/static/{file}", get(static_file))
}

/// Per-request view context: language, the logged-in account (if any) and where we are.
#[derive(Clone)]
pub struct Ctx {
    pub i18n: I18n,
    pub user: Option<CurrentUser>,
    pub path: String,
    pub flash: Option<String>,
    /// Unread notifications of the account, for the badge in the header.
    pub unread: i64,
}

// The error side is a ready-made page (axum's `Response`): built at most once per request,
// so its size does not matter and boxing it would only add noise to every handler.
#[allow(clippy::result_large_err)]
impl Ctx {
    pub fn t(&self, key: &str) -> String {
        self.i18n.t(key)
    }

    pub fn lang(&self) -> &'static str {
        self.i18n.code()
    }

    /// Whether the current account may do a named action (for showing links and buttons).
    pub fn can(&self, action: &str) -> bool {
        let a = match action {
            "edit_company" => Action::EditCompany,
            "edit_org" => Action::EditOrg,
            "manage_users" => Action::ManageUsers,
            "edit_playbook" => Action::EditPlaybook,
            "edit_calendar" => Action::EditCalendar,
            "view_audit" => Action::ViewAudit,
            "capture_leads" => Action::CaptureLeads,
            "edit_leads" => Action::EditLeads,
            "manage_campaigns" => Action::ManageCampaigns,
            "manage_experiments" => Action::ManageExperiments,
            "manage_orders" => Action::ManageOrders,
            "pay_rewards" => Action::PayRewards,
            "manage_integrations" => Action::ManageIntegrations,
            _ => return false,
        };
        self.user.as_ref().is_some_and(|u| u.can(a))
    }

    pub fn user_name(&self) -> String {
        self.user.as_ref().map(|u| u.user.display_name.clone()).unwrap_or_default()
    }

    pub fn role_label(&self) -> String {
        self.user.as_ref().map(|u| self.i18n.code_label("role", &u.user.role)).unwrap_or_default()
    }

    /// `aria-current="page"` for the nav entry of the current section.
    pub fn current(&self, prefix: &str) -> &'static str {
        let here = if prefix == "/" { self.path == "/" } else { self.path.starts_with(prefix) };
        if here { "page" } else { "false" }
    }

    pub fn is_lang(&self, code: &str) -> bool {
        self.i18n.code() == code
    }

    fn require_user(&self) -> Result<&CurrentUser, Response> {
        self.user.as_ref().ok_or_else(|| Redirect::to(&login_url(&self.path)).into_response())
    }

    /// The logged-in account, or a redirect to the login page.
    pub fn user(&self) -> Result<&CurrentUser, Response> {
        self.require_user()
    }

    /// Like [`Ctx::user`], and also a 403 page unless the account may do `action`.
    pub fn allowed(&self, action: Action) -> Result<&CurrentUser, Response> {
        let u = self.require_user()?;
        if u.can(action) { Ok(u) } else { Err(self.error_page(StatusCode::FORBIDDEN, "error-forbidden")) }
    }

    pub fn error_page(&self, status: StatusCode, key: &str) -> Response {
        let page = ErrorPage { ctx: self.clone(), status: status.as_u16(), message: self.t(key) };
        (status, page).into_response()
    }

    /// Field errors translated into the page's language.
    pub fn errors(&self, e: &FieldErrors) -> Errors {
        Errors(e.0.iter().map(|(k, v)| (k.clone(), self.i18n.problem(v))).collect())
    }
}

fn login_url(next: &str) -> String {
    let mut s = String::from("/login");
    if next != "/" && next.starts_with('/') {
        s.push_str("?next=");
        s.push_str(&percent_encode(next));
    }
    s
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Translated field errors for a form; `get("name")` is the message shown beside that field.
#[derive(Clone, Default)]
pub struct Errors(pub std::collections::BTreeMap<String, String>);

impl Errors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `aria-invalid` value for a field.
    pub fn invalid(&self, field: &str) -> &'static str {
        if self.has(field) { "true" } else { "false" }
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = from_session(state, &parts.headers).await.map_err(|e| ApiError::from(e).into_response())?;
        // Language: the account's choice, then the cookie, then the browser, then zh-CN.
        let lang = user
            .as_ref()
            .and_then(|u| u.user.locale.as_deref().and_then(Lang::parse))
            .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(|c| Lang::parse(&c)))
            .or_else(|| {
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::ZhCn);
        let uri = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |u| u.0.clone());
        let query = uri.query().unwrap_or("");
        let flash = query.split('&').find_map(|kv| kv.strip_prefix("done=")).map(|k| {
            let key =
                format!("flash-{}", k.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>());
            I18n::new(lang).try_t(&key).unwrap_or_default()
        });
        let unread = match &user {
            Some(u) => store::sla::unread_count(&state.db, u.user.id).await.unwrap_or(0),
            None => 0,
        };
        Ok(Ctx {
            i18n: I18n::new(lang),
            user,
            path: uri.path().to_string(),
            flash: flash.filter(|f| !f.is_empty()),
            unread,
        })
    }
}

/// Form fields from an urlencoded body; repeated names (checkbox groups) are comma-joined.
pub fn form_fields(pairs: Vec<(String, String)>) -> Fields {
    let mut f = Fields::default();
    for (k, v) in pairs {
        let joined = match f.0.get(&k) {
            Some(serde_json::Value::String(prev)) if !prev.is_empty() => format!("{prev},{v}"),
            _ => v,
        };
        f.set(&k, joined);
    }
    f
}

pub type UiForm = Form<Vec<(String, String)>>;

/// Redirect after a successful POST, with a flash message key.
pub fn done(to: &str, flash: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={flash}")).into_response()
}

/// Validates a form, saves it, and either redirects with the "saved" flash or shows the form
/// again with each error beside its field (also for errors the store finds, like a taken name).
pub async fn save_form<I, T>(
    ctx: &Ctx,
    f: Fields,
    parse: impl FnOnce(&Fields) -> Result<I, FieldErrors>,
    save: impl AsyncFnOnce(I) -> Result<T, store::Error>,
    again: impl AsyncFnOnce(&Fields, Errors) -> Response,
    redirect: &str,
) -> Response {
    let input = match parse(&f) {
        Ok(i) => i,
        Err(e) => return again(&f, ctx.errors(&e)).await,
    };
    match save(input).await {
        Ok(_) => done(redirect, "saved"),
        Err(store::Error::Invalid(e)) => again(&f, ctx.errors(&e)).await,
        Err(e) => internal(ctx, e),
    }
}

/// After a delete: back to `redirect` with the "deleted" flash, or the error page.
pub fn deleted(ctx: &Ctx, result: Result<(), store::Error>, redirect: &str) -> Response {
    match result {
        Ok(()) => done(redirect, "deleted"),
        Err(e) => internal(ctx, e),
    }
}

pub fn unprocessable(page: impl IntoResponse) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

/// An option of a `<select>`.
#[derive(Clone)]
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Opt {
    pub fn list(codes: &[&str], current: &str, label: impl Fn(&str) -> String) -> Vec<Opt> {
        codes.iter().map(|c| Opt { value: c.to_string(), label: label(c), selected: *c == current }).collect()
    }
}

/// Turns a store error into the right page: field errors are the caller's business, so this
/// is for the unexpected ones.
pub fn internal(ctx: &Ctx, e: store::Error) -> Response {
    match e {
        store::Error::NotFound => ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        store::Error::Conflict(m) => {
            let page = ErrorPage { ctx: ctx.clone(), status: 409, message: ctx.i18n.problem(&m) };
            (StatusCode::CONFLICT, page).into_response()
        }
        // Stored data changed under a checked form (a campaign deleted meanwhile, say): each
        // field's problem, translated.
        store::Error::Invalid(e) => {
            let message =
                e.0.iter().map(|(f, m)| format!("{f}: {}", ctx.i18n.problem(m))).collect::<Vec<_>>().join("; ");
            let page = ErrorPage { ctx: ctx.clone(), status: 422, message };
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        // The database busy with another writer past the busy timeout: nothing was written.
        store::Error::Unavailable(m) => {
            tracing::warn!(error = %m, "database busy");
            ctx.error_page(StatusCode::SERVICE_UNAVAILABLE, "error-unavailable")
        }
        other => {
            tracing::error!(error = %other, "internal error");
            ctx.error_page(StatusCode::INTERNAL_SERVER_ERROR, "error-internal")
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub ctx: Ctx,
    pub status: u16,
    pub message: String,
}

pub async fn not_found(ctx: Ctx, req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        return ApiError::NotFound.into_response();
    }
    ctx.error_page(StatusCode::NOT_FOUND, "error-not-found")
}

/// Headers every response carries: no framing, no MIME sniffing, scripts and styles only
/// from our own origin.
pub async fn security_headers(req: Request, next: Next) -> Response {
    // Public lead forms are made to be embedded in the company's own sites.
    let embeddable = req.uri().path().starts_with("/f/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let csp = if embeddable {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'"
    } else {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !embeddable {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

const STATIC: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../static/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../static/app.js")),
    ("htmx.min.js", "text/javascript; charset=utf-8", include_bytes!("../../static/htmx.min.js")),
    ("echarts.min.js", "text/javascript; charset=utf-8", include_bytes!("../../static/echarts.min.js")),
];

async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match STATIC.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=86400")], *body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Local display of an instant in the company's zone, `2026-11-23 15:04`.
pub fn local_time(t: store::Ts, tz: &jiff::tz::TimeZone) -> String {
    t.get().to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string()
}

pub async fn company_tz(state: &AppState) -> jiff::tz::TimeZone {
    crate::api::audit::company_tz(state).await.unwrap_or(jiff::tz::TimeZone::UTC)
}
