"""Reading run directories for a report, through the schema in run_files.

Three kinds of run are read: active-learning runs (svp_jax.active), core-set
runs (svp_jax.coreset) and full-data train runs (svp_jax.train_job). File
names, columns and agreement arrays come from svp_jax.run_files; what is
checked here is what the report goes on to read, so that a missing file, a
missing column or a malformed number stops the report with one ReportError
naming the file and what is wrong, never a KeyError half way through.
"""

from collections.abc import Mapping, Sequence
import csv
import dataclasses
import json
import math
import os
from typing import Any

from svp_jax import results
from svp_jax import run_files

# The files of an active run, all required: the report reads them all.
RUN_FILES = (run_files.CONFIG_JSON, run_files.SUMMARY_JSON, run_files.PROXY_CSV,
             run_files.SELECTION_CSV, run_files.TARGET_CSV)
# Seconds of each phase of a round (summary.json 'rounds', ROUND_COLUMNS).
TIME_PARTS = run_files.SELECTION_PARTS + ('target_train_seconds',)
# Parts that runs written before they existed lack (read as 0 seconds).
OPTIONAL_TIME_PARTS = tuple(p for p in TIME_PARTS
                            if p in run_files.ADDED_COLUMNS)
# What the report reads of an active run's summary.json, and of its rounds.
_SUMMARY_KEYS = ('pool_size', 'complete', 'rounds_completed', 'rounds_total',
                 'rounds')
_ROUND_NUMBERS = ('round', 'labeled') + tuple(
    p for p in TIME_PARTS if p not in OPTIONAL_TIME_PARTS)
# What it reads as numbers of a core-set summary.json row.
_CORESET_NUMBERS = ('proxy_train_seconds', 'scoring_seconds',
                    'ranking_seconds', 'pool_size', 'subset_size')
# ... and of a train run's summary.json.
_TRAIN_NUMBERS = ('final_test_accuracy', 'train_examples')


class ReportError(ValueError):
  """A run directory cannot be read, or runs cannot be reported together."""


@dataclasses.dataclass(frozen=True)
class TimedRun:
  """An active-learning run's config.json and summary.json: its timings."""

  path: str
  name: str  # Unique among the runs of a report.
  config: dict[str, Any]
  summary: dict[str, Any]
  # Ran while other work took the machine's cores: its seconds are not a
  # quiet machine's, so speed-ups leave them out (its results still count).
  shared: bool = dataclasses.field(default=False, kw_only=True)

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
class Run(TimedRun):
  """One active-learning run directory, as the report reads it."""

  target_accuracy: dict[int, float]  # Labeled-set size -> test accuracy.
  agreement_files: tuple[tuple[int, str], ...]  # (round, path), by round.


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
  """A full-data run of `svp_jax.train_job`, as read."""

  path: str
  name: str
  config: dict[str, Any]
  test_accuracy: float  # After the last epoch.
  train_seconds: float  # Training epochs only, as a target's train_time.
  train_examples: int

  @property
  def seed(self) -> int:
    return self.config['seed']


# ----------------------------------------------------------------------------
# Files.


def require_file(run_dir: str, name: str, written: str = 'after its first '
                 'round') -> str:
  """The path of `name` in `run_dir`; ReportError if there is none."""
  path = os.path.join(run_dir, name)
  if not os.path.isfile(path):
    raise ReportError(f'run {run_dir!r} has no {name} (expected {path}); '
                      f'a run writes it {written}')
  return path


def read_json(path: str) -> Any:
  try:
    return results.read_json(path)
  except json.JSONDecodeError as e:
    raise ReportError(f'{path} is not valid JSON: {e}') from e


def read_config(run_dir: str) -> dict[str, Any]:
  """A run directory's config.json (any mode)."""
  if not os.path.isdir(run_dir):
    raise ReportError(f'run directory {run_dir!r} does not exist')
  config = read_json(require_file(run_dir, run_files.CONFIG_JSON))
  if not isinstance(config, dict):
    raise ReportError(f'{run_dir}/{run_files.CONFIG_JSON} is malformed: '
                      'expected a JSON object')
  return config


def is_number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def require_numbers(path: str, where: str, record: Any,
                    keys: Sequence[str]):
  """ReportError unless record[key] is a finite number for every key."""
  for key in keys:
    value = record.get(key) if isinstance(record, dict) else None
    if not is_number(value):
      raise ReportError(f'{path} is malformed: {where}{key} is {value!r}, '
                        'not a number')


def require_keys(path: str, what: str, record: Any, keys: Sequence[str]):
  """ReportError unless `record` (`what`) is a JSON object with every key."""
  if not isinstance(record, dict):
    raise ReportError(f'{path} is malformed: {what} is not a JSON object')
  missing = [k for k in keys if k not in record]
  if missing:
    raise ReportError(f'{path} is malformed: {what} lacks {missing}')


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


# ----------------------------------------------------------------------------
# Active-learning runs.


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
  require_keys(path, 'it', summary, _SUMMARY_KEYS)
  for i, row in enumerate(summary['rounds']):
    require_numbers(path, f'rounds[{i}].', row, _ROUND_NUMBERS)
    require_numbers(path, f'rounds[{i}].', row,
                    [p for p in OPTIONAL_TIME_PARTS if p in row])


def round_seconds(row: Mapping[str, Any], part: str) -> float:
  """A round's seconds of `part` (a TIME_PARTS name; 0 where not recorded)."""
  return float(row.get(part, 0.0)) if part in OPTIONAL_TIME_PARTS else float(
      row[part])


def agreement_files(run_dir: str, rounds_total: int
                    ) -> tuple[tuple[int, str], ...]:
  """(round, path) of the agreement files the run has written, by round."""
  found = ((r, run_files.agreement_path(run_dir, r))
           for r in range(rounds_total))
  return tuple((r, path) for r, path in found if os.path.isfile(path))


def load_timed_run(run_dir: str, name: str | None = None) -> TimedRun:
  """An active run's config.json and summary.json, checked."""
  config = read_config(run_dir)
  if config.get('mode') != 'active':
    raise ReportError(f'run {run_dir!r} is not an active-learning run '
                      f'(config.json mode={config.get("mode")!r})')
  path = require_file(run_dir, run_files.SUMMARY_JSON)
  summary = read_json(path)
  check_summary(path, summary)
  return TimedRun(path=os.path.normpath(run_dir),
                  name=name or os.path.basename(os.path.normpath(run_dir)),
                  config=config, summary=summary)


def load_run(run_dir: str, name: str | None = None) -> Run:
  """Reads one run directory; ReportError names what is missing or wrong."""
  if not os.path.isdir(run_dir):
    raise ReportError(f'run directory {run_dir!r} does not exist')
  paths = {f: require_file(run_dir, f) for f in RUN_FILES}
  timed = load_timed_run(run_dir, name)
  # Not read further, but a run without them is not a whole run.
  read_csv_columns(paths[run_files.PROXY_CSV], run_files.MODEL_COLUMNS,
                   ('nexamples',))
  read_csv_columns(paths[run_files.SELECTION_CSV],
                   run_files.SELECTION_COLUMNS,
                   ('nexamples', 'inference_time', 'ranking_time'))
  return Run(**vars(timed),
             target_accuracy=read_target_accuracy(
                 paths[run_files.TARGET_CSV]),
             agreement_files=agreement_files(
                 run_dir, int(timed.summary['rounds_total'])))


def unique_names(paths: Sequence[str]) -> list[str]:
  """Short run names: the directory name, or the whole path if ambiguous."""
  paths = [os.path.normpath(p) for p in paths]
  base = [os.path.basename(p) for p in paths]
  return [b if base.count(b) == 1 else p for b, p in zip(base, paths)]


def load_runs(run_dirs: Sequence[str],
              shared: Sequence[str] = ()) -> list[Run]:
  """Reads the runs; those named in `shared` are marked as having shared
  the machine (scripts/study_load.py finds them)."""
  if not run_dirs:
    raise ReportError('no run directories given')
  names = unique_names(run_dirs)
  unknown = sorted(set(shared) - set(names))
  if unknown:
    raise ReportError(f'shared runs {", ".join(unknown)} are not among the '
                      f'runs read ({", ".join(names)})')
  return [dataclasses.replace(load_run(d, n), shared=n in shared)
          for d, n in zip(run_dirs, names)]


# ----------------------------------------------------------------------------
# Core-set runs and full-data train runs.


def check_coreset_row(path: str, i: int, row: Any):
  """Raises ReportError unless a summary.json row has what the report reads."""
  require_keys(path, f'methods[{i}]', row,
               [c for c in run_files.CORESET_SUMMARY_COLUMNS
                if c not in run_files.ADDED_COLUMNS])
  where = f'methods[{i}].'
  require_numbers(path, where, row, _CORESET_NUMBERS)
  require_numbers(path, where, row,
                  [c for c in run_files.ADDED_COLUMNS if c in row])
  accuracy = row['target_test_accuracy']
  if accuracy is None:  # Not trained yet: no target seconds either.
    return
  if not (is_number(accuracy) and 0 <= accuracy <= 1):
    raise ReportError(f'{path}: {where}target_test_accuracy={accuracy!r} is '
                      'not a fraction in [0, 1]')
  require_numbers(path, where, row, ('target_train_seconds',))


def load_coreset_run(run_dir: str, name: str) -> CoresetRun:
  """Reads a core-set run's config.json and summary.json."""
  config = read_config(run_dir)
  if config.get('mode') != 'coreset':
    raise ReportError(f'run {run_dir!r} is not a core-set run (config.json '
                      f'mode={config.get("mode")!r})')
  path = require_file(run_dir, run_files.SUMMARY_JSON,
                      'once every method has selected')
  summary = read_json(path)
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


def _epoch_seconds(path: str) -> float:
  """Seconds of all training epochs in a train run's metrics.jsonl."""
  seconds = 0.0
  with open(path) as f:
    for line_number, line in enumerate(f, start=1):
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise ReportError(f'{path} line {line_number} is malformed: '
                          'expected an epoch record with "seconds"') from e
      require_numbers(path, f'line {line_number}: ', record, ('seconds',))
      seconds += float(record['seconds'])
  return seconds


def load_train_run(run_dir: str, name: str) -> TrainRun:
  """Reads a finished full-data train run (summary.json, metrics.jsonl)."""
  config = read_config(run_dir)
  path = require_file(run_dir, run_files.SUMMARY_JSON, 'when it finishes')
  summary = read_json(path)
  require_numbers(path, '', summary, _TRAIN_NUMBERS)
  seconds = _epoch_seconds(
      require_file(run_dir, run_files.METRICS_JSONL, 'after its first epoch'))
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


def differing_keys(runs: Sequence[Any],
                   allowed: Sequence[str] = ()) -> dict[str, str]:
  """Config keys not in `allowed` where the runs differ -> who has what.

  Args:
    runs: anything with a `name` and a `config` (a dict as config.json).
    allowed: dotted key prefixes that may differ.
  """
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


def describe(differences: Mapping[str, str]) -> str:
  return '; '.join(f'{k}: {v}' for k, v in differences.items())


def check_may_differ_only(runs: Sequence[Any], allowed: Sequence[str],
                          what: str = 'runs'):
  """ReportError naming the keys, beyond `allowed`, where the runs differ."""
  differences = differing_keys(runs, allowed)
  if differences:
    raise ReportError(
        f'these {what} cannot be reported together: they may differ only in '
        f'{", ".join(allowed)}, but differ in {describe(differences)}')


def check_distinct_seeds(runs: Sequence[Any], what: str = ''):
  """ReportError if two runs of one experiment (`what`) share a seed."""
  seeds: dict[int, str] = {}
  for r in runs:
    if r.seed in seeds:
      raise ReportError(
          f'runs {seeds[r.seed]} and {r.name} are the same experiment ('
          + (f'{what}, ' if what else '') + f'seed {r.seed}): pass each run '
          'once')
    seeds[r.seed] = r.name
