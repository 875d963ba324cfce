/* larv.c: options, rule names, effective rank, quantile, scores and scales. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "larv.h"

int main(void)
{
    larv_opts o;
    larv_opts_default(&o);
    CHECK(o.rule == LARV_RULE_TIERED3);
    CHECK(o.eta == 1.0 && o.rho == 0.5 && o.gamma == 3.0);
    CHECK(o.s_low == 0.5 && o.s_mid == 1.0 && o.s_high == 1.2);
    CHECK(o.embed_scale == 1.0 && o.head_scale == 1.0);

    const char *names[] = {"off", "tiered2", "tiered3", "continuous", "depth"};
    for (int i = 0; i < 5; i++) {
        larv_rule r;
        CHECK(strcmp(larv_rule_name((larv_rule)i), names[i]) == 0);
        CHECK(larv_rule_parse(names[i], &r) == 0 && r == (larv_rule)i);
    }
    larv_rule r;
    CHECK(larv_rule_parse("tiered4", &r) == -1);
    CHECK(larv_rule_parse(NULL, &r) == -1);

    /* effective rank: equal singular values -> r; one -> 1; zero -> 0 */
    double s4[4] = {2, 2, 2, 2}, s1[3] = {5, 0, 0}, z[2] = {0, 0}, neg[3] = {1, 1, -1e-18};
    CHECK_NEAR(larv_effective_rank_sq(s4, 4), 4.0, 1e-12);
    CHECK_NEAR(larv_effective_rank_sq(s1, 3), 1.0, 1e-15);
    CHECK(larv_effective_rank_sq(z, 2) == 0.0);
    CHECK_NEAR(larv_effective_rank_sq(neg, 3), 2.0, 1e-12);
    double p2[2] = {3, 1}; /* p = .75, .25 */
    CHECK_NEAR(larv_effective_rank_sq(p2, 2), exp(-(0.75 * log(0.75) + 0.25 * log(0.25))), 1e-14);

    /* quantile (numpy linear) */
    double v[5] = {5, 1, 4, 2, 3};
    CHECK(larv_quantile(v, 5, 0.5) == 3.0);
    CHECK(larv_quantile(v, 5, 0.0) == 1.0);
    CHECK(larv_quantile(v, 5, 1.0) == 5.0);
    CHECK_NEAR(larv_quantile(v, 5, 0.3), 2.2, 1e-15);
    double v4[4] = {1, 2, 3, 10};
    CHECK_NEAR(larv_quantile(v4, 4, 1.0 / 3.0), 2.0, 1e-15);
    CHECK_NEAR(larv_quantile(v4, 4, 0.9), 7.9, 1e-14);

    /* scores by hand, L = 3, constant conflict (std < 1e-8 -> 1, chat = 0) */
    double e[3] = {1, 1, 1}, c[3] = {0.5, 0.5, 0.5}, chat[3], a[3], sc[3];
    larv_scales(&o, 3, e, c, chat, a, sc);
    double sp0 = log(2.0);
    for (int l = 0; l < 3; l++) {
        CHECK(chat[l] == 0.0);
        CHECK_NEAR(a[l], sqrt((l + 1) / 3.0) / (1 + sp0), 1e-15);
    }
    CHECK(sc[0] == 0.5 && sc[1] == 1.0 && sc[2] == 1.2); /* tiered3 */
    o.rule = LARV_RULE_TIERED2;
    larv_scales(&o, 3, e, c, NULL, a, sc);
    CHECK(sc[0] == 0.5 && sc[1] == 0.5 && sc[2] == 1.2);
    o.rule = LARV_RULE_DEPTH;
    larv_scales(&o, 3, e, c, NULL, a, sc);
    CHECK(sc[0] == 0.5 && fabs(sc[1] - 0.85) < 1e-15 && sc[2] == 1.2);
    larv_scales(&o, 1, e, c, NULL, a, sc);
    CHECK(sc[0] == 1.2); /* choice: L == 1 -> s_high */
    o.rule = LARV_RULE_OFF;
    larv_scales(&o, 3, e, c, NULL, a, sc);
    CHECK(sc[0] == 1.0 && sc[1] == 1.0 && sc[2] == 1.0);
    o.rule = LARV_RULE_CONTINUOUS;
    larv_scales(&o, 3, e, c, NULL, a, sc);
    for (int l = 0; l < 3; l++)
        CHECK_NEAR(sc[l], 1 + 0.5 * tanh(3.0 * (a[l] - 1)), 1e-15);

    /* standardised conflict, population std; softplus stable for large |chat| */
    double c2[2] = {0, 1}, e2[2] = {2, 2}, ch2[2], a2[2], s2[2];
    larv_opts_default(&o);
    larv_scales(&o, 2, e2, c2, ch2, a2, s2);
    CHECK(ch2[0] == -1.0 && ch2[1] == 1.0);
    CHECK_NEAR(a2[1], 2.0 * 1.0 / (1 + log1p(exp(1.0))), 1e-15);
    double c3[3] = {0, 0, 1e6}, ch3[3], a3[3], s3[3];
    larv_scales(&o, 3, e, c3, ch3, a3, s3);
    CHECK(isfinite(a3[0]) && isfinite(a3[2]) && a3[2] > 0);

    /* untouched blocks (spec "Untouched updates"): L = 5, blocks 0 and 1 frozen
     * (e NaN). By hand over the touched blocks 2..4: c = 1, 2, 3 -> mean 2,
     * population std sqrt(2/3), chat = -sqrt(1.5), 0, sqrt(1.5); with e = 1 the
     * score is sqrt((l+1)/5) / (1 + softplus(chat)); the tiers split the three
     * touched scores (numpy quantiles of 3 values: q1 = a_2 + (a_3 - a_2) * 2/3 and
     * q2 = a_3 + (a_4 - a_3) / 3 when the scores increase): s = 0.5, 1.0, 1.2.
     * Blocks 0 and 1: chat and score NaN, scale 1 for every rule. */
    {
        double eu[5] = {NAN, NAN, 1, 1, 1}, cu[5] = {0, 0, 1, 2, 3}, chu[5], au[5], su[5];
        larv_opts_default(&o);
        larv_scales(&o, 5, eu, cu, chu, au, su);
        double k = sqrt(1.5);
        CHECK_NEAR(chu[2], -k, 1e-15);
        CHECK_NEAR(chu[3], 0.0, 1e-15);
        CHECK_NEAR(chu[4], k, 1e-15);
        double want[3] = {sqrt(3 / 5.0) / (1 + log1p(exp(-k))), sqrt(4 / 5.0) / (1 + log(2.0)),
                          sqrt(5 / 5.0) / (1 + k + log1p(exp(-k)))};
        for (int l = 2; l < 5; l++)
            CHECK_NEAR(au[l], want[l - 2], 1e-15);
        CHECK(isnan(chu[0]) && isnan(chu[1]) && isnan(au[0]) && isnan(au[1]));
        /* tiers from the touched scores only (a_2 > a_3 > a_4 here: decreasing) */
        CHECK(want[0] > want[1] && want[1] > want[2]);
        CHECK(su[0] == 1.0 && su[1] == 1.0);
        CHECK(su[2] == 1.2 && su[3] == 1.0 && su[4] == 0.5);
        o.rule = LARV_RULE_TIERED2; /* median of three = the middle one -> s_low */
        larv_scales(&o, 5, eu, cu, NULL, au, su);
        CHECK(su[0] == 1.0 && su[1] == 1.0 && su[2] == 1.2 && su[3] == 0.5 && su[4] == 0.5);
        o.rule = LARV_RULE_DEPTH; /* touched blocks keep their depth position */
        larv_scales(&o, 5, eu, cu, NULL, au, su);
        CHECK(su[0] == 1.0 && su[1] == 1.0 && fabs(su[2] - 0.85) < 1e-15 && su[4] == 1.2);
        o.rule = LARV_RULE_CONTINUOUS;
        larv_scales(&o, 5, eu, cu, NULL, au, su);
        CHECK(su[0] == 1.0 && su[1] == 1.0);
        CHECK_NEAR(su[3], 1 + 0.5 * tanh(3.0 * (want[1] - 1)), 1e-15);
        /* every block untouched: all scales 1 */
        double en[2] = {NAN, NAN}, cn[2] = {0, 0}, an[2], sn[2];
        larv_opts_default(&o);
        larv_scales(&o, 2, en, cn, NULL, an, sn);
        CHECK(sn[0] == 1.0 && sn[1] == 1.0);
    }

    return check_report();
}
