//! Leads (SPEC L-1…L-4): normalised contact keys for deduplication, BANT grading with its
//! explanation, and routing to an owner.

use crate::company::code_enum;
use crate::errors::{FieldErrors, Source};
use crate::playbook::Playbook;
use serde::{Deserialize, Serialize};

code_enum!(
    /// L-1 source channels.
    Channel {
        Wechat => "wechat",
        Douyin => "douyin",
        BaiduSem => "baidu_sem",
        Xiaohongshu => "xiaohongshu",
        TradeShow => "trade_show",
        WebsiteForm => "website_form",
        Referral => "referral",
        Email => "email",
        Webinar => "webinar",
        Other => "other",
    }
);

code_enum!(
    /// L-8: the sales-cycle target depends on the customer's size.
    CompanySize { Smb => "smb", Enterprise => "enterprise" }
);

code_enum!(
    /// L-3 grades.
    Grade { A => "A", B => "B", C => "C" }
);

/// L-2: e-mail as a dedup key — trimmed, lower-cased. `None` if it is not an address.
pub fn normalize_email(s: &str) -> Option<String> {
    crate::org::Email::parse(s).ok().map(|e| e.as_str().to_string())
}

/// L-2: a mainland mobile number as a dedup key — `+86 138-0013-8000`, `0086 13800138000`
/// and `138 0013 8000` are all `13800138000`. Other numbers keep their digits (with a `+`
/// country prefix if given) so they still match themselves.
pub fn normalize_phone(s: &str) -> Option<String> {
    let t = s.trim();
    let plus = t.starts_with('+');
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 {
        return None;
    }
    // With an explicit country code, only +86 (or 0086) is mainland China.
    let national = if plus {
        match digits.strip_prefix("86") {
            Some(n) => n,
            None => return Some(format!("+{digits}")),
        }
    } else {
        digits
            .strip_prefix("0086")
            .or_else(|| if digits.len() == 13 { digits.strip_prefix("86") } else { None })
            .unwrap_or(&digits)
    };
    let is_mobile = national.len() == 11
        && national.starts_with('1')
        && national.as_bytes()[1].is_ascii_digit()
        && (b'3'..=b'9').contains(&national.as_bytes()[1]);
    if is_mobile {
        Some(national.to_string())
    } else if plus {
        Some(format!("+{digits}"))
    } else {
        Some(digits)
    }
}

/// L-2's weaker key: company and person name, case- and space-insensitive.
pub fn company_name_key(company: &str, name: &str) -> Option<String> {
    let norm = |s: &str| s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect::<String>();
    let (c, n) = (norm(company), norm(name));
    (!c.is_empty() && !n.is_empty()).then(|| format!("{c}|{n}"))
}

pub const PARTS: [&str; 4] = ["budget", "authority", "need", "timeline"];

/// The answers a lead gave, by part; `None` where it has not answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BantAnswers {
    pub budget: Option<String>,
    pub authority: Option<String>,
    pub need: Option<String>,
    pub timeline: Option<String>,
}

impl BantAnswers {
    pub fn get(&self, part: &str) -> Option<&str> {
        match part {
            "budget" => self.budget.as_deref(),
            "authority" => self.authority.as_deref(),
            "need" => self.need.as_deref(),
            "timeline" => self.timeline.as_deref(),
            _ => None,
        }
    }
}

/// One part of a grading: the answer, its points and that part's maximum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartScore {
    pub part: &'static str,
    pub answer: Option<String>,
    pub points: i64,
    pub max: i64,
}

/// L-3 with its explanation (P-2): every part, the total, the grade, and the playbook
/// version that made the judgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grading {
    /// Budget, authority, need and timeline, in `PARTS` order.
    pub parts: [PartScore; 4],
    pub total: i64,
    pub grade: Grade,
    pub playbook_version: i64,
}

/// A grading's numbers (L-3): each part's points in `PARTS` order, the total, the grade and
/// the playbook version that made them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub points: [i64; 4],
    pub total: i64,
    pub grade: Grade,
    pub playbook_version: i64,
}

impl Grading {
    pub fn score(&self) -> Score {
        Score {
            points: self.parts.each_ref().map(|p| p.points),
            total: self.total,
            grade: self.grade,
            playbook_version: self.playbook_version,
        }
    }
}

impl Playbook {
    fn answer_table(&self, part: &str) -> (&std::collections::BTreeMap<String, i64>, i64) {
        let b = &self.leads.bant;
        match part {
            "budget" => (&b.answers.budget, b.budget_max),
            "authority" => (&b.answers.authority, b.authority_max),
            "need" => (&b.answers.need, b.need_max),
            _ => (&b.answers.timeline, b.timeline_max),
        }
    }

    /// The answer codes a part accepts, best first.
    pub fn answers_for(&self, part: &str) -> Vec<(String, i64)> {
        let (table, _) = self.answer_table(part);
        let mut v: Vec<(String, i64)> = table.iter().map(|(k, p)| (k.clone(), *p)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Checks answers against the active answer tables; unknown answers name their part.
    pub fn check_answers(&self, a: &BantAnswers) -> Result<(), FieldErrors> {
        let mut e = FieldErrors::new();
        for part in PARTS {
            if let Some(answer) = a.get(part) {
                let (table, _) = self.answer_table(part);
                if !table.contains_key(answer) {
                    let allowed: Vec<String> = self.answers_for(part).into_iter().map(|(k, _)| k).collect();
                    e.add(part, format!("unknown value `{answer}`; expected one of: {}", allowed.join(", ")));
                }
            }
        }
        e.into_result(())
    }

    /// L-3: points per part (an unanswered part scores 1, the floor of every part), the
    /// total (4–14 with the defaults) and the grade: A at `grade_a_min` or more, B at
    /// `grade_b_min` or more, C below.
    pub fn grade(&self, a: &BantAnswers, version: i64) -> Result<Grading, FieldErrors> {
        let score = self.score(a, version)?;
        let parts = std::array::from_fn(|k| {
            let part = PARTS[k];
            let (_, max) = self.answer_table(part);
            PartScore { part, answer: a.get(part).map(str::to_string), points: score.points[k], max }
        });
        Ok(Grading { parts, total: score.total, grade: score.grade, playbook_version: version })
    }

    /// L-3 as `grade` decides it, without the explanation: what a lead row stores. Nothing
    /// is allocated (a million-lead import keeps one per lead until it has written them).
    pub fn score(&self, a: &BantAnswers, version: i64) -> Result<Score, FieldErrors> {
        self.check_answers(a)?;
        let points = PARTS.map(|part| {
            let (table, _) = self.answer_table(part);
            a.get(part).and_then(|x| table.get(x)).copied().unwrap_or(1)
        });
        let total = points.iter().sum();
        let b = &self.leads.bant;
        let grade = if total >= b.grade_a_min {
            Grade::A
        } else if total >= b.grade_b_min {
            Grade::B
        } else {
            Grade::C
        };
        Ok(Score { points, total, grade, playbook_version: version })
    }

    /// Where a grade goes: `sales`, `nurture` or `content`.
    pub fn route_for(&self, g: Grade) -> &str {
        let r = &self.leads.routing;
        match g {
            Grade::A => &r.grade_a,
            Grade::B => &r.grade_b,
            Grade::C => &r.grade_c,
        }
    }
}

/// A lead as entered or received, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadInput {
    pub name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub company_size: Option<CompanySize>,
    pub channel: Channel,
    pub campaign_id: Option<i64>,
    pub utm: Utm,
    pub answers: BantAnswers,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

pub const LEAD_FIELDS: &[&str] = &[
    "name",
    "company",
    "title",
    "email",
    "phone",
    "province",
    "city",
    "company_size",
    "channel",
    "campaign_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "budget",
    "authority",
    "need",
    "timeline",
    "note",
];

impl LeadInput {
    /// L-1: a lead needs a way to reach someone (e-mail or phone) and someone to reach
    /// (a name or a company). Answers are checked against the active playbook.
    pub fn parse(f: &(impl Source + ?Sized), pb: &Playbook) -> Result<LeadInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, LEAD_FIELDS);
        let name = f.optional(&mut e, "name", 80);
        let company = f.optional(&mut e, "company", 120);
        let title = f.optional(&mut e, "title", 80);
        let email = f.optional(&mut e, "email", 254);
        if let Some(m) = &email
            && normalize_email(m).is_none()
        {
            e.add("email", "is not an e-mail address");
        }
        let phone = f.optional(&mut e, "phone", 40);
        if let Some(p) = &phone
            && normalize_phone(p).is_none()
        {
            e.add("phone", "is not a phone number");
        }
        if email.is_none() && phone.is_none() && !e.0.contains_key("email") && !e.0.contains_key("phone") {
            e.add("email", "give an e-mail address or a phone number");
        }
        if name.is_none() && company.is_none() && !e.0.contains_key("name") {
            e.add("name", "give a name or a company");
        }
        let province = f.optional(&mut e, "province", 40);
        let city = f.optional(&mut e, "city", 40);
        let company_size = f
            .text(&mut e, "company_size")
            .and_then(|v| crate::errors::parse_choice(&mut e, "company_size", &v, CompanySize::ALL, CompanySize::code));
        let channel = f.choice(&mut e, "channel", Channel::ALL, Channel::code);
        let campaign_id = f.int(&mut e, "campaign_id");
        if campaign_id.is_some_and(|c| c <= 0) {
            e.add("campaign_id", "must be a positive id");
        }
        let utm = Utm {
            source: f.optional(&mut e, "utm_source", 120),
            medium: f.optional(&mut e, "utm_medium", 120),
            campaign: f.optional(&mut e, "utm_campaign", 120),
            term: f.optional(&mut e, "utm_term", 120),
            content: f.optional(&mut e, "utm_content", 120),
        };
        let answers = BantAnswers {
            budget: f.optional(&mut e, "budget", 40),
            authority: f.optional(&mut e, "authority", 40),
            need: f.optional(&mut e, "need", 40),
            timeline: f.optional(&mut e, "timeline", 40),
        };
        if let Err(errs) = pb.check_answers(&answers) {
            e.merge(errs);
        }
        let note = f.optional(&mut e, "note", 2000);
        match channel {
            Some(channel) if e.is_empty() => Ok(LeadInput {
                name,
                company,
                title,
                email,
                phone,
                province,
                city,
                company_size,
                channel,
                campaign_id,
                utm,
                answers,
                note,
            }),
            _ => Err(e),
        }
    }

    pub fn email_key(&self) -> Option<String> {
        self.email.as_deref().and_then(normalize_email)
    }

    pub fn phone_key(&self) -> Option<String> {
        self.phone.as_deref().and_then(normalize_phone)
    }

    pub fn weak_key(&self) -> Option<String> {
        company_name_key(self.company.as_deref()?, self.name.as_deref()?)
    }
}

/// A sales team as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingTeam {
    pub team_id: i64,
    /// Provinces and cities the team covers.
    pub territories: Vec<String>,
    /// Members who can own leads, in a stable order, with whether they are available.
    pub reps: Vec<(i64, bool)>,
    /// The rep who got the team's previous lead (round-robin position).
    pub last_assigned: Option<i64>,
}

/// L-4's decision, with its reason (P-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum RouteDecision {
    /// Assigned to a sales owner.
    Sales {
        team_id: i64,
        owner_id: i64,
        reason: String,
    },
    /// No available rep: kept unassigned for a manager, with the reason.
    Unassigned {
        reason: String,
    },
    Nurture,
    Content,
}

/// L-4: a lead whose grade routes to sales goes to the team covering its city or
/// province (city first), else to all sales teams; within the team, round-robin after the
/// last assigned rep, skipping reps marked unavailable.
pub fn route(
    pb: &Playbook,
    grade: Grade,
    province: Option<&str>,
    city: Option<&str>,
    teams: &[RoutingTeam],
) -> RouteDecision {
    match pb.route_for(grade) {
        "nurture" => return RouteDecision::Nurture,
        "content" => return RouteDecision::Content,
        _ => {}
    }
    let covers = |t: &RoutingTeam, place: Option<&str>| {
        place.is_some_and(|p| !p.is_empty() && t.territories.iter().any(|x| x == p || p.starts_with(x.as_str())))
    };
    let by_city: Vec<&RoutingTeam> = teams.iter().filter(|t| covers(t, city)).collect();
    let by_province: Vec<&RoutingTeam> = teams.iter().filter(|t| covers(t, province)).collect();
    let (candidates, why) = if !by_city.is_empty() {
        (by_city, format!("territory {}", city.unwrap_or_default()))
    } else if !by_province.is_empty() {
        (by_province, format!("territory {}", province.unwrap_or_default()))
    } else {
        (teams.iter().collect(), "no team covers the territory; all sales teams".to_string())
    };
    for t in candidates {
        let n = t.reps.len();
        if n == 0 {
            continue;
        }
        let start = t.last_assigned.and_then(|l| t.reps.iter().position(|(id, _)| *id == l)).map_or(0, |i| i + 1);
        for k in 0..n {
            let (id, available) = t.reps[(start + k) % n];
            if available {
                let skipped = k;
                let reason = if skipped > 0 {
                    format!("{why}; round robin, {skipped} unavailable rep(s) skipped")
                } else {
                    format!("{why}; round robin")
                };
                return RouteDecision::Sales { team_id: t.team_id, owner_id: id, reason };
            }
        }
    }
    RouteDecision::Unassigned { reason: "no available sales rep in the matching teams".into() }
}

/// L-5 clocks of an assigned lead: first response within N working hours (the working
/// calendar), follow-up within M hours at most (calendar time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaDue {
    pub first_response: jiff::Timestamp,
    pub follow_up: jiff::Timestamp,
}

pub fn sla_due(
    pb: &Playbook,
    cal: &crate::calendar::WorkingCalendar,
    tz: &jiff::tz::TimeZone,
    assigned_at: jiff::Timestamp,
) -> Result<SlaDue, crate::calendar::CalendarError> {
    let first = cal.add_working_hours(assigned_at, tz, pb.leads.sla.first_response_working_hours)?.at;
    let follow_up = assigned_at
        .checked_add(jiff::SignedDuration::from_hours(pb.leads.sla.follow_up_max_hours))
        .unwrap_or(assigned_at);
    Ok(SlaDue { first_response: first, follow_up })
}

/// The text a lead is found by (L-1 search): names, company, title, e-mail and place,
/// segmented (see `search::index_text`), plus the phone number and its last four digits.
pub fn search_text(l: &LeadInput) -> String {
    let texts = [&l.name, &l.company, &l.title, &l.email, &l.province, &l.city];
    search_text_of(texts.map(|t| t.as_deref()), l.phone.as_deref())
}

/// `search_text` from a stored lead's fields: name, company, title, e-mail, province, city.
pub fn search_text_of(texts: [Option<&str>; 6], phone: Option<&str>) -> String {
    let extra: Vec<String> = match phone.and_then(normalize_phone) {
        Some(p) => {
            let digits: Vec<char> = p.chars().filter(char::is_ascii_digit).collect();
            let last4: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            vec![p, last4]
        }
        None => Vec::new(),
    };
    crate::search::index_text(texts.into_iter().flatten(), &extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Fields;

    #[test]
    fn l2_phone_and_email_normalise() {
        for p in ["+86 138-0013-8000", "0086 13800138000", "138 0013 8000", "8613800138000", "(138)00138000"] {
            assert_eq!(normalize_phone(p).as_deref(), Some("13800138000"), "{p}");
        }
        assert_eq!(normalize_phone("+1 415 555 0100").as_deref(), Some("+14155550100"));
        assert_eq!(normalize_phone("021-6888 1234").as_deref(), Some("02168881234"));
        assert_eq!(normalize_phone("12"), None);
        assert_eq!(normalize_email(" Zhang.Wei@Example.COM ").as_deref(), Some("zhang.wei@example.com"));
        assert_eq!(company_name_key("云启 科技", " 张伟"), company_name_key("云启科技", "张伟"));
    }

    fn answers(b: &str, a: &str, n: &str, t: &str) -> BantAnswers {
        let s = |x: &str| (!x.is_empty()).then(|| x.to_string());
        BantAnswers { budget: s(b), authority: s(a), need: s(n), timeline: s(t) }
    }

    /// L-3: parts, total 4–14, A ≥ 10, B 7–9, C ≤ 6, with the version recorded.
    #[test]
    fn l3_grades_by_total() {
        let pb = Playbook::default_playbook();
        let g = pb.grade(&answers("approved", "decision_maker", "critical", "within_3_months"), 3).unwrap();
        assert_eq!((g.total, g.grade, g.playbook_version), (14, Grade::A, 3));
        assert_eq!(g.parts[2].points, 5);
        assert_eq!(g.parts[2].max, 5);
        let g = pb.grade(&answers("planned", "influencer", "moderate", "within_3_months"), 1).unwrap();
        assert_eq!((g.total, g.grade), (10, Grade::A));
        let g = pb.grade(&answers("planned", "influencer", "exploring", "within_3_months"), 1).unwrap();
        assert_eq!((g.total, g.grade), (9, Grade::B));
        let g = pb.grade(&answers("unknown", "user", "moderate", "within_12_months"), 1).unwrap();
        assert_eq!((g.total, g.grade), (7, Grade::B));
        let g = pb.grade(&answers("unknown", "user", "exploring", "within_12_months"), 1).unwrap();
        assert_eq!((g.total, g.grade), (6, Grade::C));
        let g = pb.grade(&BantAnswers::default(), 1).unwrap();
        assert_eq!((g.total, g.grade), (4, Grade::C));
        let e = pb.grade(&answers("lots", "", "", ""), 1).unwrap_err();
        assert!(e.get("budget").unwrap().contains("approved, planned, unknown"));
    }

    /// L-3: the numbers alone (`score`, what an import stores per lead) are the grading's,
    /// for every combination of answers, unanswered parts included; a bad answer is refused
    /// the same way.
    #[test]
    fn l3_score_is_the_gradings_numbers() {
        let pb = Playbook::default_playbook();
        let with_blank = |part: &str| {
            let mut v: Vec<String> = pb.answers_for(part).into_iter().map(|(k, _)| k).collect();
            v.push(String::new());
            v
        };
        let (b, a, n, t) = (with_blank("budget"), with_blank("authority"), with_blank("need"), with_blank("timeline"));
        let mut grades = std::collections::BTreeSet::new();
        for b in &b {
            for a in &a {
                for n in &n {
                    for t in &t {
                        let x = answers(b, a, n, t);
                        let g = pb.grade(&x, 7).unwrap();
                        let s = pb.score(&x, 7).unwrap();
                        assert_eq!(s, g.score(), "{x:?}");
                        assert_eq!(s.points.iter().sum::<i64>(), s.total);
                        grades.insert(s.grade.code());
                    }
                }
            }
        }
        assert_eq!(grades.len(), 3, "the combinations reach every grade");
        assert_eq!(
            pb.score(&answers("lots", "", "", ""), 1).unwrap_err(),
            pb.grade(&answers("lots", "", "", ""), 1).unwrap_err()
        );
    }

    fn team(id: i64, territories: &[&str], reps: &[(i64, bool)], last: Option<i64>) -> RoutingTeam {
        RoutingTeam {
            team_id: id,
            territories: territories.iter().map(|s| s.to_string()).collect(),
            reps: reps.to_vec(),
            last_assigned: last,
        }
    }

    /// L-4: territory first, then round robin, skipping unavailable reps; B and C go to
    /// marketing.
    #[test]
    fn l4_routes_by_territory_then_round_robin() {
        let pb = Playbook::default_playbook();
        let teams = vec![
            team(1, &["上海", "江苏", "浙江"], &[(10, true), (11, true), (12, false)], Some(10)),
            team(2, &["北京", "天津"], &[(20, true)], None),
        ];
        let d = route(&pb, Grade::A, Some("上海"), Some("上海"), &teams);
        assert!(matches!(d, RouteDecision::Sales { team_id: 1, owner_id: 11, .. }), "{d:?}");
        let teams1 = vec![team(1, &["上海"], &[(10, true), (11, true), (12, false)], Some(11))];
        let d = route(&pb, Grade::A, None, Some("上海"), &teams1);
        let RouteDecision::Sales { owner_id, reason, .. } = d else { panic!() };
        assert_eq!(owner_id, 10, "12 is unavailable and skipped");
        assert!(reason.contains("1 unavailable"));
        let d = route(&pb, Grade::A, Some("北京"), Some("北京"), &teams);
        assert!(matches!(d, RouteDecision::Sales { team_id: 2, owner_id: 20, .. }));
        let d = route(&pb, Grade::A, Some("广东"), Some("深圳"), &teams);
        assert!(matches!(d, RouteDecision::Sales { team_id: 1, .. }), "no match falls back to all teams");
        assert_eq!(route(&pb, Grade::B, Some("上海"), None, &teams), RouteDecision::Nurture);
        assert_eq!(route(&pb, Grade::C, Some("上海"), None, &teams), RouteDecision::Content);
        let none = vec![team(1, &["上海"], &[(10, false)], None)];
        assert!(matches!(route(&pb, Grade::A, Some("上海"), None, &none), RouteDecision::Unassigned { .. }));
    }

    /// L-1: a lead needs a contact and someone to contact; answers are checked.
    #[test]
    fn l1_lead_input() {
        let pb = Playbook::default_playbook();
        let f = Fields::from_pairs([
            ("name", "张伟"),
            ("phone", "+86 138 0013 8000"),
            ("channel", "douyin"),
            ("need", "clear"),
        ]);
        let l = LeadInput::parse(&f, &pb).unwrap();
        assert_eq!(l.phone_key().as_deref(), Some("13800138000"));
        let f = Fields::from_pairs([("channel", "tv"), ("need", "huge"), ("email", "nope")]);
        let e = LeadInput::parse(&f, &pb).unwrap_err();
        assert!(e.get("channel").unwrap().contains("xiaohongshu"));
        assert!(e.get("need").unwrap().contains("critical"));
        assert_eq!(e.get("email"), Some("is not an e-mail address"));
        assert_eq!(e.get("name"), Some("give a name or a company"));
    }
}
