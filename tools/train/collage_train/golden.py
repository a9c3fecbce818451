"""Checks this PyTorch model against the reference implementation's golden data
(shared/golden/<case>: config.json, model.safetensors, inputs_and_outputs.safetensors).

    python -m collage_train.golden --shared /work/shared [--dtype float64] [--tf32]

Prints, per case, max|got - ref| / max|ref| for every layer's output and the logits, and
exits 1 if the logits exceed the tolerance. --tf32 rounds the operands of the SSM cores'
matrix products to TF32, as the reference's Triton kernels do (README of golden/)."""
import argparse
import os
import sys

import torch
from safetensors.torch import load_file

from .checkpoint import load_model
from .ops import set_tf32_emulation

CASES = ("m2", "gdn", "gka", "gka_iter10", "gka_iter0", "swa")


def rel(got, ref):
    ref = ref.to(torch.float64)
    return ((got.to(torch.float64) - ref).abs().max() / ref.abs().max()).item()


def check_case(shared, case, dtype):
    d = os.path.join(shared, "golden", case)
    model = load_model(d, dtype=dtype)
    io = load_file(os.path.join(d, "inputs_and_outputs.safetensors"))
    hidden = []
    with torch.no_grad():
        logits = model(io["input_ids"], hidden_out=hidden)
    errs = {"embed": rel(hidden[0], io["hidden.embed"])}
    for i in range(model.cfg.num_layers):
        errs[f"layer{i}({model.cfg.pattern[i]})"] = rel(hidden[i + 1], io[f"hidden.layer{i}"])
    errs["final_norm"] = rel(hidden[-1], io["hidden.final_norm"])
    errs["logits"] = rel(logits, io["logits"])
    return errs


def tf32_noise(shared, case):
    """max|exact - tf32-emulated| / max|exact| of the logits: how much TF32 rounding of the
    SSM cores' products alone moves this case (the floor under any comparison with the
    reference, whose Triton kernels round differently)."""
    d = os.path.join(shared, "golden", case)
    model = load_model(d, dtype=torch.float64)
    ids = load_file(os.path.join(d, "inputs_and_outputs.safetensors"))["input_ids"]
    with torch.no_grad():
        set_tf32_emulation(False)
        exact = model(ids)
        set_tf32_emulation(True)
        rounded = model(ids)
        set_tf32_emulation(False)
    return rel(rounded, exact)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.environ.get("COLLAGE_SHARED", "/work/shared"))
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--tf32", action="store_true", help="emulate TF32 products in SSM cores")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--tol", type=float, default=None,
                    help="logits tolerance (default: 1e-4 m2/swa, 1e-3 gdn, 2e-2 gka)")
    ap.add_argument("--noise", action="store_true",
                    help="print how far TF32 rounding alone moves each case's logits")
    a = ap.parse_args(argv)
    if a.noise:
        for case in a.cases.split(","):
            print(f"{case:11s} tf32 rounding moves the logits by {tf32_noise(a.shared, case):.2e}")
        return 0
    set_tf32_emulation(a.tf32)
    dtype = getattr(torch, a.dtype)
    worst_ok = True
    for case in a.cases.split(","):
        errs = check_case(a.shared, case, dtype)
        tol = a.tol if a.tol is not None else (2e-2 if case.startswith("gka") else
                                                1e-3 if case == "gdn" else 1e-4)
        ok = errs["logits"] <= tol
        worst_ok &= ok
        body = "  ".join(f"{k} {v:.2e}" for k, v in errs.items())
        print(f"{case:11s} {'ok  ' if ok else 'FAIL'} {body}")
    return 0 if worst_ok else 1


if __name__ == "__main__":
    sys.exit(main())
