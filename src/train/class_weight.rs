//! `--class-weight`: Keras's `class_weight` for an imbalanced training set.
//! Each training sample's loss is multiplied by its class's weight and the
//! batch loss is divided by the batch size (Keras 3 `sum_over_batch_size`);
//! validation and test losses are unweighted, as Keras's are.
//!
//! The rule is resolved once, when the run is created, against the training
//! split's class counts, and run.json stores the weight of every class: a
//! resumed run, or a dataset that changed since, never changes them.

use crate::autograd::{self as ag, Var};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// A run's class weights: the rule as given and its resolution.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassWeights {
    /// `balanced`, or the explicit list as given (`coat=2,shirt=1`).
    pub rule: String,
    /// One weight per class, in label order.
    pub weights: Vec<f64>,
}

/// `--class-weight` as typed, before it meets the dataset.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeightRule {
    /// No weighting (every sample weighs 1).
    None,
    /// scikit-learn's `compute_class_weight('balanced')`: n_samples / (n_classes · count_c).
    Balanced,
    /// `CLASS=WEIGHT,...` by folder name; classes not named weigh 1, as in
    /// Keras 3 (`class_weight.get(c, 1.0)`).
    Explicit(Vec<(String, f64)>),
}

fn refuse(given: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("--class-weight {given}: {why}; expected none, balanced or CLASS=WEIGHT,... (e.g. coat=2,shirt=1)"))
}

impl ClassWeightRule {
    /// Parses `--class-weight`; errors name the flag and what is wrong.
    pub fn parse(given: &str) -> Result<ClassWeightRule> {
        match given.trim() {
            "none" => return Ok(ClassWeightRule::None),
            "balanced" => return Ok(ClassWeightRule::Balanced),
            "" => return Err(refuse(given, "empty")),
            _ => {}
        }
        let mut pairs: Vec<(String, f64)> = Vec::new();
        for item in given.split(',') {
            let Some((name, value)) = item.split_once('=') else {
                return Err(refuse(given, format!("{item:?} is not CLASS=WEIGHT")));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(refuse(given, format!("{item:?} names no class")));
            }
            let weight: f64 = value.trim().parse().map_err(|_| refuse(given, format!("the weight of {name:?}, {value:?}, is not a number")))?;
            check_weight(given, name, weight)?;
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(refuse(given, format!("class {name:?} is given twice")));
            }
            pairs.push((name.to_string(), weight));
        }
        Ok(ClassWeightRule::Explicit(pairs))
    }

    /// The weights of `classes` (label order), whose training images number
    /// `counts`; `None` for no weighting. Errors name an unknown class.
    fn resolve(&self, given: &str, classes: &[String], counts: &[usize]) -> Result<Option<ClassWeights>> {
        let weights = match self {
            ClassWeightRule::None => return Ok(None),
            ClassWeightRule::Balanced => {
                let total: usize = counts.iter().sum();
                if let Some(c) = counts.iter().position(|&n| n == 0) {
                    return Err(refuse(given, format!("class {:?} has no training image, so it has no balanced weight", classes[c])));
                }
                counts.iter().map(|&n| total as f64 / (classes.len() * n) as f64).collect()
            }
            ClassWeightRule::Explicit(pairs) => {
                let mut weights = vec![1.0; classes.len()];
                for (name, w) in pairs {
                    let Some(c) = classes.iter().position(|k| k == name) else {
                        return Err(refuse(given, format!("no class is named {name:?}; the classes are {classes:?}")));
                    };
                    weights[c] = *w;
                }
                weights
            }
        };
        let cw = ClassWeights { rule: given.trim().to_string(), weights };
        cw.validate(classes.len())?;
        Ok(Some(cw))
    }
}

/// `--class-weight GIVEN` resolved for `classes` (label order) whose
/// training images number `counts`; `None` for `none`.
pub fn resolve(given: &str, classes: &[String], counts: &[usize]) -> Result<Option<ClassWeights>> {
    ClassWeightRule::parse(given)?.resolve(given, classes, counts)
}

fn check_weight(given: &str, name: &str, w: f64) -> Result<()> {
    if !(w.is_finite() && w >= 0.0) {
        return Err(refuse(given, format!("the weight of {name:?} is {w}; a class weight must be a finite number ≥ 0")));
    }
    Ok(())
}

impl ClassWeights {
    /// Checks a resolved (or hand-edited) set against `classes` classes.
    pub fn validate(&self, classes: usize) -> Result<()> {
        if self.weights.len() != classes {
            return Err(refuse(&self.rule, format!("{} weights for {classes} classes", self.weights.len())));
        }
        for (c, &w) in self.weights.iter().enumerate() {
            check_weight(&self.rule, &format!("class {c}"), w)?;
        }
        if self.weights.iter().all(|&w| w == 0.0) {
            return Err(refuse(&self.rule, "every class weighs 0, so there is nothing to learn"));
        }
        Ok(())
    }

    /// The loss weight of each sample of a batch, from its labels.
    pub fn sample_weights(&self, labels: &[usize]) -> Vec<f32> {
        labels.iter().map(|&l| self.weights.get(l).copied().unwrap_or(1.0) as f32).collect()
    }

    /// `coat 2.000, shirt 1.000` for the run summary.
    pub fn describe(&self, classes: &[String]) -> String {
        let each: Vec<String> = classes.iter().zip(&self.weights).map(|(c, w)| format!("{c} {w:.4}")).collect();
        format!("{} ({})", self.rule, each.join(", "))
    }
}

/// The training loss of a batch: softmax cross-entropy of `logits` against
/// the one-hot `targets`, each sample weighted by the weight of its class
/// (`labels`) when the run has class weights.
pub fn training_loss(logits: &Var, targets: &Tensor, labels: &[usize], class_weight: Option<&ClassWeights>) -> Result<Var> {
    let weights = match class_weight {
        Some(cw) => Some(Tensor::from_slice(targets.gpu(), &[labels.len()], &cw.sample_weights(labels))?),
        None => None,
    };
    Ok(ag::weighted_softmax_cross_entropy(logits, targets, weights.as_ref())?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn balanced_is_scikit_learns_rule() {
        // compute_class_weight('balanced', classes=[0,1,2], y) with counts 10, 30, 60: 100 / (3 · count).
        let classes = names(&["a", "b", "c"]);
        let cw = resolve("balanced", &classes, &[10, 30, 60]).unwrap().unwrap();
        let want = [100.0 / 30.0, 100.0 / 90.0, 100.0 / 180.0];
        assert!(cw.weights.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "{:?}", cw.weights);
        assert_eq!(cw.sample_weights(&[2, 0]), vec![(100.0f64 / 180.0) as f32, (100.0f64 / 30.0) as f32]);
    }

    #[test]
    fn explicit_names_folders_and_others_weigh_one() {
        let classes = names(&["coat", "pullover", "shirt"]);
        let cw = resolve("shirt=2.5, coat=0", &classes, &[1, 1, 1]).unwrap().unwrap();
        assert_eq!(cw.weights, vec![0.0, 1.0, 2.5]);
        assert_eq!(resolve("none", &classes, &[1, 1, 1]).unwrap(), None);
    }

    #[test]
    fn bad_rules_are_refused_naming_the_flag() {
        let classes = names(&["coat", "shirt"]);
        for (given, says) in [
            ("coat=-1", "≥ 0"),
            ("coat=nan", "≥ 0"),
            ("coat=inf", "≥ 0"),
            ("coat=2,coat=3", "twice"),
            ("coat:2", "not CLASS=WEIGHT"),
            ("coat=", "not a number"),
            ("=2", "names no class"),
            ("", "empty"),
            ("coat=2,", "not CLASS=WEIGHT"),
            ("balance", "not CLASS=WEIGHT"),
        ] {
            let err = ClassWeightRule::parse(given).unwrap_err().to_string();
            assert!(err.contains("--class-weight") && err.contains(says), "{given}: {err}");
        }
        let err = resolve("trousers=2", &classes, &[1, 1]).unwrap_err().to_string();
        assert!(err.contains("--class-weight") && err.contains("trousers"), "{err}");
        let err = resolve("coat=0,shirt=0", &classes, &[1, 1]).unwrap_err().to_string();
        assert!(err.contains("nothing to learn"), "{err}");
        let err = resolve("balanced", &classes, &[3, 0]).unwrap_err().to_string();
        assert!(err.contains("shirt") && err.contains("no training image"), "{err}");
        let hand_edited = ClassWeights { rule: "balanced".into(), weights: vec![1.0] };
        assert!(hand_edited.validate(2).unwrap_err().to_string().contains("1 weights for 2 classes"));
    }
}
