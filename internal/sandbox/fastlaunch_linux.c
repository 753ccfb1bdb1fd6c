//go:build linux && cgo

// The launcher in C: the steps of launch_linux.go (Main) for a launch
// Prepare set up, done in a constructor, before the Go runtime starts,
// as runc's nsexec does. Whatever it does not know (a JSON policy from
// Command, an option of the Go launcher's only, "go") it leaves to Main,
// which also says what is wrong with a command line. Keep the steps and
// their order the same as Main's.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

// The kernel's struct landlock_path_beneath_attr and the rights to read
// (ABI 1), spelled out: older headers lack them.
struct sandbox_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
#define SANDBOX_RULE_PATH_BENEATH 1
#define SANDBOX_ACCESS_READ ((1ULL << 2) | (1ULL << 3)) // READ_FILE | READ_DIR

enum { max_rlimits = 16, max_cgroups = 8 };

struct launch {
	struct { int resource; struct rlimit lim; } rlimits[max_rlimits];
	int nrlimits;
	int cgroups[max_cgroups];
	int ncgroups;
	int proc;
	int ruleset; // -1: none
};

// number parses all of s, decimal.
static int number(const char *s, char **end, unsigned long long *v) {
	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno == 0;
}

static int fd_arg(const char *s, int *fd) {
	char *end;
	unsigned long long v;
	if (!number(s, &end, &v) || *end != '\0' || v < 3 || v > 1 << 20)
		return 0;
	*fd = (int)v;
	return 1;
}

// option reads one of Prepare's options into l; 0: not one the C
// launcher applies.
static int option(struct launch *l, const char *o) {
	if (strncmp(o, "rlimit=", 7) == 0) {
		unsigned long long v[3];
		char *end;
		const char *s = o + 7;
		if (l->nrlimits == max_rlimits)
			return 0;
		for (int i = 0; i < 3; i++) {
			if (!number(s, &end, &v[i]) || *end != (i < 2 ? ',' : '\0'))
				return 0;
			s = end + 1;
		}
		l->rlimits[l->nrlimits].resource = (int)v[0];
		l->rlimits[l->nrlimits].lim.rlim_cur = v[1];
		l->rlimits[l->nrlimits].lim.rlim_max = v[2];
		l->nrlimits++;
		return 1;
	}
	if (strncmp(o, "cgroup=", 7) == 0) {
		if (l->ncgroups == max_cgroups)
			return 0;
		return fd_arg(o + 7, &l->cgroups[l->ncgroups++]);
	}
	if (strncmp(o, "landlock=", 9) == 0)
		return fd_arg(o + 9, &l->ruleset);
	if (strcmp(o, "proc") == 0) {
		l->proc = 1;
		return 1;
	}
	return 0;
}

static void fail(const char *step, const char *what) {
	int e = errno;
	dprintf(2, "sitehost sandbox: %s: %s%s%s\n", step, what, *what ? ": " : "", strerror(e));
	_exit(126);
}

static void apply(struct launch *l) {
	for (int i = 0; i < l->nrlimits; i++)
		if (setrlimit(l->rlimits[i].resource, &l->rlimits[i].lim) != 0)
			fail("setting rlimits", "setrlimit");
	// "0" is the writer itself, whatever its pid namespace.
	for (int i = 0; i < l->ncgroups; i++)
		if (write(l->cgroups[i], "0", 1) != 1)
			fail("joining the build cgroup", "");
	if (l->proc && getpid() == 1) {
		// A /proc of our own pid namespace, in a mount namespace of
		// our own with every mount private: nothing propagates out.
		if (unshare(CLONE_NEWNS) != 0)
			fail("mounting /proc", "making a mount namespace");
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
			fail("mounting /proc", "making mounts private");
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
			fail("mounting /proc", "mounting /proc");
		if (l->ruleset >= 0) {
			// The parent could not name this /proc: it did not exist.
			struct sandbox_path_beneath rule = {.allowed_access = SANDBOX_ACCESS_READ};
			rule.parent_fd = open("/proc", O_PATH | O_CLOEXEC);
			if (rule.parent_fd < 0)
				fail("mounting /proc", "opening /proc");
			if (syscall(SYS_landlock_add_rule, l->ruleset, SANDBOX_RULE_PATH_BENEATH, &rule, 0) != 0)
				fail("mounting /proc", "adding a rule for /proc");
			close(rule.parent_fd);
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail("setting no_new_privs", "");
	// In its user namespace the launcher is root with every capability
	// there; with an empty bounding set the program gets none.
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
			fail("dropping capabilities", "");
	if (l->ruleset >= 0 && syscall(SYS_landlock_restrict_self, l->ruleset, 0) != 0)
		fail("applying landlock", "restricting");
	// The files the parent passed are the launcher's, never the program's.
	for (int i = 0; i < l->ncgroups; i++)
		fcntl(l->cgroups[i], F_SETFD, FD_CLOEXEC);
	if (l->ruleset >= 0)
		fcntl(l->ruleset, F_SETFD, FD_CLOEXEC);
}

// program_env is envp with Prepare's prefix taken off (detect_linux.go's
// envPrefix): the program's own environment.
static char **program_env(char **envp) {
	static const char prefix[] = "SITEHOST_SANDBOX_ENV_";
	size_t n = 0;
	while (envp[n])
		n++;
	char **env = calloc(n + 1, sizeof *env);
	if (env == NULL)
		fail("running the program", "allocating its environment");
	for (size_t i = 0; i < n; i++)
		env[i] = strncmp(envp[i], prefix, sizeof prefix - 1) == 0 ? envp[i] + sizeof prefix - 1 : envp[i];
	return env;
}

#ifdef __GLIBC__
// glibc passes the program's argc, argv and envp to its constructors.
__attribute__((constructor)) static void sitehost_sandbox_exec(int argc, char **argv, char **envp) {
	if (argc < 4 || strcmp(argv[1], "sandbox-exec") != 0)
		return;
	struct launch l = {.ruleset = -1};
	int i = 2;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (!option(&l, argv[i]))
			return; // Main's
	if (i + 1 >= argc)
		return; // Main's usage message
	apply(&l);
	char **prog = argv + i + 1;
	execve(prog[0], prog, program_env(envp));
	dprintf(2, "sitehost sandbox: running %s: %s\n", prog[0], strerror(errno));
	_exit(127);
}
#endif
