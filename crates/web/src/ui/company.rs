//! Company profile page (O-1): everyone sees it; the admin and the marketing director edit it.

use super::{Ctx, Errors, Opt, UiForm, done, form_fields, internal, unprocessable};
use crate::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::company::{BusinessType, CURRENCIES, CompanyProfile, Size, Stage, WEEKDAYS, weekday_code};
use domain::role::Action;

#[derive(Template, WebTemplate)]
#[template(path = "company.html")]
pub struct CompanyPage {
    ctx: Ctx,
    editable: bool,
    name: String,
    industry: String,
    business_types: Vec<Opt>,
    stages: Vec<Opt>,
    sizes: Vec<Opt>,
    currencies: Vec<Opt>,
    time_zone: String,
    weekdays: Vec<Opt>,
    working_hours: String,
    errors: Errors,
}

fn text(f: &Fields, k: &str) -> String {
    match f.0.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn view(ctx: &Ctx, f: &Fields, errors: Errors) -> CompanyPage {
    let i = &ctx.i18n;
    let bt: Vec<&str> = BusinessType::ALL.iter().map(|x| x.code()).collect();
    let st: Vec<&str> = Stage::ALL.iter().map(|x| x.code()).collect();
    let sz: Vec<&str> = Size::ALL.iter().map(|x| x.code()).collect();
    let weekend = text(f, "weekend_days");
    let weekend: Vec<&str> = weekend.split(',').map(str::trim).collect();
    CompanyPage {
        editable: ctx.can("edit_company"),
        name: text(f, "name"),
        industry: text(f, "industry"),
        business_types: Opt::list(&bt, &text(f, "business_type"), |c| i.code_label("btype", c)),
        stages: Opt::list(&st, &text(f, "stage"), |c| i.code_label("stage", c)),
        sizes: Opt::list(&sz, &text(f, "size"), |c| i.code_label("size", c)),
        currencies: Opt::list(CURRENCIES, &text(f, "currency"), |c| c.to_string()),
        time_zone: text(f, "time_zone"),
        weekdays: WEEKDAYS
            .iter()
            .map(|d| {
                let code = weekday_code(*d);
                Opt { value: code.into(), label: i.code_label("weekday", code), selected: weekend.contains(&code) }
            })
            .collect(),
        working_hours: text(f, "working_hours"),
        errors,
        ctx: ctx.clone(),
    }
}

pub async fn page(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.user() {
        return r;
    }
    match store::company::get(&s.db).await {
        Ok(p) => view(&ctx, &p.map_or_else(domain::company::default_fields, |p| p.to_fields()), Errors::default())
            .into_response(),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn submit(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditCompany);
    let f = form_fields(form.0);
    match CompanyProfile::parse(&f) {
        Ok(p) => match store::company::save(&s.db, &u.actor(s.now()), &p).await {
            Ok(()) => done("/company", "saved"),
            Err(e) => internal(&ctx, e),
        },
        Err(e) => unprocessable(view(&ctx, &f, ctx.errors(&e))),
    }
}
