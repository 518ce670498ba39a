//! Who is asking: session cookies for people, bearer tokens for machine clients.

use crate::error::ApiError;
use crate::{AppState, password};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use domain::role::{Action, Role};
use std::net::SocketAddr;
use std::sync::OnceLock;
use store::auth::{NewSession, Scope};
use store::org::User;
use store::{Actor, Ts, Via};

pub const SESSION_COOKIE: &str = "mko_session";
pub const LANG_COOKIE: &str = "mko_lang";

#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub via: Via,
    /// The session secret, when authenticated by cookie (needed to log out).
    pub session: Option<String>,
}

impl CurrentUser {
    pub fn role(&self) -> Role {
        self.user.role()
    }

    pub fn can(&self, action: Action) -> bool {
        self.user.active && self.role().can(action)
    }

    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.can(action) { Ok(()) } else { Err(ApiError::Forbidden) }
    }

    pub fn actor(&self, now: Ts) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            label: format!("{} <{}>", self.user.display_name, self.user.email),
            via: self.via,
            now,
        }
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim().to_string())
        })
    })
}

pub fn session_cookie(state: &AppState, secret: &str, max_age_secs: i64) -> String {
    let secure = if state.settings.secure_cookies { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

pub fn clear_session_cookie(state: &AppState) -> String {
    session_cookie(state, "", 0)
}

pub fn lang_cookie(state: &AppState, code: &str) -> String {
    let secure = if state.settings.secure_cookies { "; Secure" } else { "" };
    format!("{LANG_COOKIE}={code}; Path=/; SameSite=Lax; Max-Age=31536000{secure}")
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The account behind the session cookie, if the session is live.
pub async fn from_session(state: &AppState, headers: &HeaderMap) -> Result<Option<CurrentUser>, store::Error> {
    let Some(secret) = cookie(headers, SESSION_COOKIE).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let user = store::auth::session_user(&state.db, &secret, state.now(), &state.settings.session).await?;
    Ok(user.map(|user| CurrentUser { user, via: Via::Ui, session: Some(secret) }))
}

/// An authenticated API caller: a bearer token, or a browser session.
pub struct ApiUser(pub CurrentUser);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(&parts.headers) {
            let user = store::auth::token_user(&state.db, token, state.now()).await?;
            return match user {
                Some(user) => Ok(ApiUser(CurrentUser { user, via: Via::Api, session: None })),
                None => Err(ApiError::Unauthorized),
            };
        }
        match from_session(state, &parts.headers).await? {
            Some(mut u) => {
                u.via = Via::Api;
                Ok(ApiUser(u))
            }
            None => Err(ApiError::Unauthorized),
        }
    }
}

/// The client's address as seen by this server (no proxy headers are trusted).
pub fn client_ip(parts_ext: &axum::http::Extensions) -> String {
    parts_ext.get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

#[derive(Debug)]
pub enum LoginError {
    /// Wrong e-mail or password (which one is not revealed).
    Invalid,
    /// Too many failures for this account or address; seconds until the next try.
    Throttled(i64),
    Internal(store::Error),
}

impl From<store::Error> for LoginError {
    fn from(e: store::Error) -> Self {
        LoginError::Internal(e)
    }
}

fn dummy_hash(p: password::Params) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash_blocking("not a real password", p))
}

/// Checks a password login, applying the per-account and per-address throttle, and starts a
/// session. `previous` is the session secret the browser already had, which is replaced.
pub async fn login(
    state: &AppState,
    email: &str,
    password_text: &str,
    ip: &str,
    user_agent: Option<&str>,
    previous: Option<&str>,
) -> Result<(User, NewSession), LoginError> {
    let now = state.now();
    let email = email.trim().to_lowercase();
    let policy = &state.settings.throttle;
    for (scope, key) in [(Scope::Account, email.as_str()), (Scope::Address, ip)] {
        if key.is_empty() {
            continue;
        }
        if let Some(until) = store::auth::locked_until(&state.db, scope, key, now, policy).await? {
            let secs = until.get().duration_since(now.get()).as_secs();
            return Err(LoginError::Throttled(secs.max(1)));
        }
    }
    let found = if email.is_empty() { None } else { store::org::find_login(&state.db, &email).await? };
    let ok = match &found {
        Some((user, hash)) => password::verify(password_text.to_string(), hash.clone()).await && user.active,
        None => {
            // Same work as a real check, so response time does not reveal which accounts exist.
            let _ = password::verify(password_text.to_string(), dummy_hash(state.settings.password).to_string()).await;
            false
        }
    };
    let Some((user, _)) = found.filter(|_| ok) else {
        if !email.is_empty() {
            store::auth::record_failure(&state.db, Scope::Account, &email, now).await?;
        }
        store::auth::record_failure(&state.db, Scope::Address, ip, now).await?;
        return Err(LoginError::Invalid);
    };
    store::auth::clear_failures(&state.db, Scope::Account, &email).await?;
    let actor =
        Actor { user_id: Some(user.id), label: format!("{} <{}>", user.display_name, user.email), via: Via::Ui, now };
    let session = store::auth::create_session(
        &state.db,
        &actor,
        user.id,
        previous,
        &state.settings.session,
        Some(ip),
        user_agent,
    )
    .await?;
    Ok((user, session))
}
