//! Leads (L-1…L-7): capture with idempotency and deduplication, grading, routing and SLA
//! clocks — all in one transaction per lead, with the lead's history in `lead_events`.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::calendar::WorkingCalendar;
use domain::lead::{Grading, LeadInput, RouteDecision, RoutingTeam, sla_due};
use domain::playbook::Playbook;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lead {
    pub id: i64,
    pub name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    /// smb | enterprise
    pub company_size: Option<String>,
    pub channel: String,
    pub campaign_id: Option<i64>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// BANT answers (codes from the playbook) and the points each earned.
    pub budget: Option<String>,
    pub authority: Option<String>,
    pub need: Option<String>,
    pub timeline: Option<String>,
    pub budget_points: i64,
    pub authority_points: i64,
    pub need_points: i64,
    pub timeline_points: i64,
    pub total: i64,
    /// A | B | C
    pub grade: String,
    /// The playbook version that made the grade.
    pub graded_version: i64,
    pub graded_at: Ts,
    /// sales | nurture | content | unassigned
    pub route: String,
    pub route_reason: Option<String>,
    /// open | accepted | rejected | converted | lost
    pub status: String,
    pub owner_id: Option<i64>,
    pub team_id: Option<i64>,
    pub assigned_at: Option<Ts>,
    pub first_response_due: Option<Ts>,
    pub first_response_at: Option<Ts>,
    pub follow_up_due: Option<Ts>,
    pub last_activity_at: Ts,
    /// awareness | consideration | decision
    pub nurture_stage: Option<String>,
    /// Every capture that produced or merged into this lead: channel, campaign, UTM, time.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub sources: Value,
    pub note: Option<String>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

pub(crate) const COLS: &str = "id, name, company, title, email, phone, province, city, company_size, channel, campaign_id, \
    utm_source, utm_medium, utm_campaign, utm_term, utm_content, budget, authority, need, timeline, budget_points, \
    authority_points, need_points, timeline_points, total, grade, graded_version, graded_at, route, route_reason, status, \
    owner_id, team_id, assigned_at, first_response_due, first_response_at, follow_up_due, last_activity_at, nurture_stage, \
    sources, note, created_at, updated_at";

pub(crate) fn select(tail: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM leads {tail}"))
}

/// What grading and routing need besides the lead: the active playbook and the calendar.
pub struct Rules<'a> {
    pub playbook: &'a Playbook,
    pub version: i64,
    pub calendar: &'a WorkingCalendar,
    pub tz: &'a jiff::tz::TimeZone,
}

/// The result of a capture.
#[derive(Debug, Clone)]
pub enum Captured {
    /// A new lead.
    Created(Box<Lead>),
    /// The capture matched an existing lead by e-mail or phone and was merged into it.
    Merged(Box<Lead>),
    /// A retry of an earlier request with the same idempotency key: its first answer.
    Replayed { status: u16, body: Value },
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: i64,
    pub lead_id: i64,
    pub at: Ts,
    /// created | merged | graded | routed | reassigned | responded | touched | stage | accepted | rejected | breach …
    pub kind: String,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
}

pub(crate) async fn event(tx: &mut Tx, actor: &Actor, lead_id: i64, kind: &str, data: Value) -> Result<()> {
    let sql =
        "INSERT INTO lead_events (lead_id, at, kind, actor_id, actor_label, data) VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(lead_id).bind(actor.now).bind(kind).bind(actor.user_id).bind(&actor.label).bind(&data)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub(crate) async fn get_tx(tx: &mut Tx, id: i64) -> Result<Option<Lead>> {
    Ok(on_tx!(tx, c => sqlx::query_as::<_, Lead>(select("WHERE id = $1")).bind(id).fetch_optional(c).await)?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Lead>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Lead>(select("WHERE id = $1")).bind(id).fetch_optional(p).await)?)
}

pub async fn events(db: &Db, lead_id: i64) -> Result<Vec<Event>> {
    let sql =
        "SELECT id, lead_id, at, kind, actor_id, actor_label, data FROM lead_events WHERE lead_id = $1 ORDER BY id";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(lead_id).fetch_all(p).await)?)
}

/// The sales teams as routing sees them: territories, reps (with availability), and the
/// round-robin position.
const ROUTING_TEAMS: &str = "SELECT t.id, t.territories, t.last_assigned_user_id FROM teams t \
     JOIN departments d ON d.id = t.department_id WHERE d.kind = 'sales' ORDER BY t.id";
const ROUTING_REPS: &str =
    "SELECT team_id, id, available FROM users WHERE role = 'sales_rep' AND active AND team_id IS NOT NULL ORDER BY id";

pub(crate) async fn routing_teams(tx: &mut Tx) -> Result<Vec<RoutingTeam>> {
    if matches!(tx, Tx::Sqlite(_)) {
        return crate::raw::with_conn(tx, routing_teams_raw).await;
    }
    let teams: Vec<(i64, String, Option<i64>)> = on_tx!(tx, c => sqlx::query_as(ROUTING_TEAMS).fetch_all(c).await)?;
    let reps: Vec<(i64, i64, bool)> = on_tx!(tx, c => sqlx::query_as(ROUTING_REPS).fetch_all(c).await)?;
    Ok(routing_teams_of(teams, reps))
}

/// `routing_teams` through SQLite's statement interface, on the caller's thread (the
/// capture writer reads them with its other lookups in one hand-off to the connection).
pub(crate) fn routing_teams_raw(c: &crate::raw::Conn) -> Result<Vec<RoutingTeam>> {
    let mut st = c.prepare(ROUTING_TEAMS)?;
    let mut teams = Vec::new();
    while st.next_row()? {
        // Ids start at 1: 0 is the NULL of "no rep yet".
        teams.push((st.column(0), st.column_text(1)?, Some(st.column(2)).filter(|id| *id != 0)));
    }
    let mut st = c.prepare(ROUTING_REPS)?;
    let mut reps = Vec::new();
    while st.next_row()? {
        reps.push((st.column(0), st.column(1), st.column(2) != 0));
    }
    Ok(routing_teams_of(teams, reps))
}

fn routing_teams_of(teams: Vec<(i64, String, Option<i64>)>, reps: Vec<(i64, i64, bool)>) -> Vec<RoutingTeam> {
    teams
        .into_iter()
        .map(|(team_id, territories, last_assigned)| RoutingTeam {
            team_id,
            territories: territories
                .split([',', '，', '、'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            reps: reps.iter().filter(|(t, _, _)| *t == team_id).map(|(_, id, a)| (*id, *a)).collect(),
            last_assigned,
        })
        .collect()
}

/// A grading as its history entry holds it (fields in name order, as a JSON object has
/// them): made into a value here, printed straight to text by the capture writer.
#[derive(Serialize)]
pub(crate) struct GradingEntry<'a> {
    grade: &'a str,
    parts: [PartEntry<'a>; 4],
    playbook_version: i64,
    total: i64,
}

#[derive(Serialize)]
struct PartEntry<'a> {
    answer: &'a Option<String>,
    max: i64,
    part: &'a str,
    points: i64,
}

impl GradingEntry<'_> {
    pub(crate) fn of(g: &Grading) -> GradingEntry<'_> {
        let parts =
            g.parts.each_ref().map(|p| PartEntry { answer: &p.answer, max: p.max, part: p.part, points: p.points });
        GradingEntry { grade: g.grade.code(), parts, playbook_version: g.playbook_version, total: g.total }
    }
}

pub(crate) fn grading_json(g: &Grading) -> Value {
    serde_json::to_value(GradingEntry::of(g)).expect("a grading serializes")
}

/// One of a lead's sources (where and when it was captured), as its `sources` hold it. The
/// fields are in name order, as a JSON object built by `json!` has them; a field the source
/// lacks is left out rather than written as null (most captures have no campaign or UTM
/// tags: 76 of a source's 134 bytes were nulls, in every row of a million-lead table).
#[derive(Serialize)]
struct Source<'a> {
    at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign_id: Option<i64>,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    utm_campaign: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    utm_medium: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    utm_source: Option<&'a str>,
}

impl<'a> Source<'a> {
    fn of(input: &'a LeadInput, at: &'a str) -> Source<'a> {
        Source {
            at,
            campaign_id: input.campaign_id,
            channel: input.channel.code(),
            utm_campaign: input.utm.campaign.as_deref(),
            utm_medium: input.utm.medium.as_deref(),
            utm_source: input.utm.source.as_deref(),
        }
    }
}

pub(crate) fn source_json(input: &LeadInput, now: Ts) -> Value {
    serde_json::to_value(Source::of(input, &now.to_text())).expect("a source serializes")
}

/// `source_json` as text, written straight from the lead (a large import makes a million),
/// `at` being the capture instant as text.
pub(crate) fn source_text(input: &LeadInput, at: &str) -> String {
    serde_json::to_string(&Source::of(input, at)).expect("a source serializes")
}

/// Routes a lead that is not yet with sales, and starts its SLA clocks if it gets an owner.
async fn route_tx(tx: &mut Tx, actor: &Actor, lead: &Lead, rules: &Rules<'_>) -> Result<()> {
    if lead.owner_id.is_some() || lead.status != "open" {
        return Ok(());
    }
    let grade = domain::lead::Grade::parse(&lead.grade).unwrap_or(domain::lead::Grade::C);
    let teams = routing_teams(tx).await?;
    let decision = domain::lead::route(rules.playbook, grade, lead.province.as_deref(), lead.city.as_deref(), &teams);
    let (route, reason, owner, team) = match &decision {
        RouteDecision::Sales { team_id, owner_id, reason } => {
            ("sales", Some(reason.clone()), Some(*owner_id), Some(*team_id))
        }
        RouteDecision::Unassigned { reason } => ("unassigned", Some(reason.clone()), None, None),
        RouteDecision::Nurture => ("nurture", None, None, None),
        RouteDecision::Content => ("content", None, None, None),
    };
    if route == lead.route && owner.is_none() {
        return Ok(());
    }
    let (first_due, follow_due) = match owner {
        Some(_) => {
            let due = sla_due(rules.playbook, rules.calendar, rules.tz, actor.now.get())
                .map_err(|e| Error::Other(format!("cannot compute the SLA: {e}")))?;
            (Some(Ts::new(due.first_response)), Some(Ts::new(due.follow_up)))
        }
        None => (None, None),
    };
    let stage = if route == "nurture" { Some("awareness") } else { None };
    let sql = "UPDATE leads SET route = $1, route_reason = $2, owner_id = $3, team_id = $4, assigned_at = $5, \
               first_response_due = $6, follow_up_due = $7, nurture_stage = COALESCE(nurture_stage, $8), updated_at = $9 WHERE id = $10";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(route).bind(&reason).bind(owner).bind(team).bind(owner.map(|_| actor.now)).bind(first_due).bind(follow_due)
        .bind(stage).bind(actor.now).bind(lead.id).execute(c).await.map(|r| r.rows_affected()))?;
    if let (Some(owner), Some(team)) = (owner, team) {
        on_tx!(tx, c => sqlx::query("UPDATE teams SET last_assigned_user_id = $1 WHERE id = $2")
            .bind(owner).bind(team).execute(c).await.map(|r| r.rows_affected()))?;
    }
    event(
        tx,
        actor,
        lead.id,
        "routed",
        json!({"decision": decision, "first_response_due": first_due, "follow_up_due": follow_due}),
    )
    .await
}

/// L-1/L-2/L-3/L-4: records a captured lead. With `idempotency = Some((owner, key, hash))`
/// a retry returns the first answer (see `capture::capture_many`, which this is a batch of
/// one of).
pub async fn capture(
    db: &Db,
    actor: &Actor,
    input: &LeadInput,
    rules: &Rules<'_>,
    idempotency: Option<(&str, &str, &str)>,
) -> Result<Captured> {
    let idem = idempotency.map(|(owner, key, hash)| crate::capture::Idem {
        owner: owner.to_string(),
        key: key.to_string(),
        hash: hash.to_string(),
    });
    let item = crate::capture::Item::new(actor.clone(), input.clone(), idem);
    crate::capture::capture_many(db, std::slice::from_ref(&item), rules).await?.pop().unwrap_or(Err(Error::NotFound))
}

/// L-2: a duplicate merges into the existing lead: missing details are filled in, the new
/// source is added to the list, newer BANT answers replace older ones (and regrade), and the
/// capture is kept in the history.
pub(crate) async fn merge_tx(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    input: &LeadInput,
    rules: &Rules<'_>,
) -> Result<Lead> {
    let before = get_tx(tx, id).await?.ok_or(Error::NotFound)?;
    let mut sources = before.sources.as_array().cloned().unwrap_or_default();
    sources.push(source_json(input, actor.now));
    let email_key = free_key(tx, "email_key", input.email_key(), id).await?;
    let phone_key = free_key(tx, "phone_key", input.phone_key(), id).await?;
    let sql = "UPDATE leads SET name = COALESCE(name, $1), company = COALESCE(company, $2), title = COALESCE(title, $3), \
        email = CASE WHEN email_key IS NULL AND $4 IS NOT NULL THEN $5 ELSE email END, email_key = COALESCE(email_key, $4), \
        phone = CASE WHEN phone_key IS NULL AND $6 IS NOT NULL THEN $7 ELSE phone END, phone_key = COALESCE(phone_key, $6), \
        province = COALESCE(province, $8), city = COALESCE(city, $9), company_size = COALESCE(company_size, $10), \
        sources = $11, last_activity_at = $12, updated_at = $12 WHERE id = $13";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(&input.name).bind(&input.company).bind(&input.title).bind(&email_key).bind(&input.email)
        .bind(&phone_key).bind(&input.phone).bind(&input.province).bind(&input.city).bind(input.company_size.map(|s| s.code()))
        .bind(Value::Array(sources)).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    event(
        tx,
        actor,
        id,
        "merged",
        json!({"capture": source_json(input, actor.now), "name": input.name, "company": input.company,
        "email": input.email, "phone": input.phone}),
    )
    .await?;
    refresh_search_tx(tx, id).await?;
    let answers = merged_answers(&before, &input.answers);
    regrade_tx(tx, actor, id, &answers, rules).await?;
    if actor.via == crate::Via::Form {
        crate::automation::fire(tx, domain::automation::Trigger::FormSubmitted, id, actor.now, rules).await?;
    }
    let after = get_tx(tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(
        tx,
        actor,
        Change::updated(
            "lead",
            id,
            json!({"sources": before.sources.as_array().map_or(0, Vec::len)}),
            json!({"sources": after.sources.as_array().map_or(0, Vec::len), "merged_capture": input.channel.code()}),
        ),
    )
    .await?;
    Ok(after)
}

/// Recomputes a lead's search text and weak key from its fields (after a merge filled some
/// in).
pub(crate) async fn refresh_search_tx(tx: &mut Tx, id: i64) -> Result<()> {
    let l = get_tx(tx, id).await?.ok_or(Error::NotFound)?;
    let texts = [&l.name, &l.company, &l.title, &l.email, &l.province, &l.city].map(|t| t.as_deref());
    let text = domain::lead::search_text_of(texts, l.phone.as_deref());
    // L-2's weak key too: a lead that gets its company or name by a merge can then be
    // someone's possible duplicate.
    let weak = domain::lead::company_name_key(l.company.as_deref().unwrap_or(""), l.name.as_deref().unwrap_or(""));
    let sql = "UPDATE leads SET search_text = $1, weak_key = $2 WHERE id = $3";
    on_tx!(tx, c => sqlx::query(sql).bind(&text).bind(&weak).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// `key` unless another lead than `id` already holds it in `col` (copying it would break
/// uniqueness; the two leads stay separate and the capture is in the history).
async fn free_key(tx: &mut Tx, col: &'static str, key: Option<String>, id: i64) -> Result<Option<String>> {
    let Some(k) = key else { return Ok(None) };
    let sql = format!("SELECT COUNT(*) FROM leads WHERE {col} = $1 AND id <> $2");
    let n: i64 =
        on_tx!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(&k).bind(id).fetch_one(c).await)?;
    Ok((n == 0).then_some(k))
}

fn merged_answers(l: &Lead, new: &domain::lead::BantAnswers) -> domain::lead::BantAnswers {
    domain::lead::BantAnswers {
        budget: new.budget.clone().or_else(|| l.budget.clone()),
        authority: new.authority.clone().or_else(|| l.authority.clone()),
        need: new.need.clone().or_else(|| l.need.clone()),
        timeline: new.timeline.clone().or_else(|| l.timeline.clone()),
    }
}

/// L-3: grades a lead again from `answers` with the given rules; records the change and
/// routes the lead if its new grade sends it to sales.
async fn regrade_tx(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    answers: &domain::lead::BantAnswers,
    rules: &Rules<'_>,
) -> Result<()> {
    let before = get_tx(tx, id).await?.ok_or(Error::NotFound)?;
    let g = rules.playbook.grade(answers, rules.version).map_err(Error::Invalid)?;
    let same = before.budget == answers.budget
        && before.authority == answers.authority
        && before.need == answers.need
        && before.timeline == answers.timeline
        && before.graded_version == rules.version;
    if same {
        return Ok(());
    }
    let sql = "UPDATE leads SET budget = $1, authority = $2, need = $3, timeline = $4, budget_points = $5, \
        authority_points = $6, need_points = $7, timeline_points = $8, total = $9, grade = $10, graded_version = $11, \
        graded_at = $12, updated_at = $12 WHERE id = $13";
    on_tx!(tx, c => sqlx::query(sql)
        .bind(&answers.budget).bind(&answers.authority).bind(&answers.need).bind(&answers.timeline)
        .bind(g.parts[0].points).bind(g.parts[1].points).bind(g.parts[2].points).bind(g.parts[3].points)
        .bind(g.total).bind(g.grade.code()).bind(g.playbook_version).bind(actor.now).bind(id)
        .execute(c).await.map(|r| r.rows_affected()))?;
    let mut data = grading_json(&g);
    data["previous_grade"] = json!(before.grade);
    data["previous_total"] = json!(before.total);
    event(tx, actor, id, "graded", data).await?;
    if before.grade != g.grade.code() {
        crate::automation::fire(tx, domain::automation::Trigger::GradeChanged, id, actor.now, rules).await?;
    }
    let after = get_tx(tx, id).await?.ok_or(Error::NotFound)?;
    route_tx(tx, actor, &after, rules).await
}

/// Changes a lead's answers (L-3: changing the answers regrades the lead).
pub async fn set_answers(
    db: &Db,
    actor: &Actor,
    id: i64,
    answers: &domain::lead::BantAnswers,
    rules: &Rules<'_>,
) -> Result<Lead> {
    let mut tx = db.begin().await?;
    let before = get_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    regrade_tx(&mut tx, actor, id, answers, rules).await?;
    let after = get_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    let view = |l: &Lead| {
        json!({"budget": l.budget, "authority": l.authority, "need": l.need, "timeline": l.timeline,
        "total": l.total, "grade": l.grade, "graded_version": l.graded_version})
    };
    audit::record(&mut tx, actor, Change::updated("lead", id, view(&before), view(&after))).await?;
    tx.commit().await?;
    Ok(after)
}

/// Who may see which leads (SPEC L permissions): everyone in marketing and management sees
/// all; a sales manager sees the team's; a sales rep only their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Team(i64),
    Owner(i64),
    Nothing,
}

impl Scope {
    pub fn allows(self, l: &Lead) -> bool {
        match self {
            Scope::All => true,
            Scope::Team(t) => l.team_id == Some(t),
            Scope::Owner(u) => l.owner_id == Some(u),
            Scope::Nothing => false,
        }
    }
}

/// Filters for a lead list; keyset-paginated by id, newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub grade: Option<String>,
    pub channel: Option<String>,
    pub route: Option<String>,
    pub status: Option<String>,
    pub owner_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub q: Option<String>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

pub async fn list(db: &Db, scope: Scope, f: &Filter) -> Result<Vec<Lead>> {
    // L-1 search: the same segmented query on both backends' full-text index; a query with
    // nothing to search by (only punctuation) finds nothing rather than everything.
    let search = match f.q.as_deref().filter(|q| !q.trim().is_empty()).map(domain::search::Query::parse) {
        None => None,
        Some(None) => return Ok(Vec::new()),
        Some(Some(q)) => Some(q),
    };
    let scope = match scope {
        Scope::All => None,
        Scope::Team(t) => Some((" AND team_id = ", t)),
        Scope::Owner(u) => Some((" AND owner_id = ", u)),
        Scope::Nothing => return Ok(Vec::new()),
    };
    Ok(match (db, &search) {
        // SQLite's index is in the search file, which the database's own connections do
        // not attach (`search::readers`).
        (Db::Sqlite(p), Some(q)) => {
            let mut qb = filtered("", f, scope);
            crate::search::push_match(&mut qb, q);
            page(qb, f).build_query_as::<Lead>().fetch_all(&crate::search::readers(p)).await?
        }
        (Db::Sqlite(p), None) => page(filtered("", f, scope), f).build_query_as::<Lead>().fetch_all(p).await?,
        (Db::Postgres(p), q) => {
            let mut qb = filtered("", f, scope);
            if let Some(q) = q {
                qb.push(" AND array_to_tsvector(string_to_array(search_text, ' ')) @@ ")
                    .push_bind(q.tsquery())
                    .push("::tsquery");
            }
            page(qb, f).build_query_as::<Lead>().fetch_all(p).await?
        }
    })
}

/// A lead list's statement up to its search: only the filters given go into it, since
/// `($1 IS NULL OR col = $1)` hides the indexes from SQLite's planner, and a keyset page
/// deep in a million leads then walked half the table (190 ms instead of 3 ms,
/// BENCHMARKS.md).
/// `head` goes before it (`EXPLAIN QUERY PLAN `, for [`list_plan`]).
fn filtered<DB: sqlx::Database>(head: &str, f: &Filter, scope: Option<(&str, i64)>) -> sqlx::QueryBuilder<DB>
where
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(format!("{head}SELECT {COLS} FROM leads WHERE TRUE"));
    let texts = [
        (" AND grade = ", &f.grade),
        (" AND channel = ", &f.channel),
        (" AND route = ", &f.route),
        (" AND status = ", &f.status),
    ];
    for (sql, v) in texts {
        if let Some(v) = v {
            qb.push(sql).push_bind(v.clone());
        }
    }
    for (sql, v) in
        [(" AND owner_id = ", f.owner_id), (" AND campaign_id = ", f.campaign_id), (" AND id < ", f.before_id)]
    {
        if let Some(v) = v {
            qb.push(sql).push_bind(v);
        }
    }
    if let Some((sql, v)) = scope {
        qb.push(sql).push_bind(v);
    }
    qb
}

/// SQLite's plan for a lead list without a search, one line per step (`None` on
/// PostgreSQL): for checking that every filter reads its page off an index.
pub async fn list_plan(db: &Db, f: &Filter) -> Result<Option<Vec<String>>> {
    let Db::Sqlite(p) = db else { return Ok(None) };
    let rows: Vec<(i64, i64, i64, String)> =
        page(filtered("EXPLAIN QUERY PLAN ", f, None), f).build_query_as().fetch_all(p).await?;
    Ok(Some(rows.into_iter().map(|r| r.3).collect()))
}

/// The keyset page's order and size.
fn page<DB: sqlx::Database>(mut qb: sqlx::QueryBuilder<DB>, f: &Filter) -> sqlx::QueryBuilder<DB>
where
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit.clamp(1, 500));
    qb
}

pub async fn count(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM leads").fetch_one(p).await)?)
}

/// Leads a new playbook version may regrade: not yet converted or lost.
const REGRADABLE: &str = "status IN ('open', 'accepted', 'rejected')";

#[derive(sqlx::FromRow)]
struct Answers {
    id: i64,
    grade: String,
    graded_version: i64,
    budget: Option<String>,
    authority: Option<String>,
    need: Option<String>,
    timeline: Option<String>,
}

impl Answers {
    fn bant(&self) -> domain::lead::BantAnswers {
        domain::lead::BantAnswers {
            budget: self.budget.clone(),
            authority: self.authority.clone(),
            need: self.need.clone(),
            timeline: self.timeline.clone(),
        }
    }
}

/// How many open leads would change grade under `playbook` (one count per move such as
/// A → B), and how many were graded by another version. Answers the new version no longer
/// knows count as unanswered.
pub async fn regrade_preview(db: &Db, playbook: &Playbook, version: i64) -> Result<(Vec<(String, String, i64)>, i64)> {
    let mut moves: std::collections::BTreeMap<(String, String), i64> = Default::default();
    let mut stale = 0;
    let mut after = 0i64;
    loop {
        let sql = format!(
            "SELECT id, grade, graded_version, budget, authority, need, timeline FROM leads WHERE {REGRADABLE} AND id > $1 ORDER BY id LIMIT 2000"
        );
        let page: Vec<Answers> =
            on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(after).fetch_all(p).await)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for a in &page {
            if a.graded_version != version {
                stale += 1;
            }
            let g = grade_known(playbook, &a.bant(), version);
            if g.grade.code() != a.grade {
                *moves.entry((a.grade.clone(), g.grade.code().to_string())).or_default() += 1;
            }
        }
    }
    Ok((moves.into_iter().map(|((a, b), n)| (a, b, n)).collect(), stale))
}

/// Grades with the answers the playbook knows; unknown answers score as unanswered.
fn grade_known(pb: &Playbook, a: &domain::lead::BantAnswers, version: i64) -> Grading {
    let known = |part: &str, v: &Option<String>| v.clone().filter(|x| pb.answers_for(part).iter().any(|(k, _)| k == x));
    let a = domain::lead::BantAnswers {
        budget: known("budget", &a.budget),
        authority: known("authority", &a.authority),
        need: known("need", &a.need),
        timeline: known("timeline", &a.timeline),
    };
    match pb.grade(&a, version) {
        Ok(g) => g,
        Err(_) => unreachable!("answers were filtered to the known ones"),
    }
}

/// L-3: regrades every open lead with the active rules (when an admin says so), routing the
/// ones whose new grade sends them to sales. Returns how many changed grade.
pub async fn regrade_all(db: &Db, actor: &Actor, rules: &Rules<'_>) -> Result<usize> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "SELECT id, grade, graded_version, budget, authority, need, timeline FROM leads WHERE {REGRADABLE} AND graded_version <> $1 ORDER BY id"
    );
    let all: Vec<Answers> =
        on_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(rules.version).fetch_all(c).await)?;
    let mut changed = 0;
    for a in &all {
        let g = grade_known(rules.playbook, &a.bant(), rules.version);
        let upd = "UPDATE leads SET budget_points = $1, authority_points = $2, need_points = $3, timeline_points = $4, total = $5, \
                   grade = $6, graded_version = $7, graded_at = $8, updated_at = $8 WHERE id = $9";
        on_tx!(&mut tx, c => sqlx::query(upd)
            .bind(g.parts[0].points).bind(g.parts[1].points).bind(g.parts[2].points).bind(g.parts[3].points)
            .bind(g.total).bind(g.grade.code()).bind(rules.version).bind(actor.now).bind(a.id)
            .execute(c).await.map(|r| r.rows_affected()))?;
        if g.grade.code() != a.grade {
            changed += 1;
            let mut data = grading_json(&g);
            data["previous_grade"] = json!(a.grade);
            event(&mut tx, actor, a.id, "graded", data).await?;
            crate::automation::fire(&mut tx, domain::automation::Trigger::GradeChanged, a.id, actor.now, rules).await?;
            let lead = get_tx(&mut tx, a.id).await?.ok_or(Error::NotFound)?;
            route_tx(&mut tx, actor, &lead, rules).await?;
        }
    }
    audit::record(
        &mut tx,
        actor,
        Change::new(
            "update",
            "lead_regrade",
            Some(rules.version.to_string()),
            None,
            Some(json!({"playbook_version": rules.version, "leads": all.len(), "changed_grade": changed})),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(changed)
}

/// L-2's weak match: other leads with the same company and name, not dismissed as different.
pub async fn possible_duplicates(db: &Db, id: i64) -> Result<Vec<Lead>> {
    if let Db::Sqlite(p) = db {
        // SQLite keeps the weak keys' index in the search file (migration 0028).
        let readers = crate::search::readers(p);
        let key: Option<Option<String>> =
            sqlx::query_scalar("SELECT weak_key FROM leads WHERE id = $1").bind(id).fetch_optional(&readers).await?;
        let Some(Some(key)) = key else { return Ok(Vec::new()) };
        let mut qb = sqlx::QueryBuilder::new(format!("SELECT {COLS} FROM leads WHERE id <> "));
        qb.push_bind(id).push(" AND NOT EXISTS (SELECT 1 FROM duplicate_dismissals d WHERE (d.lead_a = ");
        qb.push_bind(id)
            .push(" AND d.lead_b = leads.id) OR (d.lead_b = ")
            .push_bind(id)
            .push(" AND d.lead_a = leads.id))");
        crate::search::push_weak_match(&mut qb, &key);
        qb.push(" ORDER BY id LIMIT 20");
        return Ok(qb.build_query_as::<Lead>().fetch_all(&readers).await?);
    }
    let sql = select(
        "WHERE weak_key = (SELECT weak_key FROM leads WHERE id = $1) AND weak_key IS NOT NULL AND id <> $1 \
         AND NOT EXISTS (SELECT 1 FROM duplicate_dismissals d WHERE (d.lead_a = $1 AND d.lead_b = leads.id) \
         OR (d.lead_b = $1 AND d.lead_a = leads.id)) ORDER BY id LIMIT 20",
    );
    Ok(on_db!(db, p => sqlx::query_as::<_, Lead>(sql).bind(id).fetch_all(p).await)?)
}

/// Runs the one-off repairs migrations left to the application (`data_repairs`, migration
/// 0030), each once; returns how many leads were repaired. Another instance starting at the
/// same time may run one too: each is harmless twice.
pub async fn run_data_repairs(db: &Db) -> Result<u64> {
    let pending: Vec<String> = on_db!(db, p => sqlx::query_scalar("SELECT name FROM data_repairs").fetch_all(p).await)?;
    if !pending.iter().any(|n| n == "weak_keys") {
        return Ok(0);
    }
    // L-2: leads with a company and a name but no weak key (a merge filled them in before
    // migration 0028) get theirs.
    let mut tx = db.begin().await?;
    let sql = "SELECT id, company, name FROM leads WHERE weak_key IS NULL AND company IS NOT NULL AND name IS NOT NULL";
    let rows: Vec<(i64, String, String)> = on_tx!(&mut tx, c => sqlx::query_as(sql).fetch_all(c).await)?;
    let mut repaired = 0;
    for (id, company, name) in rows {
        let Some(key) = domain::lead::company_name_key(&company, &name) else { continue };
        repaired += on_tx!(&mut tx, c => sqlx::query("UPDATE leads SET weak_key = $1 WHERE id = $2").bind(&key).bind(id)
            .execute(c).await.map(|r| r.rows_affected()))?;
    }
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM data_repairs WHERE name = 'weak_keys'").execute(c).await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(repaired)
}

/// Records that two leads are different people.
pub async fn dismiss_duplicate(db: &Db, actor: &Actor, a: i64, b: i64) -> Result<()> {
    let (a, b) = (a.min(b), a.max(b));
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, c => sqlx::query("INSERT INTO duplicate_dismissals (lead_a, lead_b, user_id, at) VALUES ($1, $2, $3, $4) \
        ON CONFLICT (lead_a, lead_b) DO NOTHING").bind(a).bind(b).bind(actor.user_id).bind(actor.now).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        actor,
        Change::created("duplicate_dismissal", format!("{a}-{b}"), json!({"lead_a": a, "lead_b": b})),
    )
    .await?;
    tx.commit().await
}

/// L-2: merges lead `from` into lead `into`: missing details are filled in, sources and
/// the whole history (events, follow-ups, touches) move over, and `from` is removed.
pub async fn merge_leads(db: &Db, actor: &Actor, into: i64, from: i64) -> Result<Lead> {
    if into == from {
        return Err(Error::field("from", "a lead cannot be merged into itself"));
    }
    let mut tx = db.begin().await?;
    let a = get_tx(&mut tx, into).await?.ok_or(Error::NotFound)?;
    let b = get_tx(&mut tx, from).await?.ok_or_else(|| Error::field("from", format!("no lead with id {from}")))?;
    let has_deal: i64 = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM deals WHERE lead_id = $1").bind(from).fetch_one(c).await)?;
    if has_deal > 0 {
        return Err(Error::Conflict("the lead to merge away has a deal; merge the other way round".into()));
    }
    let mut sources = a.sources.as_array().cloned().unwrap_or_default();
    sources.extend(b.sources.as_array().cloned().unwrap_or_default());
    for table in ["lead_events", "lead_activities", "lead_touches", "sla_breaches"] {
        let sql = format!("UPDATE {table} SET lead_id = $1 WHERE lead_id = $2");
        on_tx!(&mut tx, c => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(into).bind(from).execute(c).await.map(|r| r.rows_affected()))?;
    }
    // The other lead's unique keys go with it; take them over if this lead has none.
    let (email, email_key, phone, phone_key) = (
        b.email.clone(),
        b.email.as_deref().and_then(domain::lead::normalize_email),
        b.phone.clone(),
        b.phone.as_deref().and_then(domain::lead::normalize_phone),
    );
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM leads WHERE id = $1").bind(from).execute(c).await.map(|r| r.rows_affected()))?;
    let sql = "UPDATE leads SET name = COALESCE(name, $1), company = COALESCE(company, $2), title = COALESCE(title, $3), \
        email = CASE WHEN email_key IS NULL THEN $4 ELSE email END, email_key = COALESCE(email_key, $5), \
        phone = CASE WHEN phone_key IS NULL THEN $6 ELSE phone END, phone_key = COALESCE(phone_key, $7), \
        province = COALESCE(province, $8), city = COALESCE(city, $9), sources = $10, updated_at = $11 WHERE id = $12";
    on_tx!(&mut tx, c => sqlx::query(sql).bind(&b.name).bind(&b.company).bind(&b.title).bind(&email).bind(&email_key)
        .bind(&phone).bind(&phone_key).bind(&b.province).bind(&b.city).bind(Value::Array(sources)).bind(actor.now).bind(into)
        .execute(c).await.map(|r| r.rows_affected()))?;
    refresh_search_tx(&mut tx, into).await?;
    event(
        &mut tx,
        actor,
        into,
        "merged_lead",
        json!({"from": from, "name": b.name, "company": b.company, "email": b.email, "phone": b.phone}),
    )
    .await?;
    audit::record(
        &mut tx,
        actor,
        Change::deleted("lead", from, json!({"merged_into": into, "name": b.name, "company": b.company})),
    )
    .await?;
    let after = get_tx(&mut tx, into).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(after)
}
