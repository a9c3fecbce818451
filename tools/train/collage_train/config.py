"""Model configuration: the fields of config.json that the math uses (spec/MODEL.md §1),
read from and written to the HF layout (HybridQwen3ForCausalLM)."""
import dataclasses
import json

LAYER_SYMBOLS = ("*", "SWA", "M2", "GDN", "GKA")


@dataclasses.dataclass
class ModelConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    pattern: list
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1e6
    max_position_embeddings: int = 8192
    gdn_norm_eps: float = 1e-5
    gka_num_iter: int = 30
    gka_ridge: float = 0.02
    gka_norm_eps: float = 1e-6
    swa_window: int = 0
    ssm_chunk: int = 64
    eos_token_id: int = -1
    pad_token_id: int = -1

    @property
    def num_layers(self):
        return len(self.pattern)

    @classmethod
    def from_hf(cls, d):
        """From a parsed config.json (the keys §1.2 names; sub-configs for GKA/GDN/SWA)."""
        for sym in d["hybrid_override_pattern"].split("-"):
            if sym not in LAYER_SYMBOLS:
                raise ValueError(f"config.json: layer symbol '{sym}' is not supported here")
        rope = d.get("rope_parameters") or {}
        theta = rope.get("rope_theta", d.get("rope_theta", 10000.0))
        gka, gdn, swa = d.get("gka_config") or {}, d.get("gdn_config") or {}, d.get("swa_config") or {}
        gka = {**gka, **(d.get("gka_overrides") or {})}
        Hq = d["num_attention_heads"]
        return cls(
            vocab_size=d["vocab_size"], hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"], num_heads=Hq,
            num_kv_heads=d.get("num_key_value_heads") or Hq,
            head_dim=d.get("head_dim") or d["hidden_size"] // Hq,
            pattern=d["hybrid_override_pattern"].split("-"),
            rms_norm_eps=d.get("rms_norm_eps", 1e-6), rope_theta=float(theta),
            max_position_embeddings=d.get("max_position_embeddings", 40960),
            gdn_norm_eps=gdn.get("norm_eps", 1e-5), gka_num_iter=gka.get("num_iter", 30),
            gka_ridge=gka.get("ridge_strength", 0.02), gka_norm_eps=gka.get("norm_eps", 1e-6),
            swa_window=swa.get("window_size", 0))

    def _heads(self):
        return {"hidden_size": self.hidden_size, "head_dim": self.head_dim,
                "num_q_heads": self.num_heads, "num_k_heads": self.num_kv_heads,
                "num_v_heads": self.num_kv_heads, "kv_proj_rank": None,
                "kv_learnable_residual": False}

    def to_hf(self, dtype="bfloat16"):
        """config.json as the reference's save_pretrained writes it (sub-configs of §1.4)."""
        d = {
            "architectures": ["HybridQwen3ForCausalLM"], "model_type": "hybrid_qwen3",
            "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size, "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads, "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim, "hidden_act": "silu", "rms_norm_eps": self.rms_norm_eps,
            "attention_bias": False, "attention_dropout": 0.0, "tie_word_embeddings": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "max_position_embeddings": self.max_position_embeddings,
            "hybrid_override_pattern": "-".join(self.pattern), "layer_types": list(self.pattern),
            "use_sliding_window": False, "use_cache": True, "torch_dtype": dtype,
        }
        if self.eos_token_id >= 0:
            d["eos_token_id"] = self.eos_token_id
        if self.pad_token_id >= 0:
            d["pad_token_id"] = self.pad_token_id
        if "GKA" in self.pattern:
            d["gka_config"] = {**self._heads(), "use_alpha_connection": True, "use_v_conv": True,
                               "use_forgetting_gate": True, "use_forgetting_gate_kk": True,
                               "gla_rescale": True, "solver_type": "chebyshev", "bp_lambda": True,
                               "num_iter": self.gka_num_iter, "ridge_strength": self.gka_ridge,
                               "use_gate": True, "conv_size": 4, "norm_eps": self.gka_norm_eps,
                               "use_beta_gate": True, "chunk_size": 64}
        if "GDN" in self.pattern:
            d["gdn_config"] = {**self._heads(), "use_gate": True, "use_short_conv": True,
                               "allow_neg_eigval": False, "conv_size": 4, "conv_bias": False,
                               "norm_eps": self.gdn_norm_eps}
        if "M2" in self.pattern:
            d["mamba2_config"] = {
                "d_model": self.hidden_size, "d_inner": self.num_heads * self.head_dim,
                "d_xb": self.num_kv_heads * self.head_dim,
                "intermediate_size": self.intermediate_size, "hidden_act": "silu",
                "rms_norm_eps": self.rms_norm_eps, "n_layer": self.num_layers,
                "ssm_cfg": {"expand": 1, "ngroups": self.num_heads, "d_state": self.head_dim},
                "use_qk_norm": True, "use_pos_emb": False}
        if "SWA" in self.pattern:
            d["swa_config"] = {"window_size": self.swa_window}
        return d


def load_config(path):
    with open(path) as f:
        return ModelConfig.from_hf(json.load(f))
