/* Sweeps (cli/template.h): how numbers are spelled in output names (the
 * shortest %.Ng that reads back, checked against strtod), the --out template
 * (placeholders, unknown/unclosed ones), the expansion of the lists into
 * outputs (count, order, values, --ties-k for TIES only, --alpha for TSV-M
 * only) and its refusals (exit 64): a list without a template, two outputs
 * with one name, an invalid combination. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/template.h"
#include "../src/options.h"
#include "check.h"

static void set(larv_merge_cfg *c, const char *name, const char *text)
{
    char msg[256];
    CHECK(larv_option_set(larv_option_find(name), c, text, msg, sizeof msg) == 0);
}

static void spelled(double v, const char *want)
{
    char buf[40];
    larv_sweep_number(v, buf, sizeof buf);
    CHECK(strcmp(buf, want) == 0);
    CHECK(strtod(buf, NULL) == v); /* reads back */
    if (strcmp(buf, want))
        printf("  %.17g spelled %s, wanted %s\n", v, buf, want);
}

static void base_cfg(larv_merge_cfg *c, const char *out)
{
    larv_merge_cfg_init(c);
    set(c, "method", "ta");
    c->out = strdup(out);
}

int main(void)
{
    spelled(0.5, "0.5");
    spelled(1.0, "1");
    spelled(0.1, "0.1");
    spelled(0.3, "0.3");
    spelled(1e-5, "1e-05");
    spelled(-2.25, "-2.25");
    spelled(1.0 / 3.0, "0.3333333333333333");
    spelled(0.1 + 0.2, "0.30000000000000004");
    /* random values: always the shortest form that reads back */
    check_seed(3);
    int shortest = 1;
    for (int i = 0; i < 2000; i++) {
        double v = (check_urand() - 0.5) * pow(10, (int)(check_urand() * 8) - 4);
        char buf[40], shorter[40];
        larv_sweep_number(v, buf, sizeof buf);
        shortest &= strtod(buf, NULL) == v;
        for (int p = 1; p < 17; p++) { /* no shorter precision reads back */
            snprintf(shorter, sizeof shorter, "%.*g", p, v);
            if (strlen(shorter) < strlen(buf) && strtod(shorter, NULL) == v)
                shortest = 0;
        }
    }
    CHECK(shortest);

    larv_err e = {0};
    larv_merge_cfg c;
    char name[256];
    /* the template: each placeholder, defaults included */
    base_cfg(&c, "o/{method}-{lambda}-{larv}-{s_low}-{s_mid}-{s_high}-{ties_k}.h5");
    CHECK(larv_template_fill(c.out, &c, name, sizeof name, &e) == 0);
    CHECK(strcmp(name, "o/ta-0.3-tiered3-0.5-1-1.2-0.2.h5") == 0);
    CHECK(larv_template_fill("o/{nope}.h5", &c, name, sizeof name, &e) == -1 &&
          e.code == LARV_EXIT_USAGE && strstr(e.msg, "unknown placeholder '{nope}'"));
    CHECK(larv_template_fill("o/{lambda.h5", &c, name, sizeof name, &e) == -1 &&
          e.code == LARV_EXIT_USAGE && strstr(e.msg, "unclosed"));
    CHECK(larv_template_fill("o/x}.h5", &c, name, sizeof name, &e) == 0 &&
          strcmp(name, "o/x}.h5") == 0);
    larv_merge_cfg_free(&c);

    /* the expansion: methods x rules x lambdas, ties_k for ties only, lambda fastest */
    base_cfg(&c, "o/{method}-{larv}-{ties_k}-{lambda}.st");
    char msg[256];
    const larv_option *lam = larv_option_find("lambda"), *meth = larv_option_find("method");
    larv_option_clear(meth, &c);
    set(&c, "method", "tsv");
    set(&c, "method", "ties");
    set(&c, "lambda", "0.50");
    set(&c, "lambda", "1e0");
    set(&c, "larv", "off");
    larv_option_clear(larv_option_find("larv"), &c);
    set(&c, "larv", "off");
    set(&c, "larv", "depth");
    set(&c, "ties_k", "0.1");
    set(&c, "ties_k", "0.3");
    set(&c, "alpha", "1");
    set(&c, "task", "a");
    larv_merge_cfg *outs = NULL;
    size_t n = 0;
    CHECK(larv_sweep_expand(&c, &outs, &n, &e) == 0);
    CHECK(n == 2 * 2 + 2 * 2 * 2); /* tsv: 2 rules x 2 lambdas (its {ties_k}: the first); ties: x 2 k */
    static const char *const want[] = {
        "o/tsv-off-0.1-0.5",        "o/tsv-off-0.1-1",       "o/tsv-depth-0.1-0.5",
        "o/tsv-depth-0.1-1",        "o/ties-off-0.1-0.5",    "o/ties-off-0.1-1",
        "o/ties-off-0.3-0.5",       "o/ties-off-0.3-1",      "o/ties-depth-0.1-0.5",
        "o/ties-depth-0.1-1",       "o/ties-depth-0.3-0.5",  "o/ties-depth-0.3-1"};
    for (size_t k = 0; k < n && k < 12; k++) {
        snprintf(name, sizeof name, "%s.st", want[k]);
        CHECK(strcmp(outs[k].out, name) == 0);
        if (strcmp(outs[k].out, name))
            printf("  output %zu: %s, wanted %s\n", k, outs[k].out, name);
    }
    CHECK(n == 12 && outs[0].method == LARV_TSV && outs[0].lambda == 0.5 &&
          outs[0].larv.rule == LARV_RULE_OFF && outs[0].nalpha == 1);
    CHECK(n == 12 && outs[11].method == LARV_TIES && outs[11].lambda == 1.0 &&
          outs[11].ties_k == 0.3 && outs[11].larv.rule == LARV_RULE_DEPTH && outs[11].nalpha == 0);
    CHECK(n == 12 && outs[5].sweep[LARV_SW_LAMBDA].n == 0);
    larv_sweep_free(outs, n);

    /* refusals */
    free(c.out);
    c.out = strdup("o/{method}-{lambda}.st"); /* larv and ties_k missing: names collide */
    CHECK(larv_sweep_expand(&c, &outs, &n, &e) == -1 && e.code == LARV_EXIT_USAGE &&
          strstr(e.msg, "two outputs the name o/tsv-0.5.st") && outs == NULL && n == 0);
    free(c.out);
    c.out = strdup("o/x.st");
    CHECK(larv_sweep_expand(&c, &outs, &n, &e) == -1 && e.code == LARV_EXIT_USAGE &&
          strstr(e.msg, "make 12 outputs"));
    larv_merge_cfg_free(&c);
    base_cfg(&c, "o/{s_mid}");
    set(&c, "s_mid", "1");
    set(&c, "s_mid", "2");
    CHECK(larv_sweep_expand(&c, &outs, &n, &e) == -1 && e.code == LARV_EXIT_USAGE &&
          strstr(e.msg, "output o/2") && strstr(e.msg, "s_low <= s_mid <= s_high"));
    /* one value, no template: one output, the cfg itself */
    larv_merge_cfg_free(&c);
    base_cfg(&c, "o/plain.st");
    CHECK(larv_option_set(lam, &c, "0.7", msg, sizeof msg) == 0);
    CHECK(larv_sweep_expand(&c, &outs, &n, &e) == 0 && n == 1 && outs[0].lambda == 0.7 &&
          strcmp(outs[0].out, "o/plain.st") == 0);
    larv_sweep_free(outs, n);
    larv_merge_cfg_free(&c);
    return check_report();
}
