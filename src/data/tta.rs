//! Test-time augmentation (`--tta N` of `incept predict` and `evaluate`): each
//! image is classified N times and the N softmax outputs are averaged, as
//! Keras and fastai do. The copies, in order:
//!
//! 1. the image itself (so N = 1 is plain prediction, bit for bit);
//! 2. its horizontal mirror, when the run's augmentation flips images
//!    (otherwise a random draw like the copies after it);
//! 3. … N: random draws of the run's own training augmentation (shear, zoom
//!    and flip with run.json's `shear_degrees`, `zoom` and `horizontal_flip`),
//!    the first N − 2 draws of `Augment::draw` from a generator seeded with
//!    the run's seed — the same transforms for every image, so results do
//!    not depend on image order, batching or which other images are given.
//!
//! Every copy is made from the resized image before preprocessing, as the
//! training loader augments (`Transform::input`).

use super::augment::{Augment, Transform};
use super::image_file::Preprocess;
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Which copies of each image are classified; see the module comment.
#[derive(Clone, Debug, PartialEq)]
pub struct Tta {
    transforms: Vec<Transform>,
}

impl Tta {
    /// `copies` copies drawn with `augment` and `seed`; refuses 0 copies
    /// (naming `--tta`) and augmentation ranges `Augment::validate` refuses.
    pub fn new(copies: usize, augment: Augment, seed: u64) -> Result<Tta> {
        Tta::check_copies(copies)?;
        augment.validate()?;
        let mut transforms = vec![Transform::IDENTITY];
        if copies > 1 && augment.horizontal_flip {
            transforms.push(Transform { flip_horizontal: true, ..Transform::IDENTITY });
        }
        let mut rng = StdRng::seed_from_u64(seed);
        while transforms.len() < copies {
            transforms.push(augment.draw(&mut rng));
        }
        Ok(Tta { transforms })
    }

    /// Refuses 0 copies, naming `--tta` (so a command can check the flag before any work).
    pub fn check_copies(copies: usize) -> Result<()> {
        if copies == 0 {
            return Err(Error::Invalid(
                "--tta 0: test-time augmentation needs at least 1 copy (1 = the image alone, no augmentation)".into(),
            ));
        }
        Ok(())
    }

    /// No augmentation: the image alone.
    pub fn none() -> Tta {
        Tta { transforms: vec![Transform::IDENTITY] }
    }

    /// Number of copies per image.
    pub fn copies(&self) -> usize {
        self.transforms.len()
    }

    /// The transform of each copy, in order.
    pub fn transforms(&self) -> &[Transform] {
        &self.transforms
    }

    /// The network input of each copy of a resized RGB image
    /// (`size`×`size`×3 bytes, HWC).
    pub fn inputs(&self, rgb: &[u8], size: usize, pre: Preprocess) -> Result<Vec<Vec<f32>>> {
        self.transforms.iter().map(|t| t.input(rgb, size, pre)).collect()
    }
}

/// The element-wise mean of equally long probability rows (one per copy),
/// summed in f64 in copy order; a single row is returned unchanged.
pub fn mean_probabilities(per_copy: &[Vec<f32>]) -> Vec<f32> {
    let n = per_copy.len().max(1) as f64;
    let width = per_copy.first().map_or(0, Vec::len);
    (0..width).map(|c| (per_copy.iter().map(|row| row[c] as f64).sum::<f64>() / n) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_the_image_its_mirror_then_seeded_draws() {
        let tta = Tta::new(5, Augment::TUTORIAL, 3).unwrap();
        let t = tta.transforms();
        assert_eq!((t[0], t[1]), (Transform::IDENTITY, Transform { flip_horizontal: true, ..Transform::IDENTITY }));
        let mut rng = StdRng::seed_from_u64(3);
        let draws: Vec<Transform> = (0..3).map(|_| Augment::TUTORIAL.draw(&mut rng)).collect();
        assert_eq!(&t[2..], &draws[..]);
        assert!(draws.iter().all(|d| d.zx != 1.0 && d.zy != 1.0 && (0.8..1.2).contains(&d.zx)));
        assert_eq!(Tta::new(5, Augment::TUTORIAL, 3).unwrap(), tta, "same seed, same copies");
        assert_ne!(Tta::new(5, Augment::TUTORIAL, 4).unwrap(), tta);
        assert_eq!(Tta::new(1, Augment::TUTORIAL, 3).unwrap(), Tta::none());
        // Without flips in the run's augmentation, copy 2 is a random draw too.
        let no_flip = Augment { horizontal_flip: false, ..Augment::TUTORIAL };
        let t = Tta::new(2, no_flip, 3).unwrap();
        assert!(!t.transforms()[1].flip_horizontal && t.transforms()[1].zx != 1.0);
    }

    #[test]
    fn zero_copies_are_refused_naming_the_flag() {
        let e = Tta::new(0, Augment::TUTORIAL, 0).unwrap_err().to_string();
        assert!(e.contains("--tta 0"), "{e}");
    }

    #[test]
    fn the_first_copy_is_the_plain_input_and_the_second_its_mirror() {
        let size = 5;
        let rgb: Vec<u8> = (0..size * size * 3).map(|i| (i * 37 % 251) as u8).collect();
        let inputs = Tta::new(2, Augment::TUTORIAL, 0).unwrap().inputs(&rgb, size, Preprocess::Inception).unwrap();
        let plain: Vec<f32> = rgb.iter().map(|&v| Preprocess::Inception.apply(v)).collect();
        assert_eq!(inputs[0], plain);
        for r in 0..size {
            for c in 0..size {
                for ch in 0..3 {
                    assert_eq!(inputs[1][(r * size + c) * 3 + ch], plain[(r * size + size - 1 - c) * 3 + ch]);
                }
            }
        }
    }

    #[test]
    fn mean_of_copies() {
        assert_eq!(mean_probabilities(&[vec![0.25, 0.75]]), vec![0.25, 0.75]);
        assert_eq!(mean_probabilities(&[vec![0.2, 0.8], vec![0.6, 0.4]]), vec![0.4f64 as f32, 0.6f64 as f32]);
    }
}
