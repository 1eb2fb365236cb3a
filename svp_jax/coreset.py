"""Core-set selection via proxy, and training targets on earlier selections.

Core-set (`mode='coreset'`): train one proxy on the whole pool, let every
method of `coreset.methods` (svp_jax.methods, those usable in 'coreset' mode)
keep a subset of `coreset.subset_size` examples ranked from that one proxy,
then train the target from scratch on each subset and test it. The built-in
methods:

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
proxy is trained only if some method still needs it. A training in progress
saves its progress (svp_jax.preemption, config.preemption) in
training_checkpoints/proxy_<n>/ of the workdir, or
training_checkpoints/target_<n>/ of the folder whose target.csv it goes to,
removed once its result is recorded: a run stopped by SIGTERM, killed or
hung resumes inside the training, and ends as an uninterrupted one would.
"""

import glob
import os
import re
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from svp_jax import experiment
from svp_jax import methods
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import timing
from svp_jax import validation
from svp_jax import workdir_lock


def train_proxy(job: experiment.Job, key_data: np.ndarray,
                track_forgetting: bool,
                policy: preemption.Policy = preemption.Policy()
                ) -> experiment.Fit:
  """Trains and tests the selector on the whole pool, saving its progress
  under the workdir's training_checkpoints (svp_jax.preemption)."""
  return _fit(job, job.selector, np.arange(job.pool_size),
              experiment.train_key(key_data, 'selector', job.pool_size),
              'proxy', job.workdir, policy, track_forgetting=track_forgetting)


def train_target(job: experiment.Job, indices: np.ndarray,
                 key_data: np.ndarray, folder: str,
                 policy: preemption.Policy = preemption.Policy()
                 ) -> experiment.Fit:
  """Trains and tests the target on `indices`, keyed by their number; its
  progress is saved under `folder`'s training_checkpoints."""
  return _fit(job, job.target, indices,
              experiment.train_key(key_data, 'target', len(indices)),
              'target', folder, policy)


def _fit(job: experiment.Job, learner: experiment.Learner,
         indices: np.ndarray, key: jax.Array, role: str, folder: str,
         policy: preemption.Policy, **kwargs) -> experiment.Fit:
  """experiment.fit, resuming from and saving to the training's checkpoints
  (training_checkpoints/<role>_<n> in `folder`)."""
  preemption.raise_if_stop_requested(
      f'before training the {role} on {len(indices)} examples')
  with preemption.training_checkpoints(
      os.path.join(trainings_dir(folder), f'{role}_{len(indices)}'), policy,
      f'{role} {learner.name} n={len(indices)}') as checkpoints:
    return experiment.fit(job, learner, indices, key, role,
                          checkpoints=checkpoints, **kwargs)


def trainings_dir(folder: str) -> str:
  """The checkpoints of `folder`'s trainings in progress (removed once their
  results are recorded)."""
  return os.path.join(folder, run_files.TRAINING_CHECKPOINTS)


def rank(job: experiment.Job, method: methods.SelectionMethod,
         proxy: experiment.Fit | None, subset_size: int, num_seeds: int,
         key: jax.Array) -> tuple[np.ndarray, dict[str, Any]]:
  """Chooses one method's subset; returns its indices and its record.

  The record holds the proxy's row (None for a method that needs none) and
  this method's own scoring and ranking seconds, their compiling left out
  and recorded as `compile_time`. A `seeded` method starts from
  `num_seeds` random points, which count towards the subset.
  """
  scores, scoring = None, timing.Timed(0.0, 0.0)
  if method.trains_selector:
    preemption.raise_if_stop_requested(f'before scoring for {method.name}')
    scores, scoring = timing.timed(experiment.method_scores, job,
                                   job.selector, method, proxy)
  # One device computation that may take long (k-centers): not a hang.
  with preemption.unwatched(f'ranking by {method.name}'):
    keep, ranking = timing.timed(_pick_subset, job, method, scores,
                                 subset_size, num_seeds, key)
  return keep, {'proxy': proxy.row if method.trains_selector else None,
                # The proxy's pool encoding (text), part of every selection
                # that reads the proxy, as its training is.
                'encoding_time': job.selector.pool_encoding_seconds
                                 if method.trains_selector else 0.0,
                'inference_time': scoring.run_seconds,
                'ranking_time': ranking.run_seconds,
                'compile_time': scoring.compile_seconds
                                + ranking.compile_seconds}


def _pick_subset(job: experiment.Job, method: methods.SelectionMethod,
                 scores: np.ndarray | None, subset_size: int, num_seeds: int,
                 key: jax.Array) -> np.ndarray:
  """`method`'s subset of `subset_size` (seeds first), on the host."""
  labeled = np.zeros(job.pool_size, bool)
  seeds = np.zeros(0, np.int64)
  if method.seeded:
    seeds = np.asarray(methods.get('random').pick(
        None, labeled, num_seeds,
        jax.random.fold_in(key, experiment.CORESET_SEEDS), job.mesh))
    labeled[seeds] = True
  picks = method.pick(scores, labeled, subset_size - len(seeds),
                      jax.random.fold_in(key, experiment.CORESET_RANDOM),
                      job.mesh)
  picks = np.asarray(jax.device_get(picks))
  return np.concatenate([seeds, picks]) if method.seeded else picks


def method_dir(workdir: str, method: str) -> str:
  return os.path.join(workdir, method)


def read_selection(folder: str, size: int
                   ) -> tuple[np.ndarray, dict[str, Any]] | None:
  """A stored subset and its record, or None if not (completely) stored."""
  path = run_files.coreset_index_path(folder, size)
  record_path = os.path.join(folder, run_files.SELECTION_JSON)
  if not (os.path.exists(path) and os.path.exists(record_path)):
    return None
  return experiment.read_index(path), results.read_json(record_path)


def write_selection(folder: str, keep: np.ndarray, record: dict[str, Any]):
  # The record first: the index file's presence marks the phase as done.
  results.write_json(os.path.join(folder, run_files.SELECTION_JSON), record)
  experiment.write_index(run_files.coreset_index_path(folder, len(keep)),
                         np.sort(keep))


def select_all(job: experiment.Job, names: tuple[str, ...],
               subset_size: int, num_seeds: int, key: jax.Array,
               policy: preemption.Policy = preemption.Policy()
               ) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
  """Every method's subset and record: stored ones read back, others ranked.

  The proxy is trained (once) only if a method still to rank needs it. It
  counts forgetting events iff a method among `names` needs them, also
  when that one is already stored, so that a resumed run ranks from the
  same computation as an uninterrupted one. Its checkpoint stays until
  every method's subset is stored: a run stopped while ranking does not
  train it again.
  """
  selections = {m: read_selection(method_dir(job.workdir, m), subset_size)
                for m in names}
  pending = [methods.get(m) for m in names if selections[m] is None]
  if len(pending) < len(names):
    logging.info('Resuming: already selected by %s.', ', '.join(
        m for m in names if selections[m] is not None))
  proxy = None
  if any(m.trains_selector for m in pending):
    proxy = train_proxy(job, np.asarray(jax.random.key_data(key)), any(
        methods.get(m).counts_forgetting for m in names), policy)
  for method in pending:
    keep, record = rank(job, method, proxy, subset_size, num_seeds, key)
    if len(np.unique(keep)) != subset_size:
      raise AssertionError(f'the {method.name} core-set repeated points')
    if jax.process_count() > 1:
      # As in active.run_round: one subset, or no run at all.
      multihost_utils.assert_equal(keep, f'processes kept different '
                                   f'{method.name} subsets')
    logging.info('%s kept %d of %d examples (scoring %.1f s, ranking %.2f s, '
                 'compiling %.1f s)', method.name, subset_size,
                 job.pool_size, record['inference_time'],
                 record['ranking_time'], record['compile_time'])
    write_selection(method_dir(job.workdir, method.name), keep, record)
    selections[method.name] = (keep, record)
  preemption.remove(trainings_dir(job.workdir))
  return selections


def _same_fit(a: dict[str, Any], b: dict[str, Any]) -> bool:
  """Whether two MODEL_COLUMNS rows are one training (seconds aside)."""
  return all(a.get(c) == b.get(c) for c in run_files.MODEL_COLUMNS
             if not c.endswith('_time'))


def write_selection_tables(workdir: str, selections: dict[str, Any]):
  """proxy.csv at the top, each method's selection.csv in its folder."""
  proxy_rows = []
  for _, record in selections.values():
    # One row per proxy: a run resumed while ranking restores (or trains
    # again) the same proxy, whose row differs only in its seconds.
    if record['proxy'] and not any(
        _same_fit(record['proxy'], row) for row in proxy_rows):
      proxy_rows.append(record['proxy'])
  results.write_csv(os.path.join(workdir, run_files.PROXY_CSV), proxy_rows,
                    run_files.MODEL_COLUMNS)
  for method, (keep, record) in selections.items():
    results.write_csv(
        os.path.join(method_dir(workdir, method), run_files.SELECTION_CSV),
        [run_files.selection_row(len(keep), 0, record['inference_time'],
                                 record['ranking_time'],
                                 record.get('compile_time', 0.0))],
        run_files.SELECTION_COLUMNS)


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
      # selection.json of runs written before issue 21 has no encoding_time.
      'encoding_seconds': record.get('encoding_time', 0.0),
      'scoring_seconds': record['inference_time'],
      'ranking_seconds': record['ranking_time'],
      # The proxy's training compile and this method's (selection.json of
      # runs written before issue 23 has no compile_time).
      'compile_seconds': proxy.get('compile_time', 0.0)
                         + record.get('compile_time', 0.0),
      'target_train_seconds': target['train_time'] if target else None,
      'target_test_accuracy': target['test_accuracy'] if target else None,
  }


def summary_table(rows: list[dict[str, Any]]) -> str:
  """The rows as a Markdown table; — where a value is missing."""
  shown = [{k: '—' if v is None else v for k, v in r.items()} for r in rows]
  return results.markdown_table(shown, run_files.CORESET_SUMMARY_COLUMNS)


def stored_target(folder: str, size: int) -> dict[str, Any] | None:
  """The target.csv row of a target trained on `size` examples, if any."""
  path = os.path.join(folder, run_files.TARGET_CSV)
  if not os.path.exists(path):
    return None
  return next((r for r in results.read_csv(path)
               if int(r['nexamples']) == size), None)


def write_summary(workdir: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
  """summary.json ({'methods': rows}) and summary.md; returns the former."""
  summary = {'methods': rows}
  results.write_json(os.path.join(workdir, run_files.SUMMARY_JSON), summary)
  first = rows[0]
  results.write_text(
      os.path.join(workdir, run_files.SUMMARY_MD),
      f'# Core-set: {first["subset_size"]:,} of {first["pool_size"]:,} '
      f'examples for {first["target"]}\n\n' + summary_table(rows)
      + '\nThe proxy trains once; every row but random ranks from it. Scoring '
      'and ranking seconds are each method\'s own; — marks a target not '
      'trained yet.\n')
  return summary


def resolve_sizes(config: ml_collections.ConfigDict,
                  pool_size: int) -> tuple[int, int]:
  """(subset size, seeds of seeded methods) in examples, checked."""
  subset_size = experiment.resolve_size('coreset.subset_size',
                                        config.coreset.subset_size, pool_size)
  if subset_size > pool_size:
    raise validation.ConfigError(
        f'config.coreset.subset_size={config.coreset.subset_size!r} is '
        f'{subset_size} examples, more than the pool of {pool_size}')
  seeded = any(methods.get(m).seeded for m in config.coreset.methods)
  num_seeds = config.coreset.kcenters_seeds if seeded else 0
  if num_seeds > subset_size:
    raise validation.ConfigError(
        f'config.coreset.kcenters_seeds={num_seeds} is more than the subset '
        f'of {subset_size} examples it is part of')
  return subset_size, num_seeds


@workdir_lock.holds_workdir
def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) a core-set experiment; returns the summary."""
  validation.validate_coreset_config(config)
  policy = preemption.Policy.from_config(config)
  # From here on SIGTERM and SIGINT only request a stop (svp_jax.preemption).
  with preemption.guard(policy):
    job = experiment.load_job(config, workdir,
                              {'selector': config.selector,
                               'target': config.target})
    subset_size, num_seeds = resolve_sizes(config, job.pool_size)
    names = tuple(config.coreset.methods)
    experiment.claim_workdir(workdir, config)
    logging.info('Core-set: keeping %d of %d examples by %s', subset_size,
                 job.pool_size, ', '.join(names))
    summary = _select_and_train(job, names, subset_size, num_seeds,
                                jax.random.key(config.seed), policy)
  logging.info('Core-set done:\n%s', summary_table(summary['methods']))
  return summary


def _select_and_train(job: experiment.Job, names: tuple[str, ...],
                      subset_size: int, num_seeds: int, key: jax.Array,
                      policy: preemption.Policy) -> dict[str, Any]:
  """Every method's subset, then its target; returns the summary."""
  workdir = job.workdir
  # All selections first: the proxy's memory is free before any target.
  selections = select_all(job, names, subset_size, num_seeds, key, policy)
  write_selection_tables(workdir, selections)

  learners = (job.selector.name, job.target.name)
  # Targets of an earlier attempt count at once: a report made while the
  # run continues sees them.
  rows = {m: summary_row(m, learners, job.pool_size, subset_size, record,
                         stored_target(method_dir(workdir, m), subset_size))
          for m, (_, record) in selections.items()}
  summary = write_summary(workdir, list(rows.values()))
  key_data = np.asarray(jax.random.key_data(key))
  for method, (keep, record) in selections.items():
    # Keyed by subset size only (as before): the same subset trains the
    # same target in any run.
    target_rows = train_targets(job, method_dir(workdir, method),
                                [np.sort(keep)], key_data, policy)
    target = next(r for r in target_rows if int(r['nexamples']) == len(keep))
    rows[method] = summary_row(method, learners, job.pool_size, subset_size,
                               record, target)
    summary = write_summary(workdir, list(rows.values()))
  return summary


def train_targets(job: experiment.Job, folder: str,
                  labeled_sets: list[np.ndarray], key_data: np.ndarray,
                  policy: preemption.Policy = preemption.Policy()
                  ) -> list[dict[str, Any]]:
  """Trains and tests the target on each set; resumes from target.csv, and
  a training in progress from its checkpoint in `folder`."""
  csv_path = os.path.join(folder, run_files.TARGET_CSV)
  rows = []
  if os.path.exists(csv_path):
    rows = results.read_csv(csv_path)
  done = {int(r['nexamples']) for r in rows}
  for indices in labeled_sets:
    if len(indices) in done:
      logging.info('target on %d examples: already in %s', len(indices),
                   csv_path)
      continue
    if indices.max() >= job.pool_size:
      raise validation.ConfigError(
          f'a labeled set of {len(indices)} examples has index '
          f'{indices.max()}, outside the pool of {job.pool_size}: was it '
          'selected from another dataset or max_train_examples?')
    rows.append(train_target(job, indices, key_data, folder, policy).row)
    results.write_csv(csv_path, rows, run_files.MODEL_COLUMNS)
    # Recorded: its training needs no resuming.
    preemption.remove(trainings_dir(folder))
  return rows


# ----------------------------------------------------------------------------
# Precomputed selections.

def find_selections(run_dir: str) -> dict[int, str]:
  """Labeled-set size -> index file, for every index file of a run."""
  found = {}
  for pattern in run_files.INDEX_PATTERNS:
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


@workdir_lock.holds_workdir
def run_precomputed(config: ml_collections.ConfigDict,
                    workdir: str) -> dict[str, Any]:
  """Trains the target on stored selections of `precomputed.run_dir`."""
  validation.validate_precomputed_config(config)
  run_dir = config.precomputed.run_dir
  found = find_selections(run_dir)
  if not found:
    raise validation.ConfigError(
        f'config.precomputed.run_dir={run_dir!r} holds no labeled-index files '
        f'({", ".join(run_files.INDEX_PATTERNS)})'
        f'{_method_folders_hint(run_dir)}')
  wanted = list(config.precomputed.sizes) or list(found)
  missing = sorted(set(wanted) - set(found))
  if missing:
    raise validation.ConfigError(
        f'config.precomputed.sizes={tuple(config.precomputed.sizes)}: no '
        f'index file for sizes {missing} in {run_dir}; it has {list(found)}')
  policy = preemption.Policy.from_config(config)
  with preemption.guard(policy):
    job = experiment.load_job(config, workdir, {'target': config.target})
    experiment.claim_workdir(workdir, config)
    sets = []
    for size in wanted:
      indices = experiment.read_index(found[size])
      if len(indices) != size or len(np.unique(indices)) != size:
        raise validation.ConfigError(
            f'{found[size]} should hold {size} distinct indices, holds '
            f'{len(np.unique(indices))} distinct of {len(indices)}')
      logging.info('Precomputed selection: %s', found[size])
      sets.append(indices)
    rows = train_targets(job, workdir, sets,
                         experiment.root_key_data(config.seed), policy)
  summary = {'run_dir': run_dir, 'target': job.target.name,
             'targets': [r for r in rows if int(r['nexamples']) in wanted]}
  results.write_json(os.path.join(workdir, run_files.SUMMARY_JSON), summary)
  logging.info('Precomputed targets:\n%s',
               results.markdown_table(rows, run_files.MODEL_COLUMNS))
  return summary
