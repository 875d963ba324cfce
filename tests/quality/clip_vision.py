"""A forward pass of the Hugging Face CLIP vision architecture in numpy (tests and
benchmarks only), and the readers for every checkpoint larv reads.

The architecture (`CLIPVisionModelWithProjection`, read from `config.json` with
Hugging Face's keys, so the same code evaluates a real CLIP checkpoint):
  patch embedding (a convolution without bias, stride = patch size), a class token,
  learned position embeddings, `pre_layrnorm`; per block, pre-LayerNorm attention
  (q scaled by head_dim^-0.5, softmax over all tokens) and MLP (fc1, activation,
  fc2) with residuals; `post_layernorm` on the class token; `visual_projection`
  (no bias); the feature is the L2-normalised projection.
Computed in float32 by default (as CLIP is evaluated; 2x faster on numpy) or
float64 (`dtype=np.float64`), whatever the checkpoint's dtype; both match the tiny
pool's reference features and logits to 1e-5 (tests/quality/check_forward.py).

Checkpoints (`load_checkpoint`): a safetensors file, a directory holding
`model.safetensors` or `model.safetensors.index.json` and its shards (Hugging Face's
layout), or a larv HDF5 file (`/tensors/<name>`, names %-encoded, io/LAYOUT.md).
safetensors is read here (8-byte little-endian header length, JSON header, raw
bytes): no dependency beyond numpy and h5py.
"""
import json
import os
import struct

import numpy as np

_NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
       "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def _decode(raw, dtype, shape):
    if dtype == "BF16":
        a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        a = np.frombuffer(raw, _NP[dtype])
    return a.reshape(shape)


def load_safetensors(path):
    """{name: numpy array} of one safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    return {k: _decode(data[v["data_offsets"][0]:v["data_offsets"][1]], v["dtype"], v["shape"])
            for k, v in hdr.items() if k != "__metadata__"}


def _h5name(s):
    out, i = [], 0
    while i < len(s):
        c = s[i:i + 3]
        if c == "%25":
            out.append("%"); i += 3
        elif c in ("%2F", "%2f"):
            out.append("/"); i += 3
        elif c in ("%2E", "%2e"):
            out.append("."); i += 3
        else:
            out.append(s[i]); i += 1
    return "".join(out)


def load_h5(path):
    """{name: numpy array} of a larv HDF5 checkpoint (io/LAYOUT.md)."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        for k, d in f["tensors"].items():
            dt = d.attrs["dtype"]
            dt = dt.decode() if isinstance(dt, bytes) else str(dt)
            if dt == "BF16":
                raw = np.asarray(d[()].view(np.uint16) if d.dtype.itemsize == 2 else d[()])
                a = (raw.astype(np.uint32) << 16).view(np.float32)
            else:
                a = np.asarray(d[()])
            out[_h5name(k)] = a
    return out


def load_checkpoint(path):
    """A safetensors file, a model directory (model.safetensors, or
    model.safetensors.index.json + shards) or a larv .h5/.hdf5 file."""
    if os.path.isdir(path):
        single = os.path.join(path, "model.safetensors")
        index = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(single):
            return load_safetensors(single)
        if os.path.exists(index):
            with open(index) as f:
                wm = json.load(f)["weight_map"]
            out = {}
            for shard in sorted(set(wm.values())):
                t = load_safetensors(os.path.join(path, shard))
                out.update({k: v for k, v in t.items() if wm.get(k) == shard})
            missing = set(wm) - set(out)
            if missing:
                raise ValueError(f"{index}: tensors missing from their shards: {sorted(missing)[:3]}")
            return out
        raise FileNotFoundError(f"{path}: no model.safetensors or model.safetensors.index.json")
    if path.endswith((".h5", ".hdf5")):
        return load_h5(path)
    return load_safetensors(path)


def load_config(pool_dir):
    with open(os.path.join(pool_dir, "config.json")) as f:
        return json.load(f)


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _act(x, name):
    if name == "quick_gelu":
        return x / (1 + np.exp(x * x.dtype.type(-1.702)))
    if name == "gelu":
        from math import erf, sqrt
        return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))
    raise ValueError(f"hidden_act {name!r} is not implemented")


class CLIPVision:
    """Weights of one checkpoint, prepared once (float64); `features(images)`
    gives the L2-normalised projected features of images [N, C, H, W] in [0, 1]
    (normalised with the config's image_mean/image_std)."""

    def __init__(self, cfg, tensors, dtype=np.float32, prefix="vision_model."):
        self.cfg = cfg
        self.dtype = dtype
        g = lambda k: np.asarray(tensors[k], dtype=dtype)
        p = prefix
        self.patch = g(p + "embeddings.patch_embedding.weight")  # [D, C, P, P]
        self.cls = g(p + "embeddings.class_embedding")
        self.pos = g(p + "embeddings.position_embedding.weight")
        self.pre = (g(p + "pre_layrnorm.weight"), g(p + "pre_layrnorm.bias"))
        self.post = (g(p + "post_layernorm.weight"), g(p + "post_layernorm.bias"))
        self.proj = g("visual_projection.weight")
        self.layers = []
        for l in range(cfg["num_hidden_layers"]):
            q = f"{p}encoder.layers.{l}."
            w = {k: g(q + k) for k in (
                "layer_norm1.weight", "layer_norm1.bias", "layer_norm2.weight", "layer_norm2.bias",
                "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
                "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                "self_attn.out_proj.weight", "self_attn.out_proj.bias", "mlp.fc1.weight",
                "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")}
            self.layers.append(w)

    def features(self, images, batch=512):
        return np.concatenate([self._features(images[i:i + batch])
                               for i in range(0, len(images), batch)])

    def _features(self, images):
        cfg = self.cfg
        eps, H, P = cfg["layer_norm_eps"], cfg["num_attention_heads"], cfg["patch_size"]
        dt = self.dtype
        mean = np.asarray(cfg.get("image_mean", [0.0]), dtype=dt).reshape(1, -1, 1, 1)
        std = np.asarray(cfg.get("image_std", [1.0]), dtype=dt).reshape(1, -1, 1, 1)
        x = (np.asarray(images, dtype=dt) - mean) / std
        N, C, Hh, Ww = x.shape
        gh, gw = Hh // P, Ww // P
        # patches in row-major grid order, each flattened as (C, P, P): a strided conv
        pt = x[:, :, :gh * P, :gw * P].reshape(N, C, gh, P, gw, P).transpose(0, 2, 4, 1, 3, 5)
        pt = pt.reshape(N, gh * gw, C * P * P)
        D = self.patch.shape[0]
        emb = pt @ self.patch.reshape(D, -1).T
        h = np.concatenate([np.broadcast_to(self.cls, (N, 1, D)), emb], axis=1) + self.pos
        h = _ln(h, *self.pre, eps)
        S, hd = h.shape[1], D // H
        for w in self.layers:
            a = _ln(h, w["layer_norm1.weight"], w["layer_norm1.bias"], eps)
            q = (a @ w["self_attn.q_proj.weight"].T + w["self_attn.q_proj.bias"]) * dt(hd ** -0.5)
            k = a @ w["self_attn.k_proj.weight"].T + w["self_attn.k_proj.bias"]
            v = a @ w["self_attn.v_proj.weight"].T + w["self_attn.v_proj.bias"]
            q, k, v = (t.reshape(N, S, H, hd).transpose(0, 2, 1, 3) for t in (q, k, v))
            s = q @ k.transpose(0, 1, 3, 2)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = (s @ v).transpose(0, 2, 1, 3).reshape(N, S, D)
            h = h + o @ w["self_attn.out_proj.weight"].T + w["self_attn.out_proj.bias"]
            a = _ln(h, w["layer_norm2.weight"], w["layer_norm2.bias"], eps)
            m = _act(a @ w["mlp.fc1.weight"].T + w["mlp.fc1.bias"], cfg["hidden_act"])
            h = h + m @ w["mlp.fc2.weight"].T + w["mlp.fc2.bias"]
        pooled = _ln(h[:, 0], *self.post, eps)
        f = pooled @ self.proj.T
        return f / np.linalg.norm(f, axis=-1, keepdims=True)
