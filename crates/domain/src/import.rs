//! L-1 (c): importing leads from a table (CSV or XLSX, read elsewhere) — column mapping,
//! validation of every row first, errors by row number and column.

use crate::errors::{Fields, Raw, Source};
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

/// Lead rows checked one at a time and read in place: a row's mapped cells are the fields
/// `LeadInput::parse` reads, the file's defaults under them (a million rows used to build a
/// map of owned strings per row, and clone the defaults into it, before the parse made its
/// own copies).
pub struct LeadChecker<'a> {
    pb: &'a Playbook,
    defaults: &'a Fields,
    headers: Vec<String>,
    map: Vec<Option<&'static str>>,
    /// Each mapped field with its columns; of a field mapped twice the last non-blank cell
    /// counts.
    cols: Vec<(&'static str, Vec<usize>)>,
    /// The stored campaigns' ids, ascending, when the caller knows them: a row naming
    /// another campaign is a bad row at its campaign column.
    campaigns: Option<&'a [i64]>,
    valid: Vec<(usize, LeadInput)>,
    errors: Vec<RowError>,
    bad_rows: usize,
}

/// A row's cells as a field source (`LeadChecker::row`).
struct RowCells<'r> {
    cells: &'r [&'r str],
    cols: &'r [(&'static str, Vec<usize>)],
    defaults: &'r Fields,
}

impl Source for RowCells<'_> {
    fn raw(&self, field: &str) -> Option<Raw<'_>> {
        let cell =
            self.cols.iter().find(|(f, _)| *f == field).and_then(|(_, cols)| {
                cols.iter().rev().filter_map(|&c| self.cells.get(c)).find(|v| !v.trim().is_empty())
            });
        match cell {
            Some(v) => Some(Raw::Text(v)),
            None => self.defaults.raw(field),
        }
    }
}

impl<'a> LeadChecker<'a> {
    /// A checker for a sheet with `headers` mapped by `map`; `defaults` fill fields a row
    /// leaves empty (for example the channel of the whole file).
    pub fn new(
        headers: &[String],
        map: &[Option<&'static str>],
        pb: &'a Playbook,
        defaults: &'a Fields,
    ) -> LeadChecker<'a> {
        let mut cols: Vec<(&'static str, Vec<usize>)> = Vec::new();
        for (c, field) in map.iter().enumerate() {
            let Some(field) = *field else { continue };
            match cols.iter_mut().find(|(f, _)| *f == field) {
                Some((_, v)) => v.push(c),
                None => cols.push((field, vec![c])),
            }
        }
        LeadChecker {
            pb,
            defaults,
            headers: headers.to_vec(),
            map: map.to_vec(),
            cols,
            campaigns: None,
            valid: Vec::new(),
            errors: Vec::new(),
            bad_rows: 0,
        }
    }

    /// Rows naming a campaign not among `ids` (the stored campaigns, ascending) are bad
    /// rows, reported at their campaign column like any other bad cell.
    pub fn known_campaigns(mut self, ids: &'a [i64]) -> LeadChecker<'a> {
        debug_assert!(ids.is_sorted());
        self.campaigns = Some(ids);
        self
    }

    /// Checks the sheet's row number `row` (the header is row 1); a row of blank cells is
    /// skipped.
    pub fn row<'c>(&mut self, row: usize, cells: impl Iterator<Item = &'c str>) {
        let cells: Vec<&str> = cells.collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            return;
        }
        let source = RowCells { cells: &cells, cols: &self.cols, defaults: self.defaults };
        let unknown = |id: i64| self.campaigns.is_some_and(|ids| ids.binary_search(&id).is_err());
        let parsed = match LeadInput::parse(&source, self.pb) {
            Ok(v) => match v.campaign_id {
                Some(id) if unknown(id) => Err(crate::errors::FieldErrors::single("campaign_id", unknown_campaign(id))),
                _ => Ok(v),
            },
            // The row's other errors do not hide an unknown campaign: the user fixes the row
            // once, with everything wrong in it listed.
            Err(mut e) => {
                let cell = source.raw("campaign_id").and_then(|r| match r {
                    Raw::Text(t) => t.trim().parse::<i64>().ok(),
                    _ => None,
                });
                if let Some(id) = cell.filter(|&id| id > 0 && unknown(id))
                    && !e.0.contains_key("campaign_id")
                {
                    e.0.insert("campaign_id".into(), unknown_campaign(id));
                }
                Err(e)
            }
        };
        match parsed {
            Ok(v) => self.valid.push((row, v)),
            Err(e) => {
                self.bad_rows += 1;
                for (field, message) in e.0 {
                    let column = self
                        .map
                        .iter()
                        .position(|m| *m == Some(field.as_str()))
                        .and_then(|c| self.headers.get(c).cloned())
                        .unwrap_or(field);
                    self.errors.push(RowError { row, column, message });
                }
            }
        }
    }

    /// A checker of the same sheet by the same rules with nothing checked yet, for rows
    /// checked on another thread; `absorb` takes its results back.
    pub fn fork(&self) -> LeadChecker<'a> {
        LeadChecker {
            pb: self.pb,
            defaults: self.defaults,
            headers: self.headers.clone(),
            map: self.map.clone(),
            cols: self.cols.clone(),
            campaigns: self.campaigns,
            valid: Vec::new(),
            errors: Vec::new(),
            bad_rows: 0,
        }
    }

    /// Room for `rows` more valid rows, when the caller can tell how many a file holds: a
    /// million rows' list grown by doubling copied itself and touched fresh memory twice over
    /// (1 M leads: 1.7 of the check's 2.4 s in page faults).
    pub fn expect_rows(&mut self, rows: usize) {
        self.valid.reserve(rows.saturating_sub(self.valid.len()));
    }

    /// Appends what `other` (a `fork`) checked: rows that follow this checker's.
    pub fn absorb(&mut self, other: LeadChecker<'a>) {
        self.valid.extend(other.valid);
        self.errors.extend(other.errors);
        self.bad_rows += other.bad_rows;
    }

    pub fn finish(self) -> Checked {
        Checked { valid: self.valid, errors: self.errors, bad_rows: self.bad_rows }
    }
}

/// The message of a row naming a campaign that is not stored (L-1).
pub fn unknown_campaign(id: i64) -> String {
    format!("no campaign has the id {id}")
}

/// Validates every row with the lead rules. `defaults` fill fields a row leaves empty (for
/// example the channel of the whole file); `campaigns` are the stored campaigns' ids,
/// ascending (a row naming another is a bad row). A large table is checked in as many parts as
/// there are cores, each part's rows in order, the parts joined in order: the same answer as
/// one pass.
pub fn check(
    table: &Table,
    map: &[Option<&'static str>],
    pb: &Playbook,
    defaults: &Fields,
    campaigns: &[i64],
) -> Checked {
    let parts = crate::par::parts(&table.rows, |first, rows| {
        let mut c = LeadChecker::new(&table.headers, map, pb, defaults).known_campaigns(campaigns);
        for (i, cells) in rows.iter().enumerate() {
            // Row numbers as a spreadsheet shows them: the header is row 1.
            c.row(first + i + 2, cells.iter().map(String::as_str));
        }
        c
    });
    let mut parts = parts.into_iter();
    let mut all = parts.next().expect("at least one part");
    all.valid.reserve(table.rows.len().saturating_sub(all.valid.len()));
    for p in parts {
        all.absorb(p);
    }
    all.finish()
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
        let c = check(&t, &auto_map(&t.headers), &pb, &Fields::from_pairs([("channel", "website_form")]), &[]);
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

    /// L-1: rows read in place (a CSV record's cells, no table) check as the table's rows
    /// do; of a field mapped to two columns the last non-blank cell counts, and the file's
    /// defaults fill only what a row leaves blank.
    #[test]
    fn l1_rows_checked_in_place_equal_the_table_check() {
        let t = table();
        let pb = Playbook::default_playbook();
        let defaults = Fields::from_pairs([("channel", "website_form")]);
        let map = auto_map(&t.headers);
        let whole = check(&t, &map, &pb, &defaults, &[]);
        let mut c = LeadChecker::new(&t.headers, &map, &pb, &defaults);
        for (i, cells) in t.rows.iter().enumerate() {
            c.row(i + 2, cells.iter().map(String::as_str));
        }
        let one = c.finish();
        assert_eq!((one.valid.clone(), one.errors.clone(), one.bad_rows), (whole.valid, whole.errors, whole.bad_rows));
        // Rows 2–3 here and 4–5 in a fork (another thread's share), absorbed: one pass's answer.
        let mut first = LeadChecker::new(&t.headers, &map, &pb, &defaults);
        let mut second = first.fork();
        for (i, cells) in t.rows.iter().enumerate() {
            let c = if i < 2 { &mut first } else { &mut second };
            c.row(i + 2, cells.iter().map(String::as_str));
        }
        first.absorb(second);
        let joined = first.finish();
        assert_eq!((joined.valid, joined.errors, joined.bad_rows), (one.valid, one.errors, one.bad_rows));
        // 内部编号 mapped to the name as well: its non-blank cell wins over 姓名's.
        let mut twice = map.clone();
        twice[6] = Some("name");
        let mut c = LeadChecker::new(&t.headers, &twice, &pb, &defaults);
        c.row(2, ["张三", "甲公司", "138 0013 8000", "", "", "", "A1"].into_iter());
        c.row(3, ["李四", "", "13900000000", "", "trade_show", "", " "].into_iter());
        let got = c.finish();
        let names: Vec<_> = got.valid.iter().map(|(_, l)| (l.name.clone().unwrap(), l.channel.code())).collect();
        assert_eq!(names, [("A1".to_string(), "website_form"), ("李四".to_string(), "trade_show")]);
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
        let c = check(&big, &auto_map(&big.headers), &pb, &defaults, &[]);
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

    /// L-1: a row naming a campaign that is not stored is a bad row at its campaign column,
    /// with its row number; rows naming a stored campaign, or none, pass.
    #[test]
    fn l1_unknown_campaign_is_a_row_error() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = Table {
            headers: h(&["姓名", "手机", "活动编号"]),
            rows: vec![
                h(&["张三", "13800138000", "7"]),
                h(&["李四", "13900139000", "8"]),
                h(&["王五", "13700137000", ""]),
            ],
        };
        let pb = Playbook::default_playbook();
        let defaults = Fields::from_pairs([("channel", "wechat")]);
        let c = check(&t, &auto_map(&t.headers), &pb, &defaults, &[3, 7]);
        let rows: Vec<usize> = c.valid.iter().map(|(r, _)| *r).collect();
        assert_eq!((rows, c.bad_rows), (vec![2, 4], 1));
        assert_eq!(
            c.errors,
            [RowError { row: 3, column: "活动编号".into(), message: "no campaign has the id 8".into() }]
        );
        // A row with other errors names its unknown campaign too (and a campaign cell that
        // is no id is reported once, as such).
        let t2 = Table {
            headers: h(&["姓名", "邮箱", "活动编号"]),
            rows: vec![
                h(&["赵六", "not-an-email", "9"]),
                h(&["钱七", "not-an-email", "x"]),
                h(&["孙八", "not-an-email", "7"]),
            ],
        };
        let c2 = check(&t2, &auto_map(&t2.headers), &pb, &defaults, &[3, 7]);
        assert_eq!((c2.valid.len(), c2.bad_rows), (0, 3));
        let at = |row: usize| c2.errors.iter().filter(|e| e.row == row).map(|e| e.column.as_str()).collect::<Vec<_>>();
        assert_eq!(at(2), ["活动编号", "邮箱"], "{:?}", c2.errors);
        assert!(c2.errors.iter().any(|e| e.row == 2 && e.message == "no campaign has the id 9"));
        assert_eq!(at(3), ["活动编号", "邮箱"], "{:?}", c2.errors);
        assert!(!c2.errors.iter().any(|e| e.row == 3 && e.message.contains("no campaign")));
        assert_eq!(at(4), ["邮箱"], "{:?}", c2.errors);
        // No campaign stored: every row naming one is refused.
        assert_eq!(check(&t, &auto_map(&t.headers), &pb, &defaults, &[]).bad_rows, 2);
    }
}
