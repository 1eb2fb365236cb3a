"""Pool scoring: one forward pass over the pool, padded, masked and sharded.

Every selection method that scores from a trained selector declares a
`methods.PerBatch`: which model outputs its function takes (logits,
penultimate features) and the function itself. This module computes those
outputs and that function on the device batch by batch, for every method
alike: the loop, padding, sharding, gathering and progress are here once.
The host only ever holds what the function returns per example (one float
for uncertainty, one row for k-centers' features), never a pool x classes
array of probabilities. Pool images are scored without augmentation (the
reference scored augmented views; BUILD.md says why not).
"""

from collections.abc import Callable
import functools
from typing import Any

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
import numpy as np

from svp_jax import methods
from svp_jax import preemption
from svp_jax import train


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'per_batch'))
def batch_step(state: train.TrainState, images: jax.Array, *, model: Any,
               cfg: train.StepConfig, per_batch: methods.PerBatch
               ) -> jax.Array:
  """`per_batch.fn` of the model outputs it names, for one batch."""
  outputs = dict(zip(methods.OUTPUTS, train.predict_step(
      state, images, model=model, cfg=cfg)))
  return per_batch.fn(*(outputs[name] for name in per_batch.outputs))


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


def pool_outputs(state: train.TrainState, model: Any, cfg: train.StepConfig,
                 images: np.ndarray, per_batch: methods.PerBatch, *,
                 batch_size: int, mesh: Mesh,
                 indices: np.ndarray | None = None) -> np.ndarray:
  """`per_batch` over the pool images `indices` (all by default), in order.

  One score per image ([n] float32 for the built-in measures), or one row
  per image: rows come back Fortran-ordered (stored [d, n]), the
  feature-major layout greedy k-centers works in, so handing them over
  copies nothing.
  """
  host = _map_pool(
      lambda x: batch_step(state, x, model=model, cfg=cfg,
                           per_batch=per_batch),
      images, batch_size, mesh, indices)
  if not host:
    return np.zeros(0, np.float32)
  if host[0].ndim == 1:
    return np.concatenate(host)
  # Filled through its transpose: np.concatenate of the batches' transposes
  # keeps their layout, which would make the result row-major again.
  rows = np.empty((sum(map(len, host)), *host[0].shape[1:])[::-1],
                  host[0].dtype)
  start = 0
  for h in host:
    rows[..., start:start + len(h)] = h.T
    start += len(h)
  return rows.T


def pool_scores(state: train.TrainState, model: Any, cfg: train.StepConfig,
                images: np.ndarray, per_batch: methods.PerBatch, *,
                batch_size: int, mesh: Mesh,
                labeled: np.ndarray | None = None) -> np.ndarray:
  """A method's scores of the whole pool: what its pick is given.

  With `labeled` (bool [pool]) and `per_batch.unlabeled_only`, only the
  unlabeled images are computed; labeled ones get NaN, which top-k ranks
  last (svp_jax.selection.select_top_k).
  """
  if labeled is None or not per_batch.unlabeled_only:
    return pool_outputs(state, model, cfg, images, per_batch,
                        batch_size=batch_size, mesh=mesh)
  unlabeled = np.flatnonzero(~np.asarray(labeled, bool))
  scored = pool_outputs(state, model, cfg, images, per_batch,
                        batch_size=batch_size, mesh=mesh, indices=unlabeled)
  if not len(unlabeled):
    return np.full(len(labeled), np.nan, np.float32)
  # Same layout as `scored`: feature-major rows stay feature-major.
  shape = (len(labeled), *scored.shape[1:])
  scores = np.full(shape[::-1], np.nan, scored.dtype).T
  scores[unlabeled] = scored
  return scores


@functools.cache
def _of_logits(measure: Callable) -> methods.PerBatch:
  # Made once per measure: the jitted step is keyed by it and compiles once.
  return methods.PerBatch((methods.LOGITS,), functools.partial(
      methods.uncertainty_of, measure=measure))


def pool_uncertainty(state: train.TrainState, model: Any,
                     cfg: train.StepConfig, images: np.ndarray, *,
                     measure: Callable, batch_size: int, mesh: Mesh,
                     indices: np.ndarray | None = None) -> np.ndarray:
  """One float32 per pool image: `measure` of its logits.

  `measure` is logits [batch, classes] -> [batch] (a
  selection.UNCERTAINTY_MEASURES value, or what a labeling loop shows beside
  a query), applied as the built-in methods apply theirs
  (methods.uncertainty_of). With `indices`, only those images are scored
  and the result has one score per index, in their order.
  """
  return pool_outputs(state, model, cfg, images, _of_logits(measure),
                      batch_size=batch_size, mesh=mesh, indices=indices)
