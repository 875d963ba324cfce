#!/usr/bin/python3
"""Independent reference cases for tests/test_reference.c.

Written in torch/numpy, mirroring FusionBench's code paths
(fusion_bench/method/task_singular_vector: compute_and_sum_svd_mem_reduction,
fusion_bench/method/isotropic_merging: iso_c / iso_cts, fusion_bench/method/ties_merging:
topk_values_mask / resolve_sign / disjoint_merge) in float64 with
torch.linalg.svd(full_matrices=False), and LARV's proxies and scales as the spec
defines them. Run:  /usr/bin/python3 tests/reference/make_cases.py
It writes tests/data/ref_cases.bin:

  file    := "LARVREF1" u32 ncases record*
  record  := u32 kind u32 nparams u32 params[nparams] u32 narrays array*
  array   := u64 len f64 data[len]
(all little-endian). Kinds and their params/arrays:
  1 TSV      params m n T          arrays tau(T*m*n) alpha(T or 0) M(m*n)
  2 ISO_C    params m n T          arrays tau M
  3 ISO_CTS  params m n T          arrays f(1) tau M
  4 PROXY    params m n T          arrays W0 tau e(T) c(T)
  5 TIES     params D T mode       arrays k(1) tau(T*D, float32 values) thr(T) majority(1) M(D)
             (mode 0 sum, 1 mean, 2 max; majority = FusionBench's sign of the sum of signs)
  6 LARV     params L rule         arrays opts(6: eta rho gamma s_low s_mid s_high)
                                   e(L) c(L) chat(L) score(L) scale(L)
             (rule: 0 off, 1 tiered2, 2 tiered3, 3 continuous, 4 depth)
"""
import os
import struct

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "ref_cases.bin")
records = []


def rec(kind, params, arrays):
    b = struct.pack("<II", kind, len(params)) + struct.pack("<%dI" % len(params), *params)
    b += struct.pack("<I", len(arrays))
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, dtype="<f8").ravel())
        b += struct.pack("<Q", a.size) + a.tobytes()
    records.append(b)


# ---- TSV-M (compute_and_sum_svd_mem_reduction, one 2-D key) ----------------
def tsv(taus, alpha=None):
    T = len(taus)
    sv_reduction = 1 / T
    for i, vec in enumerate(taus):
        if alpha is not None:
            vec = vec * alpha[i]
        u, s, v = torch.linalg.svd(vec, full_matrices=False)
        if i == 0:
            sum_u = torch.zeros_like(u)
            sum_s = torch.zeros_like(s)
            sum_v = torch.zeros_like(v)
        reduced_index_s = int(s.shape[0] * sv_reduction)
        sum_u[:, i * reduced_index_s:(i + 1) * reduced_index_s] = u[:, :reduced_index_s]
        sum_s[i * reduced_index_s:(i + 1) * reduced_index_s] = s[:reduced_index_s]
        sum_v[i * reduced_index_s:(i + 1) * reduced_index_s, :] = v[:reduced_index_s, :]
    u_u, s_u, v_u = torch.linalg.svd(sum_u, full_matrices=False)
    u_v, s_v, v_v = torch.linalg.svd(sum_v, full_matrices=False)
    return torch.linalg.multi_dot((u_u, v_u, torch.diag(sum_s), u_v, v_v))


# ---- Iso-C ------------------------------------------------------------------
def iso_c(taus):
    combined = sum(taus)
    u, s, v = torch.linalg.svd(combined, full_matrices=False)
    s_iso = torch.ones_like(s) * s.mean()
    return torch.linalg.multi_dot((u, torch.diag(s_iso), v))


# ---- Iso-CTS ----------------------------------------------------------------
def iso_cts(taus, common_space_fraction):
    shape_ = taus[0].shape
    combined_w = sum(taus)
    common_space_index_s = int(min(shape_) * common_space_fraction)
    _task_specific_total_space_index_s = round((min(shape_) - common_space_index_s) / len(taus)) * len(taus)
    common_space_index_s = min(shape_) - _task_specific_total_space_index_s
    u, s, v = torch.linalg.svd(combined_w, full_matrices=False)
    common_space_u = u[:, :common_space_index_s]
    common_space_s = s[:common_space_index_s]
    common_space_v = v[:common_space_index_s, :]
    n_dims_per_task = int((min(shape_) - common_space_index_s) / len(taus))
    for i, w in enumerate(taus):
        w_ts = w - common_space_u @ common_space_u.T @ w
        u_ts, s_ts, v_ts = torch.linalg.svd(w_ts, full_matrices=False)
        if i == 0:
            combined_space_u = torch.zeros_like(u_ts)
            combined_space_s = torch.zeros_like(s_ts)
            combined_space_v = torch.zeros_like(v_ts)
        combined_space_u[:, i * n_dims_per_task:(i + 1) * n_dims_per_task] = u_ts[:, :n_dims_per_task]
        combined_space_s[i * n_dims_per_task:(i + 1) * n_dims_per_task] = s_ts[:n_dims_per_task]
        combined_space_v[i * n_dims_per_task:(i + 1) * n_dims_per_task, :] = v_ts[:n_dims_per_task, :]
    T = len(taus)
    a, b = T * n_dims_per_task, T * n_dims_per_task + common_space_index_s
    combined_space_u[:, a:b] = common_space_u
    combined_space_s[a:b] = common_space_s
    combined_space_v[a:b, :] = common_space_v
    u1, _, v1 = torch.linalg.svd(combined_space_u, full_matrices=False)
    u2, _, v2 = torch.linalg.svd(combined_space_v, full_matrices=False)
    combined_space_u = u1 @ v1
    combined_space_v = u2 @ v2
    combined_space_s = torch.ones_like(combined_space_s) * combined_space_s.mean()
    return torch.linalg.multi_dot((combined_space_u, torch.diag(combined_space_s), combined_space_v))


# ---- LARV proxies -------------------------------------------------------------
def reff(A):
    s = torch.linalg.svdvals(A)
    p = s ** 2 / (s ** 2).sum()
    p = p[p > 0]
    return float(torch.exp(-(p * torch.log(p)).sum()))


def conflict(W, D):
    l = torch.linalg.norm(W @ D.T - D @ W.T)
    r = torch.linalg.norm(W.T @ D - D.T @ W)
    return float(0.5 * (l + r) / (torch.linalg.norm(W) * torch.linalg.norm(D) + 1e-10))


# ---- TIES (float32 trimming as FusionBench; election and merge in float64) ---
def topk_values_mask(M, K):
    n, d = M.shape
    k = int(d * K)
    k = d - k
    kth_values, _ = M.abs().kthvalue(k, dim=1, keepdim=True)
    mask = M.abs() >= kth_values
    return M * mask, kth_values.squeeze(1)


def resolve_sign(t):
    sign_to_mult = torch.sign(t.sum(dim=0))
    majority_sign = torch.sign(sign_to_mult.sum())
    sign_to_mult[sign_to_mult == 0] = majority_sign
    return sign_to_mult, float(majority_sign)


def disjoint_merge(t, merge_func, sign_to_mult):
    rows_to_keep = torch.where(sign_to_mult.unsqueeze(0) > 0, t > 0, t < 0)
    selected = t * rows_to_keep
    if merge_func == "mean":
        cnt = (selected != 0).sum(dim=0).double()
        return selected.sum(dim=0) / torch.clamp(cnt, min=1)
    if merge_func == "sum":
        return selected.sum(dim=0)
    agg = selected.abs().max(dim=0)[0]
    return agg * sign_to_mult


# ---- LARV scores/scales ---------------------------------------------------------
def larv_scales(e, c, rule, o):
    eta, rho, gamma, s_low, s_mid, s_high = o
    L = len(e)
    e = torch.tensor(e)
    c = torch.tensor(c)
    std = float(c.std(unbiased=False))
    chat = (c - c.mean()) / (std if std >= 1e-8 else 1.0)
    d = torch.arange(1, L + 1, dtype=torch.float64) / L
    a = e ** eta * d ** rho / (1 + torch.nn.functional.softplus(chat))
    an = a.numpy()
    if rule == 0:
        s = np.ones(L)
    elif rule == 1:
        q = np.quantile(an, 0.5)
        s = np.where(an <= q, s_low, s_high)
    elif rule == 2:
        q1, q2 = np.quantile(an, 1 / 3), np.quantile(an, 2 / 3)
        s = np.where(an <= q1, s_low, np.where(an <= q2, s_mid, s_high))
    elif rule == 3:
        s = 1 + 0.5 * np.tanh(gamma * (an - 1))
    else:
        s = s_low + (s_high - s_low) * np.arange(L) / (L - 1)
    return chat.numpy(), an, s


def main():
    g = torch.Generator().manual_seed(20260214)

    def rn(*shape):
        return torch.randn(*shape, generator=g)

    shapes = [(12, 7, 2), (7, 12, 3), (9, 9, 4), (12, 7, 3), (7, 12, 2), (9, 9, 2)]
    for m, n, T in shapes:
        taus = [rn(m, n) for _ in range(T)]
        tau = torch.stack(taus).numpy()
        rec(1, [m, n, T], [tau, [], tsv(taus).numpy()])
        alpha = [0.5 + 0.4 * i for i in range(T)]
        rec(1, [m, n, T], [tau, alpha, tsv(taus, alpha).numpy()])
        rec(2, [m, n, T], [tau, iso_c(taus).numpy()])
        for f in (0.8, 0.5):
            rec(3, [m, n, T], [[f], tau, iso_cts(taus, f).numpy()])
        W0 = rn(m, n)
        rec(4, [m, n, T], [W0.numpy(), tau, [reff(W0) / (reff(t) + 1e-8) for t in taus],
                           [conflict(W0, t) for t in taus]])
    # rank-deficient tasks (rank 4 < r = 7, still >= k): TSV-M and the proxies are defined
    for m, n, T in [(12, 7, 2), (7, 12, 3)]:
        taus = [rn(m, 4) @ rn(4, n) for _ in range(T)]
        tau = torch.stack(taus).numpy()
        rec(1, [m, n, T], [tau, [], tsv(taus).numpy()])
        W0 = rn(m, 3) @ rn(3, n)
        rec(4, [m, n, T], [W0.numpy(), tau, [reff(W0) / (reff(t) + 1e-8) for t in taus],
                           [conflict(W0, t) for t in taus]])
    # TIES over a few named tensors, flattened in name order (state_dict_to_vector)
    names = {"b.weight": (6, 5), "a.bias": (7,), "c.weight": (4, 4), "a.weight": (3, 8)}
    for T, mode, k in [(3, "sum", 0.2), (4, "mean", 0.2), (3, "max", 0.35), (2, "sum", 0.5)]:
        flats = []
        for t in range(T):
            sd = {nm: (rn(*shp) * 0.01).float() for nm, shp in names.items()}
            # a few exact duplicates of magnitude and exact cancellations
            sd["a.bias"][0] = 0.0125 if t % 2 == 0 else -0.0125
            sd["a.bias"][1] = 0.02
            flats.append(torch.cat([sd[nm].reshape(-1) for nm in sorted(sd)]))
        flat = torch.stack(flats)  # float32, T x D
        trimmed, thr = topk_values_mask(flat, k)
        t64 = trimmed.double()
        signs, majority = resolve_sign(t64)
        M = disjoint_merge(t64, mode, signs)
        rec(5, [flat.shape[1], T, ["sum", "mean", "max"].index(mode)],
            [[k], flat.double().numpy(), thr.double().numpy(), [majority], M.numpy()])
    # LARV scales, L = 7
    L = 7
    e = [1.8, 2.4, 0.9, 3.1, 2.2, 1.2, 2.9]
    c = [0.41, 0.38, 0.52, 0.33, 0.47, 0.36, 0.44]
    o = [1.0, 0.5, 3.0, 0.5, 1.0, 1.2]
    for rule in range(5):
        chat, a, s = larv_scales(e, c, rule, o)
        rec(6, [L, rule], [o, e, c, chat, a, s])
    o2 = [0.7, 1.0, 2.0, 0.3, 0.9, 1.5]
    for rule in (2, 3):
        chat, a, s = larv_scales(e, c, rule, o2)
        rec(6, [L, rule], [o2, e, c, chat, a, s])

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(b"LARVREF1" + struct.pack("<I", len(records)))
        for b in records:
            f.write(b)
    print("wrote %d cases to %s (%d bytes)" % (len(records), os.path.normpath(OUT),
                                                os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
