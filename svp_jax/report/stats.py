"""The report's arithmetic: mean +- std over runs, correlations, top-k.

NumPy only: the agreement's top-k takes the rule of selection.select_top_k
(descending score, ties to the lowest pool index, never a labeled point)
without importing JAX; tests/test_report.py checks the two agree.
"""

from collections.abc import Sequence
import math

import numpy as np


def present(values: Sequence[float | None]) -> list[float]:
  """The values that are there (a run that has not reached a size: None)."""
  return [v for v in values if v is not None]


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
  """Mean and sample std (ddof=1); std None for fewer than two values."""
  if not values:
    return None, None
  std = float(np.std(values, ddof=1)) if len(values) > 1 else None
  return float(np.mean(values)), std


def mean(values: Sequence[float]) -> float | None:
  return mean_std(values)[0]


def average_ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of `x`; tied values share the average of their ranks."""
  x = np.asarray(x)
  order = np.argsort(x, kind='stable')
  ordered = x[order]
  starts_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
  group = np.cumsum(starts_group) - 1
  starts = np.flatnonzero(starts_group)
  counts = np.diff(np.append(starts, len(x)))
  ranks = np.empty(len(x), np.float64)
  ranks[order] = (starts + (counts + 1) / 2.0)[group]
  return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
  """Pearson correlation (float64); NaN when either input is constant."""
  a = np.asarray(a, np.float64) - np.mean(a, dtype=np.float64)
  b = np.asarray(b, np.float64) - np.mean(b, dtype=np.float64)
  denominator = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
  return float(np.dot(a, b)) / denominator if denominator > 0 else math.nan


def spearman(a: np.ndarray, b: np.ndarray) -> float:
  """Spearman rank correlation: Pearson of average ranks (ties handled)."""
  return pearson(average_ranks(a), average_ranks(b))


def top_k(scores: np.ndarray, labeled: np.ndarray, k: int) -> np.ndarray:
  """The k highest scores among unlabeled points, as selection.select_top_k.

  Args:
    scores: [n] scores, higher first; compared in float32 as the selection
      does (values that round alike tie), NaN as -inf, -0.0 as 0.0.
    labeled: [n] bool, True for points that may not be picked.
    k: how many to pick, at most the unlabeled count.

  Returns:
    int [k] pool indices in descending score order, ties to the lowest index.
  """
  scores = np.asarray(scores).astype(np.float32)
  scores = np.where(np.isnan(scores), -np.inf, scores)
  scores = np.where(scores == 0, np.float32(0), scores)
  index = np.arange(scores.shape[0])
  # np.lexsort's last key is the primary one: unlabeled first, then by
  # descending score, then by index.
  order = np.lexsort((index, -scores, np.asarray(labeled, bool)))
  return order[:k]


def top_k_overlap(proxy: np.ndarray, target: np.ndarray, labeled: np.ndarray,
                  k: int) -> float:
  """|top-k(proxy) & top-k(target)| / k among unlabeled points."""
  picks = [set(top_k(s, labeled, k).tolist()) for s in (proxy, target)]
  return len(picks[0] & picks[1]) / k
