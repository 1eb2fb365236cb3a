"""End-to-end data-selection speed-up of finished runs, as the report has it.

Reads each run directory's config.json and summary.json, groups the runs as
`python -m svp_jax.report` does (selector model + epochs + method, from
config.json; a method's baseline is the group whose selector trains as the
target does) and takes the speed-up from svp_jax.report.speedup, the one
definition: at each labeled-set size,

  speed-up = baseline mean seconds / group mean seconds   (> 1: faster than
             the baseline, which uses the target itself as the selector),

means over the runs that reached that size, seconds = selector training +
scoring + ranking + their compiling over the rounds up to it. Reported next to its inverse, the
time ratio group / baseline; the summary is each group's speed-up at the
largest size (all rounds). Random selection trains no selector: no speed-up.
"""

from collections.abc import Sequence
import glob
import os
from typing import Any

from absl import logging

from svp_jax import run_files
from svp_jax.report import active
from svp_jax.report import runs as runs_lib
from svp_jax.report import speedup


def expand(patterns: list[str]) -> list[str]:
  """Run directories matching any glob in `patterns`, sorted, deduplicated."""
  found = set()
  for pattern in patterns:
    found.update(p for p in glob.glob(pattern) if os.path.isdir(p))
  return sorted(found)


def read_runs(run_dirs: list[str]) -> list[runs_lib.TimedRun]:
  """The runs among `run_dirs`; one without config or summary is skipped."""
  runs = []
  for run_dir, name in zip(run_dirs, runs_lib.unique_names(run_dirs)):
    if not all(os.path.isfile(os.path.join(run_dir, f)) for f in
               (run_files.CONFIG_JSON, run_files.SUMMARY_JSON)):
      logging.info('selection: %s has no config.json and summary.json yet',
                   run_dir)
      continue
    runs.append(runs_lib.load_timed_run(run_dir, name))
  return runs


def run_rows(groups: Sequence[speedup.Group]) -> list[dict[str, Any]]:
  """One record per run: its group and data-selection seconds so far."""
  rows = []
  for g in groups:
    for r in g.runs:
      s = r.summary
      reached = max((row['labeled'] for row in s['rounds']), default=None)
      rows.append({
          'run': r.name, 'dir': r.path, 'group': g.label, 'seed': r.seed,
          'method': g.method, 'selector': s.get('selector'),
          'target': s.get('target'), 'complete': r.complete,
          'rounds': f'{s["rounds_completed"]}/{s["rounds_total"]}',
          'data_selection_seconds': (None if reached is None else
                                     speedup.selection_seconds_at(r, reached)),
      })
  return rows


def _reached(group: speedup.Group, size: int) -> int:
  """How many of the group's runs reached labeled-set size `size`."""
  return sum(speedup.selection_seconds_at(r, size) is not None
             for r in group.runs)


def speedups(groups: Sequence[speedup.Group]) -> list[dict[str, Any]]:
  """Per proxy group and labeled-set size with a baseline there: the ratios."""
  baselines = speedup.baselines_by_method(groups)
  rows = []
  for g in groups:
    base = baselines.get(g.method)
    if g.kind != speedup.PROXY or base is None:
      continue
    for size in speedup.sizes(g.runs):
      ratio = speedup.speedup(g, base, size)
      if ratio is None:
        continue
      rows.append({
          'group': g.label, 'method': g.method, 'size': size,
          'runs': _reached(g, size), 'baseline_runs': _reached(base, size),
          'seconds': speedup.mean_seconds(g, size),
          'baseline_seconds': speedup.mean_seconds(base, size),
          'time_ratio': 1.0 / ratio, 'speedup': ratio,
      })
  return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
  """Each group's speed-up at the largest size it has one (all rounds)."""
  last = {}
  for row in rows:  # Ascending sizes within a group.
    last[row['group']] = row
  return {group: {'method': row['method'], 'size': row['size'],
                  'speedup': row['speedup'], 'time_ratio': row['time_ratio']}
          for group, row in sorted(last.items())}


def measure(patterns: list[str]) -> dict[str, Any]:
  """The benchmark's JSON: runs, speed-ups by size, and the summary."""
  result = {'patterns': patterns, 'runs': [], 'speedups': [], 'summary': {}}
  try:
    runs = read_runs(expand([p for p in patterns if p]))
    if runs:
      active.check_comparable(runs)
    groups = active.group_runs(runs)
  except runs_lib.ReportError as e:  # After an hour of measuring: say why.
    logging.error('selection: %s', e)
    return {**result, 'error': str(e)}
  rows = speedups(groups)
  return {**result, 'runs': run_rows(groups), 'speedups': rows,
          'summary': summarize(rows)}
