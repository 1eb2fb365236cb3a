"""One process of a multi-process selection check (run by test_multihost.py).

  python tests/multihost_selection_worker.py OUT_DIR --coordinator_address=...

Every process builds the same pool (images, model, labeled set) from fixed
seeds, scores it with the sharded pool scorer and selects by top-k and greedy
k-centers over the global mesh; it writes what it got to OUT_DIR, for the test
to compare across processes and with a single-process run of `compute`.
"""

import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from svp_jax import distributed
from svp_jax import methods
from svp_jax import models
from svp_jax import scoring
from svp_jax import selection
from svp_jax import sharding
from svp_jax import train

flags.DEFINE_string('coordinator_address', None, 'host:port of process 0.')
flags.DEFINE_integer('num_processes', None, 'Processes.')
flags.DEFINE_integer('process_id', None, 'This process.')
flags.DEFINE_integer('cpu_devices_per_process', 2, 'CPU devices each.')

POOL, K = 301, 17  # Not a multiple of any device count: padding is exercised.
CFG = train.StepConfig(num_classes=10, mean=(0.5,), std=(0.25,),
                       augment=False)


def compute(mesh) -> dict[str, np.ndarray]:
  """Scores and selections on `mesh`; the same inputs in every process."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (POOL, 28, 28, 1), dtype=np.uint8)
  labeled = np.zeros(POOL, bool)
  labeled[rng.choice(POOL, 20, replace=False)] = True
  model = models.create_model('preact8', 10)
  state = train.init_state(jax.random.key(0), model, (28, 28, 1), CFG, mesh)
  scores = scoring.pool_uncertainty(
      state, model, CFG, images,
      measure=selection.UNCERTAINTY_MEASURES['least_confidence'],
      batch_size=64, mesh=mesh)
  features = scoring.pool_outputs(state, model, CFG, images,
                                 methods.get('kcenters').scoring,
                                 batch_size=64, mesh=mesh)
  return {
      'scores': scores, 'features': features,
      'top_k': np.asarray(selection.select_top_k(scores, labeled, K)),
      'kcenters': np.asarray(jax.device_get(selection.greedy_k_centers(
          features, labeled, K, mesh=mesh))),
  }


def main(argv):
  out_dir = argv[1]
  distributed.initialize(flags.FLAGS.coordinator_address,
                         flags.FLAGS.num_processes, flags.FLAGS.process_id,
                         cpu_devices=flags.FLAGS.cpu_devices_per_process,
                         timeout_seconds=120)
  got = compute(sharding.make_mesh())
  np.savez(os.path.join(out_dir, f'process_{jax.process_index()}.npz'), **got)


if __name__ == '__main__':
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  app.run(main)
