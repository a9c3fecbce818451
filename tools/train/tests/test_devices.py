"""Forward and backward of every model kind on the meta device: a tensor created on a
fixed device inside the model (what fails on a GPU) raises a device mismatch here.

    cd tools/train && python tests/test_devices.py"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from collage_train.config import ModelConfig  # noqa: E402
from collage_train.model import HybridLM  # noqa: E402


def test_meta():
    for kind in ("GDN", "M2", "GKA", "SWA"):
        cfg = ModelConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_heads=4,
                          num_kv_heads=2, head_dim=16, pattern=["*", kind], swa_window=8)
        m = HybridLM(cfg).to("meta")
        out = m(torch.zeros((2, 70), dtype=torch.long, device="meta"))
        out.float().mean().backward()
        assert out.shape == (2, 70, 64), kind


if __name__ == "__main__":
    test_meta()
    print("test_meta ok")
