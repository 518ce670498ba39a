//! The background worker: periodic work enqueued with dedup keys, executed from the jobs
//! table (see `store::jobs` for the lease protocol).

use jiff::Timestamp;
use std::time::Duration;
use store::jobs::{self, NewJob};
use store::{Db, Ts};
use web::Clock;

/// A periodic job: its kind and how often it runs, in seconds.
pub const PERIODIC: &[(&str, i64)] = &[("session_sweep", 300), ("login_failure_sweep", 3600), ("jobs_prune", 86_400)];

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
        Runner { db, clock, worker, session, throttle }
    }

    fn now(&self) -> Ts {
        Ts::new((self.clock)())
    }

    /// Enqueues this slot's run of every periodic job; whichever instance inserts first wins,
    /// the others' inserts are no-ops. Returns how many were enqueued by this call.
    pub async fn schedule(&self) -> store::Result<usize> {
        let now = self.now();
        let mut n = 0;
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
            "login_failure_sweep" => store::auth::sweep_failures(&self.db, now, &self.throttle)
                .await
                .map(|n| format!("{n} old login failures removed"))
                .map_err(|e| e.to_string()),
            "jobs_prune" => jobs::prune(&self.db, now.add_secs(-7 * 86_400))
                .await
                .map(|n| format!("{n} finished jobs removed"))
                .map_err(|e| e.to_string()),
            other => Err(format!("no handler for job kind `{other}`")),
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
