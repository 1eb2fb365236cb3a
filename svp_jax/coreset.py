"""Core-set selection via proxy, and training targets on earlier selections.

Core-set (`mode='coreset'`): train one proxy on the whole pool, let every
method of `coreset.methods` keep a subset of `coreset.subset_size` examples
ranked from that one proxy, then train the target from scratch on each
subset and test it:

  random             uniform subset (uses no proxy)
  least_confidence   the most uncertain examples (likewise entropy, margin)
  forgetting_events  the most forgotten examples; never-learned ones first
  kcenters           greedy k-centers seeded with `coreset.kcenters_seeds`
                     random points; the subset size includes the seeds

Comparing methods in one run trains the proxy once instead of once per
method. Each method's random draws are keyed by the method alone, so its
subset is the same whichever other methods run with it.

Files (workdir): config.json; proxy.csv (the proxy's row; none when only
`random` runs); summary.json and summary.md, one row per method, rewritten as
phases finish; per method, <method>/coreset_<n>.index, selection.json,
selection.csv and target.csv.

Precomputed (`mode='precomputed'`): train the target on the labeled-index
files of an earlier run (active, or one method's folder of a core-set run)
without selecting anything.

Both resume: finished phases are recorded in files (a method's index file and
selection.json, target.csv) and skipped when the same command runs again; the
proxy is trained only if some method still needs it.
"""

import dataclasses
import glob
import os
import re
import time
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from svp_jax import active
from svp_jax import data
from svp_jax import results
from svp_jax import scoring
from svp_jax import selection
from svp_jax import sharding
from svp_jax import train
from svp_jax import validation

# Purposes folded into the run's key: one per method that draws at random,
# fixed, so that a method's draws do not depend on the other methods run.
_SEEDS, _RANDOM = 0, 1

SUMMARY_COLUMNS = ('method', 'proxy', 'target', 'pool_size', 'subset_size',
                   'proxy_train_seconds', 'proxy_test_accuracy',
                   'scoring_seconds', 'ranking_seconds',
                   'target_train_seconds', 'target_test_accuracy')


@dataclasses.dataclass(frozen=True)
class Proxy:
  """The proxy, trained once on the whole pool; every method ranks from it."""

  state: train.TrainState
  forgetting: dict[str, jax.Array] | None  # Counters, if tracked.
  row: dict[str, Any]  # Its proxy.csv row.


def train_proxy(exp: active.Experiment, key: jax.Array,
                track_forgetting: bool) -> Proxy:
  """Trains and tests the selector on the whole pool."""
  pool_size = len(exp.pool[1])
  learner = exp.selector
  start = time.perf_counter()
  result = train.train_model(
      active.train_key(np.asarray(jax.random.key_data(key)), pool_size),
      learner.model, learner.cfg, learner.pool_inputs, exp.pool[1],
      np.arange(pool_size),
      batch_size=learner.batch_size, lr_schedule=learner.lr_schedule,
      mesh=exp.mesh, log_prefix=f'proxy {learner.name}',
      track_forgetting=track_forgetting)
  train_time = time.perf_counter() - start
  start = time.perf_counter()
  test = train.evaluate(result.state, learner.model, learner.cfg,
                        learner.test_inputs, exp.test[1],
                        learner.eval_batch_size, exp.mesh)
  row = {'nexamples': pool_size,
         'train_accuracy': result.history[-1]['train_accuracy'],
         'dev_accuracy': '', 'test_accuracy': test['accuracy'],
         'train_time': train_time, 'dev_time': 0.0,
         'test_time': time.perf_counter() - start}
  logging.info('proxy %s trained on all %d examples in %.1f s: test '
               'accuracy %.4f', learner.name, pool_size, train_time,
               test['accuracy'])
  return Proxy(result.state, result.forgetting, row)


def proxy_scores(exp: active.Experiment, proxy: Proxy,
                 method: str) -> np.ndarray:
  """What `method` ranks by: forgetting counts, uncertainty or features."""
  if method == 'forgetting_events':
    return train.forgetting_scores(proxy.forgetting)
  learner = exp.selector
  return scoring.score_pool(
      proxy.state, learner.model, learner.cfg, learner.pool_eval_inputs,
      method='features' if method == 'kcenters' else method,
      batch_size=learner.eval_batch_size, mesh=exp.mesh)


def rank(exp: active.Experiment, method: str, proxy: Proxy | None,
         subset_size: int, num_seeds: int,
         key: jax.Array) -> tuple[np.ndarray, dict[str, Any]]:
  """Chooses one method's subset; returns its indices and its record.

  The record holds the proxy's row (None for random) and this method's own
  scoring and ranking seconds.
  """
  nothing = np.zeros(len(exp.pool[1]), bool)
  start = time.perf_counter()
  scores = None if method == 'random' else proxy_scores(exp, proxy, method)
  scoring_seconds = 0.0 if scores is None else time.perf_counter() - start

  start = time.perf_counter()
  if method == 'random':
    keep = selection.select_random(jax.random.fold_in(key, _RANDOM), nothing,
                                   subset_size)
  elif method == 'kcenters':
    seeds = np.asarray(selection.select_random(
        jax.random.fold_in(key, _SEEDS), nothing, num_seeds))
    seeded = nothing.copy()
    seeded[seeds] = True
    picks = selection.greedy_k_centers(scores, seeded, subset_size - num_seeds,
                                       mesh=exp.mesh)
    keep = np.concatenate([seeds, np.asarray(picks)])
  else:
    keep = selection.select_top_k(scores, nothing, subset_size)
  keep = np.asarray(keep)
  return keep, {'proxy': None if method == 'random' else proxy.row,
                'inference_time': scoring_seconds,
                'ranking_time': time.perf_counter() - start}


def index_path(folder: str, size: int) -> str:
  return os.path.join(folder, f'coreset_{size}.index')


def method_dir(workdir: str, method: str) -> str:
  return os.path.join(workdir, method)


def write_index_atomically(path: str, indices: np.ndarray):
  if results.is_writer():
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    np.savetxt(tmp, np.sort(indices), fmt='%d')
    os.replace(tmp, path)


def read_selection(folder: str, size: int
                   ) -> tuple[np.ndarray, dict[str, Any]] | None:
  """A stored subset and its record, or None if not (completely) stored."""
  path = index_path(folder, size)
  record_path = os.path.join(folder, 'selection.json')
  if not (os.path.exists(path) and os.path.exists(record_path)):
    return None
  return (np.loadtxt(path, dtype=np.int64, ndmin=1),
          results.read_json(record_path))


def write_selection(folder: str, keep: np.ndarray, record: dict[str, Any]):
  # The record first: the index file's presence marks the phase as done.
  results.write_json(os.path.join(folder, 'selection.json'), record)
  write_index_atomically(index_path(folder, len(keep)), keep)


def select_all(exp: active.Experiment, methods: tuple[str, ...],
               subset_size: int, num_seeds: int, key: jax.Array
               ) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
  """Every method's subset and record: stored ones read back, others ranked.

  The proxy is trained (once) only if a method still to rank needs it. It
  counts forgetting events iff forgetting_events is among `methods`, also
  when that one is already stored, so that a resumed run ranks from the
  same computation as an uninterrupted one.
  """
  selections = {m: read_selection(method_dir(exp.workdir, m), subset_size)
                for m in methods}
  pending = [m for m in methods if selections[m] is None]
  if len(pending) < len(methods):
    logging.info('Resuming: already selected by %s.',
                 ', '.join(m for m in methods if m not in pending))
  proxy = None
  if any(m != 'random' for m in pending):
    proxy = train_proxy(exp, key, 'forgetting_events' in methods)
  for method in pending:
    keep, record = rank(exp, method, proxy, subset_size, num_seeds, key)
    if len(np.unique(keep)) != subset_size:
      raise AssertionError(f'the {method} core-set repeated points')
    if jax.process_count() > 1:
      # As in active.run_round: one subset, or no run at all.
      multihost_utils.assert_equal(keep, f'processes kept different {method} '
                                   'subsets')
    logging.info('%s kept %d of %d examples (scoring %.1f s, ranking %.2f s)',
                 method, subset_size, len(exp.pool[1]),
                 record['inference_time'], record['ranking_time'])
    write_selection(method_dir(exp.workdir, method), keep, record)
    selections[method] = (keep, record)
  return selections


def write_selection_tables(workdir: str, selections: dict[str, Any]):
  """proxy.csv at the top, each method's selection.csv in its folder."""
  proxy_rows = []
  for _, record in selections.values():
    # One row unless a resume had to train the proxy again.
    if record['proxy'] and record['proxy'] not in proxy_rows:
      proxy_rows.append(record['proxy'])
  results.write_csv(os.path.join(workdir, 'proxy.csv'), proxy_rows,
                    active.MODEL_COLUMNS)
  for method, (keep, record) in selections.items():
    results.write_csv(
        os.path.join(method_dir(workdir, method), 'selection.csv'), [{
            'nexamples': len(keep), 'current_nexamples': 0,
            'new_nexamples': len(keep),
            'total_time': record['inference_time'] + record['ranking_time'],
            'inference_time': record['inference_time'],
            'ranking_time': record['ranking_time']}],
        active.SELECTION_COLUMNS)


def summary_row(method: str, names: tuple[str | None, str], pool_size: int,
                subset_size: int, record: dict[str, Any],
                target: dict[str, Any] | None) -> dict[str, Any]:
  """One method's line of summary.json; target fields None until trained."""
  proxy = record['proxy'] or {}
  return {
      'method': method, 'proxy': names[0] if proxy else None,
      'target': names[1], 'pool_size': pool_size, 'subset_size': subset_size,
      'proxy_train_seconds': proxy.get('train_time', 0.0),
      'proxy_test_accuracy': proxy.get('test_accuracy'),
      'scoring_seconds': record['inference_time'],
      'ranking_seconds': record['ranking_time'],
      'target_train_seconds': target['train_time'] if target else None,
      'target_test_accuracy': target['test_accuracy'] if target else None,
  }


def summary_table(rows: list[dict[str, Any]]) -> str:
  """The rows as a Markdown table; — where a value is missing."""
  shown = [{k: '—' if v is None else v for k, v in r.items()} for r in rows]
  return results.markdown_table(shown, SUMMARY_COLUMNS)


def stored_target(folder: str, size: int) -> dict[str, Any] | None:
  """The target.csv row of a target trained on `size` examples, if any."""
  path = os.path.join(folder, 'target.csv')
  if not os.path.exists(path):
    return None
  return next((r for r in results.read_csv(path)
               if int(r['nexamples']) == size), None)


def write_summary(workdir: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
  """summary.json ({'methods': rows}) and summary.md; returns the former."""
  summary = {'methods': rows}
  results.write_json(os.path.join(workdir, 'summary.json'), summary)
  first = rows[0]
  results.write_text(
      os.path.join(workdir, 'summary.md'),
      f'# Core-set: {first["subset_size"]:,} of {first["pool_size"]:,} '
      f'examples for {first["target"]}\n\n' + summary_table(rows)
      + '\nThe proxy trains once; every row but random ranks from it. Scoring '
      'and ranking seconds are each method\'s own; — marks a target not '
      'trained yet.\n')
  return summary


def resolve_sizes(config: ml_collections.ConfigDict,
                  pool_size: int) -> tuple[int, int]:
  """(subset size, k-centers seeds) in examples, checked against the pool."""
  subset_size = active.resolve_size('coreset.subset_size',
                                    config.coreset.subset_size, pool_size)
  if subset_size > pool_size:
    raise validation.ConfigError(
        f'config.coreset.subset_size={config.coreset.subset_size!r} is '
        f'{subset_size} examples, more than the pool of {pool_size}')
  num_seeds = (config.coreset.kcenters_seeds
               if 'kcenters' in config.coreset.methods else 0)
  if num_seeds > subset_size:
    raise validation.ConfigError(
        f'config.coreset.kcenters_seeds={num_seeds} is more than the subset '
        f'of {subset_size} examples it is part of')
  return subset_size, num_seeds


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) a core-set experiment; returns the summary."""
  validation.validate_coreset_config(config)
  exp = make_experiment(config, workdir)
  pool_size = len(exp.pool[1])
  subset_size, num_seeds = resolve_sizes(config, pool_size)
  methods = tuple(config.coreset.methods)
  active.claim_workdir(workdir, config)
  logging.info('Core-set: keeping %d of %d examples by %s', subset_size,
               pool_size, ', '.join(methods))

  key = jax.random.key(config.seed)
  # All selections first: the proxy's memory is free before any target.
  selections = select_all(exp, methods, subset_size, num_seeds, key)
  write_selection_tables(workdir, selections)

  names = (exp.selector.name, exp.target.name)
  # Targets of an earlier attempt count at once: a report made while the
  # run continues sees them.
  rows = {m: summary_row(m, names, pool_size, subset_size, record,
                         stored_target(method_dir(workdir, m), subset_size))
          for m, (_, record) in selections.items()}
  summary = write_summary(workdir, list(rows.values()))
  key_data = np.asarray(jax.random.key_data(key))
  for method, (keep, record) in selections.items():
    # Keyed by subset size only (as before): the same subset trains the
    # same target in any run.
    target_rows = train_targets(exp, method_dir(workdir, method),
                                [np.sort(keep)], key_data)
    target = next(r for r in target_rows if int(r['nexamples']) == len(keep))
    rows[method] = summary_row(method, names, pool_size, subset_size, record,
                               target)
    summary = write_summary(workdir, list(rows.values()))
  logging.info('Core-set done:\n%s', summary_table(summary['methods']))
  return summary


def make_experiment(config, workdir: str) -> active.Experiment:
  """The fixed parts of a run: data, learners, mesh."""
  info = data.dataset_info(config.data.name)
  pool = data.load_configured_split(config.data, info.train_split,
                                    config.data.max_train_examples)
  test = data.load_configured_split(config.data, info.test_split,
                                    config.data.max_test_examples)
  roles = ('selector', 'target') if 'selector' in config else ('target',)
  learners = dict(zip(roles, active.make_learners(config, roles, info,
                                                  pool[0], test[0])))
  return active.Experiment(
      pool=pool, test=test, selector=learners.get('selector'),
      target=learners['target'],
      method=config.mode,
      schedule=(), target_sizes=frozenset(), mesh=sharding.make_mesh(),
      workdir=workdir)


def train_targets(exp: active.Experiment, workdir: str,
                  labeled_sets: list[np.ndarray],
                  key_data: np.ndarray) -> list[dict[str, Any]]:
  """Trains and tests the target on each set; resumes from target.csv."""
  csv_path = os.path.join(workdir, 'target.csv')
  rows = []
  if os.path.exists(csv_path):
    rows = results.read_csv(csv_path)
  done = {int(r['nexamples']) for r in rows}
  for indices in labeled_sets:
    if len(indices) in done:
      logging.info('target on %d examples: already in %s', len(indices),
                   csv_path)
      continue
    if indices.max() >= len(exp.pool[1]):
      raise validation.ConfigError(
          f'a labeled set of {len(indices)} examples has index '
          f'{indices.max()}, outside the pool of {len(exp.pool[1])}: was it '
          'selected from another dataset or max_train_examples?')
    _, row = active.fit(exp, exp.target, indices,
                        active.train_key(key_data, len(indices)), 'target')
    rows.append(row)
    results.write_csv(csv_path, rows, active.MODEL_COLUMNS)
  return rows


# ----------------------------------------------------------------------------
# Precomputed selections.

# Index files of svp_jax runs and of the reference's run directories.
_INDEX_PATTERNS = ('initial_subset_*.index', 'proxy/*/labeled_*.index',
                   'coreset_*.index', 'selector/*/labelled_*.index',
                   'proxy/*/labelled_*.index')


def find_selections(run_dir: str) -> dict[int, str]:
  """Labeled-set size -> index file, for every index file of a run."""
  found = {}
  for pattern in _INDEX_PATTERNS:
    for path in glob.glob(os.path.join(run_dir, pattern)):
      size = int(re.search(r'_(\d+)\.index$', path).group(1))
      found.setdefault(size, path)
  return dict(sorted(found.items()))


def _method_folders_hint(run_dir: str) -> str:
  """Points from a core-set workdir to its per-method folders, if it is one."""
  folders = sorted({os.path.dirname(p) for p in glob.glob(
      os.path.join(run_dir, '*', 'coreset_*.index'))})
  if not folders:
    return ''
  return ('; it is a core-set workdir with one subset per method: set '
          f'run_dir to one of {folders}')


def run_precomputed(config: ml_collections.ConfigDict,
                    workdir: str) -> dict[str, Any]:
  """Trains the target on stored selections of `precomputed.run_dir`."""
  validation.validate_precomputed_config(config)
  run_dir = config.precomputed.run_dir
  found = find_selections(run_dir)
  if not found:
    raise validation.ConfigError(
        f'config.precomputed.run_dir={run_dir!r} holds no labeled-index files '
        f'({", ".join(_INDEX_PATTERNS)}){_method_folders_hint(run_dir)}')
  wanted = list(config.precomputed.sizes) or list(found)
  missing = sorted(set(wanted) - set(found))
  if missing:
    raise validation.ConfigError(
        f'config.precomputed.sizes={tuple(config.precomputed.sizes)}: no '
        f'index file for sizes {missing} in {run_dir}; it has {list(found)}')
  exp = make_experiment(config, workdir)
  active.claim_workdir(workdir, config)
  sets = []
  for size in wanted:
    indices = np.loadtxt(found[size], dtype=np.int64, ndmin=1)
    if len(indices) != size or len(np.unique(indices)) != size:
      raise validation.ConfigError(
          f'{found[size]} should hold {size} distinct indices, holds '
          f'{len(np.unique(indices))} distinct of {len(indices)}')
    logging.info('Precomputed selection: %s', found[size])
    sets.append(indices)
  rows = train_targets(exp, workdir, sets, np.asarray(
      jax.random.key_data(jax.random.key(config.seed))))
  summary = {'run_dir': run_dir, 'target': exp.target.name,
             'targets': [r for r in rows if int(r['nexamples']) in wanted]}
  results.write_json(os.path.join(workdir, 'summary.json'), summary)
  logging.info('Precomputed targets:\n%s',
               results.markdown_table(rows, active.MODEL_COLUMNS))
  return summary
