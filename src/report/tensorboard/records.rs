//! TFRecord framing, the container of TensorBoard's event files: each record
//! is its length (u64, little-endian), a masked CRC-32C of those 8 bytes,
//! the data, and a masked CRC-32C of the data. The mask (rotate right by 15,
//! add 0xa282ead8) is TensorFlow's, so that a CRC of data holding CRCs is
//! not itself a trivial value.

/// `data` framed as one record.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The records in `bytes`, in order, and where the complete ones end.
/// Reading stops at the first record that is cut short (a writer still
/// appending, or one that was interrupted) or whose checksums fail, as
/// TensorBoard's own reader does; `complete` is false then.
pub struct Records<'a> {
    pub records: Vec<&'a [u8]>,
    pub complete: bool,
}

pub fn read(bytes: &[u8]) -> Records<'_> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Some((data, next)) => {
                records.push(data);
                at = next;
            }
            None => return Records { records, complete: false },
        }
    }
    Records { records, complete: true }
}

/// The record starting at `at` and the offset after it, if whole and intact.
fn record_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(at..at.checked_add(12)?)?;
    let (length, length_crc) = header.split_at(8);
    if masked_crc(length) != u32::from_le_bytes(length_crc.try_into().ok()?) {
        return None;
    }
    let len = usize::try_from(u64::from_le_bytes(length.try_into().ok()?)).ok()?;
    let start = at + 12;
    let end = start.checked_add(len)?;
    let data = bytes.get(start..end)?;
    let data_crc = bytes.get(end..end.checked_add(4)?)?;
    (masked_crc(data) == u32::from_le_bytes(data_crc.try_into().ok()?)).then_some((data, end + 4))
}

fn masked_crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_the_castagnoli_checksum() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
    }

    #[test]
    fn records_round_trip_and_a_cut_or_damaged_one_ends_the_reading() {
        let a: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(7)).collect();
        let b = b"second record".to_vec();
        let mut file = frame(&a);
        file.extend(frame(&b));
        let whole = read(&file);
        assert!(whole.complete);
        assert_eq!(whole.records, vec![&a[..], &b[..]]);

        let cut = read(&file[..file.len() - 3]);
        assert!(!cut.complete);
        assert_eq!(cut.records, vec![&a[..]]);

        let mut damaged = file.clone();
        let last = damaged.len() - 6;
        damaged[last] ^= 1;
        let damaged = read(&damaged);
        assert!(!damaged.complete);
        assert_eq!(damaged.records, vec![&a[..]]);
    }
}
