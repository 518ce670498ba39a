//! L-1…L-4 capture, many at a time: idempotency (L-1), dedup (L-2), grading (L-3) and routing
//! (L-4) for a batch of captures in one transaction, with set-based writes.
//!
//! Every capture goes through here — one at a time (`leads::capture`) or, for the capture
//! API, gathered by the `Queue`: one writer takes whatever requests are waiting, writes
//! them in one transaction and answers each when it has committed (an acknowledged capture
//! is durable). Under load the transactions grow and their fixed cost is shared; with one
//! request in flight a batch is that one request. On SQLite, which has one writer at a time
//! anyway, this also ends the waiting for the write lock. Every capture waits on the writer,
//! so it runs on a thread of its own on a connection it keeps (`writer::Writer`), and on
//! SQLite writes its rows through the statement interface (`raw`).

use crate::audit::{self, Actor, Change};
use crate::import::existing;
use crate::leads::{Captured, GradingEntry, Lead, Rules, grading_json, merge_tx, routing_teams, source_json};
use crate::rules::Loaded;
use crate::{Db, Error, Result, Ts, Tx, on_tx};
use domain::automation::Trigger;
use domain::lead::{Grading, LeadInput, RouteDecision, Score, route, sla_due};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// An idempotency key: whose it is, the key, and the hash of the request body it came with.
#[derive(Debug, Clone)]
pub struct Idem {
    pub owner: String,
    pub key: String,
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub actor: Actor,
    pub input: LeadInput,
    pub idem: Option<Idem>,
    /// The lead's search text (segmented), its sources as JSON text (an array of its one
    /// source) and its dedup keys (e-mail, phone, company and name), made by the request
    /// (`Item::new`) rather than by the writer: every capture waits for the one writing
    /// thread, and these were a good part of its work per lead.
    search: String,
    sources: String,
    keys: [Option<String>; 3],
}

impl Item {
    pub fn new(actor: Actor, input: LeadInput, idem: Option<Idem>) -> Item {
        let search = domain::lead::search_text(&input);
        let sources = format!("[{}]", crate::leads::source_text(&input, &actor.now.to_text()));
        let keys = [input.email_key(), input.phone_key(), input.weak_key()];
        Item { actor, input, idem, search, sources, keys }
    }

    /// Its one source as JSON text (the "created" entry of its history).
    fn source(&self) -> &str {
        &self.sources[1..self.sources.len() - 1]
    }

    fn texts(&self) -> LeadTexts<'_> {
        let [email_key, phone_key, weak_key] = self.keys.each_ref().map(Option::as_deref);
        LeadTexts { sources: &self.sources, search: &self.search, email_key, phone_key, weak_key }
    }
}

/// What becomes of one item of a batch.
enum Plan {
    Fail(Error),
    Replay(Captured),
    /// The same idempotency key as an earlier item of the batch: its answer, replayed.
    SameAs(usize),
    /// Merges into an existing lead.
    Merge(i64),
    /// Merges into the lead an earlier item of the batch creates.
    MergeInto(usize),
    Fresh(Box<Grading>),
}

/// Rows per multi-row INSERT: 45 columns × 200 rows stays under SQLite's bind limit.
const CHUNK: usize = 200;

/// Captures `items` in one transaction. The outer error means the batch as a whole failed
/// (nothing was written); the inner ones are per item (bad campaign, key reused for another
/// body, …) and leave the others standing.
pub async fn capture_many(db: &Db, items: &[Item], rules: &Rules<'_>) -> Result<Vec<Result<Captured>>> {
    let out = in_tx(db.begin(), items, rules).await?;
    Ok(out.into_iter().map(|r| r.map(|a| a.captured)).collect())
}

/// A capture's outcome and, where the writer stored it as the answer to an idempotency key,
/// that answer's body as stored: the API sends these bytes rather than serializing the lead
/// a second time (on the request threads, which the load generator and the writer leave
/// short of a core under load).
#[derive(Debug)]
pub struct Answer {
    pub captured: Captured,
    /// `{"lead": …, "merged": …}`, the JSON a retry with the same key gets.
    pub body: Option<String>,
}

/// Writes a batch in one transaction.
async fn in_tx(
    begin: impl Future<Output = Result<Tx>>,
    items: &[Item],
    rules: &Rules<'_>,
) -> Result<Vec<Result<Answer>>> {
    let started = std::time::Instant::now();
    let mut tx = begin.await?;
    let began = started.elapsed();
    let out = write(&mut tx, items, rules).await?;
    let written = started.elapsed();
    tx.commit().await?;
    tracing::debug!(
        items = items.len(),
        begin_us = began.as_micros() as u64,
        write_us = written.as_micros() as u64,
        total_us = started.elapsed().as_micros() as u64,
        "capture batch"
    );
    Ok(out)
}

/// What a batch is planned from: the stored answers to its idempotency keys, which of its
/// campaigns exist, the stored leads holding its e-mail and phone keys, the routing teams.
struct Lookups {
    stored: HashMap<(String, String), (String, i64, Value)>,
    campaigns: Vec<i64>,
    by_email: HashMap<String, i64>,
    by_phone: HashMap<String, i64>,
    teams: Vec<domain::lead::RoutingTeam>,
}

/// On SQLite in one hand-off to the connection, on the writer's thread: each hand-off is a
/// round trip between two threads that each wait to be scheduled on two busy cores (five of
/// them per batch before).
async fn load(tx: &mut Tx, items: &[Item], emails: &[&str], phones: &[&str]) -> Result<Lookups> {
    let campaign_ids: Vec<i64> = items.iter().filter_map(|i| i.input.campaign_id).collect();
    if matches!(tx, Tx::Sqlite(_)) {
        return crate::raw::with_conn(tx, |c| {
            let mut campaigns = Vec::new();
            let mut st = c.prepare("SELECT id FROM campaigns WHERE id = ?1")?;
            for id in &campaign_ids {
                st.int(1, *id)?;
                campaigns.extend(st.first_int()?);
            }
            Ok(Lookups {
                stored: stored_answers_raw(c, items)?,
                campaigns,
                by_email: crate::import::existing_raw(c, "email_key", emails)?,
                by_phone: crate::import::existing_raw(c, "phone_key", phones)?,
                teams: crate::leads::routing_teams_raw(c)?,
            })
        })
        .await;
    }
    Ok(Lookups {
        stored: stored_answers(tx, items).await?,
        campaigns: crate::select_in!(
            tx,
            sqlx::query_scalar::<_, i64>,
            "SELECT id FROM campaigns WHERE id",
            campaign_ids
        ),
        by_email: existing(tx, "email_key", emails).await?,
        by_phone: existing(tx, "phone_key", phones).await?,
        teams: routing_teams(tx).await?,
    })
}

async fn plan(tx: &mut Tx, items: &[Item], rules: &Rules<'_>) -> Result<(Vec<Plan>, Vec<domain::lead::RoutingTeam>)> {
    // L-2 keys, normalised once per item (`Item::new`).
    let dedup_keys: Vec<(&Option<String>, &Option<String>)> = items.iter().map(|i| (&i.keys[0], &i.keys[1])).collect();
    let emails: Vec<&str> = dedup_keys.iter().filter_map(|k| k.0.as_deref()).collect();
    let phones: Vec<&str> = dedup_keys.iter().filter_map(|k| k.1.as_deref()).collect();
    let Lookups { stored, campaigns, by_email, by_phone, teams } = load(tx, items, &emails, &phones).await?;
    let mut plans = Vec::with_capacity(items.len());
    let mut seen_keys: HashMap<(&str, &str), (usize, &str)> = HashMap::new();
    let mut fresh_keys: HashMap<String, usize> = HashMap::new();
    for (n, item) in items.iter().enumerate() {
        let input = &item.input;
        if let Some(k) = &item.idem {
            if let Some((hash, status, body)) = stored.get(&(k.owner.clone(), k.key.clone())) {
                plans.push(if *hash == k.hash {
                    let status = u16::try_from(*status).ok().filter(|s| *s != 0).unwrap_or(200);
                    Plan::Replay(Captured::Replayed { status, body: body.clone() })
                } else {
                    Plan::Fail(reused_key())
                });
                continue;
            }
            if let Some((first, hash)) = seen_keys.get(&(k.owner.as_str(), k.key.as_str())) {
                plans.push(if *hash == k.hash { Plan::SameAs(*first) } else { Plan::Fail(reused_key()) });
                continue;
            }
            seen_keys.insert((k.owner.as_str(), k.key.as_str()), (n, k.hash.as_str()));
        }
        if let Some(c) = input.campaign_id.filter(|c| !campaigns.contains(c)) {
            plans.push(Plan::Fail(Error::field("campaign_id", format!("no campaign with id {c}"))));
            continue;
        }
        let grading = match rules.playbook.grade(&input.answers, rules.version) {
            Ok(g) => g,
            Err(e) => {
                plans.push(Plan::Fail(Error::Invalid(e)));
                continue;
            }
        };
        // L-2: the same normalised e-mail, else the same phone, as a stored lead or as one
        // this batch creates.
        let (email, phone) = dedup_keys[n];
        let keys: Vec<String> = [email.as_ref().map(|k| format!("e:{k}")), phone.as_ref().map(|k| format!("p:{k}"))]
            .into_iter()
            .flatten()
            .collect();
        let stored_hit =
            email.as_ref().and_then(|k| by_email.get(k)).or_else(|| phone.as_ref().and_then(|k| by_phone.get(k)));
        if let Some(id) = stored_hit {
            plans.push(Plan::Merge(*id));
        } else if let Some(first) = keys.iter().find_map(|k| fresh_keys.get(k).copied()) {
            plans.push(Plan::MergeInto(first));
        } else {
            for k in keys {
                fresh_keys.insert(k, n);
            }
            plans.push(Plan::Fresh(Box::new(grading)));
        }
    }
    Ok((plans, teams))
}

/// The first answers to the items' idempotency keys, where an earlier request (committed)
/// used them: (owner, key) → (request hash, status, body).
type StoredAnswers = HashMap<(String, String), (String, i64, Value)>;

/// `stored_answers` on SQLite: point lookups through the statement interface on the
/// writer's own thread (as `import::existing_raw`).
fn stored_answers_raw(c: &crate::raw::Conn, items: &[Item]) -> Result<StoredAnswers> {
    let mut stored = HashMap::new();
    let mut st = c.prepare(
        "SELECT request_hash, status_code, response FROM idempotency_keys WHERE owner_key = ?1 AND key = ?2",
    )?;
    for k in items.iter().filter_map(|i| i.idem.as_ref()) {
        st.text(1, &k.owner)?;
        st.text(2, &k.key)?;
        if st.next_row()? {
            let body = serde_json::from_str(&st.column_text(2)?)
                .map_err(|e| Error::Other(format!("a stored answer is not JSON: {e}")))?;
            stored.insert((k.owner.clone(), k.key.clone()), (st.column_text(0)?, st.column(1), body));
            while st.next_row()? {}
        }
    }
    Ok(stored)
}

async fn stored_answers(tx: &mut Tx, items: &[Item]) -> Result<StoredAnswers> {
    let keys: Vec<&Idem> = items.iter().filter_map(|i| i.idem.as_ref()).collect();
    let mut stored = HashMap::new();
    // Looked up per owner so the (owner_key, key) index serves the query.
    let mut by_owner: HashMap<&str, Vec<&str>> = HashMap::new();
    for k in keys {
        by_owner.entry(k.owner.as_str()).or_default().push(k.key.as_str());
    }
    for (owner, keys) in by_owner {
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (2..=chunk.len() + 1).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT owner_key, key, request_hash, status_code, response FROM idempotency_keys \
                 WHERE owner_key = $1 AND key IN ({})",
                marks.join(", ")
            );
            let rows: Vec<(String, String, String, i64, Value)> = on_tx!(tx, c => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(owner);
                for k in chunk {
                    q = q.bind(*k);
                }
                q.fetch_all(c).await
            })?;
            stored.extend(rows.into_iter().map(|(o, k, h, s, r)| ((o, k), (h, s, r))));
        }
    }
    Ok(stored)
}

fn reused_key() -> Error {
    Error::Conflict("this Idempotency-Key was already used for a different request".into())
}

struct Routed {
    at: usize,
    grading: Grading,
    decision: RouteDecision,
    due: Option<(Ts, Ts)>,
}

async fn write(tx: &mut Tx, items: &[Item], rules: &Rules<'_>) -> Result<Vec<Result<Answer>>> {
    let (mut plans, mut teams) = plan(tx, items, rules).await?;
    // L-4: route the new leads in order, moving each team's round-robin position as we go.
    let mut routed = Vec::new();
    for (n, p) in plans.iter_mut().enumerate() {
        let Plan::Fresh(g) = p else { continue };
        let input = &items[n].input;
        let decision = route(rules.playbook, g.grade, input.province.as_deref(), input.city.as_deref(), &teams);
        let due = match &decision {
            RouteDecision::Sales { team_id, owner_id, .. } => {
                if let Some(t) = teams.iter_mut().find(|t| t.team_id == *team_id) {
                    t.last_assigned = Some(*owner_id);
                }
                let d = sla_due(rules.playbook, rules.calendar, rules.tz, items[n].actor.now.get())
                    .map_err(|e| Error::Other(format!("cannot compute the SLA: {e}")))?;
                Some((Ts::new(d.first_response), Ts::new(d.follow_up)))
            }
            _ => None,
        };
        routed.push(Routed { at: n, grading: (**g).clone(), decision, due });
    }
    let mut ids: HashMap<usize, i64> = HashMap::new();
    // Automation only enqueues work, so the rows as inserted are the leads to answer with.
    let mut leads: HashMap<i64, Lead> = HashMap::new();
    let pg = matches!(tx, Tx::Postgres(_));
    for chunk in routed.chunks(CHUNK) {
        let rows: Vec<NewLead> = chunk
            .iter()
            .map(|r| {
                let (input, now) = (&items[r.at].input, items[r.at].actor.now);
                // SQLite's writer takes the sources as text from `Item` (`insert_new`).
                let sources = if pg { json!([source_json(input, now)]) } else { Value::Null };
                NewLead { input, now, grading: r.grading.score(), decision: &r.decision, due: r.due, sources }
            })
            .collect();
        let new = insert_new(tx, items, chunk, &rows).await?;
        ids.extend(chunk.iter().map(|r| r.at).zip(new.iter().map(|l| l.id)));
        leads.extend(new.into_iter().map(|l| (l.id, l)));
    }
    let any_form = items.iter().any(|i| i.actor.via == crate::Via::Form);
    let (on_created, on_form) = after_routing(tx, &teams, any_form).await?;
    // L-10: rules reacting to new leads and form submissions.
    let fresh_ids: Vec<(usize, i64)> = routed.iter().map(|r| (r.at, ids[&r.at])).collect();
    if on_created {
        for (n, id) in &fresh_ids {
            crate::automation::fire(tx, Trigger::LeadCreated, *id, items[*n].actor.now, rules).await?;
        }
    }
    if fresh_ids.iter().any(|(n, _)| items[*n].actor.via == crate::Via::Form) && on_form {
        for (n, id) in fresh_ids.iter().filter(|(n, _)| items[*n].actor.via == crate::Via::Form) {
            crate::automation::fire(tx, Trigger::FormSubmitted, *id, items[*n].actor.now, rules).await?;
        }
    }
    let changes: Vec<(&Actor, Change<'_>)> = fresh_ids
        .iter()
        .filter_map(|(n, id)| {
            let l = leads.get(id)?;
            let after = json!({"name": l.name, "company": l.company, "channel": l.channel, "grade": l.grade,
                               "route": l.route, "owner_id": l.owner_id});
            Some((&items[*n].actor, Change::created("lead", id, after)))
        })
        .collect();
    // Without merges the entries go in with the idempotency answers, in one hand-off to the
    // connection on SQLite; merges record their own entries, so those come after these.
    let merges = plans.iter().any(|p| matches!(p, Plan::Merge(_) | Plan::MergeInto(_)));
    let deferred = matches!(tx, Tx::Sqlite(_)) && !merges;
    if !deferred {
        audit::record_many(tx, &changes).await?;
    }
    // Merges, in order, after the leads they may merge into exist.
    let mut out: Vec<Result<Captured>> = Vec::with_capacity(items.len());
    for (n, p) in plans.into_iter().enumerate() {
        let r = match p {
            Plan::Fail(e) => Err(e),
            Plan::Replay(c) => Ok(c),
            Plan::SameAs(first) => match out.get(first) {
                Some(Ok(Captured::Created(l))) => Ok(replayed(201, l)),
                Some(Ok(Captured::Merged(l))) => Ok(replayed(200, l)),
                _ => Err(Error::Conflict("the first request with this Idempotency-Key failed; send it again".into())),
            },
            // A merge that fails may have written half: the whole batch goes back (the queue
            // then captures each on its own).
            Plan::Merge(id) => {
                Ok(Captured::Merged(Box::new(merge_tx(tx, &items[n].actor, id, &items[n].input, rules).await?)))
            }
            Plan::MergeInto(first) => {
                let id = ids[&first];
                Ok(Captured::Merged(Box::new(merge_tx(tx, &items[n].actor, id, &items[n].input, rules).await?)))
            }
            Plan::Fresh(_) => {
                let id = ids[&n];
                leads.remove(&id).map(|l| Captured::Created(Box::new(l))).ok_or(Error::NotFound)
            }
        };
        out.push(r);
    }
    let bodies = remember_keys(tx, items, &out, if deferred { &changes } else { &[] }).await?;
    Ok(out.into_iter().zip(bodies).map(|(r, body)| r.map(|captured| Answer { captured, body })).collect())
}

/// Moves each team's round-robin position (L-4) and tells whether automation rules react to
/// new leads and, when `forms`, to form submissions (L-10); on SQLite in one hand-off to the
/// connection (as `load`).
async fn after_routing(tx: &mut Tx, teams: &[domain::lead::RoutingTeam], forms: bool) -> Result<(bool, bool)> {
    const MOVE: &str = "UPDATE teams SET last_assigned_user_id = $1 WHERE id = $2 AND \
                        (last_assigned_user_id IS NULL OR last_assigned_user_id <> $1)";
    const RULES: &str = "SELECT COUNT(*) FROM automation_rules WHERE enabled AND event = $1";
    let moved: Vec<(i64, i64)> = teams.iter().filter_map(|t| t.last_assigned.map(|o| (o, t.team_id))).collect();
    if matches!(tx, Tx::Sqlite(_)) {
        return crate::raw::with_conn(tx, |c| {
            let mut st = c.prepare(&MOVE.replace('$', "?"))?;
            for (owner, team) in &moved {
                st.int(1, *owner)?;
                st.int(2, *team)?;
                st.run()?;
            }
            let mut st = c.prepare(&RULES.replace('$', "?"))?;
            let mut any = |t: Trigger| -> Result<bool> {
                st.text_copy(1, t.code())?;
                Ok(st.first_int()?.unwrap_or(0) > 0)
            };
            Ok((any(Trigger::LeadCreated)?, forms && any(Trigger::FormSubmitted)?))
        })
        .await;
    }
    for (owner, team) in moved {
        on_tx!(tx, c => sqlx::query(MOVE).bind(owner).bind(team).execute(c).await.map(|r| r.rows_affected()))?;
    }
    let on_created = crate::automation::has_rules(tx, Trigger::LeadCreated).await?;
    Ok((on_created, forms && crate::automation::has_rules(tx, Trigger::FormSubmitted).await?))
}

fn replayed(status: u16, l: &Lead) -> Captured {
    Captured::Replayed { status, body: json!({"lead": l, "merged": status == 200}) }
}

/// One lead row as capture and import write it.
pub(crate) struct NewLead<'a> {
    pub input: &'a LeadInput,
    pub now: Ts,
    pub grading: Score,
    pub decision: &'a RouteDecision,
    /// (first response, follow-up) deadlines when a rep was assigned (L-5).
    pub due: Option<(Ts, Ts)>,
    pub sources: serde_json::Value,
}

/// Inserts the rows with one statement and returns `returning` of each (`id`, or all of a
/// `Lead`'s columns, saving a read-back) in row order: ids are handed out in VALUES order,
/// but RETURNING's row order is not promised, so they are sorted by `id_of`. `conflict` is
/// the message when a unique key was taken meanwhile by another writer.
pub(crate) async fn insert_leads<R>(
    tx: &mut Tx,
    rows: &[NewLead<'_>],
    conflict: &str,
    returning: &str,
    id_of: fn(&R) -> i64,
) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    R: Send + Unpin,
{
    let mut out = on_tx!(tx, c => {
        let mut qb = sqlx::QueryBuilder::new(LEAD_INSERT);
        qb.push(" ");
        qb.push_values(rows, |mut b, r| {
            let (i, now, g) = (r.input, r.now, r.grading);
            let (route_code, reason, owner, team) = decision_columns(r.decision);
            let assigned = owner.is_some();
            b.push_bind(i.name.clone()).push_bind(i.company.clone()).push_bind(i.title.clone()).push_bind(i.email.clone())
                .push_bind(i.email_key()).push_bind(i.phone.clone()).push_bind(i.phone_key()).push_bind(i.weak_key())
                .push_bind(i.province.clone()).push_bind(i.city.clone()).push_bind(i.company_size.map(|s| s.code()))
                .push_bind(i.channel.code()).push_bind(i.campaign_id).push_bind(i.utm.source.clone())
                .push_bind(i.utm.medium.clone()).push_bind(i.utm.campaign.clone()).push_bind(i.utm.term.clone())
                .push_bind(i.utm.content.clone()).push_bind(i.answers.budget.clone()).push_bind(i.answers.authority.clone())
                .push_bind(i.answers.need.clone()).push_bind(i.answers.timeline.clone())
                .push_bind(g.points[0]).push_bind(g.points[1]).push_bind(g.points[2]).push_bind(g.points[3])
                .push_bind(g.total).push_bind(g.grade.code()).push_bind(g.playbook_version).push_bind(now)
                .push_bind(route_code).push_bind(reason).push_bind("open").push_bind(owner).push_bind(team)
                .push_bind(assigned.then_some(now)).push_bind(r.due.map(|d| d.0)).push_bind(r.due.map(|d| d.1))
                .push_bind(now).push_bind((route_code == "nurture").then_some("awareness"))
                .push_bind(r.sources.clone()).push_bind(i.note.clone()).push_bind(domain::lead::search_text(i))
                .push_bind(now).push_bind(now);
        });
        qb.push(" RETURNING ").push(returning);
        qb.build_query_as::<R>().fetch_all(c).await
    })
    .map_err(Error::from)
    .map_err(|e| if e.is_unique_violation() { Error::Conflict(conflict.into()) } else { e })?;
    out.sort_unstable_by_key(id_of);
    Ok(out)
}

/// The text columns of a lead row that cost the most to make: its sources as JSON, its
/// search text (segmented) and its dedup keys. Made apart from the insert, so that a large
/// import makes them on another core ahead of its one writing thread and a capture on the
/// request's thread (`Item::new`).
pub(crate) struct LeadTexts<'a> {
    pub sources: &'a str,
    pub search: &'a str,
    pub email_key: Option<&'a str>,
    pub phone_key: Option<&'a str>,
    pub weak_key: Option<&'a str>,
}

/// `insert_leads` on SQLite: one prepared single-row statement bound and stepped per lead
/// through SQLite's statement interface (`raw`), instead of 45 boxed arguments per row sent
/// to the driver's thread. `texts` are the rows' `LeadTexts`, in row order (the rows'
/// `sources` are not read). The rows' texts are bound where they lie, not copied: the
/// statement lives no longer than they do. Returns the new ids in row order.
pub(crate) fn insert_leads_raw<'d>(
    conn: &crate::raw::Conn,
    rows: &'d [NewLead<'d>],
    texts: &'d [LeadTexts<'d>],
) -> Result<Vec<i64>> {
    let marks: Vec<String> = (1..=45).map(|i| format!("?{i}")).collect();
    let mut st = conn.prepare(&format!("{LEAD_INSERT} VALUES ({})", marks.join(", ")))?;
    let mut ids = Vec::with_capacity(rows.len());
    // The rows of a batch or an import share their instant: its text is made once.
    let mut now_text: Option<(Ts, String)> = None;
    let mut due_text: Option<((Ts, Ts), (String, String))> = None;
    for (r, t) in rows.iter().zip(texts) {
        let (i, g) = (r.input, r.grading);
        let now = match &now_text {
            Some((at, text)) if *at == r.now => text,
            _ => &now_text.insert((r.now, r.now.to_text())).1,
        };
        let (route_code, reason, owner, team) = decision_columns(r.decision);
        let texts: [Option<&'d str>; 22] = [
            i.name.as_deref(),
            i.company.as_deref(),
            i.title.as_deref(),
            i.email.as_deref(),
            t.email_key,
            i.phone.as_deref(),
            t.phone_key,
            t.weak_key,
            i.province.as_deref(),
            i.city.as_deref(),
            i.company_size.map(|s| s.code()),
            Some(i.channel.code()),
            None,
            i.utm.source.as_deref(),
            i.utm.medium.as_deref(),
            i.utm.campaign.as_deref(),
            i.utm.term.as_deref(),
            i.utm.content.as_deref(),
            i.answers.budget.as_deref(),
            i.answers.authority.as_deref(),
            i.answers.need.as_deref(),
            i.answers.timeline.as_deref(),
        ];
        for (k, v) in texts.into_iter().enumerate() {
            st.opt_text(k as i32 + 1, v)?;
        }
        st.opt_int(13, i.campaign_id)?;
        for (k, points) in g.points.into_iter().enumerate() {
            st.int(23 + k as i32, points)?;
        }
        st.int(27, g.total)?;
        st.text_copy(28, g.grade.code())?;
        st.int(29, g.playbook_version)?;
        st.text_copy(30, now)?;
        st.text_copy(31, route_code)?;
        st.opt_text(32, reason)?;
        st.text_copy(33, "open")?;
        st.opt_int(34, owner)?;
        st.opt_int(35, team)?;
        st.opt_text_copy(36, owner.is_some().then_some(now.as_str()))?;
        let due = match (r.due, &due_text) {
            (None, _) => None,
            (Some(d), Some((at, texts))) if *at == d => Some(texts),
            (Some(d), _) => Some(&due_text.insert((d, (d.0.to_text(), d.1.to_text()))).1),
        };
        st.opt_text_copy(37, due.map(|d| d.0.as_str()))?;
        st.opt_text_copy(38, due.map(|d| d.1.as_str()))?;
        st.text_copy(39, now)?;
        st.opt_text_copy(40, (route_code == "nurture").then_some("awareness"))?;
        st.text(41, t.sources)?;
        st.opt_text(42, i.note.as_deref())?;
        st.text(43, t.search)?;
        st.text_copy(44, now)?;
        st.text_copy(45, now)?;
        st.run()?;
        ids.push(conn.last_rowid());
    }
    Ok(ids)
}

const LEAD_INSERT: &str = "INSERT INTO leads (name, company, title, email, email_key, phone, phone_key, weak_key, province, city, \
     company_size, channel, campaign_id, utm_source, utm_medium, utm_campaign, utm_term, utm_content, budget, \
     authority, need, timeline, budget_points, authority_points, need_points, timeline_points, total, grade, \
     graded_version, graded_at, route, route_reason, status, owner_id, team_id, assigned_at, first_response_due, \
     follow_up_due, last_activity_at, nurture_stage, sources, note, search_text, created_at, updated_at)";

/// (route, reason, owner, team) as stored.
pub(crate) fn decision_columns(d: &RouteDecision) -> (&'static str, Option<&str>, Option<i64>, Option<i64>) {
    match d {
        RouteDecision::Sales { team_id, owner_id, reason } => ("sales", Some(reason), Some(*owner_id), Some(*team_id)),
        RouteDecision::Unassigned { reason } => ("unassigned", Some(reason), None, None),
        RouteDecision::Nurture => ("nurture", None, None, None),
        RouteDecision::Content => ("content", None, None, None),
    }
}

/// The new leads' rows and the first entries of their history, written, and the leads as
/// stored. On SQLite through the statement interface (`raw`), one prepared statement each
/// bound per row — the driver boxed 45 arguments per lead, sent them to its thread and
/// parsed a new multi-row statement per batch size; the writer is the one thread every
/// capture waits for. On PostgreSQL multi-row statements, the leads returned by the insert.
async fn insert_new(tx: &mut Tx, items: &[Item], chunk: &[Routed], rows: &[NewLead<'_>]) -> Result<Vec<Lead>> {
    let conflict = "a lead with this e-mail or phone was captured at the same moment; retry";
    if matches!(tx, Tx::Postgres(_)) {
        let history: Vec<[(&'static str, Value); 3]> = chunk.iter().map(|r| history(&items[r.at], r)).collect();
        let new: Vec<Lead> = insert_leads(tx, rows, conflict, crate::leads::COLS, |l: &Lead| l.id).await?;
        let events: Vec<EventRow> = chunk
            .iter()
            .zip(&new)
            .zip(&history)
            .flat_map(|((r, l), h)| h.iter().map(move |(kind, data)| (l.id, &items[r.at].actor, *kind, data)))
            .collect();
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO lead_events (lead_id, at, kind, actor_id, actor_label, data) ");
            qb.push_values(&events, |mut b, (id, actor, kind, data)| {
                b.push_bind(*id).push_bind(actor.now).push_bind(*kind).push_bind(actor.user_id).push_bind(actor.label.clone())
                    .push_bind(*data);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        return Ok(new);
    }
    // A new lead's sources are its one source (`NewLead::sources` as text).
    let texts: Vec<LeadTexts> = chunk.iter().map(|r| items[r.at].texts()).collect();
    let ids = crate::raw::with_conn(tx, |conn| {
        let ids = insert_leads_raw(conn, rows, &texts)?;
        let mut st = conn.prepare(EVENT_INSERT)?;
        for (r, id) in chunk.iter().zip(&ids) {
            let item = &items[r.at];
            let at = item.actor.now.to_text();
            // The "created" entry is the lead's source, as made by the request.
            bind_event(&mut st, *id, &at, "created", &item.actor, item.source())?;
            for (kind, data) in graded_and_routed_text(r)? {
                bind_event(&mut st, *id, &at, kind, &item.actor, &data)?;
            }
        }
        Ok(ids)
    })
    .await
    .map_err(|e| if matches!(e, Error::Conflict(_)) { Error::Conflict(conflict.into()) } else { e })?;
    // The leads as inserted, made from what was bound rather than read back (reading them
    // back through the driver was a tenth of the writer's time): every column is bound, none
    // comes from a default.
    rows.iter().zip(&texts).zip(&ids).map(|((r, t), id)| as_inserted(*id, r, t.sources)).collect()
}

/// The lead a row of `insert_leads_raw` stored, with its `sources` JSON text.
fn as_inserted(id: i64, r: &NewLead<'_>, sources: &str) -> Result<Lead> {
    let (i, g, now) = (r.input, r.grading, r.now);
    let (route, reason, owner_id, team_id) = decision_columns(r.decision);
    let sources = serde_json::from_str(sources).map_err(|e| Error::Other(format!("a lead's sources: {e}")))?;
    Ok(Lead {
        id,
        name: i.name.clone(),
        company: i.company.clone(),
        title: i.title.clone(),
        email: i.email.clone(),
        phone: i.phone.clone(),
        province: i.province.clone(),
        city: i.city.clone(),
        company_size: i.company_size.map(|s| s.code().to_string()),
        channel: i.channel.code().to_string(),
        campaign_id: i.campaign_id,
        utm_source: i.utm.source.clone(),
        utm_medium: i.utm.medium.clone(),
        utm_campaign: i.utm.campaign.clone(),
        utm_term: i.utm.term.clone(),
        utm_content: i.utm.content.clone(),
        budget: i.answers.budget.clone(),
        authority: i.answers.authority.clone(),
        need: i.answers.need.clone(),
        timeline: i.answers.timeline.clone(),
        budget_points: g.points[0],
        authority_points: g.points[1],
        need_points: g.points[2],
        timeline_points: g.points[3],
        total: g.total,
        grade: g.grade.code().to_string(),
        graded_version: g.playbook_version,
        graded_at: now,
        route: route.to_string(),
        route_reason: reason.map(str::to_string),
        status: "open".to_string(),
        owner_id,
        team_id,
        assigned_at: owner_id.is_some().then_some(now),
        first_response_due: r.due.map(|d| d.0),
        first_response_at: None,
        follow_up_due: r.due.map(|d| d.1),
        last_activity_at: now,
        nurture_stage: (route == "nurture").then(|| "awareness".to_string()),
        sources,
        note: i.note.clone(),
        created_at: now,
        updated_at: now,
    })
}

type EventRow<'a> = (i64, &'a Actor, &'static str, &'a Value);

/// Each new lead's history starts with where it came from, its grade and its route.
fn history(item: &Item, r: &Routed) -> [(&'static str, Value); 3] {
    let [graded, routed] = graded_and_routed(r);
    [("created", source_json(&item.input, item.actor.now)), graded, routed]
}

/// The "routed" history entry: the decision and the clocks it started.
#[derive(Serialize)]
struct RoutedEntry<'a> {
    decision: &'a RouteDecision,
    first_response_due: Option<Ts>,
    follow_up_due: Option<Ts>,
}

impl RoutedEntry<'_> {
    fn of(r: &Routed) -> RoutedEntry<'_> {
        RoutedEntry { decision: &r.decision, first_response_due: r.due.map(|d| d.0), follow_up_due: r.due.map(|d| d.1) }
    }
}

/// The entries after "created" (which SQLite's writer takes as text from `Item`).
fn graded_and_routed(r: &Routed) -> [(&'static str, Value); 2] {
    let routed = serde_json::to_value(RoutedEntry::of(r)).expect("a routing decision serializes");
    [("graded", grading_json(&r.grading)), ("routed", routed)]
}

/// `graded_and_routed` as the text SQLite's writer stores, printed straight from the
/// grading and the decision: no JSON value tree per entry on the writer's thread (building
/// and printing them was some 7 % of its time).
fn graded_and_routed_text(r: &Routed) -> Result<[(&'static str, String); 2]> {
    let text = |e: serde_json::Error| Error::Other(format!("a history entry: {e}"));
    Ok([
        ("graded", serde_json::to_string(&GradingEntry::of(&r.grading)).map_err(text)?),
        ("routed", serde_json::to_string(&RoutedEntry::of(r)).map_err(text)?),
    ])
}

/// One history entry through the statement interface (SQLite).
pub(crate) const EVENT_INSERT: &str =
    "INSERT INTO lead_events (lead_id, at, kind, actor_id, actor_label, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub(crate) fn bind_event(
    st: &mut crate::raw::Stmt<'_>,
    lead: i64,
    at: &str,
    kind: &str,
    actor: &Actor,
    data: &str,
) -> Result<()> {
    st.int(1, lead)?;
    st.text_copy(2, at)?;
    st.text_copy(3, kind)?;
    st.opt_int(4, actor.user_id)?;
    st.text_copy(5, &actor.label)?;
    st.text_copy(6, data)?;
    st.run()
}

/// L-1: stores the first answer to each idempotency key, kept for its retries; records
/// `audit` too (on SQLite the entries left for this last hand-off to the connection). On
/// SQLite also returns each item's answer body as stored (`Answer::body`).
async fn remember_keys(
    tx: &mut Tx,
    items: &[Item],
    out: &[Result<Captured>],
    audit: &[(&Actor, Change<'_>)],
) -> Result<Vec<Option<String>>> {
    let answers: Vec<(usize, &Item, u16, &Lead)> = items
        .iter()
        .zip(out)
        .enumerate()
        .filter(|(_, (i, _))| i.idem.is_some())
        .filter_map(|(n, (i, r))| match r {
            Ok(Captured::Created(l)) => Some((n, i, 201, &**l)),
            Ok(Captured::Merged(l)) => Some((n, i, 200, &**l)),
            _ => None,
        })
        .collect();
    let mut bodies = vec![None; items.len()];
    /// The stored answer: the response body a retry gets.
    #[derive(Serialize)]
    struct Stored<'a> {
        lead: &'a Lead,
        merged: bool,
    }
    if matches!(tx, Tx::Sqlite(_)) {
        // Serialized straight from the lead, not through a JSON value tree (one map entry
        // allocated per field, then written out): this runs on the writer's thread.
        let rows: Vec<(usize, &Item, u16, i64, String)> = answers
            .iter()
            .map(|(n, i, status, l)| {
                // A lead's answer is some 1.5 KB: one buffer of that size, not five growing.
                let mut b = Vec::with_capacity(2048);
                serde_json::to_writer(&mut b, &Stored { lead: l, merged: *status == 200 })
                    .map_err(|e| Error::Other(e.to_string()))?;
                let b = String::from_utf8(b).map_err(|e| Error::Other(e.to_string()))?;
                Ok((*n, *i, *status, l.id, b))
            })
            .collect::<Result<_>>()?;
        // As the leads: one prepared statement through the statement interface.
        crate::raw::with_conn(tx, |conn| {
            audit::record_many_raw(conn, audit)?;
            let mut st = conn.prepare(
                "INSERT INTO idempotency_keys (owner_key, key, request_hash, status_code, response, created_at, lead_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (_, item, status, lead_id, body) in &rows {
                let k = item.idem.as_ref().expect("filtered on keys");
                st.text_copy(1, &k.owner)?;
                st.text_copy(2, &k.key)?;
                st.text_copy(3, &k.hash)?;
                st.int(4, i64::from(*status))?;
                st.text(5, body)?;
                st.text_copy(6, &item.actor.now.to_text())?;
                st.int(7, *lead_id)?;
                st.run()?;
            }
            Ok(())
        })
        .await?;
        for (n, _, _, _, body) in rows {
            bodies[n] = Some(body);
        }
        return Ok(bodies);
    }
    audit::record_many(tx, audit).await?;
    let rows: Vec<(&Item, u16, Value)> =
        answers.iter().map(|(_, i, status, l)| (*i, *status, json!({"lead": l, "merged": *status == 200}))).collect();
    for chunk in rows.chunks(CHUNK) {
        on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO idempotency_keys (owner_key, key, request_hash, status_code, response, created_at, lead_id) ",
            );
            qb.push_values(chunk, |mut b, (item, status, body)| {
                let k = item.idem.as_ref().expect("filtered on keys");
                b.push_bind(k.owner.clone()).push_bind(k.key.clone()).push_bind(k.hash.clone()).push_bind(i64::from(*status))
                    .push_bind(body.clone()).push_bind(item.actor.now).push_bind(body["lead"]["id"].as_i64());
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(bodies)
}

struct Job {
    item: Item,
    rules: Arc<Loaded>,
    reply: oneshot::Sender<Result<Answer>>,
}

/// Most captures one transaction takes: enough to share the commit, few enough that the
/// first of them is not kept waiting long.
const MAX_BATCH: usize = 256;

/// The capture writer: see the module comment. Its watchdog: a capture waits for its
/// answer at most `timeout`, and a transaction of the writer's that waits that long on the
/// database is abandoned and the writer takes a new connection (a connection's thread once
/// stopped answering the writer for good, and every capture after waited with it).
#[derive(Clone)]
pub struct Queue {
    jobs: mpsc::Sender<Job>,
    timeout: Duration,
    /// Captures handed to the writer so far: the search indexer yields while it moves
    /// (`search::pace`).
    taken: Arc<std::sync::atomic::AtomicU64>,
}

impl Queue {
    /// Starts the writer on a thread of its own with a scheduler of its own: a batch waits on
    /// the database a dozen times, and on the server's scheduler each wake-up queued behind
    /// the request handlers (a millisecond and more per batch under load, with every capture
    /// of the batch waiting). The thread ends when the last `Queue` is dropped.
    pub fn start(db: Db, timeout: Duration) -> Queue {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let run = move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            // The writer's pool belongs to this thread's scheduler: made inside it.
            Ok(rt) => rt.block_on(async move { writer(db, rx, timeout).await }),
            Err(e) => tracing::error!(error = %e, "cannot start the capture writer"),
        };
        if let Err(e) = std::thread::Builder::new().name("capture-writer".into()).spawn(run) {
            tracing::error!(error = %e, "cannot start the capture writer");
        }
        Queue { jobs: tx, timeout, taken: Arc::default() }
    }

    /// How many captures have been handed to the writer since it started.
    pub fn taken(&self) -> u64 {
        self.taken.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Captures one lead; answers when its transaction has committed, or with
    /// `Error::Unavailable` when that takes longer than the queue's timeout (the capture may
    /// still be written: the same idempotency key then returns it).
    pub async fn capture(&self, item: Item, rules: Arc<Loaded>) -> Result<Answer> {
        let stopped = || Error::Other("the capture writer stopped".into());
        let answered = async {
            let (reply, answer) = oneshot::channel();
            self.jobs.send(Job { item, rules, reply }).await.map_err(|_| stopped())?;
            self.taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            answer.await.map_err(|_| stopped())?
        };
        tokio::time::timeout(self.timeout, answered).await.unwrap_or_else(|_| Err(late(self.timeout)))
    }
}

fn late(limit: Duration) -> Error {
    Error::Unavailable(format!(
        "the capture was not written within {} ms; it may still be: retry with the same Idempotency-Key",
        limit.as_millis()
    ))
}

/// A batch's transaction, abandoned after `limit` (`None`): dropped, it rolls back.
async fn bounded(
    w: &crate::writer::Writer,
    items: &[Item],
    rules: &Rules<'_>,
    limit: Duration,
) -> Option<Result<Vec<Result<Answer>>>> {
    tokio::time::timeout(limit, in_tx(w.begin(), items, rules)).await.ok()
}

/// How the writer gathers a batch when captures come faster than one transaction at a time
/// (see [`gather`]).
#[derive(Clone, Copy, Debug)]
pub struct Gathering {
    /// Enough captures to stop waiting for more.
    pub enough: usize,
    /// Longest wait for more, from when the first ones were taken.
    pub window: std::time::Duration,
    /// Longest wait for the next one: when they stop coming, the batch goes.
    pub gap: std::time::Duration,
}

/// The capture writer's gathering. Every transaction rewrites the last page of each table
/// and index a capture touches, whatever the batch's size (on SQLite 55 frames of 4 KiB per
/// commit, mostly such pages), so at 80 % of the peak batches of 4–10 wrote 31–39 KB to the
/// disk per capture, and batches gathered to 33–40 wrote 29–31 KB, with less of the writer's
/// CPU and fewer of the log's restarts (each a checkpoint in the writer's path). A few
/// milliseconds of waiting is small beside the latencies of a loaded server, and a capture
/// that comes alone never waits. Whole milliseconds: the timer's resolution.
pub const GATHERING: Gathering =
    Gathering { enough: 32, window: std::time::Duration::from_millis(3), gap: std::time::Duration::from_millis(1) };

/// Takes into `buf` what `rx` holds, up to `max` (waiting for the first if there is none).
/// When that is two or more — they came while the last transaction ran, so more are coming
/// — it waits for more, up to `g.enough` in all, `g.window` from now and `g.gap` after the
/// last one that came. Returns how many it took: 0 when the channel is closed and empty.
pub async fn gather<T>(rx: &mut mpsc::Receiver<T>, buf: &mut Vec<T>, max: usize, g: &Gathering) -> usize {
    let first = rx.recv_many(buf, max).await;
    if first < 2 {
        return first;
    }
    let until = tokio::time::Instant::now() + g.window;
    let enough = g.enough.min(max);
    while buf.len() < enough {
        let next = until.min(tokio::time::Instant::now() + g.gap);
        let room = max - buf.len();
        match tokio::time::timeout_at(next, rx.recv_many(buf, room)).await {
            Ok(n) if n > 0 => {}
            // The wait is over, or the channel closed with what was taken still to write.
            _ => break,
        }
    }
    buf.len()
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Job>, limit: Duration) {
    let mut w = crate::writer::Writer::new(&db);
    // The watchdog's way out: a new connection (a pool of its own), the stuck one left to
    // its pool, which goes with the old writer.
    let stalled = |w: &mut crate::writer::Writer, items: usize| {
        tracing::error!(
            items,
            limit_ms = limit.as_millis() as u64,
            "the capture writer's transaction stalled; abandoned, the writer takes a new connection"
        );
        *w = crate::writer::Writer::new(&db);
    };
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while gather(&mut rx, &mut jobs, MAX_BATCH, &GATHERING).await > 0 {
        let rules = jobs[0].rules.clone();
        let (items, replies): (Vec<Item>, Vec<_>) = jobs.drain(..).map(|j| (j.item, j.reply)).unzip();
        let results = match bounded(&w, &items, &rules.rules(), limit).await {
            Some(Ok(results)) => results,
            // The database was busy with another writer past the busy timeout: so would it
            // be for each capture on its own (a busy timeout each, one after another).
            Some(Err(Error::Unavailable(m))) => {
                tracing::warn!(error = %m, items = items.len(), "capture batch found the database busy");
                items
                    .iter()
                    .map(|_| Err(Error::Unavailable(format!("{m}; retry with the same Idempotency-Key"))))
                    .collect()
            }
            // The batch as a whole failed (e.g. another process captured the same e-mail
            // meanwhile): each capture again on its own, so one cannot sink the others.
            Some(Err(e)) => {
                tracing::warn!(error = %e, items = items.len(), "capture batch failed; capturing its leads one by one");
                let mut results = Vec::with_capacity(items.len());
                for item in &items {
                    results.push(match bounded(&w, std::slice::from_ref(item), &rules.rules(), limit).await {
                        Some(r) => r.and_then(|mut v| v.pop().unwrap_or(Err(Error::NotFound))),
                        None => {
                            stalled(&mut w, 1);
                            Err(late(limit))
                        }
                    });
                }
                results
            }
            None => {
                stalled(&mut w, items.len());
                items.iter().map(|_| Err(late(limit))).collect()
            }
        };
        for (reply, r) in replies.into_iter().zip(results) {
            let _ = reply.send(r);
        }
    }
}
