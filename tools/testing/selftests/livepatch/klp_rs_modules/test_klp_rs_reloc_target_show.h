/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The replacement of test_klp_rs_reloc_target_show() that
 * test_klp_rs_reloc_mod_patch and test_klp_rs_stress_mod_patch share: it
 * reads the target's static test_klp_rs_reloc_target_secret and calls its
 * static test_klp_rs_reloc_target_mix() through
 * .klp.rela.test_klp_rs_reloc_target.* relocations, so the target's probe
 * reads
 *   patched secret=<secret> mix=<7 * 100 + secret> addr=<&secret>
 */
#ifndef _TEST_KLP_RS_RELOC_TARGET_SHOW_H
#define _TEST_KLP_RS_RELOC_TARGET_SHOW_H

#include <linux/kernel.h>

#include "test_klp_rs_reloc.h"

#define TARGET ".klp.sym.test_klp_rs_reloc_target."

extern int klp_target_secret
	KLP_RS_SYM(TARGET "test_klp_rs_reloc_target_secret,0");
extern int klp_target_mix(int x)
	KLP_RS_SYM(TARGET "test_klp_rs_reloc_target_mix,0");

static int livepatch_target_show(char *buf)
{
	/* Left unconverted, the weak symbols would be 0: never call that. */
	if (!&klp_target_secret || !klp_target_mix)
		return scnprintf(buf, PAGE_SIZE, "unresolved\n");
	return scnprintf(buf, PAGE_SIZE, "patched secret=%d mix=%d addr=%px\n",
			 READ_ONCE(klp_target_secret), klp_target_mix(7),
			 &klp_target_secret);
}

#endif
