/* Read-ahead on a helper thread (API and contract: readahead.h).
 *
 * The schedule is a list of reads (tensor, checkpoint) that the caller takes
 * strictly in order. The thread reads them in the same order into a ring
 * buffer, as far ahead as the ring has room: behind a large tensor it fetches
 * the small ones (biases, norms) that follow it and then the next large one,
 * so the caller rarely waits. Each read occupies one contiguous extent of the
 * ring (one that does not fit before the end starts again at 0, and the tail it
 * skipped counts as used until the caller passes it).
 *
 * Synchronisation: one mutex and one condition variable. The thread writes only
 * into the extent it reserved (under the lock) for the file it reads; the
 * caller reads only a file whose read has completed, in place, and releases its
 * extent (under the lock) when done with it. So no byte is touched by both at
 * once and nothing is copied under the lock. A schedule change (begin/end)
 * waits for the read in flight and bumps gen; a read that completes under an
 * older gen is discarded. */
#include "readahead.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../src/hash.h"

typedef struct {
    size_t tensor, file; /* what to read */
    uint64_t off, len;   /* where it lies in the ring; its extent (with any skipped tail) */
    uint64_t hash;       /* larv_hash64 of its bytes */
} ra_read;

struct larv_readahead {
    larv_ckpt **c;
    size_t n;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ra_read *reads;             /* the schedule */
    size_t nreads;
    size_t nread;               /* reads done (the thread does read nread next) */
    size_t ntaken;              /* reads taken (the caller takes read ntaken next) */
    int held;                   /* the caller holds read ntaken (get without release yet) */
    int failed;                 /* read nread failed */
    larv_err ferr;
    /* the ring: bytes read and not taken yet lie in [tail, head), wrapping */
    char *ring;
    uint64_t cap, head, tail, used;
    int busy;                   /* a read is in flight (outside the lock) */
    int stop;
    uint64_t gen;
    uint64_t bytes;
};

static uint64_t nbytes_of(const larv_readahead *ra, size_t j)
{
    return larv_ckpt_tensor(ra->c[ra->reads[j].file], ra->reads[j].tensor)->nbytes;
}

/* With the lock held: where a read of nb bytes goes in the ring, or -1 if the
 * ring has no contiguous room for it yet. Sets *len to the bytes it uses. */
static int64_t place(larv_readahead *ra, uint64_t nb, uint64_t *len)
{
    if (ra->used == 0) /* empty: start over at 0 */
        ra->head = ra->tail = 0;
    if (nb > ra->cap)
        return -1;
    if (ra->used > 0 && ra->head == ra->tail) /* full */
        return -1;
    if (ra->used == 0 || ra->head > ra->tail) { /* free: [head, cap) and [0, tail) */
        if (nb <= ra->cap - ra->head) {
            *len = nb;
            return (int64_t)ra->head;
        }
        if (nb <= ra->tail) {
            *len = ra->cap - ra->head + nb;
            return 0;
        }
        return -1;
    }
    if (nb <= ra->tail - ra->head) { /* wrapped: free [head, tail) */
        *len = nb;
        return (int64_t)ra->head;
    }
    return -1;
}

static void *reader(void *arg)
{
    larv_readahead *ra = arg;
    pthread_mutex_lock(&ra->mu);
    for (;;) {
        int64_t pos = -1;
        uint64_t len = 0;
        while (!ra->stop &&
               (ra->nread >= ra->nreads || ra->failed ||
                (pos = place(ra, nbytes_of(ra, ra->nread), &len)) < 0))
            pthread_cond_wait(&ra->cv, &ra->mu);
        if (ra->stop)
            break;
        size_t j = ra->nread;
        uint64_t nb = nbytes_of(ra, j), gen = ra->gen;
        larv_ckpt *c = ra->c[ra->reads[j].file];
        size_t idx = ra->reads[j].tensor;
        char *dst = ra->ring + pos;
        ra->head = (uint64_t)pos + nb; /* reserved */
        ra->used += len;
        ra->busy = 1;
        pthread_mutex_unlock(&ra->mu);

        larv_err e;
        larv_err_clear(&e);
        int rc = larv_ckpt_read(c, idx, dst, &e);
        uint64_t h = rc == 0 ? larv_hash64(dst, nb, 0) : 0;

        pthread_mutex_lock(&ra->mu);
        ra->busy = 0;
        if (gen == ra->gen) {
            if (rc) {
                ra->failed = 1;
                ra->ferr = e;
            } else {
                ra->reads[j].off = (uint64_t)pos;
                ra->reads[j].len = len;
                ra->reads[j].hash = h;
                ra->nread++;
            }
        }
        pthread_cond_broadcast(&ra->cv);
    }
    pthread_mutex_unlock(&ra->mu);
    return NULL;
}

int larv_readahead_create(larv_ckpt *const *c, size_t n, larv_readahead **out, larv_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (larv_ckpt_format(c[i]) == LARV_FMT_HDF5)
            return 0;
    larv_readahead *ra = calloc(1, sizeof *ra);
    if (!ra || !(ra->c = malloc((n ? n : 1) * sizeof *ra->c))) {
        free(ra);
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    memcpy(ra->c, c, n * sizeof *c);
    ra->n = n;
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->cv, NULL);
    if (pthread_create(&ra->th, NULL, reader, ra) != 0) {
        /* no thread: the caller reads synchronously, as for HDF5 */
        pthread_mutex_destroy(&ra->mu);
        pthread_cond_destroy(&ra->cv);
        free(ra->c);
        free(ra);
        return 0;
    }
    *out = ra;
    return 0;
}

/* With the lock held: drop the schedule and wait for the read in flight. */
static void clear_locked(larv_readahead *ra)
{
    ra->gen++;
    while (ra->busy)
        pthread_cond_wait(&ra->cv, &ra->mu);
    free(ra->reads);
    ra->reads = NULL;
    ra->nreads = ra->nread = ra->ntaken = 0;
    ra->failed = ra->held = 0;
    ra->head = ra->tail = ra->used = 0;
}

void larv_readahead_free(larv_readahead *ra)
{
    if (!ra)
        return;
    pthread_mutex_lock(&ra->mu);
    clear_locked(ra);
    ra->stop = 1;
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
    pthread_join(ra->th, NULL);
    pthread_mutex_destroy(&ra->mu);
    pthread_cond_destroy(&ra->cv);
    free(ra->ring);
    free(ra->c);
    free(ra);
}

int larv_readahead_begin(larv_readahead *ra, const size_t *tensor, const size_t *file,
                         size_t nreads, uint64_t ring_bytes, larv_err *err)
{
    uint64_t cap = ring_bytes;
    for (size_t j = 0; j < nreads; j++) {
        if (file[j] >= ra->n || tensor[j] >= larv_ckpt_ntensors(ra->c[file[j]]))
            return larv_fail(err, LARV_EXIT_FAIL, "read-ahead: read %zu: tensor %zu of file %zu",
                             j, tensor[j], file[j]);
        uint64_t nb = larv_ckpt_tensor(ra->c[file[j]], tensor[j])->nbytes;
        cap = nb > cap ? nb : cap;
    }
    ra_read *reads = calloc(nreads ? nreads : 1, sizeof *reads);
    if (!reads)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t j = 0; j < nreads; j++) {
        reads[j].tensor = tensor[j];
        reads[j].file = file[j];
    }
    pthread_mutex_lock(&ra->mu);
    clear_locked(ra);
    int rc = 0;
    if (cap > ra->cap) { /* the thread is idle: nothing lives in the ring */
        free(ra->ring);
        ra->ring = malloc(cap ? cap : 1);
        ra->cap = ra->ring ? cap : 0;
        if (!ra->ring)
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory for read-ahead (%llu bytes)",
                           (unsigned long long)cap);
    }
    if (rc == 0) {
        ra->reads = reads;
        ra->nreads = nreads;
        pthread_cond_broadcast(&ra->cv);
    }
    pthread_mutex_unlock(&ra->mu);
    if (rc)
        free(reads);
    return rc;
}

void larv_readahead_end(larv_readahead *ra)
{
    pthread_mutex_lock(&ra->mu);
    clear_locked(ra);
    pthread_mutex_unlock(&ra->mu);
}

int larv_readahead_get(larv_readahead *ra, size_t idx, size_t f, const void **data,
                       uint64_t *hash, larv_err *err)
{
    pthread_mutex_lock(&ra->mu);
    size_t j = ra->ntaken;
    if (ra->held || j >= ra->nreads || ra->reads[j].tensor != idx || ra->reads[j].file != f) {
        pthread_mutex_unlock(&ra->mu);
        return 0;
    }
    while (ra->nread <= j && !ra->failed)
        pthread_cond_wait(&ra->cv, &ra->mu);
    if (ra->nread <= j) { /* read nread <= j failed */
        if (err)
            *err = ra->ferr;
        pthread_mutex_unlock(&ra->mu);
        return -1;
    }
    /* read and not released: the thread does not write these bytes */
    *data = ra->ring + ra->reads[j].off;
    *hash = ra->reads[j].hash;
    ra->held = 1;
    pthread_mutex_unlock(&ra->mu);
    return 1;
}

void larv_readahead_release(larv_readahead *ra)
{
    pthread_mutex_lock(&ra->mu);
    if (ra->held) {
        size_t j = ra->ntaken;
        uint64_t nb = nbytes_of(ra, j);
        ra->used -= ra->reads[j].len;
        ra->tail = ra->reads[j].off + nb;
        ra->ntaken++;
        ra->bytes += nb;
        ra->held = 0;
        pthread_cond_broadcast(&ra->cv);
    }
    pthread_mutex_unlock(&ra->mu);
}

uint64_t larv_readahead_bytes(const larv_readahead *ra)
{
    return ra ? ra->bytes : 0;
}
