//! C-6 experiment pages: the list with a form to define a test (and the users its plan
//! needs), and one experiment with each variant's conversion, the test, the plan and the
//! recommendation.

use super::{Ctx, Errors, UiForm, done, form_fields, internal, unprocessable};
use crate::AppState;
use crate::api::experiments::with_analysis;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::experiment::{Analysis, Definition};
use domain::role::Action;

pub struct Row {
    key: String,
    name: String,
    status: String,
    variants: String,
    users: u64,
    decision: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "experiments.html")]
pub struct ListPage {
    ctx: Ctx,
    rows: Vec<Row>,
    values: Vec<(&'static str, String)>,
    errors: Errors,
    /// The planner's inputs, answer and errors (C-6).
    plan_baseline: String,
    plan_lift: String,
    plan: String,
    plan_errors: Errors,
}

impl ListPage {
    fn value(&self, field: &str) -> &str {
        self.values.iter().find(|(k, _)| *k == field).map_or("", |(_, v)| v.as_str())
    }
}

const FIELDS: [&str; 7] = ["key", "name", "hypothesis", "variants", "weights", "baseline_pct", "min_lift_pct"];

async fn list_view(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors) -> Response {
    list_with_plan(s, ctx, f, errors, vec![]).await
}

async fn list_with_plan(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors, q: Vec<(String, String)>) -> Response {
    let list = match store::experiments::list(&s.db).await {
        Ok(l) => l,
        Err(e) => return internal(ctx, e),
    };
    let mut rows = Vec::with_capacity(list.len());
    for x in list {
        let (x, a, _) = match with_analysis(s, x).await {
            Ok(v) => v,
            Err(e) => return super::customers::failed(ctx, e),
        };
        rows.push(Row {
            status: ctx.i18n.code_label("experiment-status", &x.status),
            variants: x.definition.variants.join(" · "),
            users: a.variants.iter().map(|v| v.users).sum(),
            decision: ctx.i18n.code_label("experiment-decision", a.recommendation.decision.code()),
            key: x.key,
            name: x.name,
        });
    }
    let text = |k: &str| f.0.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let asked = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let (plan_baseline, plan_lift) = (asked("baseline_pct"), asked("min_lift_pct"));
    let (mut plan, mut plan_errors) = (String::new(), Errors::default());
    if !q.is_empty() {
        match crate::api::experiments::plan_for(s, q).await {
            Ok(p) => {
                plan = ctx.i18n.t_args(
                    "experiment-plan",
                    &[
                        ("users", &p.users_per_variant.to_string()),
                        ("baseline", &p.baseline_pct.to_string()),
                        ("lift", &p.min_lift_pct.to_string()),
                    ],
                )
            }
            Err(crate::error::ApiError::Invalid(e)) => plan_errors = ctx.errors(&e),
            Err(e) => return super::customers::failed(ctx, e),
        }
    }
    let page = ListPage {
        rows,
        values: FIELDS.iter().map(|k| (*k, text(k))).collect(),
        errors,
        plan_baseline,
        plan_lift,
        plan,
        plan_errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn list(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    let q: Vec<(String, String)> = q.into_iter().filter(|(k, _)| k == "baseline_pct" || k == "min_lift_pct").collect();
    list_with_plan(&s, &ctx, &Fields::default(), Errors::default(), q).await
}

pub async fn create(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageExperiments);
    let f = form_fields(form.0);
    let d = match Definition::parse(&f) {
        Ok(d) => d,
        Err(e) => return list_view(&s, &ctx, &f, ctx.errors(&e)).await,
    };
    match store::experiments::create(&s.db, &u.actor(s.now()), &d).await {
        Ok(x) => done(&format!("/experiments/{}", x.key), "saved"),
        Err(store::Error::Conflict(m)) => {
            list_view(&s, &ctx, &f, ctx.errors(&domain::FieldErrors::single("key", m))).await
        }
        Err(e) => internal(&ctx, e),
    }
}

pub struct VariantRow {
    name: String,
    users: u64,
    conversions: u64,
    rate: String,
    interval: String,
    lift: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "experiment.html")]
pub struct DetailPage {
    ctx: Ctx,
    key: String,
    name: String,
    hypothesis: String,
    status: String,
    status_code: String,
    plan: String,
    variants: Vec<VariantRow>,
    test: String,
    decision: String,
    decision_code: &'static str,
    reason: String,
}

fn detail(ctx: &Ctx, x: store::experiments::Experiment, a: Analysis) -> DetailPage {
    let i = &ctx.i18n;
    let d = &x.definition;
    let test = match &a.test {
        Some(t) => i.t_args(
            &format!("experiment-test-{}", t.method.replace('_', "-")),
            &[
                ("statistic", &format!("{:.3}", t.statistic)),
                ("df", &t.degrees_of_freedom.to_string()),
                ("p", &format!("{:.4}", t.p_value)),
            ],
        ),
        None => i.t("experiment-test-none"),
    };
    let r = &a.recommendation;
    let mut args: Vec<(&str, String)> = r.details.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    args.push(("winner", r.winner.clone().unwrap_or_default()));
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    DetailPage {
        plan: i.t_args(
            "experiment-plan",
            &[
                ("users", &a.planned_users_per_variant.to_string()),
                ("baseline", &format!("{}", d.baseline_pct)),
                ("lift", &format!("{}", d.min_lift_pct)),
            ],
        ),
        variants: a
            .variants
            .iter()
            .map(|v| VariantRow {
                name: v.variant.clone(),
                users: v.users,
                conversions: v.conversions,
                rate: format!("{:.2}%", v.rate_pct),
                interval: format!("{:.2}% – {:.2}%", v.ci_low_pct, v.ci_high_pct),
                lift: v.lift_pct.map(|l| format!("{l:+.1}%")).unwrap_or_else(|| "–".into()),
            })
            .collect(),
        test,
        decision: i.code_label("experiment-decision", r.decision.code()),
        decision_code: r.decision.code(),
        reason: i.t_args(&format!("experiment-reason-{}", r.reason.replace('_', "-")), &args),
        status: i.code_label("experiment-status", &x.status),
        status_code: x.status,
        key: x.key,
        name: x.name,
        hypothesis: d.hypothesis.clone(),
        ctx: ctx.clone(),
    }
}

pub async fn show(State(s): State<AppState>, ctx: Ctx, Path(key): Path<String>) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    let x = match store::experiments::get(&s.db, &key).await {
        Ok(Some(x)) => x,
        Ok(None) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => return internal(&ctx, e),
    };
    match with_analysis(&s, x).await {
        Ok((x, a, _)) => detail(&ctx, x, a).into_response(),
        Err(e) => super::customers::failed(&ctx, e),
    }
}

/// Start (a draft) or stop (a running test) from the page.
pub async fn status(State(s): State<AppState>, ctx: Ctx, Path((key, to)): Path<(String, String)>) -> Response {
    let u = allowed!(ctx, Action::ManageExperiments);
    let to = match to.as_str() {
        "start" => "running",
        "stop" => "stopped",
        _ => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
    };
    match store::experiments::set_status(&s.db, &u.actor(s.now()), &key, to).await {
        Ok(_) => done(&format!("/experiments/{key}"), "saved"),
        Err(store::Error::Conflict(_)) => ctx.error_page(StatusCode::CONFLICT, "error-conflict"),
        Err(e) => internal(&ctx, e),
    }
}
