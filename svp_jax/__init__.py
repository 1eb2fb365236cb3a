"""svp_jax: Selection via Proxy (Coleman et al.) in JAX/Flax."""
