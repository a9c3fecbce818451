"""Initialization for training from scratch (the scheme mkmodel uses for random models,
spec-shaped): linear and embedding weights N(0, 0.02), residual output projections scaled
by 1/sqrt(2 layers), norm weights 1, decays A in [1, 16], dt log-uniform in
[1e-3, 1e-1] (dt_bias = softplus^-1(dt)), Mamba2 D = 1, biases 0, convs as PyTorch."""
import math

import torch
import torch.nn as nn

from .ops import NormWeight

RESIDUAL_OUT = ("o_proj", "out_proj", "down_proj")


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    n_layers = model.cfg.num_layers
    for name, mod in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            std = 0.02 / math.sqrt(2 * n_layers) if leaf in RESIDUAL_OUT else 0.02
            with torch.no_grad():
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * std)
                if getattr(mod, "bias", None) is not None:
                    mod.bias.zero_()
        elif isinstance(mod, nn.Conv1d):
            bound = 1.0 / math.sqrt(mod.weight.shape[-1])
            with torch.no_grad():
                mod.weight.copy_((torch.rand(mod.weight.shape, generator=g) * 2 - 1) * bound)
                if mod.bias is not None:
                    mod.bias.zero_()
        elif isinstance(mod, NormWeight):
            with torch.no_grad():
                mod.weight.fill_(1.0)
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        with torch.no_grad():
            if leaf == "A_log":
                p.copy_(torch.log(1 + 15 * torch.rand(p.shape, generator=g)))
            elif leaf == "dt_bias":
                lo, hi = math.log(1e-3), math.log(1e-1)
                dt = torch.exp(lo + torch.rand(p.shape, generator=g) * (hi - lo))
                p.copy_(dt + torch.log(-torch.expm1(-dt)))
            elif leaf == "D":
                p.fill_(1.0)
