"""Initialization for training from scratch (the scheme mkmodel uses for random models,
spec-shaped): linear and embedding weights N(0, 0.02), residual output projections scaled
by 1/sqrt(2 layers), norm weights 1, decays A in [1, 16], dt log-uniform in
[1e-3, 1e-1] (dt_bias = softplus^-1(dt)), Mamba2 D = 1, biases 0, convs as PyTorch.
With zero_ssm_out the SSM mixers' output projections start at zero: the model starts as
its attention layers, whose copy (induction) circuit forms 2-3x sooner that way with M2
layers (their random outputs slow it), and the SSM layers grow in from the first step."""
import math

import torch
import torch.nn as nn

from .ops import NormWeight

RESIDUAL_OUT = ("o_proj", "out_proj", "down_proj")
SSM_MIXERS = ("mamba", "gdn", "gka")


def is_ssm_out(name):
    """model.layers.<i>.<mamba|gdn|gka>.<out_proj|o_proj>.weight"""
    parts = name.split(".")
    return (len(parts) >= 3 and parts[-3] in SSM_MIXERS and parts[-2] in ("o_proj", "out_proj")
            and parts[-1] == "weight")


def init_weights(model, seed, zero_ssm_out=False):
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
            elif zero_ssm_out and is_ssm_out(name):
                p.zero_()
