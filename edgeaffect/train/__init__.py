"""Training, evaluation metrics and quantization-aware training (desktop side)."""
