//! A fast 64-bit hash of bytes: the frozen weights' hash keys the feature
//! cache, and the hash of an image file's contents finds duplicates between
//! dataset splits and proves a recorded split's files unchanged. Not
//! cryptographic: callers that act on equal hashes compare the bytes too.

use crate::error::{Error, Result};
use std::path::Path;

/// A word-at-a-time hash (FxHash's step, eight bytes at a time: fast on 88 MB
/// of weights), finished with SplitMix64's mixer.
#[derive(Default)]
pub struct WordHash(u64);

impl WordHash {
    pub fn bytes(&mut self, data: &[u8]) {
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last) ^ (rest.len() as u64) << 56);
        }
    }

    pub fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    pub fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The size and [`WordHash`] of a file's contents. Errors name the file.
pub fn file_hash(path: &Path) -> Result<(u64, u64)> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), reason: format!("cannot read: {e}") })?;
    let mut h = WordHash::default();
    h.bytes(&bytes);
    Ok((bytes.len() as u64, h.finish()))
}

#[cfg(test)]
mod tests {
    use super::WordHash;

    fn hash(b: &[u8]) -> u64 {
        let mut h = WordHash::default();
        h.bytes(b);
        h.finish()
    }

    #[test]
    fn differs_for_a_changed_byte_or_length() {
        let a: Vec<u8> = (0..37u8).collect();
        let mut b = a.clone();
        b[20] ^= 1;
        assert_ne!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&a[..36]));
        assert_ne!(hash(&[0]), hash(&[0, 0]));
        assert_eq!(hash(&a), hash(&a.clone()));
    }
}
