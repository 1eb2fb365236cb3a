"""The jitted JAX train and predict steps as timeable closures (no flags).

Shared by benchmarks/throughput.py (JAX alone) and benchmarks/side_by_side.py
(with PyTorch, for run_all): random 32x32x3 uint8 images (throughput does not
depend on pixel values), the real `train.train_step` (augmentation included) and
`train.predict_step`, over all devices of `mesh`.
"""

import dataclasses
import statistics
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import numpy as np

from svp_jax import models
from svp_jax import runtime
from svp_jax import train

# CIFAR-like normalisation; the values do not affect the cost.
MEAN = (0.49, 0.48, 0.45)
STD = (0.25, 0.24, 0.26)
CFG = train.StepConfig(num_classes=10, mean=MEAN, std=STD, augment=True)


def time_runs(run_once: Callable[[], Any], repeats: int) -> float:
  """Median seconds of `repeats` calls after one warm-up (compile) call."""
  run_once()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run_once()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def jax_runners(name: str, mesh: Mesh, steps: int, *, train_batch: int = 128,
                eval_batch: int = 512, num_classes: int = 10
                ) -> dict[str, Any]:
  """Closures running `steps` train / predict steps of model `name`.

  Returns a dict with 'train' and 'eval' (each runs its steps and blocks until
  the results are ready), 'parameters' and 'model'. Batches are placed on the
  devices once, outside the closures, so what they time is the steps.
  """
  model = models.create_model(
      name, num_classes,
      conv_general_dilated=runtime.current().conv_general_dilated)
  cfg = dataclasses.replace(CFG, num_classes=num_classes)
  rng = np.random.default_rng(0)
  size = max(train_batch, eval_batch)
  images = rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, num_classes, size).astype(np.int32)
  state = train.init_state(jax.random.key(0), model, (32, 32, 3), cfg, mesh)
  parameters = models.count_params(state.params)
  batch = train.global_batch(mesh, images, labels, np.arange(train_batch),
                             np.ones(train_batch, np.float32))
  eval_images = train.global_batch(
      mesh, images, labels, np.arange(eval_batch),
      np.ones(eval_batch, np.float32))['image']
  lr, key = jnp.float32(0.1), jax.random.key(1)
  holder = [state]  # train_step donates its state: keep the newest one.

  def train_once():
    s = holder[0]
    for _ in range(steps):
      s, m = train.train_step(s, batch, lr, key, model=model, cfg=cfg)
    jax.block_until_ready(m)
    holder[0] = s

  def eval_once():
    for _ in range(steps):
      out = train.predict_step(holder[0], eval_images, model=model, cfg=cfg)
    jax.block_until_ready(out)

  return {'train': train_once, 'eval': eval_once, 'parameters': parameters,
          'model': model}
