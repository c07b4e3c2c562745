// SPDX-License-Identifier: GPL-2.0

//! Sizing of the shadow variable hash table, as pure logic shared with the
//! host tests.
//!
//! The table keeps its load factor between 1/8 and 1 bucket per live
//! variable, so a lookup visits about one node however many variables live,
//! while a small table stays small.

/// Fewest buckets the table ever has.
pub const MIN_BUCKETS: usize = 256;
/// Most buckets the table ever has (32 MiB of bucket heads).
pub const MAX_BUCKETS: usize = 1 << 22;

/// The bucket count the table should have for `live` variables when it has
/// `buckets` now. Equal to `buckets` when no resize is needed.
#[inline]
pub fn wanted_buckets(live: usize, buckets: usize) -> usize {
    let grow = live > buckets && buckets < MAX_BUCKETS;
    let shrink = live < buckets / 8 && buckets > MIN_BUCKETS;
    if !grow && !shrink {
        return buckets;
    }
    // Resize to a load factor of about 1/2, so the next resize is far away
    // in either direction.
    live.saturating_mul(2)
        .checked_next_power_of_two()
        .unwrap_or(MAX_BUCKETS)
        .clamp(MIN_BUCKETS, MAX_BUCKETS)
}

/// Bucket index of `<obj, id>` in a table of `1 << bits` buckets
/// (multiplicative hashing: the top bits of the product are the best mixed).
pub fn bucket_of(obj: usize, id: u64, bits: u32) -> usize {
    bucket_at_shift(obj, id, 64 - bits)
}

/// [`bucket_of`] for `shift == 64 - bits`, as the lookup path keeps it.
/// Always below `1 << (64 - shift)` for `shift` in `1..64`.
#[inline(always)]
pub fn bucket_at_shift(obj: usize, id: u64, shift: u32) -> usize {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    // The id goes into the low bits, which pointers leave alike: Fibonacci
    // hashing spreads consecutive keys evenly, at the cost of one xor.
    let key = (obj as u64) ^ id;
    key.wrapping_mul(GOLDEN).wrapping_shr(shift) as usize
}
