// SPDX-License-Identifier: GPL-2.0

#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>

__rust_helper void rust_helper_read_lock_tasklist(void)
{
	read_lock(&tasklist_lock);
}

__rust_helper void rust_helper_read_unlock_tasklist(void)
{
	read_unlock(&tasklist_lock);
}

__rust_helper int rust_helper_test_tsk_thread_flag(struct task_struct *tsk, int flag)
{
	return test_tsk_thread_flag(tsk, flag);
}

__rust_helper int rust_helper_test_and_set_tsk_thread_flag(struct task_struct *tsk, int flag)
{
	return test_and_set_tsk_thread_flag(tsk, flag);
}

__rust_helper int rust_helper_test_and_clear_tsk_thread_flag(struct task_struct *tsk, int flag)
{
	return test_and_clear_tsk_thread_flag(tsk, flag);
}

__rust_helper void rust_helper_set_notify_signal(struct task_struct *task)
{
	set_notify_signal(task);
}
