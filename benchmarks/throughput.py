"""Training and eval throughput (images/s) of the CIFAR pre-activation ResNets.

  python benchmarks/throughput.py --models=preact20,preact56 --out=benchmarks/throughput.json

Random 32x32x3 images (throughput does not depend on pixel values); the real
jitted `train_step` (augmentation included) at batch 128 and `predict_step` at
batch 512, over all devices JAX sees (set XLA_FLAGS=--xla_force_host_platform_device_count=N
to split the CPU into N devices). Each figure is the median of --repeats timed
runs of --steps steps after one warm-up (compile) run.
"""

import json
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from svp_jax import models
from svp_jax import sharding
from svp_jax import train

_MODELS = flags.DEFINE_list('models', 'preact20,preact56,preact110,preact164',
                            'Models to time.')
_STEPS = flags.DEFINE_integer('steps', 5, 'Steps per timed run.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed runs per figure.')
_OUT = flags.DEFINE_string('out', '', 'Write results as JSON here.')

CFG = train.StepConfig(num_classes=10, mean=(0.49, 0.48, 0.45),
                       std=(0.25, 0.24, 0.26), augment=True)


def time_runs(run_once, repeats):
  run_once()  # Compile and warm up.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run_once()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def measure(name, mesh, steps, repeats):
  model = models.create_model(name, 10)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (512, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, 512).astype(np.int32)
  state = train.init_state(jax.random.key(0), model, (32, 32, 3), CFG, mesh)
  batch = train.global_batch(mesh, images, labels, np.arange(128),
                             np.ones(128, np.float32))
  lr, key = jnp.float32(0.1), jax.random.key(1)
  holder = [state]

  def train_once():
    s = holder[0]
    for _ in range(steps):
      s, m = train.train_step(s, batch, lr, key, model=model, cfg=CFG)
    jax.block_until_ready(m)
    holder[0] = s

  eval_images = train.global_batch(mesh, images, labels, np.arange(512),
                                   np.ones(512, np.float32))['image']

  def eval_once():
    for _ in range(steps):
      out = train.predict_step(holder[0], eval_images, model=model, cfg=CFG)
    jax.block_until_ready(out)

  train_s = time_runs(train_once, repeats)
  eval_s = time_runs(eval_once, repeats)
  return {'model': name, 'devices': mesh.size,
          'parameters': models.count_params(state.params),
          'train_images_per_second': 128 * steps / train_s,
          'eval_images_per_second': 512 * steps / eval_s}


def main(argv):
  del argv
  mesh = sharding.make_mesh()
  rows = []
  for name in _MODELS.value:
    row = measure(name, mesh, _STEPS.value, _REPEATS.value)
    print(json.dumps(row), flush=True)
    rows.append(row)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(rows, f, indent=2)


if __name__ == '__main__':
  app.run(main)
