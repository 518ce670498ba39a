//! Campaigns (L-1, L-9): where leads come from and what they cost.

use crate::errors::Source as _;
use crate::errors::{FieldErrors, Fields, parse_choice};
use crate::lead::Channel;
use crate::money::Money;
use jiff::civil::Date;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignInput {
    pub name: String,
    pub channel: Channel,
    pub starts_on: Option<Date>,
    pub ends_on: Option<Date>,
    pub planned_cost: Money,
    pub owner_id: Option<i64>,
}

pub const CAMPAIGN_FIELDS: &[&str] = &["name", "channel", "starts_on", "ends_on", "planned_cost", "owner_id"];

pub fn date_field(f: &Fields, e: &mut FieldErrors, field: &str) -> Option<Date> {
    let v = f.text(e, field)?;
    match v.parse::<Date>() {
        Ok(d) => Some(d),
        Err(_) => {
            e.add(field, "must be a date like 2026-11-01");
            None
        }
    }
}

/// An amount in yuan (`12345.67`, `12,345.67` or a JSON number) as money; at most two decimals.
pub fn money_field(f: &Fields, e: &mut FieldErrors, field: &str) -> Option<Money> {
    let text = match f.0.get(field) {
        None | Some(serde_json::Value::Null) => return None,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => return None,
        Some(serde_json::Value::String(s)) => s.trim().replace([',', '，', '¥', ' '], ""),
        Some(_) => {
            e.add(field, "must be an amount like 1234.56");
            return None;
        }
    };
    match Money::parse_major(&text) {
        Some(m) => Some(m),
        None => {
            e.add(field, "must be an amount like 1234.56 (at most two decimals)");
            None
        }
    }
}

impl CampaignInput {
    pub fn parse(f: &Fields) -> Result<CampaignInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, CAMPAIGN_FIELDS);
        let name = f.required(&mut e, "name", 120);
        let channel = f.choice(&mut e, "channel", Channel::ALL, Channel::code);
        let starts_on = date_field(f, &mut e, "starts_on");
        let ends_on = date_field(f, &mut e, "ends_on");
        if let (Some(a), Some(b)) = (starts_on, ends_on)
            && b < a
        {
            e.add("ends_on", "must not be before starts_on");
        }
        let planned_cost = money_field(f, &mut e, "planned_cost").unwrap_or_default();
        if planned_cost.0 < 0 {
            e.add("planned_cost", "must not be negative");
        }
        let owner_id = f.int(&mut e, "owner_id");
        match channel {
            Some(channel) if e.is_empty() => {
                Ok(CampaignInput { name, channel, starts_on, ends_on, planned_cost, owner_id })
            }
            _ => Err(e),
        }
    }
}

/// One ledger entry of money spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendInput {
    pub spent_on: Date,
    pub amount: Money,
    pub category: &'static str,
    pub note: Option<String>,
}

pub const SPEND_CATEGORIES: &[&str] = &["ads", "kol", "event", "vendor", "content", "other"];

impl SpendInput {
    pub fn parse(f: &Fields) -> Result<SpendInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, &["spent_on", "amount", "category", "note"]);
        let spent_on = date_field(f, &mut e, "spent_on");
        if spent_on.is_none() && !e.0.contains_key("spent_on") {
            e.add("spent_on", "is required");
        }
        let amount = money_field(f, &mut e, "amount");
        match amount {
            None if !e.0.contains_key("amount") => e.add("amount", "is required"),
            Some(m) if m.0 <= 0 => e.add("amount", "must be more than zero"),
            _ => {}
        }
        let category =
            f.text(&mut e, "category").and_then(|c| parse_choice(&mut e, "category", &c, SPEND_CATEGORIES, |x| x));
        if category.is_none() && !e.0.contains_key("category") {
            e.add("category", "is required");
        }
        let note = f.optional(&mut e, "note", 500);
        match (spent_on, amount, category) {
            (Some(spent_on), Some(amount), Some(category)) if e.is_empty() => {
                Ok(SpendInput { spent_on, amount, category, note })
            }
            _ => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_and_spend_inputs() {
        let f = Fields::from_pairs([
            ("name", "2026 云计算峰会"),
            ("channel", "trade_show"),
            ("starts_on", "2026-09-01"),
            ("ends_on", "2026-09-03"),
            ("planned_cost", "200,000"),
        ]);
        let c = CampaignInput::parse(&f).unwrap();
        assert_eq!(c.planned_cost, Money(20_000_000));
        let f = Fields::from_pairs([
            ("name", ""),
            ("channel", "radio"),
            ("starts_on", "2026-09-05"),
            ("ends_on", "2026-09-01"),
            ("planned_cost", "1.234"),
        ]);
        let e = CampaignInput::parse(&f).unwrap_err();
        for k in ["name", "channel", "ends_on", "planned_cost"] {
            assert!(e.get(k).is_some(), "{k}");
        }
        let s = SpendInput::parse(&Fields::from_pairs([
            ("spent_on", "2026-09-01"),
            ("amount", "12345.6"),
            ("category", "event"),
        ]))
        .unwrap();
        assert_eq!(s.amount, Money(1_234_560));
        let e = SpendInput::parse(&Fields::from_pairs([("amount", "-5"), ("category", "bribes")])).unwrap_err();
        assert!(e.get("spent_on").is_some() && e.get("amount").is_some() && e.get("category").is_some());
    }
}
