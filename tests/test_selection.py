"""Selection functions against NumPy oracles, on 1 and 8 (simulated) devices.

tests/conftest.py asks for 8 CPU devices. Tests named `*sharded*` need them;
if this process has fewer (JAX initialised elsewhere first), they are skipped
here and re-run by `test_sharded_in_subprocess` with the flag set.
"""

import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np
import pytest

from svp_jax import methods
from svp_jax import selection
from svp_jax import sharding

NUM_SHARDS = 8
needs_shards = pytest.mark.skipif(
    jax.device_count() < NUM_SHARDS,
    reason=f'needs {NUM_SHARDS} devices; see test_sharded_in_subprocess')


def mesh_of(num_devices: int) -> Mesh:
  return Mesh(np.array(jax.devices()[:num_devices]), (selection.DATA_AXIS,))


# ----------------------------------------------------------------------------
# Oracles: the straightforward algorithms, in float64.


def softmax64(logits):
  z = np.asarray(logits, np.float64)
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def oracle_top_k(scores, selectable, k):
  """Highest scores among selectable, ties to the lowest index."""
  order = np.lexsort((np.arange(len(scores)), -np.asarray(scores)))
  return order[selectable[order]][:k]


def oracle_k_centers(x, labeled, k, valid=None):
  """Incremental greedy k-centers: (indices, radii), both as NumPy arrays."""
  x = np.asarray(x, np.float64)
  valid = np.ones(len(x), bool) if valid is None else valid
  min_d = np.full(len(x), np.inf)
  for c in np.flatnonzero(labeled & valid):
    min_d = np.minimum(min_d, ((x - x[c])**2).sum(1))
  selectable = valid & ~labeled
  picks, radii = [], []
  for _ in range(k):
    i = int(np.argmax(np.where(selectable, min_d, -np.inf)))  # First max.
    picks.append(i)
    radii.append(np.sqrt(min_d[i]))
    selectable[i] = False
    min_d = np.minimum(min_d, ((x - x[i])**2).sum(1))
  return np.array(picks, np.int64), np.array(radii)


# ----------------------------------------------------------------------------
# Uncertainty scores.


def test_scores_known_values():
  # Probabilities (.5, .5), (.75, .25) and (.6, .3, .1) as logits.
  two = np.log([[1., 1.], [3., 1.]])
  three = np.log([[6., 3., 1.]])
  h = lambda p: -sum(q * np.log(q) for q in p)
  np.testing.assert_allclose(
      selection.uncertainty(two, 'least_confidence'), [.5, .25], rtol=1e-6)
  np.testing.assert_allclose(
      selection.uncertainty(two, 'entropy'), [h([.5, .5]), h([.75, .25])],
      rtol=1e-6)
  np.testing.assert_allclose(
      selection.uncertainty(two, 'margin'), [0., -.5], atol=1e-7)
  np.testing.assert_allclose(
      selection.uncertainty(three, 'least_confidence'), [.4], rtol=1e-6)
  np.testing.assert_allclose(
      selection.uncertainty(three, 'entropy'), [h([.6, .3, .1])], rtol=1e-6)
  np.testing.assert_allclose(
      selection.uncertainty(three, 'margin'), [-.3], rtol=1e-6)


@pytest.mark.parametrize('method', selection.SCORING_METHODS)
def test_scores_match_float64_softmax(method):
  logits = np.random.default_rng(0).normal(0, 3, (50, 2, 10))
  p = np.sort(softmax64(logits), -1)
  want = {
      'least_confidence': 1 - p[..., -1],
      'entropy': -(p * np.log(p)).sum(-1),
      'margin': -(p[..., -1] - p[..., -2]),
  }[method]
  got = selection.uncertainty(logits.astype(np.float32), method)
  assert got.shape == (50, 2) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('method', selection.SCORING_METHODS)
def test_scores_rank_like_the_reference(method):
  # Selecting the top of our score = the reference's lowest max p / highest
  # entropy / lowest margin.
  logits = np.random.default_rng(1).normal(0, 2, (300, 5))
  p = np.sort(softmax64(logits), -1)
  reference_key = {  # Reference takes the smallest of these first.
      'least_confidence': p[:, -1],
      'entropy': (p * np.log(p)).sum(-1),
      'margin': p[:, -1] - p[:, -2],
  }[method]
  scores = selection.uncertainty(logits.astype(np.float32), method)
  got = selection.select_top_k(scores, np.zeros(300, bool), 30)
  np.testing.assert_array_equal(got, np.argsort(reference_key)[:30])


@pytest.mark.parametrize('method', selection.SCORING_METHODS)
def test_scores_finite_when_probabilities_underflow(method):
  # Naive entropy of [0, -1e4] is 0 * log(0) = NaN; [1e4, 0] overflows exp.
  logits = np.array([[0., -1e4], [-1e4, 0.], [1e4, 0.], [0., -np.inf],
                     [3e38, -3e38]], np.float32)
  got = np.asarray(selection.uncertainty(logits, method))
  assert np.all(np.isfinite(got)), got
  confident = {'least_confidence': 0., 'entropy': 0., 'margin': -1.}[method]
  np.testing.assert_array_equal(got, np.full(5, confident))
  # Certain examples tie exactly (no -0.0), so the lowest index goes first.
  uniform = np.zeros((1, 2), np.float32)
  scores = selection.uncertainty(np.concatenate([logits, uniform]), method)
  np.testing.assert_array_equal(
      selection.select_top_k(scores, np.zeros(6, bool), 6), [5, 0, 1, 2, 3, 4])


@pytest.mark.parametrize('method', selection.SCORING_METHODS)
def test_higher_score_is_more_uncertain(method):
  logits = np.array([[5., 0., 0.], [0., 0., 0.], [2., 1., 0.]], np.float32)
  assert np.argmax(selection.uncertainty(logits, method)) == 1
  assert np.argmin(selection.uncertainty(logits, method)) == 0


def test_scores_accept_bfloat16():
  logits = jnp.array([[2., 1., 0.]], jnp.bfloat16)
  got = selection.uncertainty(logits, 'entropy')
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(
      got, selection.uncertainty(logits.astype(jnp.float32), 'entropy'))


def test_unknown_method_error_names_config_key_value_and_choices():
  with pytest.raises(ValueError) as e:
    selection.uncertainty(np.zeros((1, 2)), 'confidence')
  message = str(e.value)
  assert 'selection.method' in message and "'confidence'" in message
  assert all(name in message for name in selection.SCORING_METHODS)


def test_margin_needs_two_classes():
  with pytest.raises(ValueError, match='2 classes'):
    selection.uncertainty(np.zeros((3, 1)), 'margin')


# ----------------------------------------------------------------------------
# Top-k.


def test_top_k_ties_go_to_lowest_index():
  scores = np.array([1., 3., 3., 2., 3.], np.float32)
  unlabeled = np.zeros(5, bool)
  np.testing.assert_array_equal(
      selection.select_top_k(scores, unlabeled, 3), [1, 2, 4])
  np.testing.assert_array_equal(
      selection.select_top_k(scores, np.array([0, 0, 1, 0, 0], bool), 3),
      [1, 4, 3])
  # -0.0 and 0.0 are the same score.
  np.testing.assert_array_equal(
      selection.select_top_k(np.array([-0., 0., -0.], np.float32),
                             np.zeros(3, bool), 3), [0, 1, 2])


def test_top_k_excludes_labeled_and_padding_even_at_minus_inf():
  scores = np.array([-np.inf, 5., np.nan, 4., 9.], np.float32)
  labeled = np.array([0, 1, 0, 0, 0], bool)
  valid = np.array([1, 1, 1, 1, 0], bool)
  # NaN ranks last, but still above nothing: every unlabeled point is taken.
  np.testing.assert_array_equal(
      selection.select_top_k(scores, labeled, 3, valid_mask=valid), [3, 0, 2])


@pytest.mark.parametrize('n', [1, 7, 1000, 1001])
def test_top_k_matches_oracle(n):
  rng = np.random.default_rng(n)
  # Few distinct values, so ties are everywhere.
  scores = rng.integers(0, 5, n).astype(np.float32)
  labeled = rng.random(n) < 0.3
  valid = rng.random(n) < 0.9
  selectable = valid & ~labeled
  for k in sorted({0, selectable.sum() // 2, selectable.sum()}):
    got = selection.select_top_k(scores, labeled, int(k), valid_mask=valid)
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, oracle_top_k(scores, selectable, k))


@needs_shards
def test_top_k_sharded_scores():
  n = 8 * 125
  rng = np.random.default_rng(3)
  scores = rng.integers(0, 9, n).astype(np.float32)
  labeled = rng.random(n) < 0.5
  sharding = NamedSharding(mesh_of(NUM_SHARDS), P(selection.DATA_AXIS))
  got = selection.select_top_k(
      jax.device_put(scores, sharding), jax.device_put(labeled, sharding), 99)
  np.testing.assert_array_equal(got, oracle_top_k(scores, ~labeled, 99))


def test_k_is_checked():
  labeled = np.array([1, 0, 1], bool)
  with pytest.raises(ValueError, match='only 1'):
    selection.select_top_k(np.zeros(3), labeled, 2)
  with pytest.raises(ValueError, match='non-negative'):
    selection.select_random(jax.random.key(0), labeled, -1)
  with pytest.raises(ValueError, match='shape'):
    selection.greedy_k_centers(np.zeros((3, 2)), np.zeros(4, bool), 1)
  with pytest.raises(ValueError, match='chunk_size'):
    selection.greedy_k_centers(np.zeros((3, 2)), np.zeros(3, bool), 1,
                               chunk_size=0)


# ----------------------------------------------------------------------------
# Random.


def test_random_is_distinct_unlabeled_valid_and_deterministic():
  n = 1001
  rng = np.random.default_rng(0)
  labeled = rng.random(n) < 0.4
  valid = np.arange(n) < 990
  selectable = valid & ~labeled
  key = jax.random.key(7)
  got = np.asarray(selection.select_random(key, labeled, 200,
                                           valid_mask=valid))
  assert got.dtype == np.int32 and len(set(got.tolist())) == 200
  assert selectable[got].all()
  np.testing.assert_array_equal(
      got, selection.select_random(key, labeled, 200, valid_mask=valid))
  assert not np.array_equal(
      got, selection.select_random(jax.random.key(8), labeled, 200,
                                   valid_mask=valid))
  every = selection.select_random(key, labeled, int(selectable.sum()),
                                  valid_mask=valid)
  np.testing.assert_array_equal(np.sort(every), np.flatnonzero(selectable))


def test_random_is_uniform_over_unlabeled():
  labeled = np.array([0, 1, 0, 0, 0, 1, 0, 0, 0, 0], bool)
  draws = 4000
  keys = jax.random.split(jax.random.key(0), draws)
  picks = jax.vmap(lambda key: selection._random_selectable(  # pylint: disable=protected-access
      key, jnp.asarray(~labeled), k=3))(keys)
  counts = np.bincount(np.asarray(picks).ravel(), minlength=10)
  assert counts[labeled].sum() == 0
  expected = draws * 3 / 8  # Each unlabeled point is in 3 of 8 subsets.
  sigma = np.sqrt(draws * 3 / 8 * 5 / 8)
  assert np.all(np.abs(counts[~labeled] - expected) < 5 * sigma), counts


# ----------------------------------------------------------------------------
# Greedy k-centers.

# (n, d, labeled fraction, k or None for every unlabeled point).
ORACLE_CASES = [
    (1, 1, 0.0, None),
    (7, 3, 0.0, None),
    (7, 3, 0.3, None),
    (1000, 64, 0.05, 100),
    (1001, 3, 0.0, None),
    (1001, 1, 0.1, 200),
    (4097, 64, 0.02, 300),
    (4097, 3, 0.5, None),
]


def random_pool(n, d, labeled_fraction, seed=0):
  rng = np.random.default_rng(seed + 1000 * n + d)
  x = rng.normal(size=(n, d)).astype(np.float32)
  labeled = rng.random(n) < labeled_fraction
  return x, labeled


def check_k_centers_against_oracle(mesh, n, d, labeled_fraction, k):
  x, labeled = random_pool(n, d, labeled_fraction)
  k = int((~labeled).sum()) if k is None else k
  got, radii = selection.greedy_k_centers_with_radii(
      x, labeled, k, mesh=mesh, chunk_size=16)
  want, want_radii = oracle_k_centers(x, labeled, k)
  assert got.shape == (k,) and got.dtype == jnp.int32
  np.testing.assert_array_equal(got, want)
  np.testing.assert_allclose(radii, want_radii, rtol=1e-5, atol=1e-6)
  assert np.all(np.diff(np.asarray(radii)) <= 0)


@pytest.mark.parametrize('n,d,labeled_fraction,k', ORACLE_CASES)
def test_k_centers_matches_oracle_one_device(n, d, labeled_fraction, k):
  check_k_centers_against_oracle(mesh_of(1), n, d, labeled_fraction, k)


@needs_shards
@pytest.mark.parametrize('n,d,labeled_fraction,k', ORACLE_CASES)
def test_k_centers_matches_oracle_sharded(n, d, labeled_fraction, k):
  check_k_centers_against_oracle(
      mesh_of(NUM_SHARDS), n, d, labeled_fraction, k)


@pytest.mark.parametrize('num_devices', [1, NUM_SHARDS])
def test_k_centers_exact_ties_and_duplicates_sharded(num_devices):
  if jax.device_count() < num_devices:
    pytest.skip('not enough devices')
  # Small integer coordinates: distances are exact in float32 and float64, so
  # ties are real and must go to the lowest index; many points duplicate a
  # labeled point (distance 0) and must still never select a labeled one.
  rng = np.random.default_rng(5)
  x = rng.integers(-2, 3, (301, 2)).astype(np.float32)
  labeled = rng.random(301) < 0.2
  k = int((~labeled).sum())
  got, radii = selection.greedy_k_centers_with_radii(
      x, labeled, k, mesh=mesh_of(num_devices), chunk_size=8)
  want, want_radii = oracle_k_centers(x, labeled, k)
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(radii, want_radii.astype(np.float32))
  assert radii[-1] == 0 and not labeled[np.asarray(got)].any()


@pytest.mark.parametrize('num_devices', [1, NUM_SHARDS])
def test_k_centers_padding_is_never_selected_nor_a_center_sharded(
    num_devices):
  if jax.device_count() < num_devices:
    pytest.skip('not enough devices')
  x, labeled = random_pool(203, 5, 0.1, seed=1)
  # Padding rows: far away (would be picked first if selectable), and some
  # "labeled" copies of real points (would zero their distance if centers).
  pad = np.concatenate([np.full((3, 5), 100, np.float32), x[:2]])
  x_padded = np.concatenate([x, pad])
  labeled_padded = np.concatenate([labeled, [False] * 3 + [True] * 2])
  valid = np.arange(208) < 203
  k = int((~labeled).sum())
  got = selection.greedy_k_centers(
      x_padded, labeled_padded, k, mesh=mesh_of(num_devices),
      valid_mask=valid)
  np.testing.assert_array_equal(got, oracle_k_centers(x, labeled, k)[0])
  with pytest.raises(ValueError, match='only'):
    selection.greedy_k_centers(x_padded, labeled_padded, k + 1,
                               valid_mask=valid)


def test_k_centers_without_labels_starts_at_lowest_valid_index():
  x, _ = random_pool(50, 4, 0.0)
  valid = np.arange(50) >= 3
  got, radii = selection.greedy_k_centers_with_radii(
      x, np.zeros(50, bool), 5, mesh=mesh_of(1), valid_mask=valid)
  assert got[0] == 3 and radii[0] == np.inf
  assert np.all(np.isfinite(radii[1:]))


@pytest.mark.parametrize('num_devices', [1, NUM_SHARDS])
def test_k_centers_permuting_the_pool_permutes_the_answer_sharded(
    num_devices):
  if jax.device_count() < num_devices:
    pytest.skip('not enough devices')
  x, labeled = random_pool(500, 8, 0.05, seed=2)  # Distinct floats: no ties.
  perm = np.random.default_rng(0).permutation(500)
  mesh = mesh_of(num_devices)
  got = selection.greedy_k_centers(x, labeled, 60, mesh=mesh)
  got_permuted = selection.greedy_k_centers(
      x[perm], labeled[perm], 60, mesh=mesh)
  np.testing.assert_array_equal(perm[np.asarray(got_permuted)], got)


@needs_shards
def test_k_centers_presharded_input_default_mesh_sharded():
  # Features already sharded over all devices, mesh left to the default.
  x, labeled = random_pool(1024, 16, 0.1, seed=3)
  sharding = NamedSharding(mesh_of(NUM_SHARDS), P(selection.DATA_AXIS))
  got = selection.greedy_k_centers(
      jax.device_put(x, sharding), jax.device_put(labeled, sharding), 50)
  np.testing.assert_array_equal(got, oracle_k_centers(x, labeled, 50)[0])


def test_k_centers_compiles_once_per_shape(monkeypatch):
  traced = jax.jit(
      chex.assert_max_traces(selection._k_centers_impl, n=1),  # pylint: disable=protected-access
      static_argnames=('k', 'mesh', 'chunk_size'))
  monkeypatch.setattr(selection, '_k_centers_jit', traced)
  mesh = mesh_of(1)
  # New data and labeled sets of any size (the init loop count is a runtime
  # value) reuse the one compiled program.
  for seed, fraction in enumerate([0.0, 0.01, 0.3, 0.6]):
    x, labeled = random_pool(256, 4, fraction, seed=seed)
    selection.greedy_k_centers(x, labeled, 20, mesh=mesh)
  with pytest.raises(AssertionError):  # A new k is a new program.
    selection.greedy_k_centers(x, labeled, 21, mesh=mesh)


def test_k_centers_memory_is_linear_in_pool():
  # Compiled temporaries for n = 16384, 50% labeled: an (s x n) distance
  # matrix would need 512 MiB; allow the features copy plus a few O(n)
  # vectors and the (n x chunk) block.
  n, d, chunk = 16384, 8, 16
  x_t = jnp.zeros((d, n))  # The jitted body takes feature-major features.
  labeled = jnp.arange(n) % 2 == 0
  compiled = selection._k_centers_jit.lower(  # pylint: disable=protected-access
      x_t, labeled, jnp.ones(n, bool), k=100, mesh=mesh_of(1),
      chunk_size=chunk).compile()
  analysis = compiled.memory_analysis()
  if analysis is None:
    pytest.skip('no memory analysis on this backend')
  budget = 4 * n * (2 * d + 2 * chunk + 16)
  assert analysis.temp_size_in_bytes < budget, analysis


# ----------------------------------------------------------------------------
# Re-run the sharded tests with 8 devices if this process has fewer.


@pytest.mark.skipif(jax.device_count() >= NUM_SHARDS,
                    reason='sharded tests already ran in this process')
def test_sharded_in_subprocess():
  env = dict(os.environ)
  env['XLA_FLAGS'] = sharding.simulated_cpu_devices_flags(NUM_SHARDS)
  result = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-k', 'sharded', __file__],
      env=env, capture_output=True, text=True, check=False, timeout=600)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_forgetting_ties_are_broken_by_the_runs_key():
  # Forgetting counts: a few classes of many equal scores. The subset's
  # boundary falls inside the class of 1s; which of them are kept must come
  # from the key (the run's seed), not from their pool indices.
  counts = np.repeat(np.float32([3, 2, 1, 0]), [5, 10, 200, 85])
  labeled = np.zeros(300, bool)
  labeled[7] = True
  pick = methods.get('forgetting_events').pick
  picks = {seed: np.asarray(pick(counts, labeled, 40, jax.random.key(seed),
                                 None)) for seed in range(3)}
  for picked in picks.values():
    assert len(set(picked.tolist())) == 40 and 7 not in picked
    # Every higher count is kept first, in descending order.
    assert set(picked[:14].tolist()) == set(range(15)) - {7}
    assert (counts[picked[14:]] == 1).all()
  ties = [frozenset(p[14:].tolist()) for p in picks.values()]
  assert len(set(ties)) == 3  # Different seeds, different tie breaks.
  assert ties[0] != frozenset(range(15, 41))  # Not the lowest indices.
  np.testing.assert_array_equal(  # The same seed, the same picks.
      np.asarray(pick(counts, labeled, 40, jax.random.key(0), None)),
      picks[0])


def test_top_k_without_a_tie_key_still_takes_the_lowest_index():
  scores = np.float32([1, 2, 2, 2, 0])
  np.testing.assert_array_equal(
      np.asarray(selection.select_top_k(scores, np.zeros(5, bool), 3)),
      [1, 2, 3])
