"""Corpora: loaders for the real on-disk layouts, a synthetic generator, splits."""
