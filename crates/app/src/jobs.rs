//! The background worker: periodic work enqueued with dedup keys, executed from the jobs
//! table (see `store::jobs` for the lease protocol).

use jiff::Timestamp;
use std::time::Duration;
use store::jobs::{self, NewJob};
use store::{Db, Ts};
use web::Clock;

/// Periodic jobs and their interval in seconds; each runs once per slot across instances.
/// `dormant_scan` is L-10's hourly check for leads gone quiet.
pub const PERIODIC: &[(&str, i64)] =
    &[("session_sweep", 300), ("login_failure_sweep", 3600), ("jobs_prune", 86_400), ("dormant_scan", 3600)];

/// How long a claimed job may run before another worker may take it over.
const LEASE_SECS: i64 = 300;
/// First retry delay; doubled after every failed attempt.
const RETRY_BASE_SECS: i64 = 30;

pub struct Runner {
    pub db: Db,
    pub clock: Clock,
    pub worker: String,
    pub session: store::auth::SessionPolicy,
    pub throttle: store::auth::ThrottlePolicy,
    /// The base of links in notifications (`https://mkt.example.com`).
    pub link_base: String,
    http: reqwest::Client,
}

/// How long a webhook receiver may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS for outbound HTTPS (WeCom, DingTalk and Feishu bots): ring as the crypto provider,
/// the system's trust store for certificates. Call before building an HTTP client; a second
/// call is harmless.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The dedup key of `kind`'s run in the time slot containing `now`.
pub fn slot_key(kind: &str, every_secs: i64, now: Timestamp) -> String {
    let slot = now.as_second().div_euclid(every_secs);
    format!("{kind}:{slot}")
}

impl Runner {
    pub fn new(
        db: Db,
        clock: Clock,
        session: store::auth::SessionPolicy,
        throttle: store::auth::ThrottlePolicy,
    ) -> Runner {
        let worker = format!("{}-{}", std::process::id(), store::random_hex(4));
        install_tls();
        let http = reqwest::Client::builder().timeout(WEBHOOK_TIMEOUT).build().unwrap_or_default();
        Runner { db, clock, worker, session, throttle, link_base: String::new(), http }
    }

    pub fn with_link_base(mut self, base: impl Into<String>) -> Runner {
        self.link_base = base.into();
        self
    }

    fn now(&self) -> Ts {
        Ts::new((self.clock)())
    }

    /// Enqueues this slot's run of every periodic job; whichever instance inserts first wins,
    /// the others' inserts are no-ops. Returns how many were enqueued by this call.
    pub async fn schedule(&self) -> store::Result<usize> {
        let now = self.now();
        let mut n = 0;
        // L-5: the breach scan runs as often as the active playbook says.
        let every = match store::playbook::active(&self.db).await? {
            Some(v) => {
                domain::playbook::Playbook::parse(&v.document).map_or(60, |pb| pb.leads.sla.scan_interval_seconds)
            }
            None => 60,
        };
        let scan = NewJob::new("sla_scan", serde_json::json!({}), now).dedup(slot_key("sla_scan", every, now.get()));
        if jobs::enqueue(&self.db, &scan, now).await?.is_some() {
            n += 1;
        }
        for (kind, every) in PERIODIC {
            let job = NewJob::new(kind, serde_json::json!({}), now).dedup(slot_key(kind, *every, now.get()));
            if jobs::enqueue(&self.db, &job, now).await?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Claims and runs one job; `false` when none was ready.
    pub async fn run_one(&self) -> store::Result<bool> {
        let Some(job) = jobs::claim(&self.db, &self.worker, self.now(), LEASE_SECS).await? else {
            return Ok(false);
        };
        let result = self.execute(&job).await;
        let now = self.now();
        match result {
            Ok(summary) => {
                tracing::info!(job = job.id, kind = %job.kind, %summary, "job done");
                jobs::complete(&self.db, job.id, &self.worker, now).await?;
            }
            Err(e) => {
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed");
                jobs::fail(&self.db, &job, &self.worker, now, &e, RETRY_BASE_SECS).await?;
            }
        }
        Ok(true)
    }

    async fn execute(&self, job: &jobs::Claimed) -> Result<String, String> {
        let now = self.now();
        match job.kind.as_str() {
            "session_sweep" => store::auth::sweep_sessions(&self.db, now, &self.session)
                .await
                .map(|n| format!("{n} expired sessions removed"))
                .map_err(|e| e.to_string()),
            "login_failure_sweep" => {
                let a = store::auth::sweep_failures(&self.db, now, &self.throttle).await.map_err(|e| e.to_string())?;
                let b =
                    store::auth::sweep_rate_events(&self.db, now.add_secs(-86_400)).await.map_err(|e| e.to_string())?;
                Ok(format!("{a} old login failures and {b} old rate events removed"))
            }
            "jobs_prune" => jobs::prune(&self.db, now.add_secs(-7 * 86_400))
                .await
                .map(|n| format!("{n} finished jobs removed"))
                .map_err(|e| e.to_string()),
            "sla_scan" => self.sla_scan(now).await.map(|n| format!("{n} new SLA breaches")),
            "webhook_delivery" => self.deliver(job).await,
            "automation_run" => {
                let p = &job.payload;
                let (Some(rule), Some(lead)) = (p["rule_id"].as_i64(), p["lead_id"].as_i64()) else {
                    return Err("the job lacks rule_id or lead_id".into());
                };
                let at = p["trigger_at"].as_str().and_then(|t| Ts::parse(t).ok()).unwrap_or(now);
                store::automation::run(&self.db, rule, lead, at, now).await.map_err(|e| e.to_string())
            }
            "dormant_scan" => {
                let Some(v) = store::playbook::active(&self.db).await.map_err(|e| e.to_string())? else {
                    return Ok("no playbook".into());
                };
                let pb = domain::playbook::Playbook::parse(&v.document).map_err(|e| e.to_string())?;
                store::automation::dormant_scan(&self.db, now, &pb)
                    .await
                    .map(|n| format!("{n} dormant leads handled"))
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("no handler for job kind `{other}`")),
        }
    }

    async fn sla_scan(&self, now: Ts) -> Result<usize, String> {
        let Some(v) = store::playbook::active(&self.db).await.map_err(|e| e.to_string())? else { return Ok(0) };
        let Some(company) = store::company::get(&self.db).await.map_err(|e| e.to_string())? else { return Ok(0) };
        let tz = jiff::tz::TimeZone::get(&company.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let ctx = store::sla::ScanContext { now, playbook_version: v.version, tz: &tz, link_base: &self.link_base };
        store::sla::scan(&self.db, &ctx).await.map_err(|e| e.to_string())
    }

    /// Posts one webhook delivery. Bot endpoints answer 200 with an error code in the body
    /// when they refuse a message, so that counts as a failure too.
    async fn deliver(&self, job: &jobs::Claimed) -> Result<String, String> {
        let id = job.payload["delivery_id"].as_i64().ok_or("the job has no delivery_id")?;
        let Some((url, body)) = store::sla::delivery_target(&self.db, id).await.map_err(|e| e.to_string())? else {
            return Ok(format!("delivery {id} no longer exists"));
        };
        let outcome = match self.http.post(&url).json(&body).send().await {
            Err(e) => Err((None, format!("cannot reach {url}: {e}"))),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let refused = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| {
                    let code = v.get("errcode").or_else(|| v.get("code")).and_then(serde_json::Value::as_i64)?;
                    (code != 0).then(|| format!("the receiver refused the message: {text}"))
                });
                match (status, refused) {
                    (200..=299, None) => Ok(status),
                    (200..=299, Some(why)) => Err((Some(status), why)),
                    _ => Err((Some(status), format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()))),
                }
            }
        };
        let final_attempt = job.attempts >= job.max_attempts;
        let now = self.now();
        store::sla::record_attempt(&self.db, id, now, outcome.clone(), final_attempt)
            .await
            .map_err(|e| e.to_string())?;
        match outcome {
            Ok(code) => Ok(format!("delivery {id}: HTTP {code}")),
            Err((_, e)) => Err(e),
        }
    }

    /// Schedules and drains the queue once: what each poll of the loop does.
    pub async fn tick(&self) -> store::Result<usize> {
        self.schedule().await?;
        let mut ran = 0;
        while self.run_one().await? {
            ran += 1;
        }
        Ok(ran)
    }

    /// Polls until `shutdown` resolves.
    pub async fn run(self, poll: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "job worker tick failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
}
