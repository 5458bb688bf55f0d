//! A validation split taken from one folder: `--validation-split F` holds
//! out a stratified, seeded fraction of each class of train/, as
//! scikit-learn's `train_test_split(test_size=F, stratify=labels)` does:
//!
//! - n_valid = ⌈F · n⌉ images in all, n_train = n − n_valid;
//! - per class, n_train is shared out by sklearn's `_approximate_mode`: each
//!   class gets ⌊count_c / n · n_train⌋ training images, and the images
//!   still missing go one each to the classes with the largest fractional
//!   parts (ties broken by the seeded generator, as sklearn breaks them with
//!   its own); the rest of each class validates;
//! - within a class, a seeded permutation picks which images train (the
//!   first n_train_c) and which validate.
//!
//! Unlike sklearn, which only requires as many images on each side as there
//! are classes, every class must keep at least one image on each side, or
//! the split is refused naming the class. The generator is not numpy's, so
//! the same seed picks other files than sklearn would; the run records the
//! files it chose (`train::split_record`), so a resumed run never depends on
//! drawing them again.

use super::folder::ImageFolder;
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Positions in the folder's [`ImageFolder::samples`] on each side, in listing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitIndices {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
}

/// Errors, naming the flag, unless `fraction` is in (0, 1).
pub fn check_fraction(fraction: f64) -> Result<()> {
    if fraction.is_finite() && fraction > 0.0 && fraction < 1.0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!("--validation-split {fraction}: expected a fraction of train/ strictly between 0 and 1 (e.g. 0.2)")))
    }
}

/// Training images per class: sklearn's `_approximate_mode(class_counts,
/// n_train)`, ties among equal fractional parts broken by `rng`.
fn training_counts(class_counts: &[usize], n_train: usize, rng: &mut StdRng) -> Vec<usize> {
    let total: usize = class_counts.iter().sum();
    let continuous: Vec<f64> = class_counts.iter().map(|&c| c as f64 / total as f64 * n_train as f64).collect();
    let mut counts: Vec<usize> = continuous.iter().map(|v| v.floor() as usize).collect();
    let mut missing = n_train.saturating_sub(counts.iter().sum());
    let remainder: Vec<f64> = continuous.iter().zip(&counts).map(|(v, &f)| v - f as f64).collect();
    let mut values = remainder.clone();
    values.sort_by(|a, b| b.total_cmp(a));
    values.dedup();
    for value in values {
        if missing == 0 {
            break;
        }
        let mut tied: Vec<usize> = (0..remainder.len()).filter(|&i| remainder[i] == value).collect();
        tied.shuffle(rng);
        for &i in tied.iter().take(missing) {
            counts[i] += 1;
        }
        missing -= tied.len().min(missing);
    }
    counts
}

/// Splits `folder` into training and validation images (see the module
/// documentation). Errors name the flag and the class that would be left
/// without an image on either side.
pub fn stratified_split(folder: &ImageFolder, fraction: f64, seed: u64) -> Result<SplitIndices> {
    check_fraction(fraction)?;
    let counts = folder.class_counts();
    let n = folder.len();
    let n_valid = (fraction * n as f64).ceil() as usize;
    let n_train = n.saturating_sub(n_valid);
    let mut rng = StdRng::seed_from_u64(seed);
    let train_counts = training_counts(&counts, n_train, &mut rng);
    for (c, (&count, &train)) in counts.iter().zip(&train_counts).enumerate() {
        if train == 0 || train == count {
            return Err(Error::Invalid(format!(
                "--validation-split {fraction}: class {:?} of {} has {count} image(s), of which {train} would train and {} validate; \
                 every class needs at least one image on each side (change the fraction or add images)",
                folder.classes()[c],
                folder.root().display(),
                count - train
            )));
        }
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); counts.len()];
    for (i, &(_, label)) in folder.samples().iter().enumerate() {
        by_class[label].push(i);
    }
    let (mut train, mut valid) = (Vec::with_capacity(n_train), Vec::with_capacity(n_valid));
    for (members, &k) in by_class.iter_mut().zip(&train_counts) {
        members.shuffle(&mut rng);
        train.extend_from_slice(&members[..k]);
        valid.extend_from_slice(&members[k..]);
    }
    train.sort_unstable();
    valid.sort_unstable();
    Ok(SplitIndices { train, valid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approximate_mode_matches_sklearn_hand_computed_counts() {
        let mut rng = StdRng::seed_from_u64(0);
        // 10 + 20 + 30 images, n_train = 60 − ⌈0.25 · 60⌉ = 45: exact shares 7.5, 15, 22.5;
        // floors 7 + 15 + 22 = 44, one more for one of the two tied .5 classes.
        let c = training_counts(&[10, 20, 30], 45, &mut rng);
        assert_eq!(c.iter().sum::<usize>(), 45);
        assert_eq!(c[1], 15);
        assert!(c == [8, 15, 22] || c == [7, 15, 23], "{c:?}");
        // No ties: 3 + 4 + 5 = 12, n_train 8: shares 2, 2.667, 3.333: floors 2 + 2 + 3, the largest remainder (.667) gets one.
        assert_eq!(training_counts(&[3, 4, 5], 8, &mut rng), [2, 3, 3]);
    }

    #[test]
    fn both_tie_breaks_happen_for_some_seed() {
        let seen: std::collections::HashSet<Vec<usize>> =
            (0..32).map(|s| training_counts(&[10, 20, 30], 45, &mut StdRng::seed_from_u64(s))).collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
}
