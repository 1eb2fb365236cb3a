"""End-to-end data-selection speed-up, read from finished runs' summary.json.

A run directory written by main.py holds summary.json with
`data_selection_seconds`: all selector training + scoring + ranking over all
rounds, as the loop itself timed it. Directories named GROUP_seedS (as
scripts/study_fashion_mnist_svp.sh writes them: proxy, baseline, random,
fewer_epochs) are grouped; the SVP speed-up of a group at seed S is

  speed-up = baseline_seedS time / GROUP_seedS time   (> 1: faster than the
             baseline, which uses the target itself as the selector),

reported next to its inverse, the time ratio GROUP / baseline.
"""

import glob
import json
import os
import re
import statistics
from typing import Any

_RUN_NAME = re.compile(r'^(?P<group>.+)_seed(?P<seed>\d+)$')
BASELINE = 'baseline'


def expand(patterns: list[str]) -> list[str]:
  """Run directories matching any glob in `patterns`, sorted, deduplicated."""
  found = set()
  for pattern in patterns:
    found.update(p for p in glob.glob(pattern) if os.path.isdir(p))
  return sorted(found)


def read_runs(run_dirs: list[str]) -> list[dict[str, Any]]:
  """One record per directory holding a summary.json (others are skipped)."""
  runs = []
  for run_dir in run_dirs:
    path = os.path.join(run_dir, 'summary.json')
    if not os.path.exists(path):
      continue
    with open(path) as f:
      summary = json.load(f)
    name = os.path.basename(os.path.normpath(run_dir))
    match = _RUN_NAME.match(name)
    runs.append({
        'run': name, 'dir': run_dir,
        'group': match['group'] if match else name,
        'seed': int(match['seed']) if match else None,
        'data_selection_seconds': summary.get('data_selection_seconds'),
        'complete': bool(summary.get('complete', False)),
        'selector': summary.get('selector'),
        'target': summary.get('target'),
        'method': summary.get('method'),
        'rounds': f"{summary.get('rounds_completed')}/"
                  f"{summary.get('rounds_total')}",
    })
  return runs


def speedups(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Per (group, seed) with a complete baseline of the same seed: the ratios.

  Only complete runs count (a partial run's time covers fewer rounds), and
  not random selection, which trains no selector.
  """
  complete = {(r['group'], r['seed']): r for r in runs
              if r['complete'] and r['data_selection_seconds'] is not None
              and r['method'] != 'random'}
  rows = []
  for (group, seed), run in sorted(complete.items(),
                                   key=lambda kv: (kv[0][0], kv[0][1] or 0)):
    base = complete.get((BASELINE, seed))
    if group == BASELINE or base is None:
      continue
    seconds = run['data_selection_seconds']
    base_seconds = base['data_selection_seconds']
    rows.append({
        'group': group, 'seed': seed, 'seconds': seconds,
        'baseline_seconds': base_seconds,
        'time_ratio': seconds / base_seconds if base_seconds else None,
        'speedup': base_seconds / seconds if seconds else None,
    })
  return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
  """Median and range of the speed-up per group over seeds."""
  by_group = {}
  for row in rows:
    if row['speedup'] is not None:
      by_group.setdefault(row['group'], []).append(row['speedup'])
  return {group: {'seeds': len(v), 'median_speedup': statistics.median(v),
                  'min_speedup': min(v), 'max_speedup': max(v)}
          for group, v in sorted(by_group.items())}
