//! The cell key method (ONS Census 2021, ABS TableBuilder): every statistical unit carries a fixed
//! random *record key*; a cell's key is the sum of its units' keys modulo the key range; a
//! *perturbation table* maps (true value, cell key) to the published value. The same set of
//! units always gives the same cell key, hence the same published value, in every table and
//! every release, so repeated or overlapping releases cannot average the noise away.
//!
//! The key range is 2^32: record keys are uniform 32-bit numbers (from a keyed hash, see
//! `records.rs`), cell keys are their wrapping sum, and each row of the table splits the key range
//! into one interval per possible output.
//!
//! Each row `i` is the maximum-entropy distribution over outputs `j` with
//! - `|j - i| <= max_noise`, `j >= 0`, and no `j` between 1 and `threshold - 1`;
//! - mean `i` (zero-mean noise) and variance `variance`, or the nearest variance the support
//!   allows (the rows below the threshold need at least the variance of the two points around
//!   them);
//! - row 0 publishes 0 (an empty cell stays empty).
//!
//! Maximum entropy under a mean and a variance constraint has the form
//! `p(j) ∝ exp(a·x + b·x²)` with `x = j - i`, so each row is found by Newton's method on (a, b).

use serde::Serialize;

/// The number of distinct cell keys: 2^32.
pub const KEY_RANGE: u64 = 1 << 32;

/// What the perturbation table is built from (configuration).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// The smallest count that may be published (Italian official statistics: 3).
    pub threshold: u32,
    /// The largest absolute noise.
    pub max_noise: u32,
    /// The noise variance asked for.
    pub variance: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PTableError {
    #[error("monitoring: threshold must be at least 1")]
    Threshold,
    #[error(
        "monitoring: max_noise ({max_noise}) must be at least threshold - 1 ({needed}) so that every small count can move to 0 or to the threshold"
    )]
    NoiseTooSmall { max_noise: u32, needed: u32 },
    #[error("monitoring: variance must be a positive number")]
    Variance,
    #[error("monitoring: the perturbation row for {0} did not converge")]
    NoConvergence(u32),
}

/// One row: the possible outputs in increasing order and the upper end of each one's interval
/// of the key range (the last is `KEY_RANGE`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub outputs: Vec<u32>,
    pub upper: Vec<u64>,
    pub probabilities: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct PTable {
    pub params: Params,
    /// Rows 0 ..= `last`; larger values use row `last` shifted (their support no longer touches
    /// zero or the forbidden band, so the row's shape is the same).
    rows: Vec<Row>,
}

impl PTable {
    pub fn build(params: Params) -> Result<PTable, PTableError> {
        if params.threshold == 0 {
            return Err(PTableError::Threshold);
        }
        if !(params.variance.is_finite() && params.variance > 0.0) {
            return Err(PTableError::Variance);
        }
        let needed = params.threshold - 1;
        if params.max_noise < needed {
            return Err(PTableError::NoiseTooSmall {
                max_noise: params.max_noise,
                needed,
            });
        }
        let last = params.threshold + params.max_noise;
        let mut rows = Vec::with_capacity(last as usize + 1);
        for i in 0..=last {
            rows.push(row(i, params)?);
        }
        Ok(PTable { params, rows })
    }

    /// The row that applies to the true value `i`, as (outputs, upper ends): for values past the
    /// last stored row, the last row shifted.
    fn row_for(&self, i: u32) -> (&Row, i64) {
        let last = self.rows.len() - 1;
        let idx = (i as usize).min(last);
        (&self.rows[idx], i64::from(i) - idx as i64)
    }

    /// The published value of a cell with true value `i` and cell key `ckey`.
    pub fn perturb(&self, i: u32, ckey: u32) -> u32 {
        let (row, shift) = self.row_for(i);
        let k = u64::from(ckey);
        let pos = row.upper.partition_point(|&u| u <= k);
        let out = row.outputs.get(pos).or(row.outputs.last()).copied();
        u32::try_from(i64::from(out.unwrap_or(i)) + shift).unwrap_or(i)
    }

    /// The probability that true value `i` is published as `j` (what an attacker who knows the
    /// table, but not the record keys, can compute).
    pub fn probability(&self, i: u32, j: u32) -> f64 {
        let (row, shift) = self.row_for(i);
        let Ok(j) = u32::try_from(i64::from(j) - shift) else {
            return 0.0;
        };
        row.outputs
            .iter()
            .position(|&o| o == j)
            .map_or(0.0, |p| row.probabilities[p])
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// A digest of the table as it maps keys to outputs, recorded in each release so that a
    /// change of table is visible.
    pub fn digest(&self) -> String {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for (i, r) in self.rows.iter().enumerate() {
            ctx.update(&(i as u64).to_be_bytes());
            for (o, u) in r.outputs.iter().zip(&r.upper) {
                ctx.update(&o.to_be_bytes());
                ctx.update(&u.to_be_bytes());
            }
        }
        crate::pki::hex(ctx.finish().as_ref())
    }
}

/// Row `i` of the table.
fn row(i: u32, p: Params) -> Result<Row, PTableError> {
    if i == 0 {
        return Ok(Row {
            outputs: vec![0],
            upper: vec![KEY_RANGE],
            probabilities: vec![1.0],
        });
    }
    let lo = i.saturating_sub(p.max_noise);
    let outputs: Vec<u32> = (lo..=i + p.max_noise)
        .filter(|&j| j == 0 || j >= p.threshold)
        .collect();
    let xs: Vec<f64> = outputs
        .iter()
        .map(|&j| f64::from(j) - f64::from(i))
        .collect();
    let probabilities = max_entropy(&xs, p.variance).ok_or(PTableError::NoConvergence(i))?;
    Ok(quantise(outputs, probabilities))
}

/// The maximum-entropy distribution on `xs` with mean 0 and variance `v`, or the one nearest in
/// variance that the support allows.
fn max_entropy(xs: &[f64], v: f64) -> Option<Vec<f64>> {
    // Two-point distributions bound the achievable variance: the closest points around 0 give
    // the least, the extremes the most.
    let below = xs
        .iter()
        .copied()
        .filter(|&x| x <= 0.0)
        .fold(f64::MIN, f64::max);
    let above = xs
        .iter()
        .copied()
        .filter(|&x| x >= 0.0)
        .fold(f64::MAX, f64::min);
    let (min_x, max_x) = (xs[0], xs[xs.len() - 1]);
    let two_point = |lo: f64, hi: f64| -> Vec<f64> {
        xs.iter()
            .map(|&x| {
                if lo == hi {
                    if x == lo { 1.0 } else { 0.0 }
                } else if x == lo {
                    hi / (hi - lo)
                } else if x == hi {
                    -lo / (hi - lo)
                } else {
                    0.0
                }
            })
            .collect()
    };
    let min_var = -below * above;
    let max_var = -min_x * max_x;
    if v <= min_var + 1e-9 {
        return Some(two_point(below, above));
    }
    if v >= max_var - 1e-9 {
        return Some(two_point(min_x, max_x));
    }
    // Newton on the convex dual: minimise log Z(a, b) - b·v.
    let dist = |a: f64, b: f64| -> (Vec<f64>, f64) {
        let e: Vec<f64> = xs.iter().map(|&x| a * x + b * x * x).collect();
        let m = e.iter().copied().fold(f64::MIN, f64::max);
        let w: Vec<f64> = e.iter().map(|&t| (t - m).exp()).collect();
        let z: f64 = w.iter().sum();
        (w.iter().map(|&t| t / z).collect(), m + z.ln())
    };
    let dual = |a: f64, b: f64| dist(a, b).1 - b * v;
    let (mut a, mut b) = (0.0_f64, -1.0 / (2.0 * v));
    for _ in 0..500 {
        let (p, _) = dist(a, b);
        let moment = |k: i32| -> f64 { p.iter().zip(xs).map(|(pi, x)| pi * x.powi(k)).sum() };
        let (m1, m2, m3, m4) = (moment(1), moment(2), moment(3), moment(4));
        let g = [m1, m2 - v];
        if g[0].abs() < 1e-12 && g[1].abs() < 1e-10 {
            return Some(p);
        }
        let h = [[m2 - m1 * m1, m3 - m1 * m2], [m3 - m1 * m2, m4 - m2 * m2]];
        let det = h[0][0] * h[1][1] - h[0][1] * h[1][0];
        if det.abs() < 1e-300 {
            return None;
        }
        let da = (h[1][1] * g[0] - h[0][1] * g[1]) / det;
        let db = (h[0][0] * g[1] - h[1][0] * g[0]) / det;
        let f0 = dual(a, b);
        let mut step = 1.0;
        // Near the optimum the dual is flat to rounding: accept steps that do not raise it by
        // more than that, or Newton's last quadratic steps are refused.
        let slack = 1e-12 * (1.0 + f0.abs());
        while step > 1e-12 && dual(a - step * da, b - step * db) > f0 + slack {
            step /= 2.0;
        }
        a -= step * da;
        b -= step * db;
    }
    None
}

/// Probabilities to intervals of the key range; every output that has probability keeps at
/// least one key.
fn quantise(outputs: Vec<u32>, probabilities: Vec<f64>) -> Row {
    let mut upper = Vec::with_capacity(outputs.len());
    let mut cumulative = 0.0;
    let mut previous = 0u64;
    for (k, p) in probabilities.iter().enumerate() {
        cumulative += p;
        let mut u = if k + 1 == probabilities.len() {
            KEY_RANGE
        } else {
            ((cumulative * KEY_RANGE as f64).round() as u64).min(KEY_RANGE)
        };
        if *p > 0.0 && u <= previous && previous < KEY_RANGE {
            u = previous + 1;
        }
        u = u.max(previous);
        upper.push(u);
        previous = u;
    }
    Row {
        outputs,
        upper,
        probabilities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(threshold: u32, max_noise: u32, variance: f64) -> PTable {
        PTable::build(Params {
            threshold,
            max_noise,
            variance,
        })
        .unwrap()
    }

    fn moments(row: &Row, i: u32) -> (f64, f64) {
        let mean: f64 = row
            .outputs
            .iter()
            .zip(&row.probabilities)
            .map(|(&j, p)| p * (f64::from(j) - f64::from(i)))
            .sum();
        let var: f64 = row
            .outputs
            .iter()
            .zip(&row.probabilities)
            .map(|(&j, p)| p * (f64::from(j) - f64::from(i)).powi(2))
            .sum();
        (mean, var)
    }

    #[test]
    fn every_row_has_zero_mean_bounded_noise_and_no_small_outputs() {
        for (js, d, v) in [(3, 5, 3.0), (3, 3, 2.0), (5, 6, 4.0), (3, 2, 1.0)] {
            let t = table(js, d, v);
            for (i, row) in t.rows().iter().enumerate() {
                let i = i as u32;
                let total: f64 = row.probabilities.iter().sum();
                assert!((total - 1.0).abs() < 1e-9, "row {i} sums to {total}");
                let (mean, var) = moments(row, i);
                assert!(
                    mean.abs() < 1e-9,
                    "row {i} of ({js},{d},{v}) has mean {mean}"
                );
                for &j in &row.outputs {
                    assert!(j == 0 || j >= js, "row {i} may publish {j}");
                    assert!(j.abs_diff(i) <= d, "row {i} moves to {j}");
                }
                // From the threshold up, the variance is the one asked for, unless the support
                // cannot spread that far (a row just above the threshold with little noise);
                // the last row, used for every larger value, always has it.
                if i >= js {
                    let exact = (var - v).abs() < 1e-6;
                    assert!(
                        exact || (var < v && i < js + d),
                        "row {i} of ({js},{d},{v}) has variance {var}"
                    );
                }
                assert_eq!(*row.upper.last().unwrap(), KEY_RANGE);
            }
        }
    }

    #[test]
    fn the_published_value_depends_only_on_value_and_key() {
        let t = table(3, 5, 3.0);
        for ckey in [0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            for i in 0..40 {
                let a = t.perturb(i, ckey);
                assert_eq!(a, t.perturb(i, ckey));
                assert!(a == 0 || a >= 3, "{i} -> {a}");
                assert!(a.abs_diff(i) <= 5);
            }
        }
        assert_eq!(t.perturb(0, 12345), 0);
    }

    #[test]
    fn the_key_range_realises_the_probabilities() {
        let t = table(3, 5, 3.0);
        for i in [1u32, 2, 3, 7, 30] {
            let mut counts = std::collections::BTreeMap::new();
            let n = 200_000u64;
            for k in 0..n {
                let ckey = ((k * KEY_RANGE) / n) as u32;
                *counts.entry(t.perturb(i, ckey)).or_insert(0u64) += 1;
            }
            for (&j, &c) in &counts {
                let expected = t.probability(i, j);
                let seen = c as f64 / n as f64;
                assert!(
                    (seen - expected).abs() < 1e-3,
                    "{i}->{j}: {seen} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn impossible_tables_are_refused() {
        let p = |threshold, max_noise, variance| Params {
            threshold,
            max_noise,
            variance,
        };
        assert_eq!(
            PTable::build(p(0, 3, 2.0)).unwrap_err(),
            PTableError::Threshold
        );
        assert!(matches!(
            PTable::build(p(5, 2, 2.0)).unwrap_err(),
            PTableError::NoiseTooSmall { .. }
        ));
        assert_eq!(
            PTable::build(p(3, 3, 0.0)).unwrap_err(),
            PTableError::Variance
        );
    }
}
