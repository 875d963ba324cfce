/* The merge's JSON report and the provenance stored in the merged file. */
#ifndef LARV_REPORT_H
#define LARV_REPORT_H

#include <stdint.h>

#include "../src/merge_cfg.h"
#include "ckpt.h"

/* JSON text (malloc'd): larv version, method and every parameter, the inputs
 * (path, bytes, digest), and under "layers" one entry per layer group (name
 * "embed", "0".."L-1", "head") with effective_rank_contrast, conflict,
 * conflict_z, score, scale (null where not defined). with_summary adds the
 * run's "summary" (time, peak memory per rank, bytes read and written). */
char *larv_report_json(const larv_merge_cfg *cfg, const larv_merge_result *res, int with_summary);
/* {"tensor name": "16 hex digits", ...} for the output tensors, in name order. */
char *larv_checksums_json(const larv_ckpt *names, const uint64_t *hashes, size_t n);
/* Write text to path atomically (temporary file + rename). */
int larv_write_text_file(const char *path, const char *text, larv_err *err);

#endif
