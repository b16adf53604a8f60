#!/usr/bin/python3
"""synthfer_calibrate.py - how hard is synthfer? Trains independent PyTorch
reference classifiers on a synthfer set and prints their test accuracy and
row-normalised confusion matrices (canonical class order).

Models: logistic regression on pixels, a one-hidden-layer MLP, and a
mini-Xception (Arriaga et al. 2017: two 3x3 convolutions, four residual
blocks of separable convolutions 16/32/64/128, global average pooling,
linear classifier) trained with cross-entropy only, Adam lr 1e-3, batch 50,
no augmentation.

Data: either a fer2013.csv written by synthfer (--csv; Training rows train,
PrivateTest rows test) or the four .npy files of the npy layout (--npy DIR:
train_images.npy [N,48,48] uint8, train_labels.npy [N] 0..6, test_*).
Generate them with `lua5.4 tools/synthfer_calibrate.lua` (see doc/synthfer.md).

    /usr/bin/python3 tools/synthfer_calibrate.py --npy /tmp/sfcal --epochs 5
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger"]
FER_TO_CANON = {0: 6, 1: 5, 2: 4, 3: 1, 4: 2, 5: 3, 6: 0}


def load_csv(path):
    splits = {"Training": ([], []), "PublicTest": ([], []), "PrivateTest": ([], [])}
    with open(path) as f:
        header = f.readline().strip()
        assert header == "emotion,pixels,Usage", header
        for line in f:
            code, pix, usage = line.rstrip("\n").split(",")
            splits[usage][0].append(np.array(pix.split(), dtype=np.uint8))
            splits[usage][1].append(FER_TO_CANON[int(code)])
    out = {}
    for k, (x, y) in splits.items():
        if x:
            out[k] = (np.stack(x).reshape(-1, 48, 48), np.array(y, dtype=np.int64))
    return out["Training"], out["PrivateTest"]


def load_npy(d):
    tr = (np.load(f"{d}/train_images.npy"), np.load(f"{d}/train_labels.npy"))
    te = (np.load(f"{d}/test_images.npy"), np.load(f"{d}/test_labels.npy"))
    return tr, te


class Centre(nn.Module):
    """Per-image standardisation for the pixel models."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        s = x.std(dim=(1, 2, 3), keepdim=True) + 1e-3
        return (x - m) / s


class SepConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pw(self.dw(x))


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.res = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        self.body = nn.Sequential(SepConv(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(),
                                  SepConv(cout, cout), nn.BatchNorm2d(cout),
                                  nn.MaxPool2d(3, 2, 1))

    def forward(self, x):
        return self.body(x) + self.res(x)


class MiniXception(nn.Module):
    def __init__(self, classes=7):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.Sequential(Block(8, 16), Block(16, 32), Block(32, 64), Block(64, 128))
        self.fc = nn.Linear(128, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))


def train(model, xtr, ytr, xte, yte, epochs, batch, lr, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = xtr.shape[0]
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc, _ = evaluate(model, xte, yte)
        print(f"  epoch {ep + 1}: loss {loss.item():.3f} test acc {acc:.4f} ({time.time() - t0:.0f}s)", flush=True)
    return evaluate(model, xte, yte)


@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    pred = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, x.shape[0], 500)])
    conf = np.zeros((7, 7))
    for t, p in zip(y.numpy(), pred.numpy()):
        conf[t, p] += 1
    conf = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    return float((pred == y).float().mean()), conf


def show(name, acc, conf):
    print(f"{name}: test accuracy {acc:.4f}")
    print("          " + " ".join(f"{c[:4]:>5}" for c in CLASSES))
    for i, c in enumerate(CLASSES):
        print(f"{c:>9} " + " ".join(f"{v:5.2f}" for v in conf[i]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npy", help="folder with train_/test_ images/labels .npy")
    ap.add_argument("--csv", help="a fer2013.csv written by synthfer")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="logreg,mlp,minixception")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    (xtr, ytr), (xte, yte) = load_csv(a.csv) if a.csv else load_npy(a.npy)
    print(f"train {xtr.shape[0]} test {xte.shape[0]}; train counts {np.bincount(ytr, minlength=7).tolist()}")
    xtr = torch.from_numpy(xtr.astype(np.float32) / 255.0).unsqueeze(1)
    xte = torch.from_numpy(xte.astype(np.float32) / 255.0).unsqueeze(1)
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    results = {}
    for name in a.models.split(","):
        torch.manual_seed(a.seed)
        if name == "logreg":
            model = nn.Sequential(Centre(), nn.Flatten(), nn.Linear(48 * 48, 7))
        elif name == "mlp":
            model = nn.Sequential(Centre(), nn.Flatten(), nn.Linear(48 * 48, 256), nn.ReLU(), nn.Linear(256, 7))
        elif name == "minixception":
            model = MiniXception()
        else:
            raise SystemExit(f"unknown model {name}")
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters")
        acc, conf = train(model, xtr, ytr, xte, yte, a.epochs, a.batch, 1e-3, a.seed)
        show(name, acc, conf)
        results[name] = {"accuracy": acc, "confusion": conf.round(4).tolist()}
    if a.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
