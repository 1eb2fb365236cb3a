r"""Reports over runs: active learning (Table 1, curves, agreement), core-set.

  python -m svp_jax.report RUN_DIR [RUN_DIR ...] --out=DIR

Reads run directories written by `svp_jax.active` (config.json, summary.json,
proxy.csv, selection.csv, target.csv and, with
`selection.compare_with_target`, agreement/round_<r>.npz) and writes into DIR:

  table1.md           the paper's Table 1: per selection model and labeled-set
                      size, the data-selection speed-up over the baseline and
                      the target's top-1 error (mean +- std over runs)
  curves.png          target error against the labeled fraction of the pool
  time_breakdown.png  selector training / scoring / ranking / target training
                      seconds of every run
  agreement.md/.csv   proxy-target agreement per round (Spearman, Pearson,
                      top-k overlap over the unlabeled points)
  report.md           an index of the above and the runs read, each marked
                      complete or partial

Definitions (REFERENCE.md, "Active learning as the reference runs it"):

* A group ("selection model") is the selector's model and epochs plus the
  selection method; runs of one group differ only in `seed`. Random selection
  uses no selector, so all random runs form one group.
* The baseline of a method is the group whose selector trains exactly as the
  target does (experiment.same_training) with that method.
* Data-selection seconds at a labeled-set size: selector training + scoring +
  ranking, summed over the rounds up to the one that reaches that size
  (round 0's random pick included). Speed-up = the baseline's mean over runs
  / the group's mean over runs.
* Error = 1 - the target's (last-epoch) test accuracy, in percent; std is the
  sample standard deviation over runs (ddof=1).

All runs read together must share everything except `seed`, the selector,
`selection.method` and the settings in `_MAY_DIFFER`; otherwise ReportError
names the runs and the keys.

Core-set runs (`svp_jax.coreset`: config.json, summary.json), optionally with
full-data train runs of their target (`svp_jax.jobs.train_and_evaluate`:
config.json, summary.json, metrics.jsonl), get a report of their own:

  coreset.md/.csv     one row per selection method, and a 'full data' row
                      from the train runs: runs (seeds), subset size, target
                      test accuracy mean +- std (ddof=1) and error, mean
                      proxy training, scoring + ranking and target training
                      seconds
  report.md           an index and the runs read; a run whose target is not
                      trained yet for some method is marked partial

Core-set runs may differ only in `seed`, `coreset.methods` and the settings
in `_CORESET_MAY_DIFFER`; a train run must train the core-set target (model,
recipe, data) on the whole pool.
"""

from collections.abc import Mapping, Sequence
import csv
import dataclasses
import functools
import json
import math
import os
import re
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
from matplotlib.backends import backend_agg
from matplotlib import figure
import ml_collections
import numpy as np

from svp_jax import experiment
from svp_jax import methods
from svp_jax import results
from svp_jax import run_files
from svp_jax import selection

# Config keys (dotted prefixes) that may differ between the runs of one
# report. `selector` and `selection.method` define the groups; the rest change
# where data is read from or how a model is evaluated, not what is trained.
_MAY_DIFFER = ('seed', 'selector', 'selection.method',
               'selection.compare_with_target', 'data.data_dir',
               'data.manual_dir', 'data.download', 'data.in_memory',
               'target.train.eval_batch_size', 'target.train.eval_every')
# Selector settings that may differ within a group (evaluation only).
_SELECTOR_MAY_DIFFER = tuple(f'selector.train.{k}'
                             for k in ('eval_batch_size', 'eval_every'))

RUN_FILES = ('config.json', 'summary.json', 'proxy.csv', 'selection.csv',
             'target.csv')
_ROUND_KEYS = ('round', 'labeled', 'selector_train_seconds',
               'scoring_seconds', 'ranking_seconds', 'target_train_seconds')
_SUMMARY_KEYS = ('pool_size', 'complete', 'rounds_completed', 'rounds_total',
                 'rounds')
_AGREEMENT_ARRAYS = ('proxy', 'target', 'labeled', 'k')
AGREEMENT_COLUMNS = ('run', 'round', 'labeled', 'unlabeled', 'k', 'spearman',
                     'pearson', 'top_k_overlap')
TIME_PARTS = ('selector_train_seconds', 'scoring_seconds', 'ranking_seconds',
              'target_train_seconds')

BASELINE, PROXY, RANDOM = 'baseline', 'proxy', 'random'
_WITHIN_TOLERANCE = 1e-9  # Percent; absorbs float noise at the 1-std bound.


class ReportError(ValueError):
  """A run directory cannot be read, or runs cannot be reported together."""


@dataclasses.dataclass(frozen=True)
class Run:
  """One run directory, as read."""

  path: str
  name: str  # Unique among the runs of a report.
  config: dict[str, Any]
  summary: dict[str, Any]
  target_accuracy: dict[int, float]  # Labeled-set size -> test accuracy.
  agreement_files: tuple[tuple[int, str], ...]  # (round, path), by round.

  @property
  def seed(self) -> int:
    return self.config['seed']

  @property
  def method(self) -> str:
    return self.config['selection']['method']

  @property
  def complete(self) -> bool:
    return bool(self.summary['complete'])


@dataclasses.dataclass(frozen=True)
class Group:
  """Runs of one selection model (selector + epochs + method)."""

  label: str
  method: str
  kind: str  # BASELINE, PROXY or RANDOM.
  runs: tuple[Run, ...]

  @property
  def partial_runs(self) -> int:
    return sum(not r.complete for r in self.runs)


@dataclasses.dataclass(frozen=True)
class Cell:
  """One group at one labeled-set size."""

  error_mean: float | None  # Percent; None when no run trained a target.
  error_std: float | None  # None with fewer than two runs.
  n: int  # Runs with a target error at this size.
  seconds: float | None  # Mean data-selection seconds up to this size.
  speedup: float | None  # None: no baseline, random selection, no times.
  within: bool | None  # Error within 1 std of the baseline's; None: n/a.


# ----------------------------------------------------------------------------
# Reading runs.


def _require_file(run_dir: str, name: str) -> str:
  path = os.path.join(run_dir, name)
  if not os.path.isfile(path):
    raise ReportError(f'run {run_dir!r} has no {name} (expected {path}); '
                      f'a run writes it after its first round')
  return path


def _read_json(path: str) -> Any:
  try:
    return results.read_json(path)
  except json.JSONDecodeError as e:
    raise ReportError(f'{path} is not valid JSON: {e}') from e


def read_csv_columns(path: str, columns: Sequence[str],
                     numeric: Sequence[str]) -> list[dict[str, Any]]:
  """Rows of a run CSV; `columns` must be present, `numeric` must parse."""
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
      raise ReportError(f'{path} is malformed: header {header} lacks the '
                        f'columns {missing}')
    rows = []
    for line, row in enumerate(reader, start=2):
      if None in row or None in row.values():
        raise ReportError(f'{path} line {line} is malformed: expected '
                          f'{len(header)} fields')
      for c in numeric:
        try:
          value = float(row[c])
        except ValueError:
          value = math.nan
        if not math.isfinite(value):
          raise ReportError(f'{path} line {line} is malformed: {c}='
                            f'{row[c]!r} is not a (finite) number')
        row[c] = value
      rows.append(row)
  return rows


def read_target_accuracy(path: str) -> dict[int, float]:
  """target.csv as {labeled-set size: test accuracy in [0, 1]}."""
  rows = read_csv_columns(path, run_files.MODEL_COLUMNS,
                          ('nexamples', 'test_accuracy', 'train_time'))
  accuracy = {}
  for line, row in enumerate(rows, start=2):
    size, value = row['nexamples'], row['test_accuracy']
    if size != int(size) or size < 1:
      raise ReportError(f'{path} line {line} is malformed: nexamples={size} '
                        f'is not a labeled-set size')
    if not 0 <= value <= 1:
      raise ReportError(
          f'{path} line {line}: test_accuracy={value} is not a fraction in '
          f'[0, 1] (the PyTorch reference writes percent; svp_jax fractions)')
    if int(size) in accuracy:
      raise ReportError(f'{path} line {line}: a second row for nexamples='
                        f'{int(size)}')
    accuracy[int(size)] = value
  return accuracy


def check_summary(path: str, summary: Any):
  """Raises ReportError unless `summary` has what the report reads."""
  if not isinstance(summary, dict):
    raise ReportError(f'{path} is malformed: expected a JSON object')
  missing = [k for k in _SUMMARY_KEYS if k not in summary]
  if missing:
    raise ReportError(f'{path} is malformed: it lacks {missing}')
  for i, row in enumerate(summary['rounds']):
    for key in _ROUND_KEYS:
      value = row.get(key) if isinstance(row, dict) else None
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReportError(f'{path} is malformed: rounds[{i}].{key} is '
                          f'{value!r}, not a number')


def _agreement_files(run_dir: str) -> tuple[tuple[int, str], ...]:
  folder = os.path.join(run_dir, 'agreement')
  if not os.path.isdir(folder):
    return ()
  found = []
  for name in os.listdir(folder):
    match = re.fullmatch(r'round_(\d+)\.npz', name)
    if match:
      found.append((int(match.group(1)), os.path.join(folder, name)))
  return tuple(sorted(found))


def load_run(run_dir: str, name: str | None = None) -> Run:
  """Reads one run directory; ReportError names what is missing or wrong."""
  if not os.path.isdir(run_dir):
    raise ReportError(f'run directory {run_dir!r} does not exist')
  paths = {f: _require_file(run_dir, f) for f in RUN_FILES}
  config = _read_json(paths['config.json'])
  if not isinstance(config, dict) or config.get('mode') != 'active':
    mode = config.get('mode') if isinstance(config, dict) else None
    raise ReportError(f'run {run_dir!r} is not an active-learning run '
                      f'(config.json mode={mode!r})')
  summary = _read_json(paths['summary.json'])
  check_summary(paths['summary.json'], summary)
  read_csv_columns(paths['proxy.csv'], run_files.MODEL_COLUMNS, ('nexamples',))
  read_csv_columns(paths['selection.csv'], run_files.SELECTION_COLUMNS,
                   ('nexamples', 'inference_time', 'ranking_time'))
  return Run(path=os.path.normpath(run_dir),
             name=name or os.path.basename(os.path.normpath(run_dir)),
             config=config, summary=summary,
             target_accuracy=read_target_accuracy(paths['target.csv']),
             agreement_files=_agreement_files(run_dir))


def unique_names(paths: Sequence[str]) -> list[str]:
  """Short run names: the directory name, or the whole path if ambiguous."""
  paths = [os.path.normpath(p) for p in paths]
  base = [os.path.basename(p) for p in paths]
  return [b if base.count(b) == 1 else p for b, p in zip(base, paths)]


def load_runs(run_dirs: Sequence[str]) -> list[Run]:
  if not run_dirs:
    raise ReportError('no run directories given')
  return [load_run(d, n) for d, n in zip(run_dirs, unique_names(run_dirs))]


# ----------------------------------------------------------------------------
# Which runs belong together.


_ABSENT = '<absent>'


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
  value = config
  for part in dotted.split('.'):
    if not isinstance(value, Mapping) or part not in value:
      return _ABSENT
    value = value[part]
  return value


def _may_differ(key: str, prefixes: Sequence[str]) -> bool:
  return any(key == p or key.startswith(p + '.') for p in prefixes)


def differing_keys(runs: Sequence[Run],
                   allowed: Sequence[str] = ()) -> dict[str, str]:
  """Config keys not in `allowed` where the runs differ -> who has what."""
  keys = sorted({k for r in runs[1:]
                 for k in results.differing_keys(runs[0].config, r.config)
                 if not _may_differ(k, allowed)})
  described = {}
  for key in keys:
    holders: dict[str, list[str]] = {}
    for r in runs:
      value = _lookup(r.config, key)
      shown = value if value is _ABSENT else json.dumps(value)
      holders.setdefault(shown, []).append(r.name)
    described[key] = '; '.join(f'{value} in {", ".join(names)}'
                               for value, names in holders.items())
  return described


def _describe(differences: Mapping[str, str]) -> str:
  return '; '.join(f'{k}: {v}' for k, v in differences.items())


def check_comparable(runs: Sequence[Run]):
  """Raises ReportError if the runs differ beyond seed, selector and method."""
  differences = differing_keys(runs, _MAY_DIFFER)
  if differences:
    raise ReportError(
        'these runs cannot be reported together: they may differ only in '
        f'{", ".join(_MAY_DIFFER)}, but differ in {_describe(differences)}')
  pools = {r.summary['pool_size'] for r in runs}
  if len(pools) > 1:
    raise ReportError(f'the runs have different pools: {sorted(pools)} '
                      f'(summary.json pool_size)')


def selector_epochs(config: Mapping[str, Any]) -> int:
  return sum(int(epochs) for epochs, _ in
             config['selector']['train']['lr_schedule'])


def is_baseline(config: Mapping[str, Any]) -> bool:
  """Whether the target selects for itself (active's `same_models`)."""
  sections = [ml_collections.ConfigDict(config[role])
              for role in ('selector', 'target')]
  return (_trains_selector(config['selection']['method'])
          and experiment.same_training(*sections))


def _trains_selector(method: str) -> bool:
  return methods.get(method).trains_selector


def group_key(run: Run) -> tuple[str, int, str]:
  if not _trains_selector(run.method):  # One group: no selector is trained.
    return ('', 0, run.method)
  return (run.config['selector']['model']['name'],
          selector_epochs(run.config), run.method)


def _group_label(run: Run, kind: str) -> str:
  if kind == RANDOM:
    return group_key(run)[2]
  name, epochs, _ = group_key(run)
  label = f'{name} ({epochs} ep)'
  return f'{label}, target selects (baseline)' if kind == BASELINE else label


def _check_group(runs: Sequence[Run]):
  """Runs of one group must train the same selector and have distinct seeds."""
  if _trains_selector(runs[0].method):  # Else no selector to compare.
    differences = differing_keys(
        runs, [p for p in _MAY_DIFFER if p != 'selector']
        + list(_SELECTOR_MAY_DIFFER))
    if differences:
      raise ReportError(
          f'runs {", ".join(r.name for r in runs)} have the same selector '
          f'model, epochs and method but train the selector differently: '
          f'{_describe(differences)}')
  seeds: dict[int, str] = {}
  for r in runs:
    if r.seed in seeds:
      raise ReportError(f'runs {seeds[r.seed]} and {r.name} are the same '
                        f'experiment (seed {r.seed}): pass each run once')
    seeds[r.seed] = r.name


_KIND_ORDER = {BASELINE: 0, PROXY: 1, RANDOM: 2}


def group_runs(runs: Sequence[Run]) -> list[Group]:
  """Baselines first, then proxies, then random; each sorted by method."""
  by_key: dict[tuple[str, int, str], list[Run]] = {}
  for r in runs:
    by_key.setdefault(group_key(r), []).append(r)
  groups = []
  for key, members in by_key.items():
    _check_group(members)
    first = members[0]
    kind = (RANDOM if not _trains_selector(first.method) else
            BASELINE if is_baseline(first.config) else PROXY)
    groups.append(Group(_group_label(first, kind), first.method, kind,
                        tuple(sorted(members, key=lambda r: r.seed))))
  return sorted(groups, key=lambda g: (_KIND_ORDER[g.kind], g.method,
                                       g.label))


# ----------------------------------------------------------------------------
# Numbers.


def budgets(runs: Sequence[Run]) -> list[int]:
  """Every labeled-set size at which some run trained the target."""
  return sorted({size for r in runs for size in r.target_accuracy})


def selection_seconds_at(run: Run, size: int) -> float | None:
  """Data-selection seconds up to the round reaching `size` (None: not yet)."""
  total = 0.0
  for row in sorted(run.summary['rounds'], key=lambda row: row['round']):
    total += (row['selector_train_seconds'] + row['scoring_seconds']
              + row['ranking_seconds'])
    if row['labeled'] == size:
      return total
  return None


def error_at(run: Run, size: int) -> float | None:
  """Target top-1 error in percent at `size` (None: no target there)."""
  accuracy = run.target_accuracy.get(size)
  return None if accuracy is None else 100.0 * (1.0 - accuracy)


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
  """Mean and sample std (ddof=1); std None for fewer than two values."""
  if not values:
    return None, None
  std = float(np.std(values, ddof=1)) if len(values) > 1 else None
  return float(np.mean(values)), std


def _present(values: Sequence[float | None]) -> list[float]:
  return [v for v in values if v is not None]


def baselines_by_method(groups: Sequence[Group]) -> dict[str, Group]:
  return {g.method: g for g in groups if g.kind == BASELINE}


def cell(group: Group, baseline: Group | None, size: int) -> Cell:
  """The Table 1 entry of `group` at labeled-set size `size`."""
  errors = _present([error_at(r, size) for r in group.runs])
  error_mean, error_std = mean_std(errors)
  seconds, _ = mean_std(
      _present([selection_seconds_at(r, size) for r in group.runs]))
  speedup = within = None
  if baseline is not None and group.kind != RANDOM:
    base_seconds, _ = mean_std(
        _present([selection_seconds_at(r, size) for r in baseline.runs]))
    if base_seconds is not None and seconds:
      speedup = base_seconds / seconds
    base_mean, base_std = mean_std(
        _present([error_at(r, size) for r in baseline.runs]))
    if (group.kind == PROXY and error_mean is not None
        and base_mean is not None):
      within = error_mean <= base_mean + (base_std or 0.0) + _WITHIN_TOLERANCE
  return Cell(error_mean, error_std, len(errors), seconds, speedup, within)


def table_cells(groups: Sequence[Group],
                sizes: Sequence[int]) -> list[tuple[Group, list[Cell]]]:
  baselines = baselines_by_method(groups)
  return [(g, [cell(g, baselines.get(g.method), s) for s in sizes])
          for g in groups]


def time_breakdown(run: Run) -> dict[str, float]:
  """Seconds of each phase, summed over the run's completed rounds."""
  return {part: float(sum(row[part] for row in run.summary['rounds']))
          for part in TIME_PARTS}


# ----------------------------------------------------------------------------
# Agreement between proxy and target scores.


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


def top_k_overlap(proxy: np.ndarray, target: np.ndarray, labeled: np.ndarray,
                  k: int) -> float:
  """|top-k(proxy) & top-k(target)| / k among unlabeled points."""
  picks = [set(np.asarray(selection.select_top_k(s, labeled, k)).tolist())
           for s in (proxy, target)]
  return len(picks[0] & picks[1]) / k


def read_agreement(path: str) -> dict[str, Any]:
  """One agreement/round_<r>.npz, checked."""
  try:
    with np.load(path, allow_pickle=False) as saved:
      arrays = {a: saved[a] for a in _AGREEMENT_ARRAYS if a in saved.files}
  except (OSError, ValueError) as e:
    raise ReportError(f'{path} is not a readable .npz file: {e}') from e
  missing = [a for a in _AGREEMENT_ARRAYS if a not in arrays]
  if missing:
    raise ReportError(f'{path} is malformed: it lacks the arrays {missing}')
  n = arrays['labeled'].shape
  if len(n) != 1 or arrays['proxy'].shape != n or arrays['target'].shape != n:
    raise ReportError(
        f'{path} is malformed: proxy {arrays["proxy"].shape}, target '
        f'{arrays["target"].shape} and labeled {n} must be the same [n]')
  if not all(np.isfinite(arrays[a]).all() for a in ('proxy', 'target')):
    raise ReportError(f'{path}: the scores are not all finite')
  k = int(arrays['k'])
  unlabeled = int(n[0] - arrays['labeled'].astype(bool).sum())
  if not 1 <= k <= unlabeled:
    raise ReportError(f'{path}: k={k} but {unlabeled} points are unlabeled')
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
      'spearman': spearman(proxy[unlabeled], target[unlabeled]),
      'pearson': pearson(proxy[unlabeled], target[unlabeled]),
      'top_k_overlap': top_k_overlap(proxy, target, labeled, k),
  }


def agreement_rows(run: Run) -> list[dict[str, Any]]:
  return [agreement_row(run.name, r, read_agreement(path))
          for r, path in run.agreement_files]


# ----------------------------------------------------------------------------
# Markdown.


def _count(n: int, noun: str) -> str:
  return f'{n} {noun}' + ('' if n == 1 else 's')


def _title(runs: Sequence[Run]) -> str:
  config = runs[0].config
  return (f'{config["data"]["name"]}, target '
          f'{config["target"]["model"]["name"]}')


def _percent(size: int, pool: int) -> str:
  return f'{100.0 * size / pool:.3g}%'


def format_cell(c: Cell, group_size: int) -> str:
  """'10.0× · 21.67 ± 1.15 ✓': speed-up · error (%) mean ± std, mark."""
  speedup = '—' if c.speedup is None else f'{c.speedup:.1f}×'
  if c.error_mean is None:
    error = 'no target'
  else:
    error = f'{c.error_mean:.2f}'
    if c.error_std is not None:
      error += f' ± {c.error_std:.2f}'
    if c.n < group_size:
      error += f' (n={c.n})'
  return f'{speedup} · {error}' + (' ✓' if c.within else '')


def _runs_label(group: Group) -> str:
  partial = group.partial_runs
  return (f'{len(group.runs)} ({partial} partial) †' if partial
          else str(len(group.runs)))


def table1_markdown(groups: Sequence[Group], sizes: Sequence[int],
                    pool: int) -> str:
  """The paper's Table 1 for these runs, plus mean selection seconds."""
  header = ['selection model', 'method', 'runs'] + [
      f'{s:,} ({_percent(s, pool)})' for s in sizes]
  entries = table_cells(groups, sizes)
  table = [dict(zip(header, [g.label, g.method, _runs_label(g)]
                    + [format_cell(c, len(g.runs)) for c in cells]))
           for g, cells in entries]
  seconds = [dict(zip(header, [g.label, g.method, _runs_label(g)] + [
      '—' if c.seconds is None else f'{c.seconds:.1f}' for c in cells]))
             for g, cells in entries]
  notes = []
  methods = sorted({g.method for g in groups if g.kind == PROXY})
  missing = [m for m in methods if m not in baselines_by_method(groups)]
  if not baselines_by_method(groups):
    notes.append('No baseline run among these (selector = target, method '
                 'not random): speed-ups need one, so only errors are shown.')
  elif missing:
    notes.append(f'No baseline run for {", ".join(missing)}: those rows '
                 f'show errors only.')
  if any(g.partial_runs for g in groups):
    notes.append('†: includes partial runs (see report.md); a cell averages '
                 'the runs that reached its size (n= when not all did).')
  return (
      f'# Table 1: active learning on {_title(groups[0].runs)}\n\n'
      'Columns: labeled-set size (share of the pool of '
      f'{pool:,}). Cell: data-selection speed-up over the baseline of the '
      'same method · target top-1 error in % (mean ± sample std over runs). '
      '✓: mean error within 1 std of the baseline\'s mean error, or lower. '
      'Random selection trains no selector: no speed-up (—).\n\n'
      + results.markdown_table(table, header) + '\n'
      + ''.join(f'{n}\n\n' for n in notes)
      + '## Data-selection seconds (mean over runs)\n\n'
      'Selector training + scoring + ranking, summed over the rounds up to '
      'each size (round 0\'s random pick included). Speed-up = baseline '
      'seconds / row seconds.\n\n'
      + results.markdown_table(seconds, header))


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


_BASELINE_TIME_NOTE = (
    '\nA baseline run trains one model per round: the target trained at the '
    'end of a round is the next round\'s selector, so that training counts '
    'both as target training and as the next round\'s selector training '
    '(the latter as data-selection time, the paper\'s definition).\n')


def report_markdown(runs: Sequence[Run], groups: Sequence[Group],
                    has_agreement: bool) -> str:
  group_of = {r.name: g for g in groups for r in g.runs}
  rows = []
  for r in runs:
    s = r.summary
    status = ('complete' if r.complete else
              f'**PARTIAL** ({s["rounds_completed"]}/{s["rounds_total"]} '
              f'rounds)')
    rows.append({'run': r.name, 'directory': f'`{r.path}`',
                 'selection model': group_of[r.name].label,
                 'method': r.method, 'seed': r.seed,
                 'rounds': f'{s["rounds_completed"]}/{s["rounds_total"]}',
                 'status': status})
  partial = [r.name for r in runs if not r.complete]
  return (
      '# Active-learning report\n\n'
      f'{_count(len(runs), "run")}: {_title(runs)}, pool '
      f'{runs[0].summary["pool_size"]:,}'
      + (f'; **partial**: {", ".join(partial)}' if partial else
         '; all complete') + '.\n\n'
      '- [Table 1](table1.md): data-selection speed-up and target error per '
      'selection model and labeled-set size\n'
      '- [Learning curves](curves.png): target error against the labeled '
      'fraction of the pool (mean ± std over runs)\n'
      '- [Time breakdown](time_breakdown.png): selector training, scoring, '
      'ranking and target training seconds per run\n'
      f'- [Proxy–target agreement](agreement.md)'
      + ('' if has_agreement else ' (no run recorded any)') + '\n\n'
      '## Runs\n\n'
      + results.markdown_table(rows, ('run', 'directory', 'selection model',
                                      'method', 'seed', 'rounds', 'status'))
      + '\n![learning curves](curves.png)\n\n'
      '![time breakdown](time_breakdown.png)\n'
      + (_BASELINE_TIME_NOTE if any(g.kind == BASELINE for g in groups)
         else ''))


# ----------------------------------------------------------------------------
# Figures (Agg canvas, no pyplot: no display, no global state).


def _new_figure(width: float, height: float) -> figure.Figure:
  fig = figure.Figure(figsize=(width, height), layout='constrained')
  backend_agg.FigureCanvasAgg(fig)
  return fig


def plot_curves(groups: Sequence[Group], pool: int, path: str):
  """Target error (%) against labeled fraction, mean ± std band per group."""
  fig = _new_figure(7, 4.5)
  ax = fig.add_subplot()
  for g in groups:
    points = []
    for size in budgets(g.runs):
      mean, std = mean_std(_present([error_at(r, size) for r in g.runs]))
      points.append((100.0 * size / pool, mean, std or 0.0))
    if not points:
      continue
    x, mean, std = (np.array(v) for v in zip(*points))
    style = {BASELINE: '--', PROXY: '-', RANDOM: ':'}[g.kind]
    line, = ax.plot(x, mean, style, marker='o',
                    label=f'{g.label}, {g.method} '
                    f'({_count(len(g.runs), "run")})')
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(),
                    alpha=0.2, linewidth=0)
  ax.set_title(_title(groups[0].runs))
  ax.set_xlabel('labeled fraction of the pool (%)')
  ax.set_ylabel('target top-1 error (%)')
  ax.grid(alpha=0.3)
  if ax.lines:
    ax.legend(fontsize='small')
  else:
    ax.text(0.5, 0.5, 'no target was trained', ha='center',
            transform=ax.transAxes)
  fig.savefig(path, dpi=100)


def plot_time_breakdown(runs: Sequence[Run], path: str):
  """Stacked bars: seconds per phase, one bar per run."""
  fig = _new_figure(max(6.0, 0.7 * len(runs) + 3), 4.5)
  ax = fig.add_subplot()
  x = np.arange(len(runs))
  bottom = np.zeros(len(runs))
  for part in TIME_PARTS:
    heights = np.array([time_breakdown(r)[part] for r in runs])
    ax.bar(x, heights, width=0.6, bottom=bottom,
           label=part.removesuffix('_seconds').replace('_', ' '))
    bottom += heights
  ax.set_xticks(x, [r.name + ('' if r.complete else ' (partial)')
                    for r in runs], rotation=30, ha='right', fontsize='small')
  ax.set_xlim(-1, len(runs))
  ax.set_title(_title(runs))
  ax.set_ylabel('seconds (all completed rounds)')
  ax.legend(fontsize='small')
  fig.savefig(path, dpi=100)


# ----------------------------------------------------------------------------
# Core-set runs (and full-data train runs to compare with).

# Config keys that may differ between the core-set runs of one report: the
# seed, which methods a run compared, and where data is read from or how a
# model is evaluated, which does not change what is trained.
_CORESET_MAY_DIFFER = (
    'seed', 'coreset.methods', 'data.data_dir', 'data.manual_dir',
    'data.download', 'data.in_memory', 'selector.train.eval_batch_size',
    'selector.train.eval_every', 'target.train.eval_batch_size',
    'target.train.eval_every')
# The same for a full-data train run against the core-set target (the
# `data`, `model` and `train` sections; see _target_view).
_TARGET_MAY_DIFFER = ('data.data_dir', 'data.manual_dir', 'data.download',
                      'data.in_memory', 'train.eval_batch_size',
                      'train.eval_every')
_CORESET_SECONDS = ('proxy_train_seconds', 'scoring_seconds',
                    'ranking_seconds')
FULL_DATA = 'full data'
CORESET_CSV_COLUMNS = (
    'method', 'runs', 'seeds', 'partial_runs', 'subset_size',
    'target_accuracy_mean', 'target_accuracy_std', 'target_error_percent',
    'proxy_train_seconds', 'scoring_ranking_seconds', 'target_train_seconds')
CORESET_MD_COLUMNS = ('method', 'runs (seeds)', 'subset size',
                      'target test accuracy (%)', 'target error (%)',
                      'proxy train s', 'scoring + ranking s',
                      'target train s')


@dataclasses.dataclass(frozen=True)
class CoresetRun:
  """One core-set run directory, as read."""

  path: str
  name: str
  config: dict[str, Any]
  rows: dict[str, dict[str, Any]]  # Method -> its summary.json row.

  @property
  def seed(self) -> int:
    return self.config['seed']

  @property
  def untrained(self) -> list[str]:
    """Methods whose target has not been trained (yet)."""
    return [m for m, row in self.rows.items()
            if row['target_test_accuracy'] is None]


@dataclasses.dataclass(frozen=True)
class TrainRun:
  """A full-data run of `svp_jax.jobs.train_and_evaluate`, as read."""

  path: str
  name: str
  config: dict[str, Any]
  test_accuracy: float  # After the last epoch.
  train_seconds: float  # Training epochs only, as a target's train_time.
  train_examples: int

  @property
  def seed(self) -> int:
    return self.config['seed']


@dataclasses.dataclass(frozen=True)
class _Named:
  """A name and a config: what differing_keys compares."""

  name: str
  config: dict[str, Any]


def read_config(run_dir: str) -> dict[str, Any]:
  """A run directory's config.json (any mode)."""
  if not os.path.isdir(run_dir):
    raise ReportError(f'run directory {run_dir!r} does not exist')
  config = _read_json(_require_file(run_dir, 'config.json'))
  if not isinstance(config, dict):
    raise ReportError(f'{run_dir}/config.json is malformed: expected a JSON '
                      'object')
  return config


def _number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def check_coreset_row(path: str, i: int, row: Any):
  """Raises ReportError unless a summary.json row has what the report reads."""
  if not isinstance(row, dict):
    raise ReportError(f'{path} is malformed: methods[{i}] is not an object')
  missing = [k for k in run_files.CORESET_SUMMARY_COLUMNS if k not in row]
  if missing:
    raise ReportError(f'{path} is malformed: methods[{i}] lacks {missing}')
  for key in _CORESET_SECONDS + ('pool_size', 'subset_size'):
    if not _number(row[key]):
      raise ReportError(f'{path} is malformed: methods[{i}].{key} is '
                        f'{row[key]!r}, not a number')
  accuracy = row['target_test_accuracy']
  if accuracy is not None and not (_number(accuracy) and 0 <= accuracy <= 1):
    raise ReportError(f'{path}: methods[{i}].target_test_accuracy='
                      f'{accuracy!r} is not a fraction in [0, 1]')
  if accuracy is not None and not _number(row['target_train_seconds']):
    raise ReportError(f'{path} is malformed: methods[{i}].'
                      f'target_train_seconds is {row["target_train_seconds"]!r}'
                      ', not a number')


def load_coreset_run(run_dir: str, name: str) -> CoresetRun:
  """Reads a core-set run's config.json and summary.json."""
  config = read_config(run_dir)
  if config.get('mode') != 'coreset':
    raise ReportError(f'run {run_dir!r} is not a core-set run (config.json '
                      f'mode={config.get("mode")!r})')
  path = os.path.join(run_dir, 'summary.json')
  if not os.path.isfile(path):
    raise ReportError(f'run {run_dir!r} has no summary.json (expected '
                      f'{path}); a core-set run writes it once every '
                      'method has selected')
  summary = _read_json(path)
  if not isinstance(summary, dict) or not isinstance(
      summary.get('methods'), list):
    raise ReportError(f'{path} is malformed: expected an object with a '
                      'list "methods"')
  for i, row in enumerate(summary['methods']):
    check_coreset_row(path, i, row)
  rows = {row['method']: row for row in summary['methods']}
  if list(rows) != list(config['coreset']['methods']):
    raise ReportError(f'{path} has rows for {list(rows)}, but the run '
                      f'compares {config["coreset"]["methods"]}')
  return CoresetRun(os.path.normpath(run_dir), name, config, rows)


def load_train_run(run_dir: str, name: str) -> TrainRun:
  """Reads a finished full-data train run (summary.json, metrics.jsonl)."""
  config = read_config(run_dir)
  path = _require_file(run_dir, 'summary.json')
  summary = _read_json(path)
  for key in ('final_test_accuracy', 'train_examples'):
    if not isinstance(summary, dict) or not _number(summary.get(key)):
      raise ReportError(f'{path} is malformed: it lacks a number {key}')
  metrics = _require_file(run_dir, 'metrics.jsonl')
  seconds = 0.0
  with open(metrics) as f:
    for line_number, line in enumerate(f, start=1):
      try:
        epoch_seconds = json.loads(line)['seconds']
      except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ReportError(f'{metrics} line {line_number} is malformed: '
                          f'expected an epoch record with "seconds"') from e
      seconds += float(epoch_seconds)
  return TrainRun(os.path.normpath(run_dir), name, config,
                  float(summary['final_test_accuracy']), seconds,
                  int(summary['train_examples']))


def load_coreset_report_runs(run_dirs: Sequence[str]
                             ) -> tuple[list[CoresetRun], list[TrainRun]]:
  """Core-set runs and full-data train runs; refuses any other mode."""
  coreset_runs, train_runs = [], []
  for run_dir, name in zip(run_dirs, unique_names(run_dirs)):
    mode = read_config(run_dir).get('mode')
    if mode == 'coreset':
      coreset_runs.append(load_coreset_run(run_dir, name))
    elif mode == 'train':
      train_runs.append(load_train_run(run_dir, name))
    else:
      raise ReportError(
          f'run {name} has mode={mode!r}: a core-set report reads core-set '
          'runs and full-data train runs only; report active-learning runs '
          'separately')
  if not coreset_runs:
    raise ReportError('no core-set run among the run directories')
  return coreset_runs, train_runs


def _target_view(run: CoresetRun | TrainRun) -> _Named:
  """What trains the target: data, model and recipe, in the train layout."""
  config = run.config
  if isinstance(run, CoresetRun):
    config = {'data': config['data'], 'model': config['target']['model'],
              'train': config['target']['train']}
  else:
    config = {k: config.get(k) for k in ('data', 'model', 'train')}
  return _Named(run.name, config)


def _check_distinct_seeds(runs: Sequence[Any], what: str):
  seeds: dict[int, str] = {}
  for r in runs:
    if r.seed in seeds:
      raise ReportError(f'runs {seeds[r.seed]} and {r.name} are the same '
                        f'experiment ({what}, seed {r.seed}): pass each run '
                        'once')
    seeds[r.seed] = r.name


def check_coreset_comparable(coreset_runs: Sequence[CoresetRun],
                             train_runs: Sequence[TrainRun]):
  """Raises ReportError if the runs do not make one comparison."""
  differences = differing_keys(coreset_runs, _CORESET_MAY_DIFFER)
  if differences:
    raise ReportError(
        'these core-set runs cannot be reported together: they may differ '
        f'only in {", ".join(_CORESET_MAY_DIFFER)}, but differ in '
        f'{_describe(differences)}')
  sizes: dict[tuple[int, int], list[str]] = {}
  for r in coreset_runs:
    for row in r.rows.values():
      sizes.setdefault((row['pool_size'], row['subset_size']), []).append(
          r.name)
  if len(sizes) > 1:
    raise ReportError(
        'the core-set runs keep different subsets (summary.json pool_size, '
        'subset_size): ' + '; '.join(
            f'{s:,} of {p:,} in {", ".join(sorted(set(names)))}'
            for (p, s), names in sizes.items()))
  for method in methods.names('coreset'):
    _check_distinct_seeds([r for r in coreset_runs if method in r.rows],
                          method)
  if train_runs:
    differences = differing_keys(
        [_target_view(coreset_runs[0])] + [_target_view(r)
                                           for r in train_runs],
        _TARGET_MAY_DIFFER)
    if differences:
      raise ReportError(
          'a full-data run must train the core-set target (the core-set '
          'runs\' target.model, target.train and data) on the whole pool, '
          f'but differs in {_describe(differences)}')
    _check_distinct_seeds(train_runs, FULL_DATA)


def _mean(values: Sequence[float]) -> float | None:
  return mean_std(values)[0]


def _accuracy_fields(accuracies: Sequence[float]) -> dict[str, Any]:
  mean, std = mean_std(accuracies)
  return {'target_accuracy_mean': mean, 'target_accuracy_std': std,
          'target_error_percent': (None if mean is None
                                   else 100.0 * (1.0 - mean))}


def coreset_method_row(method: str,
                       runs: Sequence[CoresetRun]) -> dict[str, Any]:
  """One method over the runs that ranked by it (coreset.csv's columns)."""
  entries = [r.rows[method] for r in runs]
  trained = [e for e in entries if e['target_test_accuracy'] is not None]
  return {
      'method': method, 'runs': len(runs),
      'seeds': ' '.join(str(r.seed) for r in runs),
      'partial_runs': len(entries) - len(trained),
      'subset_size': int(entries[0]['subset_size']),
      **_accuracy_fields([e['target_test_accuracy'] for e in trained]),
      'proxy_train_seconds': _mean([e['proxy_train_seconds']
                                    for e in entries]),
      'scoring_ranking_seconds': _mean([
          e['scoring_seconds'] + e['ranking_seconds'] for e in entries]),
      'target_train_seconds': _mean([e['target_train_seconds']
                                     for e in trained]),
  }


def full_data_row(runs: Sequence[TrainRun]) -> dict[str, Any]:
  """The target trained on all data: no proxy, nothing selected."""
  return {
      'method': FULL_DATA, 'runs': len(runs),
      'seeds': ' '.join(str(r.seed) for r in runs), 'partial_runs': 0,
      'subset_size': runs[0].train_examples,
      **_accuracy_fields([r.test_accuracy for r in runs]),
      'proxy_train_seconds': None, 'scoring_ranking_seconds': None,
      'target_train_seconds': _mean([r.train_seconds for r in runs]),
  }


def coreset_rows(coreset_runs: Sequence[CoresetRun],
                 train_runs: Sequence[TrainRun]) -> list[dict[str, Any]]:
  """A row per method (in `:all`'s order), then the full-data row."""
  rows = []
  for method in methods.names('coreset'):
    runs = sorted((r for r in coreset_runs if method in r.rows),
                  key=lambda r: r.seed)
    if runs:
      rows.append(coreset_method_row(method, runs))
  if train_runs:
    rows.append(full_data_row(sorted(train_runs, key=lambda r: r.seed)))
  return rows


def _seconds_cell(value: float | None) -> str:
  return '—' if value is None else f'{value:.1f}'


def coreset_markdown_row(row: Mapping[str, Any], pool: int) -> dict[str, str]:
  """coreset.md's cells for one coreset.csv row."""
  seeds = ', '.join(row['seeds'].split())
  runs = f'{row["runs"]} ({seeds})'
  if row['partial_runs']:
    runs = f'{row["runs"]} ({seeds}; {row["partial_runs"]} partial) †'
  if row['target_accuracy_mean'] is None:
    accuracy = error = 'no target yet'
  else:
    accuracy = f'{100 * row["target_accuracy_mean"]:.2f}'
    if row['target_accuracy_std'] is not None:
      accuracy += f' ± {100 * row["target_accuracy_std"]:.2f}'
    trained = row['runs'] - row['partial_runs']
    if trained < row['runs']:
      accuracy += f' (n={trained})'
    error = f'{row["target_error_percent"]:.2f}'
  return dict(zip(CORESET_MD_COLUMNS, [
      row['method'], runs,
      f'{row["subset_size"]:,} ({_percent(row["subset_size"], pool)})',
      accuracy, error, _seconds_cell(row['proxy_train_seconds']),
      _seconds_cell(row['scoring_ranking_seconds']),
      _seconds_cell(row['target_train_seconds'])]))


def _coreset_title(run: CoresetRun) -> str:
  config = run.config
  return (f'{config["data"]["name"]}, proxy '
          f'{config["selector"]["model"]["name"]} '
          f'({selector_epochs(config)} ep), target '
          f'{config["target"]["model"]["name"]}')


def coreset_markdown(coreset_runs: Sequence[CoresetRun],
                     rows: Sequence[Mapping[str, Any]]) -> str:
  pool = int(next(iter(coreset_runs[0].rows.values()))['pool_size'])
  table = [coreset_markdown_row(r, pool) for r in rows]
  notes = []
  if any(r['partial_runs'] for r in rows):
    notes.append('†: includes partial runs (see report.md) whose target '
                 'for this method has not been trained; accuracy and target '
                 'seconds average the runs that have one (n= when not all '
                 'do).')
  if not any(r['method'] == FULL_DATA for r in rows):
    notes.append('No full-data run among these: pass a train run of the '
                 'same target (e.g. configs/fashion_mnist_resnet20.py) for '
                 'the comparison row.')
  return (
      f'# Core-set selection: {_coreset_title(coreset_runs[0])}\n\n'
      f'Each method keeps a subset of the pool of {pool:,} from one proxy '
      'trained on the whole pool; the target trains from scratch on the '
      'subset and is tested after its last epoch. Accuracy: mean ± sample '
      'std (ddof=1) over runs (seeds); the rest are means. Proxy train s: the '
      'one proxy a run shares between its methods, shown on each (random '
      'uses none). Scoring + ranking s: the method\'s own.'
      + (f' "{FULL_DATA}": the same target trained on the whole pool (its '
         'training epochs\' seconds).' if any(
          r['method'] == FULL_DATA for r in rows) else '') + '\n\n'
      + results.markdown_table(table, CORESET_MD_COLUMNS) + '\n'
      + ''.join(f'{n}\n\n' for n in notes))


def coreset_report_markdown(coreset_runs: Sequence[CoresetRun],
                            train_runs: Sequence[TrainRun]) -> str:
  """report.md of a core-set report: the files and the runs read."""
  listed = []
  for r in coreset_runs:
    status = (f'**PARTIAL** (no target yet: {", ".join(r.untrained)})'
              if r.untrained else 'complete')
    listed.append({'run': r.name, 'directory': f'`{r.path}`',
                   'kind': 'core-set', 'methods': ', '.join(r.rows),
                   'seed': r.seed, 'status': status})
  for r in train_runs:
    listed.append({'run': r.name, 'directory': f'`{r.path}`',
                   'kind': FULL_DATA, 'methods': '—', 'seed': r.seed,
                   'status': 'complete'})
  partial = [r.name for r in coreset_runs if r.untrained]
  return (
      '# Core-set report\n\n'
      f'{_count(len(coreset_runs), "core-set run")}'
      + (f' and {_count(len(train_runs), "full-data run")}'
         if train_runs else '')
      + f': {_coreset_title(coreset_runs[0])}'
      + (f'; **partial**: {", ".join(partial)}' if partial else
         '; all complete') + '.\n\n'
      '- [Core-set comparison](coreset.md) (the same numbers in '
      '[coreset.csv](coreset.csv)): target accuracy and seconds per '
      'selection method\n\n'
      '## Runs\n\n'
      + results.markdown_table(listed, ('run', 'directory', 'kind', 'methods',
                                        'seed', 'status')))


def write_coreset_report(run_dirs: Sequence[str], out_dir: str) -> list[str]:
  """coreset.md, coreset.csv and report.md for core-set (and train) runs."""
  coreset_runs, train_runs = load_coreset_report_runs(run_dirs)
  check_coreset_comparable(coreset_runs, train_runs)
  rows = coreset_rows(coreset_runs, train_runs)
  os.makedirs(out_dir, exist_ok=True)
  path = functools.partial(os.path.join, out_dir)
  _write_text(path('coreset.md'), coreset_markdown(coreset_runs, rows))
  results.write_csv(path('coreset.csv'), rows, CORESET_CSV_COLUMNS)
  _write_text(path('report.md'),
              coreset_report_markdown(coreset_runs, train_runs))
  written = ['coreset.md', 'coreset.csv', 'report.md']
  logging.info('Core-set report on %d runs written to %s: %s',
               len(coreset_runs) + len(train_runs), out_dir,
               ', '.join(written))
  return [path(name) for name in written]


# ----------------------------------------------------------------------------
# Putting it together.


def _write_text(path: str, content: str):
  with open(path, 'w', encoding='utf-8') as f:
    f.write(content)


def write_report(run_dirs: Sequence[str], out_dir: str) -> list[str]:
  """Reads the runs and writes every report file; returns their paths.

  Core-set runs (with any full-data train runs) get the core-set report;
  otherwise the runs must be active-learning runs.
  """
  if any(read_config(d).get('mode') == 'coreset' for d in run_dirs):
    return write_coreset_report(run_dirs, out_dir)
  runs = load_runs(run_dirs)
  check_comparable(runs)
  groups = group_runs(runs)
  pool = runs[0].summary['pool_size']
  agreement = [row for r in runs for row in agreement_rows(r)]
  os.makedirs(out_dir, exist_ok=True)
  path = functools.partial(os.path.join, out_dir)
  _write_text(path('table1.md'),
              table1_markdown(groups, budgets(runs), pool))
  plot_curves(groups, pool, path('curves.png'))
  plot_time_breakdown(runs, path('time_breakdown.png'))
  _write_text(path('agreement.md'), agreement_markdown(agreement))
  written = ['table1.md', 'curves.png', 'time_breakdown.png', 'agreement.md']
  if agreement:
    results.write_csv(path('agreement.csv'), agreement, AGREEMENT_COLUMNS)
    written.append('agreement.csv')
  # Last: the index of the files above.
  _write_text(path('report.md'),
              report_markdown(runs, groups, bool(agreement)))
  written.append('report.md')
  logging.info('Report on %d runs written to %s: %s', len(runs), out_dir,
               ', '.join(written))
  return [path(name) for name in written]


def main(argv: Sequence[str]):
  if len(argv) < 2:
    raise app.UsageError('give one or more active-learning run directories, '
                         'or core-set run directories (and full-data train '
                         'run directories to compare with)')
  try:
    write_report(argv[1:], flags.FLAGS.out)
  except ReportError as e:
    # The user's inputs to fix: one clear message, no traceback.
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  flags.DEFINE_string('out', None, 'Directory the report files are written to.')
  flags.mark_flag_as_required('out')
  app.run(main)
