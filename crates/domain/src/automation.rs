//! L-10: automation rules — "when EVENT and CONDITION, after DELAY (working or calendar
//! time), do ACTION" — as data, with the decisions a rule makes as pure functions.

use crate::calendar::WorkingCalendar;
use crate::company::code_enum;
use crate::errors::Source as _;
use crate::errors::{FieldErrors, Fields, parse_choice};
use crate::playbook::Playbook;
use serde::{Deserialize, Serialize};

code_enum!(
    /// What a rule reacts to.
    Trigger {
        LeadCreated => "lead_created",
        GradeChanged => "grade_changed",
        StageChanged => "stage_changed",
        FormSubmitted => "form_submitted",
        TrialStarted => "trial_started",
        TrialFinished => "trial_finished",
        /// No activity on the lead for the delay (checked by a daily scan).
        NoActivity => "no_activity",
    }
);

code_enum!(
    DelayUnit { Minutes => "minutes", Hours => "hours", Days => "days", WorkingHours => "working_hours", WorkingDays => "working_days" }
);

code_enum!(
    /// What a rule does.
    RuleAction {
        /// A follow-up task for the owner (or the team's interface person), with a script (话术).
        CreateTask => "create_task",
        /// Moves the lead's nurture stage.
        MoveStage => "move_stage",
        /// Notifies the owner, the sales manager and the interface person in the app.
        Notify => "notify",
        /// Sends content (a nurture touch, L-6).
        SendContent => "send_content",
        /// Posts to the outbound webhooks.
        SendWebhook => "send_webhook",
    }
);

/// Lead events a rule may wait for the absence of (e.g. no sign-up after a trial).
pub const LEAD_SIGNALS: &[&str] = &["trial_started", "trial_finished", "signed_up"];

/// Which leads a rule applies to; empty lists mean any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    #[serde(default)]
    pub grades: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub routes: Vec<String>,
    /// Only if this signal has not happened since the triggering event (e.g. `signed_up`).
    #[serde(default)]
    pub without: Option<String>,
}

/// The lead facts conditions look at.
pub struct Facts<'a> {
    pub grade: &'a str,
    pub channel: &'a str,
    pub route: &'a str,
    /// Whether the `without` signal happened after the trigger.
    pub signal_since_trigger: bool,
}

impl Conditions {
    pub fn hold(&self, f: &Facts<'_>) -> bool {
        let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        any(&self.grades, f.grade)
            && any(&self.channels, f.channel)
            && any(&self.routes, f.route)
            && !(self.without.is_some() && f.signal_since_trigger)
    }
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub event: Trigger,
    pub conditions: Conditions,
    /// A fixed delay, or …
    pub delay_amount: Option<i64>,
    pub delay_unit: DelayUnit,
    /// … a delay read from the playbook (e.g. `leads.automation.trial_no_signup_days`).
    pub delay_key: Option<String>,
    pub action: RuleAction,
    /// `title`, `script` for tasks; `stage` for stage moves; `message` for notices.
    pub params: serde_json::Value,
    pub enabled: bool,
}

/// Playbook keys a rule's delay may come from.
pub const DELAY_KEYS: &[&str] =
    &["leads.automation.trial_no_signup_days", "leads.automation.dormant_days", "leads.sla.follow_up_max_hours"];

impl Rule {
    /// The delay amount: from the active playbook when the rule names a key (P-1: numbers
    /// live in the playbook), else the rule's own.
    pub fn amount(&self, pb: &Playbook) -> i64 {
        match self.delay_key.as_deref() {
            Some("leads.automation.trial_no_signup_days") => pb.leads.automation.trial_no_signup_days,
            Some("leads.automation.dormant_days") => pb.leads.automation.dormant_days,
            Some("leads.sla.follow_up_max_hours") => pb.leads.sla.follow_up_max_hours,
            _ => self.delay_amount.unwrap_or(0),
        }
    }

    /// When the action runs for an event at `at`.
    pub fn due(
        &self,
        pb: &Playbook,
        cal: &WorkingCalendar,
        tz: &jiff::tz::TimeZone,
        at: jiff::Timestamp,
    ) -> jiff::Timestamp {
        let n = self.amount(pb);
        let plain = |secs: i64| at.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap_or(at);
        match self.delay_unit {
            DelayUnit::Minutes => plain(n * 60),
            DelayUnit::Hours => plain(n * 3600),
            DelayUnit::Days => plain(n * 86_400),
            DelayUnit::WorkingHours => cal.add_working_hours(at, tz, n).map_or(at, |d| d.at),
            DelayUnit::WorkingDays => cal.add_working_days(at, tz, n).map_or(at, |d| d.at),
        }
    }

    /// The delay in seconds for the dormancy scan (no_activity rules use calendar units).
    pub fn dormant_secs(&self, pb: &Playbook) -> i64 {
        let n = self.amount(pb);
        match self.delay_unit {
            DelayUnit::Minutes => n * 60,
            DelayUnit::Hours | DelayUnit::WorkingHours => n * 3600,
            DelayUnit::Days | DelayUnit::WorkingDays => n * 86_400,
        }
    }

    pub fn parse(f: &Fields) -> Result<Rule, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(
            &mut e,
            &[
                "name",
                "event",
                "grades",
                "channels",
                "routes",
                "without",
                "delay_amount",
                "delay_unit",
                "delay_key",
                "action",
                "title",
                "script",
                "stage",
                "message",
                "enabled",
            ],
        );
        let name = f.required(&mut e, "name", 120);
        let event = f.choice(&mut e, "event", Trigger::ALL, Trigger::code);
        let mut list = |field: &str, all: &[&'static str]| -> Vec<String> {
            let items = f.list(&mut e, field).unwrap_or_default();
            items
                .into_iter()
                .filter(|x| !x.is_empty())
                .filter_map(|x| parse_choice(&mut e, field, &x, all, |c| c).map(str::to_string))
                .collect()
        };
        let grades = list("grades", &["A", "B", "C"]);
        let channel_codes: Vec<&'static str> = crate::lead::Channel::ALL.iter().map(|c| c.code()).collect();
        let channels = list("channels", &channel_codes);
        let routes = list("routes", &["sales", "nurture", "content", "unassigned"]);
        let without = f
            .text(&mut e, "without")
            .and_then(|w| parse_choice(&mut e, "without", &w, LEAD_SIGNALS, |c| c).map(str::to_string));
        let delay_unit = match f.text(&mut e, "delay_unit") {
            None => Some(DelayUnit::Days),
            Some(u) => parse_choice(&mut e, "delay_unit", &u, DelayUnit::ALL, DelayUnit::code),
        };
        let delay_key = f
            .text(&mut e, "delay_key")
            .and_then(|k| parse_choice(&mut e, "delay_key", &k, DELAY_KEYS, |c| c).map(str::to_string));
        let delay_amount = f.int(&mut e, "delay_amount");
        if let Some(n) = delay_amount.filter(|n| !(0..=10_000).contains(n)) {
            e.add("delay_amount", format!("must be between 0 and 10000, got {n}"));
        }
        let action = f.choice(&mut e, "action", RuleAction::ALL, RuleAction::code);
        let mut params = serde_json::Map::new();
        for k in ["title", "script", "message"] {
            if let Some(v) = f.optional(&mut e, k, 2000) {
                params.insert(k.into(), serde_json::Value::String(v));
            }
        }
        if action == Some(RuleAction::MoveStage) {
            match f.text(&mut e, "stage") {
                Some(s) => {
                    if let Some(st) = parse_choice(
                        &mut e,
                        "stage",
                        &s,
                        crate::deal::NurtureStage::ALL,
                        crate::deal::NurtureStage::code,
                    ) {
                        params.insert("stage".into(), st.code().into());
                    }
                }
                None => e.add("stage", "is required for this action"),
            }
        }
        if matches!(action, Some(RuleAction::CreateTask | RuleAction::SendContent))
            && !params.contains_key("title")
            && !e.0.contains_key("title")
        {
            e.add("title", "is required for this action");
        }
        let enabled = !matches!(f.0.get("enabled"), Some(serde_json::Value::Bool(false)))
            && f.0.get("enabled").and_then(|v| v.as_str()) != Some("false");
        match (event, action, delay_unit) {
            (Some(event), Some(action), Some(delay_unit)) if e.is_empty() => Ok(Rule {
                name,
                event,
                conditions: Conditions { grades, channels, routes, without },
                delay_amount,
                delay_unit,
                delay_key,
                action,
                params: serde_json::Value::Object(params),
                enabled,
            }),
            _ => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> WorkingCalendar {
        WorkingCalendar::new(
            vec![jiff::civil::Weekday::Saturday, jiff::civil::Weekday::Sunday],
            crate::calendar::WorkingHours::default(),
            &[],
        )
    }

    /// L-10: "trial finished and no sign-up after 3 days → follow-up task" reads its 3 days
    /// from the playbook and stops applying once the lead signed up.
    #[test]
    fn l10_trial_rule_delay_and_condition() {
        let pb = Playbook::default_playbook();
        let f = Fields::from_pairs([
            ("name", "试用未签约跟进"),
            ("event", "trial_finished"),
            ("without", "signed_up"),
            ("delay_key", "leads.automation.trial_no_signup_days"),
            ("delay_unit", "days"),
            ("action", "create_task"),
            ("title", "跟进试用客户"),
            ("script", "您好，试用体验如何？"),
        ]);
        let r = Rule::parse(&f).unwrap();
        let tz = jiff::tz::TimeZone::UTC;
        let at: jiff::Timestamp = "2026-11-23T02:00:00Z".parse().unwrap();
        assert_eq!(r.due(&pb, &cal(), &tz, at).to_string(), "2026-11-26T02:00:00Z");
        let facts =
            |signal| Facts { grade: "B", channel: "website_form", route: "nurture", signal_since_trigger: signal };
        assert!(r.conditions.hold(&facts(false)));
        assert!(!r.conditions.hold(&facts(true)));
        let mut g = r.clone();
        g.conditions.grades = vec!["A".into()];
        assert!(!g.conditions.hold(&facts(false)));
        // Working days skip the weekend: Friday + 1 working day = Monday.
        let w = Rule { delay_unit: DelayUnit::WorkingDays, delay_key: None, delay_amount: Some(1), ..r };
        let fri: jiff::Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        assert_eq!(w.due(&pb, &cal(), &tz, fri).to_string(), "2026-11-30T10:00:00Z");
    }

    #[test]
    fn l10_bad_rules_name_the_field() {
        let e = Rule::parse(&Fields::from_pairs([
            ("event", "moon_phase"),
            ("action", "move_stage"),
            ("grades", "A,Z"),
            ("delay_unit", "weeks"),
        ]))
        .unwrap_err();
        for k in ["name", "event", "grades", "delay_unit", "stage"] {
            assert!(e.get(k).is_some(), "{k}: {e}");
        }
    }
}
