"""Host-side greedy k-centers: an incremental NumPy version and the reference's.

Baselines for benchmarks/kcenters_scale.py (no flags, so tests import it):

* `numpy_init` + `numpy_picks`: a running min-distance vector, one BLAS
  matrix-vector product per pick; O(n) memory beyond the features. It uses
  |x|^2 - 2 x.c + |c|^2, which can lose precision for near points (the
  library uses the difference form); on benchmark pools the picks agree.
* `reference_init` + `reference_picks`: the memory pattern of the SVP
  reference's k_center_greedy (re-implemented, not copied): an (s + b) x |pool|
  float32 distance matrix whose first s rows hold the labeled points'
  distances, one more row filled per pick with SciPy's cdist on a gathered
  copy of the remaining pool.

All return (picked global indices, radii) with ties to the lowest index, as
svp_jax.selection.greedy_k_centers does.
"""

import math

import numpy as np

# NumPy initialisation: rows x centers per distance block (~32 MiB).
_NUMPY_BLOCK_ELEMENTS = 8 * 2**20


def make_pool(n: int, d: int, labeled_count: int, seed: int):
  """Seeded standard-normal [n, d] float32 features and a labeled mask."""
  rng = np.random.default_rng(seed)
  features = rng.standard_normal((n, d), dtype=np.float32)
  labeled = np.zeros(n, bool)
  labeled[rng.choice(n, labeled_count, replace=False)] = True
  return features, labeled


# ----------------------------------------------------------------------------
# NumPy implementations (host only; no JAX).


def numpy_init(x: np.ndarray, sq_norms: np.ndarray,
               labeled: np.ndarray) -> np.ndarray:
  """Min squared distance to the labeled points; -inf for labeled rows."""
  n = x.shape[0]
  centers = x[labeled]
  min_d = np.full(n, np.inf, np.float32)
  if len(centers):
    c_norms = sq_norms[labeled]
    cols = max(1, min(len(centers), 1024))
    rows = max(1, _NUMPY_BLOCK_ELEMENTS // cols)
    for c0 in range(0, len(centers), cols):
      c, cn = centers[c0:c0 + cols], c_norms[c0:c0 + cols]
      for r0 in range(0, n, rows):
        block = x[r0:r0 + rows] @ c.T
        block *= -2
        block += sq_norms[r0:r0 + rows, None]
        block += cn[None, :]
        np.minimum(min_d[r0:r0 + rows], block.min(axis=1),
                   out=min_d[r0:r0 + rows])
  min_d[labeled] = -np.inf
  return min_d


def numpy_picks(x: np.ndarray, sq_norms: np.ndarray, min_d: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
  """k greedy picks from `min_d` (updated in place); (indices, radii)."""
  picked = np.empty(k, np.int64)
  radii = np.empty(k, np.float32)
  d2 = np.empty_like(min_d)
  for t in range(k):
    j = int(np.argmax(min_d))  # First occurrence: ties to the lowest index.
    picked[t], radii[t] = j, math.sqrt(max(float(min_d[j]), 0.0))
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2: one BLAS matrix-vector product reads
    # the pool once (faster than x - c, which writes an n x d temporary).
    np.matmul(x, x[j], out=d2)
    d2 *= -2
    d2 += sq_norms
    d2 += sq_norms[j]
    np.minimum(min_d, d2, out=min_d)
    min_d[j] = -np.inf
  return picked, radii


def reference_init(x: np.ndarray, labeled: np.ndarray, budget: int):
  """The reference's set-up: the (s + b) x |pool| matrix, first s rows set."""
  from scipy.spatial import distance  # pylint: disable=g-import-not-at-top
  pool = np.flatnonzero(~labeled)
  labeled_index = np.flatnonzero(labeled)
  s = len(labeled_index)
  # np.zeros maps pages lazily: rows count towards RSS once written.
  dist = np.zeros((s + budget, len(pool)), np.float32)
  if s:
    dist[:s] = distance.cdist(x[labeled_index], x[pool], 'euclidean')
    mins = dist[:s].min(axis=0)
  else:
    mins = np.full(len(pool), np.inf, np.float32)
  return pool, dist, mins


def reference_picks(x: np.ndarray, pool: np.ndarray, dist: np.ndarray,
                    mins: np.ndarray, s: int,
                    k: int) -> tuple[np.ndarray, np.ndarray]:
  """k picks filling one matrix row per pick, as the reference does."""
  from scipy.spatial import distance  # pylint: disable=g-import-not-at-top
  active = np.ones(len(pool), bool)
  picked = np.empty(k, np.int64)
  radii = np.empty(k, np.float32)
  for t in range(k):
    j = int(np.argmax(mins))
    picked[t], radii[t] = pool[j], mins[j]
    mins[j] = -1
    active[j] = False
    row = s + t
    dist[row, active] = distance.cdist(x[pool[j]][None], x[pool[active]])[0]
    mins = np.minimum(mins, dist[row])
  return picked, radii
