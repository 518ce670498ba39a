//! Nurture (L-6), hand-off (L-7) and deals (L-8): stages, attribution and the sales cycle.

use crate::company::code_enum;
use crate::errors::Source as _;
use crate::errors::{FieldErrors, Fields};
use crate::money::Money;
use crate::playbook::Playbook;
use serde::Serialize;

code_enum!(
    /// L-6 nurture stages, in order.
    NurtureStage { Awareness => "awareness", Consideration => "consideration", Decision => "decision" }
);

code_enum!(
    /// L-6 touches: what a lead received.
    TouchKind {
        WhitePaper => "white_paper",
        LiveCourse => "live_course",
        Webinar => "webinar",
        CaseStudy => "case_study",
        Comparison => "comparison",
        Demo => "demo",
        ReferenceMeeting => "reference_meeting",
        Content => "content",
    }
);

impl TouchKind {
    /// The stage a touch belongs to (seed 004 §3.2): white papers and live courses build
    /// awareness; case studies and comparisons serve consideration; demos and reference
    /// customer meetings serve the decision.
    pub fn stage(self) -> NurtureStage {
        match self {
            TouchKind::WhitePaper | TouchKind::LiveCourse | TouchKind::Webinar | TouchKind::Content => {
                NurtureStage::Awareness
            }
            TouchKind::CaseStudy | TouchKind::Comparison => NurtureStage::Consideration,
            TouchKind::Demo | TouchKind::ReferenceMeeting => NurtureStage::Decision,
        }
    }
}

code_enum!(
    /// L-8 deal stages.
    DealStage {
        Qualification => "qualification",
        Proposal => "proposal",
        Negotiation => "negotiation",
        ClosedWon => "closed_won",
        ClosedLost => "closed_lost",
    }
);

impl DealStage {
    pub fn is_closed(self) -> bool {
        matches!(self, DealStage::ClosedWon | DealStage::ClosedLost)
    }
}

/// L-8: the sales cycle of a won deal against its target (SMB ≤ 3 months, enterprise ≤ 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cycle {
    pub days: i64,
    pub target_months: i64,
    pub within_target: bool,
}

pub fn sales_cycle(
    pb: &Playbook,
    enterprise: bool,
    started: jiff::Timestamp,
    closed: jiff::Timestamp,
    tz: &jiff::tz::TimeZone,
) -> Cycle {
    let c = &pb.leads.conversion;
    let target_months = if enterprise { c.sales_cycle_enterprise_months } else { c.sales_cycle_smb_months };
    let days = (closed.as_second() - started.as_second()).max(0) / 86_400;
    let start = started.to_zoned(tz.clone());
    let deadline = start.checked_add(jiff::Span::new().months(target_months)).map_or(closed, |z| z.timestamp());
    Cycle { days, target_months, within_target: closed <= deadline }
}

/// A reason from the playbook's list, or free text (L-7, L-8).
pub fn reason(f: &Fields, e: &mut FieldErrors, field: &str, required: bool) -> Option<String> {
    let r = f.optional(e, field, 200);
    if r.is_none() && required && !e.0.contains_key(field) {
        e.add(field, "is required");
    }
    r
}

/// Converting a lead: the deal's name and expected amount.
#[derive(Debug)]
pub struct DealInput {
    pub name: String,
    pub amount: Money,
}

impl DealInput {
    pub fn parse(f: &Fields) -> Result<DealInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, &["name", "amount"]);
        let name = f.required(&mut e, "name", 120);
        let amount = crate::campaign::money_field(f, &mut e, "amount");
        match amount {
            None if !e.0.contains_key("amount") => e.add("amount", "is required"),
            Some(m) if m.0 < 0 => e.add("amount", "must not be negative"),
            _ => {}
        }
        match amount {
            Some(amount) if e.is_empty() => Ok(DealInput { name, amount }),
            _ => Err(e),
        }
    }
}

/// A stage change; closing as lost needs a reason.
#[derive(Debug)]
pub struct StageInput {
    pub stage: DealStage,
    pub lost_reason: Option<String>,
    pub amount: Option<Money>,
}

impl StageInput {
    pub fn parse(f: &Fields) -> Result<StageInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, &["stage", "lost_reason", "amount"]);
        let stage = f.choice(&mut e, "stage", DealStage::ALL, DealStage::code);
        let lost = stage == Some(DealStage::ClosedLost);
        let lost_reason = reason(f, &mut e, "lost_reason", lost);
        let amount = crate::campaign::money_field(f, &mut e, "amount");
        if amount.is_some_and(|m| m.0 < 0) {
            e.add("amount", "must not be negative");
        }
        match stage {
            Some(stage) if e.is_empty() => {
                Ok(StageInput { stage, lost_reason: if lost { lost_reason } else { None }, amount })
            }
            _ => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    /// L-8: SMB within 3 months, enterprise within 6.
    #[test]
    fn l8_sales_cycle_targets() {
        let pb = Playbook::default_playbook();
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let c = sales_cycle(&pb, false, ts("2026-01-10T02:00:00Z"), ts("2026-04-09T02:00:00Z"), &tz);
        assert_eq!((c.days, c.target_months, c.within_target), (89, 3, true));
        let c = sales_cycle(&pb, false, ts("2026-01-10T02:00:00Z"), ts("2026-04-11T02:00:00Z"), &tz);
        assert!(!c.within_target);
        let c = sales_cycle(&pb, true, ts("2026-01-10T02:00:00Z"), ts("2026-07-09T02:00:00Z"), &tz);
        assert_eq!((c.target_months, c.within_target), (6, true));
    }

    /// L-6: touches belong to the seed's three stages.
    #[test]
    fn l6_touch_stages() {
        assert_eq!(TouchKind::WhitePaper.stage(), NurtureStage::Awareness);
        assert_eq!(TouchKind::CaseStudy.stage(), NurtureStage::Consideration);
        assert_eq!(TouchKind::ReferenceMeeting.stage(), NurtureStage::Decision);
    }

    #[test]
    fn l8_lost_needs_a_reason() {
        let e = StageInput::parse(&Fields::from_pairs([("stage", "closed_lost")])).unwrap_err();
        assert_eq!(e.get("lost_reason"), Some("is required"));
        assert!(StageInput::parse(&Fields::from_pairs([("stage", "closed_lost"), ("lost_reason", "价格")])).is_ok());
        assert!(StageInput::parse(&Fields::from_pairs([("stage", "won")])).unwrap_err().get("stage").is_some());
    }
}
