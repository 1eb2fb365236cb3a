"""Pool scoring throughput (images/s) and memory, per uncertainty method.

  python -m benchmarks.pool_scoring --model=preact20 --n=5000 --repeats=5

Scores a random uint8 32x32x3 pool with svp_jax.scoring.pool_uncertainty (the
library's padded, masked, sharded forward pass, one float back per image) for
each of --methods, with freshly initialised weights (the cost does not depend
on them). Each figure is the median of --repeats timed passes over the whole
pool after one warm-up (compile) pass. `working_gib` is the peak resident
memory during the timed passes above the resident size before them (see
benchmarks/hardware.py): the batches in flight plus the returned scores, and
never a pool x classes array. The last line printed is the result as JSON.
"""

import json
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np

from benchmarks import hardware
from benchmarks import jax_steps
from svp_jax import models
from svp_jax import runtime
from svp_jax import scoring
from svp_jax import selection
from svp_jax import sharding
from svp_jax import train

_MODEL = flags.DEFINE_string('model', 'preact20', 'Model scoring the pool.')
_N = flags.DEFINE_integer('n', 5000, 'Pool size.')
_BATCH = flags.DEFINE_integer('batch_size', 512, 'Scoring batch size.')
_METHODS = flags.DEFINE_list('methods', list(selection.SCORING_METHODS),
                             'Uncertainty methods to time.')
_CLASSES = flags.DEFINE_integer('num_classes', 10, 'Classes of the model.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed passes per method.')


def measure(model_name: str, n: int, batch_size: int, methods: list[str],
            num_classes: int, repeats: int) -> list[dict[str, object]]:
  """One row per method: images/s (median) and memory of pool scoring."""
  mesh = sharding.make_mesh()
  model = models.create_model(
      model_name, num_classes,
      conv_general_dilated=runtime.current().conv_general_dilated)
  cfg = train.StepConfig(num_classes=num_classes, mean=jax_steps.MEAN,
                         std=jax_steps.STD)
  state = train.init_state(jax.random.key(0), model, (32, 32, 3), cfg, mesh)
  pool = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3),
                                           dtype=np.uint8)
  rows = []
  for method in methods:
    def score():
      return scoring.pool_uncertainty(
          state, model, cfg, pool,
          measure=selection.UNCERTAINTY_MEASURES[method],
          batch_size=batch_size, mesh=mesh)

    scores = score()  # Compile and warm up.
    times = []
    with hardware.PeakMemory() as memory:
      for _ in range(repeats):
        start = time.perf_counter()
        scores = score()
        times.append(time.perf_counter() - start)
    rows.append({
        'model': model_name, 'method': method, 'n': n,
        'batch_size': batch_size, 'devices': mesh.size,
        'images_per_second': n / statistics.median(times),
        'working_gib': memory.working_gib,
        'peak_rss_gib': memory.process_peak_gib,
        'pool_gib': pool.nbytes / 2**30,
        'scores_bytes': int(scores.nbytes),
        'pool_x_classes_bytes': n * num_classes * 4,
    })
  return rows


def main(argv):
  del argv
  runtime.configure()  # as main.py does
  rows = measure(_MODEL.value, _N.value, _BATCH.value, _METHODS.value,
                 _CLASSES.value, _REPEATS.value)
  print(json.dumps(rows), flush=True)


if __name__ == '__main__':
  app.run(main)
