//! Numerical building blocks for the customer models (C-3) and experiments (C-6): special
//! functions, a quasi-Newton minimiser and a small matrix inverse. Written here rather than
//! pulled from a crate because each is a few dozen lines, and the models need them in tight
//! loops over hundreds of thousands of customers.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms: about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ψ(x) = d/dx ln Γ(x) for x > 0: the recurrence up to x ≥ 12, then the asymptotic series
/// (its first omitted term is below 3e-15 there).
pub fn digamma(mut x: f64) -> f64 {
    let mut out = 0.0;
    while x < 12.0 {
        out -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    out + x.ln() - 0.5 / x - f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f / 132.0))))
}

/// ψ₁(x) = d²/dx² ln Γ(x) for x > 0: the recurrence up to x ≥ 12, then the asymptotic
/// series.
pub fn trigamma(mut x: f64) -> f64 {
    let mut out = 0.0;
    while x < 12.0 {
        out += 1.0 / (x * x);
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    out + 1.0 / x + f / 2.0 + f / x * (1.0 / 6.0 - f * (1.0 / 30.0 - f * (1.0 / 42.0 - f / 30.0)))
}

/// The Gauss hypergeometric series ₂F₁(a, b; c; z) for 0 ≤ z < 1, summed until the terms
/// stop mattering.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (ln_scale, sum) = hyp2f1_scaled(a, b, c, z);
    sum * ln_scale.exp()
}

/// ln ₂F₁(a, b; c; z) for 0 ≤ z < 1 where the value is positive; terms are kept rescaled so
/// the sum neither overflows nor underflows however large it is (NaN when not positive).
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (ln_scale, sum) = hyp2f1_scaled(a, b, c, z);
    if sum > 0.0 { ln_scale + sum.ln() } else { f64::NAN }
}

/// The series as (ln scale, sum / scale).
fn hyp2f1_scaled(a: f64, b: f64, c: f64, z: f64) -> (f64, f64) {
    let (mut term, mut sum, mut ln_scale) = (1.0f64, 1.0f64, 0.0f64);
    for k in 0..1_000_000 {
        let k = k as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() > 1e200 {
            ln_scale += 1e200f64.ln();
            term /= 1e200;
            sum /= 1e200;
        }
        if term.abs() <= 1e-17 * sum.abs() || term == 0.0 {
            break;
        }
    }
    (ln_scale, sum)
}

/// Standard normal cumulative distribution Φ(x) (via erfc, about 1e-15 absolute).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function, erfc(x) = Q(1/2, x²) for x ≥ 0.
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 { 2.0 - erfc(-x) } else { gamma_q(0.5, x * x) }
}

/// Φ⁻¹(p) for 0 < p < 1 (Acklam's approximation refined by one Halley step: ~1e-15).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The regularised upper incomplete gamma function Q(s, x) = Γ(s, x) / Γ(s).
pub fn gamma_q(s: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < s + 1.0 {
        // Series for P, then Q = 1 − P.
        let (mut term, mut sum, mut n) = (1.0 / s, 1.0 / s, s);
        for _ in 0..10_000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        1.0 - sum * (-x + s * x.ln() - ln_gamma(s)).exp()
    } else {
        // Continued fraction (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - s;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - s);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x + s * x.ln() - ln_gamma(s)).exp() * h
    }
}

/// P(χ²_k > x): the chi-square test's p-value.
pub fn chi2_sf(x: f64, k: f64) -> f64 {
    gamma_q(k / 2.0, x / 2.0)
}

/// Where a minimisation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum<const N: usize> {
    pub x: [f64; N],
    pub value: f64,
    pub iterations: usize,
    /// The gradient vanished (largest component below the tolerance), or the Newton
    /// decrement fell below floating-point resolution.
    pub converged: bool,
}

/// Minimises `f` (value, gradient, Hessian) from `x0` by Newton's method: each step solves
/// (H + μI) d = −g, with μ = 0 while H is positive definite and raised until it is
/// otherwise, then backtracks until the value falls. Non-finite values count as +∞, so the
/// search steps back from where a model is undefined. Quadratic convergence near the
/// optimum means a handful of evaluations where a quasi-Newton method needs dozens.
#[allow(clippy::type_complexity)]
pub fn newton<const N: usize>(
    f: impl Fn(&[f64; N]) -> (f64, [f64; N], [[f64; N]; N]),
    x0: [f64; N],
    gradient_tolerance: f64,
    max_iterations: usize,
) -> Minimum<N> {
    let mut x = x0;
    let (mut fx, mut g, mut h) = f(&x);
    for it in 0..max_iterations {
        if g.iter().all(|v| v.abs() < gradient_tolerance) {
            return Minimum { x, value: fx, iterations: it, converged: true };
        }
        let scale = (0..N).map(|i| h[i][i].abs()).fold(0.0, f64::max).max(1e-12);
        let mut mu = 0.0;
        let d = loop {
            let mut m = h;
            for (i, row) in m.iter_mut().enumerate() {
                row[i] += mu;
            }
            if let Some(d) = cholesky_solve(&m, &g.map(|v| -v)) {
                break d;
            }
            mu = if mu == 0.0 { 1e-8 * scale } else { mu * 10.0 };
            if mu > 1e20 * scale {
                return Minimum { x, value: fx, iterations: it, converged: false };
            }
        };
        let slope: f64 = (0..N).map(|i| d[i] * g[i]).sum();
        if -slope < 1e-12 * (1.0 + fx.abs()) {
            // The Newton decrement (twice the gain still expected) is at the edge of what
            // the value can resolve, and near the optimum convergence is quadratic: one
            // full step lands at machine precision, where comparing values no longer can.
            let polished: [f64; N] = std::array::from_fn(|i| x[i] + d[i]);
            let (fp, gp, _) = f(&polished);
            if fp.is_finite() && gp.iter().all(|v| v.is_finite()) && fp <= fx + 1e-12 * (1.0 + fx.abs()) {
                return Minimum { x: polished, value: fp, iterations: it + 1, converged: true };
            }
            return Minimum { x, value: fx, iterations: it, converged: true };
        }
        let mut t = 1.0;
        let mut next = None;
        for _ in 0..60 {
            let trial: [f64; N] = std::array::from_fn(|i| x[i] + t * d[i]);
            let (ft, gt, ht) = f(&trial);
            if ft.is_finite() && gt.iter().all(|v| v.is_finite()) && ft <= fx + 1e-4 * t * slope && ft < fx {
                next = Some((trial, ft, gt, ht));
                break;
            }
            t *= 0.5;
        }
        let Some((xn, fnew, gn, hn)) = next else {
            let converged = -slope < 1e-16 * (1.0 + fx.abs());
            return Minimum { x, value: fx, iterations: it, converged };
        };
        (x, fx, g, h) = (xn, fnew, gn, hn);
    }
    let converged = g.iter().all(|v| v.abs() < gradient_tolerance);
    Minimum { x, value: fx, iterations: max_iterations, converged }
}

/// Solves A x = b for a symmetric positive-definite A; `None` when A is not.
pub fn cholesky_solve<const N: usize>(a: &[[f64; N]; N], b: &[f64; N]) -> Option<[f64; N]> {
    let mut l = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - sum;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - sum) / l[j][j];
            }
        }
    }
    let mut y = [0.0; N];
    for i in 0..N {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0; N];
    for i in (0..N).rev() {
        x[i] = (y[i] - (i + 1..N).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    Some(x)
}

/// The inverse of a small square matrix (Gauss–Jordan with partial pivoting); `None` when
/// it is singular.
pub fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| row.iter().copied().chain((0..n).map(|j| if i == j { 1.0 } else { 0.0 })).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 || !a[pivot][col].is_finite() {
            return None;
        }
        a.swap(col, pivot);
        let p = a[col][col];
        a[col].iter_mut().for_each(|v| *v /= p);
        for row in 0..n {
            if row != col {
                let factor = a[row][col];
                if factor != 0.0 {
                    let pivot_row = a[col].clone();
                    a[row].iter_mut().zip(&pivot_row).for_each(|(v, p)| *v -= factor * p);
                }
            }
        }
    }
    Some(a.into_iter().map(|row| row[n..].to_vec()).collect())
}

/// Pearson's correlation of two equally long samples (0 when either does not vary).
pub fn correlation(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len().min(ys.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 || syy == 0.0 { 0.0 } else { sxy / (sxx * syy).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn special_functions_match_known_values() {
        // Γ(n) = (n − 1)!, Γ(1/2) = √π, tabulated ψ values.
        assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-14));
        assert!(close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13));
        assert!(close(ln_gamma(150.5), 602.513_954_870_585_5, 1e-13), "{}", ln_gamma(150.5));
        assert!(close(digamma(1.0), -0.577_215_664_901_532_9, 1e-14));
        assert!(close(digamma(0.25), -4.227_453_533_376_265, 1e-13));
        assert!(close(digamma(50.0), 3.901_989_673_427_892, 1e-14));
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z.
        assert!(close(hyp2f1(1.0, 1.0, 2.0, 0.5), -(0.5f64).ln() / 0.5, 1e-14));
        // ₂F₁(a, b; b; z) = (1 − z)^(−a), also far beyond f64's range in log form.
        assert!(close(ln_hyp2f1(3000.0, 7.0, 7.0, 0.9), -3000.0 * 0.1f64.ln(), 1e-12));
        assert!(close(normal_cdf(1.959_963_984_540_054), 0.975, 1e-14));
        assert!(close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-12));
        assert!(close(normal_quantile(0.001), -3.090_232_306_167_813, 1e-12));
        // χ² with 2 degrees of freedom: P(X > x) = e^(−x/2).
        assert!(close(chi2_sf(3.0, 2.0), (-1.5f64).exp(), 1e-13));
        assert!(close(chi2_sf(7.814_727_903_251_178, 3.0), 0.05, 1e-10));
    }

    #[test]
    fn minimiser_finds_the_rosenbrock_valley_and_inverse_inverts() {
        let rosen = |x: &[f64; 2]| {
            let (a, b) = (x[0], x[1]);
            let v = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let g = [-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)];
            let h = [[2.0 - 400.0 * b + 1200.0 * a * a, -400.0 * a], [-400.0 * a, 200.0]];
            (v, g, h)
        };
        let m = newton(rosen, [-1.2, 1.0], 1e-10, 1000);
        assert!(m.converged && (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8, "{m:?}");
        assert!(close(trigamma(1.0), std::f64::consts::PI.powi(2) / 6.0, 1e-13));
        assert!(close(trigamma(0.3), 12.245_364_546_107_7, 1e-12), "{}", trigamma(0.3));
        assert!(close(trigamma(40.0), 0.025_315_103_841_291, 1e-12), "{}", trigamma(40.0));
        let a = vec![vec![4.0, 7.0, 2.0], vec![3.0, 6.0, 1.0], vec![2.0, 5.0, 3.0]];
        let inv = invert(&a).unwrap();
        for (i, row) in a.iter().enumerate() {
            for (j, want) in [1.0, 0.0, 0.0].iter().cycle().skip(3 - i).take(3).enumerate() {
                let p: f64 = (0..3).map(|k| row[k] * inv[k][j]).sum();
                assert!((p - want).abs() < 1e-12, "({i}, {j})");
            }
        }
        assert!(invert(&[vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-15);
    }
}
