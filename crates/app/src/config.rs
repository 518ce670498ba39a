//! Configuration: built-in defaults, then an optional TOML file, then `MARKETOPS_*`
//! environment variables, then command-line flags — each layer overriding the one before.

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path` or `postgres://…`; a bare path is a SQLite file.
    pub database_url: String,
    pub host: String,
    pub port: u16,
    /// The origin browsers use (`https://mkt.example.com`), for the CSRF check and cookies.
    pub public_origin: Option<String>,
    pub secure_cookies: bool,
    pub log_json: bool,
    /// A tracing filter, e.g. `info` or `marketops=debug,sqlx=warn`.
    pub log_level: String,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub login_max_failures: i64,
    pub login_lockout_minutes: i64,
    pub body_limit_kib: usize,
    /// Run the background job worker in this process.
    pub jobs: bool,
    pub job_poll_ms: u64,
    /// Argon2id memory cost in KiB and passes (OWASP: 19456 and 2).
    pub password_memory_kib: u32,
    pub password_iterations: u32,
    /// Public lead-form submissions one address may make per hour.
    pub form_per_hour: i64,
    /// Dashboard figures that took at least this long to compute are shown as they were
    /// while they are computed again beside (after an order, say), marked as refreshing.
    pub dashboard_refresh_ms: u64,
    /// SQLite: how often the search indexer looks for new and changed leads once it has
    /// caught up (it steps back to back while behind); 0 runs no indexer in this process,
    /// for a second instance on the same database (searches stay exact, reading the leads'
    /// stored text past the index, only slower).
    pub search_index_ms: u64,
    /// SQLite: how often the server copies the write-ahead log's committed pages into the
    /// database file and flushes both (`store::Db::checkpoint`). Longer, a page the capture
    /// writer rewrites in every commit is copied fewer times, but the writer's own
    /// checkpoint at a restart of the log has more to copy: 100 ms was better than 25 ms at
    /// 9,000 captures/s and no better at 11,500 (BENCHMARKS.md, lead engine, fifteenth
    /// round), so 25 ms stays.
    pub checkpoint_ms: u64,
    /// L-1: longest wait for the capture writer's answer; past it the API answers 503 (the
    /// capture may still be written: a retry with the same Idempotency-Key returns it), and
    /// a transaction of the writer's still waiting that long is abandoned and its
    /// connection replaced (`store::capture::Queue`).
    pub capture_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://marketops.db".into(),
            host: "127.0.0.1".into(),
            port: 8080,
            public_origin: None,
            secure_cookies: false,
            log_json: false,
            log_level: "info".into(),
            session_idle_minutes: 120,
            session_absolute_hours: 168,
            login_max_failures: 5,
            login_lockout_minutes: 15,
            body_limit_kib: 1024,
            jobs: true,
            job_poll_ms: 1000,
            password_memory_kib: 19 * 1024,
            password_iterations: 2,
            form_per_hour: 10,
            dashboard_refresh_ms: 250,
            search_index_ms: 500,
            checkpoint_ms: 25,
            capture_timeout_ms: 30_000,
        }
    }
}

const ENV_PREFIX: &str = "MARKETOPS_";

impl Config {
    /// Defaults, overlaid with `file` (if given, it must exist) and then the environment.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, String> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<Config>(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?
            }
            None => Config::default(),
        };
        for (k, v) in env {
            let Some(name) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            cfg.set(&name.to_ascii_lowercase(), v).map_err(|e| format!("{k}: {e}"))?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        fn parse<T: std::str::FromStr>(v: &str) -> Result<T, String> {
            v.trim().parse().map_err(|_| format!("`{v}` is not a valid value"))
        }
        fn boolean(v: &str) -> Result<bool, String> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(format!("`{v}` is not true or false")),
            }
        }
        match key {
            "database_url" => self.database_url = v.to_string(),
            "host" => self.host = v.to_string(),
            "port" => self.port = parse(v)?,
            "public_origin" => self.public_origin = Some(v.to_string()).filter(|s| !s.is_empty()),
            "secure_cookies" => self.secure_cookies = boolean(v)?,
            "log_json" => self.log_json = boolean(v)?,
            "log_level" => self.log_level = v.to_string(),
            "session_idle_minutes" => self.session_idle_minutes = parse(v)?,
            "session_absolute_hours" => self.session_absolute_hours = parse(v)?,
            "login_max_failures" => self.login_max_failures = parse(v)?,
            "login_lockout_minutes" => self.login_lockout_minutes = parse(v)?,
            "body_limit_kib" => self.body_limit_kib = parse(v)?,
            "jobs" => self.jobs = boolean(v)?,
            "job_poll_ms" => self.job_poll_ms = parse(v)?,
            "password_memory_kib" => self.password_memory_kib = parse(v)?,
            "password_iterations" => self.password_iterations = parse(v)?,
            "form_per_hour" => self.form_per_hour = parse(v)?,
            "dashboard_refresh_ms" => self.dashboard_refresh_ms = parse(v)?,
            "search_index_ms" => self.search_index_ms = parse(v)?,
            "checkpoint_ms" => self.checkpoint_ms = parse(v)?,
            "capture_timeout_ms" => self.capture_timeout_ms = parse(v)?,
            // Variables of other tools may share the prefix; only ours are read.
            "config" => {}
            other => return Err(format!("unknown setting `{other}`")),
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.database_url.trim().is_empty() {
            return Err("database_url must not be empty".into());
        }
        if self.session_idle_minutes < 1 || self.session_absolute_hours < 1 {
            return Err("session lifetimes must be at least 1".into());
        }
        if self.login_max_failures < 1 || self.login_lockout_minutes < 1 {
            return Err("login_max_failures and login_lockout_minutes must be at least 1".into());
        }
        if self.password_memory_kib < 64 || self.password_iterations < 1 {
            return Err("password_memory_kib must be at least 64 and password_iterations at least 1".into());
        }
        if self.body_limit_kib < 16 {
            return Err("body_limit_kib must be at least 16".into());
        }
        Ok(())
    }

    pub fn web_settings(&self) -> web::Settings {
        web::Settings {
            public_origin: self.public_origin.clone(),
            secure_cookies: self.secure_cookies,
            session: store::auth::SessionPolicy {
                idle_secs: self.session_idle_minutes * 60,
                absolute_secs: self.session_absolute_hours * 3600,
                touch_every_secs: 60,
            },
            throttle: store::auth::ThrottlePolicy {
                max_failures: self.login_max_failures,
                window_secs: self.login_lockout_minutes * 60,
            },
            body_limit: self.body_limit_kib * 1024,
            password: web::password::Params {
                memory_kib: self.password_memory_kib,
                iterations: self.password_iterations,
            },
            form_per_hour: self.form_per_hour,
            dashboard_refresh_ms: self.dashboard_refresh_ms,
            capture_timeout: std::time::Duration::from_millis(self.capture_timeout_ms.max(1)),
        }
    }
}
