"""Active learning via proxy: the round state and the loop folded over it.

A run is a fold of `run_round` over the schedule [initial, +add_1, +add_2, ...]:
round 0 labels a uniform random initial subset; every later round trains the
selector from scratch on all labels so far, scores the pool with its
last-epoch weights and labels the `add_r` best unlabeled points. The target is
trained from scratch at the configured labeled-set sizes. After each round the
state is checkpointed, so a killed run resumes at the last complete round and
makes exactly the selections an uninterrupted run makes.

Files (workdir): proxy.csv, selection.csv, target.csv with the reference's
columns; proxy/<n>/labeled_<n>.index for every labeled set (one index per line)
and initial_subset_<n>.index; summary.json and summary.md; config.json;
checkpoints/ (orbax).
"""

from collections.abc import Sequence
import dataclasses
import os
import time
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from svp_jax import data
from svp_jax import inputs
from svp_jax import results
from svp_jax import scoring
from svp_jax import selection
from svp_jax import sharding
from svp_jax import train
from svp_jax import validation

# Purposes folded into the run's key.
_INITIAL, _TRAIN, _SELECT = 0, 1, 2

MODEL_COLUMNS = ('nexamples', 'train_accuracy', 'dev_accuracy',
                 'test_accuracy', 'train_time', 'dev_time', 'test_time')
SELECTION_COLUMNS = ('nexamples', 'current_nexamples', 'new_nexamples',
                     'total_time', 'inference_time', 'ranking_time')


@dataclasses.dataclass(frozen=True)
class RoundState:
  """Everything that carries from one round to the next (and is saved)."""

  labeled: np.ndarray  # bool [pool]: labeled so far.
  round: int  # Rounds completed.
  key: np.ndarray  # uint32 key data of the run's root key.
  history: tuple[dict[str, Any], ...]  # One record per completed round.


@dataclasses.dataclass(frozen=True, eq=False)
class Learner:
  """A model, its full training recipe and its inputs (selector or target)."""

  name: str
  model: Any
  cfg: train.StepConfig
  batch_size: int
  eval_batch_size: int
  lr_schedule: tuple[tuple[int, float], ...]
  # The pool and test examples as this model reads them (svp_jax.inputs):
  # the loaded arrays themselves for images, an encoding for text. Training
  # reads `pool_inputs`; scoring reads `pool_eval_inputs`, which differ only
  # where augmentation happens while decoding (ImageNet's crops).
  pool_inputs: Any = None
  test_inputs: Any = None
  pool_eval_inputs: Any = None


@dataclasses.dataclass
class Experiment:
  """What stays fixed during a run (plus a memo of the last target model)."""

  pool: tuple[np.ndarray, np.ndarray]  # As loaded: (examples, labels).
  test: tuple[np.ndarray, np.ndarray]
  selector: Learner
  target: Learner
  method: str
  schedule: tuple[int, ...]  # Points labeled in round 0, 1, 2, ...
  target_sizes: frozenset[int]
  mesh: Any
  workdir: str
  # Baseline runs (selector == target) reuse the target trained at the end of
  # one round as the next round's selector instead of training it twice.
  same_models: bool = False
  # Also score the pool with a target trained on the same labels and save
  # both score vectors (agreement/round_<r>.npz) for the report.
  compare_with_target: bool = False
  memo: dict[int, Any] = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------
# Schedule.


def resolve_size(key: str, value: float, pool_size: int) -> int:
  """A fraction of the pool (0 < value < 1) or a count (integral value >= 1)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (
      value <= 0 or (value >= 1 and value != int(value))):
    raise validation.ConfigError(
        f'config.{key}={value!r} is not allowed: expected a fraction of the '
        f'pool in (0, 1) or a whole number of examples >= 1')
  count = round(value * pool_size) if value < 1 else int(value)
  if count < 1:
    raise validation.ConfigError(
        f'config.{key}={value!r} is {count} examples of a pool of '
        f'{pool_size}: it must be at least 1')
  return count


def resolve_schedule(initial: float, rounds: Sequence[float],
                     pool_size: int) -> tuple[int, ...]:
  """[initial, add_1, ...] as counts; the total must fit in the pool."""
  sizes = (resolve_size('selection.initial_subset', initial, pool_size),) + (
      tuple(resolve_size(f'selection.rounds[{i}]', v, pool_size)
            for i, v in enumerate(rounds)))
  if sum(sizes) > pool_size:
    raise validation.ConfigError(
        f'config.selection: initial_subset + rounds = {list(sizes)} add up to '
        f'{sum(sizes)} examples, more than the pool of {pool_size}')
  return sizes


# ----------------------------------------------------------------------------
# One round.


def fit(exp: Experiment, learner: Learner, indices: np.ndarray, key,
        role: str) -> tuple[train.TrainState, dict[str, Any]]:
  """Trains `learner` from scratch on `indices`; returns state and CSV row."""
  start = time.perf_counter()
  result = train.train_model(
      key, learner.model, learner.cfg, learner.pool_inputs, exp.pool[1],
      indices,
      batch_size=learner.batch_size, lr_schedule=learner.lr_schedule,
      mesh=exp.mesh, log_prefix=f'{role} {learner.name} n={len(indices)}')
  state, history = result.state, result.history
  train_time = time.perf_counter() - start
  start = time.perf_counter()
  test = train.evaluate(state, learner.model, learner.cfg,
                        learner.test_inputs, exp.test[1],
                        learner.eval_batch_size, exp.mesh)
  row = {'nexamples': len(indices),
         'train_accuracy': history[-1]['train_accuracy'],
         'dev_accuracy': '', 'test_accuracy': test['accuracy'],
         'train_time': train_time, 'dev_time': 0.0,
         'test_time': time.perf_counter() - start}
  logging.info('%s %s trained on %d labels in %.1f s: test accuracy %.4f',
               role, learner.name, len(indices), train_time, test['accuracy'])
  return state, row


def train_key(key_data: np.ndarray, size: int):
  # Keyed by labeled-set size only, so selector and target runs of the same
  # model on the same labels are the same run (what the memo relies on).
  return jax.random.fold_in(
      jax.random.fold_in(jax.random.wrap_key_data(key_data), _TRAIN), size)


def select(exp: Experiment, state: RoundState, k: int
           ) -> tuple[np.ndarray, dict[str, Any] | None, float, float]:
  """Picks k new points; returns (indices, selector row, scoring s, ranking s)."""
  round_key = jax.random.fold_in(jax.random.wrap_key_data(state.key),
                                 state.round)
  labeled = state.labeled
  if state.round == 0 or exp.method == 'random':
    start = time.perf_counter()
    picked = selection.select_random(
        jax.random.fold_in(round_key, _SELECT), labeled, k)
    picked = np.asarray(jax.device_get(picked))
    return picked, None, 0.0, time.perf_counter() - start

  indices = np.flatnonzero(labeled)
  if exp.same_models and len(indices) in exp.memo:
    model_state, row = exp.memo[len(indices)]
    logging.info('selector: reusing the target trained on %d labels',
                 len(indices))
  else:
    model_state, row = fit(exp, exp.selector, indices,
                           train_key(state.key, len(indices)), 'selector')

  start = time.perf_counter()
  kind = 'features' if exp.method == 'kcenters' else exp.method
  scores = scoring.score_pool(
      model_state, exp.selector.model, exp.selector.cfg,
      exp.selector.pool_eval_inputs,
      method=kind, batch_size=exp.selector.eval_batch_size, mesh=exp.mesh)
  scoring_seconds = time.perf_counter() - start
  if exp.compare_with_target:
    save_agreement(exp, state, indices, scores, k)
  exp.memo.clear()

  start = time.perf_counter()
  if exp.method == 'kcenters':
    picked = selection.greedy_k_centers(scores, labeled, k, mesh=exp.mesh)
  else:
    picked = selection.select_top_k(scores, labeled, k)
  picked = np.asarray(jax.device_get(picked))
  return picked, row, scoring_seconds, time.perf_counter() - start


def save_agreement(exp: Experiment, state: RoundState, indices: np.ndarray,
                   selector_scores: np.ndarray, k: int):
  """Saves the selector's and a same-labels target's pool scores.

  Not part of the selection (nor its timing): evidence that the proxy ranks
  points as the target would. The target trained on these labels at the end
  of the previous round is reused when there is one.
  """
  if len(indices) in exp.memo:
    target_state = exp.memo[len(indices)][0]
  else:
    target_state, _ = fit(exp, exp.target, indices,
                          train_key(state.key, len(indices)),
                          'target (for agreement)')
  target_scores = scoring.score_pool(
      target_state, exp.target.model, exp.target.cfg,
      exp.target.pool_eval_inputs,
      method=exp.method, batch_size=exp.target.eval_batch_size, mesh=exp.mesh)
  if results.is_writer():
    folder = os.path.join(exp.workdir, 'agreement')
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, f'round_{state.round}.npz'),
             proxy=selector_scores.astype(np.float32),
             target=target_scores.astype(np.float32),
             labeled=state.labeled, k=np.int64(k))


def run_round(exp: Experiment, state: RoundState
              ) -> tuple[RoundState, dict[str, Any]]:
  """Selects this round's points, then trains the target if due."""
  k = exp.schedule[state.round]
  before = int(state.labeled.sum())
  logging.info('round %d: selecting %d of %d unlabeled points by %s',
               state.round, k, len(state.labeled) - before,
               'random' if state.round == 0 else exp.method)
  picked, selector_row, scoring_seconds, ranking_seconds = select(
      exp, state, k)
  if jax.process_count() > 1:
    # Every process selects from the same gathered scores; if they ever
    # disagreed they would train on different sets and write a mixed run.
    multihost_utils.assert_equal(picked, 'processes selected different points')
  labeled = state.labeled.copy()
  labeled[picked] = True
  size = before + k
  assert int(labeled.sum()) == size, 'a selection repeated or relabeled points'
  write_index(exp.workdir, labeled, state.round)

  record = {
      'round': state.round, 'labeled': size,
      'selector_train_seconds': selector_row['train_time'] if selector_row
                                else 0.0,
      'scoring_seconds': scoring_seconds, 'ranking_seconds': ranking_seconds,
      'selector': selector_row,
      'selection': {'nexamples': size, 'current_nexamples': before,
                    'new_nexamples': k,
                    'total_time': scoring_seconds + ranking_seconds,
                    'inference_time': scoring_seconds,
                    'ranking_time': ranking_seconds},
      'target': None, 'target_train_seconds': 0.0,
  }
  if size in exp.target_sizes:
    target_state, target_row = fit(exp, exp.target, np.flatnonzero(labeled),
                                   train_key(state.key, size), 'target')
    record.update(target=target_row,
                  target_train_seconds=target_row['train_time'])
    if exp.same_models or exp.compare_with_target:
      exp.memo[size] = (target_state, target_row)
  logging.info(
      'round %d done: %d labeled; selector train %.1f s, scoring %.1f s, '
      'ranking %.2f s, target train %.1f s', state.round, size,
      record['selector_train_seconds'], scoring_seconds, ranking_seconds,
      record['target_train_seconds'])
  return RoundState(labeled, state.round + 1, state.key,
                    state.history + (record,)), record


# ----------------------------------------------------------------------------
# Files and checkpoints.


def write_index(workdir: str, labeled: np.ndarray, round_index: int):
  """The labeled set as one pool index per line (the reference's format)."""
  indices = np.flatnonzero(labeled)
  n = len(indices)
  if round_index == 0:
    path = os.path.join(workdir, f'initial_subset_{n}.index')
  else:
    path = os.path.join(workdir, 'proxy', str(n), f'labeled_{n}.index')
  if results.is_writer():
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savetxt(path, indices, fmt='%d')


def write_tables(exp: Experiment, state: RoundState):
  """Rewrites every CSV and summary from the history (idempotent on resume)."""
  history = state.history
  w = exp.workdir
  results.write_csv(os.path.join(w, 'proxy.csv'),
                    [r['selector'] for r in history if r['selector']],
                    MODEL_COLUMNS)
  results.write_csv(os.path.join(w, 'selection.csv'),
                    [r['selection'] for r in history if r['round'] > 0],
                    SELECTION_COLUMNS)
  results.write_csv(os.path.join(w, 'target.csv'),
                    [r['target'] for r in history if r['target']],
                    MODEL_COLUMNS)
  rows = [round_row(r) for r in history]
  selection_runtime = sum(r['selection_seconds'] for r in rows)
  summary = {
      'method': exp.method, 'selector': exp.selector.name,
      'target': exp.target.name, 'pool_size': len(state.labeled),
      'rounds_completed': state.round, 'rounds_total': len(exp.schedule),
      'complete': state.round == len(exp.schedule),
      # The paper's "data selection runtime": all selector training,
      # scoring and ranking over all rounds.
      'data_selection_seconds': selection_runtime,
      'target_train_seconds': sum(r['target_train_seconds'] for r in history),
      'rounds': rows,
  }
  results.write_json(os.path.join(w, 'summary.json'), summary)
  results.write_text(
      os.path.join(w, 'summary.md'),
      f'# {exp.method}: {exp.selector.name} selecting for '
      f'{exp.target.name}\n\n{results.markdown_table(rows, ROUND_COLUMNS)}\n'
      f'Data selection runtime: {selection_runtime:.1f} s '
      f'({state.round}/{len(exp.schedule)} rounds).\n')
  return summary


ROUND_COLUMNS = ('round', 'labeled', 'selector_accuracy', 'selection_seconds',
                 'selector_train_seconds', 'scoring_seconds',
                 'ranking_seconds', 'target_accuracy', 'target_train_seconds')


def round_row(record: dict[str, Any]) -> dict[str, Any]:
  """The final table's row for one round."""
  return {
      'round': record['round'], 'labeled': record['labeled'],
      'selector_accuracy': (record['selector'] or {}).get('test_accuracy', ''),
      'selection_seconds': record['selector_train_seconds']
                           + record['scoring_seconds']
                           + record['ranking_seconds'],
      'selector_train_seconds': record['selector_train_seconds'],
      'scoring_seconds': record['scoring_seconds'],
      'ranking_seconds': record['ranking_seconds'],
      'target_accuracy': (record['target'] or {}).get('test_accuracy', ''),
      'target_train_seconds': record['target_train_seconds'],
  }


def checkpoint_manager(workdir: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=2, enable_async_checkpointing=False),
      item_names=('arrays', 'history'))


def save(manager: ocp.CheckpointManager, state: RoundState):
  manager.save(state.round, args=ocp.args.Composite(
      arrays=ocp.args.StandardSave({'labeled': state.labeled,
                                    'key': state.key}),
      history=ocp.args.JsonSave(list(state.history))))
  # Synchronous: a round counts as complete once its checkpoint is on disk.
  manager.wait_until_finished()


def restore(manager: ocp.CheckpointManager) -> RoundState | None:
  step = manager.latest_step()
  if step is None:
    return None
  restored = manager.restore(step, args=ocp.args.Composite(
      arrays=ocp.args.StandardRestore(), history=ocp.args.JsonRestore()))
  arrays = restored['arrays']
  return RoundState(np.asarray(arrays['labeled'], bool), int(step),
                    np.asarray(arrays['key'], np.uint32),
                    tuple(restored['history']))


def claim_workdir(workdir: str, config: ml_collections.ConfigDict):
  """Records the config; refuses a workdir that holds a different run."""
  path = os.path.join(workdir, 'config.json')
  wanted = results.to_jsonable(config.to_dict())
  if os.path.exists(path):
    existing = results.read_json(path)
    if existing != wanted:
      differing = sorted(results.differing_keys(existing, wanted))
      raise validation.ConfigError(
          f'workdir {workdir!r} holds a run of a different config (differs '
          f'at {differing}); resume it with its own config, or choose another '
          f'--workdir. Nothing was changed.')
  else:
    results.write_json(path, wanted)


# ----------------------------------------------------------------------------
# Building and running an experiment.


def make_learners(config: ml_collections.ConfigDict, roles: Sequence[str],
                  info: data.DatasetInfo, pool: np.ndarray, test: np.ndarray
                  ) -> list[Learner]:
  """The learners of `config[role]` for each role, their inputs encoded."""
  sections = [config[role].model for role in roles]
  return [make_learner(config[role], info, pool_inputs, test_inputs)
          for role, pool_inputs, test_inputs in zip(
              roles, inputs.encode_each(sections, info, pool),
              inputs.encode_each(sections, info, test))]


def make_learner(section, info: data.DatasetInfo, pool_inputs: Any,
                 test_inputs: Any) -> Learner:
  """The selector or target of `section`; inputs as `inputs.encode` makes."""
  tc = section.train
  return Learner(
      name=section.model.name,
      model=inputs.create_model(section.model, info),
      cfg=train.step_config(tc, info),
      batch_size=tc.batch_size, eval_batch_size=tc.eval_batch_size,
      lr_schedule=tuple((int(e), float(lr)) for e, lr in tc.lr_schedule),
      pool_inputs=inputs.training_view(pool_inputs, info, tc.augment),
      test_inputs=test_inputs, pool_eval_inputs=pool_inputs)


# Settings that change how a model is evaluated, not the model trained.
_EVALUATION_ONLY = ('eval_batch_size', 'eval_every')


def same_training(a, b) -> bool:
  """Whether two learner sections train the very same model."""

  def training(section):
    train_section = {k: v for k, v in section.train.to_dict().items()
                     if k not in _EVALUATION_ONLY}
    return section.model.to_dict(), train_section

  return training(a) == training(b)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) an active-learning experiment; returns the summary."""
  validation.validate_active_config(config)
  start = time.perf_counter()
  info = data.dataset_info(config.data.name)
  pool = data.load_configured_split(config.data, info.train_split,
                                    config.data.max_train_examples)
  test = data.load_configured_split(config.data, info.test_split,
                                    config.data.max_test_examples)
  schedule = resolve_schedule(config.selection.initial_subset,
                              config.selection.rounds, len(pool[1]))
  sizes = tuple(np.cumsum(schedule)[1:].tolist())
  target_sizes = frozenset(config.selection.eval_target_at or sizes
                           if config.selection.train_target else ())
  unknown = sorted(target_sizes - set(np.cumsum(schedule).tolist()))
  if unknown:
    raise validation.ConfigError(
        f'config.selection.eval_target_at={tuple(config.selection.eval_target_at)}'
        f' has sizes {unknown} that no round reaches; labeled-set sizes are '
        f'{tuple(np.cumsum(schedule).tolist())}')
  # Random selection trains no selector, so there is nothing to reuse.
  same = (same_training(config.selector, config.target)
          and config.selection.method != 'random')
  selector, target = make_learners(config, ('selector', 'target'), info,
                                   pool[0], test[0])
  exp = Experiment(
      pool=pool, test=test, selector=selector, target=target,
      method=config.selection.method, schedule=schedule,
      target_sizes=target_sizes, mesh=sharding.make_mesh(), workdir=workdir,
      same_models=same,
      compare_with_target=config.selection.compare_with_target)

  claim_workdir(workdir, config)
  manager = checkpoint_manager(workdir)
  state = restore(manager)
  if state is None:
    key = jax.random.key_data(jax.random.key(config.seed))
    state = RoundState(np.zeros(len(pool[1]), bool), 0,
                       np.asarray(key, np.uint32), ())
  else:
    logging.info('Resuming %s after round %d of %d (%d labeled)', workdir,
                 state.round - 1, len(schedule), int(state.labeled.sum()))
  logging.info('Active learning on %s: pool %d, test %d, schedule %s, '
               'selector %s, target %s, method %s, %d device(s)',
               config.data.name, len(pool[1]), len(test[1]), list(schedule),
               exp.selector.name, exp.target.name, exp.method,
               exp.mesh.size)
  while state.round < len(schedule):
    state, _ = run_round(exp, state)
    save(manager, state)
    write_tables(exp, state)
  summary = write_tables(exp, state)
  manager.close()
  logging.info('Finished in %.0f s (this process). Rounds:\n%s',
               time.perf_counter() - start,
               results.markdown_table(summary['rounds'], ROUND_COLUMNS))
  return summary
