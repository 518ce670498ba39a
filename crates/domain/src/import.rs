//! L-1 (c): importing leads from a table (CSV or XLSX, read elsewhere) — column mapping,
//! validation of every row first, errors by row number and column.

use crate::errors::Fields;
use crate::lead::{LEAD_FIELDS, LeadInput};
use crate::playbook::Playbook;
use serde::Serialize;

/// A sheet: its header row and its data rows, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Header names people use for each lead field (Chinese and English), for auto-mapping.
const SYNONYMS: &[(&str, &[&str])] = &[
    ("name", &["name", "姓名", "联系人", "contact", "full name", "客户姓名"]),
    ("company", &["company", "公司", "公司名称", "企业", "企业名称", "单位", "organization"]),
    ("title", &["title", "职位", "职务", "job title", "position"]),
    ("email", &["email", "e-mail", "邮箱", "电子邮箱", "邮件", "mail"]),
    ("phone", &["phone", "mobile", "手机", "手机号", "电话", "联系电话", "tel", "telephone"]),
    ("province", &["province", "省份", "省", "地区"]),
    ("city", &["city", "城市", "市"]),
    ("company_size", &["company_size", "规模", "企业规模", "客户规模", "size"]),
    ("channel", &["channel", "渠道", "来源渠道", "source channel"]),
    ("campaign_id", &["campaign_id", "活动编号", "campaign id"]),
    ("utm_source", &["utm_source"]),
    ("utm_medium", &["utm_medium"]),
    ("utm_campaign", &["utm_campaign"]),
    ("utm_term", &["utm_term"]),
    ("utm_content", &["utm_content"]),
    ("budget", &["budget", "预算"]),
    ("authority", &["authority", "决策权", "决策权限"]),
    ("need", &["need", "需求"]),
    ("timeline", &["timeline", "采购周期", "时间"]),
    ("note", &["note", "备注", "notes", "remark"]),
];

/// The lead field each column maps to by its header, or `None` (ignored).
pub fn auto_map(headers: &[String]) -> Vec<Option<&'static str>> {
    auto_map_with(headers, SYNONYMS)
}

/// The field each column maps to by its header among `synonyms` (field, header names).
pub fn auto_map_with(headers: &[String], synonyms: &[(&'static str, &[&str])]) -> Vec<Option<&'static str>> {
    headers
        .iter()
        .map(|h| {
            let h = h.trim().trim_start_matches('\u{feff}').to_lowercase();
            synonyms.iter().find(|(_, names)| names.iter().any(|n| *n == h)).map(|(f, _)| *f)
        })
        .collect()
}

/// Parses a mapping like `姓名=name,手机=phone` (header = field); columns not named keep
/// their automatic mapping. Unknown headers or fields are errors naming them.
pub fn apply_map(headers: &[String], spec: &str) -> Result<Vec<Option<&'static str>>, String> {
    apply_map_with(headers, spec, SYNONYMS, LEAD_FIELDS)
}

/// `apply_map` for any kind of record: `synonyms` for the automatic part, `fields` allowed.
pub fn apply_map_with(
    headers: &[String],
    spec: &str,
    synonyms: &[(&'static str, &[&str])],
    fields: &[&'static str],
) -> Result<Vec<Option<&'static str>>, String> {
    let mut map = auto_map_with(headers, synonyms);
    for pair in spec.split([',', '，']).map(str::trim).filter(|p| !p.is_empty()) {
        let (col, field) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not HEADER=FIELD"))?;
        let (col, field) = (col.trim(), field.trim());
        let idx = headers.iter().position(|h| h.trim() == col).ok_or_else(|| format!("no column named `{col}`"))?;
        if field.is_empty() || field == "-" {
            map[idx] = None;
        } else {
            let f = fields
                .iter()
                .find(|x| **x == field)
                .ok_or_else(|| format!("unknown field `{field}`; expected one of: {}", fields.join(", ")))?;
            map[idx] = Some(f);
        }
    }
    Ok(map)
}

/// One problem in one cell: the sheet row number (the header is row 1), the column header
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub message: String,
}

/// Hands each non-blank cell of a row (trimmed) with its column's field to `set`; false
/// when every cell is blank (the row is skipped).
pub(crate) fn each_cell<'a>(
    cells: impl IntoIterator<Item = &'a str>,
    map: &[Option<&'static str>],
    mut set: impl FnMut(&'static str, &'a str),
) -> bool {
    let mut any = false;
    for (cell, field) in cells.into_iter().zip(map) {
        let v = cell.trim();
        if !v.is_empty() {
            any = true;
            if let Some(f) = field {
                set(f, v);
            }
        }
    }
    any
}

/// The result of checking every row before anything is written.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Valid rows with their sheet row numbers.
    pub valid: Vec<(usize, LeadInput)>,
    pub errors: Vec<RowError>,
    /// Rows with at least one error.
    pub bad_rows: usize,
}

/// Rows of any kind checked by `parse` (a row's mapped cells as fields): the valid values
/// with their sheet row numbers, and each error under the column header it concerns.
pub fn check_with<T: Send>(
    table: &Table,
    map: &[Option<&'static str>],
    parse: impl Fn(Fields) -> Result<T, crate::FieldErrors> + Sync,
) -> (Vec<(usize, T)>, Vec<RowError>, usize) {
    // A large file is checked in as many parts as there are cores, each part's rows in
    // order, the parts joined in order: the same answer as one pass (a million leads: the
    // check was 3 s of the import on one core).
    let parts = crate::par::parts(&table.rows, |first, rows| check_part(table, first, rows, map, &parse));
    let mut valid = Vec::with_capacity(table.rows.len());
    let (mut errors, mut bad_rows) = (Vec::new(), 0);
    for (v, e, b) in parts {
        valid.extend(v);
        errors.extend(e);
        bad_rows += b;
    }
    (valid, errors, bad_rows)
}

/// `check_with` for the rows `rows`, the first of which is the table's row `first` (0-based).
fn check_part<T>(
    table: &Table,
    first: usize,
    rows: &[Vec<String>],
    map: &[Option<&'static str>],
    parse: &impl Fn(Fields) -> Result<T, crate::FieldErrors>,
) -> (Vec<(usize, T)>, Vec<RowError>, usize) {
    let mut valid = Vec::with_capacity(rows.len());
    let (mut errors, mut bad_rows) = (Vec::new(), 0);
    for (i, cells) in rows.iter().enumerate() {
        // Row numbers as a spreadsheet shows them: the header is row 1.
        let row = first + i + 2;
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut f = Fields::default();
        for (col, field) in map.iter().enumerate() {
            if let (Some(field), Some(v)) = (field, cells.get(col)) {
                let v = v.trim();
                if !v.is_empty() {
                    f.set(field, v);
                }
            }
        }
        match parse(f) {
            Ok(v) => valid.push((row, v)),
            Err(e) => {
                bad_rows += 1;
                for (field, message) in e.0 {
                    let column = map
                        .iter()
                        .position(|m| *m == Some(field.as_str()))
                        .and_then(|c| table.headers.get(c).cloned())
                        .unwrap_or(field);
                    errors.push(RowError { row, column, message });
                }
            }
        }
    }
    (valid, errors, bad_rows)
}

/// Validates every row with the lead rules. `defaults` fill fields a row leaves empty (for
/// example the channel of the whole file).
pub fn check(table: &Table, map: &[Option<&'static str>], pb: &Playbook, defaults: &Fields) -> Checked {
    let (valid, errors, bad_rows) = check_with(table, map, |mut f| {
        // The row's own values moved over the defaults (a million rows: no copy of each).
        let mut all = defaults.clone();
        all.0.append(&mut f.0);
        LeadInput::parse(&all, pb)
    });
    Checked { valid, errors, bad_rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Table {
            headers: h(&["姓名", "公司", "手机", "邮箱", "渠道", "需求", "内部编号"]),
            rows: vec![
                h(&["张三", "甲公司", "138 0013 8000", "", "trade_show", "clear", "A1"]),
                h(&["", "", "", "not-mail", "radio", "", "A2"]),
                h(&["", "", "", "", "", "", ""]),
                h(&["李四", "", "13900000000", "", "", "huge", "A4"]),
            ],
        }
    }

    /// L-1: headers map automatically (Chinese and English); unknown columns are ignored.
    #[test]
    fn l1_auto_map_and_override() {
        let t = table();
        let m = auto_map(&t.headers);
        assert_eq!(
            m,
            vec![Some("name"), Some("company"), Some("phone"), Some("email"), Some("channel"), Some("need"), None]
        );
        let m = apply_map(&t.headers, "内部编号=note, 需求=-").unwrap();
        assert_eq!((m[6], m[5]), (Some("note"), None));
        assert!(apply_map(&t.headers, "没有=name").unwrap_err().contains("没有"));
        assert!(apply_map(&t.headers, "姓名=nickname").unwrap_err().contains("nickname"));
    }

    /// L-1: every row is checked first; errors carry the sheet row number and the column.
    #[test]
    fn l1_errors_by_row_and_column() {
        let t = table();
        let pb = Playbook::default_playbook();
        let c = check(&t, &auto_map(&t.headers), &pb, &Fields::from_pairs([("channel", "website_form")]));
        assert_eq!(c.valid.len(), 1);
        assert_eq!(c.valid[0].0, 2);
        assert_eq!(c.bad_rows, 2, "the blank row 4 is skipped");
        let at = |row: usize, col: &str| {
            c.errors.iter().find(|e| e.row == row && e.column == col).map(|e| e.message.clone())
        };
        assert_eq!(at(3, "邮箱").as_deref(), Some("is not an e-mail address"));
        assert!(at(3, "渠道").unwrap().contains("website_form"));
        assert!(at(5, "需求").unwrap().contains("critical"));
        // Row 5 took the file's default channel.
        assert!(at(5, "渠道").is_none());
    }

    /// L-1: a large file checked on every core gives the same rows, numbers and errors as
    /// one pass: the small table repeated past `par::PARALLEL_FROM`.
    #[test]
    fn l1_large_file_checked_in_parts_keeps_row_numbers() {
        let small = table();
        let copies = crate::par::PARALLEL_FROM / small.rows.len() + 3;
        let rows: Vec<Vec<String>> = (0..copies).flat_map(|_| small.rows.iter().cloned()).collect();
        let big = Table { headers: small.headers.clone(), rows };
        let pb = Playbook::default_playbook();
        let defaults = Fields::from_pairs([("channel", "website_form")]);
        let c = check(&big, &auto_map(&big.headers), &pb, &defaults);
        assert_eq!((c.valid.len(), c.bad_rows), (copies, 2 * copies));
        for k in 0..copies {
            let base = 4 * k;
            assert_eq!(c.valid[k].0, base + 2);
            assert_eq!(c.valid[k].1.name.as_deref(), Some("张三"));
            let at = |row: usize, col: &str| c.errors.iter().any(|e| e.row == row && e.column == col);
            assert!(at(base + 3, "邮箱") && at(base + 5, "需求") && !at(base + 5, "渠道"), "copy {k}");
        }
        // In file order, as one pass gives them.
        assert!(c.errors.windows(2).all(|w| w[0].row <= w[1].row));
    }
}
