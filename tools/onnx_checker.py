#!/usr/bin/python3
"""tools/onnx_checker.py - the ONNX project's own checker on a model file.

    /usr/bin/python3 tools/onnx_checker.py MODEL.onnx

Runs onnx.checker.check_model(model, full_check=True) (which includes shape
inference) and prints one JSON line: {"ok": true, "ir_version", "opset",
"nodes", "inputs", "outputs" (name -> dims, symbolic dims as strings),
"metadata"}; on failure {"ok": false, "error": "..."} and exit status 1.
"""
import json
import sys

import onnx


def dims(v):
    out = []
    for d in v.type.tensor_type.shape.dim:
        out.append(d.dim_param if d.HasField("dim_param") else d.dim_value)
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        m = onnx.load(sys.argv[1])
        onnx.checker.check_model(m, full_check=True)
    except Exception as e:  # the checker raises several exception types
        print(json.dumps({"ok": False, "error": str(e)[:2000]}))
        return 1
    print(json.dumps({
        "ok": True, "ir_version": m.ir_version,
        "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
        "nodes": len(m.graph.node),
        "ops": sorted({n.op_type for n in m.graph.node}),
        "inputs": {v.name: dims(v) for v in m.graph.input},
        "outputs": {v.name: dims(v) for v in m.graph.output},
        "metadata": {p.key: p.value for p in m.metadata_props},
        "onnx_version": onnx.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
