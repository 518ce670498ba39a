//! Departments, teams and accounts (O-2).

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::org::{DepartmentInput, TeamInput, UserInput};
use domain::role::Role;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Department {
    pub id: i64,
    pub name: String,
    /// marketing | product | rnd | design | operations | sales | customer_success | finance | legal | strategy | executive
    pub kind: String,
    pub head_user_id: Option<i64>,
    pub description: Option<String>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Team {
    pub id: i64,
    pub department_id: i64,
    pub name: String,
    pub lead_user_id: Option<i64>,
    pub focus: Option<String>,
    /// Comma-separated provinces and cities the team covers (L-4).
    pub territories: String,
    /// The marketing interface person of a sales team (L-4).
    pub interface_user_id: Option<i64>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    /// admin | executive | marketing_director | marketer | sales_manager | sales_rep | product | finance | legal | viewer
    pub role: String,
    pub department_id: Option<i64>,
    pub team_id: Option<i64>,
    pub active: bool,
    /// L-4: a sales rep who is away takes no routed leads.
    pub available: bool,
    pub locale: Option<String>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

impl User {
    pub fn role(&self) -> Role {
        // Roles are validated on write; an unknown stored value gets the least privilege.
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }

    /// The account as permission rules see it.
    pub fn member(&self) -> domain::role::Member {
        domain::role::Member { role: self.role(), id: self.id, team_id: self.team_id }
    }

    fn audit_json(&self) -> serde_json::Value {
        json!({
            "email": self.email, "display_name": self.display_name, "role": self.role,
            "department_id": self.department_id, "team_id": self.team_id, "active": self.active,
            "locale": self.locale, "available": self.available,
        })
    }
}

impl Department {
    fn audit_json(&self) -> serde_json::Value {
        json!({"name": self.name, "kind": self.kind, "head_user_id": self.head_user_id, "description": self.description})
    }
}

impl Team {
    fn audit_json(&self) -> serde_json::Value {
        json!({"name": self.name, "department_id": self.department_id, "lead_user_id": self.lead_user_id, "focus": self.focus,
               "territories": self.territories, "interface_user_id": self.interface_user_id})
    }
}

const USER_COLS: &str =
    "id, email, display_name, role, department_id, team_id, active, available, locale, created_at, updated_at";
const DEPT_COLS: &str = "id, name, kind, head_user_id, description, created_at, updated_at";
const TEAM_COLS: &str =
    "id, department_id, name, lead_user_id, focus, territories, interface_user_id, created_at, updated_at";

macro_rules! sql {
    ($($part:expr),+ $(,)?) => { sqlx::AssertSqlSafe([$($part),+].concat()) };
}

// ---- reads -------------------------------------------------------------------------------

pub async fn list_users(db: &Db) -> Result<Vec<User>> {
    Ok(
        on_db!(db, p => sqlx::query_as::<_, User>(sql!("SELECT ", USER_COLS, " FROM users ORDER BY id")).fetch_all(p).await)?,
    )
}

pub async fn get_user(db: &Db, id: i64) -> Result<Option<User>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, User>(sql!("SELECT ", USER_COLS, " FROM users WHERE id = $1"))
        .bind(id).fetch_optional(p).await)?)
}

/// The account and its password hash, for logging in.
pub async fn find_login(db: &Db, email: &str) -> Result<Option<(User, String)>> {
    let user: Option<User> = on_db!(db, p => sqlx::query_as(sql!("SELECT ", USER_COLS, " FROM users WHERE email = $1"))
        .bind(email).fetch_optional(p).await)?;
    let Some(user) = user else { return Ok(None) };
    let hash: String = on_db!(db, p => sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user.id).fetch_one(p).await)?;
    Ok(Some((user, hash)))
}

pub async fn find_user_by_email(db: &Db, email: &str) -> Result<Option<User>> {
    Ok(find_login(db, email).await?.map(|(u, _)| u))
}

pub async fn list_departments(db: &Db) -> Result<Vec<Department>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Department>(sql!("SELECT ", DEPT_COLS, " FROM departments ORDER BY id"))
        .fetch_all(p).await)?)
}

pub async fn get_department(db: &Db, id: i64) -> Result<Option<Department>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Department>(sql!("SELECT ", DEPT_COLS, " FROM departments WHERE id = $1"))
        .bind(id).fetch_optional(p).await)?)
}

pub async fn list_teams(db: &Db) -> Result<Vec<Team>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Team>(sql!("SELECT ", TEAM_COLS, " FROM teams ORDER BY department_id, id"))
        .fetch_all(p).await)?)
}

pub async fn get_team(db: &Db, id: i64) -> Result<Option<Team>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Team>(sql!("SELECT ", TEAM_COLS, " FROM teams WHERE id = $1"))
        .bind(id).fetch_optional(p).await)?)
}

pub async fn count_users(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await)?)
}

// ---- helpers inside a transaction --------------------------------------------------------

async fn user_tx(tx: &mut Tx, id: i64) -> Result<Option<User>> {
    Ok(on_tx!(tx, c => sqlx::query_as::<_, User>(sql!("SELECT ", USER_COLS, " FROM users WHERE id = $1"))
        .bind(id).fetch_optional(c).await)?)
}

async fn dept_tx(tx: &mut Tx, id: i64) -> Result<Option<Department>> {
    Ok(on_tx!(tx, c => sqlx::query_as::<_, Department>(sql!("SELECT ", DEPT_COLS, " FROM departments WHERE id = $1"))
        .bind(id).fetch_optional(c).await)?)
}

async fn team_tx(tx: &mut Tx, id: i64) -> Result<Option<Team>> {
    Ok(on_tx!(tx, c => sqlx::query_as::<_, Team>(sql!("SELECT ", TEAM_COLS, " FROM teams WHERE id = $1"))
        .bind(id).fetch_optional(c).await)?)
}

/// References are checked before writing so the error names the field, instead of the
/// database's foreign-key message.
pub(crate) async fn check_user_ref(tx: &mut Tx, field: &str, id: Option<i64>) -> Result<()> {
    if let Some(id) = id
        && user_tx(tx, id).await?.is_none()
    {
        return Err(Error::field(field, format!("no user with id {id}")));
    }
    Ok(())
}

async fn check_placement(tx: &mut Tx, department_id: Option<i64>, team_id: Option<i64>) -> Result<()> {
    if let Some(d) = department_id
        && dept_tx(tx, d).await?.is_none()
    {
        return Err(Error::field("department_id", format!("no department with id {d}")));
    }
    if let Some(t) = team_id {
        match team_tx(tx, t).await? {
            None => return Err(Error::field("team_id", format!("no team with id {t}"))),
            Some(team) if department_id.is_some_and(|d| d != team.department_id) => {
                return Err(Error::field("team_id", "the team belongs to another department"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn unique_to_field(e: Error, field: &str, message: &str) -> Error {
    if e.is_unique_violation() { Error::field(field, message) } else { e }
}

async fn active_admins(tx: &mut Tx) -> Result<i64> {
    Ok(on_tx!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND active")
        .fetch_one(c).await)?)
}

// ---- users -------------------------------------------------------------------------------

pub async fn create_user(db: &Db, actor: &Actor, input: &UserInput, password_hash: &str) -> Result<User> {
    let mut tx = db.begin().await?;
    check_placement(&mut tx, input.department_id, input.team_id).await?;
    let sql = "INSERT INTO users (email, display_name, role, department_id, team_id, active, password_hash, created_at, \
               updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id";
    let id: i64 = on_tx!(&mut tx, c => sqlx::query_scalar(sql)
        .bind(input.email.as_str())
        .bind(&input.display_name)
        .bind(input.role.code())
        .bind(input.department_id)
        .bind(input.team_id)
        .bind(input.active)
        .bind(password_hash)
        .bind(actor.now)
        .fetch_one(c)
        .await)
    .map_err(Error::from)
    .map_err(|e| unique_to_field(e, "email", "is already used by another account"))?;
    let user = user_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::created("user", id, user.audit_json())).await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn update_user(
    db: &Db,
    actor: &Actor,
    id: i64,
    input: &UserInput,
    password_hash: Option<&str>,
) -> Result<User> {
    let mut tx = db.begin().await?;
    let before = user_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    check_placement(&mut tx, input.department_id, input.team_id).await?;
    let sql = "UPDATE users SET email = $1, display_name = $2, role = $3, department_id = $4, team_id = $5, \
               active = $6, password_hash = COALESCE($7, password_hash), updated_at = $8 WHERE id = $9";
    on_tx!(&mut tx, c => sqlx::query(sql)
        .bind(input.email.as_str())
        .bind(&input.display_name)
        .bind(input.role.code())
        .bind(input.department_id)
        .bind(input.team_id)
        .bind(input.active)
        .bind(password_hash)
        .bind(actor.now)
        .bind(id)
        .execute(c)
        .await.map(|r| r.rows_affected()))
    .map_err(Error::from)
    .map_err(|e| unique_to_field(e, "email", "is already used by another account"))?;
    if before.role() == Role::Admin && before.active && active_admins(&mut tx).await? == 0 {
        return Err(Error::field("role", "the last active admin cannot lose admin rights"));
    }
    if !input.active {
        // A deactivated account is logged out everywhere at once.
        on_tx!(&mut tx, c => sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    }
    let after = user_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    let mut after_json = after.audit_json();
    if password_hash.is_some() {
        after_json["password"] = json!("changed");
    }
    audit::record(&mut tx, actor, Change::updated("user", id, before.audit_json(), after_json)).await?;
    tx.commit().await?;
    crate::auth::accounts_changed();
    Ok(after)
}

/// Sets a new password and ends the account's other sessions.
pub async fn set_password(db: &Db, actor: &Actor, id: i64, password_hash: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = user_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    on_tx!(&mut tx, c => sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        actor,
        Change::updated("user", id, before.audit_json(), {
            let mut a = before.audit_json();
            a["password"] = json!("changed");
            a
        }),
    )
    .await?;
    tx.commit().await?;
    crate::auth::accounts_changed();
    Ok(())
}

/// Sets one column of an account, audited; writes nothing when `same` says the account
/// already has the value.
async fn set_user_column<T>(
    db: &Db,
    actor: &Actor,
    id: i64,
    column: &'static str,
    value: T,
    same: impl Fn(&User) -> bool,
) -> Result<User>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    T: Clone + Send + 'static,
{
    let mut tx = db.begin().await?;
    let before = user_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    if same(&before) {
        return Ok(before);
    }
    let sql = format!("UPDATE users SET {column} = $1, updated_at = $2 WHERE id = $3");
    on_tx!(&mut tx, c => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(value.clone()).bind(actor.now).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    let after = user_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::updated("user", id, before.audit_json(), after.audit_json())).await?;
    tx.commit().await?;
    crate::auth::accounts_changed();
    Ok(after)
}

/// L-4: marks a sales rep available (or not) for routed leads.
pub async fn set_available(db: &Db, actor: &Actor, id: i64, available: bool) -> Result<User> {
    set_user_column(db, actor, id, "available", available, |u| u.available == available).await
}

/// Remembers the account's interface language.
pub async fn set_locale(db: &Db, actor: &Actor, id: i64, locale: &str) -> Result<()> {
    set_user_column(db, actor, id, "locale", locale.to_string(), |u| u.locale.as_deref() == Some(locale))
        .await
        .map(|_| ())
}

pub async fn delete_user(db: &Db, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = user_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    if before.role() == Role::Admin && before.active && active_admins(&mut tx).await? == 0 {
        return Err(Error::field("id", "the last active admin cannot be deleted"));
    }
    audit::record(&mut tx, actor, Change::deleted("user", id, before.audit_json())).await?;
    tx.commit().await?;
    crate::auth::accounts_changed();
    Ok(())
}

// ---- departments -------------------------------------------------------------------------

pub async fn create_department(db: &Db, actor: &Actor, d: &DepartmentInput) -> Result<Department> {
    let mut tx = db.begin().await?;
    check_user_ref(&mut tx, "head_user_id", d.head_user_id).await?;
    let sql = "INSERT INTO departments (name, kind, head_user_id, description, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";
    let id: i64 = on_tx!(&mut tx, c => sqlx::query_scalar(sql)
        .bind(&d.name).bind(d.kind.code()).bind(d.head_user_id).bind(&d.description).bind(actor.now)
        .fetch_one(c).await)
    .map_err(Error::from)
    .map_err(|e| unique_to_field(e, "name", "another department has this name"))?;
    let dept = dept_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::created("department", id, dept.audit_json())).await?;
    tx.commit().await?;
    Ok(dept)
}

pub async fn update_department(db: &Db, actor: &Actor, id: i64, d: &DepartmentInput) -> Result<Department> {
    let mut tx = db.begin().await?;
    let before = dept_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    check_user_ref(&mut tx, "head_user_id", d.head_user_id).await?;
    let sql = "UPDATE departments SET name = $1, kind = $2, head_user_id = $3, description = $4, updated_at = $5 \
               WHERE id = $6";
    on_tx!(&mut tx, c => sqlx::query(sql)
        .bind(&d.name).bind(d.kind.code()).bind(d.head_user_id).bind(&d.description).bind(actor.now).bind(id)
        .execute(c).await.map(|r| r.rows_affected()))
    .map_err(Error::from)
    .map_err(|e| unique_to_field(e, "name", "another department has this name"))?;
    let after = dept_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::updated("department", id, before.audit_json(), after.audit_json())).await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn delete_department(db: &Db, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = dept_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    let teams: i64 = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM teams WHERE department_id = $1")
        .bind(id).fetch_one(c).await)?;
    if teams > 0 {
        return Err(Error::Conflict(format!("the department still has {teams} team(s); move or delete them first")));
    }
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM departments WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(&mut tx, actor, Change::deleted("department", id, before.audit_json())).await?;
    tx.commit().await
}

// ---- teams -------------------------------------------------------------------------------

pub async fn create_team(db: &Db, actor: &Actor, t: &TeamInput) -> Result<Team> {
    let mut tx = db.begin().await?;
    check_placement(&mut tx, Some(t.department_id), None).await?;
    check_user_ref(&mut tx, "lead_user_id", t.lead_user_id).await?;
    check_user_ref(&mut tx, "interface_user_id", t.interface_user_id).await?;
    let sql = "INSERT INTO teams (department_id, name, lead_user_id, focus, territories, interface_user_id, created_at, \
               updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id";
    let id: i64 = on_tx!(&mut tx, c => sqlx::query_scalar(sql)
        .bind(t.department_id).bind(&t.name).bind(t.lead_user_id).bind(&t.focus).bind(t.territories.join(","))
        .bind(t.interface_user_id).bind(actor.now)
        .fetch_one(c).await)
    .map_err(Error::from)
    .map_err(|e| unique_to_field(e, "name", "the department already has a team with this name"))?;
    let team = team_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::created("team", id, team.audit_json())).await?;
    tx.commit().await?;
    Ok(team)
}

pub async fn update_team(db: &Db, actor: &Actor, id: i64, t: &TeamInput) -> Result<Team> {
    let mut tx = db.begin().await?;
    let before = team_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    check_placement(&mut tx, Some(t.department_id), None).await?;
    check_user_ref(&mut tx, "lead_user_id", t.lead_user_id).await?;
    let sql = "UPDATE teams SET department_id = $1, name = $2, lead_user_id = $3, focus = $4, territories = $5, \
         interface_user_id = $6, updated_at = $7 WHERE id = $8";
    check_user_ref(&mut tx, "interface_user_id", t.interface_user_id).await?;
    on_tx!(&mut tx, c => sqlx::query(sql)
        .bind(t.department_id).bind(&t.name).bind(t.lead_user_id).bind(&t.focus).bind(t.territories.join(","))
        .bind(t.interface_user_id).bind(actor.now).bind(id)
        .execute(c).await.map(|r| r.rows_affected()))
    .map_err(Error::from)
    .map_err(|e| unique_to_field(e, "name", "the department already has a team with this name"))?;
    if before.department_id != t.department_id {
        // Members follow their team to its new department.
        on_tx!(&mut tx, c => sqlx::query("UPDATE users SET department_id = $1 WHERE team_id = $2")
            .bind(t.department_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    }
    let after = team_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change::updated("team", id, before.audit_json(), after.audit_json())).await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn delete_team(db: &Db, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let before = team_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    on_tx!(&mut tx, c => sqlx::query("DELETE FROM teams WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    audit::record(&mut tx, actor, Change::deleted("team", id, before.audit_json())).await?;
    tx.commit().await
}

/// Id → display name of every account, for showing heads and leads.
pub async fn user_names(db: &Db) -> Result<std::collections::HashMap<i64, String>> {
    let rows: Vec<(i64, String)> =
        on_db!(db, p => sqlx::query_as("SELECT id, display_name FROM users").fetch_all(p).await)?;
    Ok(rows.into_iter().collect())
}
