// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The only C of the Rust part of the livepatch core: EXPORT_SYMBOL_GPL() is
 * a C macro (it emits the entries modpost turns into __ksymtab), and a
 * built-in Rust crate outside rust/ cannot emit them. The functions
 * themselves are defined in Rust (shadow.rs, state.rs).
 */
#include <linux/export.h>
#include <linux/livepatch.h>

EXPORT_SYMBOL_GPL(klp_shadow_get);
EXPORT_SYMBOL_GPL(klp_shadow_alloc);
EXPORT_SYMBOL_GPL(klp_shadow_get_or_alloc);
EXPORT_SYMBOL_GPL(klp_shadow_free);
EXPORT_SYMBOL_GPL(klp_shadow_free_all);
EXPORT_SYMBOL_GPL(klp_get_state);
EXPORT_SYMBOL_GPL(klp_get_prev_state);
