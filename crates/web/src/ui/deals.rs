//! Lead lifecycle actions from the lead page (L-4, L-6, L-7, L-8) and the deal list.

use super::{Ctx, UiForm, done, form_fields, internal, local_time};
use crate::AppState;
use crate::api::deals::{parse_reassign, parse_touch, visible_deal};
use crate::api::leads::visible;
use crate::rules::{lead_scope, load};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::deal::{DealInput, StageInput};
use domain::money::Money;
use domain::role::Action;
use domain::{FieldErrors, Fields};

/// Runs a lead action and comes back to the lead page; bad input shows the page's error.
async fn act<T>(ctx: &Ctx, id: i64, result: Result<Result<T, store::Error>, FieldErrors>) -> Response {
    match result {
        Ok(Ok(_)) => done(&format!("/leads/{id}"), "saved"),
        Ok(Err(store::Error::Invalid(e))) | Err(e) => {
            let msg: Vec<String> = ctx.errors(&e).0.into_iter().map(|(k, m)| format!("{k}: {m}")).collect();
            let page = super::ErrorPage { ctx: ctx.clone(), status: 422, message: msg.join("; ") };
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        Ok(Err(e)) => internal(ctx, e),
    }
}

async fn check(s: &AppState, ctx: &Ctx, id: i64) -> Option<Response> {
    let u = ctx.user.as_ref()?;
    visible(s, u, id).await.err().map(|_| ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"))
}

pub async fn reassign(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ReassignLeads);
    if let Some(r) = check(&s, &ctx, id).await {
        return r;
    }
    let rules = match load(&s).await {
        Ok(r) => r,
        Err(e) => return internal(&ctx, e),
    };
    let parsed = parse_reassign(&form_fields(form.0));
    let result = match parsed {
        Ok((owner, why)) => Ok(store::deals::reassign(&s.db, &u.actor(s.now()), id, owner, &why, &rules.rules()).await),
        Err(e) => Err(e),
    };
    act(&ctx, id, result).await
}

pub async fn accept(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = allowed!(ctx, Action::AcceptLeads);
    if let Some(r) = check(&s, &ctx, id).await {
        return r;
    }
    act(&ctx, id, Ok(store::deals::accept(&s.db, &u.actor(s.now()), id).await)).await
}

/// The reason is the chosen list entry, or the free text when "other" was typed.
fn chosen_reason(f: &Fields, list_field: &str, text_field: &str) -> Fields {
    let text = f.0.get(text_field).and_then(|v| v.as_str()).unwrap_or("").trim().to_string();
    let pick = f.0.get(list_field).and_then(|v| v.as_str()).unwrap_or("").to_string();
    Fields::from_pairs([("reason", if text.is_empty() { pick } else { text })])
}

pub async fn reject(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::AcceptLeads);
    if let Some(r) = check(&s, &ctx, id).await {
        return r;
    }
    let f = chosen_reason(&form_fields(form.0), "reason_choice", "reason_text");
    let mut e = FieldErrors::new();
    let why = domain::deal::reason(&f, &mut e, "reason", true);
    let result = match e.into_result(why.unwrap_or_default()) {
        Ok(why) => Ok(store::deals::reject(&s.db, &u.actor(s.now()), id, &why).await),
        Err(e) => Err(e),
    };
    act(&ctx, id, result).await
}

pub async fn touch(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    if let Some(r) = check(&s, &ctx, id).await {
        return r;
    }
    let mut f = form_fields(form.0);
    f.0.retain(|_, v| v.as_str().is_none_or(|s| !s.is_empty()));
    let rules = match load(&s).await {
        Ok(r) => r,
        Err(e) => return internal(&ctx, e),
    };
    let result = match parse_touch(&f) {
        Ok((kind, title)) => {
            Ok(store::deals::touch(&s.db, &u.actor(s.now()), id, kind, title.as_deref(), &rules.rules()).await)
        }
        Err(e) => Err(e),
    };
    act(&ctx, id, result).await
}

pub async fn convert(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    if let Some(r) = check(&s, &ctx, id).await {
        return r;
    }
    let result = match DealInput::parse(&form_fields(form.0)) {
        Ok(d) => Ok(store::deals::convert(&s.db, &u.actor(s.now()), id, &d).await),
        Err(e) => Err(e),
    };
    act(&ctx, id, result).await
}

pub async fn stage(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    let deal = match visible_deal(&s, &u, id).await {
        Ok(d) => d,
        Err(_) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
    };
    let raw = form_fields(form.0);
    let mut f = Fields::default();
    for k in ["stage", "amount"] {
        if let Some(v) = raw.0.get(k).filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
            f.0.insert(k.into(), v.clone());
        }
    }
    let reason = chosen_reason(&raw, "lost_choice", "lost_text");
    if let Some(r) = reason.0.get("reason").filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
        f.0.insert("lost_reason".into(), r.clone());
    }
    let rules = match load(&s).await {
        Ok(r) => r,
        Err(e) => return internal(&ctx, e),
    };
    let result = match StageInput::parse(&f) {
        Ok(x) => Ok(store::deals::set_stage(&s.db, &u.actor(s.now()), id, &x, &rules.rules()).await),
        Err(e) => Err(e),
    };
    act(&ctx, deal.lead_id, result).await
}

pub struct DealRow {
    id: i64,
    lead_id: i64,
    name: String,
    amount: String,
    stage: String,
    owner: String,
    first: String,
    last: String,
    cycle: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "deals.html")]
pub struct DealsPage {
    ctx: Ctx,
    rows: Vec<DealRow>,
}

pub async fn list(State(s): State<AppState>, ctx: Ctx) -> Response {
    let u = allowed!(ctx, Action::ViewLeads);
    let loaded = async {
        Ok::<_, store::Error>((
            store::deals::list_deals(&s.db, lead_scope(&u), 500).await?,
            store::org::user_names(&s.db).await?,
        ))
    }
    .await;
    let (deals, names) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    let tz = super::company_tz(&s).await;
    let i = &ctx.i18n;
    let rows = deals
        .into_iter()
        .map(|d| DealRow {
            id: d.id,
            lead_id: d.lead_id,
            amount: format!("¥{}", Money(d.amount_fen).format_plain()),
            stage: i.code_label("deal", &d.stage),
            owner: d.owner_id.and_then(|o| names.get(&o).cloned()).unwrap_or_default(),
            first: i.code_label("channel", &d.first_channel),
            last: i.code_label("channel", &d.last_channel),
            cycle: d
                .cycle_days
                .map(|c| format!("{c} {}", ctx.t("unit-days")))
                .unwrap_or_else(|| d.closed_at.map(|c| local_time(c, &tz)).unwrap_or_default()),
            name: d.name,
        })
        .collect();
    DealsPage { ctx, rows }.into_response()
}
