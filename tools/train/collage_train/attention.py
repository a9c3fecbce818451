"""Attention (`*`, spec/MODEL.md §5) and sliding-window attention (`SWA`, §6)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import NormWeight, apply_rope, expand_heads, rms_norm, rope_cos_sin


class Attention(nn.Module):
    def __init__(self, cfg, window=None):
        super().__init__()
        Dm, Hq, Hkv, D = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.Hq, self.Hkv, self.D = Hq, Hkv, D
        self.eps, self.theta, self.window = cfg.rms_norm_eps, cfg.rope_theta, window
        self.q_proj = nn.Linear(Dm, Hq * D, bias=False)
        self.k_proj = nn.Linear(Dm, Hkv * D, bias=False)
        self.v_proj = nn.Linear(Dm, Hkv * D, bias=False)
        self.o_proj = nn.Linear(Hq * D, Dm, bias=False)
        self.q_norm = NormWeight(D)
        self.k_norm = NormWeight(D)

    def forward(self, x, positions):
        B, L, _ = x.shape
        q = rms_norm(self.q_proj(x).view(B, L, self.Hq, self.D), self.q_norm.weight, self.eps)
        k = rms_norm(self.k_proj(x).view(B, L, self.Hkv, self.D), self.k_norm.weight, self.eps)
        v = self.v_proj(x).view(B, L, self.Hkv, self.D)
        cos, sin = rope_cos_sin(positions, self.D, self.theta, q.dtype)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        G = self.Hq // self.Hkv
        q, k, v = (t.transpose(1, 2) for t in (q, expand_heads(k, G), expand_heads(v, G)))
        if self.window is None:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # keys [i - w + 1, i] (§6)
            i = torch.arange(L, device=x.device)
            keep = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < self.window)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return self.o_proj(o.transpose(1, 2).reshape(B, L, self.Hq * self.D))
