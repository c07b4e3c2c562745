use crate::shadow_sizing::{bucket_of, wanted_buckets, Bounds, MAX_BUCKETS, MIN_BUCKETS};
use crate::state_rules::{patch_compatible, previous_state, state_compatible, StateVersion};

fn sv(id: u64, version: u32) -> StateVersion {
    StateVersion { id, version }
}

fn lookup(states: &[StateVersion]) -> impl Fn(u64) -> Option<u32> + '_ {
    move |id| states.iter().find(|s| s.id == id).map(|s| s.version)
}

#[test]
fn new_states_are_always_allowed() {
    // Nothing installed: any patch, cumulative or not, is fine.
    assert!(patch_compatible(lookup(&[sv(1, 1)]), false, []));
    assert!(patch_compatible(lookup(&[sv(1, 1)]), true, []));
}

#[test]
fn same_or_higher_version_is_required_for_a_modified_state() {
    let installed = [sv(7, 2)];
    assert!(patch_compatible(lookup(&[sv(7, 2)]), true, installed));
    assert!(patch_compatible(lookup(&[sv(7, 3)]), false, installed));
    assert!(!patch_compatible(lookup(&[sv(7, 1)]), true, installed));
    assert!(!patch_compatible(lookup(&[sv(7, 1)]), false, installed));
}

#[test]
fn cumulative_patch_must_carry_every_installed_state() {
    let installed = [sv(1, 1), sv(2, 1)];
    assert!(!patch_compatible(lookup(&[sv(1, 1)]), true, installed));
    assert!(patch_compatible(
        lookup(&[sv(1, 1), sv(2, 1)]),
        true,
        installed
    ));
}

#[test]
fn non_cumulative_patch_may_leave_modified_states_alone() {
    let installed = [sv(1, 5), sv(2, 1)];
    assert!(patch_compatible(lookup(&[]), false, installed));
    assert!(patch_compatible(lookup(&[sv(3, 1)]), false, installed));
    // ...but not downgrade one it does carry.
    assert!(!patch_compatible(lookup(&[sv(1, 4)]), false, installed));
}

#[test]
fn state_compatible_matches_the_rule_table() {
    let old = sv(9, 3);
    assert!(state_compatible(None, false, old));
    assert!(!state_compatible(None, true, old));
    assert!(state_compatible(Some(3), true, old));
    assert!(state_compatible(Some(u32::MAX), true, old));
    assert!(!state_compatible(Some(2), false, old));
}

#[test]
fn previous_state_is_the_last_before_the_transition_patch() {
    // (patch number, state version for the id if the patch has it)
    let patches = [
        (1, Some(1)),
        (2, None),
        (3, Some(3)),
        (4, Some(4)),
        (5, Some(5)),
    ];
    let prev = previous_state(patches, |p| p.0 == 4, |p| p.1);
    assert_eq!(prev, Some(3));
    // The transition patch itself and later ones never count.
    assert_eq!(previous_state(patches, |p| p.0 == 1, |p| p.1), None);
    // No state anywhere before it.
    assert_eq!(
        previous_state(patches, |p| p.0 == 3, |p| if p.0 == 2 { p.1 } else { None }),
        None
    );
}

#[test]
fn sizing_keeps_small_tables_at_upstreams_size_and_grows_past_load_one_half() {
    assert_eq!(MIN_BUCKETS, 4096);
    assert_eq!(wanted_buckets(0, MIN_BUCKETS), MIN_BUCKETS);
    assert_eq!(wanted_buckets(MIN_BUCKETS / 2, MIN_BUCKETS), MIN_BUCKETS);
    assert_eq!(wanted_buckets(MIN_BUCKETS / 2 + 1, MIN_BUCKETS), 8192);
    assert_eq!(wanted_buckets(100_000, 65_536), 262_144);
    assert_eq!(wanted_buckets(100_000, 262_144), 262_144);
    assert_eq!(wanted_buckets(131_073, 262_144), 524_288);
}

#[test]
fn sizing_shrinks_below_one_sixteenth_but_never_under_the_minimum() {
    assert_eq!(wanted_buckets(10, 262_144), MIN_BUCKETS);
    assert_eq!(wanted_buckets(5_000, 262_144), 16_384);
    assert_eq!(wanted_buckets(262_144 / 16, 262_144), 262_144);
    assert_eq!(wanted_buckets(262_144 / 16 - 1, 262_144), 32_768);
    assert_eq!(wanted_buckets(0, MIN_BUCKETS), MIN_BUCKETS);
}

#[test]
fn sizing_is_bounded_above() {
    assert_eq!(wanted_buckets(usize::MAX, MAX_BUCKETS / 2), MAX_BUCKETS);
    assert_eq!(wanted_buckets(usize::MAX, MAX_BUCKETS), MAX_BUCKETS);
    assert_eq!(Bounds::of(MAX_BUCKETS).grow_above, usize::MAX);
    assert_eq!(Bounds::of(MIN_BUCKETS).shrink_below, 0);
}

#[test]
fn sizing_resizes_land_between_the_thresholds() {
    // Whatever it resizes to needs no further resize for the same count,
    // and the bounds say "resize" exactly when the wanted size differs.
    for live in [0usize, 1, 255, 2048, 2049, 4096, 50_000, 100_000, 1_000_000] {
        for buckets in [MIN_BUCKETS, 8192, 65_536, 1 << 20, MAX_BUCKETS] {
            let n = wanted_buckets(live, buckets);
            assert!(n.is_power_of_two());
            assert_eq!(
                Bounds::of(buckets).exceeded_by(live),
                n != buckets,
                "live {live} buckets {buckets}"
            );
            assert_eq!(
                wanted_buckets(live, n),
                n,
                "live {live} buckets {buckets} -> {n}"
            );
        }
    }
}

#[test]
fn hashing_takes_the_top_bits_of_the_golden_ratio_product() {
    // What upstream's hash_64(obj, bits) gives, for any power of two.
    for obj in [0usize, 8, 0xffff_8880_0400_0000, usize::MAX] {
        for bits in [0u32, 1, 12, 18, 22] {
            let product = (obj as u64).wrapping_mul(0x61c8_8646_80b5_83eb);
            let upstream = if bits == 0 { 0 } else { product >> (64 - bits) };
            assert_eq!(bucket_of(obj, 1 << bits) as u64, upstream);
        }
    }
}

#[test]
fn hashing_spreads_slab_like_pointers() {
    // 100,000 objects 64 bytes apart (as kmalloc-64 would give): at load
    // 0.38 no bucket should hold more than a handful.
    let len = 1 << 18;
    let mut counts = vec![0u32; len];
    for i in 0..100_000usize {
        counts[bucket_of(0xffff_8880_0400_0000 + i * 64, len)] += 1;
    }
    assert!(*counts.iter().max().unwrap() <= 8);
    // Indices stay in range for any length, powers of two or not.
    for len in [1usize, 3, 4096, 5000] {
        for i in 0..10_000usize {
            assert!(bucket_of(i.wrapping_mul(0x9e37_79b9), len) < len);
        }
    }
}
