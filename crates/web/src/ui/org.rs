//! Organisation (O-2): departments with their teams and heads, and the accounts.

use super::{Ctx, Errors, Opt, UiForm, deleted, done, form_fields, internal, save_form, unprocessable};
use crate::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::org::{DepartmentInput, DepartmentKind, TeamInput, UserInput};
use domain::role::{Action, Role};
use std::collections::HashMap;

struct DeptView {
    id: i64,
    name: String,
    kind: String,
    head: String,
    description: String,
    teams: Vec<TeamView>,
    members: usize,
}

struct TeamView {
    id: i64,
    name: String,
    lead: String,
    focus: String,
    members: usize,
}

struct UserView {
    id: i64,
    display_name: String,
    email: String,
    role: String,
    department: String,
    team: String,
    active: bool,
    /// L-4: `Some(available)` for sales reps; routing skips the unavailable.
    available: Option<bool>,
    /// The viewer may switch this rep's availability.
    may_toggle: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "org.html")]
pub struct OrgPage {
    ctx: Ctx,
    departments: Vec<DeptView>,
    users: Vec<UserView>,
}

pub async fn overview(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewOrg) {
        return r;
    }
    let loaded = async {
        Ok::<_, store::Error>((
            store::org::list_departments(&s.db).await?,
            store::org::list_teams(&s.db).await?,
            store::org::list_users(&s.db).await?,
        ))
    }
    .await;
    let (depts, teams, users) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    let names: HashMap<i64, String> = users.iter().map(|u| (u.id, u.display_name.clone())).collect();
    let name_of = |id: Option<i64>| id.and_then(|i| names.get(&i).cloned()).unwrap_or_default();
    let i = &ctx.i18n;
    let departments = depts
        .iter()
        .map(|d| DeptView {
            id: d.id,
            name: d.name.clone(),
            kind: i.code_label("dept", &d.kind),
            head: name_of(d.head_user_id),
            description: d.description.clone().unwrap_or_default(),
            teams: teams
                .iter()
                .filter(|t| t.department_id == d.id)
                .map(|t| TeamView {
                    id: t.id,
                    name: t.name.clone(),
                    lead: name_of(t.lead_user_id),
                    focus: t.focus.clone().unwrap_or_default(),
                    members: users.iter().filter(|u| u.team_id == Some(t.id)).count(),
                })
                .collect(),
            members: users.iter().filter(|u| u.department_id == Some(d.id)).count(),
        })
        .collect();
    let dept_name: HashMap<i64, String> = depts.iter().map(|d| (d.id, d.name.clone())).collect();
    let team_name: HashMap<i64, String> = teams.iter().map(|t| (t.id, t.name.clone())).collect();
    let users = users
        .iter()
        .map(|u| UserView {
            id: u.id,
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            role: i.code_label("role", &u.role),
            department: u.department_id.and_then(|d| dept_name.get(&d).cloned()).unwrap_or_default(),
            team: u.team_id.and_then(|t| team_name.get(&t).cloned()).unwrap_or_default(),
            active: u.active,
            available: (u.role() == Role::SalesRep).then_some(u.available),
            may_toggle: ctx
                .user
                .as_ref()
                .is_some_and(|me| domain::role::may_set_availability(me.user.member(), u.member()).is_ok()),
        })
        .collect();
    OrgPage { ctx, departments, users }.into_response()
}

fn text(f: &Fields, k: &str) -> String {
    match f.0.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Options for a "pick an account" select, with an empty first choice.
fn user_opts(users: &[store::org::User], current: &str, none: String) -> Vec<Opt> {
    let mut v = vec![Opt { value: String::new(), label: none, selected: current.is_empty() }];
    v.extend(users.iter().map(|u| Opt {
        value: u.id.to_string(),
        label: format!("{} ({})", u.display_name, u.email),
        selected: u.id.to_string() == current,
    }));
    v
}

// ---- departments -------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "department_form.html")]
pub struct DepartmentForm {
    ctx: Ctx,
    id: Option<i64>,
    name: String,
    kinds: Vec<Opt>,
    heads: Vec<Opt>,
    description: String,
    errors: Errors,
}

async fn department_form(s: &AppState, ctx: &Ctx, id: Option<i64>, f: &Fields, errors: Errors) -> Response {
    let users = match store::org::list_users(&s.db).await {
        Ok(u) => u,
        Err(e) => return internal(ctx, e),
    };
    let codes: Vec<&str> = DepartmentKind::ALL.iter().map(|k| k.code()).collect();
    let page = DepartmentForm {
        id,
        name: text(f, "name"),
        kinds: Opt::list(&codes, &text(f, "kind"), |c| ctx.i18n.code_label("dept", c)),
        heads: user_opts(&users, &text(f, "head_user_id"), ctx.t("org-none")),
        description: text(f, "description"),
        errors,
        ctx: ctx.clone(),
    };
    page.respond()
}

impl DepartmentForm {
    fn respond(self) -> Response {
        if self.errors.is_empty() { self.into_response() } else { unprocessable(self) }
    }
}

pub async fn new_department(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::EditOrg) {
        return r;
    }
    department_form(&s, &ctx, None, &Fields::from_pairs([("kind", "marketing")]), Errors::default()).await
}

pub async fn create_department(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditOrg);
    let save = async |i| store::org::create_department(&s.db, &u.actor(s.now()), &i).await;
    let again = async |f: &Fields, e| department_form(&s, &ctx, None, f, e).await;
    save_form(&ctx, form_fields(form.0), DepartmentInput::parse, save, again, "/org").await
}

pub async fn edit_department(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    if let Err(r) = ctx.allowed(Action::EditOrg) {
        return r;
    }
    match store::org::get_department(&s.db, id).await {
        Ok(Some(d)) => {
            let mut f = Fields::from_pairs([
                ("name", d.name),
                ("kind", d.kind),
                ("description", d.description.unwrap_or_default()),
            ]);
            if let Some(h) = d.head_user_id {
                f.set("head_user_id", h.to_string());
            }
            department_form(&s, &ctx, Some(id), &f, Errors::default()).await
        }
        Ok(None) => ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn update_department(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditOrg);
    let save = async |i| store::org::update_department(&s.db, &u.actor(s.now()), id, &i).await;
    let again = async |f: &Fields, e| department_form(&s, &ctx, Some(id), f, e).await;
    save_form(&ctx, form_fields(form.0), DepartmentInput::parse, save, again, "/org").await
}

pub async fn delete_department(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = allowed!(ctx, Action::EditOrg);
    deleted(&ctx, store::org::delete_department(&s.db, &u.actor(s.now()), id).await, "/org")
}

// ---- teams -------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "team_form.html")]
pub struct TeamForm {
    ctx: Ctx,
    id: Option<i64>,
    name: String,
    departments: Vec<Opt>,
    leads: Vec<Opt>,
    focus: String,
    territories: String,
    interfaces: Vec<Opt>,
    errors: Errors,
}

async fn team_form(s: &AppState, ctx: &Ctx, id: Option<i64>, f: &Fields, errors: Errors) -> Response {
    let loaded = async {
        Ok::<_, store::Error>((store::org::list_users(&s.db).await?, store::org::list_departments(&s.db).await?))
    }
    .await;
    let (users, depts) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    let current = text(f, "department_id");
    let page = TeamForm {
        id,
        name: text(f, "name"),
        departments: depts
            .iter()
            .map(|d| Opt { value: d.id.to_string(), label: d.name.clone(), selected: d.id.to_string() == current })
            .collect(),
        leads: user_opts(&users, &text(f, "lead_user_id"), ctx.t("org-none")),
        focus: text(f, "focus"),
        territories: text(f, "territories"),
        interfaces: user_opts(&users, &text(f, "interface_user_id"), ctx.t("org-none")),
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn new_team(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::EditOrg) {
        return r;
    }
    team_form(&s, &ctx, None, &Fields::default(), Errors::default()).await
}

pub async fn create_team(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditOrg);
    let save = async |i| store::org::create_team(&s.db, &u.actor(s.now()), &i).await;
    let again = async |f: &Fields, e| team_form(&s, &ctx, None, f, e).await;
    save_form(&ctx, form_fields(form.0), TeamInput::parse, save, again, "/org").await
}

pub async fn edit_team(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    if let Err(r) = ctx.allowed(Action::EditOrg) {
        return r;
    }
    match store::org::get_team(&s.db, id).await {
        Ok(Some(t)) => {
            let mut f = Fields::from_pairs([
                ("name", t.name),
                ("department_id", t.department_id.to_string()),
                ("focus", t.focus.unwrap_or_default()),
                ("territories", t.territories),
            ]);
            if let Some(l) = t.lead_user_id {
                f.set("lead_user_id", l.to_string());
            }
            if let Some(i) = t.interface_user_id {
                f.set("interface_user_id", i.to_string());
            }
            team_form(&s, &ctx, Some(id), &f, Errors::default()).await
        }
        Ok(None) => ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn update_team(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditOrg);
    let save = async |i| store::org::update_team(&s.db, &u.actor(s.now()), id, &i).await;
    let again = async |f: &Fields, e| team_form(&s, &ctx, Some(id), f, e).await;
    save_form(&ctx, form_fields(form.0), TeamInput::parse, save, again, "/org").await
}

pub async fn delete_team(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = allowed!(ctx, Action::EditOrg);
    deleted(&ctx, store::org::delete_team(&s.db, &u.actor(s.now()), id).await, "/org")
}

// ---- users -------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "user_form.html")]
pub struct UserForm {
    ctx: Ctx,
    id: Option<i64>,
    email: String,
    display_name: String,
    roles: Vec<Opt>,
    departments: Vec<Opt>,
    teams: Vec<Opt>,
    active: bool,
    errors: Errors,
}

async fn user_form(s: &AppState, ctx: &Ctx, id: Option<i64>, f: &Fields, errors: Errors) -> Response {
    let loaded = async {
        Ok::<_, store::Error>((store::org::list_departments(&s.db).await?, store::org::list_teams(&s.db).await?))
    }
    .await;
    let (depts, teams) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    let codes: Vec<&str> = Role::ALL.iter().map(|r| r.code()).collect();
    let dept = text(f, "department_id");
    let team = text(f, "team_id");
    let mut departments = vec![Opt { value: String::new(), label: ctx.t("org-none"), selected: dept.is_empty() }];
    departments.extend(depts.iter().map(|d| Opt {
        value: d.id.to_string(),
        label: d.name.clone(),
        selected: d.id.to_string() == dept,
    }));
    let dept_name: HashMap<i64, &str> = depts.iter().map(|d| (d.id, d.name.as_str())).collect();
    let mut team_opts = vec![Opt { value: String::new(), label: ctx.t("org-none"), selected: team.is_empty() }];
    team_opts.extend(teams.iter().map(|t| Opt {
        value: t.id.to_string(),
        label: format!("{} / {}", dept_name.get(&t.department_id).copied().unwrap_or(""), t.name),
        selected: t.id.to_string() == team,
    }));
    let active = !matches!(text(f, "active").as_str(), "false" | "off" | "0");
    let page = UserForm {
        id,
        email: text(f, "email"),
        display_name: text(f, "display_name"),
        roles: Opt::list(&codes, &text(f, "role"), |c| ctx.i18n.code_label("role", c)),
        departments,
        teams: team_opts,
        active,
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

/// Checkbox semantics: an unchecked box sends nothing, which means "inactive" here.
fn with_active(mut f: Fields) -> Fields {
    if !f.has("active") {
        f.set("active", "false");
    }
    f
}

pub async fn new_user(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::ManageUsers) {
        return r;
    }
    user_form(&s, &ctx, None, &Fields::from_pairs([("role", "marketer"), ("active", "true")]), Errors::default()).await
}

pub async fn create_user(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageUsers);
    let save = async |i: UserInput| {
        let hash = crate::password::hash(i.password.clone().unwrap_or_default(), s.settings.password).await;
        store::org::create_user(&s.db, &u.actor(s.now()), &i, &hash).await
    };
    let again = async |f: &Fields, e| user_form(&s, &ctx, None, f, e).await;
    save_form(&ctx, with_active(form_fields(form.0)), |f| UserInput::parse(f, true), save, again, "/org").await
}

pub async fn edit_user(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    if let Err(r) = ctx.allowed(Action::ManageUsers) {
        return r;
    }
    match store::org::get_user(&s.db, id).await {
        Ok(Some(x)) => {
            let mut f = Fields::from_pairs([
                ("email", x.email),
                ("display_name", x.display_name),
                ("role", x.role),
                ("active", x.active.to_string()),
            ]);
            if let Some(d) = x.department_id {
                f.set("department_id", d.to_string());
            }
            if let Some(t) = x.team_id {
                f.set("team_id", t.to_string());
            }
            user_form(&s, &ctx, Some(id), &f, Errors::default()).await
        }
        Ok(None) => ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn update_user(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageUsers);
    let save = async |i: UserInput| {
        let hash = match &i.password {
            Some(p) => Some(crate::password::hash(p.clone(), s.settings.password).await),
            None => None,
        };
        store::org::update_user(&s.db, &u.actor(s.now()), id, &i, hash.as_deref()).await
    };
    let again = async |f: &Fields, e| user_form(&s, &ctx, Some(id), f, e).await;
    save_form(&ctx, with_active(form_fields(form.0)), |f| UserInput::parse(f, false), save, again, "/org").await
}

/// L-4: a rep (or their manager, or the admin) switches the rep's availability for routing.
pub async fn set_availability(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ViewOrg);
    // The switch posts 1 or 0; anything else changes nothing.
    let available = match form_fields(form.0).0.get("available").and_then(|v| v.as_str()) {
        Some("1") => true,
        Some("0") => false,
        _ => return ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "error-bad-availability"),
    };
    let target = match store::org::get_user(&s.db, id).await {
        Ok(Some(t)) => t,
        Ok(None) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => return internal(&ctx, e),
    };
    if domain::role::may_set_availability(u.user.member(), target.member()).is_err() {
        return ctx.error_page(StatusCode::FORBIDDEN, "error-forbidden");
    }
    match store::org::set_available(&s.db, &u.actor(s.now()), id, available).await {
        Ok(_) => done("/org", "saved"),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn delete_user(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = allowed!(ctx, Action::ManageUsers);
    if id == u.user.id {
        return ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "error-delete-self");
    }
    match store::org::delete_user(&s.db, &u.actor(s.now()), id).await {
        Ok(()) => done("/org", "deleted"),
        Err(store::Error::Invalid(_)) => ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "error-last-admin"),
        Err(e) => internal(&ctx, e),
    }
}
