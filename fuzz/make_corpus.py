#!/usr/bin/python3
"""Writes small seed inputs for the fuzz harnesses into OUT/<harness>/.

    /usr/bin/python3 fuzz/make_corpus.py OUT

npy: numpy arrays of every dtype the reader knows, v1/v2/v3 headers, both
byte orders, Fortran order, 0-d and empty shapes. safetensors: well-formed
files of several dtypes, with metadata, empty tensors. csv: records for each
delimiter (first byte picks the mode in fuzz_csv.c), fer2013.csv files with
1x1..4x4 images. image: tiny PNG (grey, grey+alpha, RGB, RGBA, 16-bit,
palette, interlaced), JPEG (baseline, progressive, grey), BMP, TGA, GIF, PNM
(first byte = requested channels). onnx: small models made with the onnx
package (python3-onnx).
"""
import io
import json
import os
import struct
import sys

import numpy as np

try:
    from PIL import Image
except ImportError:  # images fall back to hand-made PNM / BMP seeds
    Image = None


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy_bytes(a, version=None, fortran=False):
    b = io.BytesIO()
    if fortran:
        a = np.asfortranarray(a)
    np.lib.format.write_array(b, a, version=version)
    return b.getvalue()


def npy_seeds(d):
    rng = np.random.default_rng(0)
    k = 0
    for dt in ["<f4", ">f4", "<f8", "<f2", "<i4", ">i4", "<i8", "|u1", "|i1", "<i2", "<u2", ">u2", "<u4", "|b1"]:
        a = (rng.random((2, 3)) * 10).astype(dt)
        write(d, "%02d_%s.npy" % (k, dt.replace("<", "le").replace(">", "be").replace("|", "")), npy_bytes(a))
        k += 1
    write(d, "v2.npy", npy_bytes(np.arange(6, dtype="<f4").reshape(3, 2), version=(2, 0)))
    write(d, "v3.npy", npy_bytes(np.arange(4, dtype="<i8"), version=(3, 0)))
    write(d, "fortran.npy", npy_bytes(np.arange(24, dtype="<f4").reshape(2, 3, 4), fortran=True))
    write(d, "scalar.npy", npy_bytes(np.array(3.5, dtype="<f4")))
    write(d, "empty.npy", npy_bytes(np.zeros((0, 5), dtype="|u1")))
    write(d, "images.npy", npy_bytes(rng.integers(0, 255, (2, 4, 4, 1)).astype("|u1")))
    write(d, "labels.npy", npy_bytes(np.array([0, 3, 6], dtype="<i8")))


def st_bytes(tensors, meta=None):
    hdr, off, data = {}, 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    if meta is not None:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def st_seeds(d):
    f32 = np.arange(6, dtype="<f4").tobytes()
    write(d, "f32.safetensors", st_bytes({"w": ("F32", [2, 3], f32)}))
    write(d, "multi.safetensors", st_bytes({
        "a.weight": ("F32", [2, 2], np.ones(4, "<f4").tobytes()),
        "a.bias": ("F64", [2], np.ones(2, "<f8").tobytes()),
        "n": ("I64", [], struct.pack("<q", 7)),
        "h": ("F16", [3], np.ones(3, "<f2").tobytes()),
        "bf": ("BF16", [2], b"\x80\x3f\x00\x40"),
        "u": ("U8", [4], b"\x00\x01\xfe\xff"),
        "b": ("BOOL", [2], b"\x00\x01"),
        "i": ("I32", [1, 1], struct.pack("<i", -5)),
        "u16": ("U16", [1], b"\xff\xff"),
        "i8": ("I8", [1], b"\x80"),
    }, meta={"format": "pt", "arch": "{\"k\": 10}"}))
    write(d, "empty_tensor.safetensors", st_bytes({"e": ("F32", [0, 3], b"")}))
    write(d, "meta_only.safetensors", st_bytes({}, meta={"a": "b"}))


def csv_seeds(d):
    recs = b'emotion,pixels,Usage\n0,"1 2 3",Training\n"a ""q"" b",x\r\n\n3,4,5\n'
    write(d, "comma.txt", b"\x00" + recs)
    write(d, "semicolon.txt", b"\x01" + recs.replace(b",", b";"))
    write(d, "tab.txt", b"\x02" + b"subDirectory_filePath\tface_x\texpression\n1/a.jpg\t10\t3\n")
    write(d, "list.txt", b"\x03" + b"train_00001.jpg 5\ntest_0001.jpg  7\r\n  \n\ttrain_2.jpg\t1\n")
    write(d, "bom.txt", b"\x00" + b"\xef\xbb\xbfa,b\n1,2\n")
    # fer2013 mode: byte & 7 >= 4; side = 1 + ((byte >> 3) & 3); skip_bad = (byte >> 5) & 1
    for side in range(1, 5):
        for skip in (0, 1):
            mode = 4 | ((side - 1) << 3) | (skip << 5)
            rows = [b"emotion,pixels,Usage"]
            for e, u in [(0, b"Training"), (3, b"PublicTest"), (6, b"PrivateTest")]:
                px = b" ".join(str((17 * i + e) % 256).encode() for i in range(side * side))
                rows.append(b"%d,%s,%s" % (e, px, u))
            if skip:
                rows.append(b"9,1 2,Training")
            write(d, "fer_s%d_k%d.csv" % (side, skip), bytes([mode]) + b"\n".join(rows) + b"\n")
    write(d, "fer_nousage.csv", bytes([4]) + b"pixels,emotion\n\"7\",2\n")


def image_seeds(d):
    if Image is None:
        write(d, "p5.pgm", b"\x01P5\n2 2\n255\n\x00\x40\x80\xff")
        return
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8), "RGB")
    grey = rgb.convert("L")
    k = 0

    def save(img, fmt, req, **kw):
        nonlocal k
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        write(d, "%02d.%s" % (k, fmt.lower()), bytes([req]) + b.getvalue())
        k += 1

    save(rgb, "PNG", 0)
    save(grey, "PNG", 1)
    save(rgb.convert("RGBA"), "PNG", 4)
    save(grey.convert("LA"), "PNG", 2)
    save(rgb.convert("P"), "PNG", 3)
    save(Image.fromarray((np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000), "I;16"), "PNG", 1)
    save(rgb, "JPEG", 0, quality=75)
    save(rgb, "JPEG", 1, quality=90, progressive=True)
    save(grey, "JPEG", 0)
    save(rgb.resize((17, 9)), "JPEG", 3, subsampling=2)
    save(rgb, "BMP", 0)
    save(grey, "BMP", 1)
    save(rgb, "TGA", 3)
    save(rgb.convert("P"), "GIF", 0)
    save(grey, "PPM", 1)
    save(rgb, "PPM", 3)


def onnx_seeds(d):
    """Small models written by the onnx package itself (python3-onnx):
    initializers as raw_data, float_data, int64_data and double_data,
    attributes of every scalar and list type, symbolic dims, metadata."""
    os.makedirs(d, exist_ok=True)
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        return
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 1, 3, 3)).astype("<f4")
    inits = [
        helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.tobytes(), raw=True),
        helper.make_tensor("b", TensorProto.FLOAT, [4], [0.1, 0.2, 0.3, 0.4]),
        helper.make_tensor("fc", TensorProto.DOUBLE, [4, 3], list(rng.standard_normal(12))),
        helper.make_tensor("shape", TensorProto.INT64, [2], [1, -1]),
        helper.make_tensor("i32", TensorProto.INT32, [3], [1, -2, 3]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1], group=1),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="VALID"),
        helper.make_node("GlobalAveragePool", ["p"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "fc"], ["m"]),
        helper.make_node("LeakyRelu", ["m"], ["l"], alpha=0.1),
        helper.make_node("Softmax", ["l"], ["y"], axis=-1),
        helper.make_node("Custom", ["y"], ["z"], domain="com.example", floats=[1.5, 2.5], strings=[b"a"]),
    ]
    g = helper.make_graph(nodes, "seed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    m = helper.make_model(g, producer_name="make_corpus", opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(m, {"classes": "[\"a\",\"b\",\"c\"]", "input_range": "0,1"})
    write(d, "graph.onnx", m.SerializeToString())
    m.ir_version = 3
    write(d, "ir3.onnx", m.SerializeToString())
    g2 = helper.make_graph(nodes[:2], "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                           [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)], inits[:2])
    write(d, "small.onnx", helper.make_model(g2).SerializeToString())
    write(d, "empty_graph.onnx", helper.make_model(helper.make_graph([], "e", [], [])).SerializeToString())


def model_meta_seeds(d):
    """Architecture JSON, then a NUL and the "extra" JSON (fuzz_model_meta.c):
    the real one, the tampered ones of spec/hostile_model_spec.lua, a
    generic module tree."""
    good = {"classes": 7, "d": 4, "dropout": 0.5, "in_channels": 1, "k": 2, "size": 16}
    def arch(args, ctor="minixception"):
        return json.dumps({"constructor": ctor, "args": args}, sort_keys=True).encode()
    write(d, "good", arch(good))
    write(d, "good_classes", arch(good) + b"\0" + json.dumps({"classes": ["a"] * 7}).encode())
    for key, val in (("k", 10**9), ("classes", 10**9), ("d", -5), ("d", 1.5), ("in_channels", 3), ("size", 10**6)):
        a = dict(good)
        a[key] = val
        write(d, "%s_%s" % (key, str(val).replace(".", "_")), arch(a))
    write(d, "xception", arch({"classes": 7, "k": 2, "d": 4, "in_channels": 1, "size": 16}, "xception"))
    write(d, "generic", arch({"type": "nn.Sequential", "modules": [{"type": "nn.Linear", "args": [4, 3]}]}, "nn"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/fuzz/seeds"
    npy_seeds(os.path.join(out, "npy"))
    st_seeds(os.path.join(out, "safetensors"))
    csv_seeds(os.path.join(out, "csv"))
    image_seeds(os.path.join(out, "image"))
    onnx_seeds(os.path.join(out, "onnx"))
    model_meta_seeds(os.path.join(out, "model_meta"))
    for h in ("npy", "safetensors", "csv", "image", "onnx", "model_meta"):
        print("%s: %d seeds" % (h, len(os.listdir(os.path.join(out, h)))))


if __name__ == "__main__":
    main()
