// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest helper (test-klp-rs-fault-injection.sh): run one system
 * call with the N-th fault-injection site of this thread armed, through
 * /proc/thread-self/fail-nth, and say whether the fault was injected.
 *
 *   klp_rs_failnth N insmod MODULE.ko [PARAMS]   finit_module(2)
 *   klp_rs_failnth N write FILE TEXT             write(2) of TEXT to FILE
 *
 * N = 0 runs the call without arming anything. The kernel counts down
 * fail-nth at every site that passes the capabilities' filters and fails
 * the site that brings it to zero; a count left above zero afterwards means
 * the call ran out of sites first, so nothing was failed.
 *
 * Prints one line, "injected=<0|1> ret=<0|errno name>", and exits 0; exits
 * 2 on a usage or setup error, when nothing was tried.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errname(int err)
{
	switch (err) {
	case 0: return "0";
	case ENOMEM: return "ENOMEM";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case ENODEV: return "ENODEV";
	case EEXIST: return "EEXIST";
	case EFAULT: return "EFAULT";
	case ENOEXEC: return "ENOEXEC";
	case ENOSPC: return "ENOSPC";
	case EPERM: return "EPERM";
	default: {
		static char buf[32];

		snprintf(buf, sizeof(buf), "errno%d", err);
		return buf;
	}
	}
}

static int arm(int ctl, unsigned long n)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%lu", n);

	if (pwrite(ctl, buf, len, 0) != len) {
		perror("klp_rs_failnth: writing fail-nth");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char left[32] = "";
	unsigned long n;
	int ctl = -1, fd, err = 0;
	ssize_t len;

	if (argc < 4 || (strcmp(argv[2], "insmod") && strcmp(argv[2], "write")) ||
	    (!strcmp(argv[2], "write") && argc != 5)) {
		fprintf(stderr, "usage: %s N insmod MODULE.ko [PARAMS] | N write FILE TEXT\n",
			argv[0]);
		return 2;
	}
	n = strtoul(argv[1], NULL, 10);

	if (!strcmp(argv[2], "insmod"))
		fd = open(argv[3], O_RDONLY | O_CLOEXEC);
	else
		fd = open(argv[3], O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "klp_rs_failnth: %s: %s\n", argv[3], strerror(errno));
		return 2;
	}
	if (n) {
		ctl = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
		if (ctl < 0) {
			perror("klp_rs_failnth: /proc/thread-self/fail-nth");
			return 2;
		}
		/* Nothing may run between arming and the call that counts. */
		if (arm(ctl, n))
			return 2;
	}

	if (!strcmp(argv[2], "insmod")) {
		if (syscall(SYS_finit_module, fd, argc > 4 ? argv[4] : "", 0))
			err = errno;
	} else {
		len = strlen(argv[4]);
		if (write(fd, argv[4], len) != len)
			err = errno;
	}

	if (n) {
		/* Read what is left, then disarm whatever is. */
		len = pread(ctl, left, sizeof(left) - 1, 0);
		if (len < 0) {
			perror("klp_rs_failnth: reading fail-nth");
			return 2;
		}
		left[len] = '\0';
		arm(ctl, 0);
	}
	printf("injected=%d ret=%s\n", n && strtoul(left, NULL, 10) == 0, errname(err));
	return 0;
}
