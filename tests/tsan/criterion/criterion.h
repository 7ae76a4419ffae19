/* criterion.h - a stand-in for Criterion's <criterion/criterion.h>, for
 * running the store's unit tests under ThreadSanitizer (.ci/tsan).
 *
 * Why: Criterion's runner maps its "inheritable arena" at random addresses in
 * [0x2000_0000_0000, 0x7f00_0000_0000), which ThreadSanitizer reserves for
 * its shadow and metadata on x86-64; every probe finds the range taken and
 * the runner gives up ("Could not initialize inheritable arena"). This header
 * gives the same test sources (Test, TestSuite, the cr_assert and cr_expect
 * families they use) a plain runner instead: each test runs in a fork()ed
 * child as Criterion does (TSan supports fork from a single-threaded parent),
 * under alarm() for its .timeout, and a race report (halt_on_error) or a
 * failed assertion fails that test.
 *
 * Usage: a test program includes it first on the include path
 * (-I tests/tsan) and is built as one translation unit; `prog [GLOB]` runs
 * the tests whose "suite/name" matches GLOB (fnmatch), all by default. Not a
 * general Criterion replacement: only what tests/unit/store uses. */
#ifndef SLUICE_TSAN_CRITERION_SHIM_H
#define SLUICE_TSAN_CRITERION_SHIM_H

#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct shim_opts {
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    bool disabled;
    const char *description;
    int signal;
    int exit_code;
};

struct shim_test {
    const char *suite, *name;
    void (*fn)(void);
    struct shim_opts opts;
};

struct shim_suite {
    const char *name;
    struct shim_opts opts;
};

#define SHIM_MAX 512
static struct shim_test shim_tests[SHIM_MAX];
static size_t shim_ntests;
static struct shim_suite shim_suites[64];
static size_t shim_nsuites;
static int shim_failures; /* in the child: failed expectations */

__attribute__((unused)) static void shim_register(const char *suite, const char *name, void (*fn)(void),
                          const struct shim_opts *o)
{
    if (shim_ntests == SHIM_MAX) {
        fprintf(stderr, "criterion shim: more than %d tests\n", SHIM_MAX);
        abort();
    }
    shim_tests[shim_ntests++] = (struct shim_test){suite, name, fn, *o};
}

__attribute__((unused)) static void shim_register_suite(const char *name, const struct shim_opts *o)
{
    if (shim_nsuites < sizeof shim_suites / sizeof shim_suites[0])
        shim_suites[shim_nsuites++] = (struct shim_suite){name, *o};
}

#define TestSuite(suite, ...)                                                  \
    __attribute__((constructor)) static void shim_suite_##suite(void)          \
    {                                                                          \
        static const struct shim_opts o = {__VA_ARGS__};                       \
        shim_register_suite(#suite, &o);                                       \
    }                                                                          \
    struct shim_dummy_##suite

#define Test(suite, name, ...)                                                 \
    static void shim_body_##suite##_##name(void);                              \
    __attribute__((constructor)) static void shim_reg_##suite##_##name(void)   \
    {                                                                          \
        static const struct shim_opts o = {__VA_ARGS__};                       \
        shim_register(#suite, #name, shim_body_##suite##_##name, &o);          \
    }                                                                          \
    static void shim_body_##suite##_##name(void)

__attribute__((format(printf, 4, 5))) static void shim_report(const char *file, int line,
                                                              const char *what, const char *fmt,
                                                              ...)
{
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n", file, line, what);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[----]   ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    shim_failures++;
}

/* "" __VA_ARGS__ glues an optional format literal onto "", as Criterion's
 * optional message arguments work. */
#define SHIM_CHECK(fatal, cond, what, ...)                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            shim_report(__FILE__, __LINE__, what, "" __VA_ARGS__);             \
            if (fatal)                                                         \
                exit(1);                                                       \
        }                                                                      \
    } while (0)

#define cr_assert(c, ...) SHIM_CHECK(1, (c), #c, __VA_ARGS__)
#define cr_expect(c, ...) SHIM_CHECK(0, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) SHIM_CHECK(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_not(c, ...) SHIM_CHECK(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_fail(...) SHIM_CHECK(1, 0, "fail", __VA_ARGS__)
#define cr_expect_fail(...) SHIM_CHECK(0, 0, "fail", __VA_ARGS__)
#define SHIM_CMP(f, a, op, b, ...) SHIM_CHECK(f, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) SHIM_CMP(1, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) SHIM_CMP(1, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) SHIM_CMP(1, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) SHIM_CMP(1, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) SHIM_CMP(1, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) SHIM_CMP(1, a, >=, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) SHIM_CMP(0, a, ==, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) SHIM_CMP(0, a, !=, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) SHIM_CMP(0, a, <, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) SHIM_CMP(0, a, <=, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) SHIM_CMP(0, a, >, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) SHIM_CMP(0, a, >=, b, __VA_ARGS__)
#define cr_assert_null(p, ...) SHIM_CHECK(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) SHIM_CHECK(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_null(p, ...) SHIM_CHECK(0, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) SHIM_CHECK(0, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) SHIM_CHECK(1, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) SHIM_CHECK(1, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) SHIM_CHECK(0, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_expect_str_neq(a, b, ...) SHIM_CHECK(0, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...)                                         \
    SHIM_CHECK(1, memcmp((a), (b), (n)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_expect_arr_eq(a, b, n, ...)                                         \
    SHIM_CHECK(0, memcmp((a), (b), (n)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn(...) (fprintf(stderr, "[WARN] " __VA_ARGS__), fputc('\n', stderr))
#define cr_skip_test(...)                                                      \
    do {                                                                       \
        fprintf(stderr, "[SKIP] " __VA_ARGS__);                                \
        fputc('\n', stderr);                                                   \
        exit(77);                                                              \
    } while (0)

__attribute__((unused)) static const struct shim_opts *shim_suite_opts(const char *suite)
{
    for (size_t i = 0; i < shim_nsuites; i++)
        if (strcmp(shim_suites[i].name, suite) == 0)
            return &shim_suites[i].opts;
    return NULL;
}

static int shim_run(const struct shim_test *t)
{
    const struct shim_opts *so = shim_suite_opts(t->suite);
    double timeout = t->opts.timeout > 0 ? t->opts.timeout : (so && so->timeout > 0 ? so->timeout : 600);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        alarm((unsigned)timeout + 1);
        void (*init)(void) = t->opts.init ? t->opts.init : so ? so->init : NULL;
        void (*fini)(void) = t->opts.fini ? t->opts.fini : so ? so->fini : NULL;
        if (init)
            init();
        t->fn();
        if (fini)
            fini();
        fflush(NULL);
        _exit(shim_failures ? 1 : 0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        fprintf(stderr, "[SKIP] %s::%s\n", t->suite, t->name);
        return 0;
    }
    int want_sig = t->opts.signal, want_code = t->opts.exit_code;
    bool ok = want_sig ? (WIFSIGNALED(st) && WTERMSIG(st) == want_sig)
                       : (WIFEXITED(st) && WEXITSTATUS(st) == want_code);
    if (ok) {
        fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
        return 0;
    }
    if (WIFSIGNALED(st))
        fprintf(stderr, "[FAIL] %s::%s: signal %d%s\n", t->suite, t->name, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (timed out)" : "");
    else
        fprintf(stderr, "[FAIL] %s::%s: exit %d%s\n", t->suite, t->name, WEXITSTATUS(st),
                WEXITSTATUS(st) == 66 ? " (ThreadSanitizer report)" : "");
    return 1;
}

int main(int argc, char **argv)
{
    const char *glob = argc > 1 ? argv[1] : "*";
    int failed = 0, ran = 0;
    for (size_t i = 0; i < shim_ntests; i++) {
        const struct shim_test *t = &shim_tests[i];
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (t->opts.disabled || fnmatch(glob, full, 0) != 0)
            continue;
        ran++;
        failed += shim_run(t);
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d\n", ran, ran - failed,
            failed);
    return failed ? 1 : 0;
}

#endif
