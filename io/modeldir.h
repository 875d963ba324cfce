/* Hugging Face model directories as outputs (and the small part of the input
 * rule that `larv verify DIR` needs).
 *
 * A model directory holds `model.safetensors`, or `model.safetensors.index.json`
 * plus its shards `model-0000K-of-0000N.safetensors` (HF's names), beside
 * `config.json` and the tokenizer/preprocessor files.
 * The input-side rule "a directory is a checkpoint" is larv_ckpt_resolve
 * (io/ckpt.h), used here too. */
#ifndef LARV_IO_MODELDIR_H
#define LARV_IO_MODELDIR_H

#include <stdint.h>
#include <stddef.h>

#include "../src/err.h"
#include "../src/tensor.h"

#define LARV_MODELDIR_WEIGHTS "model.safetensors"
#define LARV_MODELDIR_INDEX "model.safetensors.index.json"
#define LARV_MODELDIR_STAGE ".larv-tmp" /* OUT.larv-tmp/: the directory being made */
#define LARV_MODELDIR_REPORT "larv-report.json"
#define LARV_MODELDIR_SHARD_DEFAULT "5G" /* as transformers' save_pretrained (5GB) */

/* Whether `--out PATH` names a model directory: a trailing '/', an existing
 * directory, or a last component without any '.' (no extension). */
int larv_out_is_dir(const char *path);

/* "5G", "500M", "64K", "1000000", optionally with B ("5GB") or iB ("2GiB",
 * powers of 1024); K/M/G/T are powers of 1000 as in transformers. At least 1.
 * 0, or -1 with the reason in msg. */
int larv_size_parse(const char *text, uint64_t *out, char *msg, size_t len);

/* For a shard named "<stem>-0000K-of-0000N.safetensors": the index
 * "<stem>.safetensors.index.json" beside it (malloc'd), or NULL when the name
 * is not a shard's or no such index exists. */
char *larv_shard_index_path(const char *shard);

/* Check a sharded checkpoint as transformers loads it: the index has the form
 * {"metadata": {"total_size": N, ...}, "weight_map": {...}}, every shard it
 * names exists, holds exactly the tensors the weight_map gives it (none
 * missing, none extra), carries "format" pt/tf/flax/mlx in its __metadata__,
 * and total_size equals the bytes of all tensors. 0, or -1 with exit 65
 * naming the index, the shard and the tensor. Serial (any rank). */
int larv_index_check(const char *index_path, larv_err *err);

/* The tensor names the index maps to this shard (its file name), sorted;
 * *names malloc'd (free each and the array). 0, or -1 with a message. */
int larv_index_shard_tensors(const char *index_path, const char *shard, char ***names,
                             size_t *n, larv_err *err);

/* The "format" of a safetensors file's __metadata__ (malloc'd), "" when it has
 * no metadata or no format; NULL with a message when unreadable. */
char *larv_st_file_format(const char *path, larv_err *err);

/* The path the merge writer creates for the output `out` (malloc'd), and in
 * *max_shard the shard size parsed from shard_size (NULL: the default). For a
 * model directory (in_dir: out is DIR/model.safetensors) whose tensors exceed
 * the shard size: DIR/model.safetensors.index.json (then shards); else out. */
char *larv_out_weights_path(const char *out, int in_dir, const char *shard_size,
                            const larv_tensor_info *t, size_t n, uint64_t *max_shard);

#endif
