//! Cross-site request forgery protection by Fetch Metadata and Origin.
//!
//! An unsafe request (POST, PUT, PATCH, DELETE) is allowed when the browser says it is
//! same-origin (`Sec-Fetch-Site: same-origin`, or `none` for a user-typed navigation), or
//! when its `Origin` matches ours. Everything else is refused with 403 — including a request
//! with neither header, which a modern browser never sends for a cross-site form. Requests
//! with a bearer token carry no ambient credentials and are exempt. Together with
//! `SameSite=Lax` session cookies this needs no token plumbing through forms or htmx.

use crate::AppState;
use crate::auth::bearer;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether an unsafe request may proceed, given its headers.
pub fn allowed(state: &AppState, req: &Request) -> bool {
    let h = req.headers();
    if bearer(h).is_some() {
        return true;
    }
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match &state.settings.public_origin {
        Some(ours) => origin.eq_ignore_ascii_case(ours.trim_end_matches('/')),
        None => {
            let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        }
    }
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Public lead forms carry no session and may be posted from pages embedding them.
    if is_safe(req.method()) || allowed(&state, &req) || req.uri().path().starts_with("/f/") {
        return next.run(req).await;
    }
    let is_api = req.uri().path().starts_with("/api/");
    if is_api {
        let body =
            serde_json::json!({"error": {"code": "forbidden", "message": "cross-site request refused", "fields": {}}});
        (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
    } else {
        (StatusCode::FORBIDDEN, "403 Forbidden: cross-site request refused / 跨站请求已拒绝").into_response()
    }
}
