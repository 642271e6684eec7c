//! The key range of a prefix, for engines that scan by range: every key that
//! starts with `prefix` is `>= prefix` and `< prefix_end(prefix)`, compared
//! byte by byte (the order of PostgreSQL's `bytea`, and of CockroachDB's and
//! YugabyteDB's `BYTES`). Pure code: the bounds are computed here, never in SQL.

/// The smallest key greater than every key that starts with `prefix`, or
/// `None` when there is none (an empty prefix, or one of `0xFF` bytes only:
/// the range is then unbounded above).
///
/// Trailing `0xFF` bytes cannot be incremented: they are dropped and the byte
/// before them is incremented (`61 FF FF` ends at `62`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Where a scan of `prefix` after key `after` (exclusive) starts: the key,
/// and whether the key itself is included. An `after` below the prefix does
/// not widen the scan: the scan never leaves the prefix.
pub(crate) fn scan_start<'a>(prefix: &'a [u8], after: Option<&'a [u8]>) -> (&'a [u8], bool) {
    match after {
        Some(a) if a >= prefix => (a, false),
        _ => (prefix, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The range `[prefix, prefix_end)` holds exactly the keys that start
    /// with the prefix, over every key of up to three bytes drawn from the
    /// bytes at the edges.
    #[test]
    fn the_range_holds_exactly_the_keys_with_the_prefix() {
        let bytes = [0x00u8, 0x01, 0x7F, 0xFE, 0xFF];
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=3 {
            let mut next = Vec::new();
            for k in keys.iter().filter(|k| k.len() == len - 1) {
                for b in bytes {
                    let mut k = k.clone();
                    k.push(b);
                    next.push(k);
                }
            }
            keys.extend(next);
        }
        for prefix in &keys {
            let end = prefix_end(prefix);
            for key in &keys {
                let in_range =
                    key.as_slice() >= prefix.as_slice() && end.as_ref().is_none_or(|e| key < e);
                assert_eq!(
                    in_range,
                    key.starts_with(prefix),
                    "prefix {prefix:02X?}, end {end:02X?}, key {key:02X?}"
                );
            }
        }
    }

    #[test]
    fn trailing_ff_bytes_carry_and_all_ff_is_unbounded() {
        assert_eq!(prefix_end(b"doc/"), Some(b"doc0".to_vec()));
        assert_eq!(prefix_end(&[0x61, 0xFF, 0xFF]), Some(vec![0x62]));
        assert_eq!(prefix_end(&[0x00, 0xFF]), Some(vec![0x01]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[]), None);
    }

    #[test]
    fn a_scan_starts_at_the_prefix_unless_after_is_inside_or_beyond_it() {
        assert_eq!(scan_start(b"b", None), (&b"b"[..], true));
        assert_eq!(scan_start(b"b", Some(b"a")), (&b"b"[..], true));
        assert_eq!(scan_start(b"b", Some(b"b")), (&b"b"[..], false));
        assert_eq!(scan_start(b"b", Some(b"b1")), (&b"b1"[..], false));
    }
}
