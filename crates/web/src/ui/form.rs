//! L-1 (b): the public web form of a campaign — no account needed, embeddable in an iframe,
//! UTM fields carried from the page address, spam-limited per address (across instances)
//! and with a honeypot field that people never fill in.

use super::{Ctx, Errors, Opt, internal};
use crate::AppState;
use crate::auth::client_ip;
use crate::rules::load;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::lead::{LeadInput, PARTS};
use store::{Actor, Via};

const UTM: [&str; 5] = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];
const VISIBLE: [&str; 7] = ["name", "company", "title", "email", "phone", "province", "city"];

#[derive(Template, WebTemplate)]
#[template(path = "public_form.html")]
pub struct FormPage {
    ctx: Ctx,
    campaign_id: i64,
    campaign: String,
    values: Vec<(String, String, String, String)>,
    hidden: Vec<(String, String)>,
    questions: Vec<(String, String, Vec<Opt>)>,
    errors: Errors,
    thanks: bool,
}

async fn page(s: &AppState, ctx: &Ctx, id: i64, f: &Fields, errors: Errors, thanks: bool) -> Response {
    let campaign = match store::campaigns::get(&s.db, id).await {
        Ok(Some(c)) => c,
        Ok(None) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => return internal(ctx, e),
    };
    let rules = match load(s).await {
        Ok(r) => r,
        Err(e) => return internal(ctx, e),
    };
    let text = |k: &str| f.0.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let i = &ctx.i18n;
    let values = VISIBLE
        .iter()
        .map(|k| {
            let label = if *k == "title" {
                ctx.t("lead-job-title")
            } else {
                i.try_t(&format!("import-field-{k}")).unwrap_or_default()
            };
            let ty = match *k {
                "email" => "email",
                "phone" => "tel",
                _ => "text",
            };
            (k.to_string(), label, text(k), ty.to_string())
        })
        .collect();
    let questions = PARTS
        .iter()
        .map(|p| {
            let current = text(p);
            let mut opts =
                vec![Opt { value: String::new(), label: ctx.t("form-choose"), selected: current.is_empty() }];
            opts.extend(rules.playbook.answers_for(p).into_iter().map(|(code, _)| Opt {
                label: i.code_label(&format!("bant-{p}"), &code),
                selected: code == current,
                value: code,
            }));
            (p.to_string(), ctx.t(&format!("form-question-{p}")), opts)
        })
        .collect();
    let hidden = UTM.iter().map(|k| (k.to_string(), text(k))).collect();
    let p = FormPage {
        ctx: ctx.clone(),
        campaign_id: id,
        campaign: campaign.name,
        values,
        hidden,
        questions,
        thanks,
        errors,
    };
    if p.errors.is_empty() { p.into_response() } else { (StatusCode::UNPROCESSABLE_ENTITY, p).into_response() }
}

pub async fn show(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let utm: Vec<(String, String)> = q.into_iter().filter(|(k, _)| UTM.contains(&k.as_str())).collect();
    page(&s, &ctx, id, &Fields::from_pairs(utm), Errors::default(), false).await
}

pub async fn submit(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    ext: axum::http::Extensions,
    form: super::UiForm,
) -> Response {
    let mut f = super::form_fields(form.0);
    // The honeypot: hidden from people, filled in by bots. Pretend success, store nothing.
    if f.0.remove("website").and_then(|v| v.as_str().map(|s| !s.is_empty())).unwrap_or(false) {
        return page(&s, &ctx, id, &Fields::default(), Errors::default(), true).await;
    }
    let ip = client_ip(&ext);
    match store::auth::rate_allow(&s.db, "form", &ip, s.now(), s.settings.form_per_hour, 3600).await {
        Ok(true) => {}
        Ok(false) => return ctx.error_page(StatusCode::TOO_MANY_REQUESTS, "form-too-many"),
        Err(e) => return internal(&ctx, e),
    }
    f.0.retain(|k, v| {
        (VISIBLE.contains(&k.as_str()) || UTM.contains(&k.as_str()) || PARTS.contains(&k.as_str()))
            && v.as_str().is_some_and(|x| !x.is_empty())
    });
    let mut input_fields = f.clone();
    input_fields.set("channel", "website_form");
    input_fields.set("campaign_id", id);
    let rules = match load(&s).await {
        Ok(r) => r,
        Err(e) => return internal(&ctx, e),
    };
    let input = match LeadInput::parse(&input_fields, &rules.playbook) {
        Ok(i) => i,
        Err(e) => return page(&s, &ctx, id, &f, ctx.errors(&e), false).await,
    };
    let actor = Actor { user_id: None, label: format!("web form ({ip})"), via: Via::Form, now: s.now() };
    match store::leads::capture(&s.db, &actor, &input, &rules.rules(), None).await {
        Ok(_) => page(&s, &ctx, id, &Fields::default(), Errors::default(), true).await,
        Err(store::Error::Invalid(e)) => page(&s, &ctx, id, &f, ctx.errors(&e), false).await,
        Err(e) => internal(&ctx, e),
    }
}
