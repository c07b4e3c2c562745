// SPDX-License-Identifier: GPL-2.0

//! Sizing of the shadow variable hash table, as pure logic shared with the
//! host tests. Sizes count the table's words, of which all but two (the
//! header) are buckets; the difference is left out of the load factors.
//!
//! The table keeps its load factor between 1/16 and 1/2 live variables per
//! bucket, so a successful lookup finds its variable first in its chain
//! nearly always, however many variables live. The smallest table is as
//! large as upstream's fixed one (4096 buckets, 32 KiB), so small counts
//! cost the same memory and hash alike.

/// Fewest buckets the table ever has: upstream's fixed size.
pub const MIN_BUCKETS: usize = 4096;
/// Most buckets the table ever has (32 MiB of bucket heads).
pub const MAX_BUCKETS: usize = 1 << 22;

/// The live counts a table of some size is right for: a resize is due
/// when the count leaves `shrink_below..=grow_above`. Kept with the table
/// so that each insert and free compares, rather than recomputes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Fewer live variables than this call for a smaller table.
    pub shrink_below: usize,
    /// More live variables than this call for a larger table.
    pub grow_above: usize,
}

impl Bounds {
    /// The bounds of a table of `buckets` (a power of two within
    /// `MIN_BUCKETS..=MAX_BUCKETS`).
    pub fn of(buckets: usize) -> Self {
        Bounds {
            shrink_below: if buckets > MIN_BUCKETS {
                buckets / 16
            } else {
                0
            },
            grow_above: if buckets < MAX_BUCKETS {
                buckets / 2
            } else {
                usize::MAX
            },
        }
    }

    /// Whether `live` variables call for another size.
    #[inline(always)]
    pub fn exceeded_by(self, live: usize) -> bool {
        live > self.grow_above || live < self.shrink_below
    }
}

/// The bucket count the table should have for `live` variables when it has
/// `buckets` now. Equal to `buckets` when no resize is needed.
pub fn wanted_buckets(live: usize, buckets: usize) -> usize {
    if !Bounds::of(buckets).exceeded_by(live) {
        return buckets;
    }
    // A load factor between 1/4 and 1/2 after a resize, so that the next one
    // is at least a doubling or an eightfold shrink away.
    live.saturating_mul(2)
        .checked_next_power_of_two()
        .unwrap_or(MAX_BUCKETS)
        .clamp(MIN_BUCKETS, MAX_BUCKETS)
}

/// Bucket index of `obj` in a table of `len` buckets: multiplicative
/// hashing with the kernel's `GOLDEN_RATIO_64`, whose product's top bits are
/// the best mixed. `len` scales them (one multiply, where a shift would need
/// the bit count too); for a power of two it takes exactly the top
/// `log2(len)` bits, as upstream's `hash_64()` does. Like upstream, only the
/// object is hashed: its variables with other ids share its chain.
#[inline(always)]
pub fn bucket_of(obj: usize, len: usize) -> usize {
    const GOLDEN_RATIO_64: u64 = 0x61c8_8646_80b5_83eb;
    let hash = (obj as u64).wrapping_mul(GOLDEN_RATIO_64);
    ((u128::from(hash) * len as u128) >> 64) as usize
}
