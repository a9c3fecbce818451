"""collage_train: PyTorch implementation of HybridQwen3ForCausalLM (spec/MODEL.md) for
training small hybrid models, the synthetic retrieval task, and the export to the
checkpoint layout collage loads. Not a build or CI dependency of collage."""
