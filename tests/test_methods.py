"""The selection-method registry: every built-in is one entry, and a method
registered from outside the library runs in an active round."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from svp_jax import active
from svp_jax import methods
from svp_jax import selection
from svp_jax import validation
import test_active  # Its tiny config (tests/ is on the path under pytest).

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_builtins_in_the_order_all_runs_them():
  assert methods.names() == ('random', 'least_confidence', 'entropy',
                             'margin', 'forgetting_events', 'kcenters')
  assert methods.names('active') == ('random', 'least_confidence', 'entropy',
                                     'margin', 'kcenters')
  assert common.coreset_methods('all') == methods.names('coreset')
  needs = {m: methods.get(m).needs for m in methods.names()}
  assert needs == {'random': 'nothing', 'least_confidence': 'uncertainty',
                   'entropy': 'uncertainty', 'margin': 'uncertainty',
                   'forgetting_events': 'forgetting', 'kcenters': 'features'}
  assert [m for m in methods.names() if methods.get(m).seeded] == ['kcenters']
  # One method per measure of the selection kernels, each scoring by it.
  uncertain = [m for m in methods.names() if needs[m] == 'uncertainty']
  assert tuple(uncertain) == tuple(selection.UNCERTAINTY_MEASURES)
  logits = jnp.asarray([[2.0, 1.0, -1.0], [0.5, 0.4, 0.3]])
  for name in uncertain:
    np.testing.assert_array_equal(
        selection.apply_measure(logits, methods.get(name).uncertainty),
        selection.uncertainty(logits, name))


def test_the_registry_imports_no_jax():
  code = ('import sys; from svp_jax import methods; methods.get("kcenters"); '
          'assert "jax" not in sys.modules, sorted(sys.modules)')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO)


def test_entries_are_checked():
  pick = methods.get('random').pick
  with pytest.raises(ValueError, match="needs='logits'"):
    methods.SelectionMethod('x', 'logits', pick)
  with pytest.raises(ValueError, match='uncertainty function is required'):
    methods.SelectionMethod('x', methods.UNCERTAINTY, pick)
  with pytest.raises(ValueError, match='modes='):
    methods.SelectionMethod('x', methods.NOTHING, pick, modes=('rounds',))
  with pytest.raises(ValueError, match="'random' is already registered"):
    methods.register(methods.SelectionMethod('random', methods.NOTHING, pick))
  with pytest.raises(ValueError, match=r"'nope' is not registered: expected "
                     r"one of \('random', "):
    methods.get('nope')


def _most_confident(logits):
  # The opposite of least confidence: the examples the selector is surest of.
  return -selection.UNCERTAINTY_MEASURES['least_confidence'](logits)


SEEN = []  # What the registered pick was given, per call.


def _pick_top(scores, labeled, k, key, mesh):
  del key, mesh
  SEEN.append((np.asarray(scores), np.asarray(labeled).copy()))
  return selection.select_top_k(scores, labeled, k)


@pytest.fixture
def most_confident():
  method = methods.register(methods.SelectionMethod(
      'most_confident', methods.UNCERTAINTY, _pick_top,
      modes=('active',), uncertainty=_most_confident))
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
