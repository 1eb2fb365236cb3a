"""BADGE: gradient embeddings and k-means++ seeding against a NumPy oracle of
the published algorithm, on 1 and 8 (simulated) devices, and in a round."""

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import numpy as np
import pytest

from configs import fashion_mnist_svp
from svp_jax import active
from svp_jax import experiment
from svp_jax import methods
from svp_jax import model_registry
from svp_jax import selection
from svp_jax import validation
import test_active  # Its tiny config (tests/ is on the path under pytest).
import test_methods  # Its tiny linear selector.
import test_model_registry  # Its tiny registered model.

NUM_SHARDS = 8


def mesh_of(num_devices: int) -> Mesh:
  if jax.device_count() < num_devices:
    pytest.skip(f'needs {num_devices} devices')
  return Mesh(np.array(jax.devices()[:num_devices]), (selection.DATA_AXIS,))


# ----------------------------------------------------------------------------
# Oracles, in float64: the authors' code (github.com/JordanAsh/badge,
# query_strategies/badge_sampling.py) in plain NumPy, drawing from given
# uniforms by the inverse CDF where theirs calls scipy's rv_discrete.


def softmax64(logits):
  z = np.asarray(logits, np.float64)
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def oracle_gradient_embeddings(logits, features):
  """Their get_grad_embedding, negated: block c of a row is
  (p_c - [c == predicted]) * features."""
  p = softmax64(logits)
  g = p - np.eye(p.shape[1])[p.argmax(1)]
  return (g[:, :, None] * np.asarray(features, np.float64)[:, None, :]
          ).reshape(len(p), -1)


def oracle_badge(x, labeled, k, uniforms, valid=None):
  """Their query + init_centers: k-means++ seeding over the unlabeled rows.

  The first center is the largest norm; center t >= 1 is the first point
  whose cumulative D^2 exceeds uniforms[t] times the total (uniform over the
  remaining points when every D^2 is 0). Returns pool indices.
  """
  valid = np.ones(len(x), bool) if valid is None else valid
  pool = np.flatnonzero(valid & ~labeled)  # Their idxs_unlabeled.
  x = np.asarray(x, np.float64)[pool]
  chosen = [int(np.argmax(np.linalg.norm(x, axis=1)))]
  d2 = ((x - x[chosen[0]])**2).sum(1)
  for t in range(1, k):
    weight = d2.copy()
    if not weight[np.setdiff1d(np.arange(len(x)), chosen)].any():
      weight = np.ones(len(x))
    weight[chosen] = 0
    cdf = np.cumsum(weight)
    chosen.append(int(np.searchsorted(cdf, uniforms[t] * cdf[-1], 'right')))
    d2 = np.minimum(d2, ((x - x[chosen[-1]])**2).sum(1))
  return pool[chosen]


# ----------------------------------------------------------------------------
# The embedding.


def test_gradient_embeddings_match_the_authors():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 2, (50, 3)).astype(np.float32)
  features = rng.normal(size=(50, 4)).astype(np.float32)
  got = methods.get('badge').scoring.fn(jnp.asarray(logits),
                                        jnp.asarray(features))
  assert got.shape == (50, 12) and got.dtype == jnp.float32
  want = oracle_gradient_embeddings(logits, features)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # Computed in float32 from a bfloat16 selector's outputs too.
  half = selection.gradient_embeddings(jnp.asarray(logits, jnp.bfloat16),
                                       jnp.asarray(features, jnp.bfloat16))
  assert half.dtype == jnp.float32


def test_badge_is_an_active_method_of_both_outputs_on_the_unlabeled():
  badge = methods.get('badge')
  assert badge.scoring.outputs == (methods.LOGITS, methods.FEATURES)
  assert badge.scoring.unlabeled_only and badge.modes == ('active',)
  assert not badge.seeded and not badge.scores_compare
  assert 'badge' in methods.names('active')
  assert 'badge' not in methods.names('coreset')
  config = fashion_mnist_svp.get_config('badge')
  assert config.selection.method == 'badge'
  validation.validate_active_config(config)


# ----------------------------------------------------------------------------
# The pick, index for index.


def _embedded_pool(n, labeled_fraction, seed):
  """n x 12 gradient embeddings (3 classes x 4 features), some labeled."""
  rng = np.random.default_rng(seed)
  logits = rng.normal(0, 2, (n, 3)).astype(np.float32)
  features = rng.normal(size=(n, 4)).astype(np.float32)
  x = np.array(selection.gradient_embeddings(logits, features))
  labeled = rng.random(n) < labeled_fraction
  return x, labeled


def _check_against_oracle(x, labeled, k, key, mesh, valid=None):
  got = np.asarray(selection.kmeans_pp_seeding(
      np.where(labeled[:, None], np.nan, x), labeled, k, key, mesh=mesh,
      valid_mask=valid))  # Labeled rows NaN, as scoring leaves them.
  uniforms = np.asarray(selection.kmeans_pp_uniforms(key, k), np.float64)
  want = oracle_badge(x, labeled, k, uniforms, valid)
  assert got.dtype == np.int32 and len(set(got.tolist())) == k
  np.testing.assert_array_equal(got, want)
  return got


@pytest.mark.parametrize('num_devices', [1, NUM_SHARDS])
@pytest.mark.parametrize('n,labeled_fraction,k', [
    (200, 0.0, 10), (200, 0.3, 10), (203, 0.1, 40)])
def test_kmeans_pp_matches_the_oracle(num_devices, n, labeled_fraction, k):
  x, labeled = _embedded_pool(n, labeled_fraction, seed=n)
  k = min(k, int((~labeled).sum()))
  for seed in range(3):
    _check_against_oracle(x, labeled, k, jax.random.key(seed),
                          mesh_of(num_devices))


@pytest.mark.parametrize('num_devices', [1, NUM_SHARDS])
def test_kmeans_pp_duplicates_padding_and_every_point(num_devices):
  # Small integers: distances and their sums are exact in float32 and
  # float64, so even near-boundary draws agree; duplicates make D^2 zero for
  # the last points (the uniform fallback), and k takes every one.
  rng = np.random.default_rng(5)
  x = rng.integers(-2, 3, (301, 2)).astype(np.float32)
  labeled = rng.random(301) < 0.2
  valid = np.arange(301) < 290  # The last rows are padding.
  k = int((valid & ~labeled).sum())
  got = _check_against_oracle(x, labeled, k, jax.random.key(3),
                              mesh_of(num_devices), valid)
  assert not labeled[got].any() and valid[got].all()


def test_kmeans_pp_one_and_eight_devices_pick_alike():
  x, labeled = _embedded_pool(1001, 0.25, seed=7)
  x[labeled] = np.nan
  picks = {}
  for num_devices in (1, NUM_SHARDS):
    mesh = mesh_of(num_devices)
    picks[num_devices] = [np.asarray(selection.kmeans_pp_seeding(
        x, labeled, 100, jax.random.key(seed), mesh=mesh))
                          for seed in range(4)]
  for one, eight in zip(picks[1], picks[NUM_SHARDS]):
    np.testing.assert_array_equal(one, eight)
  # The draws are random: other keys, other points (after the first).
  assert len({tuple(p[1:]) for p in picks[1]}) == 4
  assert len({p[0] for p in picks[1]}) == 1  # The largest norm.


def test_kmeans_pp_draws_d2_by_the_inverse_cdf_of_its_uniform():
  # Norms 0, 10, 1, 3: the first center is point 1; D^2 to it is 100, 0, 81,
  # 49: the cumulative weights 100, 100, 181, 230 split [0, 1).
  x = np.float32([[0], [10], [1], [3]])
  nothing = np.zeros(4, bool)

  def second(u, labeled=nothing):
    picks = selection._kmeans_pp_jit(  # pylint: disable=protected-access
        x.T, labeled, np.ones(4, bool), jnp.float32([0, u]), k=2,
        mesh=mesh_of(1))
    return np.asarray(picks).tolist()

  assert second(0.0) == [1, 0]
  assert second(99.9 / 230) == [1, 0]
  assert second(100.1 / 230) == [1, 2]
  assert second(181.1 / 230) == [1, 3]
  assert second(np.nextafter(np.float32(1), np.float32(0))) == [1, 3]
  # A labeled point weighs nothing, whatever the uniform.
  assert second(0.0, np.array([1, 0, 0, 0], bool)) == [1, 2]


def test_kmeans_pp_checks_its_arguments():
  x = np.zeros((3, 2), np.float32)
  with pytest.raises(ValueError, match='only 1'):
    selection.kmeans_pp_seeding(x, np.array([1, 0, 1], bool), 2,
                                jax.random.key(0))
  with pytest.raises(ValueError, match=r'\[n, d\]'):
    selection.kmeans_pp_seeding(np.zeros(3), np.zeros(3, bool), 1,
                                jax.random.key(0))
  assert selection.kmeans_pp_seeding(x, np.zeros(3, bool), 0,
                                     jax.random.key(0)).shape == (0,)


def test_kmeans_pp_memory_is_linear_in_pool():
  # An n x n distance matrix would need 1 GiB; allow a copy of the
  # embeddings and a few O(n) vectors.
  n, d = 16384, 8
  compiled = selection._kmeans_pp_jit.lower(  # pylint: disable=protected-access
      jnp.zeros((d, n)), jnp.zeros(n, bool), jnp.ones(n, bool),
      jnp.zeros(100), k=100, mesh=mesh_of(1)).compile()
  analysis = compiled.memory_analysis()
  if analysis is None:
    pytest.skip('no memory analysis on this backend')
  assert analysis.temp_size_in_bytes < 4 * n * (2 * d + 16), analysis


# ----------------------------------------------------------------------------
# Through the scoring every run uses, and in an active round.


@pytest.mark.parametrize('num_devices', [1, NUM_SHARDS])
def test_badge_scores_the_unlabeled_and_picks_what_the_oracle_picks(
    num_devices):
  mesh = mesh_of(num_devices)
  badge = methods.get('badge')
  # pylint: disable-next=protected-access
  tiny_selector = test_methods._tiny_selector
  trained, learner, job, (logits, features) = tiny_selector(mesh)
  labeled = np.zeros(test_methods.POOL, bool)
  labeled[[0, 5, 9, 30]] = True
  rows = experiment.method_scores(job, learner, badge, trained, labeled)
  want = oracle_gradient_embeddings(logits, features)
  assert rows.shape == (test_methods.POOL, 12) and rows.flags.f_contiguous
  assert np.isnan(rows[labeled]).all()
  np.testing.assert_allclose(rows[~labeled], want[~labeled], rtol=1e-4,
                             atol=1e-5)
  key = jax.random.key(4)
  picks = np.asarray(badge.pick(rows, labeled, 8, key, mesh))
  np.testing.assert_array_equal(picks, oracle_badge(
      want, labeled, 8, np.asarray(selection.kmeans_pp_uniforms(key, 8))))


@pytest.fixture
def tiny_linear():
  """test_model_registry's one-layer model: a round in seconds."""
  spec = model_registry.register(test_model_registry.TINY)
  yield spec
  model_registry.unregister(spec.name)


@pytest.mark.slow  # ~5 s: the one end-to-end `:badge` run (training,
# scoring and the pick each compile); the tests above cover each part.
def test_a_badge_round_picks_unlabeled_points(fashion_mnist_dir, tmp_path,
                                              tiny_linear):
  config = test_active.tiny_config(fashion_mnist_dir, method='badge',
                                   rounds=(50.0,), train_target=False)
  for role in ('selector', 'target'):
    config[role].model.name = tiny_linear.name
  validation.validate_active_config(config)
  summary = active.run(config, str(tmp_path))
  assert summary['complete'] and summary['method'] == 'badge'
  labeled = np.loadtxt(tmp_path / 'proxy' / '100' / 'labeled_100.index',
                       dtype=np.int64)
  initial = np.loadtxt(tmp_path / 'initial_subset_50.index', dtype=np.int64)
  assert len(set(labeled.tolist())) == 100
  assert set(initial.tolist()) < set(labeled.tolist())
