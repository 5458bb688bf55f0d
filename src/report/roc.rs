//! ROC curves and the area under them, as scikit-learn computes them:
//! `roc_curve` (one point per distinct score, ties taken together, starting
//! at (0, 0)) and `roc_auc_score` (the exact trapezoidal area, which equals
//! the Mann–Whitney probability that a positive outscores a negative, ties
//! counting one half). Multi-class AUC is one-vs-rest per class and their
//! unweighted (macro) mean, sklearn's `multi_class="ovr", average="macro"`.
//! A class with no positive or no negative sample has no AUC (`None`); the
//! macro mean is taken over the classes that have one, and is `None` when
//! none has (sklearn raises an error instead).

/// One point of a ROC curve: the rates reached by predicting positive for
/// every score ≥ `threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RocPoint {
    pub false_positive_rate: f64,
    pub true_positive_rate: f64,
    /// +∞ for the first point (nothing predicted positive), as sklearn's
    /// `drop_intermediate=False` curve.
    pub threshold: f64,
}

/// The ROC curve of `scores` against `positive` (same length). NaN scores
/// sort below every number. `None` when either class is absent.
pub fn roc_curve(scores: &[f32], positive: &[bool]) -> Option<Vec<RocPoint>> {
    let (pos, neg) = counts(positive);
    if pos == 0 || neg == 0 || scores.len() != positive.len() {
        return None;
    }
    let order = descending(scores);
    let mut points = vec![RocPoint { false_positive_rate: 0.0, true_positive_rate: 0.0, threshold: f64::INFINITY }];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        if positive[i] { tp += 1 } else { fp += 1 }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| !same(scores[j], scores[i]));
        if last_of_tie {
            points.push(RocPoint {
                false_positive_rate: fp as f64 / neg as f64,
                true_positive_rate: tp as f64 / pos as f64,
                threshold: scores[i] as f64,
            });
        }
    }
    Some(points)
}

/// Area under the ROC curve of `scores` against `positive`; `None` when
/// either class is absent.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let points = roc_curve(scores, positive)?;
    Some(points.windows(2).map(|w| (w[1].false_positive_rate - w[0].false_positive_rate) * (w[1].true_positive_rate + w[0].true_positive_rate) / 2.0).sum())
}

/// One-vs-rest AUC of each class. `probabilities` is row-major
/// `[samples × classes]`, `labels` the true class of each sample.
pub fn one_vs_rest_auc(probabilities: &[f32], labels: &[usize], classes: usize) -> Vec<Option<f64>> {
    one_vs_rest(probabilities, labels, classes, roc_auc)
}

/// `binary(scores of class c, whether each sample is of class c)` for every
/// class c; all `None` when the shapes disagree.
pub fn one_vs_rest<T>(
    probabilities: &[f32],
    labels: &[usize],
    classes: usize,
    binary: impl Fn(&[f32], &[bool]) -> Option<T>,
) -> Vec<Option<T>> {
    if classes == 0 || probabilities.len() != labels.len() * classes {
        return (0..classes).map(|_| None).collect();
    }
    (0..classes)
        .map(|c| {
            let scores: Vec<f32> = probabilities.chunks_exact(classes).map(|row| row[c]).collect();
            let positive: Vec<bool> = labels.iter().map(|&l| l == c).collect();
            binary(&scores, &positive)
        })
        .collect()
}

/// Unweighted mean of the defined per-class AUCs; `None` when none is defined.
pub fn macro_auc(per_class: &[Option<f64>]) -> Option<f64> {
    let defined: Vec<f64> = per_class.iter().flatten().copied().collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}

pub(super) fn counts(positive: &[bool]) -> (usize, usize) {
    let pos = positive.iter().filter(|&&p| p).count();
    (pos, positive.len() - pos)
}

/// Indices of `scores` from the highest score to the lowest, NaN last.
pub(super) fn descending(scores: &[f32]) -> Vec<usize> {
    let key = |i: usize| if scores[i].is_nan() { f32::NEG_INFINITY } else { scores[i] };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then((scores[a].is_nan()).cmp(&scores[b].is_nan())));
    order
}

/// Two scores that a threshold cannot separate (NaN equals NaN here).
pub(super) fn same(a: f32, b: f32) -> bool {
    a == b || a.is_nan() && b.is_nan()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Mann–Whitney definition, by brute force over every pair.
    fn pairwise_auc(scores: &[f32], positive: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &p) in positive.iter().enumerate() {
            for (j, &q) in positive.iter().enumerate() {
                if p && !q {
                    pairs += 1.0;
                    wins += if scores[i] > scores[j] { 1.0 } else if scores[i] == scores[j] { 0.5 } else { 0.0 };
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn matches_sklearn_on_its_documented_example() {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
        let curve = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        let fpr: Vec<f64> = curve.iter().map(|p| p.false_positive_rate).collect();
        let tpr: Vec<f64> = curve.iter().map(|p| p.true_positive_rate).collect();
        assert_eq!(fpr, [0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(tpr, [0.0, 0.5, 0.5, 1.0, 1.0]);
    }

    #[test]
    fn equals_the_pairwise_probability_with_ties() {
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for n in [2usize, 7, 31] {
            // Scores on a coarse grid so that ties are common.
            let scores: Vec<f32> = (0..n).map(|_| (next() % 5) as f32 / 4.0).collect();
            let mut positive: Vec<bool> = (0..n).map(|_| next() % 3 == 0).collect();
            positive[0] = true;
            positive[1] = false;
            let auc = roc_auc(&scores, &positive).unwrap();
            assert!((auc - pairwise_auc(&scores, &positive)).abs() < 1e-12, "n {n}");
        }
    }

    #[test]
    fn undefined_without_both_classes_and_macro_skips_them() {
        assert_eq!(roc_auc(&[0.2, 0.3], &[true, true]), None);
        // Class 2 never occurs: its AUC is undefined, the macro mean is over 0 and 1.
        let probs = [0.9, 0.1, 0.0, 0.2, 0.8, 0.0, 0.6, 0.4, 0.0];
        let per = one_vs_rest_auc(&probs, &[0, 1, 0], 3);
        assert_eq!(per, vec![Some(1.0), Some(1.0), None]);
        assert_eq!(macro_auc(&per), Some(1.0));
        assert_eq!(macro_auc(&[None, None]), None);
    }

    #[test]
    fn nan_scores_rank_lowest() {
        let auc = roc_auc(&[f32::NAN, 0.5, 0.1], &[false, true, false]).unwrap();
        assert_eq!(auc, 1.0);
    }
}
