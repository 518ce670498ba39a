//! The playbook (P-1, E-3): the active rules with their sources, editing as a new version,
//! history and diff.

use super::{Ctx, Errors, UiForm, done, form_fields, internal, local_time, unprocessable};
use crate::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::FieldErrors;
use domain::playbook::{self, Playbook};
use domain::role::Action;

struct RuleRow {
    key: String,
    label: String,
    value: String,
    unit: String,
    rule: String,
    seed: String,
}

struct Section {
    title: String,
    rules: Vec<RuleRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "playbook.html")]
pub struct PlaybookPage {
    ctx: Ctx,
    version: i64,
    active_version: i64,
    note: String,
    author: String,
    created: String,
    sections: Vec<Section>,
    document: String,
    regrade: Option<crate::api::leads::RegradePreview>,
}

/// The label of a playbook key: its own, or for an entry of a `.*` table (a BANT answer)
/// the table's label with the entry's.
pub fn rule_label(ctx: &Ctx, key: &str) -> String {
    let own = format!("pb-{}", key.replace(['.', '_'], "-"));
    if let Some(l) = ctx.i18n.try_t(&own) {
        return l;
    }
    if let Some((table, entry)) = key.rsplit_once('.') {
        let table_label = ctx.i18n.try_t(&format!("pb-{}", table.replace(['.', '_'], "-")));
        let part = table.rsplit('.').next().unwrap_or("");
        if let Some(t) = table_label {
            return format!("{t}：{}", ctx.i18n.code_label(&format!("bant-{part}"), entry));
        }
    }
    key.to_string()
}

fn sections(ctx: &Ctx, document: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for r in playbook::values(document) {
        let p = r.param;
        let section_key = p.key.trim_end_matches(".*").rsplit_once('.').map_or("", |(s, _)| s);
        let section_key = section_key.strip_suffix(".answers").map_or(section_key, |s| s);
        let section_key = if section_key.starts_with("leads.bant") { "leads.bant" } else { section_key };
        let title = ctx
            .i18n
            .try_t(&format!("pbsec-{}", section_key.replace('.', "-")))
            .unwrap_or_else(|| section_key.to_string());
        let row = RuleRow {
            label: rule_label(ctx, &r.key),
            key: r.key,
            value: r.value,
            unit: if p.unit.is_empty() {
                String::new()
            } else {
                ctx.i18n.code_label("unit", &p.unit.replace(' ', "-"))
            },
            rule: p.rule.to_string(),
            seed: p.seed.to_string(),
        };
        match out.last_mut() {
            Some(s) if s.title == title => s.rules.push(row),
            _ => out.push(Section { title, rules: vec![row] }),
        }
    }
    out
}

async fn show(s: &AppState, ctx: &Ctx, version: Option<i64>) -> Response {
    let loaded = async {
        let active = store::playbook::active(&s.db).await?;
        let shown = match version {
            Some(v) => store::playbook::get(&s.db, v).await?,
            None => active.clone(),
        };
        let names = store::org::user_names(&s.db).await?;
        Ok::<_, store::Error>((active, shown, names))
    }
    .await;
    let (active, shown, names) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(ctx, e),
    };
    let Some(v) = shown else {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    };
    let tz = super::company_tz(s).await;
    // Only the active version can regrade, and only people who edit the playbook may.
    let regrade =
        if version.is_none() && ctx.can("edit_playbook") { crate::api::leads::preview(s).await.ok() } else { None };
    PlaybookPage {
        regrade,
        version: v.version,
        active_version: active.map_or(0, |a| a.version),
        note: v.note.clone().unwrap_or_default(),
        author: v.created_by.and_then(|id| names.get(&id).cloned()).unwrap_or_else(|| ctx.t("playbook-system")),
        created: local_time(v.created_at, &tz),
        sections: sections(ctx, &v.document),
        document: v.document,
        ctx: ctx.clone(),
    }
    .into_response()
}

pub async fn page(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewPlaybook) {
        return r;
    }
    show(&s, &ctx, None).await
}

pub async fn version_page(State(s): State<AppState>, ctx: Ctx, Path(version): Path<i64>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewPlaybook) {
        return r;
    }
    show(&s, &ctx, Some(version)).await
}

#[derive(Template, WebTemplate)]
#[template(path = "playbook_edit.html")]
pub struct EditPage {
    ctx: Ctx,
    based_on: i64,
    document: String,
    note: String,
    errors: Errors,
}

pub async fn edit(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::EditPlaybook) {
        return r;
    }
    match store::playbook::active(&s.db).await {
        Ok(Some(v)) => {
            EditPage { ctx, based_on: v.version, document: v.document, note: String::new(), errors: Errors::default() }
                .into_response()
        }
        Ok(None) => ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => internal(&ctx, e),
    }
}

fn form_text(f: &domain::Fields, k: &str) -> String {
    f.0.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

/// Saves the edited document as a new version, or shows each error beside the document,
/// naming its key.
pub async fn save(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::EditPlaybook);
    let f = form_fields(form.0);
    let document = form_text(&f, "document").replace("\r\n", "\n");
    let note = form_text(&f, "note").trim().to_string();
    let based_on = form_text(&f, "based_on").parse::<i64>().ok();
    let mut e = FieldErrors::new();
    if note.chars().count() > 500 {
        e.add("note", "must be at most 500 characters");
    }
    if let Err(errs) = Playbook::parse(&document) {
        e.merge(errs);
    }
    let page = |errors: Errors| EditPage {
        ctx: ctx.clone(),
        based_on: based_on.unwrap_or(0),
        document: document.clone(),
        note: note.clone(),
        errors,
    };
    if !e.is_empty() {
        return unprocessable(page(ctx.errors(&e)));
    }
    let note_opt = (!note.is_empty()).then_some(note.as_str());
    match store::playbook::create(&s.db, &u.actor(s.now()), &document, note_opt, based_on).await {
        Ok(_) => done("/playbook", "playbook-saved"),
        Err(store::Error::Conflict(m)) => {
            let mut errors = Errors::default();
            errors.0.insert("based_on".into(), ctx.i18n.problem(&m));
            (StatusCode::CONFLICT, page(errors)).into_response()
        }
        Err(err) => internal(&ctx, err),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "playbook_check.html")]
pub struct CheckFragment {
    ctx: Ctx,
    errors: Errors,
    changes: Vec<playbook::Change>,
}

/// htmx: validates the document in the editor and lists what saving it would change.
pub async fn check(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewPlaybook) {
        return r;
    }
    let f = form_fields(form.0);
    let document = form_text(&f, "document").replace("\r\n", "\n");
    match Playbook::parse(&document) {
        Err(e) => unprocessable(CheckFragment { errors: ctx.errors(&e), changes: Vec::new(), ctx }),
        Ok(_) => {
            let active = match store::playbook::active(&s.db).await {
                Ok(Some(v)) => v.document,
                Ok(None) => String::new(),
                Err(e) => return internal(&ctx, e),
            };
            let changes = playbook::diff(&active, &document).unwrap_or_default();
            CheckFragment { ctx, errors: Errors::default(), changes }.into_response()
        }
    }
}

struct VersionRow {
    version: i64,
    previous: Option<i64>,
    note: String,
    author: String,
    created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "playbook_history.html")]
pub struct HistoryPage {
    ctx: Ctx,
    versions: Vec<VersionRow>,
}

pub async fn history(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewPlaybook) {
        return r;
    }
    let loaded =
        async { Ok::<_, store::Error>((store::playbook::list(&s.db).await?, store::org::user_names(&s.db).await?)) }
            .await;
    let (list, names) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    let tz = super::company_tz(&s).await;
    let versions = list
        .iter()
        .enumerate()
        .map(|(i, v)| VersionRow {
            version: v.version,
            previous: list.get(i + 1).map(|p| p.version),
            note: v.note.clone().unwrap_or_default(),
            author: v.created_by.and_then(|id| names.get(&id).cloned()).unwrap_or_else(|| ctx.t("playbook-system")),
            created: local_time(v.created_at, &tz),
        })
        .collect();
    HistoryPage { ctx, versions }.into_response()
}

#[derive(serde::Deserialize)]
pub struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
}

struct ChangeRow {
    key: String,
    label: String,
    old: String,
    new: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "playbook_diff.html")]
pub struct DiffPage {
    ctx: Ctx,
    from: i64,
    to: i64,
    versions: Vec<i64>,
    changes: Vec<ChangeRow>,
}

pub async fn diff_page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<DiffQuery>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewPlaybook) {
        return r;
    }
    let list = match store::playbook::list(&s.db).await {
        Ok(l) => l,
        Err(e) => return internal(&ctx, e),
    };
    let versions: Vec<i64> = list.iter().map(|v| v.version).collect();
    let newest = versions.first().copied().unwrap_or(0);
    let parse = |v: &Option<String>, default: i64| v.as_deref().and_then(|x| x.parse::<i64>().ok()).unwrap_or(default);
    let to = parse(&q.to, newest);
    let from = parse(&q.from, (to - 1).max(1));
    let docs = async {
        Ok::<_, store::Error>((store::playbook::get(&s.db, from).await?, store::playbook::get(&s.db, to).await?))
    }
    .await;
    let (Some(a), Some(b)) = (match docs {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    }) else {
        return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found");
    };
    let changes = playbook::diff(&a.document, &b.document)
        .unwrap_or_default()
        .into_iter()
        .map(|c| ChangeRow {
            label: rule_label(&ctx, &c.key),
            key: c.key,
            old: c.old.unwrap_or_else(|| "—".into()),
            new: c.new.unwrap_or_else(|| "—".into()),
        })
        .collect();
    DiffPage { ctx, from, to, versions, changes }.into_response()
}

/// Regrades the open leads with the active version, after the preview on the playbook page.
pub async fn regrade(State(s): State<AppState>, ctx: Ctx) -> Response {
    let u = allowed!(ctx, Action::EditPlaybook);
    let loaded = match crate::rules::load(&s).await {
        Ok(l) => l,
        Err(e) => return internal(&ctx, e),
    };
    match store::leads::regrade_all(&s.db, &u.actor(s.now()), &loaded.rules()).await {
        Ok(_) => done("/playbook", "regraded"),
        Err(e) => internal(&ctx, e),
    }
}
