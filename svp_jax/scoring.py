"""Pool scoring: one forward pass over the pool, padded, masked and sharded.

Scores are computed on the device batch by batch, so the host only ever holds
one float per pool example (or one feature row, for k-centers), never a
pool x classes array of probabilities. Pool images are scored without
augmentation (the reference scored augmented views; BUILD.md says why not).
"""

from collections.abc import Callable
import functools
from typing import Any

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
import numpy as np

from svp_jax import preemption
from svp_jax import selection
from svp_jax import train


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'measure'))
def score_step(state: train.TrainState, images: jax.Array, *, model: Any,
               cfg: train.StepConfig, measure: Callable) -> jax.Array:
  """Per-example uncertainty (higher = more uncertain) for one batch."""
  logits, _ = train.predict_step(state, images, model=model, cfg=cfg)
  return selection.apply_measure(logits, measure)


@functools.partial(jax.jit, static_argnames=('model', 'cfg'))
def feature_step(state: train.TrainState, images: jax.Array, *, model: Any,
                 cfg: train.StepConfig) -> jax.Array:
  """Penultimate features (the input of the last linear layer)."""
  return train.predict_step(state, images, model=model, cfg=cfg)[1]


def _map_pool(step: Callable[[jax.Array], jax.Array], images: np.ndarray,
              batch_size: int, mesh: Mesh,
              indices: np.ndarray | None = None) -> list[np.ndarray]:
  """`step` over pool `indices` (all by default) in padded sharded batches.

  Returns the host rows of each batch, in `indices` order.
  """
  outputs = []
  labels = np.zeros(len(images), np.int32)  # Unused; keeps one batch layout.
  if indices is None:
    indices = np.arange(len(images))
  # Dispatch is asynchronous: while the device runs batch i, the host
  # gathers and places batch i+1, so transfers overlap compute.
  for idx, mask in train.padded_batches(indices, batch_size, mesh):
    batch = train.global_batch(mesh, images, labels, idx, mask)
    outputs.append((step(batch['image']), int(mask.sum())))
    preemption.progress('scoring the pool')
  # One device-to-host copy per batch, after all batches were dispatched;
  # with several processes each one receives the whole batch.
  gathered = []
  for out, real in outputs:
    gathered.append(np.asarray(multihost_utils.process_allgather(
        out, tiled=True))[:real])
    preemption.progress('scoring the pool')
  return gathered


def pool_uncertainty(state: train.TrainState, model: Any,
                     cfg: train.StepConfig, images: np.ndarray, *,
                     measure: Callable, batch_size: int, mesh: Mesh,
                     indices: np.ndarray | None = None) -> np.ndarray:
  """One float32 per pool image: `measure` of its logits (a method's).

  `measure` is a selection.UNCERTAINTY_MEASURES value (or a registered
  method's `uncertainty`). With `indices`, only those images are scored
  and the result has one score per index, in their order.
  """
  scores = _map_pool(
      lambda x: score_step(state, x, model=model, cfg=cfg, measure=measure),
      images, batch_size, mesh, indices)
  return np.concatenate(scores) if scores else np.zeros(0, np.float32)


def pool_features(state: train.TrainState, model: Any, cfg: train.StepConfig,
                  images: np.ndarray, *, batch_size: int,
                  mesh: Mesh) -> np.ndarray:
  """The penultimate feature rows k-centers needs: [n, d] float32.

  They come back Fortran-ordered (stored [d, n]), the feature-major layout
  greedy k-centers works in, so handing them over copies nothing.
  """
  host = _map_pool(
      lambda x: feature_step(state, x, model=model, cfg=cfg),
      images, batch_size, mesh)
  return np.concatenate([h.T for h in host], axis=1).T
