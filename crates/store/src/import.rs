//! L-1 (c): writing a validated import in one transaction — deduplicated within the file
//! and against existing leads (L-2), graded (L-3) and routed (L-4) like any capture, with
//! multi-row inserts so a large file does not cost one round trip per lead.

use crate::audit::{self, Actor, Change};
use crate::capture::{NewLead, insert_leads};
use crate::leads::{Rules, merge_tx, routing_teams, source_json, source_text};
use crate::{Db, Error, Result, Ts, Tx, on_tx};
use domain::lead::{LeadInput, RouteDecision, route, sla_due};
use serde_json::json;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImportOutcome {
    pub created: usize,
    /// Rows that matched an existing lead (or an earlier row of the file) and were merged.
    pub merged: usize,
}

/// Rows per INSERT statement: 45 columns × 200 rows stays under SQLite's bind limit.
const CHUNK: usize = 200;

/// Rows per hand-over of a large SQLite import's texts to its writer, and per loan of the
/// connection to the writer: single-row statements have no bind limit, and each hand-over
/// costs both threads a wake-up.
const RAW_CHUNK: usize = 4096;

/// Rows of the file that are one lead: the first row (later rows' details folded into it),
/// the rows whose L-2 keys are the lead's (normalised once: every step used to derive them
/// again), and the later rows. Rows are named by their index in the file's rows, which stay
/// where the check put them (a million leads of some 450 bytes each were moved into groups,
/// the groups into the new leads, those into the graded ones: 1.5 GB of copies into fresh
/// memory).
struct Group {
    row: usize,
    email: Option<usize>,
    phone: Option<usize>,
    also: Vec<usize>,
}

/// Each row's e-mail and phone keys.
struct Keys(Vec<(Option<String>, Option<String>)>);

impl Keys {
    fn email(&self, g: &Group) -> Option<&str> {
        g.email.and_then(|r| self.0[r].0.as_deref())
    }

    fn phone(&self, g: &Group) -> Option<&str> {
        g.phone.and_then(|r| self.0[r].1.as_deref())
    }
}

/// Folds later rows with the same e-mail or phone into the first one (missing details
/// filled, newer answers kept), so the file itself holds no duplicates.
fn dedup_in_file(rows: &mut [LeadInput]) -> (Keys, Vec<Group>, usize) {
    let keys = Keys(domain::par::map(rows, |r| (r.email_key(), r.phone_key())));
    let mut out: Vec<Group> = Vec::with_capacity(rows.len());
    // One table per key kind, sized up front, holding the keys where they are (a million
    // rows' keys were copied into them).
    let mut by_email: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut by_phone: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut merged = 0;
    for (n, (email, phone)) in keys.0.iter().enumerate() {
        let (email, phone) = (email.as_deref(), phone.as_deref());
        let hit = email.and_then(|k| by_email.get(k)).or_else(|| phone.and_then(|k| by_phone.get(k)));
        match hit.copied() {
            Some(i) => {
                merged += 1;
                let g = &mut out[i];
                // The group's first row comes before this one.
                let (before, from) = rows.split_at_mut(n);
                let (t, r) = (&mut before[g.row], &from[0]);
                macro_rules! fill {
                    ($($f:ident),*) => { $( if t.$f.is_none() { t.$f = r.$f.clone(); } )* };
                }
                fill!(name, company, title, email, phone, province, city, company_size, note);
                let a = &r.answers;
                macro_rules! newer {
                    ($($f:ident),*) => { $( if a.$f.is_some() { t.answers.$f = a.$f.clone(); } )* };
                }
                newer!(budget, authority, need, timeline);
                // An e-mail or phone the first row lacked came from this one, and its key too.
                if g.email.is_none() && email.is_some() {
                    g.email = Some(n);
                }
                if g.phone.is_none() && phone.is_some() {
                    g.phone = Some(n);
                }
                if let Some(k) = email {
                    by_email.entry(k).or_insert(i);
                }
                if let Some(k) = phone {
                    by_phone.entry(k).or_insert(i);
                }
                g.also.push(n);
            }
            None => {
                if let Some(k) = email {
                    by_email.insert(k, out.len());
                }
                if let Some(k) = phone {
                    by_phone.insert(k, out.len());
                }
                out.push(Group { row: n, email: email.map(|_| n), phone: phone.map(|_| n), also: Vec::new() });
            }
        }
    }
    // The tables borrow the keys, which go to the caller.
    drop((by_email, by_phone));
    (keys, out, merged)
}

/// Ids of existing leads holding any of `keys` in `col`.
pub(crate) async fn existing(tx: &mut Tx, col: &str, keys: &[&str]) -> Result<HashMap<String, i64>> {
    if matches!(tx, Tx::Sqlite(_)) {
        // One prepared point lookup per key through the statement interface, on this
        // thread: no IN list of 500 values parsed per statement, no round trip per chunk.
        return crate::raw::with_conn(tx, |c| existing_raw(c, col, keys)).await;
    }
    let rows: Vec<(String, i64)> =
        crate::select_in!(tx, sqlx::query_as, format!("SELECT {col}, id FROM leads WHERE {col}"), keys);
    Ok(rows.into_iter().collect())
}

/// Ids of stored leads by e-mail key and by phone key, holding at least those of `emails` and
/// `phones` that are stored. One index search per key, unless the store holds fewer leads
/// than the file has keys: then every stored key is read once (a million-row file into a
/// store of a few thousand leads: 2 M searches, 0.6 s, for nothing). The store's size is
/// taken from its largest id (a lookup, not a count over millions of rows; never less).
async fn stored_keys(
    tx: &mut Tx,
    emails: &[&str],
    phones: &[&str],
) -> Result<(HashMap<String, i64>, HashMap<String, i64>)> {
    let stored: i64 = on_tx!(tx, c => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM leads").fetch_one(c).await)?;
    if stored as usize >= emails.len() + phones.len() {
        return Ok((existing(tx, "email_key", emails).await?, existing(tx, "phone_key", phones).await?));
    }
    let rows: Vec<(Option<String>, Option<String>, i64)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT email_key, phone_key, id FROM leads WHERE email_key IS NOT NULL OR phone_key IS NOT NULL",
    ).fetch_all(c).await)?;
    let (mut by_email, mut by_phone) = (HashMap::new(), HashMap::new());
    for (email, phone, id) in rows {
        by_email.extend(email.map(|k| (k, id)));
        by_phone.extend(phone.map(|k| (k, id)));
    }
    Ok((by_email, by_phone))
}

/// `existing` through SQLite's statement interface, on the caller's thread.
pub(crate) fn existing_raw(c: &crate::raw::Conn, col: &str, keys: &[&str]) -> Result<HashMap<String, i64>> {
    let mut st = c.prepare(&format!("SELECT id FROM leads WHERE {col} = ?1"))?;
    let mut found = HashMap::new();
    for k in keys {
        st.text(1, k)?;
        if let Some(id) = st.first_int()? {
            found.insert(k.to_string(), id);
        }
    }
    Ok(found)
}

/// The file's new leads, graded and routed: the lead of `groups[k]` decided `decided[k]`.
struct Batch {
    rows: Vec<LeadInput>,
    keys: Keys,
    groups: Vec<Group>,
    decided: Vec<(domain::lead::Score, RouteDecision)>,
}

/// A new lead of the file, graded and routed (borrowed from its `Batch`).
struct Prepared<'a> {
    input: &'a LeadInput,
    email_key: Option<&'a str>,
    phone_key: Option<&'a str>,
    group: &'a Group,
    grading: &'a domain::lead::Score,
    decision: &'a RouteDecision,
}

impl Batch {
    fn lead(&self, k: usize) -> Prepared<'_> {
        let group = &self.groups[k];
        let (grading, decision) = &self.decided[k];
        let (email_key, phone_key) = (self.keys.email(group), self.keys.phone(group));
        Prepared { input: &self.rows[group.row], email_key, phone_key, group, grading, decision }
    }

    /// The new leads `range`.
    fn leads(&self, range: std::ops::Range<usize>) -> Vec<Prepared<'_>> {
        range.map(|k| self.lead(k)).collect()
    }
}

/// The history entry of an imported lead: where it came from and what the import decided;
/// the grading's parts and the route's reason are the lead's own columns as written now (a
/// later regrade or reassignment records what it changed). Fields in name order, as `json!`
/// had them.
#[derive(serde::Serialize)]
struct Imported<'a> {
    file: &'a str,
    grade: &'a str,
    playbook_version: i64,
    route: &'a str,
    total: i64,
}

impl<'a> Imported<'a> {
    fn of(p: &Prepared<'a>, file: &'a str) -> Imported<'a> {
        let g = p.grading;
        let route = crate::capture::decision_columns(p.decision).0;
        Imported { file, grade: g.grade.code(), playbook_version: g.playbook_version, route, total: g.total }
    }
}

/// The texts of a new lead's row and history made ahead of a large SQLite import's writer
/// (`capture::LeadTexts` borrow them).
struct Made {
    sources: String,
    search: String,
    weak_key: Option<String>,
    history: String,
}

impl Made {
    fn of(batch: &Batch, p: &Prepared, at: &str, file: &str) -> Made {
        let g = p.group;
        let mut sources = String::with_capacity(160 * (1 + g.also.len()));
        sources.push('[');
        for (k, x) in std::iter::once(p.input).chain(g.also.iter().map(|&r| &batch.rows[r])).enumerate() {
            if k > 0 {
                sources.push(',');
            }
            sources.push_str(&source_text(x, at));
        }
        sources.push(']');
        Made {
            sources,
            search: domain::lead::search_text(p.input),
            weak_key: p.input.weak_key(),
            history: serde_json::to_string(&Imported::of(p, file)).expect("a history entry serializes"),
        }
    }

    fn texts<'a>(&'a self, p: &Prepared<'a>) -> crate::capture::LeadTexts<'a> {
        crate::capture::LeadTexts {
            sources: &self.sources,
            search: &self.search,
            email_key: p.email_key,
            phone_key: p.phone_key,
            weak_key: self.weak_key.as_deref(),
        }
    }
}

pub async fn import_leads(
    db: &Db,
    actor: &Actor,
    mut rows: Vec<LeadInput>,
    rules: &Rules<'_>,
    label: &str,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<ImportOutcome> {
    let started = std::time::Instant::now();
    let phase = |what: &str| tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "lead import: {what}");
    let (keys, mut groups, mut merged) = dedup_in_file(&mut rows);
    phase("deduplicated in the file");
    // Every campaign the file names must exist. Checked here, once per campaign, so that a
    // large file's transaction can leave the foreign-key checks off (SQLite looked up the
    // campaign, owner and team of every lead and the lead of every history entry; owners
    // and teams come from routing over the stored teams, history entries name the leads
    // just written).
    let mut campaigns: Vec<i64> = rows.iter().filter_map(|r| r.campaign_id).collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    // A large file's transaction writes its pages once when it can (`Db::begin_bulk`).
    let bulk = groups.len() >= crate::bulk::BULK_MIN;
    let mut tx = if bulk { db.begin_bulk(false).await? } else { db.begin().await? };
    for id in campaigns {
        let found: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT id FROM campaigns WHERE id = $1")
            .bind(id).fetch_optional(c).await)?;
        if found.is_none() {
            return Err(Error::field("campaign_id", domain::import::unknown_campaign(id)));
        }
    }
    let emails: Vec<&str> = groups.iter().filter_map(|g| keys.email(g)).collect();
    let phones: Vec<&str> = groups.iter().filter_map(|g| keys.phone(g)).collect();
    let (by_email, by_phone) = stored_keys(&mut tx, &emails, &phones).await?;
    drop((emails, phones));
    phase("stored keys looked up");
    let stored = |g: &Group| {
        keys.email(g).and_then(|k| by_email.get(k)).or_else(|| keys.phone(g).and_then(|k| by_phone.get(k))).copied()
    };
    let mut done = 0;
    for g in &groups {
        if let Some(id) = stored(g) {
            merge_tx(&mut tx, actor, id, &rows[g.row], rules).await?;
            for &a in &g.also {
                merge_tx(&mut tx, actor, id, &rows[a], rules).await?;
            }
            merged += 1;
            done += 1;
            progress(done);
        }
    }
    if done > 0 {
        groups.retain(|g| stored(g).is_none());
    }
    // Everything imported now shares one assignment time and so one pair of SLA deadlines.
    let now = actor.now;
    let due = sla_due(rules.playbook, rules.calendar, rules.tz, now.get())
        .map_err(|e| Error::Other(format!("cannot compute the SLA: {e}")))?;
    let due = (Ts::new(due.first_response), Ts::new(due.follow_up));
    let mut teams = routing_teams(&mut tx).await?;
    // Graded and routed in file order (round robin), on one core, each answer written once
    // where it stays: graded on every core, the gradings were gathered from the threads' lists
    // into one and then moved beside their routes, each step into fresh memory (1 M leads:
    // 0.5–1.1 s, nearly all of it page faults and copies; the grading itself is 0.25 s). The
    // numbers only (`Score`), which the rows store: a `Grading` also holds each part's
    // answer, four strings per lead the file's rows already hold.
    let mut decided = Vec::with_capacity(groups.len());
    for group in &groups {
        let input = &rows[group.row];
        let grading = rules.playbook.score(&input.answers, rules.version).map_err(Error::Invalid)?;
        let decision = route(rules.playbook, grading.grade, input.province.as_deref(), input.city.as_deref(), &teams);
        if let RouteDecision::Sales { team_id, owner_id, .. } = &decision
            && let Some(t) = teams.iter_mut().find(|t| t.team_id == *team_id)
        {
            t.last_assigned = Some(*owner_id);
        }
        decided.push((grading, decision));
    }
    let batch = std::sync::Arc::new(Batch { rows, keys, groups, decided });
    let fresh = batch.groups.len();
    phase("graded and routed");
    // L-1 (c): a large file's leads go in before their secondary indexes are built (see
    // `bulk`); the unique e-mail and phone keys stay in force. Their full-text entries are
    // the search indexer's (`search`, SQLite), which takes them after the commit.
    let last_id_before: i64 =
        on_tx!(&mut tx, c => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM leads").fetch_one(c).await)?;
    let deferred = crate::bulk::defer_indexes(&mut tx, "leads", fresh, last_id_before).await?;
    let mut created = 0;
    fn new_lead<'a>(p: &Prepared<'a>, sources: serde_json::Value, now: Ts, due: (Ts, Ts)) -> NewLead<'a> {
        NewLead {
            input: p.input,
            now,
            grading: *p.grading,
            decision: p.decision,
            due: matches!(p.decision, RouteDecision::Sales { .. }).then_some(due),
            sources,
        }
    }
    // A large SQLite import writes on one thread; the rows' costliest texts (sources, search
    // text, keys, history entry) are made on another, chunk by chunk ahead of the writer.
    let (texts_tx, mut texts_rx) = tokio::sync::mpsc::channel::<Vec<Made>>(8);
    let step = if deferred.is_some() { RAW_CHUNK } else { CHUNK };
    let now_text = now.to_text();
    let mut texts_thread = None;
    if deferred.is_some() {
        let (batch, label, at) = (batch.clone(), label.to_string(), now_text.clone());
        texts_thread = Some(std::thread::spawn(move || {
            for start in (0..fresh).step_by(step) {
                let chunk = batch.leads(start..fresh.min(start + step));
                let made = chunk.iter().map(|p| Made::of(&batch, p, &at, &label)).collect();
                // The writer stopped (an error): nothing more to make.
                if texts_tx.blocking_send(made).is_err() {
                    return;
                }
            }
        }));
    }
    for start in (0..fresh).step_by(step) {
        let chunk = batch.leads(start..fresh.min(start + step));
        let conflict = "a lead in the file was captured elsewhere during the import; run it again";
        let ids: Vec<i64> = if deferred.is_some() {
            // A large SQLite import: leads and their history entries through SQLite's
            // statement interface (`raw`), one prepared statement each.
            let rows: Vec<NewLead> = chunk.iter().map(|p| new_lead(p, serde_json::Value::Null, now, due)).collect();
            let made = texts_rx
                .recv()
                .await
                .ok_or_else(|| Error::Other("the import stopped making its rows' texts".into()))?;
            let texts: Vec<crate::capture::LeadTexts> = made.iter().zip(&chunk).map(|(m, p)| m.texts(p)).collect();
            crate::raw::with_conn(&mut tx, |conn| {
                let ids = crate::capture::insert_leads_raw(conn, &rows, &texts)?;
                let mut st = conn.prepare(crate::capture::EVENT_INSERT)?;
                for (m, id) in made.iter().zip(&ids) {
                    crate::capture::bind_event(&mut st, *id, &now_text, "imported", actor, &m.history)?;
                }
                Ok(ids)
            })
            .await
            .map_err(|e| if matches!(e, Error::Conflict(_)) { Error::Conflict(conflict.into()) } else { e })?
        } else {
            let sources = |p: &Prepared| {
                let also = p.group.also.iter().map(|&r| &batch.rows[r]);
                serde_json::Value::Array(std::iter::once(p.input).chain(also).map(|x| source_json(x, now)).collect())
            };
            let rows: Vec<NewLead> = chunk.iter().map(|p| new_lead(p, sources(p), now, due)).collect();
            let ids: Vec<i64> = insert_leads(&mut tx, &rows, conflict, "id", |r: &(i64,)| r.0)
                .await?
                .into_iter()
                .map(|r| r.0)
                .collect();
            on_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO lead_events (lead_id, at, kind, actor_id, actor_label, data) ");
                qb.push_values(chunk.iter().zip(&ids), |mut b, (p, id)| {
                    let history = serde_json::to_value(Imported::of(p, label)).expect("a history entry serializes");
                    b.push_bind(*id).push_bind(now).push_bind("imported").push_bind(actor.user_id).push_bind(actor.label.clone())
                        .push_bind(history);
                });
                qb.build().execute(c).await.map(|r| r.rows_affected())
            })?;
            ids
        };
        if crate::automation::has_rules(&mut tx, domain::automation::Trigger::LeadCreated).await? {
            for id in &ids {
                crate::automation::fire(&mut tx, domain::automation::Trigger::LeadCreated, *id, now, rules).await?;
            }
        }
        created += ids.len();
        done += ids.len();
        progress(done);
    }
    phase("rows written");
    // The file's rows are written: their memory goes back to the system before the index
    // builds and the commit ask it for as much again (sort runs, the database file's pages).
    // Memory the process has just used is quicker to hand out than memory never touched: on
    // a virtual machine the first touch of a page can cost the host a fault of its own (1 M
    // leads: commit 6.2 → 2.4 s, peak 2.9 → 2.5 GB). The C library's heap holds SQLite's
    // memory; the binary's own allocator (mimalloc) hands back freed pages by itself.
    if let Some(t) = texts_thread {
        // It has sent its last texts; it ends holding the other reference to the rows.
        let _ = t.join();
        drop(batch);
        crate::raw::release_free_heap();
        phase("rows freed");
    }
    if let Some(d) = deferred {
        d.rebuild(&mut tx).await?;
        phase("indexes built");
    }
    for t in &teams {
        if let Some(owner) = t.last_assigned {
            on_tx!(&mut tx, c => sqlx::query("UPDATE teams SET last_assigned_user_id = $1 WHERE id = $2")
                .bind(owner).bind(t.team_id).execute(c).await.map(|r| r.rows_affected()))?;
        }
    }
    let outcome = ImportOutcome { created, merged };
    audit::record(
        &mut tx,
        actor,
        Change::created("lead_import", label, json!({"file": label, "created": created, "merged": merged})),
    )
    .await?;
    tx.commit().await?;
    phase("committed");
    Ok(outcome)
}

/// Keeps an uploaded file for the next step of an import; returns its token.
pub async fn save_upload(db: &Db, user_id: i64, name: &str, bytes: &[u8], now: Ts) -> Result<String> {
    let token = crate::random_hex(16);
    // Uploads older than a day are abandoned imports.
    crate::on_db!(db, p => sqlx::query("DELETE FROM uploads WHERE created_at < $1").bind(now.add_secs(-86_400)).execute(p).await.map(|r| r.rows_affected()))?;
    crate::on_db!(db, p => sqlx::query("INSERT INTO uploads (token, user_id, name, bytes, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&token).bind(user_id).bind(name).bind(bytes).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(token)
}

/// The file behind a token, if it belongs to `user_id`.
pub async fn upload(db: &Db, user_id: i64, token: &str) -> Result<Option<(String, Vec<u8>)>> {
    Ok(crate::on_db!(db, p => sqlx::query_as("SELECT name, bytes FROM uploads WHERE token = $1 AND user_id = $2")
        .bind(token).bind(user_id).fetch_optional(p).await)?)
}

pub async fn drop_upload(db: &Db, token: &str) -> Result<()> {
    crate::on_db!(db, p => sqlx::query("DELETE FROM uploads WHERE token = $1").bind(token).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}
