//! Test support: databases on both backends, a running app with a movable clock, an HTTP
//! client that behaves like a browser (cookies, Origin), and a real Chromium.

pub mod browser;
pub mod client;
pub mod db;

pub use client::{Client, Resp};
pub use db::{Kind, TestDb};

use jiff::Timestamp;
use marketops::config::Config;
use marketops::startup::Application;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use store::{Actor, Db, Ts};

/// Runs one async test body on SQLite and on PostgreSQL: `both!(name, |kind| async move {…})`
/// becomes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = $body;
                f($crate::Kind::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let f = $body;
                f($crate::Kind::Postgres).await;
            }
        }
    };
}

/// A clock tests move by hand. Starts on Monday 2026-11-23 10:00 in Shanghai.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl Default for TestClock {
    fn default() -> Self {
        let start: Timestamp = "2026-11-23T02:00:00Z".parse().expect("valid instant");
        TestClock(Arc::new(AtomicI64::new(start.as_microsecond())))
    }
}

impl TestClock {
    pub fn now(&self) -> Timestamp {
        Timestamp::from_microsecond(self.0.load(Ordering::SeqCst)).expect("in range")
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1_000_000, Ordering::SeqCst);
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_microsecond(), Ordering::SeqCst);
    }
    pub fn as_clock(&self) -> web::Clock {
        let c = self.clone();
        Arc::new(move || c.now())
    }
}

/// Cheap Argon2 parameters: tests hash many passwords.
pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_string(),
        port: 0,
        jobs: false,
        password_memory_kib: 64,
        password_iterations: 1,
        ..Config::default()
    }
}

pub const PASSWORD: &str = marketops::demo::DEMO_PASSWORD;

/// A running MarketOps on a fresh database loaded with the demo company.
pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub db: Db,
    pub clock: TestClock,
    pub cfg: Config,
    pub testdb: Arc<TestDb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn(kind: Kind) -> TestApp {
        let testdb = Arc::new(TestDb::new(kind).await);
        TestApp::spawn_on(testdb, TestClock::default(), true).await
    }

    /// A fresh instance with its configuration changed by `configure` first.
    pub async fn spawn_with(kind: Kind, configure: impl FnOnce(&mut Config)) -> TestApp {
        let testdb = Arc::new(TestDb::new(kind).await);
        let mut cfg = test_config(&testdb.url);
        configure(&mut cfg);
        TestApp::start(testdb, TestClock::default(), true, cfg).await
    }

    /// Another instance on the same database (two servers working together).
    pub async fn spawn_on(testdb: Arc<TestDb>, clock: TestClock, load_demo: bool) -> TestApp {
        let cfg = test_config(&testdb.url);
        TestApp::start(testdb, clock, load_demo, cfg).await
    }

    async fn start(testdb: Arc<TestDb>, clock: TestClock, load_demo: bool, cfg: Config) -> TestApp {
        marketops::jobs::install_tls();
        let db = marketops::startup::open_db(&cfg.database_url).await.expect("open test database");
        if load_demo {
            let actor = Actor::cli(Ts::new(clock.now()));
            marketops::demo::load(&db, &actor, cfg.web_settings().password).await.expect("load demo");
        }
        let app = Application::build(&cfg, db.clone(), clock.as_clock()).await.expect("build app");
        let addr = app.addr;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run(async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestApp { addr, url: format!("http://{addr}"), db, clock, cfg, testdb, stop: Some(tx), task: Some(task) }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// A client logged in (through the login form) as the demo account `email`.
    pub async fn login(&self, email: &str) -> Client {
        let mut c = self.client();
        let r = c.post_form("/login", &[("email", email), ("password", PASSWORD)]).await;
        assert_eq!(r.status, 303, "login of {email} failed: {}", r.text);
        c
    }

    /// A client that authenticates with a fresh API token of `email`.
    pub async fn api(&self, email: &str) -> Client {
        let user = store::org::find_user_by_email(&self.db, email).await.expect("db").expect("demo user");
        let (_, secret) =
            store::auth::create_token(&self.db, &Actor::cli(self.now()), user.id, "test").await.expect("token");
        self.client().with_bearer(&secret)
    }

    pub fn now(&self) -> Ts {
        Ts::new(self.clock.now())
    }

    pub async fn user_id(&self, email: &str) -> i64 {
        store::org::find_user_by_email(&self.db, email).await.expect("db").expect("user").id
    }

    pub async fn audit_count(&self) -> i64 {
        store::audit::count(&self.db).await.expect("db")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.db.close().await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A webhook receiver on a local port (the edge of the system: tests stand in for WeCom,
/// DingTalk or Feishu here). It answers `fail_first` requests with HTTP 500, then 200.
pub struct Receiver {
    pub url: String,
    pub bodies: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        use axum::routing::post;
        let bodies: Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Arc::default();
        let failures = Arc::new(std::sync::atomic::AtomicUsize::new(fail_first));
        let (b, f) = (bodies.clone(), failures.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let (b, f) = (b.clone(), f.clone());
                async move {
                    b.lock().expect("lock").push(v);
                    if f.load(Ordering::SeqCst) > 0 {
                        f.fetch_sub(1, Ordering::SeqCst);
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response();
                    }
                    axum::Json(serde_json::json!({"errcode": 0, "errmsg": "ok"})).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, bodies, task }
    }

    pub fn received(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

use axum::response::IntoResponse;

/// Percent-encodes a query-string value (UTF-8, every byte outside `A-Za-z0-9-._~`).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// L-1: SQLite's search index, once caught up, gives for each of a sample of the stored
/// tokens (every one in a small store, about 300 in a large one) exactly the leads whose
/// stored text matches it, and passes FTS5's own check. Nothing to check on PostgreSQL,
/// whose index is written with the row.
pub async fn assert_search_index_agrees(db: &Db) {
    let Db::Sqlite(p) = db else { return };
    store::search::catch_up(db).await.unwrap();
    assert_eq!(store::search::lag(db).await.unwrap(), Some((0, 0)), "caught up");
    store::search::check(db).await.unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, search_text FROM leads ORDER BY id").fetch_all(p).await.unwrap();
    let tokens: std::collections::BTreeSet<&str> =
        rows.iter().flat_map(|(_, t)| t.split(' ')).filter(|t| !t.is_empty()).collect();
    let keys: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, weak_key FROM leads WHERE weak_key IS NOT NULL ORDER BY id")
            .fetch_all(p)
            .await
            .unwrap();
    // L-2: for each of a sample of the stored weak keys, the index of weak keys gives exactly
    // the leads whose stored key has all of that key's tokens.
    // Each lead's tokens made once, not once per sampled key.
    let key_tokens: Vec<(i64, Vec<&str>)> =
        keys.iter().map(|(id, k)| (*id, domain::search::weak_key_tokens(k).collect())).collect();
    let distinct: std::collections::BTreeSet<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
    for key in distinct.iter().step_by((distinct.len() / 300).max(1)) {
        let wanted: Vec<&str> = domain::search::weak_key_tokens(key).collect();
        let want: Vec<i64> = key_tokens
            .iter()
            .filter(|(_, have)| !wanted.is_empty() && wanted.iter().all(|t| have.contains(t)))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(store::search::indexed_weak(db, key).await.unwrap().unwrap(), want, "weak key {key:?}");
    }
    let every = (tokens.len() / 300).max(1);
    for token in tokens.iter().step_by(every) {
        let q = domain::search::Query::parse(token).expect("a stored token is something to search by");
        let want: Vec<i64> = rows.iter().filter(|(_, t)| q.matches(t)).map(|(id, _)| *id).collect();
        let got = store::search::indexed(db, &q).await.unwrap().unwrap();
        assert_eq!(got, want, "token {token:?}");
    }
}
