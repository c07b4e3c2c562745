//! The kernel crate's pure-logic files, compiled for the host.

#[path = "../../../kernel/livepatch/state_rules.rs"]
pub mod state_rules;

#[path = "../../../kernel/livepatch/shadow_sizing.rs"]
pub mod shadow_sizing;

#[path = "../../../kernel/livepatch/klp_names.rs"]
pub mod klp_names;

// Host-only: a reference model of the name grammar, for the property test
// and the fuzz target (host/fuzz).
pub mod names_model;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod names_tests;

#[cfg(test)]
mod names_props;
