"""Cost of a fastText training step against the number of hash buckets.

  python -m benchmarks.fasttext_buckets
  python -m benchmarks.fasttext_buckets --buckets=10000,1000000,10000000 --dense

Times the jitted sparse step `text_models.fasttext_update` (gathers the
rows a batch touches, scatters their updates back into the donated table) at
each bucket count, on random ids with the shape of a real batch (--batch
documents of --ids hashed n-grams). With --dense it also times a plain
`jax.grad` SGD step over the whole table, whose cost grows with the table:
the thing the sparse step avoids. The "not donated" column is the same
sparse step jitted without buffer donation: XLA must then copy the table
every step, so donation is what makes the update in place. Each figure is
the median of --repeats timed runs of --steps steps after one warm-up
(compile) run.

Measured on the 2-core dev machine, busy with other jobs (batch 128 x 200
ids, median of 5 x 20 steps, ms/step):

     buckets  table MB  sparse  not donated    dense
      10,000       0.4    0.67         0.59     0.63
   1,000,000      38.1    0.87        26.1     28.8
  10,000,000     381.5    1.44       249.6    311.7
"""

import functools
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from svp_jax import text_models

_BUCKETS = flags.DEFINE_list('buckets', ['10000', '1000000', '10000000'],
                             'Table sizes to time.')
_BATCH = flags.DEFINE_integer('batch', 128, 'Documents per step.')
_IDS = flags.DEFINE_integer('ids', 200, 'Hashed n-gram ids per document '
                            '(about an Amazon review: ~100 words).')
_STEPS = flags.DEFINE_integer('steps', 20, 'Steps per timed run.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed runs per figure.')
_DENSE = flags.DEFINE_bool('dense', False, 'Also time a dense-gradient step.')

_NUM_CLASSES = 2


@functools.partial(jax.jit, donate_argnums=0)
def dense_train_step(params, ids, labels, weights, lr):
  """The naive step: jax.grad of the module, a full-table gradient."""
  model = text_models.FastText(_NUM_CLASSES, params['embedding'].shape[0])

  def loss_fn(params):
    logits, _ = model.apply({'params': params}, ids)
    return jnp.sum(weights * optax.softmax_cross_entropy_with_integer_labels(
        logits, labels))

  grads = jax.grad(loss_fn)(params)
  return jax.tree.map(lambda p, g: p - lr * g, params, grads), {}


def _sparse_step(params, ids, labels, weights, lr):
  """`fasttext_update`'s new params, with (no) metrics like the others."""
  return text_models.fasttext_update(params, ids, labels, weights, lr)[0], {}


# The step as training jits it (the table donated), and without donation.
sparse_train_step = jax.jit(_sparse_step, donate_argnums=0)
undonated_step = jax.jit(_sparse_step)


def median_step_ms(step_fn, params, batch):
  holder = [params]

  def run():
    p = holder[0]
    for _ in range(_STEPS.value):
      p, _ = step_fn(p, *batch)
    jax.block_until_ready(p)
    holder[0] = p

  run()  # Compile and warm up.
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times) / _STEPS.value


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  print(f'fastText step, batch {_BATCH.value} x {_IDS.value} ids, dim 10, '
        f'{jax.devices()[0].platform} x{len(jax.devices())} '
        f'(runs on one device)')
  header = (f'{"buckets":>12} {"table MB":>9} {"sparse ms/step":>15} '
            f'{"not donated":>12}')
  if _DENSE.value:
    header += f' {"dense ms/step":>14}'
  print(header)
  for buckets in (int(b) for b in _BUCKETS.value):
    model = text_models.FastText(_NUM_CLASSES, buckets)
    ids = rng.integers(0, buckets, (_BATCH.value, _IDS.value), np.int32)
    batch = (ids, rng.integers(0, _NUM_CLASSES, _BATCH.value, np.int32),
             np.ones(_BATCH.value, np.float32), np.float32(0.05))
    init = jax.jit(lambda key, m=model, x=ids[:1]: m.init(key, x)['params'])
    row = f'{buckets:>12,} {buckets * 10 * 4 / 2**20:>9.1f}'
    steps = [(sparse_train_step, 15),
             (undonated_step, 12)] + ([(dense_train_step, 14)]
                                       if _DENSE.value else [])
    for step_fn, width in steps:
      ms = median_step_ms(step_fn, init(jax.random.key(0)), batch)
      row += f' {ms:>{width}.3f}'
    print(row, flush=True)


if __name__ == '__main__':
  app.run(main)
