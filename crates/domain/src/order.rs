//! C-1 orders: the fields an order arrives with (API body or a row of an imported file),
//! parsed into a checked value or errors naming each field.

use crate::errors::{FieldErrors, Fields};
use crate::import::Table;
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
    // Days from civil (H. Hinnant's algorithm): exact for every date jiff holds, and a few
    // integer operations where a span between two dates costs a division of durations
    // (ten million rows of a file are converted).
    let (y, m, d) = (i64::from(d.year()), i64::from(d.month()), i64::from(d.day()));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `day_number` gave.
pub fn date_of(day: i64) -> Date {
    Date::constant(1970, 1, 1).checked_add(jiff::Span::new().days(day)).unwrap_or(Date::constant(1970, 1, 1))
}

/// A value given as text or, from JSON, as a number (`42`, `199.9`); `None` when absent,
/// null or blank.
pub(crate) fn scalar(f: &Fields, e: &mut FieldErrors, field: &str) -> Option<String> {
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
        let (order_date, amount) = validate(&p, latest)?;
        Ok(OrderInput {
            order_id: p.order_id.unwrap_or_default().to_string(),
            customer_id: p.customer_id.unwrap_or_default().to_string(),
            order_date,
            amount,
            customer_name: p.customer_name.map(str::to_string),
            channel: p.channel.map(str::to_string),
        })
    }
}

/// A required amount in yuan with at most 2 decimals that is not negative; errors named
/// by `field`.
pub(crate) fn yuan_not_negative(e: &mut FieldErrors, field: &str, v: Option<&str>) -> Option<Money> {
    let Some(s) = v else {
        e.add(field, "is required");
        return None;
    };
    match Money::parse_major(s) {
        Some(m) if m.fen() >= 0 => Some(m),
        Some(_) => {
            e.add(field, "must not be negative");
            None
        }
        None => {
            e.add(field, format!("`{s}` is not an amount in yuan (at most 2 decimals)"));
            None
        }
    }
}

pub(crate) fn check_id(v: Option<&str>, e: &mut FieldErrors, field: &str) {
    match v {
        None => e.add(field, "is required"),
        Some(v) if v.chars().count() > MAX_ID_CHARS => {
            e.add(field, format!("must be at most {MAX_ID_CHARS} characters"))
        }
        Some(v) if v.chars().any(char::is_control) => e.add(field, "must not contain control characters"),
        Some(_) => {}
    }
}

/// The rules of `OrderInput::from_parts` without building the value: the date and the
/// amount, or every field's error (a file of millions of rows is checked without an
/// allocation per row).
pub(crate) fn validate(p: &Parts<'_>, latest: Date) -> Result<(Date, Money), FieldErrors> {
    let mut e = FieldErrors::new();
    check_id(p.order_id, &mut e, "order_id");
    check_id(p.customer_id, &mut e, "customer_id");
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
    let amount = yuan_not_negative(&mut e, "amount", p.amount);
    if p.customer_name.is_some_and(|n| n.chars().count() > 200) {
        e.add("customer_name", "must be at most 200 characters");
    }
    if p.channel.is_some_and(|c| c.chars().count() > 40) {
        e.add("channel", "must be at most 40 characters");
    }
    match (order_date, amount) {
        (Some(d), Some(a)) if e.is_empty() => Ok((d, a)),
        _ => Err(e),
    }
}

/// Validates every row of a table (see `order_batch::Checker`, which files are streamed
/// through).
pub fn check(table: &Table, map: &[Option<&'static str>], latest: Date) -> crate::order_batch::Checked {
    let mut c = crate::order_batch::Checker::new(&table.headers, map, latest);
    for (i, cells) in table.rows.iter().enumerate() {
        c.row(i + 2, cells.iter().map(String::as_str));
    }
    c.finish()
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
    fn c1_day_numbers_equal_the_span_from_1970() {
        let epoch = Date::constant(1970, 1, 1);
        let mut d = Date::constant(1899, 12, 25);
        while d < Date::constant(2101, 3, 5) {
            assert_eq!(day_number(d), (d - epoch).get_days() as i64, "{d}");
            assert_eq!(date_of(day_number(d)), d);
            d = d.tomorrow().unwrap();
        }
        assert_eq!(day_number(Date::constant(-9999, 1, 1)), (Date::constant(-9999, 1, 1) - epoch).get_days() as i64);
        assert_eq!(day_number(Date::constant(9999, 12, 31)), (Date::constant(9999, 12, 31) - epoch).get_days() as i64);
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
        assert_eq!((c.batch.len(), c.bad_rows), (1, 2), "{:?}", c.errors);
        assert_eq!((c.errors[0].row, c.errors[0].column.as_str()), (4, "订单号"));
        assert_eq!((c.errors[1].row, c.errors[1].column.as_str()), (5, "下单日期"));
    }
}
