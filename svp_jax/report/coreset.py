"""The core-set report: one row per selection method, and a full-data row.

Core-set runs (svp_jax.coreset) may differ only in `seed`, `coreset.methods`
and the settings in `_CORESET_MAY_DIFFER`; a full-data train run
(svp_jax.train_job) must train the core-set target (model, recipe, data) on
the whole pool. Accuracy is mean +- sample std (ddof=1) over runs (seeds);
seconds are means.
"""

from collections.abc import Mapping, Sequence
import os
from typing import Any

from absl import logging

from svp_jax import methods
from svp_jax import results
from svp_jax.report import runs as runs_lib
from svp_jax.report import speedup
from svp_jax.report import stats
from svp_jax.report import text

CoresetRun = runs_lib.CoresetRun
TrainRun = runs_lib.TrainRun

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
FULL_DATA = 'full data'
CORESET_CSV_COLUMNS = (
    'method', 'runs', 'seeds', 'partial_runs', 'subset_size',
    'target_accuracy_mean', 'target_accuracy_std', 'target_error_percent',
    'proxy_train_seconds', 'encoding_seconds', 'scoring_ranking_seconds',
    'compile_seconds', 'target_train_seconds')
CORESET_MD_COLUMNS = ('method', 'runs (seeds)', 'subset size',
                      'target test accuracy (%)', 'target error (%)',
                      'proxy train s', 'encoding s', 'scoring + ranking s',
                      'compiling s', 'target train s')


class _Named:
  """A name and a config: what runs.differing_keys compares."""

  def __init__(self, name: str, config: dict[str, Any]):
    self.name, self.config = name, config


def _target_view(run: CoresetRun | TrainRun) -> _Named:
  """What trains the target: data, model and recipe, in the train layout."""
  config = run.config
  if isinstance(run, CoresetRun):
    config = {'data': config['data'], 'model': config['target']['model'],
              'train': config['target']['train']}
  else:
    config = {k: config.get(k) for k in ('data', 'model', 'train')}
  return _Named(run.name, config)


def _check_subsets(coreset_runs: Sequence[CoresetRun]):
  """Every core-set run keeps a subset of one size from one pool."""
  sizes: dict[tuple[int, int], list[str]] = {}
  for r in coreset_runs:
    for row in r.rows.values():
      sizes.setdefault((row['pool_size'], row['subset_size']), []).append(
          r.name)
  if len(sizes) > 1:
    raise runs_lib.ReportError(
        'the core-set runs keep different subsets (summary.json pool_size, '
        'subset_size): ' + '; '.join(
            f'{s:,} of {p:,} in {", ".join(sorted(set(names)))}'
            for (p, s), names in sizes.items()))


def check_coreset_comparable(coreset_runs: Sequence[CoresetRun],
                             train_runs: Sequence[TrainRun]):
  """Raises ReportError if the runs do not make one comparison."""
  runs_lib.check_may_differ_only(coreset_runs, _CORESET_MAY_DIFFER,
                                 'core-set runs')
  _check_subsets(coreset_runs)
  for method in methods.names('coreset'):
    runs_lib.check_distinct_seeds(
        [r for r in coreset_runs if method in r.rows], method)
  if train_runs:
    differences = runs_lib.differing_keys(
        [_target_view(coreset_runs[0])] + [_target_view(r)
                                           for r in train_runs],
        _TARGET_MAY_DIFFER)
    if differences:
      raise runs_lib.ReportError(
          'a full-data run must train the core-set target (the core-set '
          'runs\' target.model, target.train and data) on the whole pool, '
          f'but differs in {runs_lib.describe(differences)}')
    runs_lib.check_distinct_seeds(train_runs, FULL_DATA)


def _accuracy_fields(accuracies: Sequence[float]) -> dict[str, Any]:
  mean, std = stats.mean_std(accuracies)
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
      'proxy_train_seconds': stats.mean([e['proxy_train_seconds']
                                         for e in entries]),
      # The proxy's text encoding (0 for images and for runs written before
      # it was recorded).
      'encoding_seconds': stats.mean([e.get('encoding_seconds', 0.0)
                                      for e in entries]),
      'scoring_ranking_seconds': stats.mean([
          e['scoring_seconds'] + e['ranking_seconds'] for e in entries]),
      # The proxy's and the method's compiling (0 for runs written before
      # compile seconds were recorded).
      'compile_seconds': stats.mean([e.get('compile_seconds', 0.0)
                                     for e in entries]),
      'target_train_seconds': stats.mean([e['target_train_seconds']
                                          for e in trained]),
  }


def full_data_row(runs: Sequence[TrainRun]) -> dict[str, Any]:
  """The target trained on all data: no proxy, nothing selected."""
  return {
      'method': FULL_DATA, 'runs': len(runs),
      'seeds': ' '.join(str(r.seed) for r in runs), 'partial_runs': 0,
      'subset_size': runs[0].train_examples,
      **_accuracy_fields([r.test_accuracy for r in runs]),
      'proxy_train_seconds': None, 'encoding_seconds': None,
      'scoring_ranking_seconds': None, 'compile_seconds': None,
      'target_train_seconds': stats.mean([r.train_seconds for r in runs]),
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


# ----------------------------------------------------------------------------
# Markdown.


def _seconds_cell(value: float | None) -> str:
  return '—' if value is None else f'{value:.1f}'


def _accuracy_cell(row: Mapping[str, Any]) -> str:
  accuracy = f'{100 * row["target_accuracy_mean"]:.2f}'
  if row['target_accuracy_std'] is not None:
    accuracy += f' ± {100 * row["target_accuracy_std"]:.2f}'
  trained = row['runs'] - row['partial_runs']
  if trained < row['runs']:
    accuracy += f' (n={trained})'
  return accuracy


def coreset_markdown_row(row: Mapping[str, Any], pool: int) -> dict[str, str]:
  """coreset.md's cells for one coreset.csv row."""
  seeds = ', '.join(row['seeds'].split())
  runs = f'{row["runs"]} ({seeds})'
  if row['partial_runs']:
    runs = f'{row["runs"]} ({seeds}; {row["partial_runs"]} partial) †'
  if row['target_accuracy_mean'] is None:
    accuracy = error = 'no target yet'
  else:
    accuracy = _accuracy_cell(row)
    error = f'{row["target_error_percent"]:.2f}'
  return dict(zip(CORESET_MD_COLUMNS, [
      row['method'], runs,
      f'{row["subset_size"]:,} ({text.percent(row["subset_size"], pool)})',
      accuracy, error, _seconds_cell(row['proxy_train_seconds']),
      _seconds_cell(row['encoding_seconds']),
      _seconds_cell(row['scoring_ranking_seconds']),
      _seconds_cell(row['compile_seconds']),
      _seconds_cell(row['target_train_seconds'])]))


def _coreset_title(run: CoresetRun) -> str:
  config = run.config
  return (f'{config["data"]["name"]}, proxy '
          f'{config["selector"]["model"]["name"]} '
          f'({speedup.selector_epochs(config)} ep), target '
          f'{config["target"]["model"]["name"]}')


def _coreset_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
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
  return notes


def coreset_markdown(coreset_runs: Sequence[CoresetRun],
                     rows: Sequence[Mapping[str, Any]]) -> str:
  pool = int(next(iter(coreset_runs[0].rows.values()))['pool_size'])
  table = [coreset_markdown_row(r, pool) for r in rows]
  return (
      f'# Core-set selection: {_coreset_title(coreset_runs[0])}\n\n'
      f'Each method keeps a subset of the pool of {pool:,} from one proxy '
      'trained on the whole pool; the target trains from scratch on the '
      'subset and is tested after its last epoch. Accuracy: mean ± sample '
      'std (ddof=1) over runs (seeds); the rest are means. Proxy train s: the '
      'one proxy a run shares between its methods, shown on each (random '
      'uses none). Scoring + ranking s: the method\'s own. Compiling s: '
      'JAX compiling the proxy\'s training and the method\'s scoring and '
      'ranking, left out of the other seconds (0 for runs written before '
      'it was recorded).'
      + (f' "{FULL_DATA}": the same target trained on the whole pool (its '
         'training epochs\' seconds).' if any(
          r['method'] == FULL_DATA for r in rows) else '') + '\n\n'
      + results.markdown_table(table, CORESET_MD_COLUMNS) + '\n'
      + text.notes(_coreset_notes(rows)))


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
      f'{text.count(len(coreset_runs), "core-set run")}'
      + (f' and {text.count(len(train_runs), "full-data run")}'
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
  coreset_runs, train_runs = runs_lib.load_coreset_report_runs(run_dirs)
  check_coreset_comparable(coreset_runs, train_runs)
  rows = coreset_rows(coreset_runs, train_runs)
  os.makedirs(out_dir, exist_ok=True)
  paths = [os.path.join(out_dir, name)
           for name in ('coreset.md', 'coreset.csv', 'report.md')]
  text.write_text(paths[0], coreset_markdown(coreset_runs, rows))
  results.write_csv(paths[1], rows, CORESET_CSV_COLUMNS)
  text.write_text(paths[2], coreset_report_markdown(coreset_runs, train_runs))
  logging.info('Core-set report on %d runs written to %s: %s',
               len(coreset_runs) + len(train_runs), out_dir,
               ', '.join(os.path.basename(p) for p in paths))
  return paths
