//! Departments, teams and accounts (O-2). Everyone may read; only admins change them.

use super::{ApiPath, JsonBody, ts};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::Fields;
use domain::org::{DepartmentInput, TeamInput, UserInput, check_password};
use domain::role::Action;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct DepartmentOut {
    pub id: i64,
    pub name: String,
    /// marketing | product | rnd | design | operations | sales | customer_success | finance | legal | strategy | executive
    pub kind: String,
    pub head_user_id: Option<i64>,
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<store::org::Department> for DepartmentOut {
    fn from(d: store::org::Department) -> Self {
        DepartmentOut {
            id: d.id,
            name: d.name,
            kind: d.kind,
            head_user_id: d.head_user_id,
            description: d.description,
            created_at: ts(d.created_at),
            updated_at: ts(d.updated_at),
        }
    }
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DepartmentIn {
    name: String,
    kind: String,
    head_user_id: Option<i64>,
    description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TeamOut {
    pub id: i64,
    pub department_id: i64,
    pub name: String,
    pub lead_user_id: Option<i64>,
    pub focus: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<store::org::Team> for TeamOut {
    fn from(t: store::org::Team) -> Self {
        TeamOut {
            id: t.id,
            department_id: t.department_id,
            name: t.name,
            lead_user_id: t.lead_user_id,
            focus: t.focus,
            created_at: ts(t.created_at),
            updated_at: ts(t.updated_at),
        }
    }
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TeamIn {
    name: String,
    department_id: i64,
    lead_user_id: Option<i64>,
    focus: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    /// admin | executive | marketing_director | marketer | sales_manager | sales_rep | product | finance | legal | viewer
    pub role: String,
    pub department_id: Option<i64>,
    pub team_id: Option<i64>,
    pub active: bool,
    pub locale: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<store::org::User> for UserOut {
    fn from(u: store::org::User) -> Self {
        UserOut {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            role: u.role,
            department_id: u.department_id,
            team_id: u.team_id,
            active: u.active,
            locale: u.locale,
            created_at: ts(u.created_at),
            updated_at: ts(u.updated_at),
        }
    }
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
pub struct PasswordIn {
    password: String,
}

// ---- departments -------------------------------------------------------------------------

#[utoipa::path(get, path = "/departments", tag = "org",
    responses((status = 200, body = Vec<DepartmentOut>), (status = 401, body = ErrorBody)))]
pub async fn list_departments(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<DepartmentOut>>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(
        store::org::list_departments(&s.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/departments", tag = "org", request_body = DepartmentIn,
    responses((status = 201, body = DepartmentOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_department(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<DepartmentOut>)> {
    u.require(Action::EditOrg)?;
    let input = DepartmentInput::parse(&f)?;
    let d = store::org::create_department(&s.db, &u.actor(s.now()), &input).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

#[utoipa::path(get, path = "/departments/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = DepartmentOut), (status = 404, body = ErrorBody)))]
pub async fn get_department(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DepartmentOut>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(
        store::org::get_department(&s.db, id)
            .await?
            .ok_or(ApiError::NotFound)?
            .into(),
    ))
}

#[utoipa::path(put, path = "/departments/{id}", tag = "org", params(("id" = i64, Path)), request_body = DepartmentIn,
    responses((status = 200, body = DepartmentOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_department(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<DepartmentOut>> {
    u.require(Action::EditOrg)?;
    let input = DepartmentInput::parse(&f)?;
    Ok(Json(
        store::org::update_department(&s.db, &u.actor(s.now()), id, &input)
            .await?
            .into(),
    ))
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

#[utoipa::path(get, path = "/teams", tag = "org", responses((status = 200, body = Vec<TeamOut>), (status = 401, body = ErrorBody)))]
pub async fn list_teams(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<TeamOut>>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(
        store::org::list_teams(&s.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/teams", tag = "org", request_body = TeamIn,
    responses((status = 201, body = TeamOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_team(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<TeamOut>)> {
    u.require(Action::EditOrg)?;
    let input = TeamInput::parse(&f)?;
    let t = store::org::create_team(&s.db, &u.actor(s.now()), &input).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

#[utoipa::path(get, path = "/teams/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = TeamOut), (status = 404, body = ErrorBody)))]
pub async fn get_team(State(s): State<AppState>, ApiUser(u): ApiUser, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<TeamOut>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(
        store::org::get_team(&s.db, id).await?.ok_or(ApiError::NotFound)?.into(),
    ))
}

#[utoipa::path(put, path = "/teams/{id}", tag = "org", params(("id" = i64, Path)), request_body = TeamIn,
    responses((status = 200, body = TeamOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_team(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<TeamOut>> {
    u.require(Action::EditOrg)?;
    let input = TeamInput::parse(&f)?;
    Ok(Json(
        store::org::update_team(&s.db, &u.actor(s.now()), id, &input)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/teams/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_team(State(s): State<AppState>, ApiUser(u): ApiUser, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    u.require(Action::EditOrg)?;
    store::org::delete_team(&s.db, &u.actor(s.now()), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- users -------------------------------------------------------------------------------

#[utoipa::path(get, path = "/users", tag = "org", responses((status = 200, body = Vec<UserOut>), (status = 401, body = ErrorBody)))]
pub async fn list_users(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<UserOut>>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(
        store::org::list_users(&s.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/users", tag = "org", request_body = UserIn,
    responses((status = 201, body = UserOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    u.require(Action::ManageUsers)?;
    let input = UserInput::parse(&f, true)?;
    let hash = crate::password::hash(input.password.clone().unwrap_or_default(), s.settings.password).await;
    let created = store::org::create_user(&s.db, &u.actor(s.now()), &input, &hash).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/users/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = UserOut), (status = 404, body = ErrorBody)))]
pub async fn get_user(State(s): State<AppState>, ApiUser(u): ApiUser, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<UserOut>> {
    u.require(Action::ViewOrg)?;
    Ok(Json(
        store::org::get_user(&s.db, id).await?.ok_or(ApiError::NotFound)?.into(),
    ))
}

#[utoipa::path(put, path = "/users/{id}", tag = "org", params(("id" = i64, Path)), request_body = UserIn,
    responses((status = 200, body = UserOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<UserOut>> {
    u.require(Action::ManageUsers)?;
    let input = UserInput::parse(&f, false)?;
    let hash = match &input.password {
        Some(p) => Some(crate::password::hash(p.clone(), s.settings.password).await),
        None => None,
    };
    Ok(Json(
        store::org::update_user(&s.db, &u.actor(s.now()), id, &input, hash.as_deref())
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/users/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_user(State(s): State<AppState>, ApiUser(u): ApiUser, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
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
