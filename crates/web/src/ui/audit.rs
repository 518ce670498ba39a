//! Audit log page (P-3): filterable, newest first, with before and after of every change.

use super::{Ctx, Errors, Opt, internal, local_time, unprocessable};
use crate::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::role::Action;

struct EntryView {
    at: String,
    actor: String,
    via: String,
    action: String,
    entity: String,
    entity_id: String,
    changed: String,
    before: String,
    after: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    ctx: Ctx,
    entries: Vec<EntryView>,
    actors: Vec<Opt>,
    entities: Vec<Opt>,
    actions: Vec<Opt>,
    vias: Vec<Opt>,
    from: String,
    until: String,
    next_query: Option<String>,
    errors: Errors,
}

fn pretty(v: &Option<serde_json::Value>) -> String {
    v.as_ref().map(|v| serde_json::to_string_pretty(v).unwrap_or_default()).unwrap_or_default()
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewAudit) {
        return r;
    }
    let q: Vec<(String, String)> = q.into_iter().filter(|(k, v)| !v.is_empty() && k != "done").collect();
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let tz = super::company_tz(&s).await;
    let loaded =
        async { Ok::<_, store::Error>((store::org::list_users(&s.db).await?, store::audit::entities(&s.db).await?)) }
            .await;
    let (users, entities) = match loaded {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    let i = &ctx.i18n;
    let any = ctx.t("audit-any");
    let with_any = |mut v: Vec<Opt>, current: &str| {
        v.insert(0, Opt { value: String::new(), label: any.clone(), selected: current.is_empty() });
        v
    };
    let actor = get("actor_id");
    let actors = with_any(
        users
            .iter()
            .map(|u| Opt {
                value: u.id.to_string(),
                label: u.display_name.clone(),
                selected: u.id.to_string() == actor,
            })
            .collect(),
        &actor,
    );
    let entity = get("entity");
    let entity_codes: Vec<&str> = entities.iter().map(String::as_str).collect();
    let entities = with_any(Opt::list(&entity_codes, &entity, |c| i.code_label("entity", c)), &entity);
    let action = get("action");
    let actions = with_any(
        Opt::list(&["create", "update", "delete", "login", "logout"], &action, |c| i.code_label("action", c)),
        &action,
    );
    let via = get("via");
    let vias = with_any(Opt::list(&["ui", "api", "cli", "system"], &via, |c| i.code_label("via", c)), &via);
    let mut page = AuditPage {
        entries: Vec::new(),
        actors,
        entities,
        actions,
        vias,
        from: get("from"),
        until: get("until"),
        next_query: None,
        errors: Errors::default(),
        ctx: ctx.clone(),
    };
    let mut fields = Fields::from_pairs(q.clone());
    if !fields.has("limit") {
        fields.set("limit", "50");
    }
    let filter = match crate::api::audit::parse_filter(&fields, &tz) {
        Ok(f) => f,
        Err(e) => {
            page.errors = ctx.errors(&e);
            return unprocessable(page);
        }
    };
    let entries = match store::audit::list(&s.db, &filter).await {
        Ok(x) => x,
        Err(e) => return internal(&ctx, e),
    };
    if entries.len() as i64 == filter.limit
        && let Some(last) = entries.last()
    {
        let mut next: Vec<String> = q
            .iter()
            .filter(|(k, _)| k != "before_id")
            .map(|(k, v)| format!("{k}={}", super::percent_encode(v)))
            .collect();
        next.push(format!("before_id={}", last.id));
        page.next_query = Some(next.join("&"));
    }
    page.entries = entries
        .into_iter()
        .map(|x| EntryView {
            at: local_time(x.at, &tz),
            changed: x.changed_fields().join(", "),
            before: pretty(&x.before),
            after: pretty(&x.after),
            actor: x.actor_label,
            via: i.code_label("via", &x.via),
            action: i.code_label("action", &x.action),
            entity: i.code_label("entity", &x.entity),
            entity_id: x.entity_id.unwrap_or_default(),
        })
        .collect();
    page.into_response()
}
