"""Gated KalmaNet layer (`GKA`, spec/MODEL.md §9) in the chunk form (§9.2).

Chunk-start states H0 (Gram) and S0 (GLA) come from a short loop over chunks; every
token's ridge (lambda_t = r ||H_t||_F, the norm by the exact expansion of §9.2) and its
num_iter Chebyshev steps with its own H_t (§9.1 step 10) run for all chunks at once:
H_t x = e^{G_t} H0 x + sum_{s<=t} e^{G_t-G_s} k_s (k_s . x)."""
import torch
import torch.nn as nn

from .ops import (NormWeight, causal_decay, expand_heads, gated_rms_norm_fla, l2norm_gka, mm,
                  no_autocast, pad_to_chunks, short_conv, softplus)


def chunk_start_states(k, v, cum, total):
    """H0 = sum e^{..} k k^T and S0 = sum e^{..} k v^T at every chunk start (zero at 0).
    k, v [B,H,nc,C,D]; cum [B,H,nc,C]. Returns H0, S0 [B,H,nc,D,D]."""
    w = torch.exp(cum[..., -1:] - cum)[..., None]
    kw = (k * w).transpose(-1, -2)
    localH, localS = mm(kw, k), mm(kw, v)
    H = k.new_zeros(localH[:, :, 0].shape)
    S = k.new_zeros(localS[:, :, 0].shape)
    Hs, Ss = [], []
    for c in range(k.shape[2]):
        Hs.append(H)
        Ss.append(S)
        H = total[:, :, c, None, None] * H + localH[:, :, c]
        S = total[:, :, c, None, None] * S + localS[:, :, c]
    return torch.stack(Hs, dim=2), torch.stack(Ss, dim=2)


def chebyshev_solve(q, k, H0, eg, decay, num_iter, ridge):
    """x ~= (H_t + lambda_t I)^-1 q_t by num_iter Chebyshev steps from x = tau q (§9.1.10).
    q, k [B,H,nc,C,D]; H0 [B,H,nc,D,D]; eg = e^{G_t} [B,H,nc,C]; decay [B,H,nc,C,C]."""
    kk = mm(k, k.transpose(-1, -2))
    kHk = (mm(k, H0) * k).sum(-1)                                  # k_s^T H0 k_s
    h0sq = H0.pow(2).sum((-1, -2))[..., None]                      # ||H0||_F^2
    term3 = (mm(decay, kk.pow(2)) * decay).sum(-1)
    phi2 = eg.pow(2) * h0sq + 2 * eg * mm(decay, kHk[..., None])[..., 0] + term3
    phi = torch.sqrt(phi2.clamp_min(0))
    lam = ridge * phi
    tau = (2.0 / (2 * lam + phi))[..., None]
    # rho^2/4 = (phi / (2 lambda + phi) / 2)^2 = (1 / (2 (1 + 2r)))^2: the same for every
    # token (lambda = r phi), so the omega sequence is a list of numbers
    rho4 = (1.0 / (2.0 * (1.0 + 2.0 * ridge))) ** 2
    kt = k.transpose(-1, -2)
    lam = lam[..., None]
    eg = eg[..., None]
    x_prev = torch.zeros_like(q)
    x = tau * q
    tau_q = x
    omega = 2.0
    for _ in range(num_iter):
        omega = 1.0 / (1.0 - rho4 * omega)
        # (H_t + lambda_t I) x_t for every token (§9.2)
        hx = eg * mm(x, H0) + mm(decay * mm(x, kt), k) + lam * x
        x, x_prev = omega * (x - tau * hx + tau_q) + (1.0 - omega) * x_prev, x
    return x


def gka_chunk(q, k, v, alpha, g, scale, num_iter, ridge, chunk):
    """q, k (normalized, beta-scaled k), v (beta-scaled) [B, L, H, D]; alpha, g [B, L, H];
    zero initial states. Returns o [B, L, H, D]."""
    Bsz, L, H, D = q.shape
    q, k, v, alpha, g = (pad_to_chunks(t, chunk, 1) for t in (q, k, v, alpha, g))
    nc = q.shape[1] // chunk

    def chunks(t):
        return t.reshape(Bsz, nc, chunk, H, *t.shape[3:]).transpose(1, 3).transpose(2, 3)

    q, k, v, alpha, g = (chunks(t) for t in (q, k, v, alpha, g))
    cum = torch.cumsum(g, dim=-1)
    decay = causal_decay(cum)
    eg = torch.exp(cum)
    H0, S0 = chunk_start_states(k, v, cum, torch.exp(cum[..., -1]))
    if num_iter > 0:
        x = chebyshev_solve(q, k, H0, eg, decay, num_iter, ridge)
        q = q + alpha[..., None] * (x - q)                           # §9.1 step 11
    o = scale * (eg[..., None] * mm(q, S0) + mm(decay * mm(q, k.transpose(-1, -2)), v))
    return o.transpose(2, 3).transpose(1, 3).reshape(Bsz, nc * chunk, H, -1)[:, :L]


class GatedKalmaNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        Dm, Hq, Hkv, D = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.Hq, self.Hkv, self.head_dim = Hq, Hkv, D
        self.num_iter, self.ridge = cfg.gka_num_iter, cfg.gka_ridge
        self.norm_eps, self.chunk = cfg.gka_norm_eps, cfg.ssm_chunk
        self.q_proj = nn.Linear(Dm, Hq * D, bias=False)
        self.k_proj = nn.Linear(Dm, Hkv * D, bias=False)
        self.v_proj = nn.Linear(Dm, Hkv * D, bias=False)
        self.a_proj = nn.Linear(Dm, Hq, bias=False)
        self.b_proj = nn.Linear(Dm, Hq, bias=True)
        self.alpha_proj = nn.Linear(Dm, Hq, bias=True)
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
        braw, araw, alraw, z = self.b_proj(x), self.a_proj(x), self.alpha_proj(x), self.g_proj(x)
        with no_autocast(x):
            f = torch.float64 if x.dtype == torch.float64 else torch.float32
            G = Hq // Hkv
            q = l2norm_gka(q.reshape(Bsz, L, Hq, D).to(f))
            k = l2norm_gka(expand_heads(k.reshape(Bsz, L, Hkv, D).to(f), G))
            v = expand_heads(v.reshape(Bsz, L, Hkv, D).to(f), G)
            b = torch.sigmoid(braw.to(f))[..., None] + 1e-6            # §9.1 step 5
            k, v = b * k, b * v
            alpha = torch.sigmoid(alraw.to(f))
            g = -torch.exp(self.A_log.to(f)) * softplus(araw.to(f) + self.dt_bias.to(f))
            o = gka_chunk(q, k, v, alpha, g, D ** -0.5, self.num_iter, self.ridge, self.chunk)
            o = gated_rms_norm_fla(o, z.reshape(Bsz, L, Hq, D).to(f), self.o_norm.weight.to(f),
                                   self.norm_eps)
        return self.o_proj(o.reshape(Bsz, L, Hq * D).to(x.dtype))
