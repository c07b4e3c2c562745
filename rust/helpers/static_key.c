// SPDX-License-Identifier: GPL-2.0

#include <linux/jump_label.h>

/*
 * Without CONFIG_JUMP_LABEL these are inline functions; with it they are
 * exported ones, and the helpers cost one call either way.
 */
__rust_helper void rust_helper_static_key_enable(struct static_key *key)
{
	static_key_enable(key);
}

__rust_helper void rust_helper_static_key_disable(struct static_key *key)
{
	static_key_disable(key);
}

__rust_helper bool rust_helper_static_key_enabled(struct static_key *key)
{
	return static_key_enabled(key);
}
