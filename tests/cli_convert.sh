#!/bin/bash
# larv convert / larv inspect from the command line: round trips through all
# three formats at 1 and 2 ranks (cmp of the safetensors bytes), inspect output,
# and a malformed file. Env: LARV, MPIEXEC (see tests/CMakeLists.txt).
set -u
: "${LARV:?LARV must point at the larv binary}"
MPIEXEC=${MPIEXEC:-mpirun --oversubscribe}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

tmp=$(mktemp -d /tmp/larv_cli_convert.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2

# A small safetensors input in HF layout (JSON not in our canonical form).
"$PY" - <<'PY'
import json, struct, random
random.seed(7)
tensors = {
    "vision_model.embeddings.patch_embedding.weight": ("F32", [4, 3, 2, 2]),
    "vision_model.encoder.layers.0.self_attn.q_proj.weight": ("F16", [8, 8]),
    "vision_model.encoder.layers.0.self_attn.q_proj.bias": ("BF16", [8]),
    "vision_model.encoder.layers.1.mlp.fc1.weight": ("F32", [16, 8]),
    "vision_model.encoder.layers.1.mlp.fc1.bias": ("F64", [16]),
    "vision_model.post_layernorm.weight": ("F32", [8]),
    "visual/projection": ("F32", [8, 4]),
    "position_ids": ("I64", [1, 7]),
    "logit_scale": ("F32", []),
}
size = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8}
hdr, blobs, off = {"__metadata__": {"format": "pt", "source": "cli test"}}, [], 0
for name in reversed(sorted(tensors)):          # data order differs from name order
    dt, shape = tensors[name]
    n = 1
    for d in shape:
        n *= d
    b = bytes(random.getrandbits(8) for _ in range(n * size[dt]))
    hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open("in.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
[ -f in.safetensors ] || { echo "could not create the input"; exit 2; }

# same tensor bytes and metadata in two safetensors files (any layout)
same_tensors() {
    "$PY" - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", {})
    return meta, {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
a, b = load(sys.argv[1]), load(sys.argv[2])
sys.exit(0 if a == b else 1)
PY
}

for np in 1 2; do
    run="$MPIEXEC -np $np $LARV"
    d=np$np
    mkdir -p $d
    check "np$np convert st->st" $run convert in.safetensors $d/s1.safetensors
    check "np$np st->st same tensors" same_tensors in.safetensors $d/s1.safetensors
    check "np$np convert st->h5" $run convert $d/s1.safetensors $d/a.h5
    check "np$np convert h5->sharded" $run convert $d/a.h5 $d/b.safetensors.index.json --shard-size 300
    nshards=$(ls $d/b-0000*-of-*.safetensors 2>/dev/null | wc -l)
    check "np$np >= 2 shards (got $nshards)" [ "$nshards" -ge 2 ]
    check "np$np convert sharded->st" $run convert $d/b.safetensors.index.json $d/c.safetensors
    check "np$np cmp st -> h5 -> sharded -> st" cmp $d/s1.safetensors $d/c.safetensors
    check "np$np convert sharded->h5" $run convert $d/b.safetensors.index.json $d/d.hdf5
    check "np$np convert h5->st" $run convert $d/d.hdf5 $d/e.safetensors
    check "np$np cmp sharded -> h5 -> st" cmp $d/s1.safetensors $d/e.safetensors
    check "np$np no temporaries left" [ -z "$(ls $d | grep larv-tmp)" ]
    check "np$np inspect" $run inspect $d/a.h5 > $d/inspect.txt
    check "np$np inspect: tensor name" grep -q "vision_model.encoder.layers.1.mlp.fc1.weight" $d/inspect.txt
    check "np$np inspect: slash name" grep -q "visual/projection" $d/inspect.txt
    check "np$np inspect: block group" grep -Eq "layers\.1\.mlp\.fc1\.weight +F32 +\[16, 8\] +512 +1$" $d/inspect.txt
    check "np$np inspect: embed group" grep -Eq "patch_embedding.weight .* embed$" $d/inspect.txt
    check "np$np inspect: blocks" grep -Eq "blocks \(L\): 2$" $d/inspect.txt
    check "np$np inspect: printed once" [ "$(grep -c '^format:' $d/inspect.txt)" = 1 ]
done

# inspect --json
check "inspect --json" "$LARV" inspect np1/b.safetensors.index.json --json > j.json
check "inspect --json parses" "$PY" -c '
import json, sys
j = json.load(open("j.json"))
assert j["format"] == "sharded-safetensors", j["format"]
assert j["n_tensors"] == 9 and j["blocks"] == 2
t = {x["name"]: x for x in j["tensors"]}
assert t["vision_model.encoder.layers.0.self_attn.q_proj.weight"]["group"] == "0"
assert t["logit_scale"]["shape"] == [] and t["logit_scale"]["bytes"] == 4
assert j["metadata"]["source"] == "cli test"
assert j["group_rule"]
'
check "inspect --help" "$LARV" inspect --help > help.txt
check "inspect --help has an example" grep -q "larv inspect" help.txt
check "convert --help" "$LARV" convert --help > help2.txt
check "convert --help has an example" grep -q "larv convert model.safetensors model.h5" help2.txt

# malformed input: non-zero exit, the file name on stderr, output not created
head -c 100 in.safetensors > broken.safetensors
"$LARV" convert broken.safetensors out.h5 2> err.txt
rc=$?
check "malformed: exit 65 (got $rc)" [ $rc -eq 65 ]
check "malformed: file named" grep -q "broken.safetensors" err.txt
check "malformed: no output" [ ! -e out.h5 ]
$MPIEXEC -np 2 "$LARV" inspect broken.safetensors > out.txt 2> err2.txt
rc=$?
check "malformed inspect np2: non-zero (got $rc)" [ $rc -ne 0 ]
check "malformed inspect: message" grep -q "larv inspect: .*broken.safetensors" err2.txt
"$LARV" inspect nothere.h5 2> err3.txt
check "missing: exit 66" [ $? -eq 66 ]
"$LARV" convert in.safetensors out.txt 2> /dev/null
check "bad extension: exit 64" [ $? -eq 64 ]
# an earlier output survives a failed convert
cp np1/a.h5 keep.h5
"$LARV" convert broken.safetensors keep.h5 2> /dev/null
check "failed convert keeps the earlier file" cmp keep.h5 np1/a.h5

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
