"""Cost of one training step per model kind, for extrapolating to other machines:
operator calls (each a kernel launch on a GPU, ~10 us of dispatch each in eager mode),
matrix-product FLOPs, and the measured seconds of a step here.

    python -m collage_train.bench [--len 1024] [--batch 2] [--device cpu]"""
import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import ModelConfig
from .init import init_weights
from .model import HybridLM
from .train import loss_fn

VIEW_OPS = ("view", "reshape", "transpose", "expand", "as_strided", "slice", "select",
            "unsqueeze", "squeeze", "split", "permute", "detach", "alias", "empty", "unbind",
            "_unsafe_view", "resolve", "contiguous", "narrow", "lift", "aten::t")


def count_ops(fn):
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages()
               if e.key.startswith("aten::") and not any(v in e.key for v in VIEW_OPS))


def main(argv=None):
    ap = argparse.ArgumentParser(description="cost of a training step")
    ap.add_argument("--len", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--kinds", default="GDN,M2,GKA")
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    torch.set_flush_denormal(True)   # CPU: subnormal decays (e^-90) would dominate the time
    for kind in a.kinds.split(","):
        cfg = ModelConfig(vocab_size=1024, hidden_size=192, intermediate_size=448, num_heads=4,
                          num_kv_heads=2, head_dim=64, pattern=["*", kind, "*", kind])
        m = HybridLM(cfg)
        init_weights(m, 1)
        m.to(dev)
        ids = torch.randint(0, 1000, (a.batch, a.len + 1), device=dev)
        ans = torch.zeros_like(ids, dtype=torch.bool)
        ans[:, a.len // 2:a.len // 2 + 5] = True

        def step():
            loss, _, _ = loss_fn(m, ids, ans, 0.05, 1017)
            loss.backward()

        step()
        t = time.time()
        reps = 3
        for _ in range(reps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        sec = (time.time() - t) / reps
        n_ops = count_ops(step)
        with FlopCounterMode(display=False) as fc:
            step()
        flops = fc.get_total_flops()
        tok = a.batch * a.len
        print(f"{kind:4s} L={a.len} B={a.batch}: {n_ops} ops/step, "
              f"{flops / tok / 1e6:.1f} MFLOP/token (matrix products, fwd+bwd), "
              f"{sec:.2f} s/step = {tok / sec:.0f} tok/s on {dev}")


if __name__ == "__main__":
    main()
