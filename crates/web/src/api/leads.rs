//! Leads (L-1…L-4): capture (idempotent), list within the caller's scope, detail with the
//! grading explanation and history, and answer changes (regrade).

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::rules::{lead_scope, load};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::lead::{BantAnswers, LeadInput};
use domain::role::Action;
use domain::{FieldErrors, Fields};
use serde::Serialize;
use store::leads::{Captured, Event, Lead};
use utoipa::{IntoParams, ToSchema};

/// The body of a capture: contact, source and any BANT answers (codes from the playbook).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LeadIn {
    name: Option<String>,
    company: Option<String>,
    title: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    province: Option<String>,
    city: Option<String>,
    /// smb | enterprise
    company_size: Option<String>,
    /// wechat | douyin | baidu_sem | xiaohongshu | trade_show | website_form | referral | email | webinar | other
    channel: String,
    campaign_id: Option<i64>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
    /// e.g. approved | planned | unknown
    budget: Option<String>,
    /// e.g. decision_maker | influencer | user
    authority: Option<String>,
    /// e.g. critical | clear | moderate | exploring | none
    need: Option<String>,
    /// e.g. within_3_months | within_12_months | later
    timeline: Option<String>,
    note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CaptureOut {
    pub lead: Lead,
    /// True when the capture matched an existing lead (same e-mail or phone) and was merged.
    pub merged: bool,
}

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let key = v.to_str().map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))?.trim();
    if key.is_empty() || key.len() > 200 {
        return Err(ApiError::field("Idempotency-Key", "must be 1 to 200 characters"));
    }
    Ok(Some(key.to_string()))
}

/// Captures a lead (L-1). New leads are graded (L-3) and routed (L-4) at once; a lead with
/// an e-mail or phone already known is merged into the existing one (L-2, answer 200).
/// Send an `Idempotency-Key` header to make retries safe: a retry with the same key returns
/// the first answer and never creates a second lead, even while the first is in flight.
/// A capture the database has not taken within `capture_timeout_ms` (it may still be
/// written), or one that found SQLite busy with another writer past its busy timeout
/// (nothing was written), answers 503 with `Retry-After` (L-1).
#[utoipa::path(post, path = "/leads", tag = "leads", request_body = LeadIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Any unique string per logical request, ≤ 200 characters")),
    responses((status = 201, body = CaptureOut), (status = 200, body = CaptureOut, description = "merged into an existing lead"),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "not written within `capture_timeout_ms` (it may still be), or the database busy with another writer (nothing written): retry after `Retry-After` with the same Idempotency-Key")))]
pub async fn capture_lead(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    headers: HeaderMap,
    JsonBody(f): JsonBody,
) -> ApiResult<Response> {
    u.require(Action::CaptureLeads)?;
    let key = idempotency_key(&headers)?;
    let loaded = load(&s).await?;
    let input = LeadInput::parse(&f, &loaded.playbook)?;
    let idem = match key {
        Some(key) => Some(store::capture::Idem {
            owner: format!("user:{}", u.user.id),
            key,
            // The body's fields in name order, serialized where they lie (the text a JSON
            // object of them makes, without copying them into one first).
            hash: store::secret_hash(&serde_json::to_string(&f.0).map_err(|e| store::Error::Other(e.to_string()))?),
        }),
        None => None,
    };
    // Through the capture writer: many concurrent captures share one transaction (L-1).
    let item = store::capture::Item::new(u.actor(s.now()), input, idem);
    let outcome = s.captures.capture(item, loaded).await?;
    if let Some(body) = outcome.body {
        // The answer as the writer stored it for the key: the JSON a retry gets.
        let status = if matches!(outcome.captured, Captured::Merged(_)) { StatusCode::OK } else { StatusCode::CREATED };
        return Ok(
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
        );
    }
    Ok(match outcome.captured {
        Captured::Created(lead) => {
            (StatusCode::CREATED, Json(CaptureOut { lead: *lead, merged: false })).into_response()
        }
        Captured::Merged(lead) => (StatusCode::OK, Json(CaptureOut { lead: *lead, merged: true })).into_response(),
        Captured::Replayed { status, body } => {
            let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), Json(body)).into_response();
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
    })
}

#[derive(Serialize, ToSchema)]
pub struct LeadPage {
    pub leads: Vec<Lead>,
    /// Pass as `before_id` for the next (older) page; absent on the last page.
    pub next_before_id: Option<i64>,
}

#[derive(serde::Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct LeadQuery {
    /// A | B | C
    grade: Option<String>,
    channel: Option<String>,
    /// sales | nurture | content | unassigned
    route: Option<String>,
    /// open | accepted | rejected | converted | lost
    status: Option<String>,
    owner_id: Option<i64>,
    campaign_id: Option<i64>,
    /// Name, company, e-mail or phone contains this.
    q: Option<String>,
    before_id: Option<i64>,
    /// 1–500, default 50.
    limit: Option<i64>,
}

/// Parses list filters; shared by the API and the UI.
pub fn parse_filter(f: &Fields) -> Result<store::leads::Filter, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(
        &mut e,
        &["grade", "channel", "route", "status", "owner_id", "campaign_id", "q", "before_id", "limit"],
    );
    let choice = |e: &mut FieldErrors, field: &str, all: &[&'static str]| {
        f.text(e, field).and_then(|v| domain::errors::parse_choice(e, field, &v, all, |x| x).map(str::to_string))
    };
    let grade = choice(&mut e, "grade", &["A", "B", "C"]);
    let channel = choice(&mut e, "channel", &domain::lead::Channel::ALL.iter().map(|c| c.code()).collect::<Vec<_>>());
    let route = choice(&mut e, "route", &["sales", "nurture", "content", "unassigned", "new"]);
    let status = choice(&mut e, "status", &["open", "accepted", "rejected", "converted", "lost"]);
    let owner_id = f.int(&mut e, "owner_id");
    let campaign_id = f.int(&mut e, "campaign_id");
    let q = f.optional(&mut e, "q", 100);
    let before_id = f.int(&mut e, "before_id");
    let limit = f.int(&mut e, "limit").unwrap_or(50);
    if !(1..=500).contains(&limit) {
        e.add("limit", "must be between 1 and 500");
    }
    e.into_result(store::leads::Filter { grade, channel, route, status, owner_id, campaign_id, q, before_id, limit })
}

/// Leads the caller may see (a sales rep: their own; a sales manager: the team's), newest first.
#[utoipa::path(get, path = "/leads", tag = "leads", params(LeadQuery),
    responses((status = 200, body = LeadPage), (status = 422, body = ErrorBody)))]
pub async fn list_leads(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<LeadPage>> {
    u.require(Action::ViewLeads)?;
    let filter = parse_filter(&Fields::from_pairs(q))?;
    let leads = store::leads::list(&s.db, lead_scope(&u), &filter).await?;
    let next_before_id = (leads.len() as i64 == filter.limit).then(|| leads.last().map(|l| l.id)).flatten();
    Ok(Json(LeadPage { leads, next_before_id }))
}

#[derive(Serialize, ToSchema)]
pub struct PartOut {
    /// budget | authority | need | timeline
    pub part: String,
    pub answer: Option<String>,
    pub points: i64,
    pub max: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LeadDetail {
    pub lead: Lead,
    /// L-3's explanation: each part's answer and points out of its maximum.
    pub parts: Vec<PartOut>,
    pub events: Vec<Event>,
}

/// Loads a lead the caller may see; others are 404 (their existence is not revealed).
pub async fn visible(s: &AppState, u: &crate::auth::CurrentUser, id: i64) -> ApiResult<Lead> {
    let lead = store::leads::get(&s.db, id).await?.ok_or(ApiError::NotFound)?;
    if lead_scope(u).allows(&lead) { Ok(lead) } else { Err(ApiError::NotFound) }
}

pub fn parts_of(l: &Lead, pb: &domain::playbook::Playbook) -> Vec<PartOut> {
    let b = &pb.leads.bant;
    [
        ("budget", &l.budget, l.budget_points, b.budget_max),
        ("authority", &l.authority, l.authority_points, b.authority_max),
        ("need", &l.need, l.need_points, b.need_max),
        ("timeline", &l.timeline, l.timeline_points, b.timeline_max),
    ]
    .into_iter()
    .map(|(part, answer, points, max)| PartOut { part: part.into(), answer: answer.clone(), points, max })
    .collect()
}

#[utoipa::path(get, path = "/leads/{id}", tag = "leads", params(("id" = i64, Path)),
    responses((status = 200, body = LeadDetail), (status = 404, body = ErrorBody)))]
pub async fn get_lead(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<LeadDetail>> {
    u.require(Action::ViewLeads)?;
    let lead = visible(&s, &u, id).await?;
    let pb = store::playbook::get(&s.db, lead.graded_version).await?.ok_or(ApiError::NotFound)?;
    let pb = domain::playbook::Playbook::parse(&pb.document).map_err(ApiError::Invalid)?;
    let events = store::leads::events(&s.db, id).await?;
    Ok(Json(LeadDetail { parts: parts_of(&lead, &pb), lead, events }))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AnswersIn {
    budget: Option<String>,
    authority: Option<String>,
    need: Option<String>,
    timeline: Option<String>,
}

pub fn parse_answers(f: &Fields, pb: &domain::playbook::Playbook) -> Result<BantAnswers, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &domain::lead::PARTS);
    let a = BantAnswers {
        budget: f.optional(&mut e, "budget", 40),
        authority: f.optional(&mut e, "authority", 40),
        need: f.optional(&mut e, "need", 40),
        timeline: f.optional(&mut e, "timeline", 40),
    };
    if let Err(x) = pb.check_answers(&a) {
        e.merge(x);
    }
    e.into_result(a)
}

/// Replaces the BANT answers; the lead is graded again with the active playbook (L-3) and,
/// if it now goes to sales, routed (L-4).
#[utoipa::path(put, path = "/leads/{id}/answers", tag = "leads", params(("id" = i64, Path)), request_body = AnswersIn,
    responses((status = 200, body = Lead), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_lead_answers(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Lead>> {
    u.require(Action::EditLeads)?;
    visible(&s, &u, id).await?;
    let loaded = load(&s).await?;
    let answers = parse_answers(&f, &loaded.playbook)?;
    Ok(Json(store::leads::set_answers(&s.db, &u.actor(s.now()), id, &answers, &loaded.rules()).await?))
}

#[derive(Serialize, ToSchema)]
pub struct GradeMove {
    pub from: String,
    pub to: String,
    pub leads: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RegradePreview {
    /// The active playbook version the leads would be graded with.
    pub version: i64,
    /// One count per grade change, e.g. A → B: 212.
    pub moves: Vec<GradeMove>,
    /// Open leads graded by another version.
    pub graded_by_other_versions: i64,
}

pub async fn preview(s: &AppState) -> ApiResult<RegradePreview> {
    let loaded = load(s).await?;
    let (moves, stale) = store::leads::regrade_preview(&s.db, &loaded.playbook, loaded.version).await?;
    Ok(RegradePreview {
        version: loaded.version,
        moves: moves.into_iter().map(|(from, to, leads)| GradeMove { from, to, leads }).collect(),
        graded_by_other_versions: stale,
    })
}

/// L-3: what regrading the open leads with the active playbook would change, before anyone
/// confirms it.
#[utoipa::path(get, path = "/leads/regrade", tag = "leads", responses((status = 200, body = RegradePreview), (status = 403, body = ErrorBody)))]
pub async fn regrade_preview(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<RegradePreview>> {
    u.require(Action::EditPlaybook)?;
    Ok(Json(preview(&s).await?))
}

#[derive(Serialize, ToSchema)]
pub struct RegradeOut {
    pub version: i64,
    pub changed_grade: usize,
}

/// L-3: regrades the open leads with the active playbook (and routes those that now go to
/// sales). Leads are only regraded by a new version when someone asks for it here.
#[utoipa::path(post, path = "/leads/regrade", tag = "leads", responses((status = 200, body = RegradeOut), (status = 403, body = ErrorBody)))]
pub async fn regrade(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<RegradeOut>> {
    u.require(Action::EditPlaybook)?;
    let loaded = load(&s).await?;
    let changed = store::leads::regrade_all(&s.db, &u.actor(s.now()), &loaded.rules()).await?;
    Ok(Json(RegradeOut { version: loaded.version, changed_grade: changed }))
}

/// L-2's weak match: leads with the same company and name, for a person to merge or dismiss.
#[utoipa::path(get, path = "/leads/{id}/duplicates", tag = "leads", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Lead>), (status = 404, body = ErrorBody)))]
pub async fn duplicates(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Lead>>> {
    visible(&s, &u, id).await?;
    let scope = lead_scope(&u);
    Ok(Json(store::leads::possible_duplicates(&s.db, id).await?.into_iter().filter(|l| scope.allows(l)).collect()))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OtherIn {
    /// The other lead's id.
    other: i64,
}

fn other_id(f: &Fields) -> Result<i64, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["other"]);
    let o = f.int(&mut e, "other");
    if o.is_none() && !e.0.contains_key("other") {
        e.add("other", "is required");
    }
    e.into_result(o.unwrap_or_default())
}

/// L-2: merges the other lead into this one, keeping both histories and all sources.
#[utoipa::path(post, path = "/leads/{id}/merge", tag = "leads", params(("id" = i64, Path)), request_body = OtherIn,
    responses((status = 200, body = Lead), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn merge(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Lead>> {
    u.require(Action::EditLeads)?;
    visible(&s, &u, id).await?;
    let other = other_id(&f)?;
    visible(&s, &u, other).await.map_err(|_| ApiError::field("other", format!("no lead with id {other}")))?;
    Ok(Json(store::leads::merge_leads(&s.db, &u.actor(s.now()), id, other).await?))
}

/// L-2: records that the other lead is a different person (it stops being suggested).
#[utoipa::path(post, path = "/leads/{id}/not-duplicate", tag = "leads", params(("id" = i64, Path)), request_body = OtherIn,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn not_duplicate(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<StatusCode> {
    u.require(Action::EditLeads)?;
    visible(&s, &u, id).await?;
    let other = other_id(&f)?;
    store::leads::dismiss_duplicate(&s.db, &u.actor(s.now()), id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}
