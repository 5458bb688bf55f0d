//! CPU reference for `ops::dropout`: the same counter-based hash as
//! `shaders/dropout.wgsl`, bit for bit.

/// lowbias32 (C. Wellons), a bijective 32-bit mixer.
fn mix32(v: u32) -> u32 {
    let mut h = v;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846ca68b);
    h ^= h >> 16;
    h
}

/// The uniform 32-bit hash of (seed, element index) that decides the mask.
pub fn dropout_bits(seed: u64, index: u32) -> u32 {
    let key = mix32(seed as u32 ^ mix32((seed >> 32) as u32 ^ 0x9e3779b9));
    mix32(mix32(index ^ key).wrapping_add(key))
}

/// Whether element `index` survives: its hash is at least rate·2³².
pub fn keep(seed: u64, index: u32, rate: f64) -> bool {
    dropout_bits(seed, index) as f64 >= rate * 4294967296.0
}

/// Inverted dropout (also its own backward, applied to the upstream gradient).
pub fn dropout(x: &[f64], rate: f64, seed: u64) -> Vec<f64> {
    x.iter().enumerate().map(|(i, &v)| if keep(seed, i as u32, rate) { v / (1.0 - rate) } else { 0.0 }).collect()
}
