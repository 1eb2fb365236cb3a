"""Test-session set-up: 8 simulated CPU devices, so sharded paths are exercised.

Tests compare against 1 device by building a mesh over jax.devices()[:1].
This must run before JAX initialises its backend, hence here.
"""

import os

if '--xla_force_host_platform_device_count' not in os.environ.get(
    'XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=8')
