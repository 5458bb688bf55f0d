//! CPU references for `ops::concat` (rows of `width` channels, last axis).

/// Concatenates `(data, channels)` parts along the channel axis.
pub fn concat_channels(parts: &[(&[f64], usize)]) -> Vec<f64> {
    let rows = parts[0].0.len() / parts[0].1;
    let mut out = Vec::new();
    for r in 0..rows {
        for (data, c) in parts {
            out.extend_from_slice(&data[r * c..(r + 1) * c]);
        }
    }
    out
}

pub fn slice_channels(x: &[f64], channels: usize, offset: usize, width: usize) -> Vec<f64> {
    x.chunks(channels).flat_map(|row| row[offset..offset + width].iter().copied()).collect()
}
