//! L-9: the channel report — leads, grade mix, conversion, cost per lead, sales cycle,
//! revenue and ROI per channel and campaign, with the top channels by ROI.

use crate::playbook::Playbook;
use serde::Serialize;
use std::collections::BTreeMap;

/// Raw figures for one channel (and optionally one campaign) in a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub leads: i64,
    pub grade_a: i64,
    pub grade_b: i64,
    pub grade_c: i64,
    /// Leads of the period that became closed-won deals.
    pub converted: i64,
    pub cost_fen: i64,
    /// Closed-won revenue attributed to this channel in the period.
    pub revenue_fen: i64,
    pub won_deals: i64,
    pub cycle_days_sum: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    pub channel: String,
    pub campaign_id: Option<i64>,
    pub leads: i64,
    pub grade_a: i64,
    pub grade_b: i64,
    pub grade_c: i64,
    pub converted: i64,
    /// Percent of the period's leads that closed won.
    pub conversion_pct: Option<f64>,
    pub cost_fen: i64,
    pub cost_per_lead_fen: Option<i64>,
    pub revenue_fen: i64,
    pub won_deals: i64,
    pub avg_cycle_days: Option<f64>,
    /// Revenue / cost; `None` without cost.
    pub roi: Option<f64>,
    /// Among the top channels by ROI (L-9).
    pub top: bool,
    /// Conversion compared with the industry band: below | within | above.
    pub versus_industry: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub channels: Vec<ReportRow>,
    pub campaigns: Vec<ReportRow>,
    pub industry_low_pct: f64,
    pub industry_high_pct: f64,
    pub top_channels: Vec<String>,
}

fn row(pb: &Playbook, channel: &str, campaign_id: Option<i64>, f: &Figures) -> ReportRow {
    let pct = |n: i64, d: i64| (d > 0).then(|| n as f64 * 100.0 / d as f64);
    let conversion_pct = pct(f.converted, f.leads);
    let c = &pb.leads.conversion;
    let versus_industry = conversion_pct.map(|p| {
        if p < c.industry_rate_low_pct {
            "below"
        } else if p > c.industry_rate_high_pct {
            "above"
        } else {
            "within"
        }
        .to_string()
    });
    ReportRow {
        channel: channel.to_string(),
        campaign_id,
        leads: f.leads,
        grade_a: f.grade_a,
        grade_b: f.grade_b,
        grade_c: f.grade_c,
        converted: f.converted,
        conversion_pct,
        cost_fen: f.cost_fen,
        cost_per_lead_fen: (f.leads > 0 && f.cost_fen > 0).then(|| f.cost_fen / f.leads),
        revenue_fen: f.revenue_fen,
        won_deals: f.won_deals,
        avg_cycle_days: (f.won_deals > 0).then(|| f.cycle_days_sum as f64 / f.won_deals as f64),
        roi: (f.cost_fen > 0).then(|| f.revenue_fen as f64 / f.cost_fen as f64),
        top: false,
        versus_industry,
    }
}

/// Builds the report from figures per (channel, campaign). Channel rows add up their
/// campaigns (and leads without a campaign); the top `top_channels` channels by ROI are
/// marked.
pub fn channel_report(pb: &Playbook, by_campaign: &BTreeMap<(String, Option<i64>), Figures>) -> Report {
    let mut by_channel: BTreeMap<String, Figures> = BTreeMap::new();
    for ((ch, _), f) in by_campaign {
        let t = by_channel.entry(ch.clone()).or_default();
        t.leads += f.leads;
        t.grade_a += f.grade_a;
        t.grade_b += f.grade_b;
        t.grade_c += f.grade_c;
        t.converted += f.converted;
        t.cost_fen += f.cost_fen;
        t.revenue_fen += f.revenue_fen;
        t.won_deals += f.won_deals;
        t.cycle_days_sum += f.cycle_days_sum;
    }
    let mut channels: Vec<ReportRow> = by_channel.iter().map(|(ch, f)| row(pb, ch, None, f)).collect();
    let mut ranked: Vec<(String, f64)> =
        channels.iter().filter_map(|r| r.roi.map(|x| (r.channel.clone(), x))).collect();
    ranked.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then(a.0.cmp(&b.0)));
    let n = usize::try_from(pb.leads.conversion.top_channels).unwrap_or(3);
    let top: Vec<String> = ranked.into_iter().take(n).map(|(c, _)| c).collect();
    for r in &mut channels {
        r.top = top.contains(&r.channel);
    }
    channels.sort_by(|a, b| {
        b.roi
            .unwrap_or(-1.0)
            .partial_cmp(&a.roi.unwrap_or(-1.0))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.leads.cmp(&a.leads))
    });
    let campaigns =
        by_campaign.iter().filter(|((_, c), _)| c.is_some()).map(|((ch, c), f)| row(pb, ch, *c, f)).collect();
    Report {
        channels,
        campaigns,
        industry_low_pct: pb.leads.conversion.industry_rate_low_pct,
        industry_high_pct: pb.leads.conversion.industry_rate_high_pct,
        top_channels: top,
    }
}

/// A handed-off lead as the monthly lead-quality review (L-7) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewLead {
    pub total: i64,
    /// budget, authority, need, timeline points.
    pub parts: [i64; 4],
    pub won: bool,
    /// Sales' reason if it rejected the lead.
    pub rejected: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mix {
    pub leads: usize,
    pub grade_a: usize,
    pub grade_b: usize,
    pub grade_c: usize,
    /// Average points per part: budget, authority, need, timeline.
    pub avg_parts: [f64; 4],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub grade_a_min: i64,
    /// Handed-off leads that would have been A with this threshold.
    pub handed_off: usize,
    /// Won leads that would still have been A.
    pub won_kept: usize,
    /// Rejected leads that would not have been handed off.
    pub rejected_avoided: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReview {
    pub handed_off: Mix,
    pub won: Mix,
    pub rejected: Mix,
    /// Rejection reasons, most frequent first.
    pub reasons: Vec<(String, usize)>,
    pub current_a_min: i64,
    pub candidates: Vec<Candidate>,
    /// The proposed A threshold, when another one would have done better.
    pub proposal: Option<i64>,
    pub explanation: String,
}

fn mix(pb: &Playbook, leads: &[&ReviewLead]) -> Mix {
    let b = &pb.leads.bant;
    let n = leads.len();
    let avg = |i: usize| if n == 0 { 0.0 } else { leads.iter().map(|l| l.parts[i]).sum::<i64>() as f64 / n as f64 };
    Mix {
        leads: n,
        grade_a: leads.iter().filter(|l| l.total >= b.grade_a_min).count(),
        grade_b: leads.iter().filter(|l| l.total < b.grade_a_min && l.total >= b.grade_b_min).count(),
        grade_c: leads.iter().filter(|l| l.total < b.grade_b_min).count(),
        avg_parts: [avg(0), avg(1), avg(2), avg(3)],
    }
}

/// L-7: compares what marketing handed over with what closed, and tries the A threshold two
/// points either side: the proposal is the threshold that avoids the most rejected leads
/// while keeping every won lead an A (ties keep the current threshold).
pub fn quality_review(pb: &Playbook, leads: &[ReviewLead]) -> QualityReview {
    let all: Vec<&ReviewLead> = leads.iter().collect();
    let won: Vec<&ReviewLead> = leads.iter().filter(|l| l.won).collect();
    let rejected: Vec<&ReviewLead> = leads.iter().filter(|l| l.rejected.is_some()).collect();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for l in &rejected {
        *reasons.entry(l.rejected.clone().unwrap_or_default()).or_default() += 1;
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let b = &pb.leads.bant;
    let current = b.grade_a_min;
    let max = b.max_total();
    let candidates: Vec<Candidate> = ((current - 2).max(b.grade_b_min + 1)..=(current + 2).min(max))
        .map(|t| Candidate {
            grade_a_min: t,
            handed_off: all.iter().filter(|l| l.total >= t).count(),
            won_kept: won.iter().filter(|l| l.total >= t).count(),
            rejected_avoided: rejected.iter().filter(|l| l.total < t).count(),
        })
        .collect();
    let keeps_all = |c: &&Candidate| c.won_kept == won.len();
    let best = candidates.iter().filter(keeps_all).max_by(|x, y| {
        x.rejected_avoided
            .cmp(&y.rejected_avoided)
            .then((y.grade_a_min - current).abs().cmp(&(x.grade_a_min - current).abs()))
    });
    let at_current = candidates.iter().find(|c| c.grade_a_min == current);
    let (proposal, explanation) = match (best, at_current) {
        _ if won.is_empty() || rejected.is_empty() => {
            (None, "not enough won and rejected leads this month to judge the threshold".to_string())
        }
        (Some(b), Some(c)) if b.grade_a_min != current && b.rejected_avoided > c.rejected_avoided => (
            Some(b.grade_a_min),
            format!(
                "with grade_a_min = {} all {} won leads stay A and {} rejected leads (instead of {}) would not have been handed off",
                b.grade_a_min,
                won.len(),
                b.rejected_avoided,
                c.rejected_avoided
            ),
        ),
        _ => (None, "the current threshold does as well as its neighbours".to_string()),
    };
    QualityReview {
        handed_off: mix(pb, &all),
        won: mix(pb, &won),
        rejected: mix(pb, &rejected),
        reasons,
        current_a_min: current,
        candidates,
        proposal,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(leads: i64, converted: i64, cost: i64, revenue: i64) -> Figures {
        Figures {
            leads,
            converted,
            cost_fen: cost,
            revenue_fen: revenue,
            won_deals: converted,
            cycle_days_sum: converted * 60,
            ..Default::default()
        }
    }

    fn rl(total: i64, won: bool, rejected: Option<&str>) -> ReviewLead {
        ReviewLead { total, parts: [2, 2, total - 6, 2], won, rejected: rejected.map(str::to_string) }
    }

    /// L-7: the review proposes a higher A threshold when won leads all score high and the
    /// rejected ones sit just above the current line.
    #[test]
    fn l7_quality_review_proposes_a_threshold() {
        let pb = Playbook::default_playbook();
        let leads = vec![
            rl(13, true, None),
            rl(12, true, None),
            rl(10, false, Some("无预算")),
            rl(10, false, Some("无预算")),
            rl(11, false, Some("非决策人")),
            rl(12, false, None),
        ];
        let r = quality_review(&pb, &leads);
        assert_eq!(r.current_a_min, 10);
        assert_eq!(r.reasons[0], ("无预算".to_string(), 2));
        assert_eq!(r.proposal, Some(12), "{}", r.explanation);
        let c12 = r.candidates.iter().find(|c| c.grade_a_min == 12).unwrap();
        assert_eq!((c12.won_kept, c12.rejected_avoided, c12.handed_off), (2, 3, 3));
        assert_eq!(r.won.avg_parts[0], 2.0);
        assert_eq!(quality_review(&pb, &[rl(12, true, None)]).proposal, None);
    }

    /// L-9: conversion, cost per lead, ROI, the industry band and the top 3 by ROI.
    #[test]
    fn l9_report_figures_and_top_three() {
        let pb = Playbook::default_playbook();
        let mut m = BTreeMap::new();
        m.insert(("trade_show".to_string(), Some(1)), f(100, 4, 1_000_000, 5_000_000));
        m.insert(("trade_show".to_string(), None), f(20, 0, 0, 0));
        m.insert(("webinar".to_string(), None), f(50, 3, 200_000, 1_600_000));
        m.insert(("douyin".to_string(), None), f(400, 2, 4_000_000, 1_000_000));
        m.insert(("referral".to_string(), None), f(10, 2, 10_000, 2_000_000));
        m.insert(("wechat".to_string(), None), f(30, 0, 0, 0));
        let r = channel_report(&pb, &m);
        let ts = r.channels.iter().find(|x| x.channel == "trade_show").unwrap();
        assert_eq!((ts.leads, ts.cost_per_lead_fen, ts.roi), (120, Some(8_333), Some(5.0)));
        assert!((ts.conversion_pct.unwrap() - 3.333).abs() < 0.01);
        assert_eq!(ts.versus_industry.as_deref(), Some("within"));
        assert_eq!(ts.avg_cycle_days, Some(60.0));
        assert_eq!(r.top_channels, vec!["referral", "webinar", "trade_show"]);
        assert!(!r.channels.iter().find(|x| x.channel == "douyin").unwrap().top);
        assert_eq!(
            r.channels.iter().find(|x| x.channel == "douyin").unwrap().versus_industry.as_deref(),
            Some("below")
        );
        assert_eq!(r.channels.iter().find(|x| x.channel == "wechat").unwrap().roi, None, "no cost, no ROI");
        assert_eq!(r.campaigns.len(), 1);
    }
}
