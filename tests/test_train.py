"""Training steps: sharded == single device, one compile per shape, learning."""

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svp_jax import models
from svp_jax import scoring
from svp_jax import selection
from svp_jax import sharding
from svp_jax import train

CFG = train.StepConfig(num_classes=10, mean=(0.5,), std=(0.25,),
                       augment=True)


def random_images(n, seed=0, shape=(12, 12, 1)):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
  labels = rng.integers(0, 10, n).astype(np.int32)
  return images, labels


def run_steps(mesh, images, labels, steps=2, batch_size=12):
  model = models.create_model('preact8', 10)
  state = train.init_state(jax.random.key(0), model, images.shape[1:], CFG,
                           mesh)
  batches = train.padded_batches(np.arange(len(labels)), batch_size, mesh)
  metrics = []
  for _, (idx, mask) in zip(range(steps), batches):
    batch = train.global_batch(mesh, images, labels, idx, mask)
    state, m = train.train_step(state, batch, jnp.float32(0.1),
                                jax.random.key(1), model=model, cfg=CFG)
    metrics.append(jax.device_get(m))
  return jax.device_get(state), metrics


def test_eight_devices_match_one_device():
  assert jax.device_count() == 8, 'conftest sets 8 simulated CPU devices'
  images, labels = random_images(20)
  # 20 examples in batches of 12: the second batch is partial and padded.
  one, m1 = run_steps(sharding.make_mesh(jax.devices()[:1]), images, labels)
  eight, m8 = run_steps(sharding.make_mesh(), images, labels)
  assert [m['count'] for m in m8] == [12, 8]
  for a, b in zip(m1, m8):
    np.testing.assert_allclose(a['loss'], b['loss'], rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3,
                                                       atol=1e-5),
               one.params, eight.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3,
                                                       atol=1e-5),
               one.batch_stats, eight.batch_stats)


def test_one_compile_per_shape_across_epochs_and_sizes():
  images, labels = random_images(50)
  mesh = sharding.make_mesh()
  model = models.create_model('preact8', 10)
  before = train.TRACE_COUNTS.copy()
  for subset_size in (50, 37, 13):  # Different labeled-set sizes, like rounds.
    train.train_model(jax.random.key(subset_size), model, CFG, images, labels,
                      np.arange(subset_size), batch_size=16,
                      lr_schedule=((1, 0.1), (1, 0.01)), mesh=mesh)
  # Initialisation too is traced (and compiled) once, not once per fit.
  for step in ('train_step', 'init_state'):
    assert train.TRACE_COUNTS[step] - before[step] <= 1, step


def test_loss_falls_on_a_memorisable_batch():
  images, labels = random_images(16, seed=3)
  mesh = sharding.make_mesh()
  model = models.create_model('preact8', 10)
  cfg = train.StepConfig(num_classes=10, mean=(0.5,), std=(0.25,),
                         weight_decay=0.0)
  history = train.train_model(
      jax.random.key(0), model, cfg, images, labels, np.arange(16),
      batch_size=16, lr_schedule=((40, 0.05),), mesh=mesh,
      eval_data=(images, labels)).history
  assert history[-1]['train_loss'] < 0.2 * history[0]['train_loss']
  assert history[-1]['test_accuracy'] == 1.0


def test_optimizer_is_pytorch_sgd_with_coupled_weight_decay():
  cfg = train.StepConfig(num_classes=2, mean=(0.,), std=(1.,), momentum=0.9,
                         weight_decay=0.1)
  tx = train.make_optimizer(cfg)
  p = {'w': jnp.array([1.0, -2.0])}
  grads = [jnp.array([0.5, 0.5]), jnp.array([-1.0, 2.0])]
  opt = tx.init(p)
  buf = np.zeros(2)
  expected = np.array([1.0, -2.0])
  lr = 0.3
  for g in grads:
    # torch.optim.SGD: d = g + wd * p; buf = m * buf + d; p -= lr * buf.
    buf = 0.9 * buf + (np.asarray(g) + 0.1 * expected)
    expected = expected - lr * buf
    updates, opt = tx.update({'w': g}, opt, p)
    p = {'w': p['w'] - lr * updates['w']}
  np.testing.assert_allclose(p['w'], expected, rtol=1e-6)


@pytest.mark.parametrize('n,batch', [(1, 4), (7, 4), (8, 4), (13, 5)])
def test_padded_batches_cover_each_example_once(n, batch):
  mesh = sharding.make_mesh()
  seen = []
  for idx, mask in train.padded_batches(np.arange(n), batch, mesh,
                                        np.random.default_rng(0)):
    assert len(idx) == len(mask) == sharding.padded_size(batch, mesh)
    seen.extend(idx[mask == 1])
  assert sorted(seen) == list(range(n))


def fresh_preact8(images, key=0):
  """(mesh, model, freshly initialised state) for `images`."""
  mesh = sharding.make_mesh()
  model = models.create_model('preact8', 10)
  state = train.init_state(jax.random.key(key), model, images.shape[1:], CFG,
                           mesh)
  return mesh, model, state


def test_evaluate_counts_every_example_once():
  images, labels = random_images(21, seed=5)
  mesh, model, state = fresh_preact8(images)
  metrics = train.evaluate(state, model, CFG, images, labels, 8, mesh)
  logits, _ = train.predict_step(state, jnp.asarray(images), model=model,
                                 cfg=CFG)
  expected = np.mean(np.argmax(np.asarray(logits), -1) == labels)
  assert metrics['accuracy'] == pytest.approx(expected)


def test_epochs_and_rates():
  assert train.epochs_and_rates(((1, 0.01), (2, 0.1))) == [0.01, 0.1, 0.1]


def forgetting_oracle(n, batches):
  """Straightforward NumPy count of correct -> incorrect transitions."""
  correct = np.zeros(n, bool)
  learned = np.zeros(n, bool)
  forgotten = np.zeros(n, np.int64)
  for index, mask, now in batches:
    for i, m, c in zip(index, mask, now):
      if m:
        forgotten[i] += correct[i] and not c
        learned[i] |= c
        correct[i] = c
  return np.where(learned, forgotten, np.inf)


def test_forgetting_counts_match_oracle_with_padding():
  rng = np.random.default_rng(0)
  n = 11
  mesh = sharding.make_mesh()
  forgetting = train.init_forgetting(n, mesh)
  batches = []
  for _ in range(30):
    index = rng.permutation(n)[:8].astype(np.int32)
    mask = (np.arange(8) < rng.integers(1, 9)).astype(np.float32)
    # Padding rows repeat real indices: they must not count.
    index[mask == 0] = index[0]
    now = rng.random(8) < 0.6
    batches.append((index, mask, now))
    forgetting = train.update_forgetting(forgetting, jnp.asarray(index),
                                         jnp.asarray(mask), jnp.asarray(now))
  np.testing.assert_array_equal(train.forgetting_scores(forgetting),
                                forgetting_oracle(n, batches))


def test_training_can_track_forgetting():
  images, labels = random_images(24, seed=4)
  mesh = sharding.make_mesh()
  model = models.create_model('preact8', 10)
  cfg = train.StepConfig(num_classes=10, mean=(0.5,), std=(0.25,),
                         weight_decay=0.0)
  result = train.train_model(
      jax.random.key(0), model, cfg, images, labels, np.arange(16),
      batch_size=8, lr_schedule=((30, 0.05),), mesh=mesh,
      track_forgetting=True)
  scores = train.forgetting_scores(result.forgetting)
  # Examples 16.. were never trained on, so never learned.
  assert np.all(np.isinf(scores[16:]))
  # The memorised training examples were all learned at some point.
  assert np.all(np.isfinite(scores[:16]))
  assert result.history[-1]['train_accuracy'] == 1.0


# (step of the run, steps in the run, epoch rate) of each `step_lr` call.
_STEP_LR_CALLS = []


def _recorded_zero_lr(step: int, total_steps: int, lr: float) -> float:
  _STEP_LR_CALLS.append((step, total_steps, lr))
  return 0.0


class _FrozenLinear(nn.Module):
  """A linear model whose own hooks give every step a learning rate of 0."""

  training_hooks: ClassVar[train.TrainingHooks] = train.TrainingHooks(
      step_lr=_recorded_zero_lr)

  @nn.compact
  def __call__(self, x, **unused_train_and_mask):
    features = x.reshape(x.shape[0], -1)
    return nn.Dense(10)(features), features


def test_a_models_own_hooks_drive_the_loop():
  assert train.hooks_for(
      models.create_model('preact8', 10)) is train.DEFAULT_HOOKS
  images, labels = random_images(20)
  mesh = sharding.make_mesh()
  model = _FrozenLinear()
  _STEP_LR_CALLS.clear()
  result = train.train_model(
      jax.random.key(0), model, CFG, images, labels, np.arange(20),
      batch_size=8, lr_schedule=((1, 0.1), (1, 0.01)), mesh=mesh)
  # 3 steps an epoch (8 + 8 + 4), each asked for its rate with the run's
  # step count and its epoch's rate.
  assert _STEP_LR_CALLS == [(s, 6, 0.1) for s in range(3)] + [
      (s, 6, 0.01) for s in range(3, 6)]
  assert [r['lr'] for r in result.history] == [0.1, 0.01]
  # The steps take the hooks' rate, 0, not the schedule's: whatever the
  # schedule, the default dense step (momentum, weight decay) moves nothing.
  other = train.train_model(
      jax.random.key(0), model, CFG, images, labels, np.arange(20),
      batch_size=8, lr_schedule=((2, 5.0),), mesh=mesh)
  jax.tree.map(np.testing.assert_array_equal,
               jax.device_get(result.state.params),
               jax.device_get(other.state.params))


def test_scoring_the_unlabeled_only_gives_their_scores_and_the_same_picks():
  images, _ = random_images(70, seed=5)
  mesh, model, state = fresh_preact8(images, key=2)
  measure = selection.UNCERTAINTY_MEASURES['least_confidence']
  whole = scoring.pool_uncertainty(state, model, CFG, images,
                                   measure=measure, batch_size=16, mesh=mesh)
  labeled = np.zeros(70, bool)
  labeled[np.random.default_rng(0).choice(70, 25, replace=False)] = True
  unlabeled = np.flatnonzero(~labeled)
  part = scoring.pool_uncertainty(state, model, CFG, images,
                                  measure=measure, batch_size=16, mesh=mesh,
                                  indices=unlabeled)
  # Same batch size, same step: the same floats, bit for bit.
  np.testing.assert_array_equal(part, whole[unlabeled])
  with_nan = np.full(70, np.nan, np.float32)
  with_nan[unlabeled] = part
  np.testing.assert_array_equal(
      np.asarray(selection.select_top_k(with_nan, labeled, 10)),
      np.asarray(selection.select_top_k(whole, labeled, 10)))
  assert scoring.pool_uncertainty(
      state, model, CFG, images, measure=measure, batch_size=16, mesh=mesh,
      indices=np.zeros(0, np.int64)).shape == (0,)
