//! Sessions, login throttling and API tokens — all in the database, so every server
//! instance sees the same state (a lockout on one instance holds on the others).

use crate::audit::{self, Actor, Change};
use crate::org::User;
use crate::{Db, Error, Result, Ts, on_db, on_tx, random_hex, secret_hash};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

macro_rules! sql {
    ($($part:expr),+ $(,)?) => { sqlx::AssertSqlSafe([$($part),+].concat()) };
}

const USER_COLS_U: &str = "u.id, u.email, u.display_name, u.role, u.department_id, u.team_id, u.active, u.available, u.locale, \
                           u.created_at, u.updated_at";

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle_secs: i64,
    /// A session ends this long after login, however active.
    pub absolute_secs: i64,
    /// `last_seen_at` is written at most this often, so reading pages does not write every time.
    pub touch_every_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy { idle_secs: 2 * 3600, absolute_secs: 7 * 24 * 3600, touch_every_secs: 60 }
    }
}

#[derive(Debug, Clone)]
pub struct NewSession {
    /// The secret for the cookie; only its hash is stored.
    pub secret: String,
    pub expires_at: Ts,
}

/// Starts a session for `user_id`. If the browser brought an old session id, that session
/// is deleted: the id always changes at login (no session fixation).
pub async fn create_session(
    db: &Db,
    actor: &Actor,
    user_id: i64,
    previous_secret: Option<&str>,
    policy: &SessionPolicy,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<NewSession> {
    let secret = random_hex(32);
    let expires_at = actor.now.add_secs(policy.absolute_secs);
    let mut tx = db.begin().await?;
    if let Some(old) = previous_secret {
        on_tx!(&mut tx, c => sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(secret_hash(old)).execute(c).await.map(|r| r.rows_affected()))?;
    }
    let sql = "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent) \
               VALUES ($1, $2, $3, $3, $4, $5, $6)";
    on_tx!(&mut tx, c => sqlx::query(sql)
        .bind(secret_hash(&secret))
        .bind(user_id)
        .bind(actor.now)
        .bind(expires_at)
        .bind(ip)
        .bind(user_agent.map(|u| u.chars().take(300).collect::<String>()))
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    audit::record(&mut tx, actor, Change::new("login", "session", Some(user_id.to_string()), None, None)).await?;
    tx.commit().await?;
    Ok(NewSession { secret, expires_at })
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    last_seen_at: Ts,
    expires_at: Ts,
    #[sqlx(flatten)]
    user: User,
}

/// The active account behind a session cookie, or `None` if the session is unknown,
/// expired (idle or absolute) or its account is deactivated. Refreshes `last_seen_at`.
pub async fn session_user(db: &Db, secret: &str, now: Ts, policy: &SessionPolicy) -> Result<Option<User>> {
    let id_hash = secret_hash(secret);
    let row: Option<SessionRow> = on_db!(db, p => sqlx::query_as(sql!(
        "SELECT s.last_seen_at, s.expires_at, ", USER_COLS_U,
        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
    )).bind(&id_hash).fetch_optional(p).await)?;
    let Some(row) = row else { return Ok(None) };
    let idle_deadline = row.last_seen_at.add_secs(policy.idle_secs);
    if now >= row.expires_at || now >= idle_deadline || !row.user.active {
        on_db!(db, p => sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(&id_hash).execute(p).await.map(|r| r.rows_affected()))?;
        return Ok(None);
    }
    if now >= row.last_seen_at.add_secs(policy.touch_every_secs) {
        on_db!(db, p => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now).bind(&id_hash).execute(p).await.map(|r| r.rows_affected()))?;
    }
    Ok(Some(row.user))
}

pub async fn delete_session(db: &Db, actor: &Actor, secret: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, c => sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(secret_hash(secret)).execute(c).await.map(|r| r.rows_affected()))?;
    if n > 0 {
        audit::record(
            &mut tx,
            actor,
            Change::new("logout", "session", actor.user_id.map(|u| u.to_string()), None, None),
        )
        .await?;
    }
    tx.commit().await
}

/// Deletes sessions past their absolute or idle expiry; returns how many.
pub async fn sweep_sessions(db: &Db, now: Ts, policy: &SessionPolicy) -> Result<u64> {
    let idle_cutoff = now.add_secs(-policy.idle_secs);
    let r = on_db!(db, p => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(now).bind(idle_cutoff).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r)
}

pub async fn count_sessions(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(p).await)?)
}

// ---- login throttling --------------------------------------------------------------------

/// How many wrong passwords lock an account or an address, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window_secs: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy { max_failures: 5, window_secs: 15 * 60 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Address,
}

impl Scope {
    fn code(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Address => "address",
        }
    }
}

/// If `key` is locked, the instant the lock lifts: `max_failures` failures inside the
/// window lock it until the oldest of them leaves the window.
pub async fn locked_until(db: &Db, scope: Scope, key: &str, now: Ts, policy: &ThrottlePolicy) -> Result<Option<Ts>> {
    let since = now.add_secs(-policy.window_secs);
    let sql = "SELECT at FROM login_failures WHERE scope = $1 AND key = $2 AND at > $3 ORDER BY at DESC LIMIT $4";
    let recent: Vec<Ts> = on_db!(db, p => sqlx::query_scalar(sql)
        .bind(scope.code()).bind(key).bind(since).bind(policy.max_failures).fetch_all(p).await)?;
    if (recent.len() as i64) < policy.max_failures {
        return Ok(None);
    }
    Ok(recent.last().map(|oldest| oldest.add_secs(policy.window_secs)))
}

pub async fn record_failure(db: &Db, scope: Scope, key: &str, now: Ts) -> Result<()> {
    on_db!(db, p => sqlx::query("INSERT INTO login_failures (scope, key, at) VALUES ($1, $2, $3)")
        .bind(scope.code()).bind(key).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A successful login forgives the account's failures (not the address's: one address
/// trying many accounts stays throttled).
pub async fn clear_failures(db: &Db, scope: Scope, key: &str) -> Result<()> {
    on_db!(db, p => sqlx::query("DELETE FROM login_failures WHERE scope = $1 AND key = $2")
        .bind(scope.code()).bind(key).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn sweep_failures(db: &Db, now: Ts, policy: &ThrottlePolicy) -> Result<u64> {
    let r = on_db!(db, p => sqlx::query("DELETE FROM login_failures WHERE at <= $1")
        .bind(now.add_secs(-policy.window_secs)).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(r)
}

// ---- API tokens --------------------------------------------------------------------------

/// Token text starts with this, so leaked tokens are easy to recognise and search for.
pub const TOKEN_PREFIX: &str = "mko_";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The first characters of the token, to tell tokens apart without revealing them.
    pub prefix: String,
    pub created_at: Ts,
    pub last_used_at: Option<Ts>,
    pub revoked_at: Option<Ts>,
}

/// Creates a token for `user_id`; the secret is returned once and only its hash is kept.
pub async fn create_token(db: &Db, actor: &Actor, user_id: i64, name: &str) -> Result<(ApiToken, String)> {
    let secret = format!("{TOKEN_PREFIX}{}", random_hex(20));
    let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let mut tx = db.begin().await?;
    let sql = "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5) \
               RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at";
    let token: ApiToken = on_tx!(&mut tx, c => sqlx::query_as(sql)
        .bind(user_id).bind(name).bind(secret_hash(&secret)).bind(&prefix).bind(actor.now)
        .fetch_one(c).await)?;
    audit::record(
        &mut tx,
        actor,
        Change::created("api_token", token.id, serde_json::json!({"user_id": user_id, "name": name, "prefix": prefix})),
    )
    .await?;
    tx.commit().await?;
    Ok((token, secret))
}

pub async fn list_tokens(db: &Db, user_id: i64) -> Result<Vec<ApiToken>> {
    let sql = "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens \
               WHERE user_id = $1 ORDER BY id DESC";
    Ok(on_db!(db, p => sqlx::query_as(sql).bind(user_id).fetch_all(p).await)?)
}

/// Revokes one of `user_id`'s tokens. Revoked tokens stay listed (with the time) for audit.
pub async fn revoke_token(db: &Db, actor: &Actor, user_id: i64, token_id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let sql = "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL";
    let n = on_tx!(&mut tx, c => sqlx::query(sql).bind(actor.now).bind(token_id).bind(user_id).execute(c).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    audit::record(&mut tx, actor, Change::deleted("api_token", token_id, serde_json::json!({"user_id": user_id})))
        .await?;
    tx.commit().await?;
    accounts_changed();
    Ok(())
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    last_used_at: Option<Ts>,
    #[sqlx(flatten)]
    user: User,
}

/// Bearer tokens checked in the last second, by hash. A machine client sends many requests
/// a second, and each would otherwise read its token and account again (on SQLite a hop to
/// a database thread and back, a tenth of a capture's cost). Revoking a token or changing
/// an account in this process empties it at once (`accounts_changed`); another instance
/// sees such a change within `TOKEN_TTL`.
struct TokenCache {
    generation: u64,
    users: HashMap<String, (User, Instant)>,
}

static TOKENS: Mutex<Option<TokenCache>> = Mutex::new(None);
static ACCOUNTS_GENERATION: AtomicU64 = AtomicU64::new(0);
const TOKEN_TTL: Duration = Duration::from_secs(1);
/// Far above the tokens one instance serves in a second; the cache starts over beyond it.
const TOKEN_CACHE_MAX: usize = 10_000;

/// Call after writing tokens or accounts: cached bearer-token lookups are dropped.
pub fn accounts_changed() {
    ACCOUNTS_GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn cached_token_user(hash: &str) -> Option<User> {
    let generation = ACCOUNTS_GENERATION.load(Ordering::SeqCst);
    let cache = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    let c = cache.as_ref().filter(|c| c.generation == generation)?;
    c.users.get(hash).filter(|(_, at)| at.elapsed() < TOKEN_TTL).map(|(u, _)| u.clone())
}

fn cache_token_user(hash: String, user: &User, generation: u64) {
    let mut cache = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    let c = cache.get_or_insert_with(|| TokenCache { generation, users: HashMap::new() });
    if c.generation != generation || c.users.len() >= TOKEN_CACHE_MAX {
        *c = TokenCache { generation, users: HashMap::new() };
    }
    c.users.insert(hash, (user.clone(), Instant::now()));
}

/// The active account a bearer token belongs to, if the token is live.
pub async fn token_user(db: &Db, secret: &str, now: Ts) -> Result<Option<User>> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let hash = secret_hash(secret);
    if let Some(user) = cached_token_user(&hash) {
        return Ok(Some(user));
    }
    // Read before the lookup: a change committed meanwhile makes this entry stale at once.
    let generation = ACCOUNTS_GENERATION.load(Ordering::SeqCst);
    let row: Option<TokenRow> = on_db!(db, p => sqlx::query_as(sql!(
        "SELECT t.last_used_at, ", USER_COLS_U, " FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active"
    )).bind(&hash).fetch_optional(p).await)?;
    let Some(row) = row else { return Ok(None) };
    // Last use is informational: a minute's precision is plenty. Written only when stale —
    // on SQLite even an UPDATE that changes nothing takes the write lock, and every API
    // request would queue behind the writers for it.
    if row.last_used_at.is_none_or(|t| t < now.add_secs(-60)) {
        let sql = "UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2 \
                   AND (last_used_at IS NULL OR last_used_at < $3)";
        on_db!(db, p => sqlx::query(sql).bind(now).bind(&hash).bind(now.add_secs(-60)).execute(p).await.map(|r| r.rows_affected()))?;
    }
    cache_token_user(hash, &row.user, generation);
    Ok(Some(row.user))
}

// ---- rate limits -------------------------------------------------------------------------

/// Counts an event for `key` and says whether it stays within `max` per `window_secs`.
/// Refused events are not counted, so a blocked sender is free again after the window.
pub async fn rate_allow(db: &Db, scope: &str, key: &str, now: Ts, max: i64, window_secs: i64) -> Result<bool> {
    let sql = "SELECT COUNT(*) FROM rate_events WHERE scope = $1 AND key = $2 AND at > $3";
    let n: i64 = on_db!(db, p => sqlx::query_scalar(sql).bind(scope).bind(key).bind(now.add_secs(-window_secs)).fetch_one(p).await)?;
    if n >= max {
        return Ok(false);
    }
    on_db!(db, p => sqlx::query("INSERT INTO rate_events (scope, key, at) VALUES ($1, $2, $3)")
        .bind(scope).bind(key).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(true)
}

pub async fn sweep_rate_events(db: &Db, before: Ts) -> Result<u64> {
    Ok(
        on_db!(db, p => sqlx::query("DELETE FROM rate_events WHERE at < $1").bind(before).execute(p).await.map(|r| r.rows_affected()))?,
    )
}
