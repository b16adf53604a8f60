#!/usr/bin/python3
"""torch_nn_compare.py - reference values for the adcorre.nn layers from PyTorch.

Builds small, seeded cases for Linear, Conv2d (several geometries, groups,
depthwise, Keras "same" padding), SeparableConv2d, BatchNorm2d and
BatchNorm1d (training mode with running statistics, evaluation mode;
BatchNorm2d also fused with the ReLU after it), MaxPool2d (including "same" padding), AvgPool2d, SoftMax, LogSoftMax,
L2Normalize and the cross-entropy (plain and class-weighted); runs forward and backward in PyTorch (float32, CPU)
and writes everything as a Lua file returning

    { torch = "<version>", cases = { {name=, kind=, args={...},
      tensors = { x = {shape={...}, data={...}}, ... }}, ... } }

spec/nn_torch_spec.lua loads it, rebuilds each layer with the same weights,
and compares output and gradients (input and parameters).

Usage: /usr/bin/python3 tools/torch_nn_compare.py OUT.lua
(spec/fixtures/nn/torch_cases.lua is this script's output, kept for machines
without torch.)
"""
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(20240607)
torch.set_num_threads(1)


def same_pads(n, k, s):
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pad_same(x, kh, kw, sh, sw, value=0.0):
    pt, pb = same_pads(x.shape[2], kh, sh)
    pl, pr = same_pads(x.shape[3], kw, sw)
    return F.pad(x, (pl, pr, pt, pb), value=value)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def conv_case(name, nin, nout, k, stride, pad, groups, bias, xshape):
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    x = leaf(torch.randn(*xshape))
    w = leaf(torch.randn(nout, nin // groups, kh, kw) * 0.3)
    b = leaf(torch.randn(nout)) if bias else None
    if pad == "same":
        y = F.conv2d(pad_same(x, kh, kw, sh, sw), w, b, (sh, sw), 0, 1, groups)
    else:
        ph, pw = (pad, pad) if isinstance(pad, int) else pad
        y = F.conv2d(x, w, b, (sh, sw), (ph, pw), 1, groups)
    gy = torch.randn_like(y)
    y.backward(gy)
    t = {"x": x, "weight": w, "y": y, "gy": gy, "gx": x.grad, "gweight": w.grad}
    if bias:
        t["bias"] = b
        t["gbias"] = b.grad
    args = [nin, nout, [kh, kw], [sh, sw], pad if pad == "same" else
            ([pad, pad] if isinstance(pad, int) else list(pad)), groups, {"bias": bias}]
    return {"name": name, "kind": "Conv2d", "args": args, "tensors": t}


def separable_case(name, nin, nout, k, stride, pad, xshape):
    x = leaf(torch.randn(*xshape))
    dw = leaf(torch.randn(nin, 1, k, k) * 0.3)
    pw = leaf(torch.randn(nout, nin, 1, 1) * 0.3)
    if pad == "same":
        h = F.conv2d(pad_same(x, k, k, stride, stride), dw, None, stride, 0, 1, nin)
    else:
        h = F.conv2d(x, dw, None, stride, pad, 1, nin)
    y = F.conv2d(h, pw)
    gy = torch.randn_like(y)
    y.backward(gy)
    t = {"x": x, "dweight": dw, "pweight": pw, "y": y, "gy": gy, "gx": x.grad,
         "gdweight": dw.grad, "gpweight": pw.grad}
    return {"name": name, "kind": "SeparableConv2d", "args": [nin, nout, k, stride, pad],
            "tensors": t}


def linear_case(name, nin, nout, n):
    x = leaf(torch.randn(n, nin))
    w = leaf(torch.randn(nout, nin) * 0.3)
    b = leaf(torch.randn(nout))
    y = F.linear(x, w, b)
    gy = torch.randn_like(y)
    y.backward(gy)
    return {"name": name, "kind": "Linear", "args": [nin, nout],
            "tensors": {"x": x, "weight": w, "bias": b, "y": y, "gy": gy, "gx": x.grad,
                        "gweight": w.grad, "gbias": b.grad}}


def bn_case(name, c, eps, momentum, training, xshape, kind="BatchNorm2d", relu=False):
    x = leaf(torch.randn(*xshape) * 1.5 + 0.7)
    w = leaf(torch.rand(c) + 0.5)
    b = leaf(torch.randn(c))
    rm = torch.randn(c) * 0.1
    rv = torch.rand(c) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=eps)
    if relu:  # BatchNorm2d(c, eps, momentum, {relu = true}): the fused batch norm + ReLU
        y = F.relu(y)
    gy = torch.randn_like(y)
    y.backward(gy)
    args = [c, eps, momentum, {"relu": True}] if relu else [c, eps, momentum]
    return {"name": name, "kind": kind, "args": args,
            "training": training,
            "tensors": {"x": x, "weight": w, "bias": b, "running_mean0": rm0,
                        "running_var0": rv0, "running_mean": rm, "running_var": rv, "y": y,
                        "gy": gy, "gx": x.grad, "gweight": w.grad, "gbias": b.grad}}


def rowwise_case(name, kind, shape):
    x = leaf(torch.randn(*shape) * 2)
    if kind == "SoftMax":
        y = F.softmax(x, -1)
    elif kind == "LogSoftMax":
        y = F.log_softmax(x, -1)
    else:  # L2Normalize, rows far from zero (eps conventions then agree)
        y = F.normalize(x, dim=-1, eps=1e-12)
    gy = torch.randn_like(y)
    y.backward(gy)
    return {"name": name, "kind": kind, "args": [],
            "tensors": {"x": x, "y": y, "gy": gy, "gx": x.grad}}


def ce_case(name, n, c, weighted):
    x = leaf(torch.randn(n, c) * 2)
    t = torch.randint(0, c, (n,))
    w = torch.rand(c) + 0.5 if weighted else None
    loss = F.cross_entropy(x, t, weight=w)
    loss.backward()
    tensors = {"x": x, "target": (t + 1).float(), "loss": loss.reshape(1), "gx": x.grad}
    if weighted:
        tensors["weights"] = w
    return {"name": name, "kind": "CrossEntropyCriterion", "args": [], "tensors": tensors}


def maxpool_case(name, k, stride, pad, xshape):
    x = leaf(torch.randn(*xshape))
    if pad == "same":
        y = F.max_pool2d(pad_same(x, k, k, stride, stride, float("-inf")), k, stride)
    else:
        y = F.max_pool2d(x, k, stride, pad)
    gy = torch.randn_like(y)
    y.backward(gy)
    return {"name": name, "kind": "MaxPool2d", "args": [k, stride, pad],
            "tensors": {"x": x, "y": y, "gy": gy, "gx": x.grad}}


def avgpool_case(name, k, stride, pad, xshape):
    x = leaf(torch.randn(*xshape))
    y = F.avg_pool2d(x, k, stride, pad, count_include_pad=True)
    gy = torch.randn_like(y)
    y.backward(gy)
    return {"name": name, "kind": "AvgPool2d", "args": [k, stride, pad],
            "tensors": {"x": x, "y": y, "gy": gy, "gx": x.grad}}


def cases():
    return [
        linear_case("linear 7->5", 7, 5, 4),
        conv_case("conv 3x3 s1 p1", 3, 4, 3, 1, 1, 1, True, (2, 3, 7, 6)),
        conv_case("conv 3x3 s2 p0 no bias", 4, 5, 3, 2, 0, 1, False, (2, 4, 9, 8)),
        conv_case("conv 1x1 s1", 6, 4, 1, 1, 0, 1, True, (2, 6, 5, 5)),
        conv_case("conv 1x1 s2 no bias", 4, 6, 1, 2, 0, 1, False, (2, 4, 7, 7)),
        conv_case("conv 5x3 s(2,1) p(2,1)", 2, 3, (5, 3), (2, 1), (2, 1), 1, True, (2, 2, 9, 7)),
        conv_case("conv groups 2", 4, 6, 3, 1, 1, 2, True, (2, 4, 6, 6)),
        conv_case("conv depthwise", 5, 5, 3, 1, 1, 5, False, (2, 5, 6, 7)),
        conv_case("conv depthwise x2 s2", 3, 6, 3, 2, 1, 3, True, (2, 3, 8, 7)),
        conv_case("conv 3x3 s2 same", 3, 4, 3, 2, "same", 1, True, (2, 3, 8, 7)),
        separable_case("separable 3x3 p1", 4, 6, 3, 1, 1, (2, 4, 6, 6)),
        separable_case("separable 3x3 s2 same", 3, 5, 3, 2, "same", (2, 3, 7, 8)),
        bn_case("batchnorm2d train keras", 4, 1e-3, 0.01, True, (3, 4, 5, 4)),
        bn_case("batchnorm2d train torch", 3, 1e-5, 0.1, True, (2, 3, 4, 4)),
        bn_case("batchnorm2d eval", 4, 1e-3, 0.01, False, (2, 4, 3, 5)),
        bn_case("batchnorm1d train", 5, 1e-3, 0.01, True, (6, 5), "BatchNorm1d"),
        bn_case("batchnorm1d eval", 5, 1e-5, 0.1, False, (4, 5), "BatchNorm1d"),
        rowwise_case("softmax", "SoftMax", (4, 7)),
        rowwise_case("logsoftmax", "LogSoftMax", (4, 7)),
        rowwise_case("l2normalize", "L2Normalize", (5, 9)),
        ce_case("cross-entropy", 6, 7, False),
        ce_case("cross-entropy weighted", 6, 5, True),
        maxpool_case("maxpool 2x2 s2", 2, 2, 0, (2, 3, 6, 6)),
        maxpool_case("maxpool 3x3 s2 same", 3, 2, "same", (2, 3, 7, 8)),
        maxpool_case("maxpool 3x3 s2 same even", 3, 2, "same", (2, 2, 8, 8)),
        maxpool_case("maxpool 3x3 s1 p1", 3, 1, 1, (1, 2, 5, 6)),
        avgpool_case("avgpool 3x3 s2 p1", 3, 2, 1, (2, 2, 7, 6)),
        bn_case("batchnorm2d + relu train keras", 4, 1e-3, 0.01, True, (3, 4, 5, 7), relu=True),
        bn_case("batchnorm2d + relu train wide rows", 3, 1e-5, 0.1, True, (2, 3, 9, 11), relu=True),
        bn_case("batchnorm2d + relu eval", 4, 1e-3, 0.01, False, (2, 4, 6, 5), relu=True),
    ]


def lua_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua_value(e) for e in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (k, lua_value(e)) for k, e in v.items()) + "}"
    raise TypeError(type(v))


def lua_tensor(t):
    t = t.detach().contiguous().view(-1).tolist()
    return ", ".join("%.9g" % v for v in t)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    out = sys.argv[1]
    lines = ["-- generated by tools/torch_nn_compare.py with torch %s; do not edit" % torch.__version__,
             "return {", '  torch = "%s",' % torch.__version__, "  cases = {"]
    for c in cases():
        lines.append("    {")
        lines.append('      name = "%s", kind = "%s",' % (c["name"], c["kind"]))
        lines.append("      args = %s," % lua_value(c["args"]))
        if "training" in c:
            lines.append("      training = %s," % lua_value(c["training"]))
        lines.append("      tensors = {")
        for k, t in c["tensors"].items():
            lines.append("        %s = { shape = %s, data = { %s } }," %
                         (k, lua_value(list(t.shape)), lua_tensor(t)))
        lines.append("      },")
        lines.append("    },")
    lines.append("  },")
    lines.append("}")
    tmp = out + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
