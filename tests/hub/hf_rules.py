#!/usr/bin/python3
"""Check a model directory (or one safetensors file) against the rules that
Hugging Face transformers applies when it loads one with
`PreTrainedModel.from_pretrained(DIR)`. transformers is not installed on these
machines (no internet), so the rules are transcribed here from its source
(src/transformers/modeling_utils.py, src/transformers/utils/hub.py,
src/transformers/configuration_utils.py) and from the safetensors format:

1. Which weights (`_get_resolved_checkpoint_files` in modeling_utils.py): in a
   local directory `model.safetensors` (SAFE_WEIGHTS_NAME) is taken first,
   else `model.safetensors.index.json` (SAFE_WEIGHTS_INDEX_NAME), sharded.
2. The index (`get_checkpoint_shard_files` in utils/hub.py): JSON with
   `index["weight_map"]` (tensor -> shard file name, relative to the
   directory) and `index["metadata"]` (a dict; it is read unconditionally, so
   a missing key is a KeyError); shard_filenames = sorted(set(weight_map
   values)), each joined to the directory and opened. `total_size` is what
   `save_pretrained` writes in metadata (the sum of the tensors' bytes);
   accelerate/from_pretrained use it for sizing, so it must be right.
3. Every safetensors file (`load_state_dict` in modeling_utils.py):
   `metadata = f.metadata()`; `if metadata is not None and
   metadata.get("format") not in ["pt", "tf", "flax", "mlx"]: raise OSError(
   "... does not contain the valid metadata ...")`. Its dtypes must be in
   `str_to_torch_dtype` (BOOL U8 I8 I16 I32 I64 F16 BF16 F32 F64 ...); floats
   of a merged model here must be F32, F16 or BF16.
4. The safetensors format itself (safetensors' `SafeOpen`/`validate`): an
   8-byte little-endian header length N, a JSON header of N bytes, tensors
   with dtype, shape and data_offsets [begin, end) relative to the data,
   contiguous, without holes or overlaps, covering the data section exactly,
   and end - begin == numel * itemsize.
5. The config (`PretrainedConfig._dict_from_json_file` via
   `get_config_dict`): `config.json` is present and parses as a JSON object;
   `architectures` (what AutoModel and FusionBench read) is a non-empty list of
   strings; `torch_dtype` (or the newer `dtype`), when present, names the
   weights' float dtype.
6. Sharded loading (`_load_pretrained_model`): the union of the shards'
   tensors is exactly the weight_map's keys, each in the shard it is mapped to.

usage: hf_rules.py DIR|FILE.safetensors [--dtype F32|F16|BF16] [--quiet]
Exit 0 when every rule holds, 1 otherwise (each violation printed).
"""
import json
import os
import struct
import sys

FORMATS = ["pt", "tf", "flax", "mlx"]  # modeling_utils.load_state_dict
STR_TO_TORCH = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
                "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
FLOATS_OK = {"F32", "F16", "BF16"}
TORCH_NAME = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
CONFIG_NAME = "config.json"


class Rules:
    def __init__(self):
        self.errors = []

    def fail(self, msg):
        self.errors.append(msg)

    def safetensors(self, path):
        """Rules 3 and 4: returns {name: (dtype, shape, nbytes)} or None."""
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            self.fail(f"{path}: cannot open: {e}")
            return None
        if len(raw) < 8:
            self.fail(f"{path}: shorter than the 8-byte header length")
            return None
        (n,) = struct.unpack("<Q", raw[:8])
        if 8 + n > len(raw):
            self.fail(f"{path}: header length {n} runs past the file")
            return None
        try:
            hdr = json.loads(raw[8:8 + n].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self.fail(f"{path}: header is not JSON: {e}")
            return None
        meta = hdr.pop("__metadata__", None)
        if meta is not None and (not isinstance(meta, dict) or meta.get("format") not in FORMATS):
            self.fail(f"{path}: does not contain the valid metadata (load_state_dict: "
                      f"__metadata__ format {None if not isinstance(meta, dict) else meta.get('format')!r} "
                      f"not in {FORMATS})")
        data = len(raw) - 8 - n
        spans, out = [], {}
        for name, e in hdr.items():
            dt, shape, off = e.get("dtype"), e.get("shape"), e.get("data_offsets")
            if dt not in STR_TO_TORCH:
                self.fail(f"{path}: tensor {name!r}: dtype {dt!r} unknown to transformers")
                continue
            if dt.startswith(("F", "BF")) and dt not in FLOATS_OK:
                self.fail(f"{path}: tensor {name!r}: float dtype {dt} is not F32, F16 or BF16")
            numel = 1
            for d in shape:
                numel *= d
            if not (isinstance(off, list) and len(off) == 2 and 0 <= off[0] <= off[1]):
                self.fail(f"{path}: tensor {name!r}: bad data_offsets {off}")
                continue
            if off[1] - off[0] != numel * STR_TO_TORCH[dt]:
                self.fail(f"{path}: tensor {name!r}: {off[1] - off[0]} bytes for shape {shape} {dt}")
            spans.append((off[0], off[1], name))
            out[name] = (dt, tuple(shape), off[1] - off[0])
        spans.sort()
        pos = 0
        for b, e, name in spans:
            if b != pos:
                self.fail(f"{path}: tensor {name!r} starts at {b}, not {pos} (hole or overlap)")
            pos = e
        if pos != data:
            self.fail(f"{path}: tensors cover {pos} of the {data} data bytes")
        return out

    def index(self, d):
        """Rules 2 and 6: returns {name: (dtype, shape, nbytes)}."""
        p = os.path.join(d, SAFE_WEIGHTS_INDEX_NAME)
        try:
            with open(p) as f:
                index = json.loads(f.read())
        except (OSError, json.JSONDecodeError) as e:
            self.fail(f"{p}: cannot read as JSON: {e}")
            return {}
        if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
            self.fail(f"{p}: no weight_map object (get_checkpoint_shard_files)")
            return {}
        md = index.get("metadata")
        if not isinstance(md, dict):
            self.fail(f"{p}: no metadata object (get_checkpoint_shard_files reads index['metadata'])")
            md = {}
        wm = index["weight_map"]
        tensors, total = {}, 0
        for shard in sorted(set(wm.values())):
            if not isinstance(shard, str) or os.path.isabs(shard) or ".." in shard.split("/"):
                self.fail(f"{p}: weight_map value {shard!r} is not a file name in the directory")
                continue
            t = self.safetensors(os.path.join(d, shard))
            if t is None:
                continue
            mine = {k for k, v in wm.items() if v == shard}
            if set(t) != mine:
                self.fail(f"{p}: shard {shard} holds {sorted(set(t) - mine)[:5]} not mapped to it "
                          f"and lacks {sorted(mine - set(t))[:5]}")
            for k, v in t.items():
                total += v[2]
                tensors[k] = v
        if md.get("total_size") != total:
            self.fail(f"{p}: metadata total_size {md.get('total_size')!r} != {total} bytes of tensors")
        return tensors

    def config(self, d, dtype):
        """Rule 5."""
        p = os.path.join(d, CONFIG_NAME)
        try:
            with open(p) as f:
                cfg = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            self.fail(f"{p}: missing or not JSON: {e}")
            return
        if not isinstance(cfg, dict):
            self.fail(f"{p}: not a JSON object")
            return
        a = cfg.get("architectures")
        if not (isinstance(a, list) and a and all(isinstance(x, str) for x in a)):
            self.fail(f"{p}: 'architectures' is not a non-empty list of class names")
        for key in ("torch_dtype", "dtype"):
            if key in cfg and dtype and cfg[key] != TORCH_NAME[dtype]:
                self.fail(f"{p}: {key} {cfg[key]!r} but the weights are {TORCH_NAME[dtype]}")

    def model_dir(self, d, want_dtype=None):
        """Rule 1, then the rest; returns the tensors."""
        if os.path.isfile(os.path.join(d, SAFE_WEIGHTS_NAME)):
            tensors = self.safetensors(os.path.join(d, SAFE_WEIGHTS_NAME)) or {}
        elif os.path.isfile(os.path.join(d, SAFE_WEIGHTS_INDEX_NAME)):
            tensors = self.index(d)
        else:
            self.fail(f"{d}: neither {SAFE_WEIGHTS_NAME} nor {SAFE_WEIGHTS_INDEX_NAME}")
            return {}
        floats = {v[0] for v in tensors.values() if v[0] in FLOATS_OK}
        dtype = None
        if floats:
            by = {}
            for v in tensors.values():
                if v[0] in FLOATS_OK:
                    by[v[0]] = by.get(v[0], 0) + v[2]
            dtype = max(by, key=by.get)
        if want_dtype and floats != {want_dtype}:
            self.fail(f"{d}: float dtypes {sorted(floats)}, expected {want_dtype}")
        self.config(d, dtype)
        return tensors


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    want = None
    if "--dtype" in argv:
        want = argv[argv.index("--dtype") + 1]
        args.remove(want)
    if len(args) != 1:
        print(__doc__)
        return 2
    r = Rules()
    target = args[0]
    if os.path.isdir(target):
        t = r.model_dir(target, want)
    else:
        t = r.safetensors(target) or {}
    for e in r.errors:
        print("hf_rules: " + e)
    if "--quiet" not in argv:
        print(f"hf_rules: {target}: {len(t)} tensors, {len(r.errors)} violation(s)")
    return 1 if r.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
