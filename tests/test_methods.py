"""The selection-method registry: every built-in is one entry, and a method
registered from outside the library runs in an active round."""

import os
import subprocess
import sys
import types

from flax import linen as nn

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from svp_jax import active
from svp_jax import experiment
from svp_jax import methods
from svp_jax import selection
from svp_jax import sharding
from svp_jax import train
from svp_jax import validation
import test_active  # Its tiny config (tests/ is on the path under pytest).

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scoring_kind(method):
  scoring = method.scoring
  if isinstance(scoring, methods.PerBatch):
    return ('per batch', scoring.outputs, scoring.unlabeled_only)
  return None if scoring is None else type(scoring).__name__


def test_builtins_in_the_order_all_runs_them():
  assert methods.names() == ('random', 'least_confidence', 'entropy',
                             'margin', 'forgetting_events', 'kcenters',
                             'badge')
  assert methods.names('active') == ('random', 'least_confidence', 'entropy',
                                     'margin', 'kcenters', 'badge')
  assert common.coreset_methods('all') == methods.names('coreset')
  kinds = {m: _scoring_kind(methods.get(m)) for m in methods.names()}
  uncertain = ('per batch', ('logits',), True)
  assert kinds == {'random': None, 'least_confidence': uncertain,
                   'entropy': uncertain, 'margin': uncertain,
                   'forgetting_events': 'FromTraining',
                   'kcenters': ('per batch', ('features',), False),
                   'badge': ('per batch', ('logits', 'features'), True)}
  assert [m for m in methods.names() if methods.get(m).seeded] == ['kcenters']
  assert [m for m in methods.names()
          if methods.get(m).counts_forgetting] == ['forgetting_events']
  assert [m for m in methods.names() if not methods.get(m).trains_selector
          ] == ['random']
  # One method per measure of the selection kernels, each scoring by it;
  # only theirs compare with a target's (selection.compare_with_target).
  uncertain = [m for m in methods.names() if methods.get(m).scores_compare]
  assert tuple(uncertain) == tuple(selection.UNCERTAINTY_MEASURES)
  logits = jnp.asarray([[2.0, 1.0, -1.0], [0.5, 0.4, 0.3]])
  for name in uncertain:
    np.testing.assert_array_equal(
        methods.get(name).scoring.fn(logits),
        selection.uncertainty(logits, name))
  features = np.arange(6.0).reshape(2, 3)
  np.testing.assert_array_equal(
      methods.get('kcenters').scoring.fn(features), features)


def test_the_registry_imports_no_jax():
  code = ('import sys; from svp_jax import methods; methods.get("kcenters"); '
          'assert "jax" not in sys.modules, sorted(sys.modules)')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO)


def test_entries_are_checked():
  pick = methods.get('random').pick
  with pytest.raises(ValueError, match="scoring='logits'"):
    methods.SelectionMethod('x', 'logits', pick)
  for outputs in ((), ('gradients',), 'logits'):
    with pytest.raises(ValueError, match=r'outputs=.*expected a non-empty '
                       r"tuple of \('logits', 'features'\)"):
      methods.PerBatch(outputs, np.max)
  with pytest.raises(ValueError, match='scores_compare needs'):
    methods.SelectionMethod('x', methods.get('forgetting_events').scoring,
                            pick, scores_compare=True)
  with pytest.raises(ValueError, match='modes='):
    methods.SelectionMethod('x', None, pick, modes=('rounds',))
  with pytest.raises(ValueError, match="'random' is already registered"):
    methods.register(methods.SelectionMethod('random', None, pick))
  with pytest.raises(ValueError, match=r"'nope' is not registered: expected "
                     r"one of \('random', "):
    methods.get('nope')


def _most_confident(logits):
  # The opposite of least confidence: the examples the selector is surest of.
  return -selection.UNCERTAINTY_MEASURES['least_confidence'](logits)


def _most_confident_scores(logits):
  # Its per-batch function: the measure in float32, as the built-ins apply
  # theirs.
  return methods.uncertainty_of(logits, _most_confident)


SEEN = []  # What the registered pick was given, per call.


def _pick_top(scores, labeled, k, key, mesh):
  del key, mesh
  SEEN.append((np.asarray(scores), np.asarray(labeled).copy()))
  return selection.select_top_k(scores, labeled, k)


@pytest.fixture
def most_confident():
  method = methods.register(methods.SelectionMethod(
      'most_confident',
      methods.PerBatch((methods.LOGITS,), _most_confident_scores,
                       unlabeled_only=True),
      _pick_top, modes=('active',)))
  SEEN.clear()
  yield method
  methods.unregister(method.name)


def test_a_method_registered_here_runs_an_active_round(
    fashion_mnist_dir, tmp_path, most_confident):
  config = test_active.tiny_config(fashion_mnist_dir,
                                   method=most_confident.name,
                                   rounds=(50.0,), eval_target_at=(100,))
  validation.validate_active_config(config)  # Accepted by name.
  summary = active.run(config, str(tmp_path / 'most'))
  assert summary['complete'] and summary['method'] == 'most_confident'
  picked = _round_1_picks(tmp_path / 'most')
  # Its pick saw one score per pool image, from its own measure, and the
  # labeled set of round 0; it took the 50 highest of the unlabeled.
  (scores, labeled), = SEEN
  assert scores.shape == (600,) and labeled.sum() == 50
  assert np.isnan(scores[labeled]).all()  # Unlabeled only, as declared.
  unlabeled = np.flatnonzero(~labeled)
  top = unlabeled[np.argsort(-scores[unlabeled], kind='stable')[:50]]
  assert set(picked) == set(top)
  # The same run by least confidence (same initial set, same selector
  # training) picks from the other end of the same ranking.
  config.selection.method = 'least_confidence'
  active.run(config, str(tmp_path / 'least'))
  assert not set(picked) & set(_round_1_picks(tmp_path / 'least'))


def _round_1_picks(workdir):
  labeled = np.loadtxt(workdir / 'proxy' / '100' / 'labeled_100.index',
                       dtype=np.int64)
  initial = np.loadtxt(workdir / 'initial_subset_50.index', dtype=np.int64)
  return np.setdiff1d(labeled, initial)


def test_a_registered_method_is_refused_where_its_modes_exclude_it(
    most_confident):
  config = common.coreset_config(
      'fashion_mnist', common.model_section('preact8', ((1, 0.1),)),
      common.model_section('preact8', ((1, 0.1),)), ('most_confident',),
      subset_size=0.1)
  with pytest.raises(validation.ConfigError,
                     match=r"coreset.methods\[0\]='most_confident'"):
    validation.validate_coreset_config(config)


def test_a_registered_measure_is_applied_in_float32_with_one_zero():
  # exp(-1000) underflows: least confidence is exactly 0, negated -0.0.
  logits = jnp.asarray([[1000.0, 0.0], [0.0, 0.0]], jnp.bfloat16)
  got = np.asarray(jax.device_get(
      selection.apply_measure(logits, _most_confident)))
  assert got.dtype == np.float32
  np.testing.assert_array_equal(got, [0.0, -0.5])
  assert not np.signbit(got[0])  # -0.0 and 0.0 must tie when sorted.


# ----------------------------------------------------------------------------
# Methods with per-batch functions of their own, through the seam every run
# uses (experiment.method_scores), on a tiny linear selector whose outputs
# NumPy computes too.


class _TinySelector(nn.Module):
  """logits [n, 3] and features [n, 4], as a selector's forward pass."""

  @nn.compact
  def __call__(self, x, train):
    del train
    features = nn.Dense(4, name='features')(x.reshape(len(x), -1))
    return nn.Dense(3, name='logits')(jnp.tanh(features)), features


TINY_CFG = train.StepConfig(num_classes=3, mean=(0.0,), std=(1.0,))
POOL = 37  # Not a multiple of 8 devices nor of the batch: padding is used.


def _tiny_selector(mesh):
  """(trained, learner, job) for experiment.method_scores, and NumPy's
  (logits, features) of the same pool."""
  rng = np.random.default_rng(3)
  images = rng.integers(0, 256, (POOL, 2, 3, 1), dtype=np.uint8)
  model = _TinySelector()
  params = model.init(jax.random.key(1), jnp.zeros((1, 2, 3, 1)),
                      train=False)['params']
  state = train.TrainState(step=jnp.zeros((), jnp.int32),
                           params=sharding.replicate(mesh, params),
                           batch_stats={}, opt_state=())
  learner = types.SimpleNamespace(model=model, cfg=TINY_CFG,
                                  pool_eval_inputs=images, eval_batch_size=8)
  w = jax.tree.map(np.asarray, params)
  x = images.reshape(POOL, -1).astype(np.float32) / 255
  features = x @ w['features']['kernel'] + w['features']['bias']
  logits = np.tanh(features) @ w['logits']['kernel'] + w['logits']['bias']
  return (types.SimpleNamespace(state=state), learner,
          types.SimpleNamespace(mesh=mesh), (logits, features))


def _max_logit(logits):
  return jnp.max(logits, axis=-1)


def _pick_top_scores(scores, labeled, k, key, mesh):
  del key, mesh
  return selection.select_top_k(scores, labeled, k)


def _softmax(logits):
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _loss_gradient_embedding(logits, features):
  # A row per example from both outputs: the gradient of the cross-entropy
  # at the predicted class with respect to the last layer's weights.
  p = jax.nn.softmax(logits, axis=-1)
  g = p - jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1])
  return (g[:, :, None] * features[:, None, :]).reshape(len(logits), -1)


def _pick_longest_rows(rows, labeled, k, key, mesh):
  del key, mesh
  norms = np.where(labeled, -np.inf, np.linalg.norm(rows, axis=1))
  return np.argsort(-norms, kind='stable')[:k]


@pytest.fixture
def registered():
  """Registers methods for one test; unregisters them after."""
  added = []

  def register(*args, **kwargs):
    added.append(methods.register(methods.SelectionMethod(*args, **kwargs)))
    return added[-1]

  yield register
  for method in added:
    methods.unregister(method.name)


def _scores_and_picks(method, mesh, labeled, k):
  trained, learner, job, numpy_outputs = _tiny_selector(mesh)
  scores = experiment.method_scores(job, learner, method, trained, labeled)
  picks = np.asarray(jax.device_get(
      method.pick(scores, labeled, k, jax.random.key(0), mesh)))
  return scores, picks, numpy_outputs


def test_a_registered_max_logit_method_picks_what_numpy_picks(registered):
  method = registered('max_logit', methods.PerBatch(
      (methods.LOGITS,), _max_logit, unlabeled_only=True), _pick_top_scores,
                      modes=('active',))
  labeled = np.zeros(POOL, bool)
  labeled[[0, 5, 9, 30]] = True
  scores, picks, (logits, _) = _scores_and_picks(
      method, sharding.make_mesh(), labeled, 6)
  # One score per pool image: its max logit, NaN where it is labeled.
  expected = np.where(labeled, np.nan, logits.max(-1))
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
  unlabeled = np.flatnonzero(~labeled)
  top = unlabeled[np.argsort(-logits.max(-1)[unlabeled], kind='stable')[:6]]
  np.testing.assert_array_equal(picks, top)
  # One device picks what eight do.
  _, one, _ = _scores_and_picks(method, sharding.make_mesh(jax.devices()[:1]),
                                labeled, 6)
  np.testing.assert_array_equal(one, picks)


def test_a_registered_method_of_both_outputs_gets_one_row_per_example(
    registered):
  method = registered('longest_gradient', methods.PerBatch(
      (methods.LOGITS, methods.FEATURES), _loss_gradient_embedding),
                      _pick_longest_rows)
  labeled = np.zeros(POOL, bool)
  labeled[[2, 3, 36]] = True
  rows, picks, (logits, features) = _scores_and_picks(
      method, sharding.make_mesh(), labeled, 5)
  g = _softmax(logits) - np.eye(3)[logits.argmax(-1)]
  expected = (g[:, :, None] * features[:, None, :]).reshape(POOL, 12)
  np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-6)
  assert rows.flags.f_contiguous  # Feature-major, as k-centers reads them.
  norms = np.where(labeled, -np.inf, np.linalg.norm(expected, axis=1))
  np.testing.assert_array_equal(picks, np.argsort(-norms, kind='stable')[:5])
