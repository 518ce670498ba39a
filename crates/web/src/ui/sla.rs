//! L-5 pages: activities on a lead, notifications, webhooks and the breach report.

use super::{Ctx, Errors, Opt, UiForm, deleted, done, form_fields, internal, local_time, unprocessable};
use crate::AppState;
use crate::api::sla::{count_breaches, parse_activity, parse_webhook, period};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::notify::Format;
use domain::role::Action;

pub async fn add_activity(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    if crate::api::leads::visible(&s, &u, id).await.is_err() {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    }
    let f = form_fields(form.0);
    let (kind, note) = match parse_activity(&f) {
        Ok(x) => x,
        Err(_) => return ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "lead-activity-invalid"),
    };
    let hours = match crate::rules::load(&s).await {
        Ok(r) => r.playbook.leads.sla.follow_up_max_hours,
        Err(e) => return internal(&ctx, e),
    };
    match store::sla::record_activity(&s.db, &u.actor(s.now()), id, kind, note.as_deref(), hours).await {
        Ok(_) => done(&format!("/leads/{id}"), "saved"),
        Err(e) => internal(&ctx, e),
    }
}

pub struct NoteView {
    at: String,
    text: String,
    lead_id: Option<i64>,
    unread: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    ctx: Ctx,
    items: Vec<NoteView>,
}

pub async fn notifications(State(s): State<AppState>, ctx: Ctx) -> Response {
    let u = match ctx.user() {
        Ok(u) => u.clone(),
        Err(r) => return r,
    };
    let list = match store::sla::notifications(&s.db, u.user.id, 100).await {
        Ok(l) => l,
        Err(e) => return internal(&ctx, e),
    };
    let tz = super::company_tz(&s).await;
    let items = list
        .into_iter()
        .map(|n| {
            let kind = n.data["kind"].as_str().unwrap_or("");
            let text = format!(
                "{}：{}（{}）· {} {} · {} {}",
                ctx.i18n.code_label("breach", kind),
                n.data["lead"].as_str().unwrap_or(""),
                n.data["grade"].as_str().unwrap_or(""),
                ctx.t("lead-owner"),
                n.data["owner"].as_str().unwrap_or(""),
                ctx.t("lead-first-due"),
                n.data["due"].as_str().unwrap_or("")
            );
            NoteView { at: local_time(n.at, &tz), text, lead_id: n.lead_id, unread: n.read_at.is_none() }
        })
        .collect();
    NotificationsPage { ctx, items }.into_response()
}

pub async fn mark_read(State(s): State<AppState>, ctx: Ctx) -> Response {
    let u = match ctx.user() {
        Ok(u) => u.clone(),
        Err(r) => return r,
    };
    match store::sla::mark_read(&s.db, u.user.id, s.now()).await {
        Ok(_) => done("/notifications", "saved"),
        Err(e) => internal(&ctx, e),
    }
}

pub struct HookView {
    id: i64,
    name: String,
    url: String,
    format: String,
    active: bool,
}

pub struct DeliveryView {
    at: String,
    hook: String,
    status: String,
    attempts: i64,
    error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    ctx: Ctx,
    hooks: Vec<HookView>,
    deliveries: Vec<DeliveryView>,
    name: String,
    url: String,
    formats: Vec<Opt>,
    errors: Errors,
}

async fn webhooks_view(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors) -> Response {
    let loaded = async {
        Ok::<_, store::Error>((store::sla::list_webhooks(&s.db).await?, store::sla::deliveries(&s.db, None, 50).await?))
    }
    .await;
    let (hooks, deliveries) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    let tz = super::company_tz(s).await;
    let names: std::collections::HashMap<i64, String> = hooks.iter().map(|h| (h.id, h.name.clone())).collect();
    let text = |k: &str| f.0.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let codes: Vec<&str> = Format::ALL.iter().map(|x| x.code()).collect();
    let page = WebhooksPage {
        hooks: hooks
            .into_iter()
            .map(|h| HookView {
                id: h.id,
                format: ctx.i18n.code_label("format", &h.format),
                name: h.name,
                url: h.url,
                active: h.active,
            })
            .collect(),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryView {
                at: local_time(d.created_at, &tz),
                hook: names.get(&d.webhook_id).cloned().unwrap_or_default(),
                status: ctx.i18n.code_label("delivery", &d.status),
                attempts: d.attempts,
                error: d.last_error.unwrap_or_default(),
            })
            .collect(),
        name: text("name"),
        url: text("url"),
        formats: Opt::list(&codes, &text("format"), |c| ctx.i18n.code_label("format", c)),
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn webhooks(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::ManageIntegrations) {
        return r;
    }
    webhooks_view(&s, &ctx, &Fields::from_pairs([("format", "wecom")]), Errors::default()).await
}

pub async fn create_webhook(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageIntegrations);
    let f = form_fields(form.0);
    match parse_webhook(&f) {
        Ok(w) => match store::sla::create_webhook(&s.db, &u.actor(s.now()), &w).await {
            Ok(_) => done("/settings/webhooks", "saved"),
            Err(e) => internal(&ctx, e),
        },
        Err(e) => webhooks_view(&s, &ctx, &f, ctx.errors(&e)).await,
    }
}

pub async fn delete_webhook(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = allowed!(ctx, Action::ManageIntegrations);
    deleted(&ctx, store::sla::delete_webhook(&s.db, &u.actor(s.now()), id).await, "/settings/webhooks")
}

pub struct CountView {
    month: String,
    owner: String,
    team: String,
    kind: String,
    count: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "sla_report.html")]
pub struct ReportPage {
    ctx: Ctx,
    from: String,
    until: String,
    rows: Vec<CountView>,
    total: i64,
    errors: Errors,
}

pub async fn report(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    let u = allowed!(ctx, Action::ViewLeads);
    let q: Vec<(String, String)> = q.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let tz = super::company_tz(&s).await;
    let mut page = ReportPage {
        ctx: ctx.clone(),
        from: get("from"),
        until: get("until"),
        rows: Vec::new(),
        total: 0,
        errors: Errors::default(),
    };
    let (from, until) = match period(&Fields::from_pairs(q.clone()), &tz, s.now()) {
        Ok(p) => p,
        Err(e) => {
            page.errors = ctx.errors(&e);
            return unprocessable(page);
        }
    };
    let loaded = async {
        Ok::<_, store::Error>((
            store::sla::breaches(&s.db, from, until).await?,
            store::org::user_names(&s.db).await?,
            store::org::list_teams(&s.db).await?,
        ))
    }
    .await;
    let (rows, names, teams) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    let scope = crate::rules::lead_scope(&u);
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| match scope {
            store::leads::Scope::All => true,
            store::leads::Scope::Team(t) => r.team_id == Some(t),
            store::leads::Scope::Owner(o) => r.owner_id == Some(o),
            store::leads::Scope::Nothing => false,
        })
        .collect();
    page.rows = count_breaches(&rows, &tz)
        .into_iter()
        .map(|c| CountView {
            owner: c.owner_id.and_then(|o| names.get(&o).cloned()).unwrap_or_default(),
            team: c.team_id.and_then(|t| teams.iter().find(|x| x.id == t).map(|x| x.name.clone())).unwrap_or_default(),
            kind: ctx.i18n.code_label("breach", &c.kind),
            month: c.month,
            count: c.count,
        })
        .collect();
    page.total = page.rows.iter().map(|r| r.count).sum();
    page.into_response()
}
