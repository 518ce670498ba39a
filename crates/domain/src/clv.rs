//! C-3 customer lifetime value: the BG/NBD model of repeat purchasing (Fader, Hardie & Lee
//! 2005, "Counting your customers the easy way") and the Gamma-Gamma model of spend
//! (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves"), both fitted by
//! maximum likelihood, with standard errors from the observed information.
//!
//! A customer enters as (x, t_x, T): x repeat transactions, the last at t_x after the first
//! purchase, observed for T since the first purchase, with time in the chosen unit.
//! Transactions are purchase *days*: several orders on one day are one transaction with
//! their amounts summed. Spend is the mean value of the repeat transactions (the first
//! purchase is left out, as in the paper).
//!
//! Fitting groups customers with equal (x, t_x, T) — with days as the grain there are far
//! fewer patterns than customers — and keeps every term that depends on x alone in a table
//! per distinct x, so one likelihood evaluation costs a few operations per pattern.

use crate::stats::{digamma, invert, ln_gamma, ln_hyp2f1, minimise};
use serde::Serialize;
use std::collections::HashMap;

/// The time unit recency and age are measured in; it scales time only (the paper fits
/// CDNOW in weeks), never what counts as a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Day,
    Week,
    Month,
}

impl Unit {
    pub const NAMES: [&'static str; 3] = ["day", "week", "month"];

    pub fn parse(s: &str) -> Option<Unit> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" | "days" | "d" => Some(Unit::Day),
            "week" | "weeks" | "w" => Some(Unit::Week),
            "month" | "months" | "m" => Some(Unit::Month),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        }
    }

    /// Days in one unit (a month is a twelfth of a Julian year).
    pub fn days(self) -> f64 {
        match self {
            Unit::Day => 1.0,
            Unit::Week => 7.0,
            Unit::Month => DAYS_PER_MONTH,
        }
    }
}

pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// One customer's history as the models see it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct History {
    /// Repeat transactions (purchase days after the first).
    #[serde(rename = "frequency")]
    pub x: u32,
    /// Time of the last transaction after the first purchase.
    #[serde(rename = "recency")]
    pub t_x: f64,
    /// Time from the first purchase to the "as of" date.
    #[serde(rename = "T")]
    pub t: f64,
    /// Mean value of the repeat transactions in yuan (0 when there are none).
    pub monetary: f64,
}

/// Per-customer order facts up to the "as of" day, as the store reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchases {
    pub customer: String,
    pub first_day: i64,
    pub last_day: i64,
    /// Distinct days with an order.
    pub days: i64,
    /// Amount of all orders (fen).
    pub total_fen: i64,
    /// Amount of the orders on the first day (fen).
    pub first_day_fen: i64,
}

impl Purchases {
    pub fn history(&self, as_of: i64, unit: Unit) -> History {
        let x = (self.days - 1).max(0);
        let monetary = if x > 0 { (self.total_fen - self.first_day_fen) as f64 / 100.0 / x as f64 } else { 0.0 };
        History {
            x: x as u32,
            t_x: (self.last_day - self.first_day) as f64 / unit.days(),
            t: (as_of - self.first_day) as f64 / unit.days(),
            monetary,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// A fitted model: its parameters, their standard errors (NaN — `null` in JSON — where the
/// information matrix could not be inverted), the maximised log-likelihood and how the
/// search ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fitted<P> {
    pub params: P,
    pub standard_errors: P,
    pub log_likelihood: f64,
    pub iterations: usize,
    pub converged: bool,
    /// Customers the model was fitted on.
    pub customers: usize,
}

/// One customer's BG/NBD log-likelihood, written term by term as in the paper's eq. (6)
/// (section 7 of Hardie's note 004 for the log form).
pub fn bg_log_likelihood(p: &BgNbd, h: &History) -> f64 {
    let x = f64::from(h.x);
    let a1 = ln_gamma(p.r + x) - ln_gamma(p.r) + p.r * p.alpha.ln();
    let a2 = ln_gamma(p.a + p.b) + ln_gamma(p.b + x) - ln_gamma(p.b) - ln_gamma(p.a + p.b + x);
    let a3 = -(p.r + x) * (p.alpha + h.t).ln();
    if h.x == 0 {
        return a1 + a2 + a3;
    }
    let a4 = p.a.ln() - (p.b + x - 1.0).ln() - (p.r + x) * (p.alpha + h.t_x).ln();
    a1 + a2 + log_add_exp(a3, a4)
}

/// One repeat customer's Gamma-Gamma log-likelihood of its mean spend `m` over `x`
/// transactions (the density of the mean with the customer's scale integrated out).
pub fn gg_log_likelihood(p: &GammaGamma, x: u32, m: f64) -> f64 {
    let x = f64::from(x);
    let px = p.p * x;
    ln_gamma(px + p.q) - ln_gamma(px) - ln_gamma(p.q) + p.q * p.v.ln() + (px - 1.0) * m.ln() + px * x.ln()
        - (px + p.q) * (x * m + p.v).ln()
}

fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Customers grouped by pattern, with the distinct values of x, T and t_x apart so their
/// logarithms are taken once per evaluation.
struct Patterns {
    xs: Vec<f64>,
    ts: Vec<f64>,
    txs: Vec<f64>,
    /// (x index, T index, t_x index, customers with this pattern)
    rows: Vec<(u32, u32, u32, f64)>,
    customers: f64,
}

fn index_of(map: &mut HashMap<u64, u32>, values: &mut Vec<f64>, v: f64) -> u32 {
    *map.entry(v.to_bits()).or_insert_with(|| {
        values.push(v);
        (values.len() - 1) as u32
    })
}

impl Patterns {
    fn new(hs: &[History]) -> Patterns {
        let (mut xm, mut tm, mut txm) = (HashMap::new(), HashMap::new(), HashMap::new());
        let mut p = Patterns { xs: vec![], ts: vec![], txs: vec![], rows: vec![], customers: hs.len() as f64 };
        let mut rows: HashMap<(u32, u32, u32), usize> = HashMap::new();
        for h in hs {
            let key = (
                index_of(&mut xm, &mut p.xs, f64::from(h.x)),
                index_of(&mut tm, &mut p.ts, h.t),
                index_of(&mut txm, &mut p.txs, h.t_x),
            );
            let n = rows.len();
            let at = *rows.entry(key).or_insert(n);
            if at == n {
                p.rows.push((key.0, key.1, key.2, 0.0));
            }
            p.rows[at].3 += 1.0;
        }
        p
    }

    /// The total log-likelihood and its gradient in (r, α, a, b).
    fn evaluate(&self, p: &BgNbd) -> (f64, [f64; 4]) {
        let BgNbd { r, alpha, a, b } = *p;
        struct PerX {
            lg: f64,
            d_r: f64,
            d_a: f64,
            d_b: f64,
            ln_b1: f64,
            inv_b1: f64,
        }
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let (dg_r, dg_ab, dg_b) = (digamma(r), digamma(a + b), digamma(b));
        let base = ln_gamma(a + b) - ln_gamma(r) - ln_gamma(b) + r * ln_alpha;
        let per_x: Vec<PerX> = self
            .xs
            .iter()
            .map(|&x| PerX {
                lg: base + ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x),
                d_r: digamma(r + x) - dg_r + ln_alpha,
                d_a: dg_ab - digamma(a + b + x),
                d_b: dg_ab + digamma(b + x) - dg_b - digamma(a + b + x),
                ln_b1: if x > 0.0 { (b + x - 1.0).ln() } else { 0.0 },
                inv_b1: if x > 0.0 { 1.0 / (b + x - 1.0) } else { 0.0 },
            })
            .collect();
        let ln_t: Vec<f64> = self.ts.iter().map(|t| (alpha + t).ln()).collect();
        let ln_tx: Vec<f64> = self.txs.iter().map(|t| (alpha + t).ln()).collect();
        let (mut ll, mut g) = (0.0, [0.0; 4]);
        for &(xi, ti, txi, w) in &self.rows {
            let x = self.xs[xi as usize];
            let px = &per_x[xi as usize];
            let (lt, ltx) = (ln_t[ti as usize], ln_tx[txi as usize]);
            let a3 = -(r + x) * lt;
            // Share of the "still alive" branch in the likelihood (1 without repeats).
            let (lse, s3) = if x > 0.0 {
                let a4 = ln_a - px.ln_b1 - (r + x) * ltx;
                let m = a3.max(a4);
                let (e3, e4) = ((a3 - m).exp(), (a4 - m).exp());
                (m + (e3 + e4).ln(), e3 / (e3 + e4))
            } else {
                (a3, 1.0)
            };
            let s4 = 1.0 - s3;
            let it = 1.0 / (alpha + self.ts[ti as usize]);
            let itx = 1.0 / (alpha + self.txs[txi as usize]);
            ll += w * (px.lg + lse);
            g[0] += w * (px.d_r - s3 * lt - s4 * ltx);
            g[1] += w * (r / alpha - (r + x) * (s3 * it + s4 * itx));
            g[2] += w * (px.d_a + s4 / a);
            g[3] += w * (px.d_b - s4 * px.inv_b1);
        }
        (ll, g)
    }
}

/// Repeat customers' (x, mean spend) for Gamma-Gamma, with per-x tables like `Patterns`.
struct Spends {
    xs: Vec<f64>,
    /// (x index, m, ln m)
    rows: Vec<(u32, f64, f64)>,
}

impl Spends {
    fn new(hs: &[History]) -> Spends {
        let mut xm = HashMap::new();
        let mut s = Spends { xs: vec![], rows: vec![] };
        for h in hs.iter().filter(|h| h.x > 0 && h.monetary > 0.0) {
            let xi = index_of(&mut xm, &mut s.xs, f64::from(h.x));
            s.rows.push((xi, h.monetary, h.monetary.ln()));
        }
        s
    }

    fn evaluate(&self, p: &GammaGamma) -> (f64, [f64; 3]) {
        let GammaGamma { p, q, v } = *p;
        let (ln_v, dg_q, lg_q) = (v.ln(), digamma(q), ln_gamma(q));
        // Per x: the constant part, and ψ(px + q) − ψ(px), ψ(px + q).
        let per_x: Vec<(f64, f64, f64)> = self
            .xs
            .iter()
            .map(|&x| {
                let px = p * x;
                let lg = ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v + px * x.ln();
                (lg, digamma(px + q), digamma(px))
            })
            .collect();
        let (mut ll, mut g) = (0.0, [0.0; 3]);
        for &(xi, m, ln_m) in &self.rows {
            let x = self.xs[xi as usize];
            let (lg, dg_pxq, dg_px) = per_x[xi as usize];
            let px = p * x;
            let denom = x * m + v;
            let ln_d = denom.ln();
            ll += lg + (px - 1.0) * ln_m - (px + q) * ln_d;
            g[0] += x * (dg_pxq - dg_px + ln_m + x.ln() - ln_d);
            g[1] += dg_pxq - dg_q + ln_v - ln_d;
            g[2] += q / v - (px + q) / denom;
        }
        (ll, g)
    }
}

/// Maximises a log-likelihood over positive parameters: BFGS on their logarithms, then the
/// observed information (a central difference of the analytic gradient) for the standard
/// errors of the parameters themselves (delta method).
fn fit_positive<const N: usize>(
    evaluate: impl Fn(&[f64; N]) -> (f64, [f64; N]),
    start: [f64; N],
    n: f64,
) -> ([f64; N], [f64; N], f64, usize, bool) {
    let at = |phi: &[f64]| -> [f64; N] { std::array::from_fn(|i| phi[i].exp()) };
    // Mean negative log-likelihood, so the tolerance does not depend on the data's size.
    let objective = |phi: &[f64]| {
        let theta = at(phi);
        let (ll, g) = evaluate(&theta);
        let grad: Vec<f64> = (0..N).map(|i| -g[i] * theta[i] / n).collect();
        (-ll / n, grad)
    };
    let start_phi: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    let m = minimise(objective, &start_phi, 1e-9, 2000);
    let theta = at(&m.x);
    let h = 1e-4;
    let hessian: Vec<Vec<f64>> = (0..N)
        .map(|j| {
            let shifted = |d: f64| {
                let mut phi = m.x.clone();
                phi[j] += d;
                objective(&phi).1
            };
            let (up, down) = (shifted(h), shifted(-h));
            (0..N).map(|i| (up[i] - down[i]) / (2.0 * h)).collect()
        })
        .collect();
    let sym: Vec<Vec<f64>> = (0..N).map(|i| (0..N).map(|j| 0.5 * (hessian[i][j] + hessian[j][i])).collect()).collect();
    let se = match invert(&sym) {
        Some(inv) => std::array::from_fn(|i| {
            let var = inv[i][i] / n;
            if var.is_finite() && var >= 0.0 { theta[i] * var.sqrt() } else { f64::NAN }
        }),
        None => [f64::NAN; N],
    };
    (theta, se, -m.value * n, m.iterations, m.converged)
}

/// Fits BG/NBD to the customers' histories; `None` without customers.
pub fn fit_bg_nbd(hs: &[History]) -> Option<Fitted<BgNbd>> {
    if hs.is_empty() {
        return None;
    }
    let patterns = Patterns::new(hs);
    let max_t = hs.iter().map(|h| h.t).fold(0.0, f64::max).max(1.0);
    // α starts at a tenth of the longest age (it scales with time); the rest at 1.
    let (theta, se, ll, iterations, converged) = fit_positive(
        |t: &[f64; 4]| patterns.evaluate(&BgNbd { r: t[0], alpha: t[1], a: t[2], b: t[3] }),
        [1.0, max_t / 10.0, 1.0, 1.0],
        patterns.customers,
    );
    Some(Fitted {
        params: BgNbd { r: theta[0], alpha: theta[1], a: theta[2], b: theta[3] },
        standard_errors: BgNbd { r: se[0], alpha: se[1], a: se[2], b: se[3] },
        log_likelihood: ll,
        iterations,
        converged,
        customers: hs.len(),
    })
}

/// Fits Gamma-Gamma to the repeat customers' mean spend; `None` with fewer than two.
pub fn fit_gamma_gamma(hs: &[History]) -> Option<Fitted<GammaGamma>> {
    let spends = Spends::new(hs);
    if spends.rows.len() < 2 {
        return None;
    }
    let n = spends.rows.len() as f64;
    let (theta, se, ll, iterations, converged) =
        fit_positive(|t: &[f64; 3]| spends.evaluate(&GammaGamma { p: t[0], q: t[1], v: t[2] }), [1.0, 1.0, 1.0], n);
    Some(Fitted {
        params: GammaGamma { p: theta[0], q: theta[1], v: theta[2] },
        standard_errors: GammaGamma { p: se[0], q: se[1], v: se[2] },
        log_likelihood: ll,
        iterations,
        converged,
        customers: spends.rows.len(),
    })
}

impl BgNbd {
    /// P(the customer is still active) given its history (eq. 11 of the paper).
    pub fn p_alive(&self, h: &History) -> f64 {
        if h.x == 0 {
            return 1.0;
        }
        let x = f64::from(h.x);
        1.0 / (1.0 + self.a / (self.b + x - 1.0) * ((self.alpha + h.t) / (self.alpha + h.t_x)).powf(self.r + x))
    }

    /// Expected transactions in the next `t` units given the history (eq. 10):
    /// (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)] / (1 + δ …)
    /// with z = t/(α+T+t). The hypergeometric factor is summed in log form, either as it
    /// stands or through Euler's transformation
    /// ₂F₁(r+x, b+x; c; z) = (1−z)^(a−1−r−x) ₂F₁(a+b−1−r, a−1; c; z),
    /// whichever series starts with the smaller term ratio: the first suits large a and b
    /// (almost nobody drops out), the second frequent buyers.
    pub fn expected_purchases(&self, h: &History, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(h.x);
        let z = t / (alpha + h.t + t);
        let c = a + b + x - 1.0;
        let ln_1z = ((alpha + h.t) / (alpha + h.t + t)).ln();
        let direct = ((r + x) * (b + x) / c).abs();
        let euler = ((a + b - 1.0 - r) * (a - 1.0) / c).abs();
        let ln_kept = if direct <= euler {
            ln_hyp2f1(r + x, b + x, c, z) + (r + x) * ln_1z
        } else {
            ln_hyp2f1(a + b - 1.0 - r, a - 1.0, c, z) + (a - 1.0) * ln_1z
        };
        let second = -ln_kept.exp_m1();
        let first = c / (a - 1.0);
        let denominator =
            if h.x > 0 { 1.0 + a / (b + x - 1.0) * ((alpha + h.t) / (alpha + h.t_x)).powf(r + x) } else { 1.0 };
        first * second / denominator
    }
}

impl GammaGamma {
    /// Expected mean transaction value given x repeat transactions of mean m (eq. 5 of the
    /// iso-value paper); the population mean p·v/(q−1) for customers without repeats.
    pub fn expected_value(&self, x: u32, m: f64) -> f64 {
        let x = f64::from(x);
        (self.p * (self.v + x * m)) / (self.p * x + self.q - 1.0)
    }
}

/// The settings a CLV run takes from the playbook (C-3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub unit: Unit,
    /// Expected purchases are predicted over this many units.
    pub periods: f64,
    pub horizon_months: u32,
    /// Yearly discount rate, percent.
    pub annual_discount_pct: f64,
    /// Above this |correlation| between frequency and spend the Gamma-Gamma independence
    /// assumption is reported as doubtful.
    pub max_correlation: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    pub expected_purchases: f64,
    pub p_alive: f64,
    /// Yuan.
    pub expected_order_value: f64,
    /// Discounted value of the next `horizon_months` months, yuan.
    pub clv: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub unit: Unit,
    pub bg_nbd: Option<Fitted<BgNbd>>,
    pub gamma_gamma: Option<Fitted<GammaGamma>>,
    /// Pearson correlation of repeat customers' frequency and mean spend.
    pub frequency_spend_correlation: Option<f64>,
    pub warnings: Vec<Warning>,
}

/// Fits both models and says what a reader should doubt.
pub fn fit(hs: &[History], s: &Settings) -> Model {
    let bg = fit_bg_nbd(hs);
    let gg = fit_gamma_gamma(hs);
    let repeat: Vec<&History> = hs.iter().filter(|h| h.x > 0 && h.monetary > 0.0).collect();
    let correlation = (repeat.len() >= 2).then(|| {
        let xs: Vec<f64> = repeat.iter().map(|h| f64::from(h.x)).collect();
        let ms: Vec<f64> = repeat.iter().map(|h| h.monetary).collect();
        crate::stats::correlation(&xs, &ms)
    });
    let mut warnings = Vec::new();
    // A search that stopped early, or an optimum at the edge of the parameter space (e.g. a
    // and b growing without bound when nobody seems to drop out), where the information
    // matrix gives no standard errors.
    let unsettled = |converged: bool, iterations: usize, se: serde_json::Value| {
        let missing: Vec<String> = se
            .as_object()
            .map(|o| o.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default();
        match (converged, missing.is_empty()) {
            (true, true) => None,
            (false, _) => Some(format!("{iterations} iterations")),
            (true, false) => Some(format!("no standard error for {}", missing.join(", "))),
        }
    };
    match &bg {
        None => warnings.push(Warning { code: "no_customers", detail: String::new() }),
        Some(f) => {
            if let Some(detail) = unsettled(f.converged, f.iterations, serde_json::json!(f.standard_errors)) {
                warnings.push(Warning { code: "bg_nbd_not_converged", detail });
            }
        }
    }
    match &gg {
        None => warnings.push(Warning { code: "no_repeat_customers", detail: repeat.len().to_string() }),
        Some(f) if unsettled(f.converged, f.iterations, serde_json::json!(f.standard_errors)).is_some() => {
            let detail = unsettled(f.converged, f.iterations, serde_json::json!(f.standard_errors)).unwrap_or_default();
            warnings.push(Warning { code: "gamma_gamma_not_converged", detail });
        }
        Some(f) if f.params.q <= 1.0 => {
            warnings.push(Warning { code: "gamma_gamma_no_mean", detail: format!("q = {:.4}", f.params.q) })
        }
        Some(_) => {}
    }
    if let Some(c) = correlation.filter(|c| c.abs() > s.max_correlation) {
        warnings.push(Warning { code: "gamma_gamma_dependence", detail: format!("{c:.3}") });
    }
    Model { unit: s.unit, bg_nbd: bg, gamma_gamma: gg, frequency_spend_correlation: correlation, warnings }
}

/// Every customer's prediction, in input order (`None` for all without a BG/NBD fit).
/// Customers with the same (x, t_x, T) share the purchase forecasts, computed once.
pub fn predict(model: &Model, hs: &[History], s: &Settings) -> Vec<Option<Prediction>> {
    let Some(bg) = model.bg_nbd.as_ref().map(|f| f.params) else {
        return vec![None; hs.len()];
    };
    let gg = model.gamma_gamma.as_ref().map(|f| f.params).filter(|p| p.q > 1.0);
    let month = DAYS_PER_MONTH / s.unit.days();
    let monthly_rate = (1.0 + s.annual_discount_pct / 100.0).powf(1.0 / 12.0) - 1.0;
    // Per pattern: expected purchases over the prediction period, P(alive), and the
    // discounted expected purchases over the CLV horizon (Σ month i's increment / (1+d)^i).
    let mut cache: HashMap<(u32, u64, u64), (f64, f64, f64)> = HashMap::new();
    hs.iter()
        .map(|h| {
            let (purchases, alive, discounted) =
                *cache.entry((h.x, h.t_x.to_bits(), h.t.to_bits())).or_insert_with(|| {
                    let mut prev = 0.0;
                    let mut discounted = 0.0;
                    for i in 1..=s.horizon_months {
                        let e = bg.expected_purchases(h, f64::from(i) * month);
                        discounted += (e - prev) / (1.0 + monthly_rate).powi(i as i32);
                        prev = e;
                    }
                    (bg.expected_purchases(h, s.periods), bg.p_alive(h), discounted)
                });
            let value = gg.map_or(0.0, |g| g.expected_value(h.x, h.monetary));
            Some(Prediction {
                expected_purchases: purchases,
                p_alive: alive,
                expected_order_value: value,
                clv: value * discounted,
            })
        })
        .collect()
}

impl Settings {
    /// The playbook's settings (C-3), with the unit and prediction periods a caller chose.
    pub fn from_playbook(pb: &crate::playbook::Playbook, unit: Option<Unit>, periods: Option<f64>) -> Settings {
        let c = &pb.customers.clv;
        Settings {
            unit: unit.or_else(|| Unit::parse(&c.unit)).unwrap_or(Unit::Week),
            periods: periods.unwrap_or(c.prediction_periods as f64),
            horizon_months: c.horizon_months.clamp(1, 1200) as u32,
            annual_discount_pct: c.annual_discount_pct,
            max_correlation: c.max_frequency_spend_correlation,
        }
    }
}

/// One customer's line of a CLV report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub customer_id: String,
    #[serde(flatten)]
    pub history: History,
    #[serde(flatten)]
    pub prediction: Option<Prediction>,
}

/// The CSV form of a report: this header, then `csv_row` per customer (yuan, NaN where
/// no model could be fitted).
pub const CSV_HEADER: &str =
    "customer_id,frequency,recency,T,monetary,expected_purchases,p_alive,expected_order_value,clv";

pub fn csv_row(r: &Row) -> String {
    let id = if r.customer_id.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        format!("\"{}\"", r.customer_id.replace('"', "\"\""))
    } else {
        r.customer_id.clone()
    };
    let h = &r.history;
    let p = r.prediction.map_or([f64::NAN; 4], |p| [p.expected_purchases, p.p_alive, p.expected_order_value, p.clv]);
    format!("{id},{},{},{},{},{},{},{},{}", h.x, h.t_x, h.t, h.monetary, p[0], p[1], p[2], p[3])
}

/// Fits the models on everyone's history as of `as_of` (a day number) and predicts for
/// each customer; rows ordered by customer id as C-2 orders them.
pub fn report(purchases: &[Purchases], as_of: i64, s: &Settings) -> (Model, Vec<Row>) {
    let ids: Vec<&str> = purchases.iter().map(|p| p.customer.as_str()).collect();
    let order = crate::rfm::id_order(&ids);
    let hs: Vec<History> = order.iter().map(|&i| purchases[i].history(as_of, s.unit)).collect();
    let model = fit(&hs, s);
    let predictions = predict(&model, &hs, s);
    let rows = order
        .iter()
        .zip(hs)
        .zip(predictions)
        .map(|((&i, history), prediction)| Row { customer_id: purchases[i].customer.clone(), history, prediction })
        .collect();
    (model, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CDNOW sample of the BG/NBD paper (2,357 customers, weeks; mean repeat spend in
    /// dollars), from the data set the paper's authors published.
    fn cdnow() -> Vec<History> {
        include_str!("../data/cdnow_summary.csv")
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
                History { x: f[1] as u32, t_x: f[2], t: f[3], monetary: f[4] }
            })
            .collect()
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    /// C-3: the fit reproduces the paper's CDNOW estimates (r = 0.243, α = 4.414, a = 0.793,
    /// b = 2.426, LL = −9582.4) and the iso-value paper's spend model (p = 6.25, q = 3.74,
    /// v = 15.44), and converges.
    #[test]
    fn c3_fits_the_papers_cdnow_estimates() {
        let hs = cdnow();
        let bg = fit_bg_nbd(&hs).unwrap();
        assert!(bg.converged, "{bg:?}");
        let BgNbd { r, alpha, a, b } = bg.params;
        assert!(
            rel(r, 0.2426) < 1e-3 && rel(alpha, 4.4135) < 1e-3 && rel(a, 0.7929) < 1e-3 && rel(b, 2.4258) < 1e-3,
            "{bg:?}"
        );
        assert!((bg.log_likelihood - -9582.43).abs() < 0.01, "{}", bg.log_likelihood);
        // Standard errors as the observed information gives them (also lifetimes' figures).
        let se = bg.standard_errors;
        assert!(rel(se.r, 0.012557) < 1e-3 && rel(se.alpha, 0.37822) < 1e-3, "{se:?}");
        assert!(rel(se.a, 0.18572) < 1e-3 && rel(se.b, 0.70535) < 1e-3, "{se:?}");
        let gg = fit_gamma_gamma(&hs).unwrap();
        assert_eq!(gg.customers, 946);
        let GammaGamma { p, q, v } = gg.params;
        assert!(rel(p, 6.2488) < 1e-3 && rel(q, 3.7446) < 1e-3 && rel(v, 15.4477) < 1e-3, "{gg:?}");
    }

    /// C-3: predictions equal the closed forms evaluated independently (values from the
    /// reference implementation at the CDNOW estimates).
    #[test]
    fn c3_predictions_match_reference_values() {
        let bg = BgNbd {
            r: 0.242_592_928_279_821_5,
            alpha: 4.413_532_265_271_809,
            a: 0.792_885_966_440_657_8,
            b: 2.425_752_382_625_737_4,
        };
        let h = History { x: 2, t_x: 30.43, t: 38.86, monetary: 22.35 };
        assert!(
            rel(bg.expected_purchases(&h, 39.0), 1.225_910_424_174_406_8) < 1e-9,
            "{}",
            bg.expected_purchases(&h, 39.0)
        );
        assert!(rel(bg.p_alive(&h), 0.726_609_14) < 1e-7);
        let gg = GammaGamma { p: 6.248_802_496_070_99, q: 3.744_588_460_923_763_4, v: 15.447_748_064_943_575 };
        assert!(rel(gg.expected_value(2, 20.0), 22.731_769_385_858_637) < 1e-12);
        // A frequent buyer: the sum stays finite where the plain series overflows.
        let busy = History { x: 400, t_x: 38.0, t: 38.5, monetary: 10.0 };
        let e = bg.expected_purchases(&busy, 52.0);
        assert!(e.is_finite() && e > 100.0, "{e}");
        // Almost nobody drops out (a, b huge): close to the NBD's (r+x)/(α+T)·t.
        let steady = BgNbd { r: 2.0, alpha: 30.0, a: 1e5, b: 1e9 };
        let h = History { x: 3, t_x: 70.0, t: 90.0, monetary: 0.0 };
        let e = steady.expected_purchases(&h, 12.0);
        assert!(rel(e, 5.0 / 120.0 * 12.0) < 1e-3, "{e}");
        let both = |p: &BgNbd, h: &History| {
            // The two series agree where both are usable.
            let x = f64::from(h.x);
            let (c, z) = (p.a + p.b + x - 1.0, 10.0 / (p.alpha + h.t + 10.0));
            let ln_1z = (1.0 - z).ln();
            let d = crate::stats::ln_hyp2f1(p.r + x, p.b + x, c, z) + (p.r + x) * ln_1z;
            let e = crate::stats::ln_hyp2f1(p.a + p.b - 1.0 - p.r, p.a - 1.0, c, z) + (p.a - 1.0) * ln_1z;
            (d - e).abs()
        };
        assert!(both(&bg, &History { x: 5, t_x: 20.0, t: 30.0, monetary: 0.0 }) < 1e-12);
        assert!(both(&BgNbd { r: 1.0, alpha: 5.0, a: 3.0, b: 8.0 }, &h) < 1e-12);
    }

    /// C-3: the closed-form log-likelihoods equal a direct numerical integration of the
    /// individual likelihoods over the mixing distributions (an independent computation).
    #[test]
    fn c3_log_likelihoods_equal_numerical_integration() {
        let bg = BgNbd { r: 0.8, alpha: 3.0, a: 1.5, b: 2.5 };
        for h in [
            History { x: 0, t_x: 0.0, t: 20.0, monetary: 0.0 },
            History { x: 3, t_x: 12.5, t: 30.0, monetary: 0.0 },
            History { x: 1, t_x: 2.0, t: 5.0, monetary: 0.0 },
        ] {
            // ∫∫ L(λ, p | x, t_x, T) g(λ | r, α) f(p | a, b) dλ dp by the midpoint rule, with
            // λ = s⁵ and p = u² so the densities' behaviour at 0 is smooth in s and u (r = 0.8).
            let x = f64::from(h.x);
            let ln_beta = |a: f64, b: f64| ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
            let (nl, np) = (1500, 800);
            let s_max = 40f64.powf(0.2);
            let mut total = 0.0;
            for i in 0..nl {
                let s = (i as f64 + 0.5) * s_max / nl as f64;
                let lam = s.powi(5);
                let g = 5.0
                    * s.powi(4)
                    * (bg.r * bg.alpha.ln() + (bg.r - 1.0) * lam.ln() - bg.alpha * lam - ln_gamma(bg.r)).exp();
                let mut inner = 0.0;
                for j in 0..np {
                    let u = (j as f64 + 0.5) / np as f64;
                    let p = u * u;
                    let f =
                        2.0 * u * ((bg.a - 1.0) * p.ln() + (bg.b - 1.0) * (1.0 - p).ln() - ln_beta(bg.a, bg.b)).exp();
                    let mut l = (1.0 - p).powf(x) * lam.powf(x) * (-lam * h.t).exp();
                    if h.x > 0 {
                        l += p * (1.0 - p).powf(x - 1.0) * lam.powf(x) * (-lam * h.t_x).exp();
                    }
                    inner += l * f / np as f64;
                }
                total += inner * g * s_max / nl as f64;
            }
            let closed = bg_log_likelihood(&bg, &h);
            assert!((closed - total.ln()).abs() < 1e-5, "{h:?}: {closed} vs {}", total.ln());
        }
        let gg = GammaGamma { p: 4.0, q: 3.0, v: 12.0 };
        for (x, m) in [(1u32, 10.0f64), (3, 25.0), (7, 4.5)] {
            // Mean of x Gamma(p, ν) spends has density Gamma(px, xν); ν ~ Gamma(q, v).
            let xf = f64::from(x);
            let n = 50_000;
            let nu_max = 3.0;
            let mut total = 0.0;
            for i in 0..n {
                let nu = (i as f64 + 0.5) * nu_max / n as f64;
                let dens_m =
                    (gg.p * xf * (xf * nu).ln() + (gg.p * xf - 1.0) * m.ln() - xf * nu * m - ln_gamma(gg.p * xf)).exp();
                let dens_nu = (gg.q * gg.v.ln() + (gg.q - 1.0) * nu.ln() - gg.v * nu - ln_gamma(gg.q)).exp();
                total += dens_m * dens_nu * nu_max / n as f64;
            }
            let closed = gg_log_likelihood(&gg, x, m);
            assert!((closed - total.ln()).abs() < 1e-6, "x={x} m={m}: {closed} vs {}", total.ln());
        }
    }

    /// C-3: the grouped likelihood and its gradient agree with the per-customer form and
    /// with finite differences.
    #[test]
    fn c3_grouped_likelihood_and_gradient_are_exact() {
        let hs = cdnow();
        let patterns = Patterns::new(&hs);
        let p = BgNbd { r: 0.3, alpha: 5.0, a: 0.9, b: 2.0 };
        let (ll, g) = patterns.evaluate(&p);
        let direct: f64 = hs.iter().map(|h| bg_log_likelihood(&p, h)).sum();
        assert!((ll - direct).abs() < 1e-8 * direct.abs());
        let h = 1e-6;
        let shift = |i: usize, d: f64| {
            let mut v = [p.r, p.alpha, p.a, p.b];
            v[i] += d;
            patterns.evaluate(&BgNbd { r: v[0], alpha: v[1], a: v[2], b: v[3] }).0
        };
        for (i, gi) in g.iter().enumerate() {
            let fd = (shift(i, h) - shift(i, -h)) / (2.0 * h);
            assert!((fd - gi).abs() < 1e-4 * gi.abs().max(1.0), "{i}: {fd} vs {gi}");
        }
        let spends = Spends::new(&hs);
        let q = GammaGamma { p: 5.0, q: 3.0, v: 14.0 };
        let (ll, g) = spends.evaluate(&q);
        let direct: f64 = hs.iter().filter(|h| h.x > 0).map(|h| gg_log_likelihood(&q, h.x, h.monetary)).sum();
        assert!((ll - direct).abs() < 1e-8 * direct.abs());
        for (i, gi) in g.iter().enumerate() {
            let mut v = [q.p, q.q, q.v];
            v[i] += h;
            let up = spends.evaluate(&GammaGamma { p: v[0], q: v[1], v: v[2] }).0;
            v[i] -= 2.0 * h;
            let down = spends.evaluate(&GammaGamma { p: v[0], q: v[1], v: v[2] }).0;
            assert!(((up - down) / (2.0 * h) - gi).abs() < 1e-4 * gi.abs().max(1.0), "{i}");
        }
    }

    /// C-3: orders on one day are one transaction; the unit scales time only; CLV
    /// discounts and warnings follow the settings.
    #[test]
    fn c3_histories_predictions_and_warnings() {
        let p = Purchases {
            customer: "7".into(),
            first_day: 100,
            last_day: 121,
            days: 3,
            total_fen: 60_000,
            first_day_fen: 20_000,
        };
        let w = p.history(135, Unit::Week);
        assert_eq!((w.x, w.t_x, w.t, w.monetary), (2, 3.0, 5.0, 200.0));
        assert_eq!(p.history(135, Unit::Day).t, 35.0);
        let one = Purchases { days: 1, last_day: 100, total_fen: 20_000, ..p.clone() };
        assert_eq!(one.history(135, Unit::Day).monetary, 0.0);
        let hs = cdnow();
        let s = Settings {
            unit: Unit::Week,
            periods: 39.0,
            horizon_months: 12,
            annual_discount_pct: 0.0,
            max_correlation: 0.3,
        };
        let model = fit(&hs, &s);
        assert!(model.warnings.is_empty(), "{:?}", model.warnings);
        let preds = predict(&model, &hs, &s);
        let first = preds[0].unwrap();
        assert!(rel(first.expected_purchases, 1.2259) < 1e-3, "{first:?}");
        // Undiscounted, CLV is the value times the purchases expected over 12 months.
        let bg = model.bg_nbd.as_ref().unwrap().params;
        let months = 12.0 * DAYS_PER_MONTH / 7.0;
        assert!(rel(first.clv, first.expected_order_value * bg.expected_purchases(&hs[0], months)) < 1e-9);
        let discounted = predict(&model, &hs, &Settings { annual_discount_pct: 10.0, ..s });
        assert!(discounted[0].unwrap().clv < first.clv);
        let strict = fit(&hs, &Settings { max_correlation: 0.01, ..s });
        assert!(strict.warnings.iter().any(|w| w.code == "gamma_gamma_dependence"), "{:?}", strict.warnings);
        assert!(fit(&[], &s).warnings.iter().any(|w| w.code == "no_customers"));
    }
}
