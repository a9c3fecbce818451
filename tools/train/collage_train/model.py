"""HybridQwen3ForCausalLM (spec/MODEL.md §4): embedding, pre-norm decoder layers (mixer +
SwiGLU MLP), final norm, lm_head. Module attribute names follow the HF checkpoint, so
state_dict() keys are the tensor names of §2 (model.layers.<i>.<mixer>.<...>)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import Attention
from .gdn import GatedDeltaNet
from .gka import GatedKalmaNet
from .mamba2 import Mamba2
from .ops import NormWeight, rms_norm

MIXER_ATTR = {"*": "self_attn", "SWA": "swa", "M2": "mamba", "GDN": "gdn", "GKA": "gka"}


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, symbol):
        super().__init__()
        self.symbol, self.eps = symbol, cfg.rms_norm_eps
        self.input_layernorm = NormWeight(cfg.hidden_size)
        self.post_attention_layernorm = NormWeight(cfg.hidden_size)
        mixer = {"*": lambda: Attention(cfg), "SWA": lambda: Attention(cfg, cfg.swa_window),
                 "M2": lambda: Mamba2(cfg), "GDN": lambda: GatedDeltaNet(cfg),
                 "GKA": lambda: GatedKalmaNet(cfg)}[symbol]()
        setattr(self, MIXER_ATTR[symbol], mixer)
        self.mlp = MLP(cfg)

    @property
    def mixer(self):
        return getattr(self, MIXER_ATTR[self.symbol])

    def forward(self, h, positions):
        h = h + self.mixer(rms_norm(h, self.input_layernorm.weight, self.eps), positions)
        return h + self.mlp(rms_norm(h, self.post_attention_layernorm.weight, self.eps))


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, s) for s in cfg.pattern)
        self.norm = NormWeight(cfg.hidden_size)


class HybridLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    def forward(self, ids, hidden_out=None):
        """ids [B, L] -> logits [B, L, V]. hidden_out: a list that receives the residual
        stream after the embedding, after every layer and after the final norm."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.model.embed_tokens(ids)
        if hidden_out is not None:
            hidden_out.append(h)
        for layer in self.model.layers:
            h = layer(h, positions)
            if hidden_out is not None:
                hidden_out.append(h)
        h = rms_norm(h, self.model.norm.weight, self.cfg.rms_norm_eps)
        if hidden_out is not None:
            hidden_out.append(h)
        return self.lm_head(h)

    def hidden_states(self, ids):
        """Final-norm hidden states [B, L, Dm] (the lm_head input)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            h = layer(h, positions)
        return rms_norm(h, self.model.norm.weight, self.cfg.rms_norm_eps)
