//! The playbook (SPEC P-1, E-3): every rule's numbers as one versioned TOML document.
//!
//! A document is checked against [`PARAMS`] — the schema naming each key's type, range,
//! rule id and source — before anything is stored, so a typo or an out-of-range value is an
//! error naming the key, never a silently ignored setting. Domain code reads rules only from
//! a parsed [`Playbook`], which the caller loads from the active version.

use crate::errors::FieldErrors;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default document shipped as version 1.
pub const DEFAULT_DOCUMENT: &str = include_str!("../playbook/default.toml");

/// The largest document accepted (a playbook is a page of settings, not a data store).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Int {
        min: i64,
        max: i64,
    },
    /// A number that may have a fraction; integers are accepted too.
    Float {
        min: f64,
        max: f64,
    },
    Text {
        max_chars: usize,
    },
    TextList {
        max_items: usize,
        max_chars: usize,
    },
    Choice(&'static [&'static str]),
}

/// One key of the playbook: its type and range, the SPEC rule it parameterises and the seed
/// document it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub key: &'static str,
    pub kind: Kind,
    pub rule: &'static str,
    pub seed: &'static str,
    pub unit: &'static str,
}

const fn int(
    key: &'static str,
    min: i64,
    max: i64,
    unit: &'static str,
    rule: &'static str,
    seed: &'static str,
) -> Param {
    Param { key, kind: Kind::Int { min, max }, rule, seed, unit }
}

const fn pct(key: &'static str, rule: &'static str, seed: &'static str) -> Param {
    Param { key, kind: Kind::Float { min: 0.0, max: 100.0 }, rule, seed, unit: "%" }
}

const STRUCTURES: &[&str] = &["lean", "functional", "matrix", "divisional"];
/// Where a graded lead goes: a sales owner, marketing nurture, or content touches only.
pub const ROUTES: &[&str] = &["sales", "nurture", "content"];

/// Every key of a valid playbook, in document order.
pub const PARAMS: &[Param] = &[
    pct("organisation.staffing_brand_pct", "O-5", "004 §4.2"),
    pct("organisation.staffing_acquisition_pct", "O-5", "004 §4.2"),
    pct("organisation.staffing_content_pct", "O-5", "004 §4.2"),
    pct("organisation.staffing_data_pct", "O-5", "004 §4.2"),
    int("organisation.talent_strategic", 0, 100, "", "O-5", "004 §4.2"),
    int("organisation.talent_executing", 0, 100, "", "O-5", "004 §4.2"),
    int("organisation.talent_innovative", 0, 100, "", "O-5", "004 §4.2"),
    Param {
        key: "organisation.structure_small",
        kind: Kind::Choice(STRUCTURES),
        rule: "O-5",
        seed: "001 §2",
        unit: "",
    },
    Param {
        key: "organisation.structure_medium",
        kind: Kind::Choice(STRUCTURES),
        rule: "O-5",
        seed: "001 §2",
        unit: "",
    },
    Param {
        key: "organisation.structure_large",
        kind: Kind::Choice(STRUCTURES),
        rule: "O-5",
        seed: "001 §2",
        unit: "",
    },
    pct("goals.tolerance_pct", "G-4", "004 §7.1"),
    pct("budget.core_pct", "B-1", "004 §4.1"),
    pct("budget.emerging_pct", "B-1", "004 §4.1"),
    pct("budget.brand_pct", "B-1", "004 §4.1"),
    int("budget.approval_threshold", 0, 1_000_000_000_000, "currency", "B-5", "004 §2.4"),
    int("budget.roi_pause_quarters", 1, 12, "quarters", "B-3", "004 §4.4"),
    int("decisions.key_impact_months", 1, 120, "months", "B-6", "004 §2.1"),
    pct("decisions.key_budget_share_pct", "B-6", "004 §2.1"),
    int("decisions.key_departments", 2, 50, "departments", "B-6", "004 §2.1"),
    int("decisions.priority_score_max", 2, 100, "points", "B-7", "004 §2.2"),
    pct("decisions.priority_top_pct", "B-7", "004 §2.2"),
    int("leads.bant.budget_max", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.authority_max", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.need_max", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.timeline_max", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.grade_a_min", 4, 40, "points", "L-3", "004 §3.1"),
    int("leads.bant.answers.budget.*", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.answers.authority.*", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.answers.need.*", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.answers.timeline.*", 1, 10, "points", "L-3", "004 §3.1"),
    int("leads.bant.grade_b_min", 4, 40, "points", "L-3", "004 §3.1"),
    int("leads.sla.first_response_working_hours", 1, 720, "working hours", "L-5", "004 §1.2"),
    int("leads.sla.follow_up_max_hours", 1, 2160, "hours", "L-5", "002"),
    int("leads.sla.scan_interval_seconds", 10, 3600, "seconds", "L-5", "—"),
    int("leads.handoff.interface_people_per_sales_team", 1, 10, "people", "L-4", "004 §5.1"),
    Param { key: "leads.routing.grade_a", kind: Kind::Choice(ROUTES), rule: "L-3, L-4", seed: "004 §3.1", unit: "" },
    Param { key: "leads.routing.grade_b", kind: Kind::Choice(ROUTES), rule: "L-3, L-4", seed: "004 §3.1", unit: "" },
    Param { key: "leads.routing.grade_c", kind: Kind::Choice(ROUTES), rule: "L-3, L-4", seed: "004 §3.1", unit: "" },
    Param {
        key: "leads.handoff.valid_lead_definition",
        kind: Kind::Text { max_chars: 4000 },
        rule: "L-7",
        seed: "004 §5.4",
        unit: "",
    },
    Param {
        key: "leads.handoff.reject_reasons",
        kind: Kind::TextList { max_items: 50, max_chars: 40 },
        rule: "L-7",
        seed: "004 §3.4",
        unit: "",
    },
    pct("leads.conversion.industry_rate_low_pct", "L-9", "004 §3.3"),
    pct("leads.conversion.industry_rate_high_pct", "L-9", "004 §3.3"),
    int("leads.conversion.sales_cycle_smb_months", 1, 60, "months", "L-8", "004 §3.3"),
    int("leads.conversion.sales_cycle_enterprise_months", 1, 60, "months", "L-8", "004 §3.3"),
    int("leads.conversion.top_channels", 1, 20, "channels", "L-9", "004 §3.3"),
    Param {
        key: "leads.conversion.lost_reasons",
        kind: Kind::TextList { max_items: 50, max_chars: 40 },
        rule: "L-8",
        seed: "002",
        unit: "",
    },
    int("leads.automation.trial_no_signup_days", 1, 365, "days", "L-10", "001 §1(五)"),
    int("leads.automation.dormant_days", 1, 3650, "days", "L-10", "SPEC L-10"),
    int("collaboration.warmup_months", 0, 24, "months", "K-2", "004 §5.2"),
    int("collaboration.iron_triangle_every_days", 1, 90, "days", "K-3", "004 §1.2"),
    int("collaboration.meeting_agenda_days_before", 0, 30, "days", "K-3", "004 §5.4"),
    int("collaboration.meeting_max_hours", 1, 24, "hours", "K-3", "004 §5.4"),
    int("collaboration.meeting_actions_within_days", 0, 30, "days", "K-3", "004 §5.4"),
    int("collaboration.conflict_target_days", 1, 365, "days", "K-4", "004 §5.3"),
    int("collaboration.conflict_baseline_days", 1, 365, "days", "K-4", "004 §5.3"),
    int("collaboration.demand_brief_min_pain_points", 1, 50, "pain points", "K-5", "004 §5.2"),
    int("collaboration.demand_brief_max_pain_points", 1, 50, "pain points", "K-5", "004 §5.2"),
    int("collaboration.user_research_min_per_month", 0, 100, "sessions", "K-5", "003 §1.2"),
    int("compliance.legal_review_working_days", 1, 60, "working days", "R-2", "003 §1.3"),
    int("compliance.fast_track_working_hours", 1, 240, "working hours", "R-2", "003 §1.3"),
    Param {
        key: "compliance.absolute_terms",
        kind: Kind::TextList { max_items: 500, max_chars: 40 },
        rule: "R-1",
        seed: "002",
        unit: "",
    },
    pct("appraisal.quantitative_pct", "H-3", "004 §6.2"),
    pct("appraisal.qualitative_pct", "H-3", "004 §6.2"),
    pct("appraisal.strategic_tasks_min_pct", "H-3, G-5", "004 §6.4"),
    pct("appraisal.converted_signed_amount_pct", "H-3", "004 §5.1"),
    pct("incentives.project_bonus_pct", "H-4", "004 §6.1"),
    Param {
        key: "customers.rfm.order",
        kind: Kind::TextList { max_items: 20, max_chars: 40 },
        rule: "C-2",
        seed: "001 §1(四)",
        unit: "",
    },
    Param {
        key: "customers.rfm.rules.*",
        kind: Kind::Text { max_chars: 100 },
        rule: "C-2",
        seed: "001 §1(四)",
        unit: "",
    },
    Param {
        key: "customers.rfm.actions.*",
        kind: Kind::Text { max_chars: 200 },
        rule: "C-2",
        seed: "001 §1(四)",
        unit: "",
    },
    int("customers.rfm.moves_since_days", 1, 366, "days", "C-2", "SPEC C-2"),
    Param {
        key: "customers.clv.unit",
        kind: Kind::Choice(&crate::clv::Unit::NAMES),
        rule: "C-3",
        seed: "SPEC C-3",
        unit: "",
    },
    int("customers.clv.prediction_periods", 1, 3660, "units", "C-3", "SPEC C-3"),
    int("customers.clv.horizon_months", 1, 120, "months", "C-3", "001 §1(四)"),
    pct("customers.clv.annual_discount_pct", "C-3", "SPEC C-3"),
    Param {
        key: "customers.clv.max_frequency_spend_correlation",
        kind: Kind::Float { min: 0.0, max: 1.0 },
        rule: "C-3",
        seed: "SPEC C-3",
        unit: "",
    },
    int("customers.referral.qualify_days", 1, 3650, "days", "C-4", "001 §1(四)"),
    int("customers.referral.min_order_yuan", 0, 100_000_000, "currency", "C-4", "001 §1(四)"),
    int("customers.referral.referrer_reward_pct", 0, 100, "%", "C-4", "001 §1(四)"),
    int("customers.referral.max_reward_yuan", 0, 100_000_000, "currency", "C-4", "001 §1(四)"),
    int("customers.referral.referred_reward_yuan", 0, 100_000_000, "currency", "C-4", "001 §1(四)"),
    pct("experiments.significance_pct", "C-6", "002"),
    pct("experiments.power_pct", "C-6", "002"),
    int("evolution.small_change_days", 1, 90, "days", "E-1", "003 §1.3"),
    int("evolution.large_change_months", 1, 24, "months", "E-1", "003 §1.3"),
];

/// The schema entry for a key. A key ending in `.*` stands for a table of free-named
/// entries (e.g. `leads.bant.answers.budget.approved`): any single-segment name matches.
pub fn param(key: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.key == key).or_else(|| {
        PARAMS.iter().find(|p| p.key.strip_suffix('*').and_then(|prefix| key.strip_prefix(prefix)).is_some_and(is_name))
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_wildcard(p: &Param) -> bool {
    p.key.ends_with(".*")
}

/// The typed view of a valid document, read by domain rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    pub organisation: Organisation,
    pub goals: Goals,
    pub budget: Budget,
    pub decisions: Decisions,
    pub leads: Leads,
    pub collaboration: Collaboration,
    pub compliance: Compliance,
    pub appraisal: Appraisal,
    pub incentives: Incentives,
    pub evolution: Evolution,
    pub customers: Customers,
    pub experiments: Experiments,
}

/// C-6 test settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiments {
    pub significance_pct: f64,
    pub power_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customers {
    pub rfm: Rfm,
    pub clv: Clv,
    pub referral: Referral,
}

/// C-4 referral rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub qualify_days: i64,
    pub min_order_yuan: i64,
    pub referrer_reward_pct: i64,
    pub max_reward_yuan: i64,
    pub referred_reward_yuan: i64,
}

/// C-3 lifetime-value settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clv {
    pub unit: String,
    pub prediction_periods: i64,
    pub horizon_months: i64,
    pub annual_discount_pct: f64,
    pub max_frequency_spend_correlation: f64,
}

/// C-2 segments: names in the order they are tried, each one's rule and action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rfm {
    pub order: Vec<String>,
    pub moves_since_days: i64,
    pub rules: BTreeMap<String, String>,
    pub actions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organisation {
    pub staffing_brand_pct: f64,
    pub staffing_acquisition_pct: f64,
    pub staffing_content_pct: f64,
    pub staffing_data_pct: f64,
    pub talent_strategic: i64,
    pub talent_executing: i64,
    pub talent_innovative: i64,
    pub structure_small: String,
    pub structure_medium: String,
    pub structure_large: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goals {
    pub tolerance_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub core_pct: f64,
    pub emerging_pct: f64,
    pub brand_pct: f64,
    /// In major units of the company currency (yuan); see [`Budget::approval_threshold_minor`].
    pub approval_threshold: i64,
    pub roi_pause_quarters: i64,
}

impl Budget {
    /// B-5's threshold in minor units (fen), the unit every amount is stored in.
    pub fn approval_threshold_minor(&self) -> crate::money::Money {
        crate::money::Money::from_major(self.approval_threshold).unwrap_or(crate::money::Money(i64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decisions {
    pub key_impact_months: i64,
    pub key_budget_share_pct: f64,
    pub key_departments: i64,
    pub priority_score_max: i64,
    pub priority_top_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leads {
    pub bant: Bant,
    pub routing: Routing,
    pub sla: Sla,
    pub handoff: Handoff,
    pub conversion: Conversion,
    pub automation: Automation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bant {
    pub budget_max: i64,
    pub authority_max: i64,
    pub need_max: i64,
    pub timeline_max: i64,
    pub grade_a_min: i64,
    pub grade_b_min: i64,
    pub answers: BantAnswers,
}

/// Answer code → points, per BANT part (L-3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BantAnswers {
    pub budget: BTreeMap<String, i64>,
    pub authority: BTreeMap<String, i64>,
    pub need: BTreeMap<String, i64>,
    pub timeline: BTreeMap<String, i64>,
}

/// Where each grade goes (L-3, L-4): `sales`, `nurture` or `content`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub grade_a: String,
    pub grade_b: String,
    pub grade_c: String,
}

impl Bant {
    /// The highest possible total (every part at its maximum).
    pub fn max_total(&self) -> i64 {
        self.budget_max + self.authority_max + self.need_max + self.timeline_max
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sla {
    pub first_response_working_hours: i64,
    pub follow_up_max_hours: i64,
    pub scan_interval_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub interface_people_per_sales_team: i64,
    pub valid_lead_definition: String,
    pub reject_reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversion {
    pub industry_rate_low_pct: f64,
    pub industry_rate_high_pct: f64,
    pub sales_cycle_smb_months: i64,
    pub sales_cycle_enterprise_months: i64,
    pub top_channels: i64,
    pub lost_reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Automation {
    pub trial_no_signup_days: i64,
    pub dormant_days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collaboration {
    pub warmup_months: i64,
    pub iron_triangle_every_days: i64,
    pub meeting_agenda_days_before: i64,
    pub meeting_max_hours: i64,
    pub meeting_actions_within_days: i64,
    pub conflict_target_days: i64,
    pub conflict_baseline_days: i64,
    pub demand_brief_min_pain_points: i64,
    pub demand_brief_max_pain_points: i64,
    pub user_research_min_per_month: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compliance {
    pub legal_review_working_days: i64,
    pub fast_track_working_hours: i64,
    pub absolute_terms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appraisal {
    pub quantitative_pct: f64,
    pub qualitative_pct: f64,
    pub strategic_tasks_min_pct: f64,
    pub converted_signed_amount_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incentives {
    pub project_bonus_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evolution {
    pub small_change_days: i64,
    pub large_change_months: i64,
}

/// The default document cut at each table header, as (top-level section, text) in order.
/// The shipped document cut at each table header: (dotted table path, its text).
fn default_blocks() -> Vec<(&'static str, &'static str)> {
    let starts: Vec<usize> = DEFAULT_DOCUMENT
        .match_indices("\n[")
        .map(|(i, _)| i + 1)
        .chain(DEFAULT_DOCUMENT.starts_with('[').then_some(0))
        .collect();
    let mut out = Vec::with_capacity(starts.len());
    for (n, start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(DEFAULT_DOCUMENT.len());
        let block = &DEFAULT_DOCUMENT[*start..end];
        let path = block[1..].split(']').next().unwrap_or("");
        out.push((path, block));
    }
    out
}

/// The field name used for problems with the document as a whole (syntax, size).
pub const DOCUMENT_FIELD: &str = "document";

/// Flattens a TOML table to `dotted.key → value` for every leaf (arrays are leaves).
pub fn leaves(table: &toml::Table) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in t {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", table, &mut out);
    out
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

fn check_value(p: &Param, v: &toml::Value, e: &mut FieldErrors) {
    let key = p.key;
    match (p.kind, v) {
        (Kind::Int { min, max }, toml::Value::Integer(i)) => {
            if *i < min || *i > max {
                e.add(key, format!("must be between {min} and {max}, got {i}"));
            }
        }
        (Kind::Int { .. }, other) => e.add(key, format!("must be an integer, got {}", type_name(other))),
        (Kind::Float { min, max }, toml::Value::Integer(_) | toml::Value::Float(_)) => {
            let x = match v {
                toml::Value::Integer(i) => *i as f64,
                toml::Value::Float(f) => *f,
                _ => unreachable!("matched above"),
            };
            if !x.is_finite() || x < min || x > max {
                e.add(key, format!("must be between {min} and {max}, got {x}"));
            }
        }
        (Kind::Float { .. }, other) => e.add(key, format!("must be a number, got {}", type_name(other))),
        (Kind::Text { max_chars }, toml::Value::String(s)) => {
            if s.trim().is_empty() {
                e.add(key, "must not be empty");
            } else if s.chars().count() > max_chars {
                e.add(key, format!("must be at most {max_chars} characters"));
            }
        }
        (Kind::Text { .. }, other) => e.add(key, format!("must be a string, got {}", type_name(other))),
        (Kind::TextList { max_items, max_chars }, toml::Value::Array(items)) => {
            if items.len() > max_items {
                e.add(key, format!("must have at most {max_items} items"));
            }
            for (i, item) in items.iter().enumerate() {
                match item {
                    toml::Value::String(s) if !s.trim().is_empty() && s.chars().count() <= max_chars => {}
                    toml::Value::String(_) => {
                        e.add(format!("{key}[{i}]"), format!("must be 1 to {max_chars} characters"));
                    }
                    other => e.add(format!("{key}[{i}]"), format!("must be a string, got {}", type_name(other))),
                }
            }
        }
        (Kind::TextList { .. }, other) => e.add(key, format!("must be a list of strings, got {}", type_name(other))),
        (Kind::Choice(choices), toml::Value::String(s)) => {
            if !choices.contains(&s.as_str()) {
                e.add(key, format!("unknown value `{s}`; expected one of: {}", choices.join(", ")));
            }
        }
        (Kind::Choice(_), other) => e.add(key, format!("must be a string, got {}", type_name(other))),
    }
}

/// Rules that tie several keys together; each error names the key to change.
fn cross_checks(pb: &Playbook, e: &mut FieldErrors) {
    let o = &pb.organisation;
    let staffing = o.staffing_brand_pct + o.staffing_acquisition_pct + o.staffing_content_pct + o.staffing_data_pct;
    if (staffing - 100.0).abs() > 1e-9 {
        e.add(
            "organisation.staffing_data_pct",
            format!("the four staffing shares must add up to 100, they add up to {staffing}"),
        );
    }
    if o.talent_strategic + o.talent_executing + o.talent_innovative == 0 {
        e.add("organisation.talent_innovative", "the talent mix needs at least one non-zero part");
    }
    let b = &pb.budget;
    let split = b.core_pct + b.emerging_pct + b.brand_pct;
    if (split - 100.0).abs() > 1e-9 {
        e.add("budget.brand_pct", format!("the three budget buckets must add up to 100, they add up to {split}"));
    }
    let bant = &pb.leads.bant;
    let max_total = bant.max_total();
    if bant.grade_a_min > max_total {
        e.add("leads.bant.grade_a_min", format!("must be at most the highest possible total, {max_total}"));
    }
    for (part, answers, max) in [
        ("budget", &bant.answers.budget, bant.budget_max),
        ("authority", &bant.answers.authority, bant.authority_max),
        ("need", &bant.answers.need, bant.need_max),
        ("timeline", &bant.answers.timeline, bant.timeline_max),
    ] {
        for (answer, points) in answers {
            if *points > max {
                e.add(format!("leads.bant.answers.{part}.{answer}"), format!("must be at most {part}_max ({max})"));
            }
        }
    }
    if bant.grade_b_min >= bant.grade_a_min {
        e.add("leads.bant.grade_b_min", format!("must be below grade_a_min ({})", bant.grade_a_min));
    }
    let c = &pb.leads.conversion;
    let k = &pb.collaboration;
    let pairs = [
        (
            "leads.conversion.industry_rate_low_pct",
            c.industry_rate_low_pct,
            "industry_rate_high_pct",
            c.industry_rate_high_pct,
        ),
        (
            "leads.conversion.sales_cycle_smb_months",
            c.sales_cycle_smb_months as f64,
            "sales_cycle_enterprise_months",
            c.sales_cycle_enterprise_months as f64,
        ),
        (
            "collaboration.demand_brief_min_pain_points",
            k.demand_brief_min_pain_points as f64,
            "demand_brief_max_pain_points",
            k.demand_brief_max_pain_points as f64,
        ),
        (
            "collaboration.conflict_target_days",
            k.conflict_target_days as f64,
            "conflict_baseline_days",
            k.conflict_baseline_days as f64,
        ),
    ];
    for (key, low, other, high) in pairs {
        if low > high {
            e.add(key, format!("must not be above {other}"));
        }
    }
    let a = &pb.appraisal;
    if (a.quantitative_pct + a.qualitative_pct - 100.0).abs() > 1e-9 {
        e.add("appraisal.qualitative_pct", "quantitative_pct and qualitative_pct must add up to 100");
    }
    if pb.compliance.fast_track_working_hours > pb.compliance.legal_review_working_days * 24 {
        e.add("compliance.fast_track_working_hours", "the fast track must not be slower than the standard review");
    }
    if let Err(errors) = crate::rfm::segments(pb) {
        e.merge(errors);
    }
}

impl Playbook {
    /// Validates a document completely: syntax, unknown keys, types, ranges, missing keys and
    /// the rules between keys. On success the typed playbook; on failure every problem, each
    /// under the dotted key it concerns (or `document` for syntax).
    pub fn parse(text: &str) -> Result<Playbook, FieldErrors> {
        let mut e = FieldErrors::new();
        if text.len() > MAX_DOCUMENT_BYTES {
            e.add(DOCUMENT_FIELD, format!("is larger than {} KiB", MAX_DOCUMENT_BYTES / 1024));
            return Err(e);
        }
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(err) => {
                let msg = err.message().to_string();
                let at = err.span().map(|s| line_col(text, s.start));
                let msg = match at {
                    Some((line, col)) => format!("is not valid TOML at line {line}, column {col}: {msg}"),
                    None => format!("is not valid TOML: {msg}"),
                };
                e.add(DOCUMENT_FIELD, msg);
                return Err(e);
            }
        };
        let found = leaves(&table);
        for (key, value) in &found {
            match param(key) {
                Some(p) => check_value(p, value, &mut e),
                None => e.add(key.clone(), "unknown key"),
            }
        }
        for p in PARAMS {
            if is_wildcard(p) {
                let table = p.key.trim_end_matches(".*");
                if !found.keys().any(|k| param(k).is_some_and(|q| q.key == p.key)) {
                    e.add(table, "needs at least one entry");
                }
            } else if !found.contains_key(p.key) {
                e.add(p.key, "is missing");
            }
        }
        if !e.is_empty() {
            return Err(e);
        }
        // Types were checked above; integers in float positions are widened by serde.
        let pb: Playbook = match toml::Value::Table(table).try_into() {
            Ok(pb) => pb,
            Err(err) => {
                e.add(DOCUMENT_FIELD, err.to_string());
                return Err(e);
            }
        };
        cross_checks(&pb, &mut e);
        e.into_result(pb)
    }

    /// A stored document written before MarketOps added a section (e.g. `[customers]` for
    /// C-2, `[customers.clv]` for C-3): the same document with the shipped defaults of every
    /// table it lacks appended, if that makes it valid. `None` when it is valid already, or
    /// when something else is wrong with it (a person has to fix that).
    pub fn upgrade(text: &str) -> Option<String> {
        let errors = Playbook::parse(text).err()?;
        let table: toml::Table = toml::from_str(text).ok()?;
        let has = |path: &str| {
            let mut at = &table;
            for part in path.split('.') {
                match at.get(part) {
                    Some(toml::Value::Table(t)) => at = t,
                    _ => return false,
                }
            }
            true
        };
        let missing: Vec<(&str, &str)> = default_blocks().into_iter().filter(|(path, _)| !has(path)).collect();
        let explained = |key: &str| missing.iter().any(|(path, _)| key.starts_with(&format!("{path}.")));
        if missing.is_empty() || errors.0.keys().any(|k| !explained(k)) {
            return None;
        }
        let mut out = text.trim_end().to_string();
        out.push('\n');
        for (_, block) in missing {
            out.push('\n');
            out.push_str(block.trim_end());
            out.push('\n');
        }
        Playbook::parse(&out).is_ok().then_some(out)
    }

    pub fn default_playbook() -> Playbook {
        match Playbook::parse(DEFAULT_DOCUMENT) {
            Ok(pb) => pb,
            Err(e) => panic!("the shipped default playbook is invalid: {e}"),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Renders a leaf value the way it is written in TOML.
pub fn render_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One difference between two documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Key-by-key differences from `a` to `b` (E-3). Comments and layout are not differences.
pub fn diff(a: &str, b: &str) -> Result<Vec<Change>, FieldErrors> {
    let parse = |t: &str| -> Result<BTreeMap<String, toml::Value>, FieldErrors> {
        toml::from_str::<toml::Table>(t)
            .map(|t| leaves(&t))
            .map_err(|err| FieldErrors::single(DOCUMENT_FIELD, format!("is not valid TOML: {}", err.message())))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort_by_key(|k| (PARAMS.iter().position(|p| p.key == k.as_str()).unwrap_or(usize::MAX), k.to_string()));
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (old, new) = (a.get(k), b.get(k));
        if old != new {
            out.push(Change { key: k.clone(), old: old.map(render_value), new: new.map(render_value) });
        }
    }
    Ok(out)
}

/// One value of a document with the schema entry that describes it.
#[derive(Debug, Clone)]
pub struct RuleValue {
    pub param: &'static Param,
    /// The concrete key (differs from `param.key` for entries of a `.*` table).
    pub key: String,
    pub value: String,
}

/// The current value of every key of a valid document, in schema order, for display;
/// entries of a `.*` table follow in descending value, then name.
pub fn values(text: &str) -> Vec<RuleValue> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let found = leaves(&table);
    let mut out = Vec::new();
    for p in PARAMS {
        if is_wildcard(p) {
            let mut entries: Vec<(&String, &toml::Value)> =
                found.iter().filter(|(k, _)| param(k).is_some_and(|q| q.key == p.key)).collect();
            entries.sort_by(|a, b| {
                let n = |v: &toml::Value| v.as_integer().unwrap_or(0);
                n(b.1).cmp(&n(a.1)).then(a.0.cmp(b.0))
            });
            out.extend(entries.into_iter().map(|(k, v)| RuleValue {
                param: p,
                key: k.clone(),
                value: render_value(v),
            }));
        } else if let Some(v) = found.get(p.key) {
            out.push(RuleValue { param: p, key: p.key.to_string(), value: render_value(v) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C-2 (P-1): a document stored before the `[customers]` section existed gets the
    /// shipped section appended and parses; a document wrong in another way is left alone.
    #[test]
    fn c2_documents_from_before_the_customers_section_are_upgraded() {
        let cut = DEFAULT_DOCUMENT.find("\n[customers").unwrap();
        let old = &DEFAULT_DOCUMENT[..cut];
        let e = Playbook::parse(old).unwrap_err();
        assert!(e.get("customers.rfm.order").is_some(), "{e}");
        let up = Playbook::upgrade(old).expect("upgraded");
        assert!(up.starts_with(old.trim_end()));
        assert_eq!(Playbook::parse(&up).unwrap(), Playbook::default_playbook());
        assert_eq!(Playbook::upgrade(DEFAULT_DOCUMENT), None, "already valid");
        let broken = old.replace("tolerance_pct = 10", "tolerance_pct = 900");
        assert_eq!(Playbook::upgrade(&broken), None, "an out-of-range value needs a person");
        // C-3: a document with `[customers.rfm]` but without `[customers.clv]`.
        let cut = DEFAULT_DOCUMENT.find("\n[customers.clv]").unwrap();
        let before_clv = &DEFAULT_DOCUMENT[..cut];
        assert!(Playbook::parse(before_clv).unwrap_err().get("customers.clv.unit").is_some());
        let up = Playbook::upgrade(before_clv).expect("upgraded");
        assert_eq!(Playbook::parse(&up).unwrap(), Playbook::default_playbook());
    }

    /// P-1: the shipped document holds every default named in the SPEC, each key documented.
    #[test]
    fn p1_default_document_is_valid_and_complete() {
        let pb = Playbook::default_playbook();
        assert_eq!((pb.leads.bant.grade_a_min, pb.leads.bant.grade_b_min), (10, 7));
        assert_eq!(pb.leads.bant.max_total(), 14);
        assert_eq!(pb.leads.sla.first_response_working_hours, 6);
        assert_eq!(pb.leads.sla.follow_up_max_hours, 72);
        assert_eq!((pb.budget.core_pct, pb.budget.emerging_pct, pb.budget.brand_pct), (50.0, 30.0, 20.0));
        assert_eq!(pb.budget.approval_threshold_minor(), crate::money::Money(5_000_000));
        assert_eq!(pb.goals.tolerance_pct, 10.0);
        assert_eq!(pb.budget.roi_pause_quarters, 2);
        assert_eq!(
            (
                pb.collaboration.meeting_agenda_days_before,
                pb.collaboration.meeting_max_hours,
                pb.collaboration.meeting_actions_within_days
            ),
            (3, 2, 1)
        );
        assert_eq!(pb.compliance.legal_review_working_days, 3);
        assert_eq!(pb.appraisal.quantitative_pct, 60.0);
        assert_eq!(pb.organisation.staffing_acquisition_pct, 40.0);
        assert!(pb.compliance.absolute_terms.iter().any(|t| t == "全网最低价"));
        // Every schema key appears in the document and has a source.
        let listed = values(DEFAULT_DOCUMENT);
        for p in PARAMS {
            assert!(listed.iter().any(|v| v.param.key == p.key), "{} not in the document", p.key);
        }
        for p in PARAMS {
            assert!(!p.seed.is_empty() && !p.rule.is_empty(), "{}", p.key);
        }
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(DEFAULT_DOCUMENT.contains(replace), "{replace}");
        DEFAULT_DOCUMENT.replacen(replace, by, 1)
    }

    /// P-1: unknown key, wrong type and out-of-range value are errors naming the key.
    #[test]
    fn p1_bad_documents_name_the_key() {
        let e = Playbook::parse(&with("grade_a_min = 10", "grade_a_min = 10\ngrade_z_min = 3")).unwrap_err();
        assert_eq!(e.get("leads.bant.grade_z_min"), Some("unknown key"));

        let e = Playbook::parse(&with("grade_a_min = 10", "grade_a_min = \"ten\"")).unwrap_err();
        assert_eq!(e.get("leads.bant.grade_a_min"), Some("must be an integer, got a string"));

        let e = Playbook::parse(&with("need_max = 5", "need_max = 50")).unwrap_err();
        assert!(e.get("leads.bant.need_max").unwrap().contains("between 1 and 10"));

        let e = Playbook::parse(&with("tolerance_pct = 10", "")).unwrap_err();
        assert_eq!(e.get("goals.tolerance_pct"), Some("is missing"));

        let e = Playbook::parse("[leads\nbant = 1").unwrap_err();
        assert!(e.get("document").unwrap().contains("line 1"), "{e}");

        let e = Playbook::parse(&with("structure_small = \"lean\"", "structure_small = \"flat\"")).unwrap_err();
        assert!(e.get("organisation.structure_small").unwrap().contains("lean, functional"));

        let e = Playbook::parse(&with("absolute_terms = [\"最\"", "absolute_terms = [3")).unwrap_err();
        assert!(e.get("compliance.absolute_terms[0]").is_some(), "{e}");
    }

    /// P-1 / B-1 / L-3: rules between keys are checked too.
    #[test]
    fn p1_cross_key_rules() {
        let e = Playbook::parse(&with("core_pct = 50", "core_pct = 60")).unwrap_err();
        assert!(e.get("budget.brand_pct").unwrap().contains("110"));
        let e = Playbook::parse(&with("grade_b_min = 7", "grade_b_min = 10")).unwrap_err();
        assert!(e.get("leads.bant.grade_b_min").is_some());
        let e = Playbook::parse(&with("grade_a_min = 10", "grade_a_min = 15")).unwrap_err();
        assert!(e.get("leads.bant.grade_a_min").unwrap().contains("14"));
        // A fractional percentage is fine where a number is expected.
        assert!(Playbook::parse(&with("project_bonus_pct = 2", "project_bonus_pct = 2.5")).is_ok());
    }

    /// E-3: the diff lists changed, added and removed keys, ignoring comments.
    #[test]
    fn e3_diff_by_key() {
        let b = with("grade_a_min = 10", "grade_a_min = 11").replace("# [G-4]", "# edited comment");
        let d = diff(DEFAULT_DOCUMENT, &b).unwrap();
        assert_eq!(
            d,
            vec![Change { key: "leads.bant.grade_a_min".into(), old: Some("10".into()), new: Some("11".into()) }]
        );
        assert!(diff(DEFAULT_DOCUMENT, DEFAULT_DOCUMENT).unwrap().is_empty());
        let d = diff("a = 1", "b = \"x\"").unwrap();
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn oversized_document_is_refused() {
        let big = format!("{DEFAULT_DOCUMENT}\n#{}", "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(Playbook::parse(&big).unwrap_err().get("document").unwrap().contains("KiB"));
    }
}
