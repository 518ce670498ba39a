//! Background jobs: leases, retries with back-off, and periodic runs exactly once across
//! instances.

use super::*;
use marketops::jobs::{PERIODIC, Runner};
use store::jobs::{self as q, NewJob};
use store::{
    Ts,
    auth::{SessionPolicy, ThrottlePolicy},
};

fn runner(app: &TestApp) -> Runner {
    Runner::new(app.db.clone(), app.clock.as_clock(), SessionPolicy::default(), ThrottlePolicy::default())
}

both!(periodic_jobs_run_once_with_two_runners, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let other_db = store::Db::connect(&app.testdb.url).await.unwrap();
    let a = runner(&app);
    let b = Runner::new(other_db, app.clock.as_clock(), SessionPolicy::default(), ThrottlePolicy::default());
    // Both instances schedule and work the same slot at the same time.
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.tick(), b.tick());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra + rb <= PERIODIC.len() + 1);
    }
    let rows = q::list(&app.db, None).await.unwrap();
    assert_eq!(rows.len(), PERIODIC.len() + 1, "one job per periodic kind (and the SLA scan) in this slot: {rows:?}");
    assert!(rows.iter().all(|r| r.status == "done" && r.attempts == 1), "{rows:?}");
    // The next slot of the 5-minute sweep (and of the 1-minute SLA scan) is another run each.
    app.clock.advance_secs(300);
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    assert_eq!(ra.unwrap() + rb.unwrap(), 2);
    let sweeps = q::list(&app.db, Some("session_sweep")).await.unwrap();
    assert_eq!(sweeps.len(), 2);
    app.stop().await;
});

both!(many_concurrent_claims_take_each_job_once, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let now = app.now();
    for i in 0..40 {
        q::enqueue(&app.db, &NewJob::new("session_sweep", json!({"i": i}), now), now).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let db = store::Db::connect(&app.testdb.url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(j) = q::claim(&db, &format!("w{w}"), now, 60).await.unwrap() {
                got.push(j.id);
                q::complete(&db, j.id, &format!("w{w}"), now).await.unwrap();
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (40, 40), "every job claimed exactly once");
    app.stop().await;
});

both!(failed_jobs_retry_with_backoff_and_leases_expire, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let now = app.now();
    let mut job = NewJob::new("no_such_kind", json!({}), now);
    job.max_attempts = 3;
    q::enqueue(&app.db, &job, now).await.unwrap();
    let r = runner(&app);
    assert!(r.run_one().await.unwrap());
    let row = &q::list(&app.db, Some("no_such_kind")).await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
    assert!(row.last_error.as_deref().unwrap().contains("no handler"));
    assert_eq!(row.run_at, now.add_secs(30), "first retry after 30 s");
    assert!(!r.run_one().await.unwrap(), "not before its time");
    app.clock.advance_secs(30);
    assert!(r.run_one().await.unwrap());
    let row = &q::list(&app.db, Some("no_such_kind")).await.unwrap()[0];
    assert_eq!(row.run_at, app.now().add_secs(60), "then after 60 s");
    app.clock.advance_secs(60);
    assert!(r.run_one().await.unwrap());
    let row = &q::list(&app.db, Some("no_such_kind")).await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 3), "gives up after max_attempts");
    // A worker that dies holding a lease: the job is taken over when the lease expires.
    let t: Ts = app.now();
    q::enqueue(&app.db, &NewJob::new("session_sweep", json!({}), t), t).await.unwrap();
    let first = q::claim(&app.db, "dead-worker", t, 60).await.unwrap().unwrap();
    assert!(q::claim(&app.db, "other", t.add_secs(59), 60).await.unwrap().is_none());
    let again = q::claim(&app.db, "other", t.add_secs(61), 60).await.unwrap().unwrap();
    assert_eq!(again.id, first.id);
    assert!(
        !q::complete(&app.db, first.id, "dead-worker", t.add_secs(62)).await.unwrap(),
        "the old holder cannot finish it"
    );
    assert!(q::complete(&app.db, first.id, "other", t.add_secs(62)).await.unwrap());
    app.stop().await;
});

both!(session_sweep_removes_expired_sessions, |kind| async move {
    let app = TestApp::spawn(kind).await;
    let _c1 = app.login("marketer@yunqi.example").await;
    let _c2 = app.login("legal@yunqi.example").await;
    assert_eq!(store::auth::count_sessions(&app.db).await.unwrap(), 2);
    app.clock.advance_secs(3 * 3600);
    runner(&app).tick().await.unwrap();
    assert_eq!(store::auth::count_sessions(&app.db).await.unwrap(), 0);
    app.stop().await;
});
