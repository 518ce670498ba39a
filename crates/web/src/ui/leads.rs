//! Lead pages (L-1…L-4): the list within the account's scope, manual entry, and the lead
//! with its grading explanation, routing and history.

use super::{Ctx, Errors, Opt, UiForm, done, form_fields, internal, local_time, unprocessable};
use crate::AppState;
use crate::api::leads::{parse_answers, parse_filter, parts_of};
use crate::rules::{lead_scope, load};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::lead::{Channel, CompanySize, LeadInput, PARTS};
use domain::playbook::Playbook;
use domain::role::Action;
use std::collections::HashMap;

pub struct Row {
    id: i64,
    who: String,
    company: String,
    grade: String,
    total: i64,
    channel: String,
    owner: String,
    route: String,
    status: String,
    created: String,
    due: String,
    overdue: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "leads.html")]
pub struct ListPage {
    ctx: Ctx,
    rows: Vec<Row>,
    grades: Vec<Opt>,
    channels: Vec<Opt>,
    routes: Vec<Opt>,
    q: String,
    next_query: Option<String>,
    export_query: String,
    errors: Errors,
}

fn with_any(ctx: &Ctx, mut v: Vec<Opt>, current: &str) -> Vec<Opt> {
    v.insert(0, Opt { value: String::new(), label: ctx.t("audit-any"), selected: current.is_empty() });
    v
}

pub async fn list(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    let u = allowed!(ctx, Action::ViewLeads);
    let q: Vec<(String, String)> = q.into_iter().filter(|(k, v)| !v.is_empty() && k != "done").collect();
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let i = &ctx.i18n;
    let channel_codes: Vec<&str> = Channel::ALL.iter().map(|c| c.code()).collect();
    let mut page = ListPage {
        rows: Vec::new(),
        grades: with_any(&ctx, Opt::list(&["A", "B", "C"], &get("grade"), |c| c.to_string()), &get("grade")),
        channels: with_any(
            &ctx,
            Opt::list(&channel_codes, &get("channel"), |c| i.code_label("channel", c)),
            &get("channel"),
        ),
        routes: with_any(
            &ctx,
            Opt::list(&["sales", "nurture", "content", "unassigned"], &get("route"), |c| i.code_label("route", c)),
            &get("route"),
        ),
        q: get("q"),
        next_query: None,
        export_query: q.iter().map(|(k, v)| format!("{k}={}", super::percent_encode(v))).collect::<Vec<_>>().join("&"),
        errors: Errors::default(),
        ctx: ctx.clone(),
    };
    let filter = match parse_filter(&Fields::from_pairs(q.clone())) {
        Ok(f) => f,
        Err(e) => {
            page.errors = ctx.errors(&e);
            return unprocessable(page);
        }
    };
    let loaded = async {
        Ok::<_, store::Error>((
            store::leads::list(&s.db, lead_scope(&u), &filter).await?,
            store::org::user_names(&s.db).await?,
        ))
    }
    .await;
    let (leads, names) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    if leads.len() as i64 == filter.limit
        && let Some(last) = leads.last()
    {
        let mut next: Vec<String> = q
            .iter()
            .filter(|(k, _)| k != "before_id")
            .map(|(k, v)| format!("{k}={}", super::percent_encode(v)))
            .collect();
        next.push(format!("before_id={}", last.id));
        page.next_query = Some(next.join("&"));
    }
    let tz = super::company_tz(&s).await;
    let now = s.now();
    page.rows = leads
        .into_iter()
        .map(|l| Row {
            id: l.id,
            who: l.name.clone().unwrap_or_default(),
            company: l.company.clone().unwrap_or_default(),
            grade: l.grade.clone(),
            total: l.total,
            channel: i.code_label("channel", &l.channel),
            owner: l.owner_id.and_then(|o| names.get(&o).cloned()).unwrap_or_default(),
            route: i.code_label("route", &l.route),
            status: i.code_label("status", &l.status),
            created: local_time(l.created_at, &tz),
            due: l
                .first_response_due
                .filter(|_| l.first_response_at.is_none())
                .map(|d| local_time(d, &tz))
                .unwrap_or_default(),
            overdue: l.first_response_at.is_none() && l.first_response_due.is_some_and(|d| d < now),
        })
        .collect();
    page.into_response()
}

struct PartView {
    part: String,
    answer: String,
    points: i64,
    max: i64,
    options: Vec<Opt>,
}

struct EventView {
    at: String,
    kind: String,
    actor: String,
    detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "lead.html")]
pub struct LeadPage {
    ctx: Ctx,
    lead: store::leads::Lead,
    owner: String,
    team: String,
    campaign: String,
    parts: Vec<PartView>,
    route: String,
    status: String,
    channel: String,
    created: String,
    first_due: String,
    follow_due: String,
    overdue: bool,
    events: Vec<EventView>,
    sources: usize,
    can_edit: bool,
    activities: Vec<(String, String, String)>,
    activity_kinds: Vec<Opt>,
    can_accept: bool,
    can_reject: bool,
    can_reassign: bool,
    can_convert: bool,
    reject_reasons: Vec<String>,
    lost_reasons: Vec<String>,
    owners: Vec<Opt>,
    touch_kinds: Vec<Opt>,
    touches: Vec<(String, String, String, String)>,
    deal: Option<DealView>,
    deal_stages: Vec<Opt>,
    duplicates: Vec<(i64, String, String)>,
    /// L-10: rule runs (when, rule, status, what it did or why it was skipped).
    runs: Vec<(String, String, String, String)>,
    /// L-10: tasks on this lead (title, script, due, done).
    tasks: Vec<(String, String, String, bool)>,
    signals: Vec<Opt>,
    errors: Errors,
}

pub struct DealView {
    id: i64,
    name: String,
    amount: String,
    stage: String,
    closed: bool,
    lost_reason: String,
    first: String,
    last: String,
    cycle: String,
}

fn answer_opts(ctx: &Ctx, pb: &Playbook, part: &str, current: Option<&str>) -> Vec<Opt> {
    let mut v = vec![Opt { value: String::new(), label: ctx.t("lead-unanswered"), selected: current.is_none() }];
    v.extend(pb.answers_for(part).into_iter().map(|(code, points)| Opt {
        label: format!("{}（{points}）", ctx.i18n.code_label(&format!("bant-{part}"), &code)),
        selected: current == Some(code.as_str()),
        value: code,
    }));
    v
}

async fn lead_view(s: &AppState, ctx: &Ctx, id: i64, errors: Errors) -> Response {
    let Some(u) = ctx.user.clone() else { return ctx.error_page(StatusCode::UNAUTHORIZED, "error-forbidden") };
    let lead = match crate::api::leads::visible(s, &u, id).await {
        Ok(l) => l,
        Err(_) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
    };
    let loaded = async {
        let graded_by = store::playbook::get(&s.db, lead.graded_version).await?.ok_or(store::Error::NotFound)?;
        let graded_by = Playbook::parse(&graded_by.document).map_err(store::Error::Invalid)?;
        let active = load(s).await?;
        let names = store::org::user_names(&s.db).await?;
        let teams = store::org::list_teams(&s.db).await?;
        let campaign = match lead.campaign_id {
            Some(c) => store::campaigns::get(&s.db, c).await?.map(|c| c.name),
            None => None,
        };
        let events = store::leads::events(&s.db, id).await?;
        let activities = store::sla::activities(&s.db, id).await?;
        let extra = (
            store::deals::touches(&s.db, id).await?,
            store::deals::deal_of_lead(&s.db, id).await?,
            store::org::list_users(&s.db).await?,
            store::leads::possible_duplicates(&s.db, id).await?,
        );
        let automation = (
            store::automation::runs(&s.db, id).await?,
            store::automation::tasks_of_lead(&s.db, id).await?,
            store::automation::list_rules(&s.db).await?,
        );
        Ok::<_, store::Error>((graded_by, active, names, teams, campaign, events, activities, extra, automation))
    }
    .await;
    let (
        graded_by,
        active,
        names,
        teams,
        campaign,
        events,
        activities,
        (touches, deal, users, dups),
        (runs, tasks, rules),
    ) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    let tz = &active.tz;
    let i = &ctx.i18n;
    let parts = parts_of(&lead, &graded_by)
        .into_iter()
        .map(|p| PartView {
            answer: p
                .answer
                .as_deref()
                .map(|a| i.code_label(&format!("bant-{}", p.part), a))
                .unwrap_or_else(|| ctx.t("lead-unanswered")),
            options: answer_opts(ctx, &active.playbook, &p.part, p.answer.as_deref()),
            points: p.points,
            max: p.max,
            part: p.part,
        })
        .collect();
    let events = events
        .into_iter()
        .map(|e| EventView {
            at: local_time(e.at, tz),
            kind: i.code_label("event", &e.kind),
            actor: e.actor_label,
            detail: event_detail(ctx, &e.kind, &e.data),
        })
        .collect();
    let now = s.now();
    LeadPage {
        owner: lead.owner_id.and_then(|o| names.get(&o).cloned()).unwrap_or_default(),
        team: lead.team_id.and_then(|t| teams.iter().find(|x| x.id == t).map(|x| x.name.clone())).unwrap_or_default(),
        campaign: campaign.unwrap_or_default(),
        parts,
        route: i.code_label("route", &lead.route),
        status: i.code_label("status", &lead.status),
        channel: i.code_label("channel", &lead.channel),
        created: local_time(lead.created_at, tz),
        first_due: lead.first_response_due.map(|d| local_time(d, tz)).unwrap_or_default(),
        follow_due: lead.follow_up_due.map(|d| local_time(d, tz)).unwrap_or_default(),
        overdue: lead.first_response_at.is_none() && lead.first_response_due.is_some_and(|d| d < now),
        sources: lead.sources.as_array().map_or(0, Vec::len),
        events,
        can_edit: u.can(Action::EditLeads),
        activities: activities
            .into_iter()
            .map(|a| (local_time(a.at, tz), i.code_label("activity", &a.kind), a.note.unwrap_or_default()))
            .collect(),
        activity_kinds: Opt::list(store::sla::ACTIVITY_KINDS, "call", |c| i.code_label("activity", c)),
        can_accept: u.can(Action::AcceptLeads) && lead.route == "sales" && lead.status == "open",
        can_reject: u.can(Action::AcceptLeads)
            && lead.route == "sales"
            && matches!(lead.status.as_str(), "open" | "accepted"),
        can_reassign: u.can(Action::ReassignLeads) && !matches!(lead.status.as_str(), "converted" | "lost"),
        can_convert: u.can(Action::EditLeads) && deal.is_none() && lead.route == "sales",
        reject_reasons: active.playbook.leads.handoff.reject_reasons.clone(),
        lost_reasons: active.playbook.leads.conversion.lost_reasons.clone(),
        owners: users
            .iter()
            .filter(|x| x.active && matches!(x.role.as_str(), "sales_rep" | "sales_manager"))
            .map(|x| Opt {
                value: x.id.to_string(),
                label: format!("{} · {}", x.display_name, i.code_label("role", &x.role)),
                selected: Some(x.id) == lead.owner_id,
            })
            .collect(),
        touch_kinds: {
            let codes: Vec<&str> = domain::deal::TouchKind::ALL.iter().map(|k| k.code()).collect();
            Opt::list(&codes, "white_paper", |c| i.code_label("touch", c))
        },
        touches: touches
            .into_iter()
            .map(|t| {
                (
                    local_time(t.at, tz),
                    i.code_label("touch", &t.kind),
                    i.code_label("stage", &t.stage),
                    t.title.unwrap_or_default(),
                )
            })
            .collect(),
        duplicates: dups
            .iter()
            .filter(|d| lead_scope(&u).allows(d))
            .map(|d| {
                (
                    d.id,
                    d.name.clone().unwrap_or_default(),
                    d.email.clone().or_else(|| d.phone.clone()).unwrap_or_default(),
                )
            })
            .collect(),
        runs: runs
            .into_iter()
            .map(|r| {
                let rule = rules
                    .iter()
                    .find(|x| x.id == r.rule_id)
                    .map_or_else(|| format!("#{}", r.rule_id), |x| x.name.clone());
                let prefix = if r.status == "done" { "rule-action" } else { "auto-skip" };
                (local_time(r.at, tz), rule, i.code_label("auto-status", &r.status), i.code_label(prefix, &r.detail))
            })
            .collect(),
        tasks: tasks
            .into_iter()
            .map(|t| {
                let due = t.due_at.map(|d| local_time(d, tz)).unwrap_or_default();
                (t.title, t.script.unwrap_or_default(), due, t.done_at.is_some())
            })
            .collect(),
        signals: Opt::list(domain::automation::LEAD_SIGNALS, "", |c| i.code_label("signal", c)),
        deal_stages: {
            let codes: Vec<&str> = domain::deal::DealStage::ALL.iter().map(|k| k.code()).collect();
            Opt::list(&codes, deal.as_ref().map_or("", |d| d.stage.as_str()), |c| i.code_label("deal", c))
        },
        deal: deal.map(|d| DealView {
            id: d.id,
            amount: format!("¥{}", domain::money::Money(d.amount_fen).format_plain()),
            stage: i.code_label("deal", &d.stage),
            closed: matches!(d.stage.as_str(), "closed_won" | "closed_lost"),
            lost_reason: d.lost_reason.unwrap_or_default(),
            first: i.code_label("channel", &d.first_channel),
            last: i.code_label("channel", &d.last_channel),
            cycle: d.cycle_days.map(|c| c.to_string()).unwrap_or_default(),
            name: d.name,
        }),
        errors,
        lead,
        ctx: ctx.clone(),
    }
    .into_response()
}

/// A one-line reading of an event's data for the history list.
fn event_detail(ctx: &Ctx, kind: &str, data: &serde_json::Value) -> String {
    let i = &ctx.i18n;
    match kind {
        "graded" => {
            let mut s = format!(
                "{} {} · {} {}",
                ctx.t("lead-grade"),
                data["grade"].as_str().unwrap_or(""),
                ctx.t("lead-total"),
                data["total"]
            );
            if let Some(prev) = data["previous_grade"].as_str() {
                s = format!("{prev} → {s}");
            }
            format!("{s} · {} v{}", ctx.t("lead-playbook-version"), data["playbook_version"])
        }
        "routed" => match data["decision"]["route"].as_str() {
            Some(r) => {
                let reason = data["decision"]["reason"].as_str().unwrap_or("");
                format!("{} {reason}", i.code_label("route", r))
            }
            None => String::new(),
        },
        "automation" => {
            let status = data["status"].as_str().unwrap_or("");
            let prefix = if status == "done" { "rule-action" } else { "auto-skip" };
            let detail = i.code_label(prefix, data["detail"].as_str().unwrap_or(""));
            format!("{} · {} · {detail}", data["rule"].as_str().unwrap_or(""), i.code_label("auto-status", status))
        }
        "imported" => format!(
            "{} · {} {} · {}",
            data["file"].as_str().unwrap_or(""),
            ctx.t("lead-grade"),
            data["grade"].as_str().unwrap_or(""),
            i.code_label("route", data["route"].as_str().unwrap_or(""))
        ),
        "created" | "merged" => {
            let src = if kind == "merged" { &data["capture"] } else { data };
            i.code_label("channel", src["channel"].as_str().unwrap_or(""))
        }
        _ => String::new(),
    }
}

pub async fn show(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewLeads) {
        return r;
    }
    lead_view(&s, &ctx, id, Errors::default()).await
}

pub async fn save_answers(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    if crate::api::leads::visible(&s, &u, id).await.is_err() {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    }
    let loaded = match load(&s).await {
        Ok(l) => l,
        Err(e) => return internal(&ctx, e),
    };
    let f = form_fields(form.0);
    match parse_answers(&f, &loaded.playbook) {
        Ok(a) => match store::leads::set_answers(&s.db, &u.actor(s.now()), id, &a, &loaded.rules()).await {
            Ok(_) => done(&format!("/leads/{id}"), "saved"),
            Err(e) => internal(&ctx, e),
        },
        Err(e) => {
            let page = lead_view(&s, &ctx, id, ctx.errors(&e)).await;
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "lead_form.html")]
pub struct NewPage {
    ctx: Ctx,
    values: HashMap<String, String>,
    channels: Vec<Opt>,
    sizes: Vec<Opt>,
    campaigns: Vec<Opt>,
    answers: Vec<(String, String, Vec<Opt>)>,
    errors: Errors,
}

impl NewPage {
    pub fn v(&self, k: &str) -> &str {
        self.values.get(k).map_or("", String::as_str)
    }
}

async fn new_form(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors) -> Response {
    let loaded = async { Ok::<_, store::Error>((load(s).await?, store::campaigns::list(&s.db).await?)) }.await;
    let (rules, campaigns) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    let values: HashMap<String, String> =
        f.0.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let i = &ctx.i18n;
    let channel_codes: Vec<&str> = Channel::ALL.iter().map(|c| c.code()).collect();
    let size_codes: Vec<&str> = CompanySize::ALL.iter().map(|c| c.code()).collect();
    let mut sizes =
        vec![Opt { value: String::new(), label: ctx.t("lead-unanswered"), selected: get("company_size").is_empty() }];
    sizes.extend(Opt::list(&size_codes, &get("company_size"), |c| i.code_label("size", c)));
    let mut camp =
        vec![Opt { value: String::new(), label: ctx.t("org-none"), selected: get("campaign_id").is_empty() }];
    camp.extend(campaigns.iter().map(|c| Opt {
        value: c.id.to_string(),
        label: c.name.clone(),
        selected: c.id.to_string() == get("campaign_id"),
    }));
    let answers = PARTS
        .iter()
        .map(|p| {
            let current = values.get(*p).filter(|v| !v.is_empty()).cloned();
            (p.to_string(), ctx.t(&format!("lead-part-{p}")), answer_opts(ctx, &rules.playbook, p, current.as_deref()))
        })
        .collect();
    let page = NewPage {
        channels: Opt::list(&channel_codes, &get("channel"), |c| i.code_label("channel", c)),
        sizes,
        campaigns: camp,
        answers,
        values,
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn new(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::CaptureLeads) {
        return r;
    }
    new_form(&s, &ctx, &Fields::from_pairs([("channel", "website_form")]), Errors::default()).await
}

/// L-1 (d): manual entry. A duplicate merges into the existing lead, like every capture.
pub async fn create(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::CaptureLeads);
    let mut f = form_fields(form.0);
    f.0.retain(|_, v| v.as_str().is_none_or(|s| !s.is_empty()));
    let loaded = match load(&s).await {
        Ok(l) => l,
        Err(e) => return internal(&ctx, e),
    };
    let input = match LeadInput::parse(&f, &loaded.playbook) {
        Ok(i) => i,
        Err(e) => return new_form(&s, &ctx, &f, ctx.errors(&e)).await,
    };
    match store::leads::capture(&s.db, &u.actor(s.now()), &input, &loaded.rules(), None).await {
        Ok(store::leads::Captured::Created(l)) => done(&format!("/leads/{}", l.id), "saved"),
        Ok(store::leads::Captured::Merged(l)) => done(&format!("/leads/{}", l.id), "merged"),
        Ok(store::leads::Captured::Replayed { .. }) => done("/leads", "saved"),
        Err(store::Error::Invalid(e)) => new_form(&s, &ctx, &f, ctx.errors(&e)).await,
        Err(e) => internal(&ctx, e),
    }
}

pub async fn merge(State(s): State<AppState>, ctx: Ctx, Path((id, other)): Path<(i64, i64)>) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    if crate::api::leads::visible(&s, &u, id).await.is_err() || crate::api::leads::visible(&s, &u, other).await.is_err()
    {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    }
    match store::leads::merge_leads(&s.db, &u.actor(s.now()), id, other).await {
        Ok(_) => done(&format!("/leads/{id}"), "merged"),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn not_duplicate(State(s): State<AppState>, ctx: Ctx, Path((id, other)): Path<(i64, i64)>) -> Response {
    let u = allowed!(ctx, Action::EditLeads);
    if crate::api::leads::visible(&s, &u, id).await.is_err() {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    }
    match store::leads::dismiss_duplicate(&s.db, &u.actor(s.now()), id, other).await {
        Ok(()) => done(&format!("/leads/{id}"), "saved"),
        Err(e) => internal(&ctx, e),
    }
}
