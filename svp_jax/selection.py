"""Selection functions: uncertainty, top-k, random, k-centers and BADGE.

Everything here is pure and works on fixed shapes, so each function compiles
once per (pool size, k). Shared semantics (docs/reference.md, "Active
learning"):

* labeled points are never selected, and neither are rows that `valid_mask`
  marks as padding (the pool may be padded to a multiple of the device count);
* exactly `k` distinct pool indices are returned, as int32, in selection order;
* ties go to the lowest pool index.

Score convention: `uncertainty` returns one float32 per example where HIGHER
means MORE uncertain, so every scoring method selects the top `k`:

  least_confidence  1 - max_c p_c          (reference: lowest max p first)
  entropy           -sum_c p_c log p_c     (nats; reference: highest first)
  margin            -(p_(1) - p_(2))       (reference: lowest margin first)

All three are computed from shifted logits, never from probabilities that can
underflow, so they are never NaN for finite logits (the reference's entropy was
NaN, and ranked first, whenever a probability underflowed to 0).
"""

import functools
import math

import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from svp_jax import sharding
from svp_jax.sharding import DATA_AXIS

try:  # jax >= 0.6 exports shard_map at the top level.
  from jax import shard_map as _shard_map  # pylint: disable=g-import-not-at-top
except ImportError:  # Older jax.
  from jax.experimental.shard_map import shard_map as _shard_map  # pylint: disable=g-import-not-at-top


# Labeled centers processed per pass when initialising k-centers: the
# (rows x chunk) score block, and (rows / _ROW_BLOCKS) x d gathered centers,
# are the only intermediates bigger than O(n).
DEFAULT_CHUNK_SIZE = 32
# Each device's rows are initialised in this many blocks (rows are padded to
# a multiple of it).
_ROW_BLOCKS = 16

_INT32_MAX = np.iinfo(np.int32).max


# ----------------------------------------------------------------------------
# Uncertainty scores.


def check_method(method: str) -> None:
  """Raises ValueError unless `method` is one of SCORING_METHODS."""
  if method not in SCORING_METHODS:
    raise ValueError(f'selection.method must be one of {SCORING_METHODS}, '
                     f'got {method!r}')


def _least_confidence(logits: jax.Array) -> jax.Array:
  # 1 - max p = S / (1 + S) with S = sum over the other classes of
  # exp(l_c - l_max). Summing the other classes directly (instead of
  # 1 - softmax.max()) keeps full relative precision for confident examples.
  top = jnp.argmax(logits, axis=-1)
  shifted = logits - jnp.max(logits, axis=-1, keepdims=True)
  is_top = jnp.arange(logits.shape[-1]) == top[..., None]
  others = jnp.sum(jnp.where(is_top, 0.0, jnp.exp(shifted)), axis=-1)
  return others / (1.0 + others)


def _entropy(logits: jax.Array) -> jax.Array:
  log_p = jax.nn.log_softmax(logits, axis=-1)
  p = jnp.exp(log_p)
  # p == 0 where a probability underflows (or a logit is -inf): its term is 0,
  # not 0 * -inf = NaN.
  return -jnp.sum(jnp.where(p > 0, p * log_p, 0.0), axis=-1)


def _margin(logits: jax.Array) -> jax.Array:
  if logits.shape[-1] < 2:  # Shapes are static: this fails while tracing.
    raise ValueError(f'margin needs at least 2 classes, got logits of shape '
                     f'{logits.shape}')
  # p1 - p2 = (1 - exp(l2 - l1)) / sum_c exp(l_c - l1); expm1 keeps precision
  # when the top two logits are close, which is where the ranking matters.
  top2, _ = lax.top_k(logits, 2)
  shifted = logits - top2[..., :1]
  normaliser = jnp.sum(jnp.exp(shifted), axis=-1)
  return jnp.expm1(top2[..., 1] - top2[..., 0]) / normaliser


# Name -> measure: logits [..., classes] -> scores [...], higher = more
# uncertain. svp_jax.methods registers one selection method per entry.
UNCERTAINTY_MEASURES = {
    'least_confidence': _least_confidence,
    'entropy': _entropy,
    'margin': _margin,
}
SCORING_METHODS = tuple(UNCERTAINTY_MEASURES)


@functools.partial(jax.jit, static_argnames='measure')
def apply_measure(logits: jax.Array, measure) -> jax.Array:
  """`measure(logits)` in float32, with -0.0 and 0.0 made one value."""
  score = measure(logits.astype(jnp.float32))
  # -0.0 and 0.0 must tie: sorting uses a total order that separates them.
  return jnp.where(score == 0, 0.0, score)


def uncertainty(logits: jax.Array, method: str) -> jax.Array:
  """Per-example uncertainty, higher = more uncertain (see module docstring).

  Args:
    logits: [..., num_classes] finite logits (any float dtype; computed in
      float32). `margin` needs at least 2 classes.
    method: one of SCORING_METHODS.

  Returns:
    float32 [...] scores, never NaN for finite logits.
  """
  check_method(method)
  return apply_measure(logits, UNCERTAINTY_MEASURES[method])


# ----------------------------------------------------------------------------
# Argument checks (on the host, outside jit).


def _selectable(labeled_mask: jax.Array,
                valid_mask: jax.Array | None) -> jax.Array:
  selectable = jnp.logical_not(jnp.asarray(labeled_mask, bool))
  if valid_mask is not None:
    selectable &= jnp.asarray(valid_mask, bool)
  return selectable


def _check_args(n: int, labeled_mask, valid_mask, k: int) -> None:
  """Raises ValueError for bad mask shapes or k > selectable points."""
  for name, mask in (('labeled_mask', labeled_mask),
                     ('valid_mask', valid_mask)):
    if mask is not None and tuple(np.shape(mask)) != (n,):
      raise ValueError(f'{name} must have shape ({n},), got {np.shape(mask)}')
  if not isinstance(k, (int, np.integer)) or k < 0:
    raise ValueError(f'k must be a non-negative int, got {k!r}')
  available = int(jnp.sum(_selectable(labeled_mask, valid_mask)))
  if k > available:
    raise ValueError(f'cannot select k={k} points: only {available} of the '
                     f'{n} pool points are unlabeled (and valid)')


# ----------------------------------------------------------------------------
# Top-k and random.


def _rankable(scores: jax.Array) -> jax.Array:
  scores = scores.astype(jnp.float32)
  # NaN ranks last rather than wherever the total order puts it; -0.0 == 0.0.
  scores = jnp.where(jnp.isnan(scores), -jnp.inf, scores)
  return jnp.where(scores == 0, 0.0, scores)


@functools.partial(jax.jit, static_argnames='k')
def _top_k_selectable(scores: jax.Array, selectable: jax.Array,
                      k: int) -> jax.Array:
  """The k highest `scores` among `selectable`, ties to the lowest index."""
  scores = _rankable(scores)
  index = jnp.arange(scores.shape[0], dtype=jnp.int32)
  # Sort by (not selectable, -score, index): the index key makes ties
  # deterministic without relying on sort stability, and a lexicographic key
  # cannot confuse a -inf score with an excluded point the way -inf masking
  # inside a single float key would.
  _, _, order = lax.sort(
      (jnp.logical_not(selectable).astype(jnp.int32), -scores, index),
      num_keys=3)
  return order[:k]


@functools.partial(jax.jit, static_argnames='k')
def _top_k_random_ties(key: jax.Array, scores: jax.Array,
                       selectable: jax.Array, k: int) -> jax.Array:
  """`_top_k_selectable` with ties in an order drawn from `key`."""
  scores = _rankable(scores)
  n = scores.shape[0]
  # A random rank per point: distinct, so it settles every tie by itself.
  rank = jax.random.permutation(key, n).astype(jnp.int32)
  _, _, _, order = lax.sort(
      (jnp.logical_not(selectable).astype(jnp.int32), -scores, rank,
       jnp.arange(n, dtype=jnp.int32)), num_keys=3)
  return order[:k]


def select_top_k(scores: jax.Array,
                 labeled_mask: jax.Array,
                 k: int,
                 *,
                 valid_mask: jax.Array | None = None,
                 tie_key: jax.Array | None = None) -> jax.Array:
  """Indices of the k highest scores among unlabeled valid points.

  Args:
    scores: [n] scores, higher = selected first (e.g. from `uncertainty`).
      NaN counts as -inf.
    labeled_mask: [n] bool, True for points already labeled.
    k: number of points to select (static: one compile per k).
    valid_mask: optional [n] bool, False for padding rows.
    tie_key: a JAX key: equal scores are taken in a random order drawn from
      it (for integer scores with large tie classes, such as forgetting
      counts, where the lowest index would let dataset order choose).

  Returns:
    int32 [k] distinct indices in descending score order, ties to the lowest
    index (or in `tie_key`'s order).
  """
  n = np.shape(scores)[0]
  _check_args(n, labeled_mask, valid_mask, k)
  selectable = _selectable(labeled_mask, valid_mask)
  if tie_key is None:
    return _top_k_selectable(scores, selectable, k=k)
  return _top_k_random_ties(tie_key, scores, selectable, k=k)


@functools.partial(jax.jit, static_argnames='k')
def _random_selectable(key: jax.Array, selectable: jax.Array,
                       k: int) -> jax.Array:
  # The first k selectable points of a uniform permutation are a uniform
  # k-subset. (Top-k of random floats would be slightly biased to low indices:
  # among 1e6 float32 draws there are thousands of ties.)
  n = selectable.shape[0]
  perm = jax.random.permutation(key, n).astype(jnp.int32)
  position = jnp.arange(n, dtype=jnp.int32)
  _, order = lax.sort(
      (jnp.logical_not(selectable[perm]).astype(jnp.int32), position),
      num_keys=2)
  return perm[order[:k]]


def select_random(key: jax.Array,
                  labeled_mask: jax.Array,
                  k: int,
                  *,
                  valid_mask: jax.Array | None = None) -> jax.Array:
  """k distinct indices drawn uniformly from unlabeled valid points.

  Args:
    key: PRNG key; the same key gives the same selection.
    labeled_mask: [n] bool, True for points already labeled.
    k: number of points to select (static: one compile per k).
    valid_mask: optional [n] bool, False for padding rows.

  Returns:
    int32 [k] distinct indices in random order.
  """
  n = np.shape(labeled_mask)[0]
  _check_args(n, labeled_mask, valid_mask, k)
  return _random_selectable(key, _selectable(labeled_mask, valid_mask), k=k)


# ----------------------------------------------------------------------------
# Greedy k-centers.
#
# Inside, features are held feature-major: [d, rows], rows (pool points)
# sharded over the `data` axis. A greedy pick is one pass over all features,
# memory-bound, and its speed depends on how the per-point sum over d is
# emitted. Summed over the minor axis of [rows, d] (or with reduce over the
# major axis of [d, rows]), XLA:CPU ran at 2.5x the read-bandwidth floor at
# d = 64 but 11-56x at d = 256; as d vectorised elementwise passes over
# contiguous [rows] feature rows, 1.6-1.9x at both (docs/performance.md).
# The layout also suits accelerators: points fill the vector lanes.

# Feature rows folded into the accumulator per loop iteration; 4 measured
# fastest of 1, 4, 8, 16 (larger unrolls give XLA no bigger fusion).
_FEATURE_UNROLL = 4


def _sum_sq_diff(xt: jax.Array, centers_t: jax.Array) -> jax.Array:
  """[rows] sum over d of (xt - centers_t)^2; xt [d, rows], centers_t [d] or
  [d, rows].

  Difference-based, not |x|^2 - 2 x.c + |c|^2: that form cancels
  catastrophically for near points (tiny negative distances, order flips)
  and the step is memory-bound either way.
  """
  centers_t = centers_t.reshape(centers_t.shape + (1,) * (2 - centers_t.ndim))

  def add_feature(j, total):
    return total + jnp.square(xt[j] - centers_t[j])

  # zeros_like(xt[0]), not zeros(): inside shard_map the carry must vary
  # over the data axis as xt does.
  return lax.fori_loop(0, xt.shape[0], add_feature,
                       jnp.zeros_like(xt[0], jnp.float32),
                       unroll=min(_FEATURE_UNROLL, xt.shape[0]))


def _nearest_sq_distances(xt: jax.Array, centers: jax.Array,
                          num_blocks: int) -> jax.Array:
  """[rows] squared distance of each point of `xt` [d, rows] to its nearest
  [c, d] center.

  The nearest center is found with one matmul (argmin of |c|^2 - 2 c.x), the
  distance to it then recomputed from the difference, so the value carries
  no cancellation error: at most a near-tie between two centers can be
  resolved the other way, changing the distance by that tie's width. The
  direct form, a [rows, c, d] difference block, was memory-bound and
  measured ~17x slower at d = 256 on CPU (most of it page faults). Points go
  in `num_blocks` blocks (it must divide rows), so the gathered nearest
  centers take d x rows / num_blocks floats, not another copy of `xt`.
  """
  c_sq = jnp.sum(jnp.square(centers), axis=-1)
  block = xt.shape[1] // num_blocks

  def add_block(b, out):
    xb = lax.dynamic_slice_in_dim(xt, b * block, block, axis=1)
    scores = c_sq[:, None] - 2 * jnp.matmul(centers, xb,
                                            precision=lax.Precision.HIGHEST)
    nearest_t = jnp.take(centers, jnp.argmin(scores, axis=0), axis=0).T
    return lax.dynamic_update_slice_in_dim(
        out, _sum_sq_diff(xb, nearest_t), b * block, axis=0)

  return lax.fori_loop(0, num_blocks, add_block,
                       jnp.zeros_like(xt[0], jnp.float32))


def _gather_columns(xt_local: jax.Array, index: jax.Array) -> jax.Array:
  """Points at global `index` [m] of the sharded `xt`, on every device:
  [d, m]."""
  rows = xt_local.shape[1]
  local = index - lax.axis_index(DATA_AXIS) * rows
  mine = (local >= 0) & (local < rows)
  picked = jnp.where(mine[None, :], xt_local[:, jnp.clip(local, 0, rows - 1)],
                     0)
  # Exactly one device contributes each point and the others add exact
  # zeros, so the sum is the point bit for bit.
  return lax.psum(picked, DATA_AXIS)


def _global_argmax(values: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(max, lowest global index attaining it) of a row-sharded vector."""
  local = jnp.argmax(values)  # First occurrence: lowest local index.
  best = values[local]
  top = lax.pmax(best, DATA_AXIS)
  index = local.astype(jnp.int32) + (
      lax.axis_index(DATA_AXIS) * values.shape[0])
  winner = lax.pmin(jnp.where(best == top, index, _INT32_MAX), DATA_AXIS)
  return top, winner


def _init_min_distances(xt: jax.Array, selectable: jax.Array,
                        center_index: jax.Array, num_centers: jax.Array,
                        chunk_size: int) -> jax.Array:
  """Per-shard min squared distance to the labeled centers.

  Unselectable rows get -inf (never picked); with no centers, +inf. Centers
  come `chunk_size` at a time from the replicated, sentinel-padded
  `center_index`; the loop runs ceil(num_centers / chunk_size) times, a
  runtime count, so the labeled-set size never changes the compiled program.
  """
  sentinel = center_index.shape[0]

  def add_chunk(j, min_d):
    index = lax.dynamic_slice_in_dim(center_index, j * chunk_size, chunk_size)
    # Sentinels in the last chunk repeat its first (real) center, which leaves
    # the minimum unchanged and saves masking the whole block.
    index = jnp.where(index < sentinel, index, index[0])
    centers = _gather_columns(xt, index).T
    return jnp.minimum(min_d, _nearest_sq_distances(xt, centers, _ROW_BLOCKS))

  min_d = jnp.where(selectable, jnp.inf, -jnp.inf)
  num_chunks = (num_centers + chunk_size - 1) // chunk_size
  return lax.fori_loop(0, num_chunks, add_chunk, min_d)


def _k_centers_shard(xt: jax.Array, selectable: jax.Array,
                     center_index: jax.Array, num_centers: jax.Array, *,
                     k: int, chunk_size: int) -> tuple[jax.Array, jax.Array]:
  """Per-device body: this device's points of the pool, global decisions."""
  rows = xt.shape[1]
  row_index = (jnp.arange(rows, dtype=jnp.int32) +
               lax.axis_index(DATA_AXIS) * rows)
  min_d = _init_min_distances(xt, selectable, center_index, num_centers,
                              chunk_size)

  def pick(t, carry):
    min_d, picked, radii = carry
    radius, winner = _global_argmax(min_d)
    center = _gather_columns(xt, winner[None])[:, 0]
    # Picked (like labeled and padding) rows are -inf so never picked again;
    # minimum() keeps them there.
    min_d = jnp.where(row_index == winner, -jnp.inf,
                      jnp.minimum(min_d, _sum_sq_diff(xt, center)))
    return min_d, picked.at[t].set(winner), radii.at[t].set(radius)

  init = (min_d, jnp.zeros((k,), jnp.int32), jnp.zeros((k,), jnp.float32))
  if k == 0:  # The loop body would index empty arrays while being traced.
    return init[1:]
  _, picked, radii = lax.fori_loop(0, k, pick, init)
  return picked, radii


def _pad_last(a: jax.Array, size: int, value) -> jax.Array:
  if a.shape[-1] == size:
    return a
  pad = [(0, 0)] * (a.ndim - 1) + [(0, size - a.shape[-1])]
  return jnp.pad(a, pad, constant_values=value)


def _sharded_pool(features_t: jax.Array, labeled_mask: jax.Array,
                  valid_mask: jax.Array, mesh: Mesh
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(features_t, labeled, valid) padded to whole row blocks per device.

  Feature-major float32 features [d, rows], rows sharded over the mesh's
  `data` axis; the padding points are invalid, so never picked and never
  centers.
  """
  n = features_t.shape[1]
  rows = math.ceil(n / (mesh.size * _ROW_BLOCKS)) * mesh.size * _ROW_BLOCKS
  xt = _pad_last(features_t.astype(jnp.float32), rows, 0)
  valid = _pad_last(valid_mask.astype(bool), rows, False)
  labeled = _pad_last(labeled_mask.astype(bool), rows, False)
  xt = lax.with_sharding_constraint(xt,
                                    NamedSharding(mesh, P(None, DATA_AXIS)))
  return xt, labeled, valid


def _k_centers_impl(features_t: jax.Array, labeled_mask: jax.Array,
                    valid_mask: jax.Array, *, k: int, mesh: Mesh,
                    chunk_size: int) -> tuple[jax.Array, jax.Array]:
  """Traced body of greedy k-centers on feature-major [d, n] features; see
  greedy_k_centers_with_radii."""
  xt, labeled, valid = _sharded_pool(features_t, labeled_mask, valid_mask,
                                     mesh)
  rows = xt.shape[1]
  centers = labeled & valid
  # Global indices of the labeled centers, padded with the sentinel `size`
  # to a whole number of chunks: O(n) ints, never an (s x n) matrix.
  size = math.ceil(rows / chunk_size) * chunk_size
  center_index = jnp.nonzero(centers, size=size, fill_value=size)[0]
  shard_fn = _shard_map(
      functools.partial(_k_centers_shard, k=k, chunk_size=chunk_size),
      mesh=mesh,
      in_specs=(P(None, DATA_AXIS), P(DATA_AXIS), P(), P()),
      out_specs=(P(), P()))
  picked, radii_sq = shard_fn(xt, valid & ~labeled,
                              center_index.astype(jnp.int32),
                              jnp.sum(centers, dtype=jnp.int32))
  return picked, jnp.sqrt(radii_sq)


_k_centers_jit = jax.jit(
    _k_centers_impl, static_argnames=('k', 'mesh', 'chunk_size'))


def greedy_k_centers_with_radii(
    features: jax.Array,
    labeled_mask: jax.Array,
    k: int,
    *,
    mesh: Mesh | None = None,
    valid_mask: jax.Array | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[jax.Array, jax.Array]:
  """Greedy k-centers (Sener & Savarese 2018) with the radius of each pick.

  Args:
    features: [n, d] finite features (computed in float32), rows sharded over
      the `data` axis of `mesh` or placed there by this function. n need not
      divide the device count: rows are padded internally. Selection works
      on the transpose [d, n]: pass a Fortran-ordered NumPy array (as
      scoring.pool_outputs returns) and that is a free view; anything else is
      transposed once, a second copy of the features while selecting.
    labeled_mask: [n] bool; labeled points are the initial centers.
    k: number of centers to add (static: one compile per (n, d, k)).
    mesh: mesh with a `data` axis; default all devices.
    valid_mask: optional [n] bool, False for padding rows, which are never
      selected and never act as centers.
    chunk_size: labeled centers per initialisation pass; memory for the
      distance block is (n / devices) * chunk_size floats per device.

  Returns:
    (indices, radii): int32 [k] distinct picks in order, and float32 [k]
    where radii[t] is the Euclidean distance of pick t to its nearest earlier
    center (labeled or picked), i.e. the covering radius of the valid pool
    before pick t; non-increasing, and +inf at t = 0 when nothing is labeled.
  """
  n = np.shape(features)[0]
  if np.ndim(features) != 2:
    raise ValueError(f'features must be [n, d], got shape {np.shape(features)}')
  _check_args(n, labeled_mask, valid_mask, k)
  if chunk_size < 1:
    raise ValueError(f'chunk_size must be positive, got {chunk_size}')
  if valid_mask is None:
    valid_mask = jnp.ones((n,), bool)
  # Transposed to feature-major: a free view of a Fortran-ordered array (as
  # scoring.pool_outputs returns them), one copy otherwise.
  return _k_centers_jit(
      features.T, jnp.asarray(labeled_mask), jnp.asarray(valid_mask), k=k,
      mesh=sharding.make_mesh() if mesh is None else mesh, chunk_size=chunk_size)


def greedy_k_centers(features: jax.Array,
                     labeled_mask: jax.Array,
                     k: int,
                     *,
                     mesh: Mesh | None = None,
                     valid_mask: jax.Array | None = None,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> jax.Array:
  """Greedy k-centers on Euclidean distance between feature rows.

  Starting from the labeled points as centers, repeatedly picks the unlabeled
  valid point farthest from its nearest center, ties to the lowest index. With
  nothing labeled, every distance is +inf, so the first pick is the
  lowest-index valid point (deterministic; seed `labeled_mask` with random
  points to start elsewhere, as the reference's core-set selection does).

  Memory is O(n) beyond the (feature-major, see greedy_k_centers_with_radii)
  features: a running min-distance vector, plus one (n / devices) x
  chunk_size block while folding in the labeled set. Each
  device keeps its rows; per pick only the winner's index and its feature row
  cross devices. See greedy_k_centers_with_radii for the arguments.

  Returns:
    int32 [k] distinct pool indices in selection order.
  """
  return greedy_k_centers_with_radii(
      features, labeled_mask, k, mesh=mesh, valid_mask=valid_mask,
      chunk_size=chunk_size)[0]


# ----------------------------------------------------------------------------
# BADGE (Ash et al. 2020, "Deep Batch Active Learning by Diverse, Uncertain
# Gradient Lower Bounds"): k-means++ seeding over gradient embeddings.
#
# What follows the authors' code (github.com/JordanAsh/badge,
# query_strategies/badge_sampling.py, `init_centers` and `query`): the
# embedding is the gradient of the cross-entropy at the predicted label with
# respect to the last layer's weights; seeding runs over the unlabeled pool
# only (labeled points are neither picked nor centers); the first center is
# the point of largest embedding norm (not a uniform draw, as in k-means++),
# and each next one is drawn with probability D(x)^2 / sum D^2, D the
# Euclidean distance to the nearest chosen center. Differences: the draw is
# the inverse CDF of the run's uniforms (`kmeans_pp_uniforms`), so that a
# NumPy oracle consuming the same uniforms picks the same indices; and when
# every remaining point coincides with a center (sum D^2 = 0, where the
# authors' code stops in a debugger) the draw is uniform over them, so k
# distinct points are always returned.


def gradient_embeddings(logits: jax.Array, features: jax.Array) -> jax.Array:
  """BADGE's embedding: [n, classes * d] float32 rows.

  (softmax(logits) - onehot(argmax logits)) outer features, flattened class
  by class: the gradient of the cross-entropy at the predicted label with
  respect to the last linear layer's weights, whose input `features` [n, d]
  are. (The authors store its negative; distances and norms are the same.)
  """
  logits = logits.astype(jnp.float32)
  g = jax.nn.softmax(logits, axis=-1) - jax.nn.one_hot(
      jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=jnp.float32)
  rows = g[:, :, None] * features.astype(jnp.float32)[:, None, :]
  return rows.reshape(len(logits), -1)


def kmeans_pp_uniforms(key: jax.Array, k: int) -> jax.Array:
  """The uniforms in [0, 1) k-means++ seeding draws with: float32 [k].

  Draw t >= 1 (the (t+1)-th center) uses entry t; entry 0 is unused (the
  first center is the largest norm). The same key gives the same uniforms
  on any mesh.
  """
  return jax.random.uniform(key, (k,), jnp.float32)


def _inverse_cdf_draw(min_d: jax.Array, u: jax.Array) -> jax.Array:
  """The index drawn by uniform `u` with probability proportional to
  `min_d` among the points with min_d >= 0 (-inf marks the others).

  The first index whose cumulative weight exceeds u * total, so a
  zero-weight point is never drawn; uniform over the candidates when all
  weigh 0. Computed the same way on every device from the same (gathered)
  vector, hence the same index whatever the mesh.
  """
  candidate = min_d >= 0
  weight = jnp.where(candidate, min_d, 0.0)
  weight = jnp.where(jnp.any(weight > 0), weight, candidate.astype(
      jnp.float32))
  cdf = jnp.cumsum(weight)
  total = cdf[-1]
  # u < 1, but u * total may round up to total, which nothing exceeds.
  threshold = jnp.minimum(u * total, jnp.nextafter(total, 0.0))
  return jnp.sum(cdf <= threshold, dtype=jnp.int32)


def _kmeans_pp_shard(xt: jax.Array, selectable: jax.Array,
                     uniforms: jax.Array, *, k: int, n: int) -> jax.Array:
  """Per-device body: this device's points, every decision global.

  `min_d` holds each candidate's squared distance to its nearest center
  (+inf before the first) and -inf for points that are not candidates
  (labeled, padding, already picked). Unselectable rows may hold NaN (a
  scoring of unlabeled points only leaves labeled rows NaN): they are only
  ever read through a mask.
  """
  rows = xt.shape[1]
  row_index = (jnp.arange(rows, dtype=jnp.int32) +
               lax.axis_index(DATA_AXIS) * rows)
  min_d = jnp.where(selectable, jnp.inf, -jnp.inf)

  def add_center(min_d, winner):
    center = _gather_columns(xt, winner[None])[:, 0]
    # where(), not minimum() alone: a non-candidate's distance may be NaN.
    return jnp.where((min_d >= 0) & (row_index != winner),
                     jnp.minimum(min_d, _sum_sq_diff(xt, center)), -jnp.inf)

  norms = jnp.where(selectable, _sum_sq_diff(xt, jnp.zeros_like(xt[:, 0])),
                    -jnp.inf)
  _, first = _global_argmax(norms)  # Ties to the lowest index.

  def pick(t, carry):
    min_d, picked = carry
    # Every device draws from the whole D^2 vector (n floats, gathered),
    # cut to the unpadded pool: the same arithmetic on any mesh.
    everyone = lax.all_gather(min_d, DATA_AXIS, tiled=True)[:n]
    # Equal on every device; pmin() only tells shard_map it is replicated.
    winner = lax.pmin(_inverse_cdf_draw(everyone, uniforms[t]), DATA_AXIS)
    return add_center(min_d, winner), picked.at[t].set(winner)

  picked = jnp.zeros((k,), jnp.int32).at[0].set(first)
  _, picked = lax.fori_loop(1, k, pick, (add_center(min_d, first), picked))
  return picked


def _kmeans_pp_impl(embeddings_t: jax.Array, labeled_mask: jax.Array,
                    valid_mask: jax.Array, uniforms: jax.Array, *, k: int,
                    mesh: Mesh) -> jax.Array:
  """Traced body of k-means++ seeding on feature-major [d, n] embeddings;
  see kmeans_pp_seeding. `uniforms` [k] are the draws
  (kmeans_pp_uniforms)."""
  n = embeddings_t.shape[1]
  if k == 0:  # The body would index empty arrays while being traced.
    return jnp.zeros((0,), jnp.int32)
  xt, labeled, valid = _sharded_pool(embeddings_t, labeled_mask, valid_mask,
                                     mesh)
  shard_fn = _shard_map(
      functools.partial(_kmeans_pp_shard, k=k, n=n), mesh=mesh,
      in_specs=(P(None, DATA_AXIS), P(DATA_AXIS), P()), out_specs=P())
  return shard_fn(xt, valid & ~labeled, uniforms.astype(jnp.float32))


_kmeans_pp_jit = jax.jit(_kmeans_pp_impl, static_argnames=('k', 'mesh'))


def kmeans_pp_seeding(embeddings: jax.Array,
                      labeled_mask: jax.Array,
                      k: int,
                      key: jax.Array,
                      *,
                      mesh: Mesh | None = None,
                      valid_mask: jax.Array | None = None) -> jax.Array:
  """BADGE's pick: k-means++ seeding over the unlabeled points' embeddings.

  See the section comment above for the algorithm and what it follows.
  Labeled points (and padding) are never picked and are not centers. The
  random draws come from `key` alone (kmeans_pp_uniforms), so the same key
  picks the same points on any number of devices.

  Memory is O(n) beyond the embeddings, as greedy k-centers': a running
  min-distance vector, and per draw the gathered one on each device. Each
  device keeps its rows and updates their distances; per pick only the
  winner's index (computed alike everywhere) and its row cross devices.

  Args:
    embeddings: [n, d] (gradient_embeddings' rows), finite where selectable;
      labeled rows are never read (they may be NaN). Worked on as the
      transpose, as greedy_k_centers does: pass a Fortran-ordered array.
    labeled_mask: [n] bool, True for points already labeled.
    k: number of points to pick (static: one compile per (n, d, k)).
    key: a JAX key for the draws.
    mesh: mesh with a `data` axis; default all devices.
    valid_mask: optional [n] bool, False for padding rows.

  Returns:
    int32 [k] distinct pool indices in selection order.
  """
  n = np.shape(embeddings)[0]
  if np.ndim(embeddings) != 2:
    raise ValueError(f'embeddings must be [n, d], got shape '
                     f'{np.shape(embeddings)}')
  _check_args(n, labeled_mask, valid_mask, k)
  if valid_mask is None:
    valid_mask = jnp.ones((n,), bool)
  return _kmeans_pp_jit(
      embeddings.T, jnp.asarray(labeled_mask), jnp.asarray(valid_mask),
      kmeans_pp_uniforms(key, k), k=k,
      mesh=sharding.make_mesh() if mesh is None else mesh)
