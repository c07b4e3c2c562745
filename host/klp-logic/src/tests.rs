use crate::shadow_sizing::{bucket_of, wanted_buckets, MAX_BUCKETS, MIN_BUCKETS};
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
fn sizing_keeps_small_tables_small_and_grows_past_load_one() {
    assert_eq!(wanted_buckets(0, MIN_BUCKETS), MIN_BUCKETS);
    assert_eq!(wanted_buckets(MIN_BUCKETS, MIN_BUCKETS), MIN_BUCKETS);
    assert_eq!(wanted_buckets(MIN_BUCKETS + 1, MIN_BUCKETS), 1024);
    assert_eq!(wanted_buckets(100_000, 65_536), 262_144);
    assert_eq!(wanted_buckets(100_000, 262_144), 262_144);
}

#[test]
fn sizing_shrinks_below_one_eighth_but_never_under_the_minimum() {
    assert_eq!(wanted_buckets(10, 262_144), MIN_BUCKETS);
    assert_eq!(wanted_buckets(5_000, 262_144), 16_384);
    assert_eq!(wanted_buckets(262_144 / 8, 262_144), 262_144);
    assert_eq!(wanted_buckets(0, MIN_BUCKETS), MIN_BUCKETS);
}

#[test]
fn sizing_is_bounded_above() {
    assert_eq!(wanted_buckets(usize::MAX, MAX_BUCKETS / 2), MAX_BUCKETS);
    assert_eq!(wanted_buckets(usize::MAX, MAX_BUCKETS), MAX_BUCKETS);
}

#[test]
fn sizing_resizes_land_between_the_thresholds() {
    // Whatever it resizes to needs no further resize for the same count.
    for live in [
        0usize, 1, 255, 256, 257, 1000, 4096, 50_000, 100_000, 1_000_000,
    ] {
        for buckets in [MIN_BUCKETS, 1024, 65_536, 1 << 20] {
            let n = wanted_buckets(live, buckets);
            assert!(n.is_power_of_two());
            assert_eq!(
                wanted_buckets(live, n),
                n,
                "live {live} buckets {buckets} -> {n}"
            );
        }
    }
}

#[test]
fn hashing_spreads_slab_like_pointers_and_ids() {
    // 100,000 objects 64 bytes apart (as kmalloc-64 would give), one id:
    // at load 0.38 no bucket should hold more than a handful.
    let bits = 18;
    let mut counts = vec![0u32; 1 << bits];
    for i in 0..100_000usize {
        counts[bucket_of(0xffff_8880_0400_0000 + i * 64, 1, bits)] += 1;
    }
    assert!(*counts.iter().max().unwrap() <= 8);
    // One object with many ids spreads too (upstream hashes the object only).
    let mut counts = vec![0u32; 1 << 10];
    for id in 0..1000u64 {
        counts[bucket_of(0xffff_8880_0400_0000, id, 10)] += 1;
    }
    assert!(*counts.iter().max().unwrap() <= 8);
}
