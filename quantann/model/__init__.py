"""On-device text embeddings: GGUF BERT encoder run by the C kernel (quantann._model)."""
