"""Gated DeltaNet layer (`GDN`, spec/MODEL.md §8) in the WY chunk form (§8.2).

Per chunk (all chunks at once): A[t,s] = beta_t e^{G_t-G_s} k_t.k_s (s<t), and with
T = (I+A)^-1: W = T diag(beta e^G) K, U0 = T diag(beta) V (triangular solves). Then a
loop over chunks passes the state: U = U0 - W S0, o = s(e^G q S0 + (decay * q k^T) U),
S_end = e^{G_C} S0 + (e^{G_C-G} k)^T U."""
import torch
import torch.nn as nn

from .ops import (NormWeight, causal_decay, expand_heads, gated_rms_norm_fla, l2norm_fla, mm,
                  no_autocast, pad_to_chunks, short_conv, softplus)


def gated_delta_chunk(q, k, v, beta, g, scale, chunk):
    """q, k (L2-normalized), v [B, L, H, D]; beta, g [B, L, H]; zero initial state.
    Returns o [B, L, H, D]."""
    Bsz, L, H, D = q.shape
    q, k, v, beta, g = (pad_to_chunks(t, chunk, 1) for t in (q, k, v, beta, g))
    nc = q.shape[1] // chunk

    def chunks(t):
        return t.reshape(Bsz, nc, chunk, H, *t.shape[3:]).transpose(1, 3).transpose(2, 3)

    q, k, v, beta, g = (chunks(t) for t in (q, k, v, beta, g))   # [B,H,nc,C,(D)]
    cum = torch.cumsum(g, dim=-1)
    decay = causal_decay(cum)                                     # incl. diagonal
    eye = torch.eye(chunk, dtype=q.dtype, device=q.device)
    A = (beta[..., :, None] * decay * mm(k, k.transpose(-1, -2))).tril(-1)
    lhs = eye + A
    W = torch.linalg.solve_triangular(lhs, (beta * torch.exp(cum))[..., None] * k,
                                      upper=False, unitriangular=True)
    U0 = torch.linalg.solve_triangular(lhs, beta[..., None] * v, upper=False, unitriangular=True)
    qk = decay * mm(q, k.transpose(-1, -2))
    qg = q * torch.exp(cum)[..., None]
    kg = k * torch.exp(cum[..., -1:] - cum)[..., None]
    total = torch.exp(cum[..., -1])
    S = q.new_zeros(Bsz, H, D, v.shape[-1])
    outs = []
    for c in range(nc):
        U = U0[:, :, c] - mm(W[:, :, c], S)
        outs.append(scale * (mm(qg[:, :, c], S) + mm(qk[:, :, c], U)))
        S = total[:, :, c, None, None] * S + mm(kg[:, :, c].transpose(-1, -2), U)
    o = torch.stack(outs, dim=2)                                  # [B,H,nc,C,D]
    return o.transpose(2, 3).transpose(1, 3).reshape(Bsz, nc * chunk, H, -1)[:, :L]


class GatedDeltaNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        Dm, Hq, Hkv, D = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.Hq, self.Hkv, self.head_dim = Hq, Hkv, D
        self.norm_eps, self.chunk = cfg.gdn_norm_eps, cfg.ssm_chunk
        self.q_proj = nn.Linear(Dm, Hq * D, bias=False)
        self.k_proj = nn.Linear(Dm, Hkv * D, bias=False)
        self.v_proj = nn.Linear(Dm, Hkv * D, bias=False)
        self.b_proj = nn.Linear(Dm, Hq, bias=False)
        self.gk_proj = nn.Linear(Dm, Hq, bias=False)
        self.A_log = nn.Parameter(torch.zeros(Hq))
        self.dt_bias = nn.Parameter(torch.zeros(Hq))
        self.q_conv1d = nn.Conv1d(Hq * D, Hq * D, 4, groups=Hq * D, bias=False)
        self.k_conv1d = nn.Conv1d(Hkv * D, Hkv * D, 4, groups=Hkv * D, bias=False)
        self.v_conv1d = nn.Conv1d(Hkv * D, Hkv * D, 4, groups=Hkv * D, bias=False)
        self.g_proj = nn.Linear(Dm, Hq * D, bias=False)
        self.o_norm = NormWeight(D)
        self.o_proj = nn.Linear(Hq * D, Dm, bias=False)

    def forward(self, x, positions=None):
        Bsz, L, _ = x.shape
        Hq, Hkv, D = self.Hq, self.Hkv, self.head_dim
        q = short_conv(self.q_proj(x), self.q_conv1d.weight)
        k = short_conv(self.k_proj(x), self.k_conv1d.weight)
        v = short_conv(self.v_proj(x), self.v_conv1d.weight)
        braw, graw, z = self.b_proj(x), self.gk_proj(x), self.g_proj(x)
        with no_autocast(x):
            f = torch.float64 if x.dtype == torch.float64 else torch.float32
            G = Hq // Hkv
            q = l2norm_fla(q.reshape(Bsz, L, Hq, D).to(f))
            k = l2norm_fla(expand_heads(k.reshape(Bsz, L, Hkv, D).to(f), G))
            v = expand_heads(v.reshape(Bsz, L, Hkv, D).to(f), G)
            beta = torch.sigmoid(braw.to(f))
            g = -torch.exp(self.A_log.to(f)) * softplus(graw.to(f) + self.dt_bias.to(f))
            o = gated_delta_chunk(q, k, v, beta, g, D ** -0.5, self.chunk)
            o = gated_rms_norm_fla(o, z.reshape(Bsz, L, Hq, D).to(f), self.o_norm.weight.to(f),
                                   self.norm_eps)
        return self.o_proj(o.reshape(Bsz, L, Hq * D).to(x.dtype))
