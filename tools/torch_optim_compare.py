#!/usr/bin/python3
"""torch_optim_compare.py - reference updates of torch.optim for spec/optim_spec.lua.

    /usr/bin/python3 tools/torch_optim_compare.py IN.safetensors OUT.safetensors

IN holds p0 [n] (initial parameters) and grads [T, n] (the fixed gradient of
each step), and metadata "configs": a JSON list of optimiser configurations
in adcorre's option names, e.g.
    {"opt": "Adam", "lr": 0.01, "decay": 1e-3, "clip": 1.0, "weight_decay": 0.1,
     "schedule": {"kind": "step", "every": 2, "gamma": 0.5}, "steps_per_epoch": 2}
For configuration i, OUT gets "p<i>" (parameters after T steps) and "lr<i>"
(the learning rate used at each step).

torch provides the update rules (SGD, Adam, AdamW), the gradient clipping
(clip_grad_norm_) and the schedules (StepLR, CosineAnnealingLR, CyclicLR).
Keras' time decay lr / (1 + decay * iterations) has no torch counterpart and is
applied as a factor on top; eps_mode "keras" (TensorFlow's ApplyAdam, eps
added to sqrt(v) before bias correction) is computed in float64 numpy.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402


def schedule_lrs(cfg, T):
    """Base learning rate for each of T steps from a torch scheduler."""
    lr = cfg["lr"]
    s = cfg.get("schedule")
    if not s:
        return [lr] * T
    spe = cfg.get("steps_per_epoch", 1)
    dummy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    kind = s["kind"]
    if kind == "step":
        sch = torch.optim.lr_scheduler.StepLR(dummy, step_size=s.get("every", 5), gamma=s.get("gamma", 0.1))
        per_step = False
    elif kind == "cosine":
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(dummy, T_max=s["T"], eta_min=s.get("eta_min", 0))
        per_step = s.get("unit", "epoch") == "step"
    elif kind == "cyclic":
        sch = torch.optim.lr_scheduler.CyclicLR(dummy, base_lr=s.get("base", lr), max_lr=s["max"],
                                                step_size_up=s.get("step_size", 2000),
                                                step_size_down=s.get("step_size_down"),
                                                mode=s.get("mode", "triangular"), gamma=s.get("gamma", 1.0),
                                                cycle_momentum=False)
        per_step = True
    else:
        raise ValueError(kind)
    out = []
    for k in range(T):
        out.append(dummy.param_groups[0]["lr"])
        dummy.step()
        if per_step or (k + 1) % spe == 0:
            sch.step()
    return out


def keras_adam(p0, grads, cfg, lrs):
    p = p0.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    b1, b2, eps = cfg.get("beta1", 0.9), cfg.get("beta2", 0.999), cfg.get("eps", 1e-8)
    for k, g in enumerate(grads):
        g = g.astype(np.float64)
        t = k + 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lrs[k] * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = p - lr_t * m / (np.sqrt(v) + eps)
    return p.astype(np.float32)


def run(p0, grads, cfg):
    T = grads.shape[0]
    decay = cfg.get("decay", 0.0)
    lrs = [lr / (1 + decay * k) for k, lr in enumerate(schedule_lrs(cfg, T))]
    if cfg.get("eps_mode") == "keras":
        assert not cfg.get("clip") and not cfg.get("weight_decay")
        return keras_adam(p0, grads, cfg, lrs), lrs
    param = torch.nn.Parameter(torch.tensor(p0))
    kind = cfg["opt"]
    if kind == "SGD":
        opt = torch.optim.SGD([param], lr=cfg["lr"], momentum=cfg.get("momentum", 0),
                              dampening=cfg.get("dampening", 0), weight_decay=cfg.get("weight_decay", 0),
                              nesterov=cfg.get("nesterov", False))
    elif kind in ("Adam", "AdamW"):
        cls = torch.optim.Adam if kind == "Adam" else torch.optim.AdamW
        opt = cls([param], lr=cfg["lr"], betas=(cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)),
                  eps=cfg.get("eps", 1e-8),
                  weight_decay=cfg.get("weight_decay", 0 if kind == "Adam" else 1e-2),
                  amsgrad=cfg.get("amsgrad", False))
    else:
        raise ValueError(kind)
    for k in range(T):
        param.grad = torch.tensor(grads[k]).clone()
        if cfg.get("clip"):
            torch.nn.utils.clip_grad_norm_([param], cfg["clip"])
        for gr in opt.param_groups:
            gr["lr"] = lrs[k]
        opt.step()
    return param.detach().numpy().copy(), lrs


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tensors, meta = safetensors_np.read(sys.argv[1])
    configs = json.loads(meta["configs"])
    out = {}
    for i, cfg in enumerate(configs, 1):
        p, lrs = run(tensors["p0"], tensors["grads"], cfg)
        out["p%d" % i] = p.astype(np.float32)
        out["lr%d" % i] = np.array(lrs, dtype=np.float64)
    safetensors_np.write(sys.argv[2], out, {"torch": torch.__version__})


if __name__ == "__main__":
    main()
