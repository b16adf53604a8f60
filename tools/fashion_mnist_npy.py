#!/usr/bin/python3
"""tools/fashion_mnist_npy.py - writes Debian's dataset-fashion-mnist (the four
IDX files in /usr/share/datasets/fashion-mnist) as the npy folder that
`--dataset npy` reads: train_images.npy [N, 28, 28] uint8, train_labels.npy [N]
int64 (0..9), test_images.npy, test_labels.npy and classes.txt.

    /usr/bin/python3 tools/fashion_mnist_npy.py --out out/fmnist-10k --train 10000 --test 2000

--train N / --test N keep the first N images of each split in the published
order (0 = all: 60,000 and 10,000). The published order is shuffled, so the
first N are close to balanced; the script prints the per-class counts. Each
file is written to a temporary name and renamed.
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np

SRC = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """An IDX file (magic 0 0 type ndim, big-endian u32 dimensions, data) as an array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        sys.exit(f"{path}: {data.size} bytes of data for shape {dims}")
    return data.reshape(dims)


def save(path, arr):
    tmp = path + ".tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=SRC, help="folder of the IDX files [%(default)s]")
    ap.add_argument("--out", required=True, help="npy folder to write")
    ap.add_argument("--train", type=int, default=0, help="first N training images (0 = all 60,000)")
    ap.add_argument("--test", type=int, default=0, help="first N test images (0 = all 10,000)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, prefix, n in (("train", "train", a.train), ("test", "t10k", a.test)):
        x = read_idx(os.path.join(a.src, prefix + "-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(a.src, prefix + "-labels-idx1-ubyte.gz")).astype(np.int64)
        if x.shape[0] != y.shape[0]:
            sys.exit(f"{split}: {x.shape[0]} images but {y.shape[0]} labels")
        if n < 0 or n > x.shape[0]:
            sys.exit(f"--{split} {n}: the split has {x.shape[0]} images")
        if n:
            x, y = x[:n], y[:n]
        save(os.path.join(a.out, split + "_images.npy"), np.ascontiguousarray(x))
        save(os.path.join(a.out, split + "_labels.npy"), y)
        counts = np.bincount(y, minlength=len(CLASSES))
        print(f"{split}: {x.shape[0]} images {x.shape[1]}x{x.shape[2]}, per class {counts.tolist()}")
    tmp = os.path.join(a.out, "classes.txt.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    os.replace(tmp, os.path.join(a.out, "classes.txt"))


if __name__ == "__main__":
    main()
