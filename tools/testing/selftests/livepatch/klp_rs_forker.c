// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest helper (test-klp-rs-stress-fork.sh): create N short-lived
 * tasks, two workers at a time, and reap them all.
 *
 *   klp_rs_forker N
 *
 * Each worker alternates: a process that exits at once (fork, _exit,
 * waitpid: reaped by its parent) and a thread that ends at once
 * (pthread_create, return, pthread_join: released as it exits, since a
 * thread has no parent to wait for it). Both ways a task leaves the task
 * list, where a livepatch transition that flagged it must stop counting it.
 *
 * Prints "tasks=<N> processes=<P> threads=<T>" and exits 0; exits 1 when a
 * fork or a thread could not be created even after retrying, 2 on usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 2
#define RETRIES 1000

struct worker {
	pthread_t thread;
	long todo;
	long processes;
	long threads;
	int failed;
};

static void *nothing(void *arg)
{
	return arg;
}

static int one_process(void)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return -errno;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int one_thread(void)
{
	pthread_t t;
	int err;

	err = pthread_create(&t, NULL, nothing, NULL);
	if (err)
		return -err;
	return -pthread_join(t, NULL);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	long i;

	for (i = 0; i < w->todo; i++) {
		int thread = i & 1;
		int tries, err;

		/* EAGAIN: the task limit, while the previous ones are reaped. */
		for (tries = 0; tries < RETRIES; tries++) {
			err = thread ? one_thread() : one_process();
			if (err != -EAGAIN)
				break;
			usleep(1000);
		}
		if (err) {
			fprintf(stderr, "klp_rs_forker: %s: %s\n",
				thread ? "pthread_create" : "fork", strerror(-err));
			w->failed = 1;
			return NULL;
		}
		if (thread)
			w->threads++;
		else
			w->processes++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker workers[WORKERS] = { 0 };
	long n, processes = 0, threads = 0;
	char *end;
	int i, failed = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: klp_rs_forker N\n");
		return 2;
	}
	n = strtol(argv[1], &end, 10);
	if (*end || n < 0) {
		fprintf(stderr, "klp_rs_forker: N must be a count, not '%s'\n", argv[1]);
		return 2;
	}
	for (i = 0; i < WORKERS; i++) {
		workers[i].todo = n / WORKERS + (i < n % WORKERS);
		if (pthread_create(&workers[i].thread, NULL, work, &workers[i])) {
			fprintf(stderr, "klp_rs_forker: cannot start a worker\n");
			return 1;
		}
	}
	for (i = 0; i < WORKERS; i++) {
		pthread_join(workers[i].thread, NULL);
		processes += workers[i].processes;
		threads += workers[i].threads;
		failed |= workers[i].failed;
	}
	printf("tasks=%ld processes=%ld threads=%ld\n", processes + threads, processes, threads);
	return failed;
}
