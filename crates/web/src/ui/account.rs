//! Home, login/logout, language, and the account page (password, API tokens).

use super::{Ctx, Errors, UiForm, done, form_fields, internal, local_time, unprocessable};
use crate::AppState;
use crate::auth::{LoginError, SESSION_COOKIE, clear_session_cookie, client_ip, cookie, lang_cookie, session_cookie};
use crate::i18n::Lang;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use domain::FieldErrors;
use domain::org::check_password;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    ctx: Ctx,
    company: Option<CompanySummary>,
    departments: usize,
    teams: usize,
    users: usize,
    playbook_version: Option<i64>,
    playbook_at: String,
    upcoming: Vec<(String, String, String)>,
}

struct CompanySummary {
    name: String,
    industry: String,
    business_type: String,
    stage: String,
    size: String,
    time_zone: String,
}

pub async fn home(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.user() {
        return r;
    }
    let result: Result<HomePage, store::Error> = async {
        let company = store::company::get(&s.db).await?;
        let tz = super::company_tz(&s).await;
        let today = s.now().get().to_zoned(tz.clone()).date().to_string();
        let upcoming = store::calendar::list(&s.db, None)
            .await?
            .into_iter()
            .filter(|d| d.day >= today)
            .take(6)
            .map(|d| {
                let kind = ctx.i18n.code_label("daykind", &d.kind);
                (d.day, kind, d.name)
            })
            .collect();
        let active = store::playbook::active(&s.db).await?;
        Ok(HomePage {
            company: company.map(|c| CompanySummary {
                name: c.name,
                industry: c.industry.unwrap_or_default(),
                business_type: ctx.i18n.code_label("btype", c.business_type.code()),
                stage: ctx.i18n.code_label("stage", c.stage.code()),
                size: ctx.i18n.code_label("size", c.size.code()),
                time_zone: c.time_zone,
            }),
            departments: store::org::list_departments(&s.db).await?.len(),
            teams: store::org::list_teams(&s.db).await?.len(),
            users: store::org::list_users(&s.db).await?.len(),
            playbook_version: active.as_ref().map(|v| v.version),
            playbook_at: active.map(|v| local_time(v.created_at, &tz)).unwrap_or_default(),
            upcoming,
            ctx: ctx.clone(),
        })
    }
    .await;
    match result {
        Ok(p) => p.into_response(),
        Err(e) => internal(&ctx, e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    ctx: Ctx,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only local paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

pub async fn login_page(ctx: Ctx, Query(q): Query<NextQuery>) -> Response {
    if ctx.user.is_some() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    LoginPage { ctx, email: String::new(), next: safe_next(q.next.as_deref()), error: None }.into_response()
}

pub async fn login_submit(
    State(s): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    form: UiForm,
) -> Response {
    let f = form_fields(form.0);
    let email = f.0.get("email").and_then(|v| v.as_str()).unwrap_or("").trim().to_string();
    let password = f.0.get("password").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let next = safe_next(f.0.get("next").and_then(|v| v.as_str()));
    let ip = client_ip(&ext);
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let previous = cookie(&headers, SESSION_COOKIE);
    match crate::auth::login(&s, &email, &password, &ip, ua, previous.as_deref()).await {
        Ok((user, session)) => {
            let mut resp = Redirect::to(&next).into_response();
            let cookie = session_cookie(&s, &session.secret, s.settings.session.absolute_secs);
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            // The account's saved language wins from now on; adopt the page's if none is saved.
            if user.locale.is_none() {
                let actor = store::Actor {
                    user_id: Some(user.id),
                    label: format!("{} <{}>", user.display_name, user.email),
                    via: store::Via::Ui,
                    now: s.now(),
                };
                let _ = store::org::set_locale(&s.db, &actor, user.id, ctx.lang()).await;
            }
            resp
        }
        Err(LoginError::Invalid) => {
            let page = LoginPage { error: Some(ctx.t("login-invalid")), ctx, email, next };
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
        Err(LoginError::Throttled(secs)) => {
            let minutes = ((secs + 59) / 60).to_string();
            let page = LoginPage {
                error: Some(ctx.i18n.t_args("login-throttled", &[("minutes", &minutes)])),
                ctx,
                email,
                next,
            };
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
            if let Ok(v) = secs.to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(LoginError::Internal(e)) => internal(&ctx, e),
    }
}

pub async fn logout(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Some(u) = &ctx.user
        && let Some(secret) = &u.session
        && let Err(e) = store::auth::delete_session(&s.db, &u.actor(s.now()), secret).await
    {
        return internal(&ctx, e);
    }
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = clear_session_cookie(&s).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Switches the interface language; it sticks (cookie, and the account if logged in).
pub async fn set_lang(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let f = form_fields(form.0);
    let Some(lang) = f.0.get("lang").and_then(|v| v.as_str()).and_then(Lang::parse) else {
        return ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "error-bad-language");
    };
    if let Some(u) = &ctx.user
        && let Err(e) = store::org::set_locale(&s.db, &u.actor(s.now()), u.user.id, lang.code()).await
    {
        return internal(&ctx, e);
    }
    let back = safe_next(f.0.get("next").and_then(|v| v.as_str()));
    let mut resp = Redirect::to(&back).into_response();
    if let Ok(v) = lang_cookie(&s, lang.code()).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    ctx: Ctx,
    email: String,
    role: String,
    tokens: Vec<TokenRow>,
    new_secret: Option<String>,
    token_name: String,
    errors: Errors,
}

struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    created: String,
    last_used: String,
    revoked: String,
}

async fn account_view(
    s: &AppState,
    ctx: &Ctx,
    new_secret: Option<String>,
    token_name: String,
    errors: Errors,
) -> Result<AccountPage, store::Error> {
    let u = ctx.user.as_ref().ok_or(store::Error::NotFound)?;
    let tz = super::company_tz(s).await;
    let tokens = store::auth::list_tokens(&s.db, u.user.id)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created: local_time(t.created_at, &tz),
            last_used: t.last_used_at.map(|x| local_time(x, &tz)).unwrap_or_default(),
            revoked: t.revoked_at.map(|x| local_time(x, &tz)).unwrap_or_default(),
        })
        .collect();
    Ok(AccountPage {
        email: u.user.email.clone(),
        role: ctx.role_label(),
        tokens,
        new_secret,
        token_name,
        errors,
        ctx: ctx.clone(),
    })
}

pub async fn account_page(State(s): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.user() {
        return r;
    }
    match account_view(&s, &ctx, None, String::new(), Errors::default()).await {
        Ok(p) => p.into_response(),
        Err(e) => internal(&ctx, e),
    }
}

pub async fn change_password(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = match ctx.user() {
        Ok(u) => u.clone(),
        Err(r) => return r,
    };
    let f = form_fields(form.0);
    let current = f.0.get("current").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let new = f.0.get("password").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let confirm = f.0.get("confirm").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let mut e = FieldErrors::new();
    let hash = match store::org::find_login(&s.db, &u.user.email).await {
        Ok(Some((_, h))) => h,
        Ok(None) => return ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(err) => return internal(&ctx, err),
    };
    if !crate::password::verify(current, hash).await {
        e.add("current", ctx.t("account-current-wrong"));
    }
    if let Err(msg) = check_password(&new) {
        e.add("password", msg);
    } else if new != confirm {
        e.add("confirm", ctx.t("account-confirm-mismatch"));
    }
    if !e.is_empty() {
        return match account_view(&s, &ctx, None, String::new(), ctx.errors(&e)).await {
            Ok(p) => unprocessable(p),
            Err(err) => internal(&ctx, err),
        };
    }
    let hash = crate::password::hash(new, s.settings.password).await;
    if let Err(err) = store::org::set_password(&s.db, &u.actor(s.now()), u.user.id, &hash).await {
        return internal(&ctx, err);
    }
    // Every session of the account ended, this one too: log in again with the new password.
    Redirect::to("/login").into_response()
}

pub async fn create_token(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = match ctx.user() {
        Ok(u) => u.clone(),
        Err(r) => return r,
    };
    let f = form_fields(form.0);
    let mut e = FieldErrors::new();
    let name = f.required(&mut e, "name", 80);
    if !e.is_empty() {
        return match account_view(&s, &ctx, None, name, ctx.errors(&e)).await {
            Ok(p) => unprocessable(p),
            Err(err) => internal(&ctx, err),
        };
    }
    match store::auth::create_token(&s.db, &u.actor(s.now()), u.user.id, &name).await {
        // Shown once, on this response only: not a redirect, so the secret never lands in a URL.
        Ok((_, secret)) => match account_view(&s, &ctx, Some(secret), String::new(), Errors::default()).await {
            Ok(p) => (StatusCode::CREATED, p).into_response(),
            Err(err) => internal(&ctx, err),
        },
        Err(err) => internal(&ctx, err),
    }
}

pub async fn revoke_token(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>) -> Response {
    let u = match ctx.user() {
        Ok(u) => u.clone(),
        Err(r) => return r,
    };
    match store::auth::revoke_token(&s.db, &u.actor(s.now()), u.user.id, id).await {
        Ok(()) => done("/account", "token-revoked"),
        Err(e) => internal(&ctx, e),
    }
}
