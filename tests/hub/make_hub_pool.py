#!/usr/bin/python3
"""Write a tiny task pool laid out exactly as the Hugging Face Hub serves the
CLIP pools that FusionBench and the LARV paper use (no internet here, so the
tests build it):

  OUT/base/                  like openai/clip-vit-base-patch32: a full CLIPModel
    config.json              ("architectures": ["CLIPModel"], text_config, vision_config)
    model.safetensors        text_model.*, vision_model.*, visual_projection.weight,
                             text_projection.weight, a 0-d logit_scale and, with
                             --position-ids, the I64 position_ids buffers of older exports
      (or, with --shard-base BYTES, model.safetensors.index.json + model-0000K-of-0000N.safetensors)
    preprocessor_config.json, tokenizer.json, tokenizer_config.json, vocab.json,
    merges.txt, special_tokens_map.json
  OUT/<task>/                like tanganke/clip-vit-base-patch32_<task>: a CLIPVisionModel
    config.json              ("architectures": ["CLIPVisionModel"])
    model.safetensors        vision_model.* only (both towers with --two-tower:
                             then a CLIPModel like the base, minus logit_scale's gradients)
    README.md

Files are written as the `safetensors` Python/Rust library writes them:
`__metadata__` = {"format": "pt"}, tensors laid out by dtype alignment then
name, the header padded with spaces to a multiple of 8. Values are
deterministic in --seed; a task is the base plus a per-task low-rank update
and small dense noise, then stored in the task's dtype (F16: IEEE round to
nearest even; BF16: round to nearest even on the float32 bits).

usage: make_hub_pool.py OUT [--tasks N] [--dtypes F32,F16,BF16,...]
         [--base-dtype F32] [--shard-base BYTES] [--two-tower] [--position-ids]
         [--base-like-tasks] [--position-ids-in-tasks [--task-position-ids-dtype I32]]
         [--layers L] [--text-layers L] [--width W] [--seed S]
"""
import argparse
import json
import os
import struct

import numpy as np

TASKS = ["sun397", "stanford-cars", "resisc45", "eurosat", "svhn", "gtsrb", "mnist", "dtd"]
ORDER = {"F64": 0, "I64": 0, "F32": 1, "I32": 1, "F16": 2, "BF16": 2, "U8": 3}


def to_dtype(a, dt):
    """numpy array -> (raw bytes, safetensors dtype)."""
    if dt == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dt == "F16":
        return np.ascontiguousarray(a, dtype="<f2").tobytes()
    if dt == "BF16":
        u = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
        r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
        return r.tobytes()
    if dt == "I64":
        return np.ascontiguousarray(a, dtype="<i8").tobytes()
    if dt == "I32":
        return np.ascontiguousarray(a, dtype="<i4").tobytes()
    raise ValueError(dt)


def write_safetensors(path, tensors, meta=None):
    """tensors: name -> (np array, dtype). Laid out as safetensors does."""
    names = sorted(tensors, key=lambda n: (ORDER[tensors[n][1]], n))
    header, blobs, off = {}, [], 0
    if meta is None:
        meta = {"format": "pt"}
    header["__metadata__"] = meta
    for n in names:
        a, dt = tensors[n]
        raw = to_dtype(a, dt)
        header[n] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def nbytes(a, dt):
    return a.size * {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}[dt]


def write_sharded(d, tensors, max_bytes):
    """HF's sharding: tensors in name order, a new shard when the next one would
    overflow max_bytes; model-0000K-of-0000N.safetensors + the index."""
    shards, cur, size = [], {}, 0
    for n in sorted(tensors):
        b = nbytes(*tensors[n])
        if cur and size + b > max_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[n] = tensors[n]
        size += b
    shards.append(cur)
    wm, total = {}, 0
    for k, s in enumerate(shards):
        fn = "model-%05d-of-%05d.safetensors" % (k + 1, len(shards))
        write_safetensors(os.path.join(d, fn), s)
        for n in s:
            wm[n] = fn
            total += nbytes(*s[n])
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))},
                  f, indent=2)


def tower(prefix, rng, layers, width, inter, extra):
    t = {}
    for k, shape in extra.items():
        t[prefix + k] = rng.standard_normal(shape).astype(np.float32) * 0.02
    for l in range(layers):
        p = "%s.encoder.layers.%d." % (prefix, l)
        for m in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + "self_attn.%s.weight" % m] = rng.standard_normal((width, width)).astype(np.float32) / np.sqrt(width)
            t[p + "self_attn.%s.bias" % m] = rng.standard_normal(width).astype(np.float32) * 0.01
        t[p + "mlp.fc1.weight"] = rng.standard_normal((inter, width)).astype(np.float32) / np.sqrt(width)
        t[p + "mlp.fc1.bias"] = rng.standard_normal(inter).astype(np.float32) * 0.01
        t[p + "mlp.fc2.weight"] = rng.standard_normal((width, inter)).astype(np.float32) / np.sqrt(inter)
        t[p + "mlp.fc2.bias"] = rng.standard_normal(width).astype(np.float32) * 0.01
        for ln in ("layer_norm1", "layer_norm2"):
            t[p + ln + ".weight"] = 1 + rng.standard_normal(width).astype(np.float32) * 0.01
            t[p + ln + ".bias"] = rng.standard_normal(width).astype(np.float32) * 0.01
    return t


def configs(a):
    W, Wt = a.width, a.width
    vision = {"hidden_size": W, "intermediate_size": 4 * W, "num_attention_heads": 2,
              "num_hidden_layers": a.layers, "patch_size": 4, "image_size": 8,
              "num_channels": 3, "projection_dim": a.proj, "hidden_act": "quick_gelu",
              "layer_norm_eps": 1e-5, "model_type": "clip_vision_model"}
    text = {"hidden_size": Wt, "intermediate_size": 4 * Wt, "num_attention_heads": 2,
            "num_hidden_layers": a.text_layers, "max_position_embeddings": 7,
            "vocab_size": 11, "projection_dim": a.proj, "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5, "model_type": "clip_text_model"}
    return vision, text


def base_model(a, rng):
    W = a.width
    npatch = (8 // 4) ** 2 + 1
    t = {}
    t.update(tower("vision_model", rng, a.layers, W, 4 * W, {
        "embeddings.class_embedding": (W,),
        "embeddings.patch_embedding.weight": (W, 3, 4, 4),
        "embeddings.position_embedding.weight": (npatch, W),
        "pre_layrnorm.weight": (W,), "pre_layrnorm.bias": (W,),
        "post_layernorm.weight": (W,), "post_layernorm.bias": (W,)}))
    t.update(tower("text_model", rng, a.text_layers, W, 4 * W, {
        "embeddings.token_embedding.weight": (11, W),
        "embeddings.position_embedding.weight": (7, W),
        "final_layer_norm.weight": (W,), "final_layer_norm.bias": (W,)}))
    t["visual_projection.weight"] = rng.standard_normal((a.proj, W)).astype(np.float32) / np.sqrt(W)
    t["text_projection.weight"] = rng.standard_normal((a.proj, W)).astype(np.float32) / np.sqrt(W)
    t["logit_scale"] = np.array(2.6592, dtype=np.float32)
    out = {n: (v, "F32") for n, v in t.items()}
    if a.position_ids:
        out["vision_model.embeddings.position_ids"] = (np.arange(npatch, dtype=np.int64)[None, :], "I64")
        out["text_model.embeddings.position_ids"] = (np.arange(7, dtype=np.int64)[None, :], "I64")
    return out


def finetune(base, k, a, dtype):
    rng = np.random.default_rng([a.seed, 1000 + k])
    shared = np.random.default_rng([a.seed, 999])
    t = {}
    for n in sorted(base):
        v, dt = base[n]
        if not a.two_tower and not n.startswith("vision_model."):
            continue
        if dt != "F32":  # buffers are copied
            if not a.position_ids_in_tasks:
                continue
            t[n] = (v, a.task_position_ids_dtype or dt)
            continue
        if a.two_tower and n == "logit_scale":
            continue
        d = rng.standard_normal(v.shape).astype(np.float32) * 1e-3
        if v.ndim == 2:
            r = 2
            d += (rng.standard_normal((v.shape[0], r)) @ rng.standard_normal((r, v.shape[1]))
                  ).astype(np.float32) * 3e-3
            d += (shared.standard_normal((v.shape[0], 1)) @ shared.standard_normal((1, v.shape[1]))
                  ).astype(np.float32) * 2e-3
        t[n] = (v + d, dtype)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--dtypes", default="", help="comma list, one per task (default all F32)")
    ap.add_argument("--base-dtype", default="F32")
    ap.add_argument("--shard-base", type=int, default=0, help="max shard bytes; 0: one file")
    ap.add_argument("--two-tower", action="store_true", help="tasks fine-tune both towers")
    ap.add_argument("--position-ids", action="store_true", help="I64 position_ids in the base")
    ap.add_argument("--position-ids-in-tasks", action="store_true")
    ap.add_argument("--task-position-ids-dtype", default="",
                    help="the tasks' position_ids in this dtype (e.g. I32: a dtype clash)")
    ap.add_argument("--base-like-tasks", action="store_true",
                    help="the base holds only the tensors the tasks have (no full CLIPModel)")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--proj", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    dtypes = a.dtypes.split(",") if a.dtypes else ["F32"] * a.tasks
    if len(dtypes) != a.tasks:
        ap.error("--dtypes needs one dtype per task")
    rng = np.random.default_rng(a.seed)
    base = base_model(a, rng)
    vision, text = configs(a)
    bdir = os.path.join(a.out, "base")
    os.makedirs(bdir, exist_ok=True)
    bw = {n: (v, a.base_dtype if dt == "F32" else dt) for n, (v, dt) in base.items()}
    if a.base_like_tasks:
        keep = finetune(base, 0, a, "F32")
        bw = {n: bw[n] for n in keep}
    if a.shard_base:
        write_sharded(bdir, bw, a.shard_base)
    else:
        write_safetensors(os.path.join(bdir, "model.safetensors"), bw)
    tdt = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
    with open(os.path.join(bdir, "config.json"), "w") as f:
        json.dump({"_name_or_path": "openai/clip-vit-base-patch32", "architectures": ["CLIPModel"],
                   "model_type": "clip", "projection_dim": a.proj, "logit_scale_init_value": 2.6592,
                   "initializer_factor": 1.0, "text_config": text, "vision_config": vision,
                   "torch_dtype": tdt[a.base_dtype], "transformers_version": "4.21.3"}, f, indent=2)
    small = {"preprocessor_config.json": {"crop_size": 8, "do_center_crop": True, "do_normalize": True,
                                          "image_mean": [0.481, 0.458, 0.408],
                                          "image_std": [0.269, 0.261, 0.276], "size": 8},
             "tokenizer_config.json": {"model_max_length": 7, "unk_token": "<|endoftext|>"},
             "special_tokens_map.json": {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"},
             "vocab.json": {"<|startoftext|>": 9, "<|endoftext|>": 10, "a": 0, "b": 1},
             "tokenizer.json": {"version": "1.0", "model": {"type": "BPE"}}}
    for fn, obj in small.items():
        with open(os.path.join(bdir, fn), "w") as f:
            json.dump(obj, f, indent=2)
    with open(os.path.join(bdir, "merges.txt"), "w") as f:
        f.write("#version: 0.2\na b\n")
    for k in range(a.tasks):
        name = TASKS[k % len(TASKS)] + ("" if k < len(TASKS) else "-%d" % k)
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        write_safetensors(os.path.join(d, "model.safetensors"), finetune(base, k, a, dtypes[k]))
        if a.two_tower:
            cfg = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": a.proj,
                   "text_config": text, "vision_config": vision}
        else:
            cfg = dict(vision, architectures=["CLIPVisionModel"])
        cfg["torch_dtype"] = tdt[dtypes[k]]
        cfg["_name_or_path"] = "tanganke/clip-vit-base-patch32_" + name
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write("---\nlibrary_name: transformers\n---\n# %s\nCLIP ViT fine-tuned on %s.\n" % (name, name))


if __name__ == "__main__":
    main()
