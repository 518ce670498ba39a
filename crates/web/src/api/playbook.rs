//! The playbook (P-1, E-3): read the active version, check and save new versions, list
//! and diff versions.

use super::{ApiPath, JsonBody, ts};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use domain::playbook::{self, Playbook};
use domain::role::Action;
use domain::{FieldErrors, Fields};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct RuleOut {
    /// Dotted key, e.g. `leads.bant.grade_a_min`.
    pub key: String,
    /// The value as written in the document.
    pub value: String,
    pub unit: String,
    /// The SPEC rule id(s) this value parameterises.
    pub rule: String,
    /// The source document and section it comes from.
    pub seed: String,
}

#[derive(Serialize, ToSchema)]
pub struct PlaybookOut {
    pub version: i64,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: String,
    /// The TOML document.
    pub document: String,
    pub rules: Vec<RuleOut>,
}

impl From<store::playbook::Version> for PlaybookOut {
    fn from(v: store::playbook::Version) -> Self {
        let rules = playbook::values(&v.document)
            .into_iter()
            .map(|r| RuleOut {
                key: r.key,
                value: r.value,
                unit: r.param.unit.into(),
                rule: r.param.rule.into(),
                seed: r.param.seed.into(),
            })
            .collect();
        PlaybookOut {
            version: v.version,
            note: v.note,
            created_by: v.created_by,
            created_at: ts(v.created_at),
            document: v.document,
            rules,
        }
    }
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlaybookIn {
    /// The complete TOML document.
    document: String,
    /// Why this version was made.
    note: Option<String>,
    /// The version this edit started from; if another version was saved since, 409.
    based_on: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct VersionInfoOut {
    pub version: i64,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChangeOut {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DiffOut {
    pub from: i64,
    pub to: i64,
    pub changes: Vec<ChangeOut>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckOut {
    pub valid: bool,
    /// What would change against the active version if this document were saved.
    pub changes: Vec<ChangeOut>,
}

fn changes(list: Vec<playbook::Change>) -> Vec<ChangeOut> {
    list.into_iter().map(|c| ChangeOut { key: c.key, old: c.old, new: c.new }).collect()
}

async fn active(s: &AppState) -> ApiResult<store::playbook::Version> {
    store::playbook::active(&s.db).await?.ok_or(ApiError::NotFound)
}

/// The document, note and base version from a body; the document is validated in full.
fn parse_body(f: &Fields) -> Result<(String, Option<String>, Option<i64>), FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["document", "note", "based_on"]);
    let document = match f.0.get("document") {
        Some(serde_json::Value::String(d)) => d.clone(),
        Some(_) => {
            e.add("document", "must be a string");
            String::new()
        }
        None => {
            e.add("document", "is required");
            String::new()
        }
    };
    let note = f.optional(&mut e, "note", 500);
    let based_on = f.int(&mut e, "based_on");
    if !e.is_empty() {
        return Err(e);
    }
    Playbook::parse(&document)?;
    Ok((document, note, based_on))
}

#[utoipa::path(get, path = "/playbook", tag = "playbook",
    responses((status = 200, body = PlaybookOut), (status = 401, body = ErrorBody)))]
pub async fn get_playbook(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<PlaybookOut>> {
    u.require(Action::ViewPlaybook)?;
    Ok(Json(active(&s).await?.into()))
}

/// Validates and saves a new version, which becomes the active one. Errors name the key:
/// `leads.bant.grade_a_min: must be an integer, got a string`.
#[utoipa::path(post, path = "/playbook", tag = "playbook", request_body = PlaybookIn,
    responses((status = 201, body = PlaybookOut), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_version(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<PlaybookOut>)> {
    u.require(Action::EditPlaybook)?;
    let (document, note, based_on) = parse_body(&f)?;
    let v = store::playbook::create(&s.db, &u.actor(s.now()), &document, note.as_deref(), based_on).await?;
    Ok((StatusCode::CREATED, Json(v.into())))
}

/// Validates a document without saving it, and shows what it would change.
#[utoipa::path(post, path = "/playbook/check", tag = "playbook", request_body = PlaybookIn,
    responses((status = 200, body = CheckOut), (status = 422, body = ErrorBody)))]
pub async fn check_playbook(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<CheckOut>> {
    u.require(Action::ViewPlaybook)?;
    let (document, _, _) = parse_body(&f)?;
    let current = active(&s).await?;
    let diff = playbook::diff(&current.document, &document)?;
    Ok(Json(CheckOut { valid: true, changes: changes(diff) }))
}

#[utoipa::path(get, path = "/playbook/versions", tag = "playbook",
    responses((status = 200, body = Vec<VersionInfoOut>), (status = 401, body = ErrorBody)))]
pub async fn list_versions(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<VersionInfoOut>>> {
    u.require(Action::ViewPlaybook)?;
    let list = store::playbook::list(&s.db).await?;
    Ok(Json(
        list.into_iter()
            .map(|v| VersionInfoOut {
                version: v.version,
                note: v.note,
                created_by: v.created_by,
                created_at: ts(v.created_at),
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/playbook/versions/{version}", tag = "playbook", params(("version" = i64, Path)),
    responses((status = 200, body = PlaybookOut), (status = 404, body = ErrorBody)))]
pub async fn get_version(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(version): ApiPath<i64>,
) -> ApiResult<Json<PlaybookOut>> {
    u.require(Action::ViewPlaybook)?;
    Ok(Json(store::playbook::get(&s.db, version).await?.ok_or(ApiError::NotFound)?.into()))
}

#[derive(Deserialize, IntoParams)]
pub struct DiffQuery {
    /// The older version.
    from: Option<String>,
    /// The newer version (default: the active one).
    to: Option<String>,
}

#[utoipa::path(get, path = "/playbook/diff", tag = "playbook", params(DiffQuery),
    responses((status = 200, body = DiffOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn diff_versions(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<DiffOut>> {
    u.require(Action::ViewPlaybook)?;
    let mut e = FieldErrors::new();
    let num = |e: &mut FieldErrors, field: &str, v: &Option<String>| -> Option<i64> {
        let v = v.as_deref()?.trim();
        match v.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                e.add(field, "must be a version number");
                None
            }
        }
    };
    let from = num(&mut e, "from", &q.from);
    let to = num(&mut e, "to", &q.to);
    if from.is_none() && !e.0.contains_key("from") {
        e.add("from", "is required");
    }
    if !e.is_empty() {
        return Err(e.into());
    }
    let to = match to {
        Some(t) => store::playbook::get(&s.db, t).await?.ok_or(ApiError::NotFound)?,
        None => active(&s).await?,
    };
    let from = store::playbook::get(&s.db, from.unwrap_or_default()).await?.ok_or(ApiError::NotFound)?;
    let diff = playbook::diff(&from.document, &to.document)?;
    Ok(Json(DiffOut { from: from.version, to: to.version, changes: changes(diff) }))
}
