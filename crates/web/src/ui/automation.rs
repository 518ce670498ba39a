//! L-10 pages: automation rules (list, create, switch on/off, delete), the caller's tasks, and
//! lead signals recorded from the lead page.

use super::{Ctx, Errors, Opt, UiForm, deleted, done, form_fields, internal, local_time, save_form, unprocessable};
use crate::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::automation::{DELAY_KEYS, DelayUnit, Rule, RuleAction, Trigger};
use domain::deal::NurtureStage;
use domain::lead::Channel;
use domain::role::Action;
use store::automation::RuleRow;

pub struct RuleView {
    id: i64,
    name: String,
    when: String,
    conditions: String,
    delay: String,
    action: String,
    enabled: bool,
    runs: usize,
}

/// A checkbox in a group.
pub struct Check {
    value: String,
    label: String,
    checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "automation.html")]
pub struct Page {
    ctx: Ctx,
    rules: Vec<RuleView>,
    can_manage: bool,
    name: String,
    events: Vec<Opt>,
    grades: Vec<Check>,
    channels: Vec<Check>,
    withouts: Vec<Opt>,
    delay_amount: String,
    units: Vec<Opt>,
    keys: Vec<Opt>,
    actions: Vec<Opt>,
    stages: Vec<Opt>,
    title: String,
    script: String,
    message: String,
    errors: Errors,
}

fn text(f: &Fields, k: &str) -> String {
    f.0.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

fn checks(codes: &[&str], chosen: &str, label: impl Fn(&str) -> String) -> Vec<Check> {
    let chosen: Vec<&str> = chosen.split(',').map(str::trim).collect();
    codes.iter().map(|c| Check { value: c.to_string(), label: label(c), checked: chosen.contains(c) }).collect()
}

/// "Only A, B · 官网表单 · unless 已注册" — how a rule's conditions read.
fn describe(ctx: &Ctx, r: &RuleRow, rule: &Rule) -> (String, String, String) {
    let i = &ctx.i18n;
    let c = &rule.conditions;
    let mut parts = Vec::new();
    if !c.grades.is_empty() {
        parts.push(format!("{} {}", ctx.t("lead-grade"), c.grades.join("/")));
    }
    if !c.channels.is_empty() {
        parts.push(c.channels.iter().map(|x| i.code_label("channel", x)).collect::<Vec<_>>().join("/"));
    }
    if !c.routes.is_empty() {
        parts.push(c.routes.iter().map(|x| i.code_label("route", x)).collect::<Vec<_>>().join("/"));
    }
    if let Some(w) = &c.without {
        parts.push(format!("{} {}", ctx.t("automation-without"), i.code_label("signal", w)));
    }
    let delay = match &r.delay_key {
        Some(k) => {
            format!("{} ({})", i.code_label("delay", &r.delay_unit), i.code_label("delay-key", &k.replace('.', "_")))
        }
        None => format!("{} {}", r.delay_amount.unwrap_or(0), i.code_label("delay", &r.delay_unit)),
    };
    let title = r.params.get("title").or_else(|| r.params.get("stage")).and_then(|v| v.as_str()).unwrap_or("");
    let action = format!("{} {title}", i.code_label("rule-action", &r.action)).trim().to_string();
    (parts.join(" · "), delay, action)
}

async fn view(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors) -> Response {
    let loaded = async {
        let rules = store::automation::list_rules(&s.db).await?;
        let mut runs = Vec::with_capacity(rules.len());
        for r in &rules {
            runs.push(store::automation::runs_of_rule(&s.db, r.id, 1000).await?.len());
        }
        Ok::<_, store::Error>((rules, runs))
    }
    .await;
    let (rows, runs) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    let i = &ctx.i18n;
    let rules = rows
        .iter()
        .zip(runs)
        .filter_map(|(r, runs)| {
            let rule = r.to_rule()?;
            let (conditions, delay, action) = describe(ctx, r, &rule);
            Some(RuleView {
                id: r.id,
                name: r.name.clone(),
                when: i.code_label("trigger", &r.event),
                conditions,
                delay,
                action,
                enabled: r.enabled,
                runs,
            })
        })
        .collect();
    let none = |label: String, current: &str| Opt { value: String::new(), label, selected: current.is_empty() };
    let with_none = |first: Opt, rest: Vec<Opt>| std::iter::once(first).chain(rest).collect::<Vec<_>>();
    let codes = |all: &[Trigger]| all.iter().map(|t| t.code()).collect::<Vec<_>>();
    let channel_codes: Vec<&str> = Channel::ALL.iter().map(|c| c.code()).collect();
    let unit_codes: Vec<&str> = DelayUnit::ALL.iter().map(|u| u.code()).collect();
    let action_codes: Vec<&str> = RuleAction::ALL.iter().map(|a| a.code()).collect();
    let stage_codes: Vec<&str> = NurtureStage::ALL.iter().map(|a| a.code()).collect();
    let (without, key) = (text(f, "without"), text(f, "delay_key"));
    let page = Page {
        rules,
        can_manage: ctx.can("manage_campaigns"),
        name: text(f, "name"),
        events: Opt::list(&codes(Trigger::ALL), &text(f, "event"), |c| i.code_label("trigger", c)),
        grades: checks(&["A", "B", "C"], &text(f, "grades"), str::to_string),
        channels: checks(&channel_codes, &text(f, "channels"), |c| i.code_label("channel", c)),
        withouts: with_none(
            none(ctx.t("automation-without-none"), &without),
            Opt::list(domain::automation::LEAD_SIGNALS, &without, |c| i.code_label("signal", c)),
        ),
        delay_amount: text(f, "delay_amount"),
        units: Opt::list(&unit_codes, &text(f, "delay_unit"), |c| i.code_label("delay", c)),
        keys: with_none(
            none(ctx.t("automation-delay-fixed"), &key),
            Opt::list(DELAY_KEYS, &key, |c| i.code_label("delay-key", &c.replace('.', "_"))),
        ),
        actions: Opt::list(&action_codes, &text(f, "action"), |c| i.code_label("rule-action", c)),
        stages: Opt::list(&stage_codes, &text(f, "stage"), |c| i.code_label("stage", c)),
        title: text(f, "title"),
        script: text(f, "script"),
        message: text(f, "message"),
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn page(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewLeads) {
        return r;
    }
    let f = Fields::from_pairs([("event", "lead_created"), ("delay_unit", "days"), ("action", "create_task")]);
    view(&s, &ctx, &f, Errors::default()).await
}

pub async fn create(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageCampaigns);
    let save = async |r: Rule| store::automation::create_rule(&s.db, &u.actor(s.now()), &r).await;
    let again = async |f: &Fields, e| view(&s, &ctx, f, e).await;
    save_form(&ctx, form_fields(form.0), Rule::parse, save, again, "/automation").await
}

pub async fn toggle(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageCampaigns);
    let on = form.0.iter().any(|(k, v)| k == "enabled" && v == "true");
    match store::automation::set_enabled(&s.db, &u.actor(s.now()), id, on).await {
        Ok(_) => done("/automation", "saved"),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn delete(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = allowed!(ctx, Action::ManageCampaigns);
    deleted(&ctx, store::automation::delete_rule(&s.db, &u.actor(s.now()), id).await, "/automation")
}

pub struct TaskView {
    id: i64,
    lead_id: i64,
    title: String,
    script: String,
    due: String,
    overdue: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "tasks.html")]
pub struct TasksPage {
    ctx: Ctx,
    tasks: Vec<TaskView>,
}

pub async fn tasks(State(s): State<AppState>, ctx: Ctx) -> Response {
    let u = allowed!(ctx, Action::ViewLeads);
    let loaded = async {
        Ok::<_, store::Error>((store::automation::open_tasks(&s.db, u.user.id).await?, crate::rules::load(&s).await?))
    }
    .await;
    let (list, rules) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    let now = s.now();
    let tasks = list
        .into_iter()
        .map(|t| TaskView {
            id: t.id,
            lead_id: t.lead_id,
            title: t.title,
            script: t.script.unwrap_or_default(),
            due: t.due_at.map(|d| local_time(d, &rules.tz)).unwrap_or_default(),
            overdue: t.due_at.is_some_and(|d| d < now),
        })
        .collect();
    TasksPage { ctx, tasks }.into_response()
}

pub async fn task_done(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = allowed!(ctx, Action::ViewLeads);
    let mine = match store::automation::open_tasks(&s.db, u.user.id).await {
        Ok(t) => t.iter().any(|t| t.id == id),
        Err(e) => return internal(&ctx, e),
    };
    if !mine {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    }
    match store::automation::complete_task(&s.db, &u.actor(s.now()), id).await {
        Ok(_) => done("/tasks", "saved"),
        Err(e) => internal(&ctx, e),
    }
}

/// A product signal (trial started/finished, signed up) recorded from the lead page.
pub async fn signal(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    if crate::api::leads::visible(&s, &u, id).await.is_err() {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    }
    let f = form_fields(form.0);
    let Ok(sig) = crate::api::automation::parse_signal(&f) else {
        return ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "error-bad-signal");
    };
    let result = async {
        let rules = crate::rules::load(&s).await?;
        store::automation::signal(&s.db, &u.actor(s.now()), id, sig, &rules.rules()).await
    }
    .await;
    match result {
        Ok(()) => done(&format!("/leads/{id}"), "saved"),
        Err(e) => internal(&ctx, e),
    }
}
