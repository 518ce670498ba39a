//! C-1 orders: the fields an order arrives with (API body or a row of an imported file),
//! parsed into a checked value or errors naming each field.

use crate::errors::{FieldErrors, Fields};
use crate::import::{RowError, Table};
use crate::money::Money;
use jiff::civil::Date;
use serde::Serialize;

/// Fields of an order, in the plain file format's column order, then the optional ones.
pub const ORDER_FIELDS: &[&str] = &["order_id", "customer_id", "order_date", "amount", "customer_name", "channel"];

/// Header names people use for each order field (Chinese and English), for auto-mapping.
pub const ORDER_SYNONYMS: &[(&str, &[&str])] = &[
    ("order_id", &["order_id", "订单号", "订单编号", "order id", "order"]),
    ("customer_id", &["customer_id", "客户编号", "客户id", "customer id", "customer", "会员编号"]),
    ("order_date", &["order_date", "下单日期", "订单日期", "日期", "date", "order date"]),
    ("amount", &["amount", "金额", "订单金额", "实付金额", "total"]),
    ("customer_name", &["customer_name", "客户名称", "客户姓名", "name"]),
    ("channel", &["channel", "渠道", "获客渠道", "来源渠道", "source"]),
];

/// Longest order or customer id accepted.
const MAX_ID_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderInput {
    pub order_id: String,
    pub customer_id: String,
    pub order_date: Date,
    /// Fen; zero allowed (a free order still counts as a purchase), never negative.
    pub amount: Money,
    pub customer_name: Option<String>,
    /// C-3: the channel that acquired the customer (kept from its first order that names one).
    pub channel: Option<String>,
}

/// Days since 1970-01-01 (the stored form of a date).
pub fn day_number(d: Date) -> i64 {
    let epoch = Date::constant(1970, 1, 1);
    (d - epoch).get_days() as i64
}

/// The date `day_number` gave.
pub fn date_of(day: i64) -> Date {
    Date::constant(1970, 1, 1).checked_add(jiff::Span::new().days(day)).unwrap_or(Date::constant(1970, 1, 1))
}

/// A value given as text or, from JSON, as a number (`42`, `199.9`); `None` when absent,
/// null or blank.
fn scalar(f: &Fields, e: &mut FieldErrors, field: &str) -> Option<String> {
    match f.0.get(field) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => None,
        Some(_) => {
            e.add(field, "must be a string or a number");
            None
        }
    }
}

/// The fields of one order as text (a row of a file, or a JSON body made text), trimmed;
/// `None` for an empty cell.
#[derive(Debug, Default, Clone, Copy)]
pub struct Parts<'a> {
    pub order_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
    pub order_date: Option<&'a str>,
    pub amount: Option<&'a str>,
    pub customer_name: Option<&'a str>,
    pub channel: Option<&'a str>,
}

fn id(v: Option<&str>, e: &mut FieldErrors, field: &str) -> String {
    let Some(v) = v else {
        e.add(field, "is required");
        return String::new();
    };
    if v.chars().count() > MAX_ID_CHARS {
        e.add(field, format!("must be at most {MAX_ID_CHARS} characters"));
    } else if v.chars().any(char::is_control) {
        e.add(field, "must not contain control characters");
    }
    v.to_string()
}

impl OrderInput {
    /// Checks an order from JSON or form fields (see `from_parts`); unknown fields are
    /// errors too.
    pub fn parse(f: &Fields, latest: Date) -> Result<OrderInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, ORDER_FIELDS);
        let values: Vec<Option<String>> = ORDER_FIELDS.iter().map(|k| scalar(f, &mut e, k)).collect();
        let part = |i: usize| values[i].as_deref();
        let parts = Parts {
            order_id: part(0),
            customer_id: part(1),
            order_date: part(2),
            amount: part(3),
            customer_name: part(4),
            channel: part(5),
        };
        match OrderInput::from_parts(parts, latest) {
            Ok(o) if e.is_empty() => Ok(o),
            Ok(_) => Err(e),
            Err(more) => {
                e.merge(more);
                Err(e)
            }
        }
    }

    /// Checks an order: ids present (≤ 64 characters), a real date (YYYY-MM-DD, not after
    /// `latest`), an amount in yuan with at most 2 decimals that is not negative.
    pub fn from_parts(p: Parts<'_>, latest: Date) -> Result<OrderInput, FieldErrors> {
        let mut e = FieldErrors::new();
        let order_id = id(p.order_id, &mut e, "order_id");
        let customer_id = id(p.customer_id, &mut e, "customer_id");
        let order_date = match p.order_date {
            None => {
                e.add("order_date", "is required");
                None
            }
            Some(s) => match s.parse::<Date>().or_else(|_| s.replace('/', "-").parse::<Date>()) {
                Ok(d) if d > latest => {
                    e.add("order_date", format!("{d} is in the future"));
                    None
                }
                Ok(d) => Some(d),
                Err(_) => {
                    e.add("order_date", format!("`{s}` is not a date (YYYY-MM-DD)"));
                    None
                }
            },
        };
        let amount = match p.amount {
            None => {
                e.add("amount", "is required");
                None
            }
            Some(s) => match Money::parse_major(s) {
                Some(m) if m.fen() >= 0 => Some(m),
                Some(_) => {
                    e.add("amount", "must not be negative");
                    None
                }
                None => {
                    e.add("amount", format!("`{s}` is not an amount in yuan (at most 2 decimals)"));
                    None
                }
            },
        };
        let customer_name = p.customer_name.map(str::to_string);
        if customer_name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            e.add("customer_name", "must be at most 200 characters");
        }
        let channel = p.channel.map(str::to_string);
        if channel.as_ref().is_some_and(|c| c.chars().count() > 40) {
            e.add("channel", "must be at most 40 characters");
        }
        match (order_date, amount) {
            (Some(order_date), Some(amount)) if e.is_empty() => {
                Ok(OrderInput { order_id, customer_id, order_date, amount, customer_name, channel })
            }
            _ => Err(e),
        }
    }
}

/// The result of checking every row of an orders file before anything is written.
#[derive(Debug, Clone, Default)]
pub struct CheckedOrders {
    pub valid: Vec<(usize, OrderInput)>,
    pub errors: Vec<RowError>,
    pub bad_rows: usize,
}

/// Validates every row; the same order id twice in a file is an error on the later row
/// unless the two rows are identical (a repeated line).
pub fn check(table: &Table, map: &[Option<&'static str>], latest: Date) -> CheckedOrders {
    let mut out = CheckedOrders { valid: Vec::with_capacity(table.rows.len()), ..Default::default() };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::with_capacity(table.rows.len());
    let column_of = |field: &str| {
        map.iter().position(|m| *m == Some(field)).and_then(|c| table.headers.get(c).cloned()).unwrap_or(field.into())
    };
    for (i, cells) in table.rows.iter().enumerate() {
        let row = i + 2;
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut p = Parts::default();
        for (col, field) in map.iter().enumerate() {
            let Some(v) = cells.get(col).map(|v| v.trim()).filter(|v| !v.is_empty()) else { continue };
            match *field {
                Some("order_id") => p.order_id = Some(v),
                Some("customer_id") => p.customer_id = Some(v),
                Some("order_date") => p.order_date = Some(v),
                Some("amount") => p.amount = Some(v),
                Some("customer_name") => p.customer_name = Some(v),
                Some("channel") => p.channel = Some(v),
                _ => {}
            }
        }
        match OrderInput::from_parts(p, latest) {
            Ok(o) => match seen.get(&o.order_id) {
                Some(&first) if out.valid[first].1 == o => {}
                Some(&first) => {
                    out.bad_rows += 1;
                    let message =
                        format!("order {} already appears on row {} with other values", o.order_id, out.valid[first].0);
                    out.errors.push(RowError { row, column: column_of("order_id"), message });
                }
                None => {
                    seen.insert(o.order_id.clone(), out.valid.len());
                    out.valid.push((row, o));
                }
            },
            Err(e) => {
                out.bad_rows += 1;
                for (field, message) in e.0 {
                    out.errors.push(RowError { row, column: column_of(&field), message });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const TODAY: Date = Date::constant(2026, 12, 1);

    #[test]
    fn c1_an_order_is_parsed_or_every_bad_field_is_named() {
        let o = OrderInput::parse(
            &fields(&[("order_id", "A-1"), ("customer_id", "42"), ("order_date", "2026-03-05"), ("amount", "199.90")]),
            TODAY,
        )
        .unwrap();
        assert_eq!((o.amount.fen(), day_number(o.order_date)), (19_990, 20_517));
        assert_eq!(date_of(20_517), Date::constant(2026, 3, 5));
        let e = OrderInput::parse(
            &fields(&[("order_id", ""), ("customer_id", "42"), ("order_date", "2026-02-30"), ("amount", "1.234")]),
            TODAY,
        )
        .unwrap_err();
        for k in ["order_id", "order_date", "amount"] {
            assert!(e.get(k).is_some(), "{k}: {e}");
        }
        let e = OrderInput::parse(
            &fields(&[("order_id", "x"), ("customer_id", "1"), ("order_date", "2027-01-01"), ("amount", "-5")]),
            TODAY,
        )
        .unwrap_err();
        assert!(e.get("order_date").unwrap().contains("future") && e.get("amount").unwrap().contains("negative"));
        let e = OrderInput::parse(&fields(&[("colour", "red")]), TODAY).unwrap_err();
        assert!(e.get("colour").is_some());
    }

    #[test]
    fn c1_files_are_checked_row_by_row_with_repeated_ids() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = Table {
            headers: h(&["订单号", "客户编号", "下单日期", "金额"]),
            rows: vec![
                h(&["1", "c1", "2026-01-02", "10.00"]),
                h(&["1", "c1", "2026-01-02", "10.00"]),
                h(&["1", "c2", "2026-01-02", "10.00"]),
                h(&["2", "c1", "yesterday", "10"]),
                h(&["", "", "", ""]),
            ],
        };
        let map = crate::import::auto_map_with(&t.headers, ORDER_SYNONYMS);
        let c = check(&t, &map, TODAY);
        assert_eq!((c.valid.len(), c.bad_rows), (1, 2), "{:?}", c.errors);
        assert_eq!((c.errors[0].row, c.errors[0].column.as_str()), (4, "订单号"));
        assert_eq!((c.errors[1].row, c.errors[1].column.as_str()), (5, "下单日期"));
    }
}
