//! Precision-recall curves and average precision, as scikit-learn (≥ 1.1)
//! computes them: `precision_recall_curve` has one point per distinct score
//! (ties taken together), in order of increasing threshold, so recall
//! decreases, followed by the point (recall 0, precision 1) that has no
//! threshold; `average_precision_score` is Σₙ (Rₙ − Rₙ₊₁)·Pₙ over those points
//! (a step sum, not the trapezoid). A class with no positive sample has no
//! curve and no average precision (`None`; sklearn warns and sets recall to 1).
//! Multi-class: one-vs-rest per class (`roc::one_vs_rest`) and the
//! unweighted mean over the classes that have one.

use super::roc::{counts, descending, macro_auc, same};

/// One point of a precision-recall curve: the scores reached by predicting
/// positive for every score ≥ `threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrPoint {
    pub precision: f64,
    pub recall: f64,
    /// +∞ for the last point (nothing predicted positive, precision 1 by convention).
    pub threshold: f64,
}

/// The precision-recall curve of `scores` against `positive` (same length),
/// in sklearn's order. NaN scores sort below every number. `None` without a
/// positive sample.
pub fn precision_recall_curve(scores: &[f32], positive: &[bool]) -> Option<Vec<PrPoint>> {
    let (pos, _) = counts(positive);
    if pos == 0 || scores.len() != positive.len() {
        return None;
    }
    let order = descending(scores);
    let mut points = Vec::new();
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        if positive[i] { tp += 1 } else { fp += 1 }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| !same(scores[j], scores[i]));
        if last_of_tie {
            points.push(PrPoint {
                precision: tp as f64 / (tp + fp) as f64,
                recall: tp as f64 / pos as f64,
                threshold: scores[i] as f64,
            });
        }
    }
    points.reverse();
    points.push(PrPoint { precision: 1.0, recall: 0.0, threshold: f64::INFINITY });
    Some(points)
}

/// Average precision of `scores` against `positive`; `None` without a positive sample.
pub fn average_precision(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let points = precision_recall_curve(scores, positive)?;
    Some(points.windows(2).map(|w| (w[0].recall - w[1].recall) * w[0].precision).sum())
}

/// Unweighted mean of the defined per-class average precisions; `None` when none is defined.
pub fn macro_average_precision(per_class: &[Option<f64>]) -> Option<f64> {
    macro_auc(per_class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::roc::one_vs_rest;

    #[test]
    fn matches_sklearn_on_its_documented_example() {
        // sklearn.metrics.average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8333…
        let (scores, positive) = ([0.1, 0.4, 0.35, 0.8], [false, false, true, true]);
        let ap = average_precision(&scores, &positive).unwrap();
        assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
        // precision_recall_curve on the same data (sklearn ≥ 1.1):
        // precision [0.5, 0.667, 0.5, 1, 1], recall [1, 1, 0.5, 0.5, 0], thresholds [0.1, 0.35, 0.4, 0.8].
        let curve = precision_recall_curve(&scores, &positive).unwrap();
        let precision: Vec<f64> = curve.iter().map(|p| p.precision).collect();
        let recall: Vec<f64> = curve.iter().map(|p| p.recall).collect();
        let thresholds: Vec<f64> = curve.iter().map(|p| p.threshold).collect();
        assert_eq!(precision, [0.5, 2.0 / 3.0, 0.5, 1.0, 1.0]);
        assert_eq!(recall, [1.0, 1.0, 0.5, 0.5, 0.0]);
        assert_eq!(thresholds[..4], [0.1f32 as f64, 0.35f32 as f64, 0.4f32 as f64, 0.8f32 as f64]);
    }

    #[test]
    fn ties_share_one_point_and_perfect_ranking_scores_one() {
        // The two 0.5 scores (a positive and a negative) give one point: P 2/3 at R 1.
        let curve = precision_recall_curve(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).unwrap();
        assert_eq!(curve.len(), 4);
        assert_eq!((curve[1].precision, curve[1].recall), (2.0 / 3.0, 1.0));
        assert_eq!(average_precision(&[0.9, 0.8, 0.3], &[true, true, false]), Some(1.0));
        // All positive: precision 1 at every threshold.
        assert_eq!(average_precision(&[0.2, 0.7], &[true, true]), Some(1.0));
    }

    #[test]
    fn undefined_without_positives_and_macro_skips_them() {
        assert_eq!(average_precision(&[0.2, 0.3], &[false, false]), None);
        let probs = [0.9, 0.1, 0.0, 0.2, 0.8, 0.0, 0.6, 0.4, 0.0];
        let per = one_vs_rest(&probs, &[0, 1, 0], 3, average_precision);
        assert_eq!(per, vec![Some(1.0), Some(1.0), None]);
        assert_eq!(macro_average_precision(&per), Some(1.0));
    }
}
