//! Validation errors that name the offending field.
//!
//! Every parse in this crate reports *all* bad fields at once (a form shows each message
//! beside its field; the API returns the same map with HTTP 422).

use std::collections::BTreeMap;

/// Field name → human-readable message (English; the UI translates by code where it can).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        // The first message for a field wins: it is usually the most basic problem.
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(field, message);
        e
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// `Ok(value)` when no error was recorded, else the errors.
    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }

    pub fn merge(&mut self, other: FieldErrors) {
        for (k, v) in other.0 {
            self.add(k, v);
        }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{k}: {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Input fields from a form or a JSON object, before validation.
///
/// Forms give strings; JSON gives any type. Parsers ask for the type they need and record a
/// field error when the value has another type, so `{"size": 5}` is "size: must be a string"
/// rather than a generic "bad JSON" failure.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub BTreeMap<String, serde_json::Value>);

impl Fields {
    pub fn from_json(value: serde_json::Value) -> Result<Fields, FieldErrors> {
        match value {
            serde_json::Value::Object(map) => Ok(Fields(map.into_iter().collect())),
            _ => Err(FieldErrors::single("body", "must be a JSON object")),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Fields
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            map.insert(k.into(), serde_json::Value::String(v.into()));
        }
        Fields(map)
    }

    pub fn set(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.0.insert(key.to_string(), value.into());
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| !v.is_null())
    }

    /// Records an error for every field not in `allowed` (typos must not pass silently).
    pub fn reject_unknown(&self, errors: &mut FieldErrors, allowed: &[&str]) {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                errors.add(k.clone(), "unknown field");
            }
        }
    }

    /// See [`Source::text`].
    pub fn text(&self, errors: &mut FieldErrors, field: &str) -> Option<String> {
        Source::text(self, errors, field)
    }

    /// See [`Source::required`].
    pub fn required(&self, errors: &mut FieldErrors, field: &str, max_chars: usize) -> String {
        Source::required(self, errors, field, max_chars)
    }

    /// See [`Source::optional`].
    pub fn optional(&self, errors: &mut FieldErrors, field: &str, max_chars: usize) -> Option<String> {
        Source::optional(self, errors, field, max_chars)
    }

    /// See [`Source::int`].
    pub fn int(&self, errors: &mut FieldErrors, field: &str) -> Option<i64> {
        Source::int(self, errors, field)
    }

    /// A list of strings: a JSON array of strings, or a comma-separated string from a form.
    pub fn list(&self, errors: &mut FieldErrors, field: &str) -> Option<Vec<String>> {
        match self.0.get(field) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => {
                Some(s.split([',', '，']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect())
            }
            Some(serde_json::Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        serde_json::Value::String(s) => out.push(s.trim().to_string()),
                        _ => {
                            errors.add(field, "must be a list of strings");
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                errors.add(field, "must be a list of strings");
                None
            }
        }
    }
}

/// A field's value as its source holds it: text (a form field, a sheet cell, a JSON string)
/// or another JSON value.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Text(&'a str),
    Json(&'a serde_json::Value),
}

/// Where a parser reads its fields from: a form or JSON object ([`Fields`]), or a sheet
/// row read in place (an import of a million rows builds no map per row). The typed
/// accessors record an error naming the field when its value has another type.
pub trait Source {
    /// The field's value; `None` when absent or null.
    fn raw(&self, field: &str) -> Option<Raw<'_>>;

    /// Records an error for every field not in `allowed`; a source whose fields are known
    /// (a sheet's mapped columns) has none.
    fn reject_unknown(&self, _errors: &mut FieldErrors, _allowed: &[&str]) {}

    /// The value as trimmed text; any other JSON type is an error. `None` when absent, null
    /// or blank.
    fn text(&self, errors: &mut FieldErrors, field: &str) -> Option<String> {
        match self.raw(field)? {
            Raw::Text(s) => {
                let t = s.trim();
                (!t.is_empty()).then(|| t.to_string())
            }
            Raw::Json(_) => {
                errors.add(field, "must be a string");
                None
            }
        }
    }

    /// A required text field of at most `max_chars` characters.
    fn required(&self, errors: &mut FieldErrors, field: &str, max_chars: usize) -> String {
        match self.text(errors, field) {
            None => {
                errors.add(field, "is required");
                String::new()
            }
            Some(v) => {
                if too_long(&v, max_chars) {
                    errors.add(field, format!("must be at most {max_chars} characters"));
                }
                v
            }
        }
    }

    /// An optional text field of at most `max_chars` characters.
    fn optional(&self, errors: &mut FieldErrors, field: &str, max_chars: usize) -> Option<String> {
        let v = self.text(errors, field)?;
        if too_long(&v, max_chars) {
            errors.add(field, format!("must be at most {max_chars} characters"));
        }
        Some(v)
    }

    /// An optional integer: a JSON integer, or a string of digits from a form.
    fn int(&self, errors: &mut FieldErrors, field: &str) -> Option<i64> {
        let parsed = match self.raw(field)? {
            Raw::Text(s) if s.trim().is_empty() => return None,
            Raw::Text(s) => s.trim().parse::<i64>().ok(),
            Raw::Json(serde_json::Value::Number(n)) => n.as_i64(),
            Raw::Json(_) => None,
        };
        if parsed.is_none() {
            errors.add(field, "must be a whole number");
        }
        parsed
    }

    /// One value of a closed set; an unknown value names the allowed ones.
    fn choice<T: Copy>(
        &self,
        errors: &mut FieldErrors,
        field: &str,
        all: &[T],
        code: impl Fn(T) -> &'static str,
    ) -> Option<T> {
        let Some(v) = self.text(errors, field) else {
            if !errors.0.contains_key(field) {
                errors.add(field, "is required");
            }
            return None;
        };
        parse_choice(errors, field, &v, all, code)
    }
}

impl Source for Fields {
    fn raw(&self, field: &str) -> Option<Raw<'_>> {
        match self.0.get(field)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(Raw::Text(s)),
            other => Some(Raw::Json(other)),
        }
    }

    fn reject_unknown(&self, errors: &mut FieldErrors, allowed: &[&str]) {
        Fields::reject_unknown(self, errors, allowed)
    }
}

/// More than `max_chars` characters; a text of no more bytes than that is not (a character
/// is at least a byte), and most are, so most are not counted.
fn too_long(v: &str, max_chars: usize) -> bool {
    v.len() > max_chars && v.chars().count() > max_chars
}

/// Finds `value` among `all` by code, or records the allowed codes against `field`.
pub fn parse_choice<T: Copy>(
    errors: &mut FieldErrors,
    field: &str,
    value: &str,
    all: &[T],
    code: impl Fn(T) -> &'static str,
) -> Option<T> {
    match all.iter().copied().find(|x| code(*x) == value) {
        Some(x) => Some(x),
        None => {
            let allowed: Vec<&str> = all.iter().map(|x| code(*x)).collect();
            errors.add(field, format!("unknown value `{value}`; expected one of: {}", allowed.join(", ")));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lengths are counted in characters: 80 ideographs (240 bytes) fit a limit of 80, 81
    /// ideographs or 81 ASCII letters do not.
    #[test]
    fn limits_count_characters_not_bytes() {
        let check = |v: String| {
            let mut e = FieldErrors::new();
            Fields::from_pairs([("name", v)]).optional(&mut e, "name", 80);
            e.get("name").map(str::to_string)
        };
        assert_eq!(check("云".repeat(80)), None);
        assert_eq!(check("云".repeat(81)).as_deref(), Some("must be at most 80 characters"));
        assert_eq!(check("a".repeat(81)).as_deref(), Some("must be at most 80 characters"));
        assert_eq!(check("a".repeat(80)), None);
    }
}
