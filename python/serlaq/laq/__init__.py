"""Layer-wise adaptive quantization (the paper's method) and what builds on it."""
