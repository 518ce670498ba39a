//! C-4 referrals: each customer's referral code, who referred whom, the rewards the
//! playbook's rule says are owed, and the referral report (seed 001: loyal customers are
//! invited into "老客推荐返佣", a commission for bringing new customers).

use serde::Serialize;

/// The playbook's reward rule (C-4), money in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The referred customer's orders count towards qualifying for this many days after
    /// the referral.
    pub qualify_days: i64,
    /// The referral qualifies when those orders reach this amount.
    pub min_order_fen: i64,
    /// The referrer earns this percent of the qualifying amount…
    pub referrer_reward_pct: i64,
    /// …capped here.
    pub max_reward_fen: i64,
    /// The referred customer's welcome reward once qualified.
    pub referred_reward_fen: i64,
}

impl Rule {
    pub fn from_playbook(pb: &crate::playbook::Playbook) -> Rule {
        let r = &pb.customers.referral;
        Rule {
            qualify_days: r.qualify_days,
            min_order_fen: r.min_order_yuan * 100,
            referrer_reward_pct: r.referrer_reward_pct,
            max_reward_fen: r.max_reward_yuan * 100,
            referred_reward_fen: r.referred_reward_yuan * 100,
        }
    }
}

/// The alphabet of codes: Crockford's base 32 without I, L, O, U, so a code read aloud or
/// typed from a poster is not mistaken.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A customer's referral code: eight characters from a hash of its id and `attempt` (the
/// store tries the next attempt on the rare clash with another customer's code).
pub fn code(customer: &str, attempt: u32) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in customer.bytes().chain(attempt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..8).map(|i| ALPHABET[((h >> (i * 5)) & 31) as usize] as char).collect()
}

/// A code as people type it: trimmed, upper case, O read as 0 and I/L as 1.
pub fn normalise(code: &str) -> String {
    code.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// One referral as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Referral {
    pub id: i64,
    pub referrer: String,
    pub referred: String,
    /// Day number of the referral.
    pub day: i64,
    /// The referred customer's orders within the qualifying window (fen).
    pub window_fen: i64,
    /// All its orders so far (fen).
    pub total_fen: i64,
    /// Rewards paid out so far, to the referrer and to the referred customer (fen).
    pub paid_referrer_fen: i64,
    pub paid_referred_fen: i64,
}

/// What the rule decides for one referral, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reward {
    pub qualified: bool,
    pub referrer_fen: i64,
    pub referred_fen: i64,
    /// qualified | below_minimum | window_open
    pub reason: &'static str,
}

/// Decides one referral's rewards as of `today` (a day number).
pub fn reward(rule: &Rule, r: &Referral, today: i64) -> Reward {
    if r.window_fen >= rule.min_order_fen && r.window_fen > 0 {
        let earned = (r.window_fen * rule.referrer_reward_pct / 100).min(rule.max_reward_fen);
        return Reward {
            qualified: true,
            referrer_fen: earned,
            referred_fen: rule.referred_reward_fen,
            reason: "qualified",
        };
    }
    let open = today <= r.day + rule.qualify_days;
    Reward {
        qualified: false,
        referrer_fen: 0,
        referred_fen: 0,
        reason: if open { "window_open" } else { "below_minimum" },
    }
}

/// What is still owed on one referral: what the rule awards now less what was paid (a
/// reward can grow after a payout while the window is open and more orders arrive; it
/// never shrinks below what was paid, since a qualified window only gains orders).
pub fn owed(reward: &Reward, r: &Referral) -> (i64, i64) {
    ((reward.referrer_fen - r.paid_referrer_fen).max(0), (reward.referred_fen - r.paid_referred_fen).max(0))
}

/// Why a payout is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The referral has not qualified (yet): `Reward::reason` says why.
    NotQualified(&'static str),
    /// Everything the rule awards was paid already.
    PaidInFull,
}

/// C-4: the amounts to pay on a referral now — all that is owed, to both sides — or why
/// there is nothing to pay.
pub fn payout(rule: &Rule, r: &Referral, today: i64) -> Result<(i64, i64), Refused> {
    let w = reward(rule, r, today);
    if !w.qualified {
        return Err(Refused::NotQualified(w.reason));
    }
    match owed(&w, r) {
        (0, 0) => Err(Refused::PaidInFull),
        due => Ok(due),
    }
}

/// One referral's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralRow {
    pub id: i64,
    pub referrer: String,
    pub referred: String,
    /// Day number of the referral.
    pub day: i64,
    pub window_fen: i64,
    pub reward: Reward,
    pub paid_fen: i64,
    pub owed_fen: i64,
}

/// One referrer's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferrerRow {
    pub referrer: String,
    pub referrals: usize,
    pub qualified: usize,
    /// Revenue of the customers it brought, all their orders (fen).
    pub revenue_fen: i64,
    /// Earned by the rule, paid, and still owed to this referrer.
    pub reward_fen: i64,
    pub reward_paid_fen: i64,
    pub reward_owed_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub referrals: usize,
    pub qualified: usize,
    pub pending: usize,
    pub revenue_fen: i64,
    /// Awarded by the rule to referrers and to referred customers.
    pub referrer_rewards_fen: i64,
    pub referred_rewards_fen: i64,
    /// Of those, paid out and still owed (both sides).
    pub paid_fen: i64,
    pub owed_fen: i64,
    /// Referrers, most revenue brought first (ties by id).
    pub referrers: Vec<ReferrerRow>,
    /// Every referral, those with something owed first, then newest first.
    pub list: Vec<ReferralRow>,
}

pub fn report(rule: &Rule, referrals: &[Referral], today: i64) -> Report {
    let mut by: std::collections::BTreeMap<&str, ReferrerRow> = Default::default();
    let mut out = Report {
        referrals: referrals.len(),
        qualified: 0,
        pending: 0,
        revenue_fen: 0,
        referrer_rewards_fen: 0,
        referred_rewards_fen: 0,
        paid_fen: 0,
        owed_fen: 0,
        referrers: vec![],
        list: vec![],
    };
    for r in referrals {
        let w = reward(rule, r, today);
        let (owed_referrer, owed_referred) = owed(&w, r);
        let row = by.entry(&r.referrer).or_insert_with(|| ReferrerRow {
            referrer: r.referrer.clone(),
            referrals: 0,
            qualified: 0,
            revenue_fen: 0,
            reward_fen: 0,
            reward_paid_fen: 0,
            reward_owed_fen: 0,
        });
        row.referrals += 1;
        row.revenue_fen += r.total_fen;
        row.reward_fen += w.referrer_fen;
        row.reward_paid_fen += r.paid_referrer_fen;
        row.reward_owed_fen += owed_referrer;
        row.qualified += usize::from(w.qualified);
        out.paid_fen += r.paid_referrer_fen + r.paid_referred_fen;
        out.owed_fen += owed_referrer + owed_referred;
        out.list.push(ReferralRow {
            id: r.id,
            referrer: r.referrer.clone(),
            referred: r.referred.clone(),
            day: r.day,
            window_fen: r.window_fen,
            reward: w.clone(),
            paid_fen: r.paid_referrer_fen + r.paid_referred_fen,
            owed_fen: owed_referrer + owed_referred,
        });
        out.qualified += usize::from(w.qualified);
        out.pending += usize::from(w.reason == "window_open");
        out.revenue_fen += r.total_fen;
        out.referrer_rewards_fen += w.referrer_fen;
        out.referred_rewards_fen += w.referred_fen;
    }
    out.list.sort_by(|a, b| (b.owed_fen > 0).cmp(&(a.owed_fen > 0)).then_with(|| b.id.cmp(&a.id)));
    out.referrers = by.into_values().collect();
    out.referrers.sort_by(|a, b| b.revenue_fen.cmp(&a.revenue_fen).then_with(|| a.referrer.cmp(&b.referrer)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            qualify_days: 90,
            min_order_fen: 10_000,
            referrer_reward_pct: 10,
            max_reward_fen: 50_000,
            referred_reward_fen: 5_000,
        }
    }

    /// C-4: codes are stable, readable and tolerant of how people type them.
    #[test]
    fn c4_codes() {
        let c = code("10001", 0);
        assert_eq!((c.len(), c.clone()), (8, code("10001", 0)));
        assert_ne!(c, code("10002", 0));
        assert_ne!(c, code("10001", 1));
        assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(normalise(" ab-c0 il "), "ABC011");
    }

    /// C-4: rewards by the rule — percent of the qualifying spend, capped; nothing below
    /// the minimum; pending while the window is open.
    #[test]
    fn c4_rewards_follow_the_rule() {
        let r = |window, total, day| Referral {
            referrer: "1".into(),
            referred: "2".into(),
            day,
            window_fen: window,
            total_fen: total,
            ..Referral::default()
        };
        let q = reward(&rule(), &r(30_000, 45_000, 100), 150);
        assert_eq!((q.qualified, q.referrer_fen, q.referred_fen), (true, 3_000, 5_000));
        assert_eq!(reward(&rule(), &r(900_000, 900_000, 100), 150).referrer_fen, 50_000, "capped");
        assert_eq!(reward(&rule(), &r(5_000, 5_000, 100), 150).reason, "window_open");
        assert_eq!(reward(&rule(), &r(5_000, 20_000, 100), 191).reason, "below_minimum", "later orders do not count");
        let rep = report(
            &rule(),
            &[r(30_000, 45_000, 100), r(0, 0, 100), Referral { referrer: "9".into(), ..r(20_000, 90_000, 10) }],
            150,
        );
        assert_eq!((rep.referrals, rep.qualified, rep.pending), (3, 2, 1));
        assert_eq!((rep.referrer_rewards_fen, rep.referred_rewards_fen), (3_000 + 2_000, 10_000));
        assert_eq!(rep.referrers[0].referrer, "9", "most revenue first");
        assert_eq!(rep.referrers[1].referrals, 2);
    }

    /// C-4: a payout pays all that is owed to both sides, once; a reward that grows later
    /// (more orders inside the window) owes the difference; nothing is paid on a referral
    /// that has not qualified; the report shows paid and owed.
    #[test]
    fn c4_payouts_settle_what_is_owed() {
        let mut r = Referral {
            id: 7,
            referrer: "1".into(),
            referred: "2".into(),
            day: 100,
            window_fen: 30_000,
            total_fen: 30_000,
            ..Referral::default()
        };
        assert_eq!(payout(&rule(), &r, 120), Ok((3_000, 5_000)));
        (r.paid_referrer_fen, r.paid_referred_fen) = (3_000, 5_000);
        assert_eq!(payout(&rule(), &r, 120), Err(Refused::PaidInFull));
        let rep = report(&rule(), std::slice::from_ref(&r), 120);
        assert_eq!((rep.paid_fen, rep.owed_fen, rep.referrers[0].reward_owed_fen), (8_000, 0, 0));
        r.window_fen = 45_000;
        assert_eq!(payout(&rule(), &r, 150), Ok((1_500, 0)), "the difference only");
        let rep = report(&rule(), std::slice::from_ref(&r), 150);
        assert_eq!((rep.owed_fen, rep.referrers[0].reward_fen, rep.list[0].owed_fen), (1_500, 4_500, 1_500));
        let young = Referral { window_fen: 0, ..r.clone() };
        assert_eq!(
            payout(&rule(), &Referral { paid_referrer_fen: 0, paid_referred_fen: 0, ..young.clone() }, 120),
            Err(Refused::NotQualified("window_open"))
        );
        assert_eq!(
            payout(&rule(), &Referral { paid_referrer_fen: 0, paid_referred_fen: 0, ..young }, 300),
            Err(Refused::NotQualified("below_minimum"))
        );
    }
}
