#!/usr/bin/python3
"""keras_h5_make.py - Keras HDF5 files written the way Keras writes them, and
the outputs of the same networks computed by PyTorch, for the Keras import
specs (spec/keras_spec.lua). No TensorFlow is needed.

    /usr/bin/python3 tools/keras_h5_make.py OUTDIR [NAME ...]

NAME (default: all):
  minixception_k20   full model, Keras 2.0.x dialect ("Model", auto names
                     conv2d_1 ..., datasets under conv2d_1/conv2d_1_1/kernel:0),
                     48x48x1, mini-Xception with a Conv2D + GlobalAveragePooling
                     + softmax head (Arriaga et al. 2017)
  adcorre_xception   full model, tf.keras 2.4 dialect ("Functional"), the
                     Ad-Corre network: keras.applications Xception trunk
                     224x224x3, GlobalAveragePooling, 10 Dense(256) +
                     Lambda(l2_normalize) heads, Concatenate, Dropout,
                     Dense(7, softmax); outputs [softmax, 10 embeddings]
  adcorre_xception_small  the same at 96x96x3
  multi_output       full model, tf.keras 2.4 dialect: Conv2D, BatchNormalization,
                     DepthwiseConv2D, ReLU, SeparableConv2D, Concatenate of
                     feature maps, AveragePooling2D and MaxPooling2D ("same"),
                     Add, Flatten, Dropout, Dense (softmax), Dense +
                     BatchNormalization + Lambda(l2_normalize); outputs
                     [softmax, embedding, feature map]
  xception_notop     weights only (save_weights), Xception without top,
                     residual counters starting at conv2d_4 /
                     batch_normalization_4 as in a file saved after other models
  chunked            a small full model whose layer_names attribute is split
                     into layer_names0, layer_names1, ... (Keras does this above
                     64512 bytes; here the limit is lowered to force it)
  hostile            hostile_<case>.h5: the small model's weights under a
                     model_config asking for 10^9 Dense units, 10^8 Conv2D
                     filters, a 10^4 x 10^4 kernel, a 10^5 x 10^5 input
                     before Flatten + Dense (and hostile_none.h5, unchanged)
  bad                bad_<fault>.h5: an unknown layer class, a Lambda that is
                     not l2_normalize, a missing layer group, a missing
                     weight, a weight of the wrong shape, an HDF5 file that
                     is not Keras', a weights file of another network

For each NAME it writes NAME.h5, NAME_input.npy (NCHW float32) and
NAME_out<i>.npy (Keras' outputs in order; NHWC outputs are given NCHW), plus
NAME_logits.npy for adcorre_xception[_small] and multi_output (the pre-softmax values) and
NAME_features.npy for xception_notop (the trunk's globally pooled output).

The file layout follows Keras' saving code (keras/saving/hdf5_format.py,
save_model_to_hdf5 / save_weights_to_hdf5_group /
save_attributes_to_hdf5_group): root attributes keras_version, backend and
model_config (JSON as bytes) for full models, a group model_weights (or the
root for weights-only files) with attributes layer_names, backend,
keras_version, one group per layer (sorted by name) with the attribute
weight_names, each weight a dataset at the path its name gives, weights in
the order trainable then non-trainable (BatchNormalization: gamma, beta,
moving_mean, moving_variance). Tensors are HWIO (Conv2D), [kh, kw, C, m]
(depthwise), [1, 1, C, O] (pointwise), [in, out] (Dense).

The PyTorch side interprets the same model_config on its own (NCHW, kernels
transposed, TensorFlow's "same" padding with the odd cell at the bottom and
right, max pooling padded with -inf, average pooling not counting padding).
"""
import base64
import json
import marshal
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HDF5_OBJECT_HEADER_LIMIT = 64512
CAL_RNG = np.random.default_rng(7)

# ---------------------------------------------------------------------------
# model_config builders (one layer list entry per Keras layer)
# ---------------------------------------------------------------------------


class Builder:
    def __init__(self, dialect):
        self.dialect = dialect  # "k20" or "tf24"
        self.layers = []
        self.counters = {}
        self.shapes = {}  # layer name -> output shape (H, W, C) or (C,)

    def auto(self, base, start=None):
        n = self.counters.get(base)
        if n is None:
            n = start if start is not None else (1 if self.dialect == "k20" else 0)
        self.counters[base] = n + 1
        if self.dialect == "tf24" and n == 0:
            return base
        return "%s_%d" % (base, n)

    def add(self, cls, name, cfg, inputs, shape):
        cfg = dict(cfg)
        cfg["name"] = name
        cfg["trainable"] = True
        if self.dialect == "tf24":
            cfg["dtype"] = "float32"
        nodes = [[[i, 0, 0, {}] for i in inputs]] if inputs else []
        self.layers.append({"name": name, "class_name": cls, "config": cfg, "inbound_nodes": nodes})
        self.shapes[name] = shape
        return name

    def input(self, h, w, c):
        name = self.auto("input")
        cfg = {"batch_input_shape": [None, h, w, c], "dtype": "float32", "sparse": False}
        if self.dialect == "tf24":
            cfg["ragged"] = False
        return self.add("InputLayer", name, cfg, [], (h, w, c))

    def _out_hw(self, x, k, s, padding):
        h, w, _ = self.shapes[x]
        if padding == "same":
            return -(-h // s), -(-w // s)
        return (h - k) // s + 1, (w - k) // s + 1

    def conv(self, x, filters, k, s=1, padding="valid", use_bias=True, activation="linear", name=None):
        name = name or self.auto("conv2d")
        oh, ow = self._out_hw(x, k, s, padding)
        cfg = {"filters": filters, "kernel_size": [k, k], "strides": [s, s], "padding": padding,
               "data_format": "channels_last", "dilation_rate": [1, 1], "activation": activation,
               "use_bias": use_bias}
        if self.dialect == "tf24":
            cfg["groups"] = 1
        return self.add("Conv2D", name, cfg, [x], (oh, ow, filters))

    def sep(self, x, filters, k=3, s=1, padding="same", use_bias=False, name=None):
        name = name or self.auto("separable_conv2d")
        oh, ow = self._out_hw(x, k, s, padding)
        cfg = {"filters": filters, "kernel_size": [k, k], "strides": [s, s], "padding": padding,
               "data_format": "channels_last", "dilation_rate": [1, 1], "depth_multiplier": 1,
               "activation": "linear", "use_bias": use_bias}
        return self.add("SeparableConv2D", name, cfg, [x], (oh, ow, filters))

    def depthwise(self, x, k=3, s=1, padding="same", multiplier=1, use_bias=True, name=None):
        name = name or self.auto("depthwise_conv2d")
        oh, ow = self._out_hw(x, k, s, padding)
        cfg = {"kernel_size": [k, k], "strides": [s, s], "padding": padding, "data_format": "channels_last",
               "dilation_rate": [1, 1], "depth_multiplier": multiplier, "activation": "linear",
               "use_bias": use_bias}
        return self.add("DepthwiseConv2D", name, cfg, [x], (oh, ow, self.shapes[x][2] * multiplier))

    def avgpool(self, x, k=3, s=2, padding="same", name=None):
        name = name or self.auto("average_pooling2d")
        oh, ow = self._out_hw(x, k, s, padding)
        cfg = {"pool_size": [k, k], "padding": padding, "strides": [s, s], "data_format": "channels_last"}
        return self.add("AveragePooling2D", name, cfg, [x], (oh, ow, self.shapes[x][2]))

    def relu(self, x, name=None):
        name = name or self.auto("re_lu")
        return self.add("ReLU", name, {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}, [x],
                        self.shapes[x])

    def bn(self, x, name=None, eps=1e-3, scale=True, center=True):
        name = name or self.auto("batch_normalization")
        axis = [len(self.shapes[x])] if self.dialect == "tf24" else -1
        cfg = {"axis": axis, "momentum": 0.99, "epsilon": eps, "center": center, "scale": scale}
        return self.add("BatchNormalization", name, cfg, [x], self.shapes[x])

    def act(self, x, activation, name=None):
        name = name or self.auto("activation")
        return self.add("Activation", name, {"activation": activation}, [x], self.shapes[x])

    def maxpool(self, x, k=3, s=2, padding="same", name=None):
        name = name or self.auto("max_pooling2d")
        oh, ow = self._out_hw(x, k, s, padding)
        cfg = {"pool_size": [k, k], "padding": padding, "strides": [s, s], "data_format": "channels_last"}
        return self.add("MaxPooling2D", name, cfg, [x], (oh, ow, self.shapes[x][2]))

    def add_(self, xs, name=None):
        name = name or self.auto("add")
        return self.add("Add", name, {}, xs, self.shapes[xs[0]])

    def gap(self, x, name=None):
        name = name or self.auto("global_average_pooling2d")
        return self.add("GlobalAveragePooling2D", name, {"data_format": "channels_last"}, [x],
                        (self.shapes[x][2],))

    def dense(self, x, units, activation="linear", name=None):
        name = name or self.auto("dense")
        cfg = {"units": units, "activation": activation, "use_bias": True}
        return self.add("Dense", name, cfg, [x], (units,))

    def l2(self, x, name=None):
        name = name or self.auto("lambda")
        # Keras' func_dump: the marshalled code object, base64 with newlines
        code = compile("lambda x: K.l2_normalize(x, axis=1)", "<heads>", "eval").co_consts[0]
        fn = base64.encodebytes(marshal.dumps(code)).decode("ascii")
        cfg = {"function": [fn, None, None], "function_type": "lambda", "module": "__main__",
               "output_shape": None, "output_shape_type": "raw", "output_shape_module": None,
               "arguments": {}}
        return self.add("Lambda", name, cfg, [x], self.shapes[x])

    def concat(self, xs, name=None):
        name = name or self.auto("concatenate")
        shape = list(self.shapes[xs[0]])
        shape[-1] = sum(self.shapes[x][-1] for x in xs)
        return self.add("Concatenate", name, {"axis": -1}, xs, tuple(shape))

    def dropout(self, x, rate, name=None):
        name = name or self.auto("dropout")
        return self.add("Dropout", name, {"rate": rate, "noise_shape": None, "seed": None}, [x], self.shapes[x])

    def flatten(self, x, name=None):
        name = name or self.auto("flatten")
        n = int(np.prod(self.shapes[x]))
        return self.add("Flatten", name, {"data_format": "channels_last"}, [x], (n,))

    def config(self, name, inputs, outputs):
        cls = "Model" if self.dialect == "k20" else "Functional"
        return {"class_name": cls, "config": {
            "name": name, "layers": self.layers,
            "input_layers": [[i, 0, 0] for i in inputs],
            "output_layers": [[o, 0, 0] for o in outputs]}}


def xception_trunk(b, x, shortcut_start=None):
    """keras.applications.xception.Xception(include_top=False) layer for layer."""
    conv_n, bn_n = shortcut_start if shortcut_start else (None, None)

    def sc_conv(x, f):
        nonlocal conv_n
        r = b.conv(x, f, 1, 2, "same", use_bias=False, name=b.auto("conv2d", conv_n))
        conv_n = None
        return r

    def sc_bn(x):
        nonlocal bn_n
        r = b.bn(x, name=b.auto("batch_normalization", bn_n))
        bn_n = None
        return r

    x = b.conv(x, 32, 3, 2, use_bias=False, name="block1_conv1")
    x = b.act(b.bn(x, "block1_conv1_bn"), "relu", "block1_conv1_act")
    x = b.conv(x, 64, 3, 1, use_bias=False, name="block1_conv2")
    x = b.act(b.bn(x, "block1_conv2_bn"), "relu", "block1_conv2_act")
    for blk, f, first_act in ((2, 128, False), (3, 256, True), (4, 728, True)):
        p = "block%d" % blk
        res = sc_bn(sc_conv(x, f))
        if first_act:
            x = b.act(x, "relu", p + "_sepconv1_act")
        x = b.bn(b.sep(x, f, name=p + "_sepconv1"), p + "_sepconv1_bn")
        x = b.act(x, "relu", p + "_sepconv2_act")
        x = b.bn(b.sep(x, f, name=p + "_sepconv2"), p + "_sepconv2_bn")
        x = b.maxpool(x, name=p + "_pool")
        x = b.add_([x, res])
    for i in range(8):
        p = "block%d" % (i + 5)
        res = x
        for j in (1, 2, 3):
            x = b.act(x, "relu", "%s_sepconv%d_act" % (p, j))
            x = b.bn(b.sep(x, 728, name="%s_sepconv%d" % (p, j)), "%s_sepconv%d_bn" % (p, j))
        x = b.add_([x, res])
    res = sc_bn(sc_conv(x, 1024))
    x = b.act(x, "relu", "block13_sepconv1_act")
    x = b.bn(b.sep(x, 728, name="block13_sepconv1"), "block13_sepconv1_bn")
    x = b.act(x, "relu", "block13_sepconv2_act")
    x = b.bn(b.sep(x, 1024, name="block13_sepconv2"), "block13_sepconv2_bn")
    x = b.maxpool(x, name="block13_pool")
    x = b.add_([x, res])
    x = b.act(b.bn(b.sep(x, 1536, name="block14_sepconv1"), "block14_sepconv1_bn"), "relu", "block14_sepconv1_act")
    x = b.act(b.bn(b.sep(x, 2048, name="block14_sepconv2"), "block14_sepconv2_bn"), "relu", "block14_sepconv2_act")
    return x


def minixception(b, x, classes):
    """Arriaga et al. (2017) mini_XCEPTION (their models/cnn.py)."""
    for _ in range(2):
        x = b.act(b.bn(b.conv(x, 8, 3, 1, use_bias=False)), "relu")
    for f in (16, 32, 64, 128):
        res = b.bn(b.conv(x, f, 1, 2, "same", use_bias=False))
        x = b.act(b.bn(b.sep(x, f)), "relu")
        x = b.bn(b.sep(x, f))
        x = b.maxpool(x)
        x = b.add_([x, res])
    x = b.conv(x, classes, 3, 1, "same")
    x = b.gap(x)
    return b.act(x, "softmax", "predictions")


# ---------------------------------------------------------------------------
# weights: random, Keras shapes and order
# ---------------------------------------------------------------------------


def make_weights(b, rng):
    """{layer name: [(short name, array), ...]} in Keras' saving order."""
    out = {}
    for l in b.layers:
        c, cfg, name = l["class_name"], l["config"], l["name"]
        ws = []
        ci = b.shapes[l["inbound_nodes"][0][0][0]][-1] if l["inbound_nodes"] else None
        if c == "Conv2D":
            k = cfg["kernel_size"]
            fan = k[0] * k[1] * ci
            ws.append(("kernel", rng.standard_normal((k[0], k[1], ci, cfg["filters"])) * np.sqrt(2.0 / fan)))
            if cfg["use_bias"]:
                ws.append(("bias", rng.standard_normal(cfg["filters"]) * 0.1))
        elif c == "SeparableConv2D":
            k, m = cfg["kernel_size"], cfg["depth_multiplier"]
            ws.append(("depthwise_kernel", rng.standard_normal((k[0], k[1], ci, m)) * np.sqrt(2.0 / (k[0] * k[1]))))
            ws.append(("pointwise_kernel", rng.standard_normal((1, 1, ci * m, cfg["filters"])) * np.sqrt(2.0 / (ci * m))))
            if cfg["use_bias"]:
                ws.append(("bias", rng.standard_normal(cfg["filters"]) * 0.1))
        elif c == "DepthwiseConv2D":
            k, m = cfg["kernel_size"], cfg["depth_multiplier"]
            ws.append(("depthwise_kernel", rng.standard_normal((k[0], k[1], ci, m)) * np.sqrt(2.0 / (k[0] * k[1]))))
            if cfg["use_bias"]:
                ws.append(("bias", rng.standard_normal(ci * m) * 0.1))
        elif c == "Dense":
            ws.append(("kernel", rng.standard_normal((ci, cfg["units"])) * np.sqrt(1.0 / ci)))
            ws.append(("bias", rng.standard_normal(cfg["units"]) * 0.1))
        elif c == "BatchNormalization":
            if cfg["scale"]:
                ws.append(("gamma", 1 + 0.2 * rng.standard_normal(ci)))
            if cfg["center"]:
                ws.append(("beta", 0.2 * rng.standard_normal(ci)))
            ws.append(("moving_mean", 0.2 * rng.standard_normal(ci)))
            ws.append(("moving_variance", 0.5 + rng.random(ci)))
        out[name] = [(n, a.astype(np.float32)) for n, a in ws]
    return out


# ---------------------------------------------------------------------------
# writing, as hdf5_format.py does
# ---------------------------------------------------------------------------


def save_attributes(group, name, data, limit=HDF5_OBJECT_HEADER_LIMIT):
    data_npy = np.asarray(data)
    num_chunks = 1
    chunked = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > limit for x in chunked):
        num_chunks += 1
        chunked = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for i, chunk in enumerate(chunked):
            group.attrs["%s%d" % (name, i)] = chunk
    else:
        group.attrs[name] = data


def weight_full_name(layer, short, dialect):
    # Keras 2.0 graphs rebuilt in a new name scope give "conv2d_1_1/kernel:0"
    prefix = layer + "_1" if dialect == "k20" else layer
    return "%s/%s:0" % (prefix, short)


def save_weights_group(f, layer_names, weights, dialect, version, limit=HDF5_OBJECT_HEADER_LIMIT):
    save_attributes(f, "layer_names", [n.encode("utf8") for n in layer_names], limit)
    f.attrs["backend"] = "tensorflow".encode("utf8")
    f.attrs["keras_version"] = version.encode("utf8")
    for name in sorted(layer_names):
        g = f.create_group(name)
        ws = weights[name]
        names = [weight_full_name(name, s, dialect).encode("utf8") for s, _ in ws]
        save_attributes(g, "weight_names", names, limit)
        for n, (_, a) in zip(names, ws):
            d = g.create_dataset(n, a.shape, dtype=a.dtype)
            d[:] = a


VERSIONS = {"k20": "2.0.5", "tf24": "2.4.0"}


def save_model(path, config, weights, dialect, limit=HDF5_OBJECT_HEADER_LIMIT):
    version = VERSIONS[dialect]
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version.encode("utf8")
        f.attrs["backend"] = "tensorflow".encode("utf8")
        cfg = json.dumps(config).encode("utf8")
        # Keras 2.0 ran on h5py 2, which stored bytes as a fixed-length string
        f.attrs["model_config"] = np.bytes_(cfg) if dialect == "k20" else cfg
        f.attrs["training_config"] = json.dumps({"loss": "categorical_crossentropy"}).encode("utf8")
        names = [l["name"] for l in config["config"]["layers"]]
        save_weights_group(f.create_group("model_weights"), names, weights, dialect, version, limit)
        ow = f.create_group("optimizer_weights")
        save_attributes(ow, "weight_names", [b"Adam/iter:0"])
        ow.create_dataset("Adam/iter:0", data=np.int64(3))


# ---------------------------------------------------------------------------
# the PyTorch interpretation of a model_config
# ---------------------------------------------------------------------------


def same_pad(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pad_same(x, k, s, value=0.0):
    pt, pb = same_pad(x.shape[2], k[0], s[0])
    pl, pr = same_pad(x.shape[3], k[1], s[1])
    return F.pad(x, (pl, pr, pt, pb), value=value)


def activation(x, a):
    if a == "relu":
        return torch.relu(x)
    if a == "softmax":
        return torch.softmax(x, dim=1)
    if a == "linear":
        return x
    raise ValueError(a)


def torch_forward(config, weights, x, pre_softmax=None, calibrate=False):
    """Outputs of the model (NCHW for 4-d); pre_softmax: layer name whose
    value before its softmax is also returned. calibrate: set every
    BatchNormalization's moving statistics near the statistics of this
    input first (random weights otherwise blow the activations up and the
    softmax saturates, which would make the comparison weak)."""
    vals = {}
    extra = {}
    cfg_layers = config["config"]["layers"]
    inputs = [i[0] for i in config["config"]["input_layers"]]
    for l in cfg_layers:
        c, cfg, name = l["class_name"], l["config"], l["name"]
        w = {s: torch.from_numpy(a).double() for s, a in weights.get(name, [])}
        srcs = [vals[n[0]] for n in l["inbound_nodes"][0]] if l["inbound_nodes"] else []
        if c == "InputLayer":
            y = x[inputs.index(name)]
        elif c in ("Conv2D", "SeparableConv2D"):
            h = srcs[0]
            k, s = cfg["kernel_size"], cfg["strides"]
            if cfg["padding"] == "same":
                h = pad_same(h, k, s)
            if c == "Conv2D":
                y = F.conv2d(h, w["kernel"].permute(3, 2, 0, 1), stride=s)
            else:
                dk = w["depthwise_kernel"]  # [kh, kw, C, m] -> [C*m, 1, kh, kw]
                cin, m = dk.shape[2], dk.shape[3]
                dwk = dk.permute(2, 3, 0, 1).reshape(cin * m, 1, k[0], k[1])
                h = F.conv2d(h, dwk, stride=s, groups=cin)
                y = F.conv2d(h, w["pointwise_kernel"].permute(3, 2, 0, 1))
            if "bias" in w:
                y = y + w["bias"].view(1, -1, 1, 1)
            y = activation(y, cfg["activation"])
        elif c == "DepthwiseConv2D":
            h = srcs[0]
            k, s = cfg["kernel_size"], cfg["strides"]
            if cfg["padding"] == "same":
                h = pad_same(h, k, s)
            dk = w["depthwise_kernel"]
            cin, m = dk.shape[2], dk.shape[3]
            y = F.conv2d(h, dk.permute(2, 3, 0, 1).reshape(cin * m, 1, k[0], k[1]), stride=s, groups=cin)
            if "bias" in w:
                y = y + w["bias"].view(1, -1, 1, 1)
        elif c == "AveragePooling2D":
            k, s = cfg["pool_size"], cfg["strides"]
            if cfg["padding"] == "same":  # TensorFlow divides by the cells inside the image
                ones = torch.ones_like(srcs[0][:1, :1])
                y = F.avg_pool2d(pad_same(srcs[0], k, s), k, s) / F.avg_pool2d(pad_same(ones, k, s), k, s)
            else:
                y = F.avg_pool2d(srcs[0], k, s)
        elif c == "ReLU":
            y = torch.relu(srcs[0])
        elif c == "BatchNormalization":
            h = srcs[0]
            n = w["moving_mean"].numel()
            shape = (1, n, 1, 1) if h.dim() == 4 else (1, n)
            if calibrate:
                dims = (0, 2, 3) if h.dim() == 4 else (0,)
                mean, var = h.mean(dim=dims), h.var(dim=dims)
                noise = torch.from_numpy(CAL_RNG.standard_normal(n))
                arrs = dict(weights[name])
                arrs["moving_mean"] = (mean + 0.1 * var.sqrt() * noise).numpy().astype(np.float32)
                arrs["moving_variance"] = (var * (0.8 + 0.4 * torch.from_numpy(CAL_RNG.random(n)))).numpy().astype(np.float32)
                weights[name] = [(k, arrs[k]) for k, _ in weights[name]]
                w = {s: torch.from_numpy(a).double() for s, a in weights[name]}
            g = w.get("gamma", torch.ones(n, dtype=torch.float64))
            bt = w.get("beta", torch.zeros(n, dtype=torch.float64))
            y = (h - w["moving_mean"].view(shape)) / torch.sqrt(w["moving_variance"].view(shape) + cfg["epsilon"])
            y = y * g.view(shape) + bt.view(shape)
        elif c == "Activation":
            y = activation(srcs[0], cfg["activation"])
        elif c == "MaxPooling2D":
            k, s = cfg["pool_size"], cfg["strides"]
            h = pad_same(srcs[0], k, s, float("-inf")) if cfg["padding"] == "same" else srcs[0]
            y = F.max_pool2d(h, k, s)
        elif c == "Add":
            y = sum(srcs[1:], srcs[0])
        elif c == "GlobalAveragePooling2D":
            y = srcs[0].mean(dim=(2, 3))
        elif c == "Dense":
            z = srcs[0] @ w["kernel"] + w["bias"]
            if name == pre_softmax:
                extra["logits"] = z
            y = activation(z, cfg["activation"])
        elif c == "Lambda":
            h = srcs[0]
            y = h / torch.sqrt(torch.clamp((h * h).sum(dim=1, keepdim=True), min=1e-12))
        elif c == "Concatenate":
            y = torch.cat(srcs, dim=1)
        elif c == "Dropout":
            y = srcs[0]
        elif c == "Flatten":
            y = srcs[0].permute(0, 2, 3, 1).reshape(srcs[0].shape[0], -1)
        else:
            raise ValueError(c)
        vals[name] = y
    outs = [vals[o[0]] for o in config["config"]["output_layers"]]
    return outs, extra, vals


# ---------------------------------------------------------------------------
# the files
# ---------------------------------------------------------------------------


def write_npy(outdir, name, arr):
    np.save(os.path.join(outdir, name + ".npy"), np.ascontiguousarray(arr, dtype=np.float32))


def calibrate(config, weights, shape, rng):
    """Moving statistics from a calibration batch (see torch_forward)."""
    with torch.no_grad():
        torch_forward(config, weights, [torch.from_numpy(rng.random(shape)).double()], calibrate=True)


def finish(outdir, name, config, weights, x, pre_softmax=None):
    outs, extra, vals = torch_forward(config, weights, [torch.from_numpy(x).double()], pre_softmax)
    write_npy(outdir, name + "_input", x)
    for i, o in enumerate(outs):
        write_npy(outdir, "%s_out%d" % (name, i + 1), o.numpy())
    for k, v in extra.items():
        write_npy(outdir, "%s_%s" % (name, k), v.numpy())
    return vals


def make_minixception_k20(outdir, rng):
    b = Builder("k20")
    x = b.input(48, 48, 1)
    y = minixception(b, x, 7)
    config = b.config("mini_XCEPTION", [x], [y])
    weights = make_weights(b, rng)
    calibrate(config, weights, (4, 1, 48, 48), rng)
    save_model(os.path.join(outdir, "minixception_k20.h5"), config, weights, "k20")
    vals = finish(outdir, "minixception_k20", config, weights, rng.random((2, 1, 48, 48)).astype(np.float32))
    write_npy(outdir, "minixception_k20_logits", vals[b.layers[-2]["name"]].numpy())


def make_adcorre_xception(outdir, rng, size=224, k=10, d=256, classes=7):
    b = Builder("tf24")
    x = b.input(size, size, 3)
    t = xception_trunk(b, x, shortcut_start=(0, 0))
    g = b.gap(t)
    heads = [b.l2(b.dense(g, d)) for _ in range(k)]
    cat = b.concat(heads)
    dp = b.dropout(cat, 0.5)
    out = b.dense(dp, classes, "softmax")
    config = b.config("model", [x], [out] + heads)
    weights = make_weights(b, rng)
    calibrate(config, weights, (2, 3, size, size), rng)
    save_model(os.path.join(outdir, "adcorre_xception.h5"), config, weights, "tf24")
    finish(outdir, "adcorre_xception", config, weights, rng.random((2, 3, size, size)).astype(np.float32),
           pre_softmax=out)


def make_adcorre_xception_small(outdir, rng):
    """The Ad-Corre Xception at 96x96 (a quicker spec of the same graph)."""
    b = Builder("tf24")
    x = b.input(96, 96, 3)
    t = xception_trunk(b, x, shortcut_start=(0, 0))
    g = b.gap(t)
    heads = [b.l2(b.dense(g, 256)) for _ in range(10)]
    out = b.dense(b.dropout(b.concat(heads), 0.5), 7, "softmax")
    config = b.config("model", [x], [out] + heads)
    weights = make_weights(b, rng)
    calibrate(config, weights, (2, 3, 96, 96), rng)
    save_model(os.path.join(outdir, "adcorre_xception_small.h5"), config, weights, "tf24")
    finish(outdir, "adcorre_xception_small", config, weights, rng.random((2, 3, 96, 96)).astype(np.float32),
           pre_softmax=out)


def make_multi_output(outdir, rng):
    """A graph of the rest of the layer set with three outputs: a softmax
    classifier, an L2-normalised embedding (Dense + BatchNormalization) and
    a feature map (NCHW)."""
    b = Builder("tf24")
    x = b.input(23, 19, 3)
    h = b.act(b.bn(b.conv(x, 8, 3, 2, "same", use_bias=False)), "relu")
    d = b.relu(b.bn(b.depthwise(h, 3, 1, "same", multiplier=2)))
    s = b.act(b.bn(b.sep(h, 16, 3, 1, "same")), "relu")
    cat = b.concat([d, s])
    a = b.avgpool(cat, 3, 2, "same")
    m = b.maxpool(cat, 3, 2, "same")
    fmap = b.add_([a, m])
    c = b.conv(fmap, 12, 1, 1, "valid", activation="relu")
    flat = b.flatten(c)
    probs = b.dense(b.dropout(flat, 0.25), 5, "softmax")
    emb = b.l2(b.bn(b.dense(b.gap(fmap), 6)))
    config = b.config("multi_output", [x], [probs, emb, fmap])
    weights = make_weights(b, rng)
    calibrate(config, weights, (4, 3, 23, 19), rng)
    save_model(os.path.join(outdir, "multi_output.h5"), config, weights, "tf24")
    finish(outdir, "multi_output", config, weights, rng.random((3, 3, 23, 19)).astype(np.float32), pre_softmax=probs)


def make_xception_notop(outdir, rng, size=96):
    b = Builder("tf24")
    x = b.input(size, size, 3)
    t = xception_trunk(b, x, shortcut_start=(4, 4))
    config = b.config("xception", [x], [t])
    weights = make_weights(b, rng)
    calibrate(config, weights, (2, 3, size, size), rng)
    version = VERSIONS["tf24"]
    with h5py.File(os.path.join(outdir, "xception_notop.h5"), "w") as f:
        save_weights_group(f, [l["name"] for l in b.layers], weights, "tf24", version)
    vals = finish(outdir, "xception_notop", config, weights, rng.random((2, 3, size, size)).astype(np.float32))
    write_npy(outdir, "xception_notop_features", vals[t].mean(dim=(2, 3)).numpy())


def make_chunked(outdir, rng):
    b = Builder("tf24")
    x = b.input(12, 12, 2)
    h = b.act(b.bn(b.conv(x, 4, 3, 2, "same")), "relu")
    h = b.maxpool(h, 2, 2, "valid")
    h = b.flatten(h)
    y = b.dense(b.dropout(h, 0.3), 5, "softmax")
    config = b.config("small", [x], [y])
    weights = make_weights(b, rng)
    calibrate(config, weights, (4, 2, 12, 12), rng)
    save_model(os.path.join(outdir, "chunked.h5"), config, weights, "tf24", limit=40)
    finish(outdir, "chunked", config, weights, rng.random((3, 2, 12, 12)).astype(np.float32))


def small_model(flatten=False):
    """12x12x2 -> Conv2D(4, 3, stride 2, same) -> BN -> ReLU -> GAP (or
    Flatten) -> Dense(5, softmax); layers 0..5 in that order."""
    b = Builder("tf24")
    x = b.input(12, 12, 2)
    h = b.act(b.bn(b.conv(x, 4, 3, 2, "same")), "relu")
    y = b.dense(b.flatten(h) if flatten else b.gap(h), 5, "softmax")
    return b, x, y


def write_variant(path, rng, mutate_config=None, mutate_file=None, flatten=False):
    """The small model's file with its config (after the weights were made)
    or the file itself changed."""
    b, x, y = small_model(flatten)
    config = b.config("small", [x], [y])
    weights = make_weights(b, rng)
    if mutate_config:
        mutate_config(config)
    save_model(path, config, weights, "tf24")
    if mutate_file:
        with h5py.File(path, "a") as f:
            mutate_file(f)


def make_hostile(outdir, rng):
    """hostile_<case>.h5: the small model's weights (a few hundred bytes)
    under a model_config that asks for absurd sizes; hostile_none.h5 is the
    unchanged file."""
    def layer(i, **cfg):
        def mutate(c):
            c["config"]["layers"][i]["config"].update(cfg)
        return mutate

    def huge_input(c):
        c["config"]["layers"][0]["config"]["batch_input_shape"] = [None, 10 ** 5, 10 ** 5, 2]

    out = lambda case: os.path.join(outdir, "hostile_%s.h5" % case)
    write_variant(out("none"), rng)
    write_variant(out("dense_units"), rng, layer(5, units=10 ** 9))
    write_variant(out("conv_filters"), rng, layer(1, filters=10 ** 8))
    write_variant(out("kernel_size"), rng, layer(1, kernel_size=[10 ** 4, 10 ** 4]))
    write_variant(out("flatten_input"), rng, huge_input, flatten=True)


def make_bad(outdir, rng):
    """Broken variants of the small model, one fault each (bad_<fault>.h5)."""
    def write(fault, mutate_config=None, mutate_file=None):
        write_variant(os.path.join(outdir, "bad_%s.h5" % fault), rng, mutate_config, mutate_file)

    def unknown_layer(c):
        c["config"]["layers"][2]["class_name"] = "LSTM"

    def other_lambda(c):
        l = c["config"]["layers"][3]
        code = compile("lambda x: x * 2", "<x>", "eval").co_consts[0]
        l["class_name"] = "Lambda"
        l["config"] = {"name": l["name"], "function": [base64.encodebytes(marshal.dumps(code)).decode("ascii"),
                                                       None, None], "function_type": "lambda", "arguments": {}}

    def missing_group(f):
        del f["model_weights/conv2d"]

    def missing_weight(f):
        del f["model_weights/batch_normalization/batch_normalization/moving_variance:0"]

    def wrong_shape(f):
        del f["model_weights/dense/dense/kernel:0"]
        f["model_weights/dense"].create_dataset("dense/kernel:0", data=np.zeros((3, 5), np.float32))

    write("unknown_layer", mutate_config=unknown_layer)
    write("other_lambda", mutate_config=other_lambda)
    write("missing_group", mutate_file=missing_group)
    write("missing_weight", mutate_file=missing_weight)
    write("wrong_shape", mutate_file=wrong_shape)
    with h5py.File(os.path.join(outdir, "bad_not_keras.h5"), "w") as f:
        f.create_dataset("x", data=np.zeros(3, np.float32))
    # a weights-only file of another network (mini-Xception) for Xception
    b = Builder("tf24")
    x = b.input(48, 48, 1)
    minixception(b, x, 7)
    w = make_weights(b, rng)
    with h5py.File(os.path.join(outdir, "bad_other_arch.h5"), "w") as f:
        save_weights_group(f, [l["name"] for l in b.layers], w, "tf24", VERSIONS["tf24"])


MAKERS = {"minixception_k20": make_minixception_k20, "adcorre_xception": make_adcorre_xception,
          "adcorre_xception_small": make_adcorre_xception_small, "multi_output": make_multi_output,
          "xception_notop": make_xception_notop, "chunked": make_chunked, "bad": make_bad,
          "hostile": make_hostile}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    names = sys.argv[2:] or list(MAKERS)
    torch.set_num_threads(1)
    for n in names:
        if n not in MAKERS:
            sys.exit("unknown file %s (known: %s)" % (n, ", ".join(MAKERS)))
        MAKERS[n](outdir, np.random.default_rng(sum(map(ord, n))))
        print("wrote", n, "in", outdir)


if __name__ == "__main__":
    main()
