"""TFDS builders of the project's own.

Importing a builder module registers its dataset name with TFDS, so nothing
here is imported until a dataset needs it (see `svp_jax.data.fashion_mnist`
and `svp_jax.data.text`).
"""
