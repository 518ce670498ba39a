//! L-1 (c): writing a validated import in one transaction — deduplicated within the file
//! and against existing leads (L-2), graded (L-3) and routed (L-4) like any capture, with
//! multi-row inserts so a large file does not cost one round trip per lead.

use crate::audit::{self, Actor, Change};
use crate::capture::{NewLead, insert_leads};
use crate::leads::{Rules, merge_tx, routing_teams, source_json};
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

/// Folds later rows with the same e-mail or phone into the first one (missing details
/// filled, newer answers kept), so the file itself holds no duplicates.
fn dedup_in_file(rows: Vec<LeadInput>) -> (Vec<(LeadInput, Vec<LeadInput>)>, usize) {
    let mut out: Vec<(LeadInput, Vec<LeadInput>)> = Vec::with_capacity(rows.len());
    // One table per key kind, sized up front: a million rows' keys went into one growing
    // table, each with a prefix formatted into a new string.
    let mut by_email: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut by_phone: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut merged = 0;
    for r in rows {
        let (email, phone) = (r.email_key(), r.phone_key());
        let hit = email.as_ref().and_then(|k| by_email.get(k)).or_else(|| phone.as_ref().and_then(|k| by_phone.get(k)));
        match hit.copied() {
            Some(i) => {
                merged += 1;
                let t = &mut out[i].0;
                macro_rules! fill {
                    ($($f:ident),*) => { $( if t.$f.is_none() { t.$f = r.$f.clone(); } )* };
                }
                fill!(name, company, title, email, phone, province, city, company_size, note);
                let a = &r.answers;
                macro_rules! newer {
                    ($($f:ident),*) => { $( if a.$f.is_some() { t.answers.$f = a.$f.clone(); } )* };
                }
                newer!(budget, authority, need, timeline);
                if let Some(k) = email {
                    by_email.entry(k).or_insert(i);
                }
                if let Some(k) = phone {
                    by_phone.entry(k).or_insert(i);
                }
                out[i].1.push(r);
            }
            None => {
                if let Some(k) = email {
                    by_email.insert(k, out.len());
                }
                if let Some(k) = phone {
                    by_phone.insert(k, out.len());
                }
                out.push((r, Vec::new()));
            }
        }
    }
    (out, merged)
}

/// Ids of existing leads holding any of `keys` in `col`.
pub(crate) async fn existing(tx: &mut Tx, col: &str, keys: &[String]) -> Result<HashMap<String, i64>> {
    if matches!(tx, Tx::Sqlite(_)) {
        // One prepared point lookup per key through the statement interface, on this
        // thread: no IN list of 500 values parsed per statement, no round trip per chunk.
        return crate::raw::with_conn(tx, |c| existing_raw(c, col, keys)).await;
    }
    let rows: Vec<(String, i64)> =
        crate::select_in!(tx, sqlx::query_as, format!("SELECT {col}, id FROM leads WHERE {col}"), keys);
    Ok(rows.into_iter().collect())
}

/// `existing` through SQLite's statement interface, on the caller's thread.
pub(crate) fn existing_raw(c: &crate::raw::Conn, col: &str, keys: &[String]) -> Result<HashMap<String, i64>> {
    let mut st = c.prepare(&format!("SELECT id FROM leads WHERE {col} = ?1"))?;
    let mut found = HashMap::new();
    for k in keys {
        st.text(1, k)?;
        if let Some(id) = st.first_int()? {
            found.insert(k.clone(), id);
        }
    }
    Ok(found)
}

pub async fn import_leads(
    db: &Db,
    actor: &Actor,
    rows: Vec<LeadInput>,
    rules: &Rules<'_>,
    label: &str,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<ImportOutcome> {
    let started = std::time::Instant::now();
    let phase = |what: &str| tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "lead import: {what}");
    let (rows, mut merged) = dedup_in_file(rows);
    phase("deduplicated in the file");
    // A large file's transaction writes its pages once when it can (`Db::begin_bulk`).
    let mut tx = if rows.len() >= crate::bulk::BULK_MIN { db.begin_bulk(true).await? } else { db.begin().await? };
    let emails: Vec<String> = rows.iter().filter_map(|(r, _)| r.email_key()).collect();
    let phones: Vec<String> = rows.iter().filter_map(|(r, _)| r.phone_key()).collect();
    let by_email = existing(&mut tx, "email_key", &emails).await?;
    let by_phone = existing(&mut tx, "phone_key", &phones).await?;
    phase("stored keys looked up");
    let mut fresh = Vec::with_capacity(rows.len());
    let mut done = 0;
    for (r, also) in rows {
        let hit = r.email_key().and_then(|k| by_email.get(&k)).or_else(|| r.phone_key().and_then(|k| by_phone.get(&k)));
        match hit {
            Some(id) => {
                merge_tx(&mut tx, actor, *id, &r, rules).await?;
                for a in &also {
                    merge_tx(&mut tx, actor, *id, a, rules).await?;
                }
                merged += 1;
                done += 1;
                progress(done);
            }
            None => fresh.push((r, also)),
        }
    }
    // Everything imported now shares one assignment time and so one pair of SLA deadlines.
    let now = actor.now;
    let due = sla_due(rules.playbook, rules.calendar, rules.tz, now.get())
        .map_err(|e| Error::Other(format!("cannot compute the SLA: {e}")))?;
    let (first_due, follow_due) = (Ts::new(due.first_response), Ts::new(due.follow_up));
    let mut teams = routing_teams(&mut tx).await?;
    struct Prepared {
        input: LeadInput,
        also: Vec<LeadInput>,
        grading: domain::lead::Grading,
        decision: RouteDecision,
    }
    let mut prepared = Vec::with_capacity(fresh.len());
    for (input, also) in fresh {
        let grading = rules.playbook.grade(&input.answers, rules.version).map_err(Error::Invalid)?;
        let decision = route(rules.playbook, grading.grade, input.province.as_deref(), input.city.as_deref(), &teams);
        if let RouteDecision::Sales { team_id, owner_id, .. } = &decision
            && let Some(t) = teams.iter_mut().find(|t| t.team_id == *team_id)
        {
            t.last_assigned = Some(*owner_id);
        }
        prepared.push(Prepared { input, also, grading, decision });
    }
    phase("graded and routed");
    // L-1 (c): a large file's leads go in before their secondary indexes and full-text
    // entries are built (see `bulk`); the unique e-mail and phone keys stay in force.
    let last_id_before: i64 =
        on_tx!(&mut tx, c => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM leads").fetch_one(c).await)?;
    let deferred =
        crate::bulk::defer_indexes(&mut tx, "leads", Some("leads_fts_insert"), prepared.len(), last_id_before).await?;
    let mut created = 0;
    fn new_lead(p: &Prepared, sources: serde_json::Value, now: Ts, due: (Ts, Ts)) -> NewLead<'_> {
        NewLead {
            input: &p.input,
            now,
            grading: &p.grading,
            decision: &p.decision,
            due: matches!(p.decision, RouteDecision::Sales { .. }).then_some(due),
            sources,
        }
    }
    fn sources_of(p: &Prepared, now: Ts) -> serde_json::Value {
        serde_json::Value::Array(std::iter::once(&p.input).chain(&p.also).map(|x| source_json(x, now)).collect())
    }
    // The history entry says where the lead came from and what the import decided; the
    // grading's parts and the route's reason are the lead's own columns as written now (a
    // later regrade or reassignment records what it changed).
    fn history_of(p: &Prepared, label: &str) -> serde_json::Value {
        let route = crate::capture::decision_columns(&p.decision).0;
        json!({"file": label, "grade": p.grading.grade.code(), "total": p.grading.total,
               "playbook_version": p.grading.playbook_version, "route": route})
    }
    let due = (first_due, follow_due);
    let row = |p, sources| new_lead(p, sources, now, due);
    // A large SQLite import writes on one thread; the rows' costliest texts (sources, search
    // text, history entry) are made on another, chunk by chunk ahead of the writer.
    let prepared = std::sync::Arc::new(prepared);
    type Texts = Vec<(crate::capture::LeadTexts, String)>;
    let (texts_tx, mut texts_rx) = tokio::sync::mpsc::channel::<Texts>(64);
    if deferred.is_some() {
        let (prepared, label) = (prepared.clone(), label.to_string());
        std::thread::spawn(move || {
            for chunk in prepared.chunks(CHUNK) {
                let texts = chunk
                    .iter()
                    .map(|p| {
                        let lead = new_lead(p, sources_of(p, now), now, due);
                        (crate::capture::LeadTexts::of(&lead), history_of(p, &label).to_string())
                    })
                    .collect();
                // The writer stopped (an error): nothing more to make.
                if texts_tx.blocking_send(texts).is_err() {
                    return;
                }
            }
        });
    }
    let now_text = now.to_text();
    for chunk in prepared.chunks(CHUNK) {
        let conflict = "a lead in the file was captured elsewhere during the import; run it again";
        let ids: Vec<i64> = if deferred.is_some() {
            // A large SQLite import: leads and their history entries through SQLite's
            // statement interface (`raw`), one prepared statement each.
            let rows: Vec<NewLead> = chunk.iter().map(|p| row(p, serde_json::Value::Null)).collect();
            let (lead_texts, histories): (Vec<_>, Vec<_>) = texts_rx
                .recv()
                .await
                .ok_or_else(|| Error::Other("the import stopped making its rows' texts".into()))?
                .into_iter()
                .unzip();
            crate::raw::with_conn(&mut tx, |conn| {
                let ids = crate::capture::insert_leads_raw(conn, &rows, &lead_texts)?;
                let mut st = conn.prepare(crate::capture::EVENT_INSERT)?;
                for (h, id) in histories.iter().zip(&ids) {
                    crate::capture::bind_event(&mut st, *id, &now_text, "imported", actor, h)?;
                }
                Ok(ids)
            })
            .await
            .map_err(|e| if matches!(e, Error::Conflict(_)) { Error::Conflict(conflict.into()) } else { e })?
        } else {
            let rows: Vec<NewLead> = chunk.iter().map(|p| row(p, sources_of(p, now))).collect();
            let ids: Vec<i64> = insert_leads(&mut tx, &rows, conflict, "id", |r: &(i64,)| r.0)
                .await?
                .into_iter()
                .map(|r| r.0)
                .collect();
            on_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO lead_events (lead_id, at, kind, actor_id, actor_label, data) ");
                qb.push_values(chunk.iter().zip(&ids), |mut b, (p, id)| {
                    b.push_bind(*id).push_bind(now).push_bind("imported").push_bind(actor.user_id).push_bind(actor.label.clone())
                        .push_bind(history_of(p, label));
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
    if let Some(d) = deferred {
        d.rebuild(&mut tx).await?;
        phase("indexes built");
        on_tx!(&mut tx, c => sqlx::query("INSERT INTO leads_fts (rowid, search_text) SELECT id, search_text FROM leads WHERE id > $1")
            .bind(last_id_before).execute(c).await.map(|r| r.rows_affected()))?;
        phase("full-text index written");
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
