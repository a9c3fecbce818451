"""Mamba2 layer (`M2`, GQA variant; spec/MODEL.md §7), SSD chunk form (§7.2).

The chunk scan: every chunk's own contribution and its local end state are computed for
all chunks at once; only the chunk-start states are passed along in a short loop over
chunks (L / chunk steps of element-wise work)."""
import torch
import torch.nn as nn

from .ops import (NormWeight, causal_decay, expand_heads, gated_rms_norm_m2, mm, no_autocast,
                  pad_to_chunks, rms_norm, short_conv, softplus)


def ssd_scan(X, Bm, Cm, dt, A, chunk):
    """y_t = sum_{s<=t} exp(sum_{s<r<=t} dt_r A) dt_s (B_s . C_t) X_s, zero initial state.
    X [B, L, H, P], Bm/Cm [B, L, H, N], dt [B, L, H], A [H]. Returns y [B, L, H, P]."""
    Bsz, L, H, P = X.shape
    N = Bm.shape[-1]
    X, Bm, Cm, dt = (pad_to_chunks(t, chunk, 1) for t in (X, Bm, Cm, dt))
    nc = X.shape[1] // chunk

    def chunks(t):  # [B, L, H, ...] -> [B, H, nc, C, ...]
        return t.reshape(Bsz, nc, chunk, H, *t.shape[3:]).transpose(1, 3).transpose(2, 3)

    Xc, Bc, Cc = chunks(X), chunks(Bm), chunks(Cm)
    dtc = chunks(dt)                                  # [B, H, nc, C]
    cum = torch.cumsum(dtc * A[None, :, None, None], dim=-1)
    decay = causal_decay(cum)                         # [B, H, nc, C, C]
    scores = mm(Cc, Bc.transpose(-1, -2)) * decay * dtc[..., None, :]
    y = mm(scores, Xc)                                # intra-chunk part
    # local end state of each chunk: sum_s exp(cum_C - cum_s) dt_s X_s (x) B_s  -> [B,H,nc,P,N]
    w = torch.exp(cum[..., -1:] - cum) * dtc
    local = mm((Xc * w[..., None]).transpose(-1, -2), Bc)
    total = torch.exp(cum[..., -1])                   # [B, H, nc]
    S = Xc.new_zeros(Bsz, H, P, N)
    starts = []
    for c in range(nc):
        starts.append(S)
        S = total[:, :, c, None, None] * S + local[:, :, c]
    S0 = torch.stack(starts, dim=2)                   # [B, H, nc, P, N]
    y = y + torch.exp(cum)[..., None] * mm(Cc, S0.transpose(-1, -2))
    y = y.transpose(2, 3).transpose(1, 3).reshape(Bsz, nc * chunk, H, P)
    return y[:, :L]


class Mamba2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        Dm, Hq, Hkv, D = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.Hq, self.Hkv = Hq, Hkv
        self.d_inner, self.d_xb = Hq * D, Hkv * D
        self.conv_dim = self.d_inner + 2 * self.d_xb
        self.eps, self.chunk = cfg.rms_norm_eps, cfg.ssm_chunk
        self.in_proj = nn.Linear(Dm, 2 * self.d_inner + 2 * self.d_xb + Hq, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, 4, groups=self.conv_dim, bias=True)
        self.dt_bias = nn.Parameter(torch.zeros(Hq))
        self.A_log = nn.Parameter(torch.zeros(Hq))
        self.D = nn.Parameter(torch.ones(Hq))
        self.norm = NormWeight(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, Dm, bias=False)
        self.B_norm = NormWeight(D)
        self.C_norm = NormWeight(D)
        self.head_dim = D

    def forward(self, x, positions=None):
        Bsz, L, _ = x.shape
        Hq, Hkv, D, di, dxb = self.Hq, self.Hkv, self.head_dim, self.d_inner, self.d_xb
        zxbcdt = self.in_proj(x)
        z, xr, Br, Cr, dtr = torch.split(zxbcdt, [di, dxb, dxb, di, Hq], dim=-1)
        # B/C norms before the conv (§7.1 step 2), eps 1e-6
        Br = rms_norm(Br.reshape(Bsz, L, Hkv, D), self.B_norm.weight, 1e-6).reshape(Bsz, L, dxb)
        Cr = rms_norm(Cr.reshape(Bsz, L, Hq, D), self.C_norm.weight, 1e-6).reshape(Bsz, L, di)
        xbc = short_conv(torch.cat([xr, Br, Cr], dim=-1), self.conv1d.weight, self.conv1d.bias)
        xc, Bc, Cc = torch.split(xbc, [dxb, dxb, di], dim=-1)
        G = Hq // Hkv
        with no_autocast(x):
            f = torch.float64 if x.dtype == torch.float64 else torch.float32
            X = expand_heads(xc.reshape(Bsz, L, Hkv, D), G).to(f)
            Bh = expand_heads(Bc.reshape(Bsz, L, Hkv, D), G).to(f)
            Ch = Cc.reshape(Bsz, L, Hq, D).to(f)
            dt = softplus(dtr.to(f) + self.dt_bias.to(f))
            A = -torch.exp(self.A_log.to(f))
            y = ssd_scan(X, Bh, Ch, dt, A, self.chunk)
            y = y + self.D.to(f)[None, None, :, None] * X
            y = gated_rms_norm_m2(y.reshape(Bsz, L, di), z.to(f), self.norm.weight.to(f), D, 1e-5)
        return self.out_proj(y.to(x.dtype))
