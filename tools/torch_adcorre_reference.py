#!/usr/bin/python3
"""torch_adcorre_reference.py - an independent PyTorch (autograd, float64)
implementation of the Ad-Corre loss, and the generator of the fixtures in
spec/fixtures/adcorre/ that spec/adcorre_loss_spec.lua compares against.

It follows the definitions literally (numpy.corrcoef-style row correlation
with the same epsilon guard, |Omega - Phi| as written in the paper, per-class
means by boolean masks or numpy.average-style weights, masks by (1 - I)), so
it shares no algebra with the C kernels (which use U U^T products, the
identity sum_{i!=j}<u_i,u_j> = |sum u|^2 - sum |u|^2 and hand-written
gradients). Gradients come from torch.autograd.

Usage:
    /usr/bin/python3 tools/torch_adcorre_reference.py [--out spec/fixtures/adcorre]

Writes, per case N: caseN_logits.npy [B,C] f32, caseN_emb.npy [k,B,d] f32,
caseN_labels.npy [B] int64 (1-based), caseN_M.npy [C,C] f32 (the pinned
confusion matrix), caseN_grad_logits.npy, caseN_grad_emb.npy (f32, rounded
from the float64 reference), and cases.lua: a Lua table with each case's
options and the float64 values of every part and of each part's gradient norm.
A case may reuse another case's inputs ("inputs" field).
"""
import argparse
import os
import tempfile

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

MD_REFERENCE_WEIGHT = 1e-7


def corr_rows(X, eps):
    """Pearson correlation between the rows of X [..., n, m] (numpy.corrcoef),
    with the normaliser sqrt(|c|^2 + eps)."""
    c = X - X.mean(dim=-1, keepdim=True)
    s = torch.sqrt((c * c).sum(dim=-1, keepdim=True) + eps)
    u = c / s
    return u @ u.transpose(-1, -2)


def offdiag_mean(R):
    """mean over the last two dims of (1 - I) * (1 + R), then over the rest."""
    n = R.shape[-1]
    mask = 1.0 - torch.eye(n)
    return (mask * (1.0 + R)).mean()


def adcorre_loss(Z, E, y, M, *, classes, lam, eps, fd, md, ed, adaptive, md_mode,
                 ce_over_classes):
    """Z [B,C], E [k,B,d], y [B] 0-based long, M [C,C]. Returns a dict of parts."""
    B, C = Z.shape
    k = E.shape[0]
    onehot = torch.nn.functional.one_hot(y, C).to(Z.dtype)
    logp = torch.log_softmax(Z, dim=1)
    if ce_over_classes:  # the released code: mean of -onehot*log(p) over B*C entries
        ce = -(onehot * logp).mean()
    else:
        ce = -(onehot * logp).sum(dim=1).mean()

    zero = torch.zeros(())
    parts = {"ce": ce, "fd": zero, "md": zero, "ed": zero}

    if fd:
        Phi = corr_rows(E, eps)  # [k,B,B]
        Omega = torch.where(y[:, None] == y[None, :], 1.0, -1.0)
        if adaptive:
            w = 1.0 - torch.diagonal(M)[y]
            W = 1.0 + w[:, None] + w[None, :]
        else:
            W = torch.ones(B, B)
        W = W * (1.0 - torch.eye(B))
        parts["fd"] = (W[None] * torch.abs(Omega[None] - Phi)).mean()

    if md:
        if md_mode == "reference":
            wts = torch.stack([torch.where(y == c, 1.0, MD_REFERENCE_WEIGHT) for c in range(C)])
            means = torch.einsum("cb,kbd->kcd", wts, E) / wts.sum(dim=1)[None, :, None]
        else:
            present = sorted(set(y.tolist()))
            means = torch.stack([E[:, y == c, :].mean(dim=1) for c in present], dim=1)
        if means.shape[1] >= 2:
            parts["md"] = offdiag_mean(corr_rows(means, eps))

    if ed and k >= 2:
        parts["ed"] = offdiag_mean(corr_rows(E.permute(1, 0, 2), eps))

    parts["total"] = lam * parts["ce"] + parts["fd"] + parts["md"] + parts["ed"]
    return parts


def random_confusion(C, rng):
    A = rng.random((C, C)) + np.eye(C) * rng.uniform(0.0, 6.0, size=C)
    A[rng.integers(C)] = 0.0  # one class never seen: its row (and diagonal) is 0
    tot = A.sum(axis=1, keepdims=True)
    return np.where(tot > 0, A / np.maximum(tot, 1e-300), 0.0).astype(np.float32)


def make_inputs(rng, B, C, k, d, label_pool, normalise, constant_rows=0):
    Z = (rng.standard_normal((B, C)) * 3.0).astype(np.float32)
    E = rng.standard_normal((k, B, d))
    if normalise:
        E /= np.linalg.norm(E, axis=2, keepdims=True)
    for r in range(constant_rows):
        E[r % k, (3 * r + 1) % B, :] = 0.25
    y = rng.choice(np.array(label_pool), size=B)
    return Z, E.astype(np.float32), y.astype(np.int64)


# name, B, C, k, d, label pool (0-based), normalised rows, constant rows, options, inputs of
CASES = [
    ("big_adaptive_present", 50, 7, 10, 256, [0, 1, 2, 3, 5, 6], True, 0,
     dict(adaptive=True, md_mode="present"), None),
    ("big_reference", 50, 7, 10, 256, None, None, None,
     dict(reference=True), "big_adaptive_present"),
    ("big_plain_reference_md", 50, 7, 10, 256, None, None, None,
     dict(adaptive=False, md_mode="reference"), "big_adaptive_present"),
    ("mid_adaptive_reference_md", 24, 8, 3, 40, [0, 2, 3, 7], False, 0,
     dict(adaptive=True, md_mode="reference"), None),
    ("constant_rows", 20, 7, 4, 17, [1, 4, 6], False, 3,
     dict(adaptive=False, md_mode="present"), None),
    ("one_class", 9, 3, 2, 11, [2], True, 0,
     dict(adaptive=True, md_mode="present"), None),
    ("k1_partial", 33, 7, 1, 64, [0, 1, 2, 3, 4, 5, 6], True, 0,
     dict(adaptive=True, md_mode="present", md=False), None),
]


def options_for(C, opts):
    o = dict(classes=C, lam=50.0 / C, eps=1e-8, fd=True, md=True, ed=True, adaptive=True,
             md_mode="present", ce_over_classes=False)
    if opts.get("reference"):
        o.update(lam=50.0, adaptive=False, md_mode="reference", ce_over_classes=True)
    for key in ("adaptive", "md_mode", "fd", "md", "ed"):
        if key in opts:
            o[key] = opts[key]
    return o


def save_npy(path, arr):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    os.close(fd)
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def lua_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, float):
        return "%.17g" % v
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "spec",
                                                  "fixtures", "adcorre"))
    ap.add_argument("--seed", type=int, default=20220317)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    inputs = {}
    lua = ["-- Generated by tools/torch_adcorre_reference.py (PyTorch %s, float64 autograd)."
           % torch.__version__, "-- Do not edit: rerun the script.", "return {"]
    for i, (name, B, C, k, d, pool, norm, const, opts, src) in enumerate(CASES, start=1):
        if src is None:
            Z, E, y = make_inputs(rng, B, C, k, d, pool, norm, const)
            M = random_confusion(C, rng)
            inputs[name] = (i, Z, E, y, M)
            prefix = "case%d" % i
            save_npy(os.path.join(args.out, prefix + "_logits.npy"), Z)
            save_npy(os.path.join(args.out, prefix + "_emb.npy"), E)
            save_npy(os.path.join(args.out, prefix + "_labels.npy"), y + 1)
            save_npy(os.path.join(args.out, prefix + "_M.npy"), M)
        else:
            _, Z, E, y, M = inputs[src]
            prefix = "case%d" % inputs[src][0]
        o = options_for(C, opts)
        Zt = torch.tensor(Z.astype(np.float64), requires_grad=True)
        Et = torch.tensor(E.astype(np.float64), requires_grad=True)
        yt = torch.tensor(y)
        Mt = torch.tensor(M.astype(np.float64))
        parts = adcorre_loss(Zt, Et, yt, Mt, **o)
        gZ, gE = torch.autograd.grad(parts["total"], [Zt, Et], retain_graph=True)
        norms = {}
        for key in ("ce", "fd", "md", "ed"):
            term = o["lam"] * parts[key] if key == "ce" else parts[key]
            if not term.requires_grad:
                norms[key] = 0.0
                continue
            g = torch.autograd.grad(term, [Zt, Et], allow_unused=True, retain_graph=True)
            sq = sum(float((t * t).sum()) for t in g if t is not None)
            norms[key] = sq ** 0.5
        out = "case%d" % i
        save_npy(os.path.join(args.out, out + "_grad_logits.npy"), gZ.numpy().astype(np.float32))
        save_npy(os.path.join(args.out, out + "_grad_emb.npy"), gE.numpy().astype(np.float32))
        opt_lua = ", ".join("%s = %s" % (kk, lua_value(vv)) for kk, vv in sorted(opts.items()))
        lua.append("  { name = %s, inputs = %s, grads = %s, B = %d, C = %d, k = %d, d = %d," %
                   (lua_value(name), lua_value(prefix), lua_value(out), B, C, k, d))
        lua.append("    options = { classes = %d, %s }," % (C, opt_lua))
        lua.append("    lambda = %s," % lua_value(o["lam"]))
        lua.append("    parts = { ce = %s, fd = %s, md = %s, ed = %s, total = %s }," % tuple(
            lua_value(float(parts[kk])) for kk in ("ce", "fd", "md", "ed", "total")))
        lua.append("    grad_norm = { ce = %s, fd = %s, md = %s, ed = %s } }," % tuple(
            lua_value(norms[kk]) for kk in ("ce", "fd", "md", "ed")))
        print("%-28s B=%-3d C=%d k=%-2d d=%-3d ce=%.6f fd=%.6f md=%.6f ed=%.6f total=%.6f" % (
            name, B, C, k, d, *(float(parts[kk]) for kk in ("ce", "fd", "md", "ed", "total"))))
    lua.append("}")
    path = os.path.join(args.out, "cases.lua")
    fd, tmp = tempfile.mkstemp(dir=args.out, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lua) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
