//! Departments, teams and accounts (O-2). Everyone may read; only admins change them.

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::Fields;
use domain::org::{DepartmentInput, TeamInput, UserInput, check_password};
use domain::role::Action;
use store::org::{Department, Team, User};
use utoipa::ToSchema;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DepartmentIn {
    name: String,
    kind: String,
    head_user_id: Option<i64>,
    description: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TeamIn {
    name: String,
    department_id: i64,
    lead_user_id: Option<i64>,
    focus: Option<String>,
}

/// `password` is required when creating an account and optional (a reset) when updating.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UserIn {
    email: String,
    display_name: String,
    role: String,
    department_id: Option<i64>,
    team_id: Option<i64>,
    active: Option<bool>,
    password: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AvailabilityIn {
    available: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PasswordIn {
    password: String,
}

// ---- departments -------------------------------------------------------------------------

#[utoipa::path(get, path = "/departments", tag = "org",
    responses((status = 200, body = Vec<Department>), (status = 401, body = ErrorBody)))]
pub async fn list_departments(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Department>>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(store::org::list_departments(&s.db).await?))
}

#[utoipa::path(post, path = "/departments", tag = "org", request_body = DepartmentIn,
    responses((status = 201, body = Department), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_department(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Department>)> {
    u.require(Action::EditOrg)?;
    let input = DepartmentInput::parse(&f)?;
    let d = store::org::create_department(&s.db, &u.actor(s.now()), &input).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[utoipa::path(get, path = "/departments/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = Department), (status = 404, body = ErrorBody)))]
pub async fn get_department(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Department>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(store::org::get_department(&s.db, id).await?.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(put, path = "/departments/{id}", tag = "org", params(("id" = i64, Path)), request_body = DepartmentIn,
    responses((status = 200, body = Department), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_department(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Department>> {
    u.require(Action::EditOrg)?;
    let input = DepartmentInput::parse(&f)?;
    Ok(Json(store::org::update_department(&s.db, &u.actor(s.now()), id, &input).await?))
}

/// Refused with 409 while the department still has teams.
#[utoipa::path(delete, path = "/departments/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_department(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    u.require(Action::EditOrg)?;
    store::org::delete_department(&s.db, &u.actor(s.now()), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- teams -------------------------------------------------------------------------------

#[utoipa::path(get, path = "/teams", tag = "org", responses((status = 200, body = Vec<Team>), (status = 401, body = ErrorBody)))]
pub async fn list_teams(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Team>>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(store::org::list_teams(&s.db).await?))
}

#[utoipa::path(post, path = "/teams", tag = "org", request_body = TeamIn,
    responses((status = 201, body = Team), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_team(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Team>)> {
    u.require(Action::EditOrg)?;
    let input = TeamInput::parse(&f)?;
    let t = store::org::create_team(&s.db, &u.actor(s.now()), &input).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[utoipa::path(get, path = "/teams/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = Team), (status = 404, body = ErrorBody)))]
pub async fn get_team(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Team>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(store::org::get_team(&s.db, id).await?.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(put, path = "/teams/{id}", tag = "org", params(("id" = i64, Path)), request_body = TeamIn,
    responses((status = 200, body = Team), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_team(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Team>> {
    u.require(Action::EditOrg)?;
    let input = TeamInput::parse(&f)?;
    Ok(Json(store::org::update_team(&s.db, &u.actor(s.now()), id, &input).await?))
}

#[utoipa::path(delete, path = "/teams/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_team(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    u.require(Action::EditOrg)?;
    store::org::delete_team(&s.db, &u.actor(s.now()), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- users -------------------------------------------------------------------------------

#[utoipa::path(get, path = "/users", tag = "org", responses((status = 200, body = Vec<User>), (status = 401, body = ErrorBody)))]
pub async fn list_users(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<User>>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(store::org::list_users(&s.db).await?))
}

#[utoipa::path(post, path = "/users", tag = "org", request_body = UserIn,
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<User>)> {
    u.require(Action::ManageUsers)?;
    let input = UserInput::parse(&f, true)?;
    let hash = crate::password::hash(input.password.clone().unwrap_or_default(), s.settings.password).await;
    let created = store::org::create_user(&s.db, &u.actor(s.now()), &input, &hash).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/users/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<User>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(store::org::get_user(&s.db, id).await?.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(put, path = "/users/{id}", tag = "org", params(("id" = i64, Path)), request_body = UserIn,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<User>> {
    u.require(Action::ManageUsers)?;
    let input = UserInput::parse(&f, false)?;
    let hash = match &input.password {
        Some(p) => Some(crate::password::hash(p.clone(), s.settings.password).await),
        None => None,
    };
    Ok(Json(store::org::update_user(&s.db, &u.actor(s.now()), id, &input, hash.as_deref()).await?))
}

#[utoipa::path(delete, path = "/users/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_user(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    u.require(Action::ManageUsers)?;
    if id == u.user.id {
        return Err(ApiError::field("id", "you cannot delete your own account"));
    }
    store::org::delete_user(&s.db, &u.actor(s.now()), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a new password. Admins may set anyone's; everyone may set their own. All of the
/// account's sessions end.
#[utoipa::path(put, path = "/users/{id}/password", tag = "org", params(("id" = i64, Path)), request_body = PasswordIn,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_user_password(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<StatusCode> {
    if id != u.user.id {
        u.require(Action::ManageUsers)?;
    }
    let password = password_field(&f)?;
    let hash = crate::password::hash(password, s.settings.password).await;
    store::org::set_password(&s.db, &u.actor(s.now()), id, &hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// L-4: marks a sales rep available or away; routing skips reps who are away. The rep
/// themself, their team's sales manager or an admin.
#[utoipa::path(put, path = "/users/{id}/availability", tag = "org", params(("id" = i64, Path)), request_body = AvailabilityIn,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_user_availability(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<User>> {
    let mut e = domain::FieldErrors::new();
    f.reject_unknown(&mut e, &["available"]);
    let available = match f.0.get("available") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => {
            e.add("available", "must be true or false");
            false
        }
        None => {
            e.add("available", "is required");
            false
        }
    };
    let available = e.into_result(available).map_err(ApiError::Invalid)?;
    let target = store::org::get_user(&s.db, id).await?.ok_or(ApiError::NotFound)?;
    if let Err(why) = domain::role::may_set_availability(u.user.member(), target.member()) {
        return Err(if target.role() == domain::role::Role::SalesRep {
            ApiError::Forbidden
        } else {
            ApiError::field("id", why)
        });
    }
    Ok(Json(store::org::set_available(&s.db, &u.actor(s.now()), id, available).await?))
}

fn password_field(f: &Fields) -> Result<String, ApiError> {
    let mut e = domain::FieldErrors::new();
    f.reject_unknown(&mut e, &["password"]);
    let p = match f.0.get("password") {
        Some(serde_json::Value::String(p)) => p.clone(),
        Some(_) => {
            e.add("password", "must be a string");
            String::new()
        }
        None => {
            e.add("password", "is required");
            String::new()
        }
    };
    if e.is_empty()
        && let Err(msg) = check_password(&p)
    {
        e.add("password", msg);
    }
    e.into_result(p).map_err(ApiError::Invalid)
}
