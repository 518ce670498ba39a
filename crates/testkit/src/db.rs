//! A fresh database per test: a temporary SQLite file, or a PostgreSQL database cloned from
//! a migrated template (migrations run once per schema, not once per test).

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server tests use; override with `MARKETOPS_TEST_PG`.
pub fn pg_base() -> String {
    std::env::var("MARKETOPS_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
static SEQ: OnceLock<std::sync::atomic::AtomicU64> = OnceLock::new();

fn migrations_fingerprint() -> String {
    // Any change to the PostgreSQL migrations makes a new template.
    let mut text = String::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../store/migrations/postgres");
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("migrations dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        text.push_str(&std::fs::read_to_string(p).unwrap_or_default());
    }
    store::secret_hash(&text)[..12].to_string()
}

async fn admin() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&format!("{}/postgres", pg_base()))
        .await
        .expect("PostgreSQL must be running for the PostgreSQL tests (the test command starts it)")
}

async fn template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("marketops_tpl_{}", migrations_fingerprint());
            let pool = admin().await;
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&pool)
                .await
                .expect("query pg_database");
            if !exists {
                let tmp = format!("{name}_build_{}", std::process::id());
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {tmp} WITH (FORCE)")))
                    .execute(&pool)
                    .await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {tmp}")))
                    .execute(&pool)
                    .await
                    .expect("create template");
                let db = store::Db::connect(&format!("{}/{tmp}", pg_base())).await.expect("connect template");
                db.migrate().await.expect("migrate template");
                db.close().await;
                // Renaming makes the finished template appear atomically to other test runs.
                let r = sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {tmp} RENAME TO {name}")))
                    .execute(&pool)
                    .await;
                if r.is_err() {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {tmp} WITH (FORCE)")))
                        .execute(&pool)
                        .await;
                }
            }
            pool.close().await;
            name
        })
        .await
        .clone()
}

impl TestDb {
    pub async fn new(kind: Kind) -> TestDb {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb { kind, url, name: None, _dir: Some(dir) }
            }
            Kind::Postgres => {
                let tpl = template().await;
                let seq = SEQ.get_or_init(Default::default).fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let name = format!("marketops_t_{}_{}_{}", std::process::id(), seq, store::random_hex(3));
                let pool = admin().await;
                let mut tries = 0;
                loop {
                    let r = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {tpl}")))
                        .execute(&pool)
                        .await;
                    match r {
                        Ok(_) => break,
                        // Two clones of one template at the same instant can collide; retry.
                        Err(e) if tries < 20 => {
                            tries += 1;
                            tracing_note(&e);
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("cannot create test database: {e}"),
                    }
                }
                pool.close().await;
                TestDb { kind, url: format!("{}/{name}", pg_base()), name: Some(name), _dir: None }
            }
        }
    }

    /// A migrated, empty database of this kind (no demo data).
    pub async fn connect(&self) -> store::Db {
        let db = store::Db::connect(&self.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        db
    }
}

fn tracing_note(e: &sqlx::Error) {
    eprintln!("retrying CREATE DATABASE: {e}");
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        // Drop runs outside any async context we can rely on: use a small runtime of our own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&format!("{}/postgres", pg_base()))
                    .await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}
