//! The demo company's lead history: months of campaigns, leads, follow-ups, hand-offs,
//! nurture touches, trials, deals and SLA breaches, so every lead-engine page shows something
//! true on first start.
//!
//! Nothing is written behind the engine's back: the history is played forward in time
//! through the same store functions the API uses, with the clock set to each moment, and
//! the background work (breach scans, automation rules, the dormancy scan) runs as the
//! simulated hours pass. So breaches are real breaches, the two shipped automation rules
//! really fired, and the reports add up. A fixed seed makes every run the same.

use crate::jobs::Runner;
use domain::automation::Rule;
use domain::calendar::WorkingCalendar;
use domain::campaign::{CampaignInput, SpendInput};
use domain::deal::{DealInput, DealStage, StageInput, TouchKind};
use domain::lead::{BantAnswers, Channel, CompanySize, LeadInput, Utm};
use domain::money::Money;
use domain::playbook::Playbook;
use jiff::{Timestamp, tz::TimeZone};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use store::audit::Via;
use store::leads::Captured;
use store::{Actor, Db, Ts};

/// How far back the demo history goes: two quarters.
pub const DAYS: i64 = 182;

/// SplitMix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// An index drawn by weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "萧", "田", "董", "潘", "袁", "蔡",
    "蒋", "余", "欧阳",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平", "刚", "桂英", "建华", "晓东", "思远", "雨涵", "子轩", "欣怡", "浩然", "嘉怡", "志强", "海燕", "俊杰", "文博",
    "佳琪",
];
const TITLES: &[&str] =
    &["CIO", "IT 总监", "技术负责人", "运维经理", "CTO", "采购经理", "数字化负责人", "架构师", "总经理", "财务总监"];
const COMPANY_WORDS: &[&str] = &[
    "云帆", "数澜", "星河", "智联", "恒信", "天工", "瑞达", "博远", "鼎盛", "汇通", "华章", "宏图", "启明", "锐思",
    "聚合", "安易", "凌云", "新元", "同创", "精工", "海纳", "九州", "易达", "卓越", "明德", "昆仑", "青禾", "远景",
    "朗坤", "御风",
];
const COMPANY_KINDS: &[&str] =
    &["科技", "信息技术", "软件", "网络科技", "智能制造", "物流", "医疗科技", "零售", "教育科技", "金融服务", "传媒"];
/// (province, cities, weight): the two sales territories dominate, as the company sells there.
const PLACES: &[(&str, &[&str], u32)] = &[
    ("上海", &["上海"], 16),
    ("江苏", &["南京", "苏州", "无锡", "常州"], 14),
    ("浙江", &["杭州", "宁波", "温州"], 13),
    ("安徽", &["合肥", "芜湖"], 5),
    ("北京", &["北京"], 15),
    ("天津", &["天津"], 5),
    ("河北", &["石家庄", "保定"], 4),
    ("山东", &["济南", "青岛", "烟台"], 8),
    ("广东", &["深圳", "广州"], 8),
    ("四川", &["成都"], 4),
];

/// (channel, weight of leads, lead quality 0–2: how good its BANT answers tend to be)
const CHANNELS: &[(Channel, u32, u8)] = &[
    (Channel::BaiduSem, 22, 1),
    (Channel::Wechat, 18, 1),
    (Channel::WebsiteForm, 16, 1),
    (Channel::Douyin, 10, 0),
    (Channel::Xiaohongshu, 8, 0),
    (Channel::TradeShow, 9, 2),
    (Channel::Webinar, 8, 1),
    (Channel::Referral, 5, 2),
    (Channel::Email, 4, 1),
];

/// (name, channel, first day, last day (days from the start), planned cost in yuan,
/// spend per month in yuan, spend category)
const CAMPAIGNS: &[(&str, Channel, i64, i64, i64, i64, &str)] = &[
    ("百度搜索·云服务器关键词", Channel::BaiduSem, 0, 182, 360_000, 58_000, "ads"),
    ("微信公众号·上云白皮书", Channel::Wechat, 0, 182, 150_000, 22_000, "content"),
    ("官网·免费试用", Channel::WebsiteForm, 0, 182, 60_000, 9_000, "vendor"),
    ("抖音·信息流投放", Channel::Douyin, 30, 150, 200_000, 45_000, "ads"),
    ("小红书·种草笔记", Channel::Xiaohongshu, 60, 182, 120_000, 28_000, "kol"),
    ("2026 云计算产业峰会（上海）", Channel::TradeShow, 40, 43, 280_000, 0, "event"),
    ("华北数字化转型论坛（北京）", Channel::TradeShow, 110, 112, 220_000, 0, "event"),
    ("月度直播课·混合云实践", Channel::Webinar, 0, 182, 48_000, 7_000, "content"),
    ("老客户推荐计划", Channel::Referral, 0, 182, 40_000, 5_000, "other"),
    ("EDM·季度产品通讯", Channel::Email, 0, 182, 18_000, 2_500, "vendor"),
];

/// One thing that happens to a lead at a moment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Capture(u32),
    Respond {
        lead: i64,
        owner: i64,
    },
    Accept {
        lead: i64,
        owner: i64,
    },
    Reject {
        lead: i64,
        owner: i64,
        reason: u8,
    },
    /// `fit`: the lead's BANT total; better-fitting leads are likelier to convert and win.
    FollowUp {
        lead: i64,
        owner: i64,
        left: u8,
        fit: i64,
    },
    Convert {
        lead: i64,
        owner: i64,
        fit: i64,
    },
    Stage {
        deal: i64,
        owner: i64,
        stage: u8,
        enterprise: bool,
        fit: i64,
    },
    Touch {
        lead: i64,
        kind: u8,
        left: u8,
    },
    Signal {
        lead: i64,
        signal: u8,
        converts: bool,
    },
}

/// What the history made.
#[derive(Debug, Default)]
pub struct Made {
    pub campaigns: usize,
    pub leads: usize,
    pub merged: usize,
    pub deals: usize,
    pub won: usize,
    pub breaches: i64,
    pub automation_runs: i64,
}

struct World {
    db: Db,
    playbook: Playbook,
    version: i64,
    calendar: WorkingCalendar,
    tz: TimeZone,
    marketer: (i64, String),
    names: std::collections::HashMap<i64, String>,
    campaigns: Vec<(i64, Channel, i64, i64)>,
    rng: Rng,
    queue: BinaryHeap<Reverse<(i64, u64, Op)>>,
    seq: u64,
    made: Made,
}

impl World {
    fn rules(&self) -> store::leads::Rules<'_> {
        store::leads::Rules { playbook: &self.playbook, version: self.version, calendar: &self.calendar, tz: &self.tz }
    }

    fn actor(&self, user: i64, via: Via, at: i64) -> Actor {
        Actor { user_id: Some(user), label: self.names.get(&user).cloned().unwrap_or_default(), via, now: ts(at) }
    }

    fn at(&mut self, secs: i64, op: Op) {
        self.seq += 1;
        self.queue.push(Reverse((secs, self.seq, op)));
    }

    /// A time within working hours on or after `secs` (people answer leads at work).
    fn working(&self, secs: i64) -> i64 {
        let t = ts(secs).get().to_zoned(self.tz.clone());
        let hour = t.hour();
        let day = t.date();
        let start = |d: jiff::civil::Date, h: i8| {
            d.at(h, 0, 0, 0).to_zoned(self.tz.clone()).map_or(secs, |z| z.timestamp().as_second())
        };
        let mut d = if hour >= 19 { day.tomorrow().unwrap_or(day) } else { day };
        while !self.calendar.is_working_day(d) {
            d = d.tomorrow().unwrap_or(d);
        }
        if d != day || hour < 9 { start(d, 9) + (secs.rem_euclid(3600)) } else { secs }
    }
}

fn ts(secs: i64) -> Ts {
    Ts::new(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The two automation rules the seeds give as examples (seed 001 §1(四)(五)), enabled.
pub fn shipped_rules() -> Vec<Rule> {
    let parse = |pairs: &[(&str, &str)]| {
        Rule::parse(&domain::Fields::from_pairs(pairs.iter().map(|(k, v)| (*k, *v))))
            .expect("the shipped rules are valid")
    };
    vec![
        parse(&[
            ("name", "试用结束 3 天未注册 → 跟进任务"),
            ("event", "trial_finished"),
            ("without", "signed_up"),
            ("delay_key", "leads.automation.trial_no_signup_days"),
            ("delay_unit", "days"),
            ("action", "create_task"),
            ("title", "回访试用未注册客户"),
            (
                "script",
                "您好，我是云启科技的顾问。看到您前几天试用了我们的云服务，想了解一下使用中有没有遇到问题？\
                 我们可以为您延长试用并安排工程师一对一演示，帮您评估迁移成本。",
            ),
        ]),
        parse(&[
            ("name", "沉睡 30 天 → 唤醒内容"),
            ("event", "no_activity"),
            ("delay_key", "leads.automation.dormant_days"),
            ("delay_unit", "days"),
            ("action", "send_content"),
            ("title", "《2026 企业上云成本白皮书》+ 老客户专享体验券"),
        ]),
    ]
}

/// Plays `days` days of history up to `until`, unless the database already holds leads
/// (then it returns `None`: the history is loaded once).
pub async fn load(db: &Db, until: Timestamp, days: i64, progress: bool) -> anyhow::Result<Option<Made>> {
    if store::leads::count(db).await? > 0 {
        return Ok(None);
    }
    let active = store::playbook::active(db).await?.ok_or_else(|| anyhow::anyhow!("no active playbook"))?;
    let playbook = Playbook::parse(&active.document).map_err(anyhow::Error::msg)?;
    let company = store::company::get(db).await?.ok_or_else(|| anyhow::anyhow!("load the demo company first"))?;
    let tz = TimeZone::get(&company.time_zone)?;
    let calendar = store::calendar::working_calendar(db, &company).await?;
    let users = store::org::list_users(db).await?;
    let id_of = |email: &str| users.iter().find(|u| u.email == email).map(|u| u.id);
    let marketer = id_of("marketer@yunqi.example").ok_or_else(|| anyhow::anyhow!("load the demo company first"))?;
    let names = users.iter().map(|u| (u.id, u.display_name.clone())).collect();
    // Whole hours, so the simulated background work runs on the hour (and daily at 00:00 UTC).
    let start = (until.as_second() - days * 86_400).div_euclid(3600) * 3600;
    let mut w = World {
        db: db.clone(),
        playbook,
        version: active.version,
        calendar,
        tz,
        marketer: (marketer, "李娜".into()),
        names,
        campaigns: Vec::new(),
        rng: Rng(20_261_123),
        queue: BinaryHeap::new(),
        seq: 0,
        made: Made::default(),
    };
    let start_actor = w.actor(marketer, Via::Ui, start);
    // The acquisition team's lead made them, so trial follow-ups without a sales owner are hers.
    for rule in shipped_rules() {
        store::automation::create_rule(db, &w.actor(marketer, Via::Ui, start), &rule).await?;
    }
    campaigns(&mut w, &start_actor, start, until.as_second(), days).await?;
    // Leads per day: busier on working days, a little growth over the period.
    let mut n = 0u32;
    for day in 0..days {
        let date = ts(start + day * 86_400).get().to_zoned(w.tz.clone()).date();
        let working = w.calendar.is_working_day(date);
        let base = if working { 17 } else { 5 } + (day * 6 / days.max(1));
        let count = w.rng.between(base - 2, base + 3).max(0);
        for _ in 0..count {
            let secs = start + day * 86_400 + w.rng.between(8 * 3600, 22 * 3600) - 8 * 3600;
            w.at(secs.min(until.as_second() - 1), Op::Capture(n));
            n += 1;
        }
    }
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(u64::from(n));
        b.set_style(
            indicatif::ProgressStyle::with_template("demo history {bar:40} {pos}/{len} leads ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    // The background work, on the simulated clock.
    let now = Arc::new(AtomicI64::new(start));
    let clock_now = now.clone();
    let clock: web::Clock =
        Arc::new(move || Timestamp::from_second(clock_now.load(Ordering::Relaxed)).unwrap_or(Timestamp::UNIX_EPOCH));
    let runner =
        Runner::new(db.clone(), clock, store::auth::SessionPolicy::default(), store::auth::ThrottlePolicy::default());
    let mut next_tick = start;
    let end = until.as_second();
    while let Some(Reverse((at, _, op))) = w.queue.pop() {
        if at >= end {
            continue;
        }
        while next_tick <= at {
            now.store(next_tick, Ordering::Relaxed);
            background(&w, &runner, next_tick).await?;
            next_tick += 3600;
        }
        if matches!(op, Op::Capture(_))
            && let Some(b) = &bar
        {
            b.inc(1);
        }
        step(&mut w, at, op).await?;
    }
    while next_tick <= end {
        now.store(next_tick, Ordering::Relaxed);
        background(&w, &runner, next_tick).await?;
        next_tick += 3600;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Old notices count as seen; the last few days' stay unread for the badge.
    store::sla::mark_read_before(db, ts(end - 3 * 86_400)).await?;
    w.made.breaches = store::sla::breaches(db, ts(start), ts(end + 1)).await?.len() as i64;
    w.made.automation_runs = store::automation::count_runs(db).await?;
    Ok(Some(w.made))
}

async fn campaigns(w: &mut World, actor: &Actor, start: i64, end: i64, days: i64) -> anyhow::Result<()> {
    let date = |secs: i64| ts(secs).get().to_zoned(w.tz.clone()).date();
    for (name, channel, first, last, planned, monthly, category) in CAMPAIGNS {
        let (first, last) = (first * days / 182, (last * days / 182).max(first * days / 182));
        let input = CampaignInput {
            name: (*name).to_string(),
            channel: *channel,
            starts_on: Some(date(start + first * 86_400)),
            ends_on: Some(date(start + last * 86_400)),
            planned_cost: Money(planned * 300 * days / 182),
            owner_id: Some(w.marketer.0),
        };
        let c = store::campaigns::create(&w.db, actor, &input).await?;
        w.campaigns.push((c.id, *channel, start + first * 86_400, start + (last + 1) * 86_400));
        // Events are paid once; running channels monthly.
        let entries: Vec<(i64, i64)> = if *monthly == 0 {
            vec![(start + first * 86_400, planned * 3 * 95 / 100)]
        } else {
            (first..=last)
                .step_by(30)
                .map(|d| (start + d * 86_400, monthly * 3 * w.rng.between(85, 115) / 100))
                .filter(|(t, _)| *t < end)
                .collect()
        };
        for (at, yuan) in entries {
            let x = SpendInput {
                spent_on: date(at),
                amount: Money(yuan * 100),
                category,
                note: Some("月度结算".into()).filter(|_| *monthly != 0),
            };
            let a = w.actor(w.marketer.0, Via::Ui, at);
            store::campaigns::add_spend(&w.db, &a, c.id, &x).await?;
        }
        w.made.campaigns += 1;
    }
    Ok(())
}

/// One simulated hour of background work: the breach scan, due automation runs, and (once
/// a day) the dormancy scan.
async fn background(w: &World, runner: &Runner, at: i64) -> anyhow::Result<()> {
    let ctx = store::sla::ScanContext { now: ts(at), playbook_version: w.version, tz: &w.tz, link_base: "" };
    while store::sla::scan(&w.db, &ctx).await? > 0 {}
    while runner.run_one().await? {}
    if at.rem_euclid(86_400) == 0 {
        store::automation::dormant_scan(&w.db, ts(at), &w.playbook).await?;
    }
    Ok(())
}

fn answers(rng: &mut Rng, quality: u8) -> BantAnswers {
    let q = usize::from(quality);
    let pick = |rng: &mut Rng, codes: &[&str], weights: [&[u32]; 3]| codes[rng.weighted(weights[q])].to_string();
    BantAnswers {
        budget: Some(pick(rng, &["approved", "planned", "unknown"], [&[1, 3, 8], &[2, 4, 6], &[4, 4, 3]])),
        authority: Some(pick(rng, &["decision_maker", "influencer", "user"], [&[1, 3, 8], &[2, 4, 5], &[4, 4, 3]])),
        need: Some(pick(
            rng,
            &["critical", "clear", "moderate", "exploring", "none"],
            [&[1, 1, 3, 4, 3], &[1, 2, 4, 3, 2], &[2, 4, 3, 2, 1]],
        )),
        timeline: Some(pick(
            rng,
            &["within_3_months", "within_12_months", "later"],
            [&[1, 3, 8], &[2, 4, 5], &[4, 4, 3]],
        )),
    }
}

fn a_lead(w: &mut World, n: u32, at: i64) -> LeadInput {
    let rng = &mut w.rng;
    let ch = rng.weighted(&CHANNELS.iter().map(|c| c.1).collect::<Vec<_>>());
    let (channel, _, quality) = CHANNELS[ch];
    let (province, cities, _) = PLACES[rng.weighted(&PLACES.iter().map(|p| p.2).collect::<Vec<_>>())];
    let city = *rng.pick(cities);
    let company = format!("{}{}{}有限公司", city, rng.pick(COMPANY_WORDS), rng.pick(COMPANY_KINDS));
    let name = format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN));
    let enterprise = rng.chance(0.3);
    let campaign = w
        .campaigns
        .iter()
        .filter(|c| c.1 == channel && c.2 <= at && at < c.3)
        .map(|c| c.0)
        .next()
        .filter(|_| w.rng.chance(0.8));
    let rng = &mut w.rng;
    let phone = rng.chance(0.85).then(|| format!("1{}{:09}", rng.pick(&["3", "5", "8", "9"]), 100_000_000 + n));
    let email =
        rng.chance(0.7).then(|| format!("lead{n}@{}.example", ["corp", "group", "tech", "cloud"][n as usize % 4]));
    LeadInput {
        name: Some(name),
        company: Some(company),
        title: Some((*rng.pick(TITLES)).to_string()),
        email,
        phone,
        province: Some(province.to_string()),
        city: Some(city.to_string()),
        company_size: Some(if enterprise { CompanySize::Enterprise } else { CompanySize::Smb }),
        channel,
        campaign_id: campaign,
        utm: Utm {
            source: Some(channel.code().to_string()),
            medium: Some(if matches!(channel, Channel::BaiduSem | Channel::Douyin) { "cpc" } else { "organic" }.into()),
            ..Utm::default()
        },
        answers: answers(rng, quality),
        note: None,
    }
}

const TOUCHES: &[TouchKind] = &[
    TouchKind::WhitePaper,
    TouchKind::LiveCourse,
    TouchKind::Webinar,
    TouchKind::CaseStudy,
    TouchKind::Comparison,
    TouchKind::Demo,
    TouchKind::ReferenceMeeting,
];

async fn step(w: &mut World, at: i64, op: Op) -> anyhow::Result<()> {
    let hours = |h: i64| h * 3600;
    match op {
        Op::Capture(n) => {
            let mut input = a_lead(w, n, at);
            // A few come back through another channel with the same phone: L-2 merges them.
            if n > 50 && w.rng.chance(0.03) {
                input.phone = Some(format!("1{}{:09}", "3", 100_000_000 + w.rng.below(u64::from(n)) as u32));
            }
            let via = if input.channel == Channel::WebsiteForm { Via::Form } else { Via::Api };
            let actor = Actor { user_id: None, label: via_label(via), via, now: ts(at) };
            let captured = store::leads::capture(&w.db, &actor, &input, &w.rules(), None).await;
            let lead = match captured {
                Ok(Captured::Created(l)) => {
                    w.made.leads += 1;
                    l
                }
                Ok(Captured::Merged(_)) => {
                    w.made.merged += 1;
                    return Ok(());
                }
                // A random phone may collide with another's in a way the store refuses: skip.
                Ok(Captured::Replayed { .. }) | Err(store::Error::Invalid(_) | store::Error::Conflict(_)) => {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            match (lead.route.as_str(), lead.owner_id) {
                ("sales", Some(owner)) => {
                    // Most first responses come within the working hours allowed; some do not.
                    let late = w.rng.chance(0.12);
                    let delay = if late { hours(w.rng.between(9, 30)) } else { w.rng.between(600, hours(4)) };
                    let t = w.working(at + delay);
                    w.at(t, Op::Respond { lead: lead.id, owner });
                    let fit = lead.total;
                    let accept = w.rng.chance(0.75 + 0.06 * (fit - 10) as f64);
                    let t = t + w.rng.between(300, hours(2));
                    if accept {
                        w.at(t, Op::Accept { lead: lead.id, owner });
                        let left = w.rng.between(1, 4) as u8;
                        let t = t + hours(w.rng.between(20, 60));
                        w.at(t, Op::FollowUp { lead: lead.id, owner, left, fit });
                    } else {
                        let reason = w.rng.below(6) as u8;
                        w.at(t, Op::Reject { lead: lead.id, owner, reason });
                    }
                }
                ("nurture", _) => {
                    let t = at + hours(w.rng.between(24, 96));
                    let left = w.rng.between(1, 4) as u8;
                    w.at(t, Op::Touch { lead: lead.id, kind: 0, left });
                    if w.rng.chance(0.25) {
                        let t = at + hours(w.rng.between(2, 48));
                        let converts = w.rng.chance(0.6);
                        w.at(t, Op::Signal { lead: lead.id, signal: 0, converts });
                    }
                }
                _ => {
                    if w.rng.chance(0.3) {
                        let t = at + hours(w.rng.between(24, 240));
                        w.at(t, Op::Touch { lead: lead.id, kind: 0, left: 1 });
                    }
                }
            }
        }
        Op::Respond { lead, owner } => {
            let note = *w.rng.pick(&[
                "首次电话沟通，确认需求",
                "加微信，发送产品资料",
                "电话未接通，已发短信",
                "确认预算与采购时间",
            ]);
            let a = w.actor(owner, Via::Ui, at);
            store::sla::record_activity(&w.db, &a, lead, "call", Some(note), w.playbook.leads.sla.follow_up_max_hours)
                .await?;
        }
        Op::Accept { lead, owner } => {
            let a = w.actor(owner, Via::Ui, at);
            ignore_conflict(store::deals::accept(&w.db, &a, lead).await)?;
        }
        Op::Reject { lead, owner, reason } => {
            let reasons = &w.playbook.leads.handoff.reject_reasons;
            let r = reasons.get(usize::from(reason) % reasons.len().max(1)).cloned().unwrap_or_else(|| "其他".into());
            let a = w.actor(owner, Via::Ui, at);
            ignore_conflict(store::deals::reject(&w.db, &a, lead, &r).await)?;
        }
        Op::FollowUp { lead, owner, left, fit } => {
            // Now and then a follow-up slips past the 72 hours.
            let note = *w.rng.pick(&["方案沟通", "技术交流会", "报价前确认需求", "安排 Demo", "客户内部评估中"]);
            let kind = *w.rng.pick(&["call", "meeting", "wechat", "email"]);
            let a = w.actor(owner, Via::Ui, at);
            store::sla::record_activity(&w.db, &a, lead, kind, Some(note), w.playbook.leads.sla.follow_up_max_hours)
                .await?;
            if left > 1 {
                let gap = if w.rng.chance(0.06) { w.rng.between(74, 110) } else { w.rng.between(20, 66) };
                w.at(at + gap * 3600, Op::FollowUp { lead, owner, left: left - 1, fit });
            } else if w.rng.chance(0.45 + 0.1 * (fit - 10) as f64) {
                let t = at + w.rng.between(2, 48) * 3600;
                w.at(t, Op::Convert { lead, owner, fit });
            } else {
                let reason = w.rng.below(6) as u8;
                let t = at + w.rng.between(2, 72) * 3600;
                w.at(t, Op::Reject { lead, owner, reason });
            }
        }
        Op::Convert { lead, owner, fit } => {
            let l = store::leads::get(&w.db, lead).await?;
            let Some(l) = l.filter(|l| l.status == "accepted") else { return Ok(()) };
            let enterprise = l.company_size.as_deref() == Some("enterprise");
            let yuan = if enterprise { w.rng.between(15, 80) * 10_000 } else { w.rng.between(20, 120) * 1_000 };
            let d = DealInput {
                name: format!("{} · 云平台采购", l.company.clone().unwrap_or_default()),
                amount: Money(yuan * 100),
            };
            let a = w.actor(owner, Via::Ui, at);
            let deal = store::deals::convert(&w.db, &a, lead, &d).await?;
            w.made.deals += 1;
            let days = if enterprise { w.rng.between(10, 40) } else { w.rng.between(5, 20) };
            w.at(at + days * 86_400, Op::Stage { deal: deal.id, owner, stage: 1, enterprise, fit });
        }
        Op::Stage { deal, owner, stage, enterprise, fit } => {
            let (s, lost_reason) = match stage {
                1 => (DealStage::Proposal, None),
                2 => (DealStage::Negotiation, None),
                _ if w.rng.chance(0.5 + 0.08 * (fit - 10) as f64) => (DealStage::ClosedWon, None),
                _ => {
                    let reasons = &w.playbook.leads.conversion.lost_reasons;
                    (DealStage::ClosedLost, Some(w.rng.pick(reasons).clone()))
                }
            };
            let a = w.actor(owner, Via::Ui, at);
            let input = StageInput { stage: s, lost_reason, amount: None };
            store::deals::set_stage(&w.db, &a, deal, &input, &w.rules()).await?;
            if s == DealStage::ClosedWon {
                w.made.won += 1;
            }
            if stage < 3 {
                let days = if enterprise { w.rng.between(12, 45) } else { w.rng.between(5, 20) };
                w.at(at + days * 86_400, Op::Stage { deal, owner, stage: stage + 1, enterprise, fit });
            }
        }
        Op::Touch { lead, kind, left } => {
            let k = TOUCHES[usize::from(kind).min(TOUCHES.len() - 1)];
            let title = match k {
                TouchKind::WhitePaper => "《企业上云成本白皮书》",
                TouchKind::LiveCourse | TouchKind::Webinar => "直播课：混合云架构实践",
                TouchKind::CaseStudy => "客户案例：制造业上云节省 38% 运维成本",
                TouchKind::Comparison => "主流云厂商对比表",
                TouchKind::Demo => "产品演示",
                _ => "标杆客户参观",
            };
            let a = w.actor(w.marketer.0, Via::Ui, at);
            ignore_conflict(store::deals::touch(&w.db, &a, lead, k, Some(title), &w.rules()).await.map(|_| ()))?;
            if left > 1 {
                let next = (kind + 1 + w.rng.below(2) as u8).min(TOUCHES.len() as u8 - 1);
                let t = at + w.rng.between(3, 14) * 86_400;
                w.at(t, Op::Touch { lead, kind: next, left: left - 1 });
            }
        }
        Op::Signal { lead, signal, converts } => {
            let code = ["trial_started", "trial_finished", "signed_up"][usize::from(signal.min(2))];
            let a = w.actor(w.marketer.0, Via::Api, at);
            let rules = w.rules();
            ignore_conflict(store::automation::signal(&w.db, &a, lead, code, &rules).await)?;
            match signal {
                0 => {
                    let t = at + w.rng.between(5, 14) * 86_400;
                    w.at(t, Op::Signal { lead, signal: 1, converts });
                }
                1 if converts => {
                    let t = at + w.rng.between(3_600, 2 * 86_400);
                    w.at(t, Op::Signal { lead, signal: 2, converts });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn via_label(via: Via) -> String {
    match via {
        Via::Form => "web form".into(),
        _ => "api".into(),
    }
}

/// A step that no longer applies (the lead moved on meanwhile) is skipped, as a person
/// would skip it.
fn ignore_conflict<T>(r: Result<T, store::Error>) -> anyhow::Result<()> {
    match r {
        Ok(_) | Err(store::Error::Conflict(_) | store::Error::NotFound | store::Error::Invalid(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Customers in the demo's order history.
const DEMO_CUSTOMERS: i64 = 1_200;

/// C-1/C-2 demo data: two years of orders of the company's customers up to `until`, so the
/// customer pages and RFM segments show something true on first start. Customers arrive
/// through the two years; each buys at its own rate (cloud renewals and top-ups) and some
/// stop buying — new, loyal, at-risk and dormant customers all appear. Only into a database
/// without orders; `None` when it already holds some.
pub async fn load_orders(db: &Db, until: Timestamp) -> anyhow::Result<Option<store::customers::AddOutcome>> {
    if store::customers::count(db).await?.1 > 0 {
        return Ok(None);
    }
    let mut rng = Rng(20_241_201);
    let last = until.to_zoned(TimeZone::get("Asia/Shanghai")?).date();
    let first = last.checked_sub(jiff::Span::new().days(730))?;
    let mut orders = Vec::new();
    for c in 1..=DEMO_CUSTOMERS {
        let name = format!("{}{}{}", rng.pick(PLACES).0, rng.pick(COMPANY_WORDS), rng.pick(COMPANY_KINDS));
        // Arrival spread over the two years; purchases at random (exponential gaps of 20–200
        // days on average); after each purchase a customer may drop out for good, some more
        // readily than others — the buying pattern C-3's BG/NBD model describes.
        let mut day = rng.between(0, 720);
        let every = rng.between(20, 200) as f64;
        let drop_out = [0.03, 0.1, 0.3][rng.between(0, 2) as usize];
        let size = rng.between(2, 60) * 500;
        let channel = *rng.pick(&["douyin", "wechat", "baidu_sem", "xiaohongshu", "trade_show", "website_form"]);
        let mut n = 0;
        while day <= 730 {
            let date = first.checked_add(jiff::Span::new().days(day))?;
            let cents = rng.between(0, 99);
            let amount = format!("{}.{cents:02}", size + rng.between(-size / 4, size / 2));
            let fields = domain::Fields::from_pairs([
                ("order_id", format!("SO{}{c:04}{n:03}", date.year())),
                ("customer_id", format!("{}", 10_000 + c)),
                ("order_date", date.to_string()),
                ("amount", amount),
                ("customer_name", name.clone()),
                ("channel", channel.to_string()),
            ]);
            orders.push(domain::order::OrderInput::parse(&fields, last).map_err(anyhow::Error::msg)?);
            n += 1;
            if rng.chance(drop_out) {
                break;
            }
            let u = (rng.between(1, 1_000_000) as f64) / 1_000_001.0;
            day += (-every * u.ln()).ceil().max(1.0) as i64;
        }
    }
    let actor = Actor::system(Ts::new(until));
    Ok(Some(store::customers::add_orders(db, &actor, &orders, "demo", &|_| {}).await?))
}

/// C-5 demo data: 90 days of funnel events up to `until` from 3,000 users over the
/// channels, each going as far down exposure → click → conversion → repurchase as its
/// channel's rates take it (some clicks arrive at the same instant as their exposure and so
/// do not count). Only into a database without events; `None` when it holds some.
pub async fn load_events(db: &Db, until: Timestamp) -> anyhow::Result<Option<usize>> {
    if store::funnel::any(db).await? {
        return Ok(None);
    }
    // (channel, campaign, click %, conversion %, repurchase %)
    const PATHS: &[(&str, &str, u64, u64, u64)] = &[
        ("douyin", "短视频A", 32, 18, 30),
        ("douyin", "短视频B", 26, 24, 25),
        ("wechat", "公众号推文", 41, 15, 40),
        ("baidu_sem", "云服务器关键词", 48, 12, 35),
        ("xiaohongshu", "种草笔记", 35, 9, 20),
    ];
    let mut rng = Rng(20_260_601);
    let mut events = Vec::new();
    let start = until.as_second() - 90 * 86_400;
    for user in 0..3_000 {
        let (channel, campaign, click, conversion, repurchase) = *rng.pick(PATHS);
        let mut at = start + rng.between(0, 85 * 86_400);
        let mut push = |kind: &str, at: i64| -> anyhow::Result<()> {
            let ts = Timestamp::from_second(at)?.to_string();
            let f = domain::Fields::from_pairs([
                ("user_id", format!("U{user:05}")),
                ("channel", channel.to_string()),
                ("campaign", campaign.to_string()),
                ("type", kind.to_string()),
                ("ts", ts),
            ]);
            events.push(domain::funnel::EventInput::parse(&f).map_err(anyhow::Error::msg)?);
            Ok(())
        };
        push("exposure", at)?;
        // Most users see the campaign a few times.
        for _ in 0..rng.between(0, 2) {
            push("exposure", at + rng.between(3_600, 3 * 86_400))?;
        }
        let steps = [("click", click), ("conversion", conversion), ("repurchase", repurchase)];
        for (kind, pct) in steps {
            if rng.below(100) >= pct {
                break;
            }
            // One in twenty clicks is logged at the exposure's own instant: not a step.
            let same = kind == "click" && rng.below(20) == 0;
            at += if same { 0 } else { rng.between(60, 5 * 86_400) };
            push(kind, at)?;
            if same {
                break;
            }
        }
    }
    let n = events.len();
    store::funnel::add_events(db, &Actor::system(Ts::new(until)), &events, "demo").await?;
    Ok(Some(n))
}

/// C-6 demo data: seed 002's two kinds of small test before a big roll-out — three short
/// videos tried on 4,500 users (running), and a regional pilot against the national plan
/// (stopped, with a clear winner). Only into a database without experiments; `None` when
/// it holds some.
pub async fn load_experiments(db: &Db, until: Timestamp) -> anyhow::Result<Option<usize>> {
    if !store::experiments::list(db).await?.is_empty() {
        return Ok(None);
    }
    // (key, name, hypothesis, variants, conversion % per variant, users, days ago, stopped)
    type Test = (&'static str, &'static str, &'static str, &'static [&'static str], &'static [f64], usize, i64, bool);
    const TESTS: &[Test] = &[
        (
            "short-videos",
            "三条短视频 MVP 测试",
            "产品演示类短视频的注册转化高于品牌故事",
            &["品牌故事", "产品演示", "客户证言"],
            &[8.0, 10.5, 8.8],
            4_500,
            30,
            false,
        ),
        (
            "pilot-east",
            "华东区域试点",
            "华东新定价方案的试用转化高于全国现行方案",
            &["全国现行方案", "华东新方案"],
            &[6.0, 7.6],
            14_000,
            75,
            true,
        ),
    ];
    let mut rng = Rng(20_261_101);
    let mut users_total = 0;
    for (key, name, hypothesis, variants, rates, users, days_ago, stopped) in TESTS {
        let start = until - jiff::SignedDuration::from_hours(24 * days_ago);
        let actor = Actor::system(Ts::new(start));
        let fields = domain::Fields::from_json(serde_json::json!({"key": key, "name": name, "hypothesis": hypothesis,
            "variants": variants, "baseline_pct": rates[0], "min_lift_pct": 25}))
        .map_err(anyhow::Error::msg)?;
        let d = domain::experiment::Definition::parse(&fields).map_err(anyhow::Error::msg)?;
        store::experiments::create(db, &actor, &d).await?;
        let x = store::experiments::set_status(db, &actor, key, "running").await?;
        let ids: Vec<String> = (0..*users).map(|u| format!("{key}-{u:05}")).collect();
        let assigned = store::experiments::assign(db, &x, &ids, Ts::new(start)).await?;
        let mut converted: Vec<(String, Ts)> = Vec::new();
        for (u, v) in ids.iter().zip(&assigned) {
            if rng.chance(rates[*v] / 100.0) {
                let at = start + jiff::SignedDuration::from_hours(rng.between(1, 24 * 20));
                converted.push((u.clone(), Ts::new(at)));
            }
        }
        store::experiments::convert(db, &x, &converted).await?;
        if *stopped {
            let end = Actor::system(Ts::new(until - jiff::SignedDuration::from_hours(24 * 5)));
            store::experiments::set_status(db, &end, key, "stopped").await?;
        }
        users_total += users;
    }
    Ok(Some(users_total))
}

/// C-4 demo data: thirty long-standing customers each referred one or two of the customers
/// who arrived later, a few days before those customers' first orders. Only into a
/// database without referrals; `None` when it holds some (or has no demo orders).
pub async fn load_referrals(db: &Db, until: Timestamp) -> anyhow::Result<Option<usize>> {
    if store::referrals::any(db).await? {
        return Ok(None);
    }
    let mut rng = Rng(20_261_115);
    let actor = Actor::system(Ts::new(until));
    let mut made = 0;
    for k in 0..30i64 {
        let referrer = format!("{}", 10_001 + k);
        let Some(code) = store::referrals::code_of(db, &actor, &referrer).await? else {
            return Ok(None);
        };
        for j in 0..rng.between(1, 2) {
            let referred = format!("{}", 10_600 + k * 2 + j);
            let Some(c) = store::customers::get(db, &referred).await? else { continue };
            let Some(first) = c.first_order_day else { continue };
            let day = first - rng.between(1, 10);
            match store::referrals::refer(db, &actor, &code, &referred, None, day).await {
                Ok(_) => made += 1,
                Err(store::Error::Conflict(_) | store::Error::Invalid(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Finance has paid the rewards of the referrals made more than two months ago; the
    // newer qualified ones are still owed (the report shows both, with a Pay button).
    let active = store::playbook::active(db).await?.ok_or_else(|| anyhow::anyhow!("no active playbook"))?;
    let rule = domain::referral::Rule::from_playbook(&Playbook::parse(&active.document).map_err(anyhow::Error::msg)?);
    let today = domain::order::day_number(until.to_zoned(TimeZone::get("Asia/Shanghai")?).date());
    let finance = Actor { label: "finance@yunqi.example".into(), ..Actor::system(Ts::new(until)) };
    for r in store::referrals::all(db, rule.qualify_days).await? {
        if r.day + 60 < today && domain::referral::payout(&rule, &r, today).is_ok() {
            let reference = format!("FIN-{}", r.id);
            store::referrals::pay(db, &finance, r.id, &rule, active.version, today, Some(&reference)).await?;
        }
    }
    Ok(Some(made))
}

/// C-3 demo data for the subscription view: 400 of the demo customers subscribe to the
/// cloud platform on their first order day (基础版, 专业版 or 企业版 at their monthly price);
/// each month a few cancel, some upgrade to the next plan (the old subscription ends, a new
/// one starts). Only into a database without subscriptions; `None` when it holds some (or
/// has no demo orders).
pub async fn load_subscriptions(
    db: &Db,
    until: Timestamp,
) -> anyhow::Result<Option<store::subscriptions::SubsOutcome>> {
    if store::subscriptions::data_mark(db).await?.0 > 0 {
        return Ok(None);
    }
    const PLANS: [(&str, &str); 3] = [("基础版", "990"), ("专业版", "2990"), ("企业版", "9900")];
    let today = until.to_zoned(TimeZone::get("Asia/Shanghai")?).date();
    let mut rng = Rng(20_261_202);
    let mut subs = Vec::new();
    for c in 1..=400 {
        let customer = format!("{}", 10_000 + c);
        let Some(first) = store::customers::get(db, &customer).await?.and_then(|c| c.first_order_day) else { continue };
        let mut start = domain::order::date_of(first);
        let mut plan = rng.weighted(&[6, 3, 1]);
        let mut n = 0;
        let mut month = start;
        loop {
            month = month.checked_add(jiff::Span::new().days(30))?;
            let cancel = month <= today && rng.chance(0.03);
            let upgrade = !cancel && month <= today && plan < 2 && rng.chance(0.03);
            if !(cancel || upgrade) && month <= today {
                continue;
            }
            let end = (month <= today).then_some(month);
            let fields = domain::Fields::from_pairs([
                ("subscription_id", format!("SUB{c:04}-{n}")),
                ("customer_id", customer.clone()),
                ("plan", PLANS[plan].0.to_string()),
                ("start_date", start.to_string()),
                ("mrr", PLANS[plan].1.to_string()),
            ]);
            let mut fields = fields;
            if let Some(end) = end {
                fields.set("end_date", end.to_string());
            }
            subs.push(domain::subscription::SubscriptionInput::parse(&fields, today).map_err(anyhow::Error::msg)?);
            if !upgrade {
                break;
            }
            (start, plan, n) = (month, plan + 1, n + 1);
        }
    }
    if subs.is_empty() {
        return Ok(None);
    }
    Ok(Some(store::subscriptions::add(db, &Actor::system(Ts::new(until)), &subs).await?))
}
