"""Proxy-target agreement per round, from agreement/round_<r>.npz.

Each round of a run with `selection.compare_with_target`, the selector
(proxy) and a target trained on the same labels score the pool; over the
points unlabeled before the round this compares the two scores: Spearman,
Pearson and the overlap of their top k (k: the points selected that round).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from svp_jax import results
from svp_jax import run_files
from svp_jax.report import runs as runs_lib
from svp_jax.report import stats

AGREEMENT_COLUMNS = ('run', 'round', 'labeled', 'unlabeled', 'k', 'spearman',
                     'pearson', 'top_k_overlap')


def read_agreement(path: str) -> dict[str, Any]:
  """One agreement/round_<r>.npz, checked."""
  names = run_files.AGREEMENT_ARRAYS
  try:
    with np.load(path, allow_pickle=False) as saved:
      arrays = {a: saved[a] for a in names if a in saved.files}
  except (OSError, ValueError) as e:
    raise runs_lib.ReportError(
        f'{path} is not a readable .npz file: {e}') from e
  missing = [a for a in names if a not in arrays]
  if missing:
    raise runs_lib.ReportError(
        f'{path} is malformed: it lacks the arrays {missing}')
  n = arrays['labeled'].shape
  if len(n) != 1 or arrays['proxy'].shape != n or arrays['target'].shape != n:
    raise runs_lib.ReportError(
        f'{path} is malformed: proxy {arrays["proxy"].shape}, target '
        f'{arrays["target"].shape} and labeled {n} must be the same [n]')
  # Only the unlabeled points are scored (labeled ones may be NaN).
  unscored = arrays['labeled'].astype(bool)
  if not all(np.isfinite(arrays[a][~unscored]).all()
             for a in ('proxy', 'target')):
    raise runs_lib.ReportError(
        f'{path}: the scores of unlabeled points are not all finite')
  k = int(arrays['k'])
  unlabeled = int(n[0] - arrays['labeled'].astype(bool).sum())
  if not 1 <= k <= unlabeled:
    raise runs_lib.ReportError(
        f'{path}: k={k} but {unlabeled} points are unlabeled')
  return {'proxy': arrays['proxy'], 'target': arrays['target'],
          'labeled': arrays['labeled'].astype(bool), 'k': k}


def agreement_row(run_name: str, round_index: int,
                  saved: Mapping[str, Any]) -> dict[str, Any]:
  labeled, k = saved['labeled'], saved['k']
  proxy, target = saved['proxy'], saved['target']
  unlabeled = ~labeled
  return {
      'run': run_name, 'round': round_index, 'labeled': int(labeled.sum()),
      'unlabeled': int(unlabeled.sum()), 'k': k,
      'spearman': stats.spearman(proxy[unlabeled], target[unlabeled]),
      'pearson': stats.pearson(proxy[unlabeled], target[unlabeled]),
      'top_k_overlap': stats.top_k_overlap(proxy, target, labeled, k),
  }


def agreement_rows(run: runs_lib.Run) -> list[dict[str, Any]]:
  return [agreement_row(run.name, r, read_agreement(path))
          for r, path in run.agreement_files]


def agreement_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
  intro = (
      '# Proxy–target agreement\n\n'
      'Each round, the selector (proxy) and a target trained on the same '
      'labels score the pool (higher = more uncertain). Over the points '
      'unlabeled before the round: Spearman (average ranks for ties) and '
      'Pearson correlation of the two scores, and |top-k(proxy) ∩ '
      'top-k(target)| / k with k the points selected that round (ties to '
      'the lowest index, as the selection).\n\n')
  if not rows:
    return intro + ('No run has agreement/round_<r>.npz files; run with '
                    '`--config.selection.compare_with_target=True` to '
                    'record them.\n')
  return intro + results.markdown_table(rows, AGREEMENT_COLUMNS)
