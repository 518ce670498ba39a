//! C-6 experiments: small tests before big roll-outs (seed 002's "MVP 测试": three short
//! videos before the campaign, a regional pilot before the national launch). Users are
//! assigned to variants by a hash of the experiment and the user, so the same user always
//! sees the same variant on every server without storing anything first; conversions are
//! compared with confidence intervals, a two-proportion z-test (a chi-square test for more
//! than two variants), a sample-size plan, and a plain recommendation.

use crate::errors::{FieldErrors, Fields};
use crate::stats::{chi2_sf, normal_cdf, normal_quantile};
use serde::Serialize;

/// The playbook's test settings (C-6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Two-sided significance level, percent (5 → 95 % confidence).
    pub significance_pct: f64,
    /// Power of the sample-size plan, percent.
    pub power_pct: f64,
}

impl Settings {
    pub fn from_playbook(pb: &crate::playbook::Playbook) -> Settings {
        Settings { significance_pct: pb.experiments.significance_pct, power_pct: pb.experiments.power_pct }
    }
}

/// What a person defines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Definition {
    /// Stable key (lowercase letters, digits, `-`, `_`): part of the assignment hash.
    pub key: String,
    pub name: String,
    pub hypothesis: String,
    /// The first is the control.
    pub variants: Vec<String>,
    /// Share of users per variant, percent, summing to 100.
    pub weights: Vec<u32>,
    /// Expected conversion rate of the control, percent (for the plan).
    pub baseline_pct: f64,
    /// Smallest relative lift worth detecting, percent of the baseline (for the plan).
    pub min_lift_pct: f64,
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 60
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Definition {
    /// Parses a definition: `variants` as a list or comma-separated text; `weights` likewise
    /// (default: equal shares). Every problem is named by its field.
    pub fn parse(f: &Fields) -> Result<Definition, FieldErrors> {
        let mut e = FieldErrors::new();
        let key = f.required(&mut e, "key", 60);
        if !key.is_empty() && !is_key(&key) {
            e.add("key", "use lowercase letters, digits, - and _ (at most 60)");
        }
        let name = f.required(&mut e, "name", 200);
        let hypothesis = f.optional(&mut e, "hypothesis", 2000).unwrap_or_default();
        // Weights: a list of numbers (JSON) or of texts (a form's "50,30,20").
        let list = |e: &mut FieldErrors, field: &str| -> Vec<String> {
            match f.0.get(field) {
                Some(serde_json::Value::Array(items)) if items.iter().all(|v| v.is_number()) => {
                    items.iter().map(|v| v.to_string()).collect()
                }
                _ => f.list(e, field).unwrap_or_default(),
            }
        };
        let variants = list(&mut e, "variants");
        if variants.len() < 2 || variants.len() > 10 {
            e.add("variants", "give 2 to 10 variants, the control first");
        } else if variants.iter().any(|v| v.is_empty() || v.chars().count() > 60) {
            e.add("variants", "each variant needs a name of at most 60 characters");
        } else if (1..variants.len()).any(|i| variants[..i].contains(&variants[i])) {
            e.add("variants", "variant names must differ");
        }
        let raw_weights = list(&mut e, "weights");
        let weights: Vec<u32> = if raw_weights.is_empty() {
            let n = variants.len().max(1) as u32;
            (0..n).map(|i| 100 / n + u32::from(i < 100 % n)).collect()
        } else {
            let parsed: Result<Vec<u32>, _> = raw_weights.iter().map(|w| w.parse::<u32>()).collect();
            match parsed {
                Ok(w) if w.len() == variants.len() && w.iter().sum::<u32>() == 100 && w.iter().all(|v| *v > 0) => w,
                _ => {
                    e.add("weights", "give one whole percentage above 0 per variant, summing to 100");
                    vec![]
                }
            }
        };
        let pct = |e: &mut FieldErrors, field: &str, default: f64, max: f64| -> f64 {
            let given = match f.0.get(field) {
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => f.text(e, field),
            };
            match given {
                None => default,
                Some(t) => match t.parse::<f64>() {
                    Ok(v) if v > 0.0 && v < max => v,
                    _ => {
                        e.add(field, format!("must be a number above 0 and below {max}"));
                        default
                    }
                },
            }
        };
        let baseline_pct = pct(&mut e, "baseline_pct", 5.0, 100.0);
        let min_lift_pct = pct(&mut e, "min_lift_pct", 20.0, 1000.0);
        if baseline_pct * (1.0 + min_lift_pct / 100.0) >= 100.0
            && e.get("baseline_pct").is_none()
            && e.get("min_lift_pct").is_none()
        {
            e.add("min_lift_pct", "the baseline raised by this lift would reach 100 %");
        }
        e.into_result(Definition { key, name, hypothesis, variants, weights, baseline_pct, min_lift_pct })
    }
}

/// FNV-1a, 64 bits: a fixed, documented hash, so assignments never change with a library
/// or platform.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The variant (index) of `user` in experiment `key`: the hash of `key:user` placed on
/// 10,000 buckets split by the weights. The same inputs always give the same variant.
pub fn assign(key: &str, user: &str, weights: &[u32]) -> usize {
    let mut h = fnv1a(format!("{key}:{user}").as_bytes());
    // Final avalanche (from SplitMix64) so nearby ids spread over all buckets.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    let bucket = (h % 10_000) as u32;
    let mut upper = 0;
    for (i, w) in weights.iter().enumerate() {
        upper += w * 100;
        if bucket < upper {
            return i;
        }
    }
    weights.len().saturating_sub(1)
}

/// One variant's observed figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantResult {
    pub variant: String,
    pub users: u64,
    pub conversions: u64,
    /// Percent.
    pub rate_pct: f64,
    /// Wilson score interval at the playbook's confidence, percent.
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
    /// Relative lift over the control, percent (none for the control or without data).
    pub lift_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Test {
    /// "z" (two variants) or "chi_square".
    pub method: &'static str,
    pub statistic: f64,
    pub degrees_of_freedom: u32,
    pub p_value: f64,
    pub significant: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    ScaleWinner,
    KeepRunning,
    Stop,
}

impl Decision {
    pub fn code(self) -> &'static str {
        match self {
            Decision::ScaleWinner => "scale_winner",
            Decision::KeepRunning => "keep_running",
            Decision::Stop => "stop",
        }
    }
}

/// The recommendation and why: `reason` is a code for the UI's sentence, `details` its
/// figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    pub decision: Decision,
    pub reason: &'static str,
    pub winner: Option<String>,
    pub details: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub variants: Vec<VariantResult>,
    pub test: Option<Test>,
    /// Users needed per variant by the plan.
    pub planned_users_per_variant: u64,
    pub recommendation: Recommendation,
}

/// Users per variant to detect a change of the control's rate `p1` to `p2` (fractions)
/// with a two-sided test at `alpha` and the given power (the standard two-proportion
/// formula with the pooled variance under the null).
pub fn sample_size(p1: f64, p2: f64, alpha: f64, power: f64) -> u64 {
    let za = normal_quantile(1.0 - alpha / 2.0);
    let zb = normal_quantile(power);
    let pbar = (p1 + p2) / 2.0;
    let n = (za * (2.0 * pbar * (1.0 - pbar)).sqrt() + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt()).powi(2)
        / (p2 - p1).powi(2);
    n.ceil() as u64
}

/// The plan of a definition under the playbook's settings.
pub fn plan(d: &Definition, s: &Settings) -> u64 {
    let p1 = d.baseline_pct / 100.0;
    let p2 = p1 * (1.0 + d.min_lift_pct / 100.0);
    sample_size(p1, p2.min(0.999_999), s.significance_pct / 100.0, s.power_pct / 100.0)
}

/// The sample-size planner (C-6): users per variant to detect a relative lift of
/// `min_lift_pct` on a control converting at `baseline_pct`, under the playbook's settings;
/// bad inputs are named by field.
pub fn planner(f: &Fields, s: &Settings) -> Result<(u64, f64, f64), FieldErrors> {
    let mut e = FieldErrors::new();
    let mut number = |field: &str, max: f64| -> f64 {
        let given = match f.0.get(field) {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => f.text(&mut e, field),
        };
        match given.as_deref().map(str::parse::<f64>) {
            Some(Ok(v)) if v > 0.0 && v < max => v,
            Some(_) => {
                e.add(field, format!("must be a number above 0 and below {max}"));
                1.0
            }
            None => {
                e.add(field, "is required");
                1.0
            }
        }
    };
    let baseline = number("baseline_pct", 100.0);
    let lift = number("min_lift_pct", 1000.0);
    if baseline * (1.0 + lift / 100.0) >= 100.0 && e.is_empty() {
        e.add("min_lift_pct", "the baseline raised by this lift would reach 100 %");
    }
    e.into_result(())?;
    let p1 = baseline / 100.0;
    Ok((sample_size(p1, p1 * (1.0 + lift / 100.0), s.significance_pct / 100.0, s.power_pct / 100.0), baseline, lift))
}

/// The Wilson score interval for `k` of `n` at normal quantile `z`, as fractions.
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The two-proportion z-test (pooled): (z, two-sided p-value).
pub fn z_test(k1: u64, n1: u64, k2: u64, n2: u64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let p = (k1 + k2) as f64 / (n1 + n2) as f64;
    let se = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (p2 - p1) / se;
    Some((z, 2.0 * (1.0 - normal_cdf(z.abs()))))
}

/// Pearson's chi-square test of independence on a k × 2 table (converted or not per
/// variant): (statistic, degrees of freedom, p-value).
pub fn chi_square(counts: &[(u64, u64)]) -> Option<(f64, u32, f64)> {
    let rows: Vec<(f64, f64)> = counts.iter().filter(|(_, n)| *n > 0).map(|(k, n)| (*k as f64, *n as f64)).collect();
    if rows.len() < 2 {
        return None;
    }
    let total: f64 = rows.iter().map(|r| r.1).sum();
    let converted: f64 = rows.iter().map(|r| r.0).sum();
    if converted == 0.0 || converted == total {
        return None;
    }
    let mut stat = 0.0;
    for (k, n) in &rows {
        let e1 = n * converted / total;
        let e0 = n - e1;
        stat += (k - e1).powi(2) / e1 + ((n - k) - e0).powi(2) / e0;
    }
    let df = (rows.len() - 1) as u32;
    Some((stat, df, chi2_sf(stat, f64::from(df))))
}

/// Analyses the observed (users, conversions) per variant, in the definition's order.
pub fn analyse(d: &Definition, observed: &[(u64, u64)], s: &Settings) -> Analysis {
    let alpha = s.significance_pct / 100.0;
    let z = normal_quantile(1.0 - alpha / 2.0);
    let rate = |k: u64, n: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let control = observed.first().map_or(0.0, |(n, k)| rate(*k, *n));
    let variants: Vec<VariantResult> = d
        .variants
        .iter()
        .zip(observed)
        .enumerate()
        .map(|(i, (name, &(n, k)))| {
            let (lo, hi) = wilson(k, n, z);
            let r = rate(k, n);
            VariantResult {
                variant: name.clone(),
                users: n,
                conversions: k,
                rate_pct: r * 100.0,
                ci_low_pct: lo * 100.0,
                ci_high_pct: hi * 100.0,
                lift_pct: (i > 0 && control > 0.0 && n > 0).then(|| (r / control - 1.0) * 100.0),
            }
        })
        .collect();
    let test = if observed.len() == 2 {
        z_test(observed[0].1, observed[0].0, observed[1].1, observed[1].0).map(|(zs, p)| Test {
            method: "z",
            statistic: zs,
            degrees_of_freedom: 1,
            p_value: p,
            significant: p < alpha,
        })
    } else {
        let table: Vec<(u64, u64)> = observed.iter().map(|(n, k)| (*k, *n)).collect();
        chi_square(&table).map(|(stat, df, p)| Test {
            method: "chi_square",
            statistic: stat,
            degrees_of_freedom: df,
            p_value: p,
            significant: p < alpha,
        })
    };
    let planned = plan(d, s);
    let smallest = observed.iter().map(|(n, _)| *n).min().unwrap_or(0);
    let reached = smallest >= planned;
    let best = variants
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.rate_pct.total_cmp(&b.1.rate_pct).then(b.0.cmp(&a.0)))
        .map(|(i, v)| (i, v.variant.clone()));
    let progress = vec![("users".to_string(), smallest.to_string()), ("planned".to_string(), planned.to_string())];
    let recommendation = match (&test, reached) {
        (Some(t), true) if t.significant => {
            let (i, name) = best.clone().unwrap_or((0, String::new()));
            if i == 0 {
                // The control beats every variant: nothing to scale.
                Recommendation {
                    decision: Decision::Stop,
                    reason: "control_best",
                    winner: Some(name),
                    details: vec![("p_value".into(), format!("{:.4}", t.p_value))],
                }
            } else {
                Recommendation {
                    decision: Decision::ScaleWinner,
                    reason: "significant",
                    winner: Some(name),
                    details: vec![
                        ("p_value".into(), format!("{:.4}", t.p_value)),
                        ("lift".into(), format!("{:.1}", variants[i].lift_pct.unwrap_or(0.0))),
                    ],
                }
            }
        }
        (Some(t), false) if t.significant => Recommendation {
            decision: Decision::KeepRunning,
            reason: "significant_early",
            winner: best.map(|b| b.1),
            details: progress,
        },
        (_, true) => Recommendation {
            decision: Decision::Stop,
            reason: "no_difference",
            winner: None,
            details: vec![(
                "p_value".into(),
                test.as_ref().map(|t| format!("{:.4}", t.p_value)).unwrap_or_else(|| "–".into()),
            )],
        },
        (_, false) => {
            Recommendation { decision: Decision::KeepRunning, reason: "collecting", winner: None, details: progress }
        }
    };
    Analysis { variants, test, planned_users_per_variant: planned, recommendation }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Settings {
        Settings { significance_pct: 5.0, power_pct: 80.0 }
    }

    fn def(variants: &[&str]) -> Definition {
        let n = variants.len() as u32;
        Definition {
            key: "videos".into(),
            name: "三条短视频".into(),
            hypothesis: String::new(),
            variants: variants.iter().map(|v| v.to_string()).collect(),
            weights: (0..n).map(|i| 100 / n + u32::from(i < 100 % n)).collect(),
            baseline_pct: 10.0,
            min_lift_pct: 20.0,
        }
    }

    /// C-6: assignment is deterministic, follows the weights, and differs per experiment.
    #[test]
    fn c6_assignment_is_stable_and_follows_weights() {
        assert_eq!(assign("videos", "u1", &[34, 33, 33]), assign("videos", "u1", &[34, 33, 33]));
        let mut counts = [0usize; 3];
        for u in 0..30_000 {
            counts[assign("videos", &format!("user{u}"), &[50, 30, 20])] += 1;
        }
        for (c, w) in counts.iter().zip([50.0, 30.0, 20.0]) {
            assert!((*c as f64 / 300.0 - w).abs() < 1.5, "{counts:?}");
        }
        let moved = (0..1000)
            .filter(|u| assign("a", &u.to_string(), &[50, 50]) != assign("b", &u.to_string(), &[50, 50]))
            .count();
        assert!((400..600).contains(&moved), "{moved}");
    }

    /// C-6: the tests and the plan against textbook values.
    #[test]
    fn c6_tests_and_plan_match_reference_values() {
        // 200/1000 vs 250/1000: pooled z = 2.677398, p = 0.0074196 (SciPy's norm; the
        // chi-square statistic without continuity correction is z²).
        let (z, p) = z_test(200, 1000, 250, 1000).unwrap();
        assert!((z - 2.677_397_763).abs() < 1e-8 && (p - 0.007_419_649_261).abs() < 1e-10, "{z} {p}");
        let (stat, df, p2) = chi_square(&[(200, 1000), (250, 1000)]).unwrap();
        assert!((stat - z * z).abs() < 1e-9 && df == 1 && (p2 - p).abs() < 1e-9);
        // Three variants: 30/100, 40/100, 50/100 → X² = 8.3333, df 2, p = 0.0155039 (SciPy's
        // chi2_contingency without correction).
        let (stat, df, p3) = chi_square(&[(30, 100), (40, 100), (50, 100)]).unwrap();
        assert!((stat - 8.333_333_333).abs() < 1e-8 && df == 2 && (p3 - 0.015_503_853_6).abs() < 1e-9, "{stat} {p3}");
        // 10 % → 12 % at α = 5 %, power 80 %: 3,841 per group (the pooled-variance formula).
        assert_eq!(sample_size(0.10, 0.12, 0.05, 0.80), 3_841);
        let (lo, hi) = wilson(20, 100, 1.959_963_984_540_054);
        assert!((lo - 0.133_367).abs() < 1e-5 && (hi - 0.288_829).abs() < 1e-5, "{lo} {hi}");
    }

    /// C-6: the recommendation follows the evidence and the plan.
    #[test]
    fn c6_recommendations() {
        let d = def(&["control", "b"]);
        let planned = plan(&d, &s());
        let early = analyse(&d, &[(500, 50), (500, 52)], &s());
        assert_eq!((early.recommendation.decision, early.recommendation.reason), (Decision::KeepRunning, "collecting"));
        let win = analyse(&d, &[(planned, planned / 10), (planned, planned * 13 / 100)], &s());
        assert_eq!(win.recommendation.decision, Decision::ScaleWinner, "{win:?}");
        assert_eq!(win.recommendation.winner.as_deref(), Some("b"));
        let same = analyse(&d, &[(planned, planned / 10), (planned, planned / 10)], &s());
        assert_eq!((same.recommendation.decision, same.recommendation.reason), (Decision::Stop, "no_difference"));
        let peek = analyse(&d, &[(800, 80), (800, 140)], &s());
        assert_eq!(
            (peek.recommendation.decision, peek.recommendation.reason),
            (Decision::KeepRunning, "significant_early")
        );
        let worse = analyse(&d, &[(planned, planned * 13 / 100), (planned, planned / 10)], &s());
        assert_eq!((worse.recommendation.decision, worse.recommendation.reason), (Decision::Stop, "control_best"));
        let three = analyse(&def(&["a", "b", "c"]), &[(100, 30), (100, 40), (100, 50)], &s());
        assert_eq!(three.test.as_ref().unwrap().method, "chi_square");
        assert!((three.variants[2].lift_pct.unwrap() - 66.666_666).abs() < 1e-3);
    }

    /// C-6: bad definitions name their fields.
    #[test]
    fn c6_definitions_are_checked() {
        let f = Fields::from_pairs([
            ("key", "Bad Key"),
            ("name", ""),
            ("variants", "only"),
            ("weights", "60,50"),
            ("baseline_pct", "0"),
        ]);
        let e = Definition::parse(&f).unwrap_err();
        for k in ["key", "name", "variants", "weights", "baseline_pct"] {
            assert!(e.get(k).is_some(), "{k}: {e}");
        }
        let ok = Definition::parse(&Fields::from_pairs([
            ("key", "pilot-east"),
            ("name", "华东试点"),
            ("variants", "全国,华东"),
        ]))
        .unwrap();
        assert_eq!((ok.weights.clone(), ok.baseline_pct), (vec![50, 50], 5.0));
    }
}
