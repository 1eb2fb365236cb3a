"""Core-set selection via proxy, and training targets on earlier selections.

Core-set (`mode='coreset'`): train one proxy on the whole pool, keep a subset
of `coreset.subset_size` examples chosen by `coreset.method`, then train the
target from scratch on that subset only and test it:

  random             uniform subset (no proxy is trained)
  least_confidence   the most uncertain examples (likewise entropy, margin)
  forgetting_events  the most forgotten examples; never-learned ones first
  kcenters           greedy k-centers seeded with `coreset.kcenters_seeds`
                     random points; the subset size includes the seeds

Precomputed (`mode='precomputed'`): train the target on the labeled-index
files of an earlier run (active or core-set) without selecting anything.

Both resume: finished phases are recorded in files (the subset's index file,
target.csv) and skipped when the same command runs again.
"""

import glob
import os
import re
import time
from typing import Any

from absl import logging
import jax
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

_SEEDS, _RANDOM = 0, 1  # Purposes folded into the run's key.


def rank(exp: active.Experiment, method: str, subset_size: int,
         num_seeds: int, key: jax.Array) -> tuple[np.ndarray, dict[str, Any]]:
  """Chooses the subset; returns its indices and the proxy/timing record."""
  pool_size = len(exp.pool[1])
  nothing = np.zeros(pool_size, bool)
  if method == 'random':
    start = time.perf_counter()
    keep = selection.select_random(jax.random.fold_in(key, _RANDOM), nothing,
                                   subset_size)
    return np.asarray(keep), {'proxy': None, 'inference_time': 0.0,
                              'ranking_time': time.perf_counter() - start}

  start = time.perf_counter()
  learner = exp.selector
  result = train.train_model(
      active.train_key(np.asarray(jax.random.key_data(key)), pool_size),
      learner.model, learner.cfg, *exp.pool, np.arange(pool_size),
      batch_size=learner.batch_size, lr_schedule=learner.lr_schedule,
      mesh=exp.mesh, log_prefix=f'proxy {learner.name}',
      track_forgetting=method == 'forgetting_events')
  train_time = time.perf_counter() - start
  test = train.evaluate(result.state, learner.model, learner.cfg, *exp.test,
                        learner.eval_batch_size, exp.mesh)
  proxy_row = {'nexamples': pool_size,
               'train_accuracy': result.history[-1]['train_accuracy'],
               'dev_accuracy': '', 'test_accuracy': test['accuracy'],
               'train_time': train_time, 'dev_time': 0.0, 'test_time': 0.0}
  logging.info('proxy %s trained on all %d examples in %.1f s: test '
               'accuracy %.4f', learner.name, pool_size, train_time,
               test['accuracy'])

  start = time.perf_counter()
  if method == 'forgetting_events':
    scores = train.forgetting_scores(result.forgetting)
  else:
    scores = scoring.score_pool(
        result.state, learner.model, learner.cfg, exp.pool[0],
        method='features' if method == 'kcenters' else method,
        batch_size=learner.eval_batch_size, mesh=exp.mesh)
  inference_time = time.perf_counter() - start

  start = time.perf_counter()
  if method == 'kcenters':
    seeds = np.asarray(selection.select_random(
        jax.random.fold_in(key, _SEEDS), nothing, num_seeds))
    seeded = nothing.copy()
    seeded[seeds] = True
    picks = selection.greedy_k_centers(scores, seeded, subset_size - num_seeds,
                                       mesh=exp.mesh)
    keep = np.concatenate([seeds, np.asarray(picks)])
  else:
    keep = np.asarray(selection.select_top_k(scores, nothing, subset_size))
  return keep, {'proxy': proxy_row, 'inference_time': inference_time,
                'ranking_time': time.perf_counter() - start}


def index_path(workdir: str, size: int) -> str:
  return os.path.join(workdir, f'coreset_{size}.index')


def write_index_atomically(path: str, indices: np.ndarray):
  if results.is_writer():
    tmp = path + '.tmp'
    np.savetxt(tmp, np.sort(indices), fmt='%d')
    os.replace(tmp, path)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) a core-set experiment; returns the summary."""
  validation.validate_coreset_config(config)
  exp = make_experiment(config, workdir)
  pool_size = len(exp.pool[1])
  subset_size = active.resolve_size('coreset.subset_size',
                                    config.coreset.subset_size, pool_size)
  if subset_size > pool_size:
    raise validation.ConfigError(
        f'config.coreset.subset_size={config.coreset.subset_size!r} is '
        f'{subset_size} examples, more than the pool of {pool_size}')
  method = config.coreset.method
  num_seeds = config.coreset.kcenters_seeds if method == 'kcenters' else 0
  if num_seeds > subset_size:
    raise validation.ConfigError(
        f'config.coreset.kcenters_seeds={num_seeds} is more than the subset '
        f'of {subset_size} examples it is part of')
  active.claim_workdir(workdir, config)

  path = index_path(workdir, subset_size)
  record_path = os.path.join(workdir, 'selection.json')
  if os.path.exists(path) and os.path.exists(record_path):
    keep = np.loadtxt(path, dtype=np.int64, ndmin=1)
    record = results.read_json(record_path)
    logging.info('Resuming: the %d-example subset was already selected.',
                 len(keep))
  else:
    logging.info('Core-set: keeping %d of %d examples by %s', subset_size,
                 pool_size, method)
    keep, record = rank(exp, method, subset_size, num_seeds,
                        jax.random.key(config.seed))
    if len(np.unique(keep)) != subset_size:
      raise AssertionError('a core-set selection repeated points')
    # The record first: the index file's presence marks the phase as done.
    results.write_json(record_path, record)
    write_index_atomically(path, keep)
  results.write_csv(os.path.join(workdir, 'proxy.csv'),
                    [record['proxy']] if record['proxy'] else [],
                    active.MODEL_COLUMNS)
  results.write_csv(os.path.join(workdir, 'selection.csv'), [{
      'nexamples': subset_size, 'current_nexamples': 0,
      'new_nexamples': subset_size,
      'total_time': record['inference_time'] + record['ranking_time'],
      'inference_time': record['inference_time'],
      'ranking_time': record['ranking_time']}], active.SELECTION_COLUMNS)

  target_rows = train_targets(exp, workdir, [np.sort(keep)],
                              np.asarray(jax.random.key_data(
                                  jax.random.key(config.seed))))
  proxy = record['proxy'] or {}
  summary = {
      'method': method, 'proxy': exp.selector.name if proxy else None,
      'target': exp.target.name, 'pool_size': pool_size,
      'subset_size': subset_size,
      'proxy_train_seconds': proxy.get('train_time', 0.0),
      'proxy_test_accuracy': proxy.get('test_accuracy'),
      'scoring_seconds': record['inference_time'],
      'ranking_seconds': record['ranking_time'],
      'target_train_seconds': target_rows[-1]['train_time'],
      'target_test_accuracy': target_rows[-1]['test_accuracy'],
  }
  results.write_json(os.path.join(workdir, 'summary.json'), summary)
  results.write_text(os.path.join(workdir, 'summary.md'),
                     f'# Core-set: {method}\n\n'
                     + results.markdown_table([summary], list(summary)))
  logging.info('Core-set done:\n%s',
               results.markdown_table([summary], list(summary)))
  return summary


def make_experiment(config, workdir: str) -> active.Experiment:
  """The fixed parts of a run: data, learners, mesh."""
  info = data.dataset_info(config.data.name)
  pool = data.load_configured_split(config.data, info.train_split,
                                    config.data.max_train_examples)
  test = data.load_configured_split(config.data, info.test_split,
                                    config.data.max_test_examples)
  selector = (active.make_learner(config.selector, info)
              if 'selector' in config else None)
  return active.Experiment(
      pool=pool, test=test, selector=selector,
      target=active.make_learner(config.target, info),
      method=config.get('coreset', {}).get('method', 'precomputed'),
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


def run_precomputed(config: ml_collections.ConfigDict,
                    workdir: str) -> dict[str, Any]:
  """Trains the target on stored selections of `precomputed.run_dir`."""
  validation.validate_precomputed_config(config)
  run_dir = config.precomputed.run_dir
  found = find_selections(run_dir)
  if not found:
    raise validation.ConfigError(
        f'config.precomputed.run_dir={run_dir!r} holds no labeled-index files '
        f'({", ".join(_INDEX_PATTERNS)})')
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
