//! The company profile (SPEC O-1): what kind of business this is, where it stands, and the
//! working week every "working hours/days" rule counts in.

use crate::calendar::WorkingHours;
use crate::errors::Source as _;
use crate::errors::{FieldErrors, Fields, parse_choice};
use jiff::civil::Weekday;

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|x| x.code() == s)
            }
        }
    };
}
pub(crate) use code_enum;

code_enum!(
    /// O-1 business types; they drive the GTM ownership advice (O-3).
    BusinessType {
        /// Short decision chain, brand- and traffic-driven (FMCG, beauty, 3C, consumer apps).
        ConsumerBrand => "consumer_brand",
        /// Complex product, long lifecycle, data-driven (SaaS, AI tools, platforms).
        ComplexProduct => "complex_product",
        /// Complex B2B or global: many industries, markets, product lines.
        ComplexB2b => "complex_b2b",
    }
);

code_enum!(
    /// O-1 company stage.
    Stage { Startup => "startup", Growth => "growth", Mature => "mature" }
);

code_enum!(
    /// O-1 company size; drives the structure template (O-5).
    Size { Small => "small", Medium => "medium", Large => "large" }
);

/// Currencies the money formatting knows. Amounts are always minor units (fen, cents).
pub const CURRENCIES: &[&str] = &["CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyProfile {
    pub name: String,
    pub industry: Option<String>,
    pub business_type: BusinessType,
    pub stage: Stage,
    pub size: Size,
    pub currency: String,
    pub time_zone: String,
    /// Weekdays that are not working days unless the calendar makes them make-up days.
    pub weekend_days: Vec<Weekday>,
    pub working_hours: WorkingHours,
}

pub const COMPANY_FIELDS: &[&str] =
    &["name", "industry", "business_type", "stage", "size", "currency", "time_zone", "weekend_days", "working_hours"];

pub fn weekday_code(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

pub const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// Profile values for a mainland-China company, the starting point of a new profile.
pub fn default_fields() -> Fields {
    Fields::from_pairs([
        ("business_type", "complex_b2b"),
        ("stage", "growth"),
        ("size", "medium"),
        ("currency", "CNY"),
        ("time_zone", "Asia/Shanghai"),
        ("weekend_days", "sat,sun"),
        ("working_hours", "09:00-12:00,13:00-18:00"),
    ])
}

impl CompanyProfile {
    /// Parses a whole profile: every field is required except `industry`.
    pub fn parse(f: &Fields) -> Result<CompanyProfile, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, COMPANY_FIELDS);
        let name = f.required(&mut e, "name", 120);
        let industry = f.optional(&mut e, "industry", 120);
        let business_type = f.choice(&mut e, "business_type", BusinessType::ALL, BusinessType::code);
        let stage = f.choice(&mut e, "stage", Stage::ALL, Stage::code);
        let size = f.choice(&mut e, "size", Size::ALL, Size::code);
        let currency = f.choice(&mut e, "currency", CURRENCIES, |c| c).map(str::to_string);
        let time_zone = match f.text(&mut e, "time_zone") {
            None => {
                e.add("time_zone", "is required");
                None
            }
            Some(tz) => match jiff::tz::TimeZone::get(&tz) {
                Ok(_) => Some(tz),
                Err(_) => {
                    e.add("time_zone", format!("unknown time zone `{tz}`; use an IANA name such as Asia/Shanghai"));
                    None
                }
            },
        };
        let weekend_days = match f.list(&mut e, "weekend_days") {
            None => Some(Vec::new()),
            Some(items) => {
                let mut days = Vec::new();
                for item in items {
                    let code = item.to_lowercase();
                    let Some(d) = parse_choice(&mut e, "weekend_days", &code, &WEEKDAYS, weekday_code) else {
                        break;
                    };
                    if !days.contains(&d) {
                        days.push(d);
                    }
                }
                if days.len() == 7 {
                    e.add("weekend_days", "at least one day of the week must be a working day");
                }
                days.sort_by_key(|d| d.to_monday_zero_offset());
                Some(days)
            }
        };
        let working_hours = match f.text(&mut e, "working_hours") {
            None => {
                if !e.0.contains_key("working_hours") {
                    e.add("working_hours", "is required, e.g. 09:00-12:00,13:00-18:00");
                }
                None
            }
            Some(text) => match WorkingHours::parse(&text) {
                Ok(w) => Some(w),
                Err(msg) => {
                    e.add("working_hours", msg);
                    None
                }
            },
        };
        match (business_type, stage, size, currency, time_zone, weekend_days, working_hours) {
            (
                Some(business_type),
                Some(stage),
                Some(size),
                Some(currency),
                Some(time_zone),
                Some(weekend_days),
                Some(working_hours),
            ) if e.is_empty() => Ok(CompanyProfile {
                name,
                industry,
                business_type,
                stage,
                size,
                currency,
                time_zone,
                weekend_days,
                working_hours,
            }),
            _ => Err(e),
        }
    }

    /// The profile as JSON, the shape the API returns and the audit log records.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.to_fields().0.into_iter().collect())
    }

    /// The profile as input fields (for an edit form or a partial update).
    pub fn to_fields(&self) -> Fields {
        let mut f = Fields::default();
        f.set("name", self.name.clone());
        if let Some(i) = &self.industry {
            f.set("industry", i.clone());
        }
        f.set("business_type", self.business_type.code());
        f.set("stage", self.stage.code());
        f.set("size", self.size.code());
        f.set("currency", self.currency.clone());
        f.set("time_zone", self.time_zone.clone());
        f.set("weekend_days", self.weekend_codes());
        f.set("working_hours", self.working_hours.to_string());
        f
    }

    pub fn weekend_codes(&self) -> String {
        self.weekend_days.iter().map(|d| weekday_code(*d)).collect::<Vec<_>>().join(",")
    }

    /// Applies a partial update: fields present in `patch` replace the current ones.
    pub fn patched(&self, patch: &Fields) -> Result<CompanyProfile, FieldErrors> {
        let mut merged = self.to_fields();
        for (k, v) in &patch.0 {
            merged.0.insert(k.clone(), v.clone());
        }
        CompanyProfile::parse(&merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Fields {
        Fields::from_pairs([
            ("name", "云启科技"),
            ("business_type", "complex_b2b"),
            ("stage", "growth"),
            ("size", "medium"),
            ("currency", "CNY"),
            ("time_zone", "Asia/Shanghai"),
            ("weekend_days", "sat, sun"),
            ("working_hours", "09:00-12:00,13:00-18:00"),
        ])
    }

    /// O-1: a complete profile parses.
    #[test]
    fn o1_profile_parses() {
        let p = CompanyProfile::parse(&good()).unwrap();
        assert_eq!(p.business_type, BusinessType::ComplexB2b);
        assert_eq!(p.weekend_days, vec![Weekday::Saturday, Weekday::Sunday]);
        assert_eq!(p.working_hours.minutes_per_day(), 8 * 60);
    }

    /// O-1: bad values are reported per field, all at once.
    #[test]
    fn o1_bad_values_name_each_field() {
        let mut f = good();
        f.set("stage", "teenager");
        f.set("time_zone", "Mars/Olympus");
        f.set("size", serde_json::json!(5));
        f.set("colour", "red");
        f.set("working_hours", "18:00-09:00");
        let e = CompanyProfile::parse(&f).unwrap_err();
        assert!(e.get("stage").unwrap().contains("startup, growth, mature"), "{e}");
        assert!(e.get("time_zone").unwrap().contains("Mars/Olympus"));
        assert_eq!(e.get("size"), Some("must be a string"));
        assert_eq!(e.get("colour"), Some("unknown field"));
        assert!(e.get("working_hours").is_some());
    }

    #[test]
    fn patch_keeps_other_fields() {
        let p = CompanyProfile::parse(&good()).unwrap();
        let q = p.patched(&Fields::from_pairs([("size", "large")])).unwrap();
        assert_eq!(q.size, Size::Large);
        assert_eq!(q.name, p.name);
        let e = p.patched(&Fields::from_pairs([("currency", "XYZ")])).unwrap_err();
        assert!(e.get("currency").is_some());
    }
}
