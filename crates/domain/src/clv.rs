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

use crate::stats::{digamma, invert, ln_gamma, ln_hyp2f1};
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
    /// Customers per distinct x (the terms that depend on x alone are summed once per x).
    per_x: Vec<f64>,
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

/// Sums `add(row, acc)` over the rows on every core the machine has, chunk by chunk.
fn par_sum<T: Sync, const K: usize>(rows: &[T], add: impl Fn(&T, &mut [f64; K]) + Sync) -> [f64; K] {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let sum = |part: &[T]| {
        let mut acc = [0.0; K];
        for r in part {
            add(r, &mut acc);
        }
        acc
    };
    if threads < 2 || rows.len() < 20_000 {
        return sum(rows);
    }
    let size = rows.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = rows.chunks(size).map(|part| s.spawn(|| sum(part))).collect();
        handles.into_iter().fold([0.0; K], |mut total, h| {
            let part = h.join().expect("likelihood thread");
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
            total
        })
    })
}

/// Value, gradient and Hessian of a log-likelihood in the model's own parameters.
type Derivatives<const N: usize> = (f64, [f64; N], [[f64; N]; N]);

/// Fills the lower triangle of a Hessian from its upper one.
fn symmetric<const N: usize>(h: [[f64; N]; N]) -> [[f64; N]; N] {
    std::array::from_fn(|i| std::array::from_fn(|j| if j < i { h[j][i] } else { h[i][j] }))
}

impl Patterns {
    fn new(hs: &[History]) -> Patterns {
        let (mut xm, mut tm, mut txm) = (HashMap::new(), HashMap::new(), HashMap::new());
        let mut p =
            Patterns { xs: vec![], per_x: vec![], ts: vec![], txs: vec![], rows: vec![], customers: hs.len() as f64 };
        let mut rows: HashMap<(u32, u32, u32), usize> = HashMap::with_capacity(hs.len() / 2);
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
        p.per_x = vec![0.0; p.xs.len()];
        for r in &p.rows {
            p.per_x[r.0 as usize] += r.3;
        }
        p
    }

    /// The total log-likelihood with its gradient and Hessian in (r, α, a, b).
    ///
    /// Per customer ℓ = C(x) + ln(e^A₃ + δ e^A₄) with C(x) the terms of x alone,
    /// A₃ = −(r+x) ln(α+T), A₄ = ln a − ln(b+x−1) − (r+x) ln(α+t_x). With s₃, s₄ the shares
    /// of the two branches, the log-sum's Hessian is s₃∇²A₃ + s₄∇²A₄ + s₃s₄ dd′ with
    /// d = ∇A₃ − ∇A₄: one exponential and one logarithm per pattern.
    fn evaluate(&self, p: &BgNbd) -> Derivatives<4> {
        use crate::stats::trigamma;
        let BgNbd { r, alpha, a, b } = *p;
        let ln_a = a.ln();
        let (ln_t, inv_t): (Vec<f64>, Vec<f64>) = self.ts.iter().map(|t| ((alpha + t).ln(), 1.0 / (alpha + t))).unzip();
        let (ln_tx, inv_tx): (Vec<f64>, Vec<f64>) =
            self.txs.iter().map(|t| ((alpha + t).ln(), 1.0 / (alpha + t))).unzip();
        let (ln_b1, inv_b1): (Vec<f64>, Vec<f64>) = self
            .xs
            .iter()
            .map(|&x| if x > 0.0 { ((b + x - 1.0).ln(), 1.0 / (b + x - 1.0)) } else { (0.0, 0.0) })
            .unzip();
        // acc: ll, g[4], then the upper Hessian rr rα ra rb αα αa αb aa ab bb.
        let acc = par_sum::<_, 15>(&self.rows, |&(xi, ti, txi, w), acc| {
            let x = self.xs[xi as usize];
            let rx = r + x;
            let (lt, it) = (ln_t[ti as usize], inv_t[ti as usize]);
            let a3 = -rx * lt;
            if x == 0.0 {
                acc[0] += w * a3;
                acc[1] -= w * lt;
                acc[2] -= w * rx * it;
                acc[6] -= w * it;
                acc[9] += w * rx * it * it;
                return;
            }
            let (lx, ix) = (ln_tx[txi as usize], inv_tx[txi as usize]);
            let ib1 = inv_b1[xi as usize];
            let a4 = ln_a - ln_b1[xi as usize] - rx * lx;
            let (lse, s3) = if a3 >= a4 {
                let e = (a4 - a3).exp();
                (a3 + e.ln_1p(), 1.0 / (1.0 + e))
            } else {
                let e = (a3 - a4).exp();
                (a4 + e.ln_1p(), e / (1.0 + e))
            };
            let s4 = 1.0 - s3;
            let c = w * s3 * s4;
            let d = [lx - lt, -rx * (it - ix), -1.0 / a, ib1];
            acc[0] += w * lse;
            acc[1] -= w * (s3 * lt + s4 * lx);
            acc[2] -= w * rx * (s3 * it + s4 * ix);
            acc[3] += w * s4 / a;
            acc[4] -= w * s4 * ib1;
            acc[5] += c * d[0] * d[0];
            acc[6] += -w * (s3 * it + s4 * ix) + c * d[0] * d[1];
            acc[7] += c * d[0] * d[2];
            acc[8] += c * d[0] * d[3];
            acc[9] += w * rx * (s3 * it * it + s4 * ix * ix) + c * d[1] * d[1];
            acc[10] += c * d[1] * d[2];
            acc[11] += c * d[1] * d[3];
            acc[12] += -w * s4 / (a * a) + c * d[2] * d[2];
            acc[13] += c * d[2] * d[3];
            acc[14] += w * s4 * ib1 * ib1 + c * d[3] * d[3];
        });
        let mut ll = acc[0];
        let mut g = [acc[1], acc[2], acc[3], acc[4]];
        let mut h = [
            [acc[5], acc[6], acc[7], acc[8]],
            [0.0, acc[9], acc[10], acc[11]],
            [0.0, 0.0, acc[12], acc[13]],
            [0.0, 0.0, 0.0, acc[14]],
        ];
        // The terms of x alone, once per distinct x.
        let (lg_r, lg_ab, lg_b) = (ln_gamma(r), ln_gamma(a + b), ln_gamma(b));
        let (dg_r, dg_ab, dg_b) = (digamma(r), digamma(a + b), digamma(b));
        let (tg_r, tg_ab, tg_b) = (trigamma(r), trigamma(a + b), trigamma(b));
        let ln_alpha = alpha.ln();
        for (&x, &n) in self.xs.iter().zip(&self.per_x) {
            let (dg_abx, tg_abx) = (digamma(a + b + x), trigamma(a + b + x));
            ll += n * (ln_gamma(r + x) - lg_r + r * ln_alpha + lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x));
            g[0] += n * (digamma(r + x) - dg_r + ln_alpha);
            g[1] += n * r / alpha;
            g[2] += n * (dg_ab - dg_abx);
            g[3] += n * (dg_ab + digamma(b + x) - dg_b - dg_abx);
            h[0][0] += n * (trigamma(r + x) - tg_r);
            h[0][1] += n / alpha;
            h[1][1] -= n * r / (alpha * alpha);
            h[2][2] += n * (tg_ab - tg_abx);
            h[2][3] += n * (tg_ab - tg_abx);
            h[3][3] += n * (tg_ab + trigamma(b + x) - tg_b - tg_abx);
        }
        (ll, g, symmetric(h))
    }
}

/// Repeat customers' (x, mean spend) for Gamma-Gamma, with the sums that depend on x
/// alone kept per distinct x.
struct Spends {
    xs: Vec<f64>,
    /// Per distinct x: customers, and the sum of their ln m.
    per_x: Vec<(f64, f64)>,
    /// (x index, m)
    rows: Vec<(u32, f64)>,
}

impl Spends {
    fn new(hs: &[History]) -> Spends {
        let mut xm = HashMap::new();
        let mut s = Spends { xs: vec![], per_x: vec![], rows: vec![] };
        for h in hs.iter().filter(|h| h.x > 0 && h.monetary > 0.0) {
            let xi = index_of(&mut xm, &mut s.xs, f64::from(h.x));
            if s.per_x.len() <= xi as usize {
                s.per_x.push((0.0, 0.0));
            }
            s.per_x[xi as usize].0 += 1.0;
            s.per_x[xi as usize].1 += h.monetary.ln();
            s.rows.push((xi, h.monetary));
        }
        s
    }

    /// The total log-likelihood with its gradient and Hessian in (p, q, v): per customer
    /// lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln v + (px−1) ln m + px ln x − (px+q) ln(xm+v);
    /// one logarithm and one division per customer, the rest per distinct x.
    fn evaluate(&self, params: &GammaGamma) -> Derivatives<3> {
        use crate::stats::trigamma;
        let GammaGamma { p, q, v } = *params;
        // acc: ll, g_p, g_q, g_v, h_pv, h_qv, h_vv
        let acc = par_sum::<_, 7>(&self.rows, |&(xi, m), acc| {
            let x = self.xs[xi as usize];
            let pxq = p * x + q;
            let d = x * m + v;
            let (ld, id) = (d.ln(), 1.0 / d);
            acc[0] -= pxq * ld;
            acc[1] -= x * ld;
            acc[2] -= ld;
            acc[3] -= pxq * id;
            acc[4] -= x * id;
            acc[5] -= id;
            acc[6] += pxq * id * id;
        });
        let (lg_q, dg_q, tg_q, ln_v) = (ln_gamma(q), digamma(q), trigamma(q), v.ln());
        let (mut ll, mut g) = (acc[0], [acc[1], acc[2], acc[3]]);
        let mut h = [[0.0, 0.0, acc[4]], [0.0, 0.0, acc[5]], [0.0, 0.0, acc[6]]];
        for (&x, &(n, sum_ln_m)) in self.xs.iter().zip(&self.per_x) {
            let px = p * x;
            let (dg_pxq, dg_px) = (digamma(px + q), digamma(px));
            let (tg_pxq, tg_px) = (trigamma(px + q), trigamma(px));
            ll += n * (ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v + px * x.ln()) + (px - 1.0) * sum_ln_m;
            g[0] += n * x * (dg_pxq - dg_px + x.ln()) + x * sum_ln_m;
            g[1] += n * (dg_pxq - dg_q + ln_v);
            g[2] += n * q / v;
            h[0][0] += n * x * x * (tg_pxq - tg_px);
            h[0][1] += n * x * tg_pxq;
            h[1][1] += n * (tg_pxq - tg_q);
            h[1][2] += n / v;
            h[2][2] -= n * q / (v * v);
        }
        (ll, g, symmetric(h))
    }
}

/// Maximises a log-likelihood over positive parameters by Newton's method on their
/// logarithms; standard errors from the inverse of the observed information in the
/// parameters themselves.
fn fit_positive<const N: usize>(
    evaluate: impl Fn(&[f64; N]) -> Derivatives<N>,
    start: [f64; N],
    n: f64,
) -> ([f64; N], [f64; N], f64, usize, bool) {
    // Mean negative log-likelihood in φ = ln θ, so the tolerance does not depend on the
    // data's size: ∂/∂φᵢ = θᵢ ∂/∂θᵢ, ∂²/∂φᵢ∂φⱼ = θᵢθⱼ ∂²/∂θᵢ∂θⱼ + δᵢⱼ θᵢ ∂/∂θᵢ.
    let objective = |phi: &[f64; N]| {
        let theta = phi.map(f64::exp);
        let (ll, g, h) = evaluate(&theta);
        let grad: [f64; N] = std::array::from_fn(|i| -g[i] * theta[i] / n);
        let hess: [[f64; N]; N] = std::array::from_fn(|i| {
            std::array::from_fn(|j| -(theta[i] * theta[j] * h[i][j] + if i == j { theta[i] * g[i] } else { 0.0 }) / n)
        });
        (-ll / n, grad, hess)
    };
    let m = crate::stats::newton(objective, start.map(f64::ln), 1e-10, 200);
    let theta = m.x.map(f64::exp);
    let (_, _, h) = evaluate(&theta);
    let information: Vec<Vec<f64>> = h.iter().map(|row| row.iter().map(|v| -v).collect()).collect();
    let se = match invert(&information) {
        Some(inv) => {
            std::array::from_fn(|i| if inv[i][i].is_finite() && inv[i][i] >= 0.0 { inv[i][i].sqrt() } else { f64::NAN })
        }
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

/// A customer's row among `rows` in C-2's id order (numeric when `numeric_ids`, else
/// text), by binary search.
pub fn row_of<'a>(rows: &'a [Row], numeric_ids: bool, customer_id: &str) -> Option<&'a Row> {
    if !numeric_ids {
        return rows.binary_search_by(|r| r.customer_id.as_str().cmp(customer_id)).ok().map(|i| &rows[i]);
    }
    // Ids equal as numbers ("07", "7") sit together, in no particular order.
    let n: i128 = customer_id.parse().ok()?;
    let key = |r: &Row| r.customer_id.parse::<i128>().unwrap_or(i128::MIN);
    let start = rows.partition_point(|r| key(r) < n);
    rows[start..].iter().take_while(|r| key(r) == n).find(|r| r.customer_id == customer_id)
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

    /// C-3: the grouped likelihood agrees with the per-customer form, and its gradient and
    /// Hessian with finite differences of the value and of the gradient.
    #[test]
    fn c3_grouped_likelihood_gradient_and_hessian_are_exact() {
        fn check<const N: usize>(eval: impl Fn(&[f64; N]) -> Derivatives<N>, at: [f64; N], direct: f64) {
            let (ll, g, h) = eval(&at);
            assert!((ll - direct).abs() < 1e-8 * direct.abs(), "{ll} vs {direct}");
            for i in 0..N {
                let step = 1e-6 * at[i];
                let shifted = |d: f64| {
                    let mut v = at;
                    v[i] += d;
                    eval(&v)
                };
                let (up, down) = (shifted(step), shifted(-step));
                let fd = (up.0 - down.0) / (2.0 * step);
                assert!((fd - g[i]).abs() < 1e-5 * g[i].abs().max(1.0), "gradient {i}: {fd} vs {}", g[i]);
                for (j, row) in h.iter().enumerate() {
                    let fd = (up.1[j] - down.1[j]) / (2.0 * step);
                    assert!((fd - row[i]).abs() < 1e-5 * row[i].abs().max(1.0), "hessian {j},{i}: {fd} vs {}", row[i]);
                }
            }
        }
        let hs = cdnow();
        let patterns = Patterns::new(&hs);
        let p = BgNbd { r: 0.3, alpha: 5.0, a: 0.9, b: 2.0 };
        let direct: f64 = hs.iter().map(|h| bg_log_likelihood(&p, h)).sum();
        check(
            |t: &[f64; 4]| patterns.evaluate(&BgNbd { r: t[0], alpha: t[1], a: t[2], b: t[3] }),
            [0.3, 5.0, 0.9, 2.0],
            direct,
        );
        let spends = Spends::new(&hs);
        let q = GammaGamma { p: 5.0, q: 3.0, v: 14.0 };
        let direct: f64 = hs.iter().filter(|h| h.x > 0).map(|h| gg_log_likelihood(&q, h.x, h.monetary)).sum();
        check(|t: &[f64; 3]| spends.evaluate(&GammaGamma { p: t[0], q: t[1], v: t[2] }), [5.0, 3.0, 14.0], direct);
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

    /// C-3: a customer's row is found in either of C-2's id orders, ids equal as numbers
    /// kept apart.
    #[test]
    fn c3_rows_are_found_by_id() {
        let rows = |ids: &[&str]| -> Vec<Row> {
            let history = History { x: 0, t_x: 0.0, t: 1.0, monetary: 0.0 };
            ids.iter().map(|id| Row { customer_id: id.to_string(), history, prediction: None }).collect()
        };
        let numeric = rows(&["2", "7", "07", "10", "300"]);
        for id in ["2", "7", "07", "10", "300"] {
            assert_eq!(row_of(&numeric, true, id).map(|r| r.customer_id.as_str()), Some(id));
        }
        assert!(row_of(&numeric, true, "8").is_none() && row_of(&numeric, true, "x").is_none());
        let text = rows(&["A-1", "B", "b-9", "客户"]);
        for id in ["A-1", "B", "b-9", "客户"] {
            assert_eq!(row_of(&text, false, id).map(|r| r.customer_id.as_str()), Some(id));
        }
        assert!(row_of(&text, false, "C").is_none());
    }
}
