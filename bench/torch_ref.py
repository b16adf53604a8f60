#!/usr/bin/python3
"""bench/torch_ref.py - the PyTorch side of `make bench`: the same networks
(mini-Xception 48x48x1 and Keras' Xception 224x224x3, each with the Ad-Corre
head) and the same Ad-Corre loss as adcorre, in float32, timed the same way
as bench/ac_side.lua.

    /usr/bin/python3 bench/torch_ref.py --model minixception|xception
        [--batch 64] [--train-iters 10] [--infer-iters 10] [--lat-iters 50]
        [--warmup 2] [--threads 2]

Phases, in this order:
  train  zero_grad, forward (training mode: batch statistics, dropout),
         Ad-Corre loss (CE*lambda + FD + MD + ED, adaptive weights from a
         confusion history of the last 1000 predictions), backward, Adam step
  infer  evaluation mode, torch.inference_mode(), one batch
  lat    evaluation mode, batch 1, one image per call
Prints one JSON line: images/s of train and infer, the latency (median ms),
the peak RSS (VmHWM) after the training phase and at the end, the seconds
of each step.

The network mirrors lua/adcorre/models.lua layer for layer: convolutions
without bias, BatchNorm2d(eps 1e-3, momentum 0.01), SeparableConv2d =
depthwise 3x3 "same" + pointwise 1x1, max-pool 3x3 stride 2 "same" (Keras
padding: the odd cell after, which is PyTorch's ceil_mode here), residual
1x1 stride-2 shortcuts, global average pooling, k heads Linear + L2
normalisation, concatenation, Dropout(0.5), Linear to the classes.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def vmhwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def bn(n):
    return nn.BatchNorm2d(n, eps=1e-3, momentum=0.01)


class SamePool(nn.Module):
    """Keras MaxPooling2D(3, 2, 'same') for an input of size n (square)."""

    def __init__(self, n):
        super().__init__()
        out = math.ceil(n / 2)
        total = max((out - 1) * 2 + 3 - n, 0)
        self.pool = nn.MaxPool2d(3, 2, padding=total // 2, ceil_mode=bool(total % 2))
        self.out = out

    def forward(self, x):
        return self.pool(x)


class Sep(nn.Module):
    def __init__(self, nin, nout):
        super().__init__()
        self.depthwise = nn.Conv2d(nin, nin, 3, 1, 1, groups=nin, bias=False)
        self.pointwise = nn.Conv2d(nin, nout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class Residual(nn.Module):
    def __init__(self, main, shortcut):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return self.main(x) + s


def shortcut(nin, nout):
    return nn.Sequential(nn.Conv2d(nin, nout, 1, 2, bias=False), bn(nout))


def minixception_trunk(cin, size):
    layers = [nn.Conv2d(cin, 8, 3, bias=False), bn(8), nn.ReLU(),
              nn.Conv2d(8, 8, 3, bias=False), bn(8), nn.ReLU()]
    n, nin = size - 4, 8
    for c in (16, 32, 64, 128):
        pool = SamePool(n)
        main = nn.Sequential(Sep(nin, c), bn(c), nn.ReLU(), Sep(c, c), bn(c), pool)
        layers.append(Residual(main, shortcut(nin, c)))
        n, nin = pool.out, c
    return nn.Sequential(*layers), 128


def xception_trunk(cin, size):
    layers = [nn.Conv2d(cin, 32, 3, 2, bias=False), bn(32), nn.ReLU(),
              nn.Conv2d(32, 64, 3, bias=False), bn(64), nn.ReLU()]
    n = (size - 3) // 2 + 1 - 2

    def down(nin, c1, c2, first_act, n):
        main = [nn.ReLU()] if first_act else []
        pool = SamePool(n)
        main += [Sep(nin, c1), bn(c1), nn.ReLU(), Sep(c1, c2), bn(c2), pool]
        return Residual(nn.Sequential(*main), shortcut(nin, c2)), pool.out

    for nin, c1, c2, fa in ((64, 128, 128, False), (128, 256, 256, True), (256, 728, 728, True)):
        blk, n = down(nin, c1, c2, fa, n)
        layers.append(blk)
    for _ in range(8):
        main = []
        for _ in range(3):
            main += [nn.ReLU(), Sep(728, 728), bn(728)]
        layers.append(Residual(nn.Sequential(*main), None))
    blk, n = down(728, 728, 1024, True, n)
    layers.append(blk)
    layers += [Sep(1024, 1536), bn(1536), nn.ReLU(), Sep(1536, 2048), bn(2048), nn.ReLU()]
    return nn.Sequential(*layers), 2048


class AdCorreNet(nn.Module):
    def __init__(self, trunk, features, classes=7, k=10, d=256):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleList([nn.Linear(features, d) for _ in range(k)])
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(k * d, classes)

    def forward(self, x):
        f = self.trunk(x).mean(dim=(2, 3))
        embs = [F.normalize(h(f), dim=1, eps=1e-6) for h in self.heads]
        logits = self.classifier(self.dropout(torch.cat(embs, dim=1)))
        return logits, embs


def corr_rows(X, eps=1e-8):
    c = X - X.mean(dim=-1, keepdim=True)
    u = c / torch.sqrt((c * c).sum(dim=-1, keepdim=True) + eps)
    return u @ u.transpose(-1, -2)


def offdiag_mean(R):
    n = R.shape[-1]
    return ((1.0 - torch.eye(n)) * (1.0 + R)).mean()


class AdCorreLoss:
    """float32 Ad-Corre loss (DESIGN.md section 1; tools/torch_adcorre_reference.py
    is the float64 reference): lambda*CE + FD + MD (present classes) + ED with
    adaptive weights from the confusion matrix of the last `history` predictions."""

    def __init__(self, classes=7, lam=50.0 / 7, history=1000):
        self.C, self.lam, self.history = classes, lam, history
        self.pred = torch.zeros(0, dtype=torch.long)
        self.true = torch.zeros(0, dtype=torch.long)

    def confusion(self):
        C = self.C
        M = torch.zeros(C, C)
        if self.true.numel():
            M.index_put_((self.true, self.pred), torch.ones(self.true.numel()), accumulate=True)
        rows = M.sum(dim=1, keepdim=True)
        return torch.where(rows > 0, M / rows.clamp_min(1), M)

    def __call__(self, Z, embs, y):
        B = Z.shape[0]
        E = torch.stack(embs)  # [k, B, d]
        M = self.confusion()
        ce = F.cross_entropy(Z, y)
        Phi = corr_rows(E)
        Omega = torch.where(y[:, None] == y[None, :], 1.0, -1.0)
        w = 1.0 - torch.diagonal(M)[y]
        W = (1.0 + w[:, None] + w[None, :]) * (1.0 - torch.eye(B))
        fd = (W[None] * torch.abs(Omega[None] - Phi)).mean()
        present = torch.unique(y)
        onehot = (y[None, :] == present[:, None]).float()  # [C', B]
        means = torch.einsum("cb,kbd->kcd", onehot, E) / onehot.sum(dim=1)[None, :, None]
        md = offdiag_mean(corr_rows(means)) if present.numel() >= 2 else Z.new_zeros(())
        ed = offdiag_mean(corr_rows(E.permute(1, 0, 2)))
        with torch.no_grad():
            self.pred = torch.cat([self.pred, Z.argmax(dim=1)])[-self.history:]
            self.true = torch.cat([self.true, y])[-self.history:]
        return self.lam * ce + fd + md + ed


def build(name):
    if name == "minixception":
        trunk, feat = minixception_trunk(1, 48)
        return AdCorreNet(trunk, feat), (1, 48, 48)
    trunk, feat = xception_trunk(3, 224)
    return AdCorreNet(trunk, feat), (3, 224, 224)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["minixception", "xception"], default="minixception")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--train-iters", type=int, default=10)
    ap.add_argument("--infer-iters", type=int, default=10)
    ap.add_argument("--lat-iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    net, shape = build(a.model)
    B = a.batch
    x = torch.randn(B, *shape)
    y = torch.arange(B) % 7
    crit = AdCorreLoss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    res = {"side": "torch", "model": a.model, "batch": B, "threads": torch.get_num_threads(),
           "nparams": sum(p.numel() for p in net.parameters())}

    net.train()
    steps = []
    for it in range(a.warmup + a.train_iters):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        logits, embs = net(x)
        loss = crit(logits, embs, y)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if it >= a.warmup:
            steps.append(t1 - t0)
    res["train_step_s"] = steps
    res["train_ips"] = B * len(steps) / sum(steps)
    res["loss"] = float(loss)
    res["rss_train_kib"] = vmhwm_kib()

    net.eval()
    with torch.inference_mode():
        times = []
        for it in range(a.warmup + a.infer_iters):
            t0 = time.perf_counter()
            net(x)
            t1 = time.perf_counter()
            if it >= a.warmup:
                times.append(t1 - t0)
        res["infer_batch_s"] = times
        res["infer_ips"] = B * len(times) / sum(times)
        x1 = x[:1].clone()
        lat = []
        for it in range(a.warmup + a.lat_iters):
            t0 = time.perf_counter()
            net(x1)
            t1 = time.perf_counter()
            if it >= a.warmup:
                lat.append(t1 - t0)
        lat.sort()
        res["latency_ms"] = 1e3 * lat[len(lat) // 2]
    res["rss_end_kib"] = vmhwm_kib()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
