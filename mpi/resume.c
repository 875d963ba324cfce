/* Opening the outputs of a merge run, and --resume (resume.h). */
#include "resume.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/coll.h"
#include "../io/modeldir.h"
#include "../io/report.h"
#include "../src/hash.h"
#include "journal.h"

/* --resume: keep what the journals of an interrupted run say was written, once
 * the bytes in the temporary file are re-read and their checksum matches. Each
 * rank checks the tensors it owns; *kept and *bad count them on this rank.
 * Returns 0, or -1 with err (out of memory, a read failed). */
static int verify_resumed(const larv_resume_run *r, larv_output *o, const larv_journal_state *js,
                          size_t *kept, size_t *bad, larv_err *err)
{
    *kept = *bad = 0;
    void *raw = NULL;
    size_t rawcap = 0;
    int rc = 0;
    for (size_t i = 0; i < r->nt && rc == 0; i++) {
        if (!r->role[i] || !js->have[i])
            continue;
        const larv_tensor_info *ti = &r->info[i];
        if ((r->role[i] & LARV_ROLE_PROXY) && larv_output_larv_on(o) && !js->has_proxy[i]) {
            (*bad)++;
            continue;
        }
        if (ti->nbytes > rawcap || !raw) {
            free(raw);
            raw = malloc(ti->nbytes ? ti->nbytes : 1);
            rawcap = raw ? ti->nbytes : 0;
            if (!raw) {
                rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
                break;
            }
        }
        if (larv_writer_read(o->w, i, raw, err)) {
            rc = -1;
            break;
        }
        if (larv_hash64(raw, ti->nbytes, 0) != js->out_hash[i]) {
            (*bad)++;
            continue;
        }
        o->done[i] = 1;
        o->out_hash[i] = js->out_hash[i];
        for (size_t f = 0; f <= r->T; f++)
            r->in_hash[f * r->nt + i] = js->in_hash[f * r->nt + i];
        if (js->has_proxy[i]) {
            memcpy(o->pe + i * r->T, js->e + i * r->T, r->T * sizeof(double));
            memcpy(o->pc + i * r->T, js->c + i * r->T, r->T * sizeof(double));
            o->has_pe[i] = 1;
        }
        (*kept)++;
    }
    free(raw);
    return rc;
}

/* --resume: every rank re-reads the inputs of the journalled tensors it owns
 * and compares their hashes with the journal's; when any differs, *found = 0
 * and why says which (nothing is reused). Collective. */
static int check_journalled_inputs(const larv_resume_run *r, const larv_journal_state *js,
                                   int *found, larv_err *why, larv_err *err)
{
    unsigned char *chk = calloc(r->nt ? r->nt : 1, 1);
    larv_ckpt **files = malloc((r->T + 1) * sizeof *files);
    int m = chk && files ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    if (m == 0) {
        files[0] = r->base;
        memcpy(files + 1, r->tasks, r->T * sizeof *files);
        for (size_t i = 0; i < r->nt; i++)
            if (r->role[i])
                chk[i] = (r->role[i] & LARV_ROLE_COPIED) ? 2 : 1;
        m = larv_journal_check_inputs(js, files, chk, why, err);
    }
    free(chk);
    free(files);
    if (larv_coll_check(r->comm, m < 0 ? -1 : 0, err))
        return -1;
    if (larv_coll_check(r->comm, m, why)) /* the lowest rank's finding, on every rank */
        *found = 0;
    return 0;
}

int larv_resume_open_output(const larv_resume_run *r, larv_output *o, larv_err *err)
{
    const larv_merge_cfg *cfg = o->cfg;
    larv_writer **wp = &o->w;
    *wp = NULL;
    int rc = 0;
    const char **names = malloc((r->nt ? r->nt : 1) * sizeof *names);
    size_t T = r->T, nn = r->nt ? r->nt : 1;
    o->done = calloc(nn, 1);
    o->has_pe = calloc(nn, 1);
    o->pe = calloc(nn * (T ? T : 1), sizeof(double));
    o->pc = calloc(nn * (T ? T : 1), sizeof(double));
    o->out_hash = calloc(nn, sizeof(uint64_t));
    if (!names || !o->done || !o->has_pe || !o->pe || !o->pc || !o->out_hash)
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t i = 0; rc == 0 && i < r->nt; i++)
        names[i] = r->info[i].name;
    larv_writer_opts wo = {0};
    /* a model directory: one model.safetensors, or shards beyond --out-shard-size */
    char *wpath = larv_out_weights_path(cfg->out, cfg->out_dir != NULL, cfg->out_shard_size,
                                        r->info, r->nt, &wo.max_shard_bytes);
    if (!wpath && rc == 0)
        rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    wo.atomic = 1;
    wo.meta_reserve = larv_meta_reserve(cfg, o->res, r->base); /* what it must hold */
    wo.guard = r->files;
    o->job = larv_job_identity(cfg, r->size, r->base, r->tasks);
    if (r->cache_digest && larv_output_larv_on(o)) /* resumed only with the same cache */
        o->job = larv_hash64(r->cache_digest, sizeof *r->cache_digest, o->job);
    larv_journal_state js = {0};
    int resumed = 0;
    if (rc == 0 && cfg->resume)
        rc = larv_journal_load(cfg->out, o->job, r->size, T, r->nt, names, &js, err);
    rc = larv_coll_check(r->comm, rc, err);
    int found = js.njournals > 0;
    if (rc == 0 && cfg->resume)
        rc = LARV_MPI_ALL(r->comm, MPI_Allreduce(MPI_IN_PLACE, &found, 1, MPI_INT, MPI_MIN, r->comm),
                          err);
    if (rc == 0 && cfg->resume) {
        larv_err why;
        larv_err_clear(&why);
        if (found) /* the inputs' bytes, not their size and time, as journalled */
            rc = check_journalled_inputs(r, &js, &found, &why, err);
        int ro = 1;
        if (rc == 0 && found)
            ro = larv_writer_reopen(wpath, r->comm, r->info, r->nt, NULL, 0, &wo, wp, &why);
        else if (rc == 0 && !why.msg[0])
            snprintf(why.msg, sizeof why.msg, "no journal of this job beside %s%s", cfg->out,
                     ".larv-tmp");
        if (rc == 0 && ro < 0) {
            *err = why;
            rc = -1;
        } else if (rc == 0 && ro == 1 && r->rank == 0) {
            fprintf(stderr, "[larv] resume: nothing to resume (%s): a full run\n", why.msg);
        }
        resumed = rc == 0 && ro == 0;
    }
    if (rc == 0 && !resumed) {
        if (r->rank == 0) /* stale journals (create replaces any temporary output) */
            larv_journal_remove_all(cfg->out);
        /* collective: no rank opens its journal before rank 0 removed the old ones */
        rc = larv_writer_create(wpath, r->comm, r->info, r->nt, NULL, 0, &wo, wp, err);
    }
    if (rc == 0)
        rc = larv_coll_check(r->comm,
                             larv_journal_open(cfg->out, r->rank, r->size, o->job, T, !resumed,
                                               &o->journal, err),
                             err);
    if (rc == 0 && resumed) {
        size_t kept = 0, bad = 0;
        int lrc = verify_resumed(r, o, &js, &kept, &bad, err);
        rc = larv_coll_check(r->comm, lrc, err);
        uint64_t cnt[2] = {kept, bad};
        if (rc == 0)
            rc = LARV_MPI_ALL(r->comm,
                              MPI_Allreduce(MPI_IN_PLACE, cnt, 2, MPI_UINT64_T, MPI_SUM, r->comm),
                              err);
        if (rc == 0) {
            if (r->rank == 0)
                fprintf(stderr,
                        "[larv] resume: skipped %zu of %zu tensors (already written to %s%s and "
                        "verified)%s\n",
                        (size_t)cnt[0], r->nt, cfg->out, ".larv-tmp",
                        cnt[1] ? "; some journalled tensors did not verify and are rewritten" : "");
        }
    }
    if (rc && *wp) {
        larv_writer_abort(*wp);
        *wp = NULL;
    }
    larv_journal_state_free(&js);
    free(wpath);
    free(names);
    return rc;
}
