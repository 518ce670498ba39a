//! Before/after comparison for the audit log (P-3): which fields a change touched.

use serde_json::Value;

/// Names of the top-level fields whose values differ between two JSON objects.
pub fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let empty = serde_json::Map::new();
    let obj = |v: Option<&Value>| match v {
        Some(Value::Object(m)) => m.clone(),
        _ => empty.clone(),
    };
    let (a, b) = (obj(before), obj(after));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_changed_added_and_removed_fields() {
        let a = json!({"name": "A", "size": "small", "gone": 1});
        let b = json!({"name": "A", "size": "large", "new": true});
        assert_eq!(changed_fields(Some(&a), Some(&b)), ["gone", "new", "size"]);
        assert_eq!(changed_fields(None, Some(&b)).len(), 3);
    }
}
