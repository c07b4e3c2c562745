//! Arbitrary bytes into `parse_sym` and `parse_rela`: neither may panic,
//! both must agree with the reference model of the grammar, and whatever
//! they accept must keep the field limits and re-format to the input
//! exactly (all asserted by `names_model::check`, which the property test
//! in klp-logic shares).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The asserts inside are the test; the parse results are not needed.
    let _ = klp_logic::names_model::check(data);
});
