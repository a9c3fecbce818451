"""Building blocks of spec/MODEL.md §3, written for any float dtype (float64 for the
reference logits, float32 / bf16 autocast for training).

tf32() rounds a tensor's mantissa to 10 bits (round to nearest, ties away from zero,
like the cvt.rna.tf32 of Triton's TF32 tl.dot); the golden check uses it to emulate the
reference kernels. Everything else is plain math."""
import torch
import torch.nn.functional as F

_TF32 = {"on": False}


def set_tf32_emulation(on):
    """Round the operands of the SSM cores' products to TF32 (golden check only)."""
    _TF32["on"] = bool(on)


def tf32(x):
    if not _TF32["on"]:
        return x
    assert x.dtype in (torch.float32, torch.float64)
    x32 = x.to(torch.float32)
    bits = x32.view(torch.int32)
    # add half an ulp of the 10-bit mantissa to the magnitude, then clear the low 13 bits
    rounded = (bits + 0x1000) & ~0x1FFF
    return rounded.view(torch.float32).to(x.dtype)


def mm(a, b):
    """a @ b with TF32-rounded operands when the emulation is on."""
    return torch.matmul(tf32(a), tf32(b))


def rms_norm(x, weight, eps):
    """Qwen3RMSNorm (§3.1): normalize in fp32 (or fp64), cast back, times weight."""
    xf = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
    y = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return weight.to(x.dtype) * y


def gated_rms_norm_fla(o, z, weight, eps):
    """FusedRMSNormGated (§3.2): (o * rstd) * w * z * sigmoid(z), per head vector."""
    rstd = torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + eps)
    return o * rstd * weight * z * torch.sigmoid(z)


def gated_rms_norm_m2(y, z, weight, group, eps):
    """Mamba2 RMSNormGated (§3.3): u = y * silu(z), RMS per group of channels, times w."""
    u = y * F.silu(z)
    shp = u.shape
    ug = u.reshape(*shp[:-1], shp[-1] // group, group)
    ug = ug * torch.rsqrt(ug.pow(2).mean(-1, keepdim=True) + eps)
    return ug.reshape(shp) * weight


def l2norm_fla(x, eps=1e-6):
    """fla in-kernel L2 norm (§3.5, GDN): x / sqrt(sum x^2 + eps)."""
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps)


def l2norm_gka(x, eps=1e-6):
    """HF GKA L2 norm (§3.5): x / (||x|| + eps)."""
    return x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + eps)


def short_conv(x, weight, bias=None):
    """Causal depthwise conv (§3.4) over x [B, L, C] with weight [C, 1, W], then SiLU.
    w[c, W-1] multiplies the current token; inputs before the start are zeros."""
    W = weight.shape[-1]
    y = F.conv1d(x.transpose(1, 2), weight.to(x.dtype), None if bias is None else bias.to(x.dtype),
                 padding=W - 1, groups=x.shape[-1])
    return F.silu(y[..., : x.shape[1]].transpose(1, 2))


def softplus(x):
    """softplus with the usual threshold 20 (§3.6)."""
    return F.softplus(x, beta=1.0, threshold=20.0)


def rope_cos_sin(positions, head_dim, theta, dtype):
    """cos/sin [L, D] of rotate-half RoPE (§3.7) for integer positions [L]."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64,
                                        device=positions.device) / head_dim))
    ang = positions.to(torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x [B, L, H, D]; cos/sin [L, D]."""
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[None, :, None, :] + rot * sin[None, :, None, :]


def expand_heads(x, groups):
    """GQA expansion (§3.8): [B, L, Hkv, D] -> [B, L, Hkv*groups, D], head h <- h // groups."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=2)


def pad_to_chunks(x, chunk, dim):
    """Zero-pads dimension dim of x up to a multiple of chunk."""
    L = x.shape[dim]
    pad = (-L) % chunk
    if pad == 0:
        return x
    shape = list(x.shape)
    shape[dim] = pad
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def causal_decay(cum):
    """exp(cum[t] - cum[s]) for s <= t, else 0; cum [..., C] -> [..., C, C]."""
    C = cum.shape[-1]
    diff = cum[..., :, None] - cum[..., None, :]
    mask = torch.ones(C, C, dtype=torch.bool, device=cum.device).tril()
    return torch.exp(torch.where(mask, diff, torch.full_like(diff, float("-inf"))))


class NormWeight(torch.nn.Module):
    """A module that only holds `weight` (so state_dict names read `<name>.weight`)."""

    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))


def no_autocast(x):
    """Context that turns autocast off for x's device (the SSM cores run in fp32)."""
    dev = x.device.type if x.device.type in ("cuda", "cpu") else "cpu"
    return torch.autocast(device_type=dev, enabled=False)
