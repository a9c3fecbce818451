"""The chunk forms of collage_train (M2 SSD scan, GDN WY form, GKA chunked Chebyshev)
equal the per-token recurrences of spec/MODEL.md §7.1 / §8.1 / §9.1 in float64, for
several chunk sizes and lengths that are not multiples of the chunk.

    cd tools/train && python -m pytest -q tests   (or: python tests/test_chunk_forms.py)"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from collage_train.gdn import gated_delta_chunk  # noqa: E402
from collage_train.gka import gka_chunk  # noqa: E402
from collage_train.mamba2 import ssd_scan  # noqa: E402
from collage_train.ops import l2norm_fla, l2norm_gka  # noqa: E402

torch.manual_seed(0)
f64 = torch.float64
B, L, H, D = 2, 77, 3, 8


def m2_recurrent(X, Bm, Cm, dt, A):
    S = torch.zeros(B, H, D, D, dtype=f64)
    ys = []
    for t in range(L):
        a = torch.exp(dt[:, t] * A)[..., None, None]
        S = a * S + dt[:, t, :, None, None] * X[:, t, :, :, None] * Bm[:, t, :, None, :]
        ys.append((S * Cm[:, t, :, None, :]).sum(-1))
    return torch.stack(ys, 1)


def gdn_recurrent(q, k, v, beta, g, scale):
    S = torch.zeros(B, H, D, D, dtype=f64)
    os_ = []
    for t in range(L):
        S = torch.exp(g[:, t])[..., None, None] * S
        u = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhij,bhi->bhj", S, k[:, t]))
        S = S + k[:, t, :, :, None] * u[:, :, None, :]
        os_.append(torch.einsum("bhij,bhi->bhj", S, scale * q[:, t]))
    return torch.stack(os_, 1)


def gka_recurrent(q, k, v, alpha, g, scale, num_iter, r):
    Hm = torch.zeros(B, H, D, D, dtype=f64)
    S = torch.zeros(B, H, D, D, dtype=f64)
    eye = torch.eye(D, dtype=f64)
    os_ = []
    for t in range(L):
        gam = torch.exp(g[:, t])[..., None, None]
        Hm = gam * Hm + k[:, t, :, :, None] * k[:, t, :, None, :]
        S = gam * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        phi = torch.linalg.matrix_norm(Hm)[..., None]
        lam = r * phi
        tau, rho4 = 2 / (2 * lam + phi), (phi / (2 * lam + phi) / 2) ** 2
        qt = q[:, t]
        M = Hm + lam[..., None] * eye
        x_prev, x, om = torch.zeros_like(qt), tau * qt, torch.full_like(phi, 2.0)
        for _ in range(num_iter):
            om = 1 / (1 - rho4 * om)
            res = torch.einsum("bhij,bhj->bhi", M, x) - qt
            x, x_prev = om * (x - tau * res) + (1 - om) * x_prev, x
        qq = qt + alpha[:, t, :, None] * (x - qt) if num_iter else qt
        os_.append(scale * torch.einsum("bhij,bhi->bhj", S, qq))
    return torch.stack(os_, 1)


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_m2():
    X, Bm, Cm = (torch.randn(B, L, H, D, dtype=f64) for _ in range(3))
    dt = torch.rand(B, L, H, dtype=f64) * 0.5
    A = -torch.rand(H, dtype=f64) * 2
    ref = m2_recurrent(X, Bm, Cm, dt, A)
    for c in (8, 16, 64):
        assert rel(ssd_scan(X, Bm, Cm, dt, A, c), ref) < 1e-12, c


def test_gdn():
    q, k = (l2norm_fla(torch.randn(B, L, H, D, dtype=f64)) for _ in range(2))
    v = torch.randn(B, L, H, D, dtype=f64)
    beta, g = torch.rand(B, L, H, dtype=f64), -torch.rand(B, L, H, dtype=f64)
    ref = gdn_recurrent(q, k, v, beta, g, D ** -0.5)
    for c in (8, 16, 64):
        assert rel(gated_delta_chunk(q, k, v, beta, g, D ** -0.5, c), ref) < 1e-12, c


def test_gka():
    q, k = (l2norm_gka(torch.randn(B, L, H, D, dtype=f64)) for _ in range(2))
    b = torch.rand(B, L, H, 1, dtype=f64) + 1e-6
    k, v = b * k, b * torch.randn(B, L, H, D, dtype=f64)
    alpha, g = torch.rand(B, L, H, dtype=f64), -torch.rand(B, L, H, dtype=f64) * 0.3
    for it in (0, 3, 30):
        ref = gka_recurrent(q, k, v, alpha, g, D ** -0.5, it, 0.02)
        for c in (8, 64):
            assert rel(gka_chunk(q, k, v, alpha, g, D ** -0.5, it, 0.02, c), ref) < 1e-10, (it, c)


if __name__ == "__main__":
    for fn in (test_m2, test_gdn, test_gka):
        fn()
        print(fn.__name__, "ok")
