// SPDX-License-Identifier: GPL-2.0

#include <linux/lockdep.h>
#include <linux/preempt.h>

__rust_helper void rust_helper_preempt_disable_notrace(void)
{
	preempt_disable_notrace();
}

__rust_helper void rust_helper_preempt_enable_notrace(void)
{
	preempt_enable_notrace();
}

__rust_helper void rust_helper_lockdep_assert_preemption_disabled(void)
{
	lockdep_assert_preemption_disabled();
}
