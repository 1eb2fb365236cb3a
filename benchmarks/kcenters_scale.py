r"""Greedy k-centers at ImageNet-like scale: time, peak memory, time per pick.

Default: a seeded random 1,000,000 x 64 float32 pool, 1% labeled, 10,000 picks,
rows sharded over all devices (`--devices=N` simulates N CPU devices; or set
XLA_FLAGS=--xla_force_host_platform_device_count=N, as run_all.py does).

  python -m benchmarks.kcenters_scale [--devices=N] [--out=/tmp/kc_bench.json]
  python -m benchmarks.kcenters_scale --impl=numpy --n=200000 --labeled=1000 \
      --k=100

Three implementations (--impl), on the same seeded pool:

  jax        svp_jax.selection's sharded greedy k-centers (the library);
  numpy      an incremental NumPy version: a running min-distance vector, one
             matrix-vector product per pick (|x|^2 - 2 x.c + |c|^2), O(n)
             memory beyond the features;
  reference  the SVP reference's memory pattern: an (s + b) x |pool| float32
             distance matrix (s labeled, b = --budget picks), one row filled
             per pick with SciPy's cdist on a gathered copy of the pool.

Phases are timed separately. jax: compile (AOT), initialisation from the
labeled set plus one pick (a k=1 run, warmed up) and the full run, timed
alternately, medians of <= 3 each; per-pick time = (full - init) / (k - 1).
numpy / reference: initialisation, then the k picks; per-pick time =
picks / k.

Memory: `peak_rss_gib` covers the whole process; `working_gib` is the peak
during selection above the resident size once the inputs were built (VmHWM
reset through /proc/self/clear_refs; see benchmarks/hardware.py), i.e. what
selection itself adds to the features.
The last line printed is the result as one JSON object.
"""

import importlib
import json
import pathlib
import statistics
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

_IMPLS = ('jax', 'numpy', 'reference')

_IMPL = flags.DEFINE_enum('impl', 'jax', _IMPLS, 'Implementation to time.')
_N = flags.DEFINE_integer('n', 1_000_000, 'Pool size.')
_D = flags.DEFINE_integer('d', 64, 'Feature dimension.')
_LABELED = flags.DEFINE_float('labeled_fraction', 0.01,
                              'Fraction of the pool labeled at the start.')
_LABELED_COUNT = flags.DEFINE_integer(
    'labeled', 0, 'Labeled points at the start; overrides --labeled_fraction.')
_K = flags.DEFINE_integer('k', 10_000, 'Centers to select (timed).')
_BUDGET = flags.DEFINE_integer(
    'budget', 0, 'reference: rows b of the distance matrix (the full '
    'selection budget, >= k; 0 = k).')
_CHUNK = flags.DEFINE_integer('chunk_size', 0,
                              'Labeled centers per init pass (0 = default).')
_DEVICES = flags.DEFINE_integer(
    'devices', 0, 'Simulated CPU devices; 0 = JAX default (1 on CPU, unless '
    'XLA_FLAGS says otherwise).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for the random pool.')
_OUT = flags.DEFINE_string('out', '', 'Also write the JSON result here.')

def timed(fn, *args):
  """(result, seconds) of fn(*args); JAX results are waited for."""
  start = time.perf_counter()
  result = fn(*args)
  if 'jax' in sys.modules:
    result = sys.modules['jax'].block_until_ready(result)
  return result, time.perf_counter() - start


# ----------------------------------------------------------------------------
# Runs.


def run_jax(host_features, labeled, k, chunk_size, hw):
  """Times svp_jax.selection's greedy k-centers; returns the result fields."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  from svp_jax import sharding  # pylint: disable=g-import-not-at-top

  n = host_features.shape[0]
  chunk = chunk_size or selection.DEFAULT_CHUNK_SIZE
  mesh = sharding.make_mesh()
  # The library pads points to a multiple of the device count and works on
  # feature-major [d, n] features; do both here so the timed calls see
  # ready, sharded inputs.
  rows = -(-n // mesh.size) * mesh.size
  pad = rows - n
  features = jax.device_put(
      np.pad(host_features.T, ((0, 0), (0, pad))),
      jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
          None, sharding.DATA_AXIS)))
  labeled_dev = jnp.asarray(np.pad(labeled, (0, pad)))
  valid = jnp.asarray(np.arange(rows) < n)
  jax.block_until_ready((features, labeled_dev, valid))

  def compiled(k_):
    return selection._k_centers_jit.lower(  # pylint: disable=protected-access
        features, labeled_dev, valid, k=k_, mesh=mesh,
        chunk_size=chunk).compile()

  # k=1, not k=0: with no picks XLA drops the unused initialisation.
  init_exe, _ = timed(compiled, 1)
  full_exe, compile_s = timed(compiled, k)
  with hw.PeakMemory() as memory:
    # The first execution also starts the runtime's threads: warm up, then
    # time init-only and full runs alternately, the median of up to three
    # of each (fewer when they take seconds, as with thousands of labeled
    # points in a 2M-point pool), so a slow moment hits neither alone.
    timed(init_exe, features, labeled_dev, valid)
    init_runs, total_runs = [], []
    while len(total_runs) < 3 and sum(init_runs + total_runs) < 4.0:
      init_runs.append(timed(init_exe, features, labeled_dev, valid)[1])
      (picked, radii), total_s = timed(full_exe, features, labeled_dev, valid)
      total_runs.append(total_s)
    init_s = statistics.median(init_runs)
    total_s = statistics.median(total_runs)
  return {
      'devices': mesh.size, 'chunk_size': chunk,
      'platform': jax.devices()[0].platform,
      'compile_s': compile_s, 'init_s': init_s, 'total_s': total_s,
      'per_pick_ms': 1e3 * (total_s - init_s) / max(k - 1, 1),
      'memory': memory,
      'picked': np.asarray(picked), 'radii': np.asarray(radii),
  }


def run_numpy(features, labeled, k, hw):
  from benchmarks import kcenters_numpy  # pylint: disable=g-import-not-at-top
  sq_norms = np.einsum('ij,ij->i', features, features)
  with hw.PeakMemory() as memory:
    min_d, init_s = timed(kcenters_numpy.numpy_init, features, sq_norms,
                          labeled)
    (picked, radii), picks_s = timed(kcenters_numpy.numpy_picks, features,
                                     sq_norms, min_d, k)
  return {'devices': 1, 'init_s': init_s, 'total_s': init_s + picks_s,
          'per_pick_ms': 1e3 * picks_s / max(k, 1),
          'memory': memory,
          'picked': picked, 'radii': radii}


def run_reference(features, labeled, k, budget, hw):
  from benchmarks import kcenters_numpy  # pylint: disable=g-import-not-at-top
  # Imported before the timed phases (a first import takes a second).
  importlib.import_module('scipy.spatial')
  with hw.PeakMemory() as memory:
    (pool, dist, mins), init_s = timed(kcenters_numpy.reference_init,
                                       features, labeled, budget)
    (picked, radii), picks_s = timed(kcenters_numpy.reference_picks, features,
                                     pool, dist, mins, int(labeled.sum()), k)
  return {'devices': 1, 'init_s': init_s, 'total_s': init_s + picks_s,
          'per_pick_ms': 1e3 * picks_s / max(k, 1),
          'memory': memory,
          'matrix_gib': dist.nbytes / 2**30,
          'picked': picked, 'radii': radii}


def main(argv):
  del argv
  # Imported here so the script also runs as a file (see the __main__ block).
  from benchmarks import hardware as hw  # pylint: disable=g-import-not-at-top
  from benchmarks import kcenters_numpy  # pylint: disable=g-import-not-at-top
  if _DEVICES.value:
    import jax  # pylint: disable=g-import-not-at-top
    # Must happen before the backend initialises, i.e. before any jax use.
    jax.config.update('jax_num_cpu_devices', _DEVICES.value)

  n, d, k = _N.value, _D.value, _K.value
  labeled_count = _LABELED_COUNT.value or int(round(_LABELED.value * n))
  budget = max(_BUDGET.value, k)
  features, labeled = kcenters_numpy.make_pool(n, d, labeled_count,
                                               _SEED.value)
  logging.info('%s: pool %d x %d, %d labeled, k=%d', _IMPL.value, n, d,
               labeled_count, k)
  if _IMPL.value == 'jax':
    result = run_jax(features, labeled, k, _CHUNK.value, hw)
  elif _IMPL.value == 'numpy':
    result = run_numpy(features, labeled, k, hw)
  else:
    result = run_reference(features, labeled, k, budget, hw)
  picked, radii = result.pop('picked'), result.pop('radii')
  memory = result.pop('memory')
  result = {
      'impl': _IMPL.value, 'n': n, 'd': d, 'k': k, 'budget': budget,
      'labeled': labeled_count,
      'features_gib': features.nbytes / 2**30,
      **result,
      'working_gib': memory.working_gib,
      'peak_rss_gib': memory.process_peak_gib,
      'distinct': len(set(picked.tolist())) == k,
      'none_labeled': not labeled[picked].any(),
      # Radii of the reference are distances, the others' too (sqrt taken).
      'radii_non_increasing': bool(np.all(np.diff(radii) <= 1e-5 * (
          1 + np.abs(radii[1:])))),
      'first_picks': picked[:8].tolist(),
  }
  result = {key: round(v, 4) if isinstance(v, float) else v
            for key, v in result.items()}
  logging.info('result: %s', result)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(result, f, indent=2)
  print(json.dumps(result), flush=True)


if __name__ == '__main__':
  # Run as a file from anywhere: make the repository root importable.
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  app.run(main)
