"""Pool scoring: one forward pass over the pool, padded, masked and sharded.

Scores are computed on the device batch by batch, so the host only ever holds
one float per pool example (or one feature row, for k-centers), never a
pool x classes array of probabilities. Pool images are scored without
augmentation (the reference scored augmented views; BUILD.md says why not).
"""

import functools
from typing import Any

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
import numpy as np

from svp_jax import selection
from svp_jax import train


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'method'))
def score_step(state: train.TrainState, images: jax.Array, *, model: Any,
               cfg: train.StepConfig, method: str) -> jax.Array:
  """Per-example uncertainty (higher = more uncertain) for one batch."""
  logits, _ = train.predict_step(state, images, model=model, cfg=cfg)
  return selection.uncertainty(logits, method)


@functools.partial(jax.jit, static_argnames=('model', 'cfg'))
def feature_step(state: train.TrainState, images: jax.Array, *, model: Any,
                 cfg: train.StepConfig) -> jax.Array:
  """Penultimate features (the input of the last linear layer)."""
  return train.predict_step(state, images, model=model, cfg=cfg)[1]


def score_pool(state: train.TrainState, model: Any, cfg: train.StepConfig,
               images: np.ndarray, *, method: str, batch_size: int,
               mesh: Mesh) -> np.ndarray:
  """One value per pool image: uncertainty for scoring methods, else features.

  `method` is a selection.SCORING_METHODS name, or 'features' for the
  penultimate feature rows ([n, d] float32, Fortran-ordered) that k-centers
  needs.
  """
  outputs = []
  labels = np.zeros(len(images), np.int32)  # Unused; keeps one batch layout.
  for idx, mask in train.padded_batches(np.arange(len(images)), batch_size,
                                        mesh):
    batch = train.global_batch(mesh, images, labels, idx, mask)
    if method == 'features':
      out = feature_step(state, batch['image'], model=model, cfg=cfg)
    else:
      out = score_step(state, batch['image'], model=model, cfg=cfg,
                       method=method)
    outputs.append((out, int(mask.sum())))
  # One device-to-host copy per batch, after all batches were dispatched;
  # with several processes each one receives the whole batch.
  host = [np.asarray(multihost_utils.process_allgather(out, tiled=True))[:real]
          for out, real in outputs]
  if method != 'features':
    return np.concatenate(host)
  # Features come back Fortran-ordered (stored [d, n]), the feature-major
  # layout greedy k-centers works in, so handing them over copies nothing.
  return np.concatenate([h.T for h in host], axis=1).T
