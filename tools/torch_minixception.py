#!/usr/bin/python3
"""torch_minixception.py - the same mini-Xception + Ad-Corre head in PyTorch,
with adcorre's weights, to check adcorre's forward and backward of the whole
network (spec/models_spec.lua runs it).

    /usr/bin/python3 tools/torch_minixception.py MODEL IO OURS [--mode train|eval] [--tol 1e-4]

MODEL  a model file written by ac.save (architecture + parameters + buffers)
IO     tensors "x" [B, C, H, W], "g_logits" [B, classes], "g_emb<j>" [B, d]
OURS   adcorre's results for the same computation: "logits", "emb<j>",
       "grad_input", "grad.<parameter name>" and, in train mode, the updated
       "buf.<buffer name>" (batch-norm running statistics)

mode train: batch norm uses batch statistics and updates its running ones
(dropout is disabled on both sides: its mask is random); eval: running
statistics. The backward pass is that of
    L = sum(logits * g_logits) + sum_j sum(emb_j * g_emb<j>).
The relative error of a tensor is max|ours - torch| / max|torch|. Prints one
JSON line {"max_rel": ..., "worst": name, "n": count} and exits 1 when
max_rel > tol.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

torch.set_default_dtype(torch.float64)  # the reference runs in float64


def same_pool(x):
    """Keras MaxPooling2D((3, 3), strides=(2, 2), padding='same')."""
    h, w = x.shape[2], x.shape[3]
    pads = []
    for n in (w, h):
        out = math.ceil(n / 2)
        total = max((out - 1) * 2 + 3 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=-math.inf), 3, 2)


class Net:
    def __init__(self, params, buffers, args, train):
        self.p, self.b, self.train = params, buffers, train
        self.k, self.d = args["k"], args["d"]

    def bn(self, x, name):
        # F.batch_norm updates running_mean / running_var in place in training mode
        return F.batch_norm(x, self.b[name + ".running_mean"], self.b[name + ".running_var"],
                            self.p[name + ".weight"], self.p[name + ".bias"],
                            training=self.train, momentum=0.01, eps=1e-3)

    def conv(self, x, name, stride=1, padding=0, groups=1):
        return F.conv2d(x, self.p[name + ".weight"], None, stride, padding, 1, groups)

    def sep(self, x, name):
        x = self.conv(x, name + ".depthwise", padding=1, groups=x.shape[1])
        return self.conv(x, name + ".pointwise")

    def forward(self, x):
        t = "trunk."
        x = F.relu(self.bn(self.conv(x, t + "conv1"), t + "conv1_bn"))
        x = F.relu(self.bn(self.conv(x, t + "conv2"), t + "conv2_bn"))
        for i in range(1, 5):
            m = "%smodule%d.split." % (t, i)
            p = "%smain.module%d_" % (m, i)
            r = self.bn(self.conv(x, m + "shortcut.conv", stride=2), m + "shortcut.bn")
            y = F.relu(self.bn(self.sep(x, p + "sepconv1"), p + "sepconv1_bn"))
            y = self.bn(self.sep(y, p + "sepconv2"), p + "sepconv2_bn")
            x = same_pool(y) + r
        f = x.mean(dim=(2, 3))
        embs = []
        for j in range(1, self.k + 1):
            h = "heads.head%d.dense" % j
            e = F.linear(f, self.p[h + ".weight"], self.p[h + ".bias"])
            embs.append(e / e.norm(dim=1, keepdim=True).clamp_min(1e-6))
        cat = torch.cat(embs, dim=1)  # dropout disabled (identity)
        logits = F.linear(cat, self.p["classifier.weight"], self.p["classifier.bias"])
        return logits, embs


def rel(ours, ref):
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise SystemExit("shape mismatch %s vs %s" % (ours.shape, ref.shape))
    scale = np.abs(ref).max() if ref.size else 0.0
    diff = np.abs(ours - ref).max() if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("io")
    ap.add_argument("ours")
    ap.add_argument("--mode", choices=["train", "eval"], default="train")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    weights, meta = safetensors_np.read(a.model)
    arch = json.loads(meta["architecture"])
    if arch["constructor"] != "minixception":
        raise SystemExit("not a minixception model: %s" % arch["constructor"])
    io, _ = safetensors_np.read(a.io)
    ours, _ = safetensors_np.read(a.ours)
    params, buffers = {}, {}
    for name, v in weights.items():
        t = torch.tensor(v.astype(np.float64))
        if name.endswith(".running_mean") or name.endswith(".running_var"):
            buffers[name] = t
        else:
            params[name] = t.requires_grad_(True)
    net = Net(params, buffers, arch["args"], a.mode == "train")
    x = torch.tensor(io["x"].astype(np.float64), requires_grad=True)
    logits, embs = net.forward(x)
    L = (logits * torch.tensor(io["g_logits"].astype(np.float64))).sum()
    for j, e in enumerate(embs, 1):
        L = L + (e * torch.tensor(io["g_emb%d" % j].astype(np.float64))).sum()
    L.backward()
    errs = {"logits": rel(ours["logits"], logits.detach().numpy()),
            "grad_input": rel(ours["grad_input"], x.grad.numpy())}
    for j, e in enumerate(embs, 1):
        errs["emb%d" % j] = rel(ours["emb%d" % j], e.detach().numpy())
    for name, p in params.items():
        errs["grad." + name] = rel(ours["grad." + name], p.grad.numpy())
    if a.mode == "train":
        for name, b in buffers.items():
            errs["buf." + name] = rel(ours["buf." + name], b.numpy())
    worst = max(errs, key=errs.get)
    print(json.dumps({"mode": a.mode, "max_rel": errs[worst], "worst": worst, "n": len(errs),
                      "logits_rel": errs["logits"], "grad_input_rel": errs["grad_input"]}))
    sys.exit(0 if errs[worst] <= a.tol else 1)


if __name__ == "__main__":
    main()
