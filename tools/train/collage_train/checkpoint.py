"""Checkpoint I/O in the HF layout (spec/MODEL.md §1.1, §2): model.safetensors with the
tensor names of state_dict(), read back into a HybridLM of any dtype."""
import json
import os

import torch
from safetensors.torch import load_file, save_file

from .config import ModelConfig
from .model import HybridLM


def weights_path(model_dir):
    """model.safetensors, following a link stored as a text file holding a relative path
    (how the golden gka_iter* cases share the gka weights)."""
    path = os.path.join(model_dir, "model.safetensors")
    if os.path.getsize(path) < 4096:
        with open(path, "rb") as f:
            head = f.read()
        if head.strip().endswith(b".safetensors") and b"\0" not in head:
            return os.path.normpath(os.path.join(model_dir, head.decode().strip()))
    return path


def load_model(model_dir, dtype=torch.float64, device="cpu"):
    """HybridLM from config.json + model.safetensors (weights upcast to dtype)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ModelConfig.from_hf(json.load(f))
    model = HybridLM(cfg)
    tensors = load_file(weights_path(model_dir))
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise ValueError(f"{model_dir}/model.safetensors: missing {missing[:4]}, unexpected {extra[:4]}")
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(own[name].shape):
            raise ValueError(f"{model_dir}/model.safetensors: tensor '{name}' has shape "
                             f"{tuple(t.shape)}, expected {tuple(own[name].shape)}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    return model.to(device=device, dtype=dtype).eval()


def save_weights(model, path, dtype=torch.bfloat16):
    """model.safetensors with HF names, every tensor in dtype (contiguous copies)."""
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, path, metadata={"format": "pt"})
