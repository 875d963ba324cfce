/* YAML job files: a full example, defaults, relative paths, and every error
 * class naming the key and its line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "../cli/jobfile.h"

static const char full[] =
    "# a full job\n"
    "method: iso-cts\n"
    "base: pool/base.safetensors\n"
    "tasks: [pool/task01.safetensors, /abs/task02.safetensors]\n"
    "out: merged.h5\n"
    "report: out/merged.json\n"
    "lambda: -0.5\n"
    "precision: single\n"
    "iso_common: 0.7\n"
    "alpha: [1.0, 0.9]\n"
    "ties_k: 0.1\n"
    "ties_merge: max\n"
    "exclude: [\"*.bias\", \"*.position_ids\"]\n"
    "embed_patterns: []\n"
    "head_patterns:\n"
    "  - visual_projection.*\n"
    "larv_proxy: [\"*.mlp.fc1.*\"]\n"
    "allow_nonfinite: true\n"
    "quiet: yes\n"
    "larv:\n"
    "  rule: continuous\n"
    "  eta: 2\n"
    "  rho: 0.25\n"
    "  gamma: 4.5\n"
    "  s_low: 0.4\n"
    "  s_mid: 0.9\n"
    "  s_high: 1.3\n"
    "  embed_scale: 0.8\n"
    "  head_scale: 1.1\n";

static void test_defaults(void)
{
    larv_merge_cfg c;
    larv_merge_cfg_init(&c);
    CHECK((int)c.method == -1);
    CHECK(isnan(c.lambda));
    CHECK(c.ties_k == 0.2 && c.ties_mode == LARV_TIES_SUM);
    CHECK(c.larv.rule == LARV_RULE_TIERED3 && c.larv.s_low == 0.5 && c.larv.s_high == 1.2);
    CHECK(c.mopts.precision == LARV_PREC_DOUBLE && c.mopts.iso_common == 0.8 && !c.mopts.alpha);
    CHECK(c.ntasks == 0 && !c.base && !c.out && !c.report);
    /* a minimal job leaves the defaults alone */
    larv_err e = {0};
    const char *job = "method: ta\nbase: b.h5\ntasks: [t1.h5]\nout: o.h5\n";
    CHECK(larv_jobfile_parse("job.yaml", job, strlen(job), &c, &e) == 0);
    CHECK(c.method == LARV_TA && isnan(c.lambda));
    CHECK(c.ties_k == 0.2 && c.larv.rule == LARV_RULE_TIERED3 && c.nalpha == 0);
    CHECK(strcmp(c.base, "b.h5") == 0 && c.ntasks == 1 && strcmp(c.tasks[0], "t1.h5") == 0);
    CHECK(!c.report && c.job_path && strcmp(c.job_path, "job.yaml") == 0);
    larv_merge_cfg_free(&c);
    larv_merge_cfg_free(&c); /* idempotent */
}

static void test_full(void)
{
    larv_merge_cfg c;
    larv_merge_cfg_init(&c);
    larv_err e = {0};
    int rc = larv_jobfile_parse("/data/jobs/full.yaml", full, strlen(full), &c, &e);
    CHECK(rc == 0);
    if (rc != 0) {
        printf("unexpected: %s\n", e.msg);
        larv_merge_cfg_free(&c);
        return;
    }
    CHECK(c.method == LARV_ISO_CTS);
    CHECK(strcmp(c.base, "/data/jobs/pool/base.safetensors") == 0);
    CHECK(c.ntasks == 2);
    CHECK(strcmp(c.tasks[0], "/data/jobs/pool/task01.safetensors") == 0);
    CHECK(strcmp(c.tasks[1], "/abs/task02.safetensors") == 0);
    CHECK(strcmp(c.out, "/data/jobs/merged.h5") == 0);
    CHECK(strcmp(c.report, "/data/jobs/out/merged.json") == 0);
    CHECK(c.lambda == -0.5);
    CHECK(c.mopts.precision == LARV_PREC_SINGLE && c.mopts.iso_common == 0.7);
    CHECK(c.nalpha == 2 && c.alpha[0] == 1.0 && c.alpha[1] == 0.9);
    CHECK(c.ties_k == 0.1 && c.ties_mode == LARV_TIES_MAX);
    CHECK(c.nexclude == 2 && strcmp(c.exclude[0], "*.bias") == 0 &&
          strcmp(c.exclude[1], "*.position_ids") == 0);
    CHECK(c.nembed_pat == 0 && c.nhead_pat == 1 && strcmp(c.head_pat[0], "visual_projection.*") == 0);
    CHECK(c.nproxy_pat == 1 && strcmp(c.proxy_pat[0], "*.mlp.fc1.*") == 0);
    CHECK(c.allow_nonfinite == 1 && c.quiet == 1 && c.resume == 0);
    CHECK(c.larv.rule == LARV_RULE_CONTINUOUS && c.larv.eta == 2 && c.larv.rho == 0.25 &&
          c.larv.gamma == 4.5 && c.larv.s_low == 0.4 && c.larv.s_mid == 0.9 &&
          c.larv.s_high == 1.3 && c.larv.embed_scale == 0.8 && c.larv.head_scale == 1.1);
    larv_merge_cfg_free(&c);
}

/* Parse text; expect failure with code 64 whose message has every needle. */
static void expect_fail(const char *text, const char *n1, const char *n2, int line)
{
    larv_merge_cfg c;
    larv_merge_cfg_init(&c);
    larv_err e = {0};
    int rc = larv_jobfile_parse("bad.yaml", text, strlen(text), &c, &e);
    char at[32];
    snprintf(at, sizeof at, "bad.yaml:%d:", line);
    int ok = rc == -1 && e.code == LARV_EXIT_USAGE && (!n1 || strstr(e.msg, n1)) &&
             (!n2 || strstr(e.msg, n2)) && (line <= 0 || strstr(e.msg, at));
    check_record(ok, __FILE__, __LINE__, text);
    if (!ok)
        printf("  rc %d code %d msg: %s\n  wanted '%s' '%s' line %d\n", rc, e.code, e.msg,
               n1 ? n1 : "", n2 ? n2 : "", line);
    larv_merge_cfg_free(&c);
}

static void test_errors(void)
{
    expect_fail("method: ta\nbogus: 1\n", "key 'bogus'", "unknown", 2);
    expect_fail("method: ta\nlambda: \"0.3\"\n", "key 'lambda'", "number", 2);
    expect_fail("method: ta\nlambda: abc\n", "key 'lambda'", "number", 2);
    expect_fail("method: ta\n\neta: [1, 2]\n", "key 'eta'", "a list", 3);
    /* the sweepable options take lists (cli/template.h): each item checked */
    expect_fail("method: ta\nlambda: [1, abc]\n", "key 'lambda'", "number", 2);
    expect_fail("method: ta\nlambda: [1, 200]\n", "key 'lambda'", "[-100, 100]", 2);
    expect_fail("method: [ta, nope]\n", "key 'method'", "not one of", 1);
    expect_fail("base: [a, b]\n", "key 'base'", "a list", 1);
    expect_fail("method: ta\nties_k: 1.5\n", "key 'ties_k'", "(0, 1]", 2);
    expect_fail("method: ta\nties_k: 0\n", "key 'ties_k'", "(0, 1]", 2);
    expect_fail("iso_common: 2\n", "key 'iso_common'", "[0, 1]", 1);
    expect_fail("method: ta\nmethod: ties\n", "key 'method'", "first given on line 1", 2);
    expect_fail("method: nope\n", "key 'method'", "iso-cts", 1);
    expect_fail("precision: quad\n", "key 'precision'", "double", 1);
    expect_fail("ties_merge: median\n", "key 'ties_merge'", "sum", 1);
    expect_fail("allow_nonfinite: maybe\n", "key 'allow_nonfinite'", "true or false", 1);
    expect_fail("lambda: .inf\n", "key 'lambda'", "finite", 1);
    expect_fail("larv:\n  rule: tiered9\n", "key 'larv.rule'", "tiered3", 2);
    expect_fail("larv:\n  eta: 1\n  zeta: 2\n", "key 'zeta'", "LARV option", 3);
    expect_fail("larv:\n  s_low: -1\n", "key 'larv.s_low'", "-1 is not in [0, 10]", 2);
    expect_fail("larv:\n  eta: 1\n  eta: 2\n", "key 'eta'", "duplicate", 3);
    expect_fail("larv: tiered4\n", "key 'larv'", "tiered3", 1);
    expect_fail("larv:\n  eta: 1\nlarv: off\n", "key 'larv'", "duplicate", 3);
    expect_fail("s_low: 0.4\nlarv:\n  s_low: 0.3\n", "key 's_low'", "duplicate", 3);
    expect_fail("tasks: [a]\ntask: b\n", "key 'task'", "duplicate", 2);
    expect_fail("tasks: [[a, b]]\n", "key 'tasks'", "a list", 1);
    expect_fail("tasks:\n  - a\n  - {x: 1}\n", "key 'tasks'", "a mapping", 3);
    expect_fail("alpha: 1.0\n", "key 'alpha'", "list of numbers", 1);
    expect_fail("alpha: [1, x]\n", "key 'alpha'", "number", 1);
    expect_fail("tasks: [a, b]\nalpha: [1]\n", "key 'alpha'", "1 values for 2 tasks", 2);
    expect_fail("base: &x a\nout: *x\n", "aliases", NULL, 2);
    expect_fail("method: ta\n---\nmethod: ties\n", "one YAML document", NULL, 2);
    expect_fail("", "empty", NULL, 0);
    expect_fail("- a\n- b\n", "mapping", NULL, 1);
    expect_fail("method: ta\nexclude: [a,\n", "YAML error", NULL, 0);
    expect_fail("out:\n", "key 'out'", "no value", 1);
    expect_fail("[1, 2]: x\n", "expected a key name", NULL, 1);
    /* more than LARV_MAX_TASKS tasks */
    size_t cap = 16 + (LARV_MAX_TASKS + 1) * 4;
    char *big = malloc(cap), *p = big;
    p += sprintf(p, "tasks:\n");
    for (int i = 0; i < LARV_MAX_TASKS + 1; i++)
        p += sprintf(p, "- t\n");
    expect_fail(big, "key 'tasks'", "more than 4096", LARV_MAX_TASKS + 2);
    free(big);
    /* a scalar too long */
    char *longs = malloc(10000);
    strcpy(longs, "base: ");
    memset(longs + 6, 'a', 9000);
    longs[9006] = '\0';
    expect_fail(longs, "longer than", NULL, 1);
    free(longs);
}

static void test_misc(void)
{
    larv_merge_cfg c;
    larv_merge_cfg_init(&c);
    larv_err e = {0};
    /* negative lambda is allowed; a single task string is a one-element list;
     * null report; flow and block lists; later values replace earlier ones */
    const char *job = "lambda: -1\ntasks: only.h5\nreport: ~\nexclude:\n  - a\n  - b\n";
    CHECK(larv_jobfile_parse("rel/dir/j.yaml", job, strlen(job), &c, &e) == 0);
    CHECK(c.lambda == -1.0);
    CHECK(c.ntasks == 1 && strcmp(c.tasks[0], "rel/dir/only.h5") == 0);
    CHECK(c.report == NULL && c.nexclude == 2);
    const char *job2 = "tasks: [x.h5, y.h5]\n";
    CHECK(larv_jobfile_parse("j.yaml", job2, strlen(job2), &c, &e) == 0);
    CHECK(c.ntasks == 2 && strcmp(c.tasks[0], "x.h5") == 0 && c.nexclude == 2);
    larv_merge_cfg_free(&c);

    /* a sweep: the sweepable options take YAML lists, a scalar replaces a list */
    larv_merge_cfg_init(&c);
    const char *job3 = "method: [ta, iso-c]\nlambda: [0.5, 1e-1]\nlarv: {rule: [off, tiered3]}\n"
                       "s_low: 0.25\n";
    CHECK(larv_jobfile_parse("j.yaml", job3, strlen(job3), &c, &e) == 0);
    CHECK(c.sweep[LARV_SW_METHOD].n == 2 && strcmp(c.sweep[LARV_SW_METHOD].text[1], "iso-c") == 0);
    CHECK(c.sweep[LARV_SW_LAMBDA].n == 2 && strcmp(c.sweep[LARV_SW_LAMBDA].text[1], "1e-1") == 0);
    CHECK(c.sweep[LARV_SW_LARV].n == 2 && c.sweep[LARV_SW_S_LOW].n == 1 && c.larv.s_low == 0.25);
    const char *job4 = "lambda: 0.3\n";
    CHECK(larv_jobfile_parse("j.yaml", job4, strlen(job4), &c, &e) == 0);
    CHECK(c.sweep[LARV_SW_LAMBDA].n == 1 && c.lambda == 0.3);
    larv_merge_cfg_free(&c);

    /* load from a file: paths relative to its directory */
    char dir[] = "/tmp/larv_jobXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("method: tsv\nbase: pool/base.h5\ntasks:\n  - pool/t1.h5\n  - ../t2.h5\n"
              "out: /abs/out.h5\n",
              f);
        fclose(f);
    }
    larv_merge_cfg_init(&c);
    CHECK(larv_jobfile_load(path, &c, &e) == 0);
    char want[300];
    snprintf(want, sizeof want, "%s/pool/base.h5", dir);
    CHECK(c.base && strcmp(c.base, want) == 0);
    snprintf(want, sizeof want, "%s/../t2.h5", dir);
    CHECK(c.ntasks == 2 && strcmp(c.tasks[1], want) == 0);
    CHECK(strcmp(c.out, "/abs/out.h5") == 0 && c.method == LARV_TSV);
    CHECK(c.job_path && strcmp(c.job_path, path) == 0);
    larv_merge_cfg_free(&c);
    unlink(path);
    rmdir(dir);
    /* missing file */
    larv_merge_cfg_init(&c);
    CHECK(larv_jobfile_load("/nonexistent/job.yaml", &c, &e) == -1);
    CHECK(e.code == LARV_EXIT_NOINPUT && strstr(e.msg, "/nonexistent/job.yaml"));
    larv_merge_cfg_free(&c);
}

/* Every example in jobs/ parses (run from the build tree: LARV_SRC or ../..). */
static void test_examples(void)
{
    /* the source tree: $LARV_SRC, else from this file's path */
    char srcdir[400];
    const char *src = getenv("LARV_SRC");
    if (src) {
        snprintf(srcdir, sizeof srcdir, "%s", src);
    } else {
        snprintf(srcdir, sizeof srcdir, "%s", __FILE__);
        char *t = strstr(srcdir, "tests/test_jobfile.c");
        if (t)
            *t = '\0';
        if (!srcdir[0])
            snprintf(srcdir, sizeof srcdir, ".");
    }
    char path[512];
    static const char *const ex[] = {
        "vit-b-32-x8-ta.yaml",   "vit-b-32-x8-ties.yaml",    "vit-b-32-x8-tsv.yaml",
        "vit-b-32-x8-iso-c.yaml", "vit-b-32-x8-iso-cts.yaml", "vit-l-14-x20-tsv.yaml",
        "vit-l-14-x20-iso-cts.yaml",
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        snprintf(path, sizeof path, "%s/jobs/%s", srcdir, ex[i]);
        larv_merge_cfg c;
        larv_merge_cfg_init(&c);
        larv_err e = {0};
        int rc = larv_jobfile_load(path, &c, &e);
        check_record(rc == 0 && (int)c.method >= 0 && c.base && c.out && c.ntasks >= 8, __FILE__,
                     __LINE__, ex[i]);
        if (rc != 0)
            printf("  %s\n", e.msg);
        larv_merge_cfg_free(&c);
    }
}

int main(void)
{
    test_defaults();
    test_full();
    test_errors();
    test_misc();
    test_examples();
    return check_report();
}
