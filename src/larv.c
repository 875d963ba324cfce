/* LARV scores and scales (spec: ALGORITHMS.md, LARV section). No MPI.
 *
 * Choices documented here:
 *  - depth rule with L == 1: the single block gets s_high (it is the last,
 *    i.e. deepest, block: l/(L-1) is read as 1).
 *  - tiered rules with L == 1: q1 = q2 = a_0, so a_0 <= q1 gives s_low, which
 *    is what numpy's quantile-based split does as well.
 *  - untouched blocks (e[l] NaN, spec "Untouched updates") keep their place
 *    in the depth prior d = (l + 1) / L and in the depth rule's l / (L - 1).
 *  - softplus(x) = max(x, 0) + log1p(exp(-|x|)) (stable for any x). */
#include "larv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void larv_opts_default(larv_opts *o)
{
    o->rule = LARV_RULE_TIERED3;
    o->eta = 1.0;
    o->rho = 0.5;
    o->gamma = 3.0;
    o->s_low = 0.5;
    o->s_mid = 1.0;
    o->s_high = 1.2;
    o->embed_scale = 1.0;
    o->head_scale = 1.0;
}

const char *const larv_rule_names[] = {"off", "tiered2", "tiered3", "continuous", "depth", NULL};

const char *larv_rule_name(larv_rule r)
{
    if ((unsigned)r < sizeof larv_rule_names / sizeof larv_rule_names[0] - 1)
        return larv_rule_names[r];
    return "?";
}

int larv_rule_parse(const char *s, larv_rule *r)
{
    if (!s)
        return -1;
    for (unsigned i = 0; i < sizeof larv_rule_names / sizeof larv_rule_names[0] - 1; i++)
        if (strcmp(s, larv_rule_names[i]) == 0) {
            *r = (larv_rule)i;
            return 0;
        }
    return -1;
}

double larv_effective_rank_sq(const double *sigma_sq, size_t r)
{
    double tot = 0;
    for (size_t j = 0; j < r; j++)
        if (sigma_sq[j] > 0)
            tot += sigma_sq[j];
    if (!(tot > 0))
        return 0.0;
    double h = 0;
    for (size_t j = 0; j < r; j++) {
        if (sigma_sq[j] > 0) {
            double p = sigma_sq[j] / tot;
            if (p > 0)
                h -= p * log(p);
        }
    }
    return exp(h);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double larv_quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double *s = malloc(n * sizeof(double));
    if (!s)
        return NAN;
    memcpy(s, v, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    /* numpy 1.24 "linear", step by step (same rounding): virtual index
     * (n - 1) * q, gamma = index - floor(index), and numpy's _lerp. */
    double vi = (double)(n - 1) * q;
    double res;
    if (vi >= (double)(n - 1)) {
        res = s[n - 1];
    } else if (vi < 0) {
        res = s[0];
    } else {
        double fl = floor(vi);
        size_t lo = (size_t)fl;
        double g = vi - fl, a = s[lo], b = s[lo + 1], diff = b - a;
        res = g >= 0.5 ? b - diff * (1.0 - g) : a + diff * g;
    }
    free(s);
    return res;
}

static double softplus(double x)
{
    return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
}

void larv_scales(const larv_opts *o, size_t L, const double *e, const double *c, double *chat,
                 double *score, double *scale)
{
    if (L == 0)
        return;
    /* untouched blocks (e[l] NaN) are left out of the standardisation and the
     * quantiles; their chat and score are NaN and their scale 1 */
    size_t n = 0;
    double mean = 0;
    for (size_t l = 0; l < L; l++)
        if (!isnan(e[l])) {
            mean += c[l];
            n++;
        }
    double *touched = malloc((n ? n : 1) * sizeof(double));
    mean /= (double)(n ? n : 1);
    double var = 0;
    for (size_t l = 0; l < L; l++)
        if (!isnan(e[l]))
            var += (c[l] - mean) * (c[l] - mean);
    double sd = sqrt(var / (double)(n ? n : 1));
    if (sd < 1e-8)
        sd = 1.0;
    size_t k = 0;
    for (size_t l = 0; l < L; l++) {
        if (isnan(e[l])) {
            if (chat)
                chat[l] = NAN;
            score[l] = NAN;
            continue;
        }
        double ch = (c[l] - mean) / sd;
        if (chat)
            chat[l] = ch;
        double d = (double)(l + 1) / (double)L;
        score[l] = pow(e[l], o->eta) * pow(d, o->rho) / (1.0 + softplus(ch));
        if (touched)
            touched[k++] = score[l];
    }
    double q1 = 0, q2 = 0;
    if (n > 0 && touched && o->rule == LARV_RULE_TIERED3) {
        q1 = larv_quantile(touched, n, 1.0 / 3.0);
        q2 = larv_quantile(touched, n, 2.0 / 3.0);
    } else if (n > 0 && touched && o->rule == LARV_RULE_TIERED2) {
        q1 = larv_quantile(touched, n, 0.5);
    }
    free(touched);
    for (size_t l = 0; l < L; l++) {
        double a = score[l], s = 1.0;
        switch (isnan(e[l]) ? LARV_RULE_OFF : o->rule) {
        case LARV_RULE_OFF:
            s = 1.0;
            break;
        case LARV_RULE_TIERED3:
            s = a <= q1 ? o->s_low : a <= q2 ? o->s_mid : o->s_high;
            break;
        case LARV_RULE_TIERED2:
            s = a <= q1 ? o->s_low : o->s_high;
            break;
        case LARV_RULE_CONTINUOUS:
            s = 1.0 + 0.5 * tanh(o->gamma * (a - 1.0));
            break;
        case LARV_RULE_DEPTH:
            s = L == 1 ? o->s_high
                       : o->s_low + (o->s_high - o->s_low) * (double)l / (double)(L - 1);
            break;
        }
        scale[l] = s;
    }
}
