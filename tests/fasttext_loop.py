"""A plain one-device fastText training loop, for the text-model tests.

The jobs train fastText through `svp_jax.train` (its `FastText.training_hooks`
use the same `fasttext_update`); this loop checks the sparse step on its own,
and on real reviews, without the trainer's mesh, epochs and configs.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from svp_jax import text_models


@functools.partial(jax.jit, donate_argnums=0)
def fasttext_train_step(params: dict[str, jax.Array], ids: jax.Array,
                        labels: jax.Array, weights: jax.Array,
                        lr: jax.Array) -> tuple[dict[str, jax.Array],
                                                dict[str, jax.Array]]:
  """`fasttext_update`, jitted with `params` donated (updated in place).

  Returns:
    new params and {'train/loss': mean loss, 'train/accuracy'} of the batch.
  """
  new_params, logits, losses = text_models.fasttext_update(
      params, ids, labels, weights, lr)
  total = jnp.maximum(weights.sum(), 1.0)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  metrics = {'train/loss': jnp.sum(losses * weights) / total,
             'train/accuracy': jnp.sum(correct * weights) / total}
  return new_params, metrics


def train_fasttext(ids: np.ndarray, labels: np.ndarray, num_classes: int, *,
                   num_buckets: int = text_models.DEFAULT_NUM_BUCKETS,
                   dim: int = 10, lr: float = 0.05, epochs: int = 5,
                   batch_size: int = 16, seed: int = 0
                   ) -> dict[str, jax.Array]:
  """Trains `FastText` from scratch with the reference's hyperparameters.

  A fresh permutation each epoch, the last partial batch padded with
  zero-weight rows so the step compiles once; the learning rate decays by
  `text_models.fasttext_lr`.
  """
  model = text_models.FastText(num_classes, num_buckets, dim)
  params = model.init(jax.random.key(seed), jnp.asarray(ids[:1]))['params']
  rng = np.random.default_rng(seed)
  num = len(labels)
  total_steps = epochs * -(-num // batch_size)
  step = 0
  for _ in range(epochs):
    order = rng.permutation(num)
    for start in range(0, num, batch_size):
      batch = order[start:start + batch_size]
      pad = batch_size - len(batch)
      weights = np.concatenate([np.ones(len(batch), np.float32),
                                np.zeros(pad, np.float32)])
      batch = np.concatenate([batch, np.zeros(pad, batch.dtype)])
      params, _ = fasttext_train_step(
          params, ids[batch], labels[batch], weights,
          np.float32(text_models.fasttext_lr(step, total_steps, lr)))
      step += 1
  return params


@functools.partial(jax.jit, static_argnames='num_classes')
def _fasttext_logits(params, ids, *, num_classes):
  model = text_models.FastText(num_classes, params['embedding'].shape[0],
                               params['embedding'].shape[1])
  return model.apply({'params': params}, ids)


def fasttext_predict(params: dict[str, jax.Array], ids: np.ndarray,
                     batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
  """(logits, features) of every document, in fixed-size padded batches."""
  num_classes = params['head'].shape[1]
  logits, features = [], []
  for start in range(0, len(ids), batch_size):
    chunk = ids[start:start + batch_size]
    padded = np.full((batch_size, ids.shape[1]), -1, np.int32)
    padded[:len(chunk)] = chunk
    out = _fasttext_logits(params, padded, num_classes=num_classes)
    logits.append(np.asarray(out[0])[:len(chunk)])
    features.append(np.asarray(out[1])[:len(chunk)])
  return np.concatenate(logits), np.concatenate(features)
