r"""Greedy k-centers at ImageNet-like scale: time, peak memory, time per pick.

Default: a seeded random 1,000,000 x 64 float32 pool, 1% labeled, 10,000 picks,
rows sharded over all devices (`--devices=N` simulates N CPU devices).

  python benchmarks/kcenters_scale.py [--devices=N] [--out=/tmp/kc_bench.json]

Phases are timed separately: compile (AOT), initialisation from the labeled
set plus one pick (a k=1 run), and the full run; per-pick time =
(full - init) / (k - 1).
Peak RSS covers the whole process (the host copy of the pool included).
"""

import json
import pathlib
import resource
import sys
import time

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import numpy as np

_N = flags.DEFINE_integer('n', 1_000_000, 'Pool size.')
_D = flags.DEFINE_integer('d', 64, 'Feature dimension.')
_LABELED = flags.DEFINE_float('labeled_fraction', 0.01,
                              'Fraction of the pool labeled at the start.')
_K = flags.DEFINE_integer('k', 10_000, 'Centers to select.')
_CHUNK = flags.DEFINE_integer('chunk_size', 0,
                              'Labeled centers per init pass (0 = default).')
_DEVICES = flags.DEFINE_integer(
    'devices', 0, 'Simulated CPU devices; 0 = JAX default (1 on CPU).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for the random pool.')
_OUT = flags.DEFINE_string('out', '/tmp/kc_bench.json', 'JSON output path.')


def peak_rss_gib() -> float:
  # ru_maxrss is in KiB on Linux.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn, *args):
  """(result, seconds) of fn(*args) with the result ready."""
  start = time.perf_counter()
  result = jax.block_until_ready(fn(*args))
  return result, time.perf_counter() - start


def main(argv):
  del argv
  if _DEVICES.value:
    # Must happen before the backend initialises, i.e. before any jax use.
    jax.config.update('jax_num_cpu_devices', _DEVICES.value)
  # Imported here so the script runs as a file (see the __main__ block).
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  from svp_jax import sharding  # pylint: disable=g-import-not-at-top

  n, d, k = _N.value, _D.value, _K.value
  chunk = _CHUNK.value or selection.DEFAULT_CHUNK_SIZE
  rng = np.random.default_rng(_SEED.value)
  host_features = rng.standard_normal((n, d), dtype=np.float32)
  labeled = np.zeros(n, bool)
  labeled[rng.choice(n, int(round(_LABELED.value * n)), replace=False)] = True
  mesh = sharding.make_mesh()
  logging.info('pool %d x %d, %d labeled, k=%d, %d devices, chunk %d', n, d,
               labeled.sum(), k, mesh.size, chunk)

  # The library pads rows to a multiple of the device count; do it here so
  # the timed calls see ready, sharded inputs.
  rows = -(-n // mesh.size) * mesh.size
  pad = rows - n
  features = jax.device_put(
      np.pad(host_features, ((0, pad), (0, 0))),
      NamedSharding(mesh, P(sharding.DATA_AXIS)))
  del host_features
  labeled_dev = jnp.asarray(np.pad(labeled, (0, pad)))
  valid = jnp.asarray(np.arange(rows) < n)

  def compiled(k_):
    return selection._k_centers_jit.lower(  # pylint: disable=protected-access
        features, labeled_dev, valid, k=k_, mesh=mesh,
        chunk_size=chunk).compile()

  # k=1, not k=0: with no picks XLA drops the unused initialisation.
  init_exe, _ = timed(compiled, 1)
  _, init_s = timed(init_exe, features, labeled_dev, valid)
  full_exe, compile_s = timed(compiled, k)
  (picked, radii), total_s = timed(full_exe, features, labeled_dev, valid)
  picked, radii = np.asarray(picked), np.asarray(radii)

  result = {
      'n': n, 'd': d, 'k': k, 'labeled': int(labeled.sum()),
      'devices': mesh.size, 'chunk_size': chunk,
      'platform': jax.devices()[0].platform,
      'compile_s': round(compile_s, 3),
      'init_s': round(init_s, 3),
      'total_s': round(total_s, 3),
      'per_pick_ms': round(1e3 * (total_s - init_s) / max(k - 1, 1), 3),
      'init_per_labeled_ms': round(
          1e3 * init_s / max(int(labeled.sum()), 1), 4),
      'peak_rss_gib': round(peak_rss_gib(), 3),
      'distinct': len(set(picked.tolist())) == k,
      'none_labeled': not labeled[picked].any(),
      'radii_non_increasing': bool(np.all(np.diff(radii) <= 0)),
      'radius_first_last': [float(radii[0]), float(radii[-1])] if k else [],
  }
  logging.info('result: %s', result)
  with open(_OUT.value, 'w') as f:
    json.dump(result, f, indent=2)
  print(json.dumps(result, indent=2))


if __name__ == '__main__':
  # Run as a file from anywhere: make the repository root importable.
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  app.run(main)
