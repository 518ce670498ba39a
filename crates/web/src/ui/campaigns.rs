//! Campaign pages (L-1, L-9): list, create, and a campaign with its cost ledger.

use super::{Ctx, Errors, Opt, UiForm, done, form_fields, internal, save_form, unprocessable};
use crate::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::campaign::{CampaignInput, SPEND_CATEGORIES, SpendInput};
use domain::lead::Channel;
use domain::money::Money;
use domain::role::Action;

pub struct Row {
    id: i64,
    name: String,
    channel: String,
    dates: String,
    planned: String,
    actual: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "campaigns.html")]
pub struct ListPage {
    ctx: Ctx,
    rows: Vec<Row>,
    name: String,
    channels: Vec<Opt>,
    starts_on: String,
    ends_on: String,
    planned_cost: String,
    errors: Errors,
}

fn text(f: &Fields, k: &str) -> String {
    f.0.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

fn yuan(fen: i64) -> String {
    format!("¥{}", Money(fen).format_plain())
}

async fn list_view(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors) -> Response {
    let list = match store::campaigns::list(&s.db).await {
        Ok(l) => l,
        Err(e) => return internal(ctx, e),
    };
    let i = &ctx.i18n;
    let codes: Vec<&str> = Channel::ALL.iter().map(|c| c.code()).collect();
    let page = ListPage {
        rows: list
            .into_iter()
            .map(|c| Row {
                id: c.id,
                channel: i.code_label("channel", &c.channel),
                dates: format!("{} – {}", c.starts_on.unwrap_or_default(), c.ends_on.unwrap_or_default()),
                planned: yuan(c.planned_cost_fen),
                actual: yuan(c.actual_cost_fen),
                name: c.name,
            })
            .collect(),
        name: text(f, "name"),
        channels: Opt::list(&codes, &text(f, "channel"), |c| i.code_label("channel", c)),
        starts_on: text(f, "starts_on"),
        ends_on: text(f, "ends_on"),
        planned_cost: text(f, "planned_cost"),
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn list(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewLeads) {
        return r;
    }
    list_view(&s, &ctx, &Fields::from_pairs([("channel", "trade_show")]), Errors::default()).await
}

pub async fn create(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageCampaigns);
    let save = async |i| store::campaigns::create(&s.db, &u.actor(s.now()), &i).await;
    let again = async |f: &Fields, e| list_view(&s, &ctx, f, e).await;
    save_form(&ctx, form_fields(form.0), CampaignInput::parse, save, again, "/campaigns").await
}

#[derive(Template, WebTemplate)]
#[template(path = "campaign.html")]
pub struct DetailPage {
    ctx: Ctx,
    origin: String,
    campaign: store::campaigns::Campaign,
    channel: String,
    planned: String,
    actual: String,
    entries: Vec<(String, String, String, String)>,
    categories: Vec<Opt>,
    spent_on: String,
    amount: String,
    note: String,
    errors: Errors,
}

async fn detail_view(s: &AppState, ctx: &Ctx, id: i64, f: &Fields, errors: Errors) -> Response {
    let loaded = async {
        Ok::<_, store::Error>((store::campaigns::get(&s.db, id).await?, store::campaigns::spend(&s.db, id).await?))
    }
    .await;
    let (campaign, spend) = match loaded {
        Ok((Some(c), sp)) => (c, sp),
        Ok((None, _)) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => return internal(ctx, e),
    };
    let i = &ctx.i18n;
    let page = DetailPage {
        origin: s.settings.public_origin.clone().unwrap_or_default(),
        channel: i.code_label("channel", &campaign.channel),
        planned: yuan(campaign.planned_cost_fen),
        actual: yuan(campaign.actual_cost_fen),
        entries: spend
            .into_iter()
            .map(|e| (e.spent_on, i.code_label("spend", &e.category), yuan(e.amount_fen), e.note.unwrap_or_default()))
            .collect(),
        categories: Opt::list(SPEND_CATEGORIES, &text(f, "category"), |c| i.code_label("spend", c)),
        spent_on: text(f, "spent_on"),
        amount: text(f, "amount"),
        note: text(f, "note"),
        errors,
        campaign,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn show(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewLeads) {
        return r;
    }
    detail_view(&s, &ctx, id, &Fields::from_pairs([("category", "ads")]), Errors::default()).await
}

pub async fn add_spend(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageCampaigns);
    let f = form_fields(form.0);
    match SpendInput::parse(&f) {
        Ok(x) => match store::campaigns::add_spend(&s.db, &u.actor(s.now()), id, &x).await {
            Ok(_) => done(&format!("/campaigns/{id}"), "saved"),
            Err(e) => internal(&ctx, e),
        },
        Err(e) => detail_view(&s, &ctx, id, &f, ctx.errors(&e)).await,
    }
}
