#!/usr/bin/env bash
# LARV per stack (spec "Layers"): a two-tower model's text and vision blocks are
# separate stacks, each with its own depth, standardisation, quantiles, embed and
# head. Checked against
#   - a hand computation: a tiny two-stack pool built so that every block's e and
#     c are known in closed form; the report's proxies, scores and scales (tiered3
#     and continuous) are compared with the values worked out below;
#   - T5-style names (encoder.block.N.layer.K. is block N of stack encoder.block);
#   - `larv inspect` (text and --json) and the report's `stack` field;
#   - a two-tower pool laid out as the Hub's (tests/hub/make_hub_pool.py
#     --two-tower) merged at 1, 2 and 3 ranks against tests/reference/merge_ref.py,
#     1 and 3 ranks byte-identical;
#   - STACK=GLOB overrides and the refusal of an unknown stack.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
$PY -c 'import numpy' || { echo "python3-numpy is needed (bash .ci/deps.sh test installs it)"; exit 1; }
REF="$PY $LARV_SRC/tests/reference/merge_ref.py"

# ---- the hand pool -------------------------------------------------------------
# Every block has one 2x2 proxy matrix (mlp.fc1, LARV's default proxy). With
# E_ij the unit matrices, x = 0.5, eps = 1e-8, r_eff(E11) = 1, r_eff(I) = 2,
# r_eff(any rank-1 update) = 1, r_eff(x I) = 2, e = r_eff(W0) / (r_eff(D) + eps) and
# c = (||W0 D' - D W0'|| + ||W0' D - D' W0||) / (2 ||W0|| ||D||):
#   W0 = I,   D = x E11:         e = 2/(1+eps), c = 0   (commutes)
#   W0 = I,   D = x E12:         e = 2/(1+eps), c = (x√2 + x√2) / (2 √2 x) = 1
#   W0 = I,   D = x I:           e = 2/(2+eps), c = 0
#   W0 = E11, D = x E12:         e = 1/(1+eps), c = (0 + x√2) / (2 x)     = √2/2
#   W0 = E11, D = x E22:         e = 1/(1+eps), c = 0
#   W0 = E11, D = x (E12 + E22): e = 1/(1+eps), c = (0 + x√2) / (2 x√2)   = 1/2
# Blocks (task 1 update, task 2 update) -> block means e_l, c_l:
#   text 0:   W0 = I,   x E11, x E12             e = 2/(1+eps)               c = 1/2
#   text 1:   W0 = E11, x E12, x E22             e = 1/(1+eps)               c = √2/4
#   vision 0: W0 = I,   x I,   x E11             e = (2/(2+eps)+2/(1+eps))/2 c = 0
#   vision 1: W0 = E11, x(E12+E22) twice         e = 1/(1+eps)               c = 1/2
#   vision 2: W0 = I,   x E12 twice              e = 2/(1+eps)               c = 1
# Text stack (L = 2, d = 1/2, 1): c mean (1/2+√2/4)/2, population std (1/2-√2/4)/2,
#   so chat = +1, -1; score a = e √d / (1 + softplus(chat)):
#   a0 = 2 √(1/2) / (1 + ln(1+e))  = 0.611350439   a1 = 1 / (1 + ln(1+1/e)) = 0.761462852
#   tiered3 (two scores: a0 <= q1, a1 > q2): 0.5, 1.2
#   continuous 1 + tanh(3 (a-1)) / 2: 0.588515463, 0.692908216
# Vision stack (L = 3, d = 1/3, 2/3, 1): c = 0, 1/2, 1: mean 1/2, std √(1/6), chat = -√1.5, 0, √1.5
#   a0 = 1.5 √(1/3) / (1 + softplus(-√1.5)) = 0.688628571
#   a1 = √(2/3) / (1 + ln 2)                 = 0.482236029
#   a2 = 2 / (1 + softplus(√1.5))            = 0.805686938
#   tiered3: q1 = 0.482236 + (2/3)(0.688629 - 0.482236) = 0.619831, q2 = 0.688629 + (1/3)(0.805687 - 0.688629)
#   = 0.727648: a1 -> 0.5, a0 -> 1.0, a2 -> 1.2
#   continuous: 0.633746824, 0.542836494, 0.737600795
# (Pooled into one stack of 3 blocks, as before stacks, text block 1 would have had d = 2/3
# and shared its standardisation with vision block 1: other numbers.)
$PY - "$work/hand" "$LARV_SRC/tests/hub" <<'EOF'
import os, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from make_hub_pool import write_safetensors
out = sys.argv[1]
x = 0.5
I, Z = np.eye(2, dtype=np.float32), np.zeros((2, 2), np.float32)
def E(i, j):
    m = Z.copy(); m[i - 1, j - 1] = 1; return m
E11, E12, E22 = E(1, 1), E(1, 2), E(2, 2)
blocks = {  # name: (W0, task 1 update, task 2 update)
    "text_model.encoder.layers.0.mlp.fc1.weight": (I, x * E11, x * E12),
    "text_model.encoder.layers.1.mlp.fc1.weight": (E11, x * E12, x * E22),
    "vision_model.encoder.layers.0.mlp.fc1.weight": (I, x * I, x * E11),
    "vision_model.encoder.layers.1.mlp.fc1.weight": (E11, x * (E12 + E22), x * (E12 + E22)),
    "vision_model.encoder.layers.2.mlp.fc1.weight": (I, x * E12, x * E12),
}
others = {  # outside blocks, not fine-tuned: the groups they land in are checked
    "text_model.embeddings.token_embedding.weight": np.full((3, 2), 0.25, np.float32),
    "text_model.final_layer_norm.weight": np.ones(2, np.float32),
    "text_projection.weight": I,
    "vision_model.post_layernorm.weight": np.ones(2, np.float32),
    "visual_projection.weight": I,
    "logit_scale": np.array(2.5, np.float32),
}
os.makedirs(out)
for k, name in enumerate(["base", "task1", "task2"]):
    t = {n: (v, "F32") for n, v in others.items()}
    for n, (w0, d1, d2) in blocks.items():
        t[n] = (w0 + (0 if k == 0 else d1 if k == 1 else d2), "F32")
    write_safetensors(os.path.join(out, name + ".safetensors"), t)
EOF
hand=(--base "$work/hand/base.safetensors" --task "$work/hand/task1.safetensors"
      --task "$work/hand/task2.safetensors")
check_hand() { # rule, report: the report's layer table against the hand values above
  $PY - "$1" "$2" <<'EOF'
import json, math, sys
rule, rep = sys.argv[1], json.load(open(sys.argv[2]))
eps = 1e-8
T, V = "text_model.encoder.layers", "vision_model.encoder.layers"
want = {  # (stack, group): matrices, e, c, chat, score, tiered3, continuous
    (T, "embed"): (1,), (T, "0"): (1, 2 / (1 + eps), 0.5, 1.0, 0.611350439, 0.5, 0.588515463),
    (T, "1"): (1, 1 / (1 + eps), math.sqrt(2) / 4, -1.0, 0.761462852, 1.2, 0.692908216),
    (T, "head"): (1,),  # text_projection (name hint) with the final layer norm
    (V, "embed"): (0,),
    (V, "0"): (1, (2 / (2 + eps) + 2 / (1 + eps)) / 2, 0.0, -math.sqrt(1.5), 0.688628571, 1.0, 0.633746824),
    (V, "1"): (1, 1 / (1 + eps), 0.5, 0.0, 0.482236029, 0.5, 0.542836494),
    (V, "2"): (1, 2 / (1 + eps), 1.0, math.sqrt(1.5), 0.805686938, 1.2, 0.737600795),
    (V, "head"): (1,),  # visual_projection (name hint), post_layernorm
    ("model", "embed"): (0,), ("model", "head"): (0,),  # logit_scale: the model level
}
got = [(l["stack"], l["name"]) for l in rep["layers"]]
bad = []
if got != list(want):
    bad.append("layer order %s" % got)
for l in rep["layers"]:
    w = want.get((l["stack"], l["name"]))
    if w is None:
        continue
    if l["matrices"] != w[0]:
        bad.append("%s %s: %d matrices, want %d" % (l["stack"], l["name"], l["matrices"], w[0]))
    if len(w) == 1:
        if l["scale"] != 1.0 or l["score"] is not None:
            bad.append("%s %s: scale %s score %s, want 1, none" % (l["stack"], l["name"], l["scale"], l["score"]))
        continue
    scale = w[5] if rule == "tiered3" else w[6]
    for key, v, tol in (("effective_rank_contrast", w[1], 1e-9), ("conflict", w[2], 1e-9),
                        ("conflict_z", w[3], 1e-7), ("score", w[4], 1e-8), ("scale", scale, 1e-8)):
        if l[key] is None or abs(l[key] - v) > tol * max(1, abs(v)):
            bad.append("%s %s %s: larv %s, hand %s" % (l["stack"], l["name"], key, l[key], v))
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
}
for run in tiered3:1 tiered3:3 continuous:2; do
  rule=${run%:*} np=${run#*:}
  {
    out="$work/hand-$rule-$np.safetensors"
    if $MPIEXEC -np $np $LARV merge "${hand[@]}" --method ta --larv $rule --out "$out" \
         --report "$work/hand-$rule-$np.json" --quiet >"$work/log" 2>&1 \
       && check_hand $rule "$work/hand-$rule-$np.json" \
       && $REF "${hand[@]}" --method ta --larv $rule --merged "$out" --report "$work/hand-$rule-$np.json" >/dev/null
    then ok; else bad "hand pool, $rule, $np ranks"; cat "$work/log"; fi
  }
done
# the merged values by hand too: TA, lambda 0.3, tiered3: text block 1 scaled by 1.2,
# so W = E11 + 0.3 * 1.2 * x (E12 + E22) = [[1, 0.18], [0, 0.18]]
if $PY - "$work/hand-tiered3-1.safetensors" <<'EOF'
import json, struct, sys
import numpy as np
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); d = f.read()
v = h["text_model.encoder.layers.1.mlp.fc1.weight"]
w = np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], "<f4").reshape(2, 2)
sys.exit(0 if np.allclose(w, [[1, 0.18], [0, 0.18]], rtol=0, atol=1e-7) else 1)
EOF
then ok; else bad "hand pool: merged text block 1"; fi

# ---- overrides ------------------------------------------------------------------
# STACK=GLOB moves logit_scale into the vision stack's head (no model level left);
# a plain GLOB only decides embed/head; an unknown stack is refused (64), naming the stacks
if $LARV merge "${hand[@]}" --method ta --out "$work/ovr.safetensors" --report "$work/ovr.json" --quiet \
     --head-pattern 'vision_model.encoder.layers=logit_scale' --embed-pattern 'text_projection.*' >"$work/log" 2>&1 \
   && $PY - "$work/ovr.json" <<'EOF'
import json, sys
L = {(l["stack"], l["name"]): l for l in json.load(open(sys.argv[1]))["layers"]}
T = "text_model.encoder.layers"
ok = ("model", "head") not in L and L[(T, "embed")]["matrices"] == 2 and L[(T, "head")]["matrices"] == 0
sys.exit(0 if ok else 1)
EOF
then ok; else bad "STACK=GLOB override"; cat "$work/log"; fi
set +e
$LARV merge "${hand[@]}" --method ta --out "$work/no.safetensors" --quiet --head-pattern 'vision=logit_scale' >"$work/log" 2>&1
rc=$?
set -e
if [ $rc = 64 ] && grep -q "'vision' is not a stack of this model" "$work/log" \
   && grep -q "'vision_model.encoder.layers'" "$work/log" && [ ! -e "$work/no.safetensors" ]; then ok
else bad "unknown stack: exit $rc"; cat "$work/log"; fi

# ---- inspect ---------------------------------------------------------------------
$LARV inspect "$work/hand/base.safetensors" >"$work/insp.txt"
if grep -q '^stack: *text_model.encoder.layers: 2 blocks; tensors: 1 embed, 2 in blocks, 2 head$' "$work/insp.txt" \
   && grep -q '^stack: *vision_model.encoder.layers: 3 blocks; tensors: 0 embed, 3 in blocks, 2 head$' "$work/insp.txt" \
   && grep -q '^stack: *model: 0 blocks; tensors: 0 embed, 0 in blocks, 1 head$' "$work/insp.txt" \
   && grep -q '^logit_scale .* model head$' "$work/insp.txt" \
   && grep -q '^visual_projection.weight .* vision_model.encoder.layers head$' "$work/insp.txt" \
   && grep -q '^blocks (L): 5$' "$work/insp.txt"; then ok; else bad "inspect text"; cat "$work/insp.txt"; fi
$LARV inspect "$work/hand/base.safetensors" --json --head-pattern 'model=visual_projection.*' >"$work/insp.json"
if $PY - "$work/insp.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in j["tensors"]}
ok = (j["stacks"] == [{"name": "text_model.encoder.layers", "blocks": 2},
                      {"name": "vision_model.encoder.layers", "blocks": 3}, {"name": "model", "blocks": 0}]
      and t["visual_projection.weight"]["stack"] == "model" and t["visual_projection.weight"]["group"] == "head"
      and t["vision_model.encoder.layers.2.mlp.fc1.weight"]["group"] == "2" and j["blocks"] == 5)
sys.exit(0 if ok else 1)
EOF
then ok; else bad "inspect --json"; cat "$work/insp.json"; fi

# ---- T5-style names: encoder.block.N.layer.K. is block N --------------------------
$PY - "$work/t5" "$LARV_SRC/tests/hub" <<'EOF'
import os, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from make_hub_pool import write_safetensors
out = sys.argv[1]; os.makedirs(out)
rng = np.random.default_rng(5)
names = ["shared.weight", "lm_head.weight", "encoder.final_layer_norm.weight",
         "decoder.final_layer_norm.weight", "encoder.embed_tokens.weight"]
for stack, L, ff in (("encoder", 3, 1), ("decoder", 2, 2)):
    for n in range(L):
        p = "%s.block.%d.layer." % (stack, n)
        names += [p + "0.SelfAttention.q.weight", p + "0.SelfAttention.k.weight",
                  p + "%d.DenseReluDense.wi.weight" % ff, p + "%d.DenseReluDense.wo.weight" % ff,
                  p + "0.layer_norm.weight"]
base = {n: rng.standard_normal(2 if "norm" in n else (6, 5)).astype(np.float32) for n in names}
write_safetensors(os.path.join(out, "base.safetensors"), {n: (v, "F32") for n, v in base.items()})
for k in range(3):
    t = {}
    for n, v in base.items():
        d = rng.standard_normal(v.shape).astype(np.float32) * 0.01
        if v.ndim == 2:
            d += np.outer(rng.standard_normal(v.shape[0]), rng.standard_normal(v.shape[1])).astype(np.float32) * 0.05
        t[n] = (v + d, "F32")
    write_safetensors(os.path.join(out, "task%d.safetensors" % k), t)
EOF
t5=(--base "$work/t5/base.safetensors" --task "$work/t5/task0.safetensors"
    --task "$work/t5/task1.safetensors" --task "$work/t5/task2.safetensors")
$LARV inspect "$work/t5/base.safetensors" --json >"$work/t5.json"
if $PY - "$work/t5.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
t = {x["name"]: (x["stack"], x["group"]) for x in j["tensors"]}
ok = (j["stacks"] == [{"name": "decoder.block", "blocks": 2}, {"name": "encoder.block", "blocks": 3},
                      {"name": "model", "blocks": 0}]
      and t["encoder.block.2.layer.1.DenseReluDense.wi.weight"] == ("encoder.block", "2")
      and t["encoder.block.0.layer.1.DenseReluDense.wo.weight"] == ("encoder.block", "0")
      and t["decoder.block.1.layer.2.DenseReluDense.wi.weight"] == ("decoder.block", "1")
      and t["decoder.block.1.layer.0.SelfAttention.q.weight"] == ("decoder.block", "1")
      and t["encoder.embed_tokens.weight"] == ("encoder.block", "embed")
      and t["decoder.final_layer_norm.weight"] == ("decoder.block", "head")
      and t["shared.weight"] == ("model", "head") and t["lm_head.weight"] == ("model", "head"))
sys.exit(0 if ok else 1)
EOF
then ok; else bad "T5 names in inspect"; cat "$work/t5.json" | head -50; fi
for m in "ta --larv tiered3" "tsv --larv continuous"; do
  out="$work/t5-${m%% *}.safetensors"
  if $MPIEXEC -np 2 $LARV merge "${t5[@]}" --method $m --out "$out" --report "$out.json" --quiet >"$work/log" 2>&1 \
     && $REF "${t5[@]}" --method $m --merged "$out" --report "$out.json" >/dev/null \
     && $PY -c 'import json,sys; L=json.load(open(sys.argv[1]))["layers"]; sys.exit(0 if [(l["stack"], l["name"]) for l in L if l["name"] not in ("embed","head")] == [("decoder.block","0"),("decoder.block","1"),("encoder.block","0"),("encoder.block","1"),("encoder.block","2")] else 1)' "$out.json"
  then ok; else bad "T5 merge ($m)"; cat "$work/log"; fi
done

# ---- one stack: the report's stack field ----------------------------------------
$LARV synth --arch tiny --tasks 2 --seed 3 --out "$work/tiny" --quiet
if $LARV merge --base "$work/tiny/base.safetensors" --task "$work/tiny/task01.safetensors" \
     --task "$work/tiny/task02.safetensors" --method ta --out "$work/tiny.safetensors" \
     --report "$work/tiny.json" --quiet >"$work/log" 2>&1 \
   && $PY -c 'import json,sys; L=json.load(open(sys.argv[1]))["layers"]; sys.exit(0 if {l["stack"] for l in L} == {"vision_model.encoder.layers"} and [l["name"] for l in L] == ["embed","0","1","2","3","head"] else 1)' "$work/tiny.json"
then ok; else bad "one-stack report"; cat "$work/log"; fi

# ---- a two-tower pool laid out as the Hub's -------------------------------------
# (both towers fine-tuned; the base holds the tasks' tensors; the model.safetensors
# files inside the directories are the inputs)
$PY "$LARV_SRC/tests/hub/make_hub_pool.py" "$work/hub" --two-tower --base-like-tasks --tasks 3 --layers 3 --text-layers 2
hub=(--base "$work/hub/base/model.safetensors" --task "$work/hub/sun397/model.safetensors"
     --task "$work/hub/stanford-cars/model.safetensors" --task "$work/hub/resisc45/model.safetensors")
# (each larv start costs seconds under ASan: TA at 1, 2 and 3 ranks, TIES (a global
# selection over both towers) at 1 and 3, Iso-C with the continuous rule at 2)
for run in ta:1 ta:2 ta:3 ties:1 ties:3 iso-c:2; do
  name=${run%:*} np=${run#*:} rule=tiered3
  [ $name = iso-c ] && rule=continuous
  out="$work/hub-$name-$np.safetensors"
  if $MPIEXEC -np $np $LARV merge "${hub[@]}" --method $name --larv $rule --out "$out" --report "$out.json" --quiet >"$work/log" 2>&1 \
     && $REF "${hub[@]}" --method $name --larv $rule --merged "$out" --report "$out.json" >/dev/null; then ok
  else bad "two-tower $name at $np ranks"; cat "$work/log"; $REF "${hub[@]}" --method $name --larv $rule --merged "$out" --report "$out.json" || true; fi
done
for name in ta ties; do
  if cmp -s "$work/hub-$name-1.safetensors" "$work/hub-$name-3.safetensors"; then ok
  else bad "two-tower $name: 1 and 3 ranks differ"; fi
done
if $PY -c 'import json,sys; L=json.load(open(sys.argv[1]))["layers"]; sys.exit(0 if [(l["stack"], l["name"]) for l in L] == [("text_model.encoder.layers", n) for n in ("embed","0","1","head")] + [("vision_model.encoder.layers", n) for n in ("embed","0","1","2","head")] else 1)' "$work/hub-ta-1.safetensors.json"
then ok; else bad "two-tower report stacks"; fi

finish
