//! Departments, teams and people (SPEC O-2), as validated inputs.

use crate::company::code_enum;
use crate::errors::Source as _;
use crate::errors::{FieldErrors, Fields};
use crate::role::Role;
use serde::{Deserialize, Serialize};

code_enum!(
    /// O-2 department kinds.
    DepartmentKind {
        Marketing => "marketing",
        Product => "product",
        Rnd => "rnd",
        Design => "design",
        Operations => "operations",
        Sales => "sales",
        CustomerSuccess => "customer_success",
        Finance => "finance",
        Legal => "legal",
        Strategy => "strategy",
        Executive => "executive",
    }
);

/// A normalised e-mail address: trimmed and lower-cased, so `Li.Lei@Example.com ` and
/// `li.lei@example.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Email, &'static str> {
        let s = s.trim().to_lowercase();
        if s.len() > 254 {
            return Err("must be at most 254 characters");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("is not an e-mail address");
        };
        let ok = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok { Ok(Email(s)) } else { Err("is not an e-mail address") }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Checks a new password against the policy; returns the message for the `password` field.
pub fn check_password(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentInput {
    pub name: String,
    pub kind: DepartmentKind,
    pub head_user_id: Option<i64>,
    pub description: Option<String>,
}

pub const DEPARTMENT_FIELDS: &[&str] = &["name", "kind", "head_user_id", "description"];

impl DepartmentInput {
    pub fn parse(f: &Fields) -> Result<DepartmentInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, DEPARTMENT_FIELDS);
        let name = f.required(&mut e, "name", 80);
        let kind = f.choice(&mut e, "kind", DepartmentKind::ALL, DepartmentKind::code);
        let head_user_id = positive_id(f, &mut e, "head_user_id");
        let description = f.optional(&mut e, "description", 500);
        match kind {
            Some(kind) if e.is_empty() => Ok(DepartmentInput { name, kind, head_user_id, description }),
            _ => Err(e),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamInput {
    pub name: String,
    pub department_id: i64,
    pub lead_user_id: Option<i64>,
    pub focus: Option<String>,
    /// Provinces and cities the team covers (L-4 routing).
    pub territories: Vec<String>,
    /// The marketing interface person (接口人) of a sales team (L-4).
    pub interface_user_id: Option<i64>,
}

pub const TEAM_FIELDS: &[&str] =
    &["name", "department_id", "lead_user_id", "focus", "territories", "interface_user_id"];

impl TeamInput {
    pub fn parse(f: &Fields) -> Result<TeamInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, TEAM_FIELDS);
        let name = f.required(&mut e, "name", 80);
        let department_id = positive_id(f, &mut e, "department_id");
        if department_id.is_none() && !e.0.contains_key("department_id") {
            e.add("department_id", "is required");
        }
        let lead_user_id = positive_id(f, &mut e, "lead_user_id");
        let focus = f.optional(&mut e, "focus", 200);
        let territories: Vec<String> =
            f.list(&mut e, "territories").unwrap_or_default().into_iter().filter(|t| !t.is_empty()).collect();
        if territories.iter().any(|t| t.chars().count() > 40) || territories.len() > 100 {
            e.add("territories", "at most 100 places of at most 40 characters each");
        }
        let interface_user_id = positive_id(f, &mut e, "interface_user_id");
        match department_id {
            Some(department_id) if e.is_empty() => {
                Ok(TeamInput { name, department_id, lead_user_id, focus, territories, interface_user_id })
            }
            _ => Err(e),
        }
    }
}

/// A new or edited account. `password` is required on creation only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    pub email: Email,
    pub display_name: String,
    pub role: Role,
    pub department_id: Option<i64>,
    pub team_id: Option<i64>,
    pub active: bool,
    pub password: Option<String>,
}

pub const USER_FIELDS: &[&str] = &["email", "display_name", "role", "department_id", "team_id", "active", "password"];

impl UserInput {
    pub fn parse(f: &Fields, creating: bool) -> Result<UserInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, USER_FIELDS);
        let email = match f.text(&mut e, "email") {
            None => {
                if !e.0.contains_key("email") {
                    e.add("email", "is required");
                }
                None
            }
            Some(s) => match Email::parse(&s) {
                Ok(m) => Some(m),
                Err(msg) => {
                    e.add("email", msg);
                    None
                }
            },
        };
        let display_name = f.required(&mut e, "display_name", 80);
        let role = f.choice(&mut e, "role", &Role::ALL, Role::code);
        let department_id = positive_id(f, &mut e, "department_id");
        let team_id = positive_id(f, &mut e, "team_id");
        let active = match f.0.get("active") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => match s.as_str() {
                "true" | "on" | "1" | "yes" => true,
                "false" | "off" | "0" | "no" => false,
                _ => {
                    e.add("active", "must be true or false");
                    true
                }
            },
            Some(_) => {
                e.add("active", "must be true or false");
                true
            }
        };
        let password = match f.0.get("password") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if s.is_empty() => None,
            Some(serde_json::Value::String(s)) => {
                if let Err(msg) = check_password(s) {
                    e.add("password", msg);
                }
                Some(s.clone())
            }
            Some(_) => {
                e.add("password", "must be a string");
                None
            }
        };
        if creating && password.is_none() && !e.0.contains_key("password") {
            e.add("password", "is required");
        }
        match (email, role) {
            (Some(email), Some(role)) if e.is_empty() => {
                Ok(UserInput { email, display_name, role, department_id, team_id, active, password })
            }
            _ => Err(e),
        }
    }
}

fn positive_id(f: &Fields, e: &mut FieldErrors, field: &str) -> Option<i64> {
    let id = f.int(e, field)?;
    if id <= 0 {
        e.add(field, "must be a positive id");
        return None;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised() {
        assert_eq!(Email::parse("  Li.Lei@Example.COM ").unwrap().as_str(), "li.lei@example.com");
        for bad in ["", "a", "a@b", "@b.cn", "a@@b.cn", "a b@c.cn", "a@.cn"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    /// O-2: a department needs a name and a known kind.
    #[test]
    fn o2_department_input() {
        let d = DepartmentInput::parse(&Fields::from_pairs([("name", "市场部"), ("kind", "marketing")])).unwrap();
        assert_eq!(d.kind, DepartmentKind::Marketing);
        let e = DepartmentInput::parse(&Fields::from_pairs([("kind", "magic"), ("head_user_id", "x")])).unwrap_err();
        assert_eq!(e.get("name"), Some("is required"));
        assert!(e.get("kind").unwrap().contains("customer_success"));
        assert_eq!(e.get("head_user_id"), Some("must be a whole number"));
    }

    #[test]
    fn user_input_rules() {
        let mut f = Fields::from_pairs([("email", "A@b.cn"), ("display_name", "王芳"), ("role", "marketer")]);
        assert_eq!(UserInput::parse(&f, true).unwrap_err().get("password"), Some("is required"));
        f.set("password", "short");
        assert!(UserInput::parse(&f, true).unwrap_err().get("password").unwrap().contains("at least 8"));
        f.set("password", "long enough");
        let u = UserInput::parse(&f, true).unwrap();
        assert_eq!(u.email.as_str(), "a@b.cn");
        assert!(u.active);
        f.set("role", "overlord");
        assert!(UserInput::parse(&f, true).unwrap_err().get("role").is_some());
    }
}
