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
/* The checksums a merged file carries (metadata "larv_checksums"), so that
 * `larv verify` cannot be fooled by edited metadata or a changed dtype/shape:
 *   {"format": "larv-checksums 2", "provenance": "<16 hex>",
 *    "tensors": {"<name>": "<16 hex>", ...}}
 * "provenance" is the hash of the exact text of the "larv_provenance"
 * metadata; each tensor's value is larv_tensor_checksum: its name, dtype and
 * shape and the hash of its bytes. Every entry is checked against the file,
 * so none can be edited, removed or added unnoticed (not a signature: whoever
 * knows the algorithm can recompute them; src/hash.h).
 * bytes_hashes[i]: larv_hash64 of tensor i's bytes (names: its tensor list). */
uint64_t larv_tensor_checksum(const larv_tensor_info *ti, uint64_t bytes_hash);
char *larv_checksums_json(const larv_ckpt *names, const uint64_t *bytes_hashes, size_t n,
                          const char *provenance);
/* Check a file's "larv_checksums" and "larv_provenance" metadata: present, of
 * this format, the provenance text unchanged, one checksum for every tensor of
 * the file and none for a tensor it lacks. On success *want (malloc'd) holds
 * the recorded larv_tensor_checksum of each tensor, in the file's order; else
 * -1 with exit code 65 and a message naming the file (and the tensor). */
int larv_checksums_load(const larv_ckpt *c, uint64_t **want, larv_err *err);
/* Bytes that the metadata "larv_provenance" and "larv_checksums" of this merge
 * can take in a safetensors header (JSON-escaped, with their keys), whatever
 * numbers the merge will find: both texts are built now with every number at
 * its widest. The writer reserves this much room (opts.meta_reserve), so long
 * paths, patterns or names always fit. res: the shapes (T, ngroups) filled. */
size_t larv_meta_reserve(const larv_merge_cfg *cfg, const larv_merge_result *res,
                         const larv_ckpt *names);
/* Write text to path atomically (temporary file + rename). */
int larv_write_text_file(const char *path, const char *text, larv_err *err);
/* The same in two steps, so that a file can appear together with another:
 * stage writes (and syncs) "<path>.larv-tmp"; finish renames it into place
 * (keep) or removes it. */
int larv_text_file_stage(const char *path, const char *text, larv_err *err);
int larv_text_file_finish(const char *path, int keep, larv_err *err);

#endif
