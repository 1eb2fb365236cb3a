"""Active learning via proxy: the round state and the loop folded over it.

A run is a fold of `run_round` over the schedule [initial, +add_1, +add_2, ...]:
round 0 labels a uniform random initial subset; every later round trains the
selector from scratch on all labels so far, scores the pool with its
last-epoch weights and labels the `add_r` points its selection method
(svp_jax.methods) picks. The target is trained from scratch at the
configured labeled-set sizes.

A round's selection, `round_step` (the baseline reuse rule, then the
method's picks), is the labeling loop's too (svp_jax.labeling): people
answer what it picks.

`run_round(exp, state) -> (state, output)` is pure of files: everything that
carries from one round to the next is in `RoundState`, including the target
a baseline run reuses as its next selector. The driver (`run`) writes each
round's index file, agreement scores, checkpoint and tables after the round,
so a killed run resumes at the last complete round and does exactly what an
uninterrupted run does, reuse included.

Files (workdir, svp_jax.run_files): proxy.csv, selection.csv, target.csv with
the reference's columns; proxy/<n>/labeled_<n>.index for every labeled set
(one index per line) and initial_subset_<n>.index; agreement/round_<r>.npz
with `selection.compare_with_target`; summary.json and summary.md;
config.json; checkpoints/ (orbax).
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

from svp_jax import experiment
from svp_jax import methods
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import timing
from svp_jax import train
from svp_jax import validation
from svp_jax import workdir_lock


@dataclasses.dataclass(frozen=True)
class RoundState:
  """Everything that carries from one round to the next (and is saved)."""

  labeled: np.ndarray  # bool [pool]: labeled so far.
  round: int  # Rounds completed.
  key: np.ndarray  # uint32 key data of the run's root key.
  history: tuple[dict[str, Any], ...]  # One record per completed round.
  # The target trained at the end of the last round, kept when the next
  # round reuses it: as its selector (a baseline run, whose selector trains
  # exactly as its target) or for the agreement scores.
  last_target: experiment.Fit | None = None


@dataclasses.dataclass(frozen=True)
class RoundOutput:
  """What a round produced besides the new state: for the driver to write."""

  record: dict[str, Any]  # The round's entry of `RoundState.history`.
  # Proxy and target scores of the pool (run_files.AGREEMENT_ARRAYS), with
  # `compare_with_target`.
  agreement: dict[str, np.ndarray] | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Experiment:
  """What stays fixed during a run."""

  job: experiment.Job
  method: methods.SelectionMethod
  schedule: tuple[int, ...]  # Points labeled in round 0, 1, 2, ...
  target_sizes: frozenset[int]
  # Baseline runs (selector == target) reuse the target trained at the end of
  # one round as the next round's selector instead of training it twice.
  same_models: bool = False
  # Also score the pool with a target trained on the same labels and save
  # both score vectors (agreement/round_<r>.npz) for the report.
  compare_with_target: bool = False
  # When trainings save inside a round, when the run is hung
  # (config.preemption).
  preemption_policy: preemption.Policy = preemption.Policy()


# ----------------------------------------------------------------------------
# Schedule.


def resolve_schedule(initial: float, rounds: Sequence[float],
                     pool_size: int) -> tuple[int, ...]:
  """[initial, add_1, ...] as counts; the total must fit in the pool."""
  sizes = (experiment.resolve_size('selection.initial_subset', initial,
                                   pool_size),) + tuple(
                                       experiment.resolve_size(
                                           f'selection.rounds[{i}]', v,
                                           pool_size)
                                       for i, v in enumerate(rounds))
  if sum(sizes) > pool_size:
    raise validation.ConfigError(
        f'config.selection: initial_subset + rounds = {list(sizes)} add up to '
        f'{sum(sizes)} examples, more than the pool of {pool_size}')
  return sizes


def resolve_target_sizes(selection: ml_collections.ConfigDict,
                         schedule: tuple[int, ...]) -> frozenset[int]:
  """Labeled-set sizes at which the target trains; each must be reached."""
  reached = tuple(np.cumsum(schedule).tolist())
  if not selection.train_target:
    return frozenset()
  sizes = frozenset(selection.eval_target_at or reached[1:])
  unknown = sorted(sizes - set(reached))
  if unknown:
    raise validation.ConfigError(
        f'config.selection.eval_target_at={tuple(selection.eval_target_at)}'
        f' has sizes {unknown} that no round reaches; labeled-set sizes are '
        f'{reached}')
  return sizes


# ----------------------------------------------------------------------------
# One round.


def _root_key(state: RoundState) -> jax.Array:
  return jax.random.wrap_key_data(state.key)


def fit_role(exp: Experiment, role: str, indices: np.ndarray, state: RoundState,
         why: str = '', **kwargs) -> experiment.Fit:
  """Trains the selector or target (`role`) on `indices`.

  Its progress is saved in the round's training checkpoints, under the role
  and the labeled-set size: the key is theirs too, so a target trained for
  the agreement and one trained for the round are the same training.
  """
  preemption.raise_if_stop_requested(
      f'before training the {role} on {len(indices)} labels')
  label = f'{role} {why}'.strip()
  checkpoints = preemption.TrainingCheckpoints(
      os.path.join(round_checkpoints_dir(exp.job.workdir),
                   f'{role}_{len(indices)}'),
      exp.preemption_policy,
      f'{label} {exp.job.learners[role].name} n={len(indices)}')
  try:
    return experiment.fit(exp.job, exp.job.learners[role], indices,
                          experiment.train_key(state.key, role, len(indices)),
                          label, checkpoints=checkpoints, **kwargs)
  finally:
    checkpoints.close()


def round_checkpoints_dir(workdir: str) -> str:
  """The trainings of the round in progress (removed once it is done)."""
  return os.path.join(workdir, run_files.ROUND_CHECKPOINTS)


def _reusable_target(state: RoundState, size: int) -> experiment.Fit | None:
  last = state.last_target
  return last if last is not None and last.row['nexamples'] == size else None


def selector_fit(exp: Experiment, state: RoundState,
                 indices: np.ndarray) -> experiment.Fit:
  """The selector trained on `indices`, or the target it may reuse."""
  reused = _reusable_target(state, len(indices)) if exp.same_models else None
  if reused is not None:
    logging.info('selector: reusing the target trained on %d labels',
                 len(indices))
    return reused
  return fit_role(exp, 'selector', indices, state,
              track_forgetting=exp.method.counts_forgetting)


def agreement_scores(exp: Experiment, state: RoundState, indices: np.ndarray,
                     selector_scores: np.ndarray, k: int
                     ) -> dict[str, np.ndarray]:
  """The selector's and a same-labels target's pool scores.

  Not part of the selection (nor its timing): evidence that the proxy ranks
  points as the target would. The target trained on these labels at the end
  of the previous round is reused when there is one.
  """
  target = _reusable_target(state, len(indices)) or fit_role(
      exp, 'target', indices, state, '(for agreement)')
  target_scores = experiment.method_scores(exp.job, exp.job.target,
                                           exp.method, target, state.labeled)
  return {'proxy': selector_scores.astype(np.float32),
          'target': target_scores.astype(np.float32),
          'labeled': state.labeled, 'k': np.int64(k)}


def select(exp: Experiment, state: RoundState, k: int,
           excluded: np.ndarray | None = None
           ) -> tuple[np.ndarray, dict[str, Any]]:
  """Picks k new points; returns them and what the selection measured.

  `excluded` (bool [pool]) are points never picked besides the labeled ones
  (a labeling loop's test examples): scored and ranked as labeled points
  are, so k-centers counts them among its centers; the selector never
  trains on them.
  """
  method = exp.method if state.round > 0 else methods.get('random')
  taken = state.labeled if excluded is None else state.labeled | excluded
  pick_key = jax.random.fold_in(
      jax.random.fold_in(_root_key(state), state.round), experiment.SELECT)
  measured = {'selector': None, 'scoring_seconds': 0.0, 'agreement': None,
              'trained': None}
  compiling = 0.0
  scores = None
  if method.trains_selector:
    indices = np.flatnonzero(state.labeled)
    trained = selector_fit(exp, state, indices)
    preemption.raise_if_stop_requested('before scoring the pool')
    scores, scoring = timing.timed(
        experiment.method_scores, exp.job, exp.job.selector, method,
        trained, taken)
    measured.update(selector=trained.row, trained=trained,
                    scoring_seconds=scoring.run_seconds)
    compiling += scoring.compile_seconds
    if exp.compare_with_target:
      measured['agreement'] = agreement_scores(exp, state, indices, scores, k)
  with preemption.unwatched(f'ranking by {method.name}'):
    picked, ranking = timing.timed(
        lambda: np.asarray(jax.device_get(
            method.pick(scores, taken, k, pick_key, exp.job.mesh))))
  measured['ranking_seconds'] = ranking.run_seconds
  # Compiling for this selection (scoring and ranking), kept out of their
  # seconds and reported as its own column.
  measured['selection_compile_seconds'] = compiling + ranking.compile_seconds
  return picked, measured


def with_reused_target(exp: Experiment, state: RoundState) -> RoundState:
  """`state` holding the target a baseline's selector reuses this round.

  A baseline (the selector trains exactly as the target) selects with the
  target trained on the round's labels when the target trains at that size.
  A simulated run kept it from the end of the last round; a labeling loop,
  one process per round, trains it again here: the same training (key and
  checkpoints are the role's and the size's), so the same weights.
  """
  size = int(state.labeled.sum())
  if (not exp.same_models or state.round == 0 or size not in exp.target_sizes
      or _reusable_target(state, size) is not None):
    return state
  return dataclasses.replace(state, last_target=fit_role(
      exp, 'target', np.flatnonzero(state.labeled), state))


def round_step(exp: Experiment, state: RoundState, k: int,
               excluded: np.ndarray | None = None
               ) -> tuple[np.ndarray, dict[str, Any]]:
  """One round's selection of `k` points from `state`: the baseline reuse
  rule, then `select`. The simulated run (run_round) and the labeling loop
  (svp_jax.labeling) both select through here."""
  logging.info('round %d: selecting %d of %d unlabeled points by %s',
               state.round, k, int((~state.labeled).sum()),
               'random' if state.round == 0 else exp.method.name)
  return select(exp, with_reused_target(exp, state), k, excluded)


def run_round(exp: Experiment, state: RoundState
              ) -> tuple[RoundState, RoundOutput]:
  """Selects this round's points, then trains the target if due."""
  k = exp.schedule[state.round]
  before = int(state.labeled.sum())
  picked, measured = round_step(exp, state, k)
  if jax.process_count() > 1:
    # Every process selects from the same gathered scores; if they ever
    # disagreed they would train on different sets and write a mixed run.
    multihost_utils.assert_equal(picked, 'processes selected different points')
  labeled = state.labeled.copy()
  labeled[picked] = True
  size = before + k
  assert int(labeled.sum()) == size, 'a selection repeated or relabeled points'

  selector_row = measured['selector']
  selection_compile = measured['selection_compile_seconds']
  record = {
      'round': state.round, 'labeled': size,
      'selector_train_seconds': selector_row['train_time'] if selector_row
                                else 0.0,
      'encoding_seconds': selector_encoding_seconds(exp, state.round),
      'scoring_seconds': measured['scoring_seconds'],
      'ranking_seconds': measured['ranking_seconds'],
      # The selector's training compile and this selection's (rows of runs
      # written before issue 23 have no compile_time).
      'compile_seconds': selection_compile + (
          selector_row.get('compile_time', 0.0) if selector_row else 0.0),
      'selector': selector_row,
      'selection': run_files.selection_row(size, before,
                                           measured['scoring_seconds'],
                                           measured['ranking_seconds'],
                                           selection_compile),
      'target': None, 'target_train_seconds': 0.0,
  }
  target = None
  if size in exp.target_sizes:
    target = fit_role(exp, 'target', np.flatnonzero(labeled), state)
    record.update(target=target.row,
                  target_train_seconds=target.row['train_time'])
  log_round(record)
  kept = target if keeps_target(exp, state.round + 1) else None
  return (RoundState(labeled, state.round + 1, state.key,
                     state.history + (record,), kept),
          RoundOutput(record, measured['agreement']))


def selector_encoding_seconds(exp: Experiment, round_index: int) -> float:
  """The selector's pool encoding (text), charged once, to round 1.

  Round 1 is the first selection that reads it (round 0 is random). The run
  encodes once, where the reference re-read and re-encoded its text in every
  timed selection (BUILD.md, "Text datasets"); a resumed process encodes
  again, uncharged, as it compiles again.
  """
  if round_index != 1 or not exp.method.trains_selector:
    return 0.0
  return exp.job.selector.pool_encoding_seconds


def keeps_target(exp: Experiment, next_round: int) -> bool:
  """Whether round `next_round` may reuse the target trained just before."""
  return (next_round < len(exp.schedule)
          and (exp.same_models or exp.compare_with_target))


def log_round(record: dict[str, Any]):
  logging.info(
      'round %d done: %d labeled; selector train %.1f s, encoding %.1f s, '
      'scoring %.1f s, ranking %.2f s, compiling %.1f s, target train %.1f s',
      record['round'], record['labeled'], record['selector_train_seconds'],
      record.get('encoding_seconds', 0.0), record['scoring_seconds'],
      record['ranking_seconds'],
      record.get('compile_seconds', 0.0), record['target_train_seconds'])


# ----------------------------------------------------------------------------
# Files and checkpoints (the driver's).


def write_round_files(workdir: str, state: RoundState, output: RoundOutput):
  """The labeled set's index file and the round's agreement scores."""
  indices = np.flatnonzero(state.labeled)
  round_index = state.round - 1
  experiment.write_index(
      run_files.labeled_index_path(workdir, len(indices), round_index == 0),
      indices)
  if output.agreement is not None and results.is_writer():
    with results.atomic_open(run_files.agreement_path(workdir, round_index),
                             'wb') as f:
      np.savez(f, **output.agreement)


def write_tables(exp: Experiment, state: RoundState) -> dict[str, Any]:
  """Rewrites every CSV and summary from the history (idempotent on resume)."""
  history = state.history

  def path(name):
    return os.path.join(exp.job.workdir, name)

  results.write_csv(path(run_files.PROXY_CSV),
                    [r['selector'] for r in history if r['selector']],
                    run_files.MODEL_COLUMNS)
  results.write_csv(path(run_files.SELECTION_CSV),
                    [r['selection'] for r in history if r['round'] > 0],
                    run_files.SELECTION_COLUMNS)
  results.write_csv(path(run_files.TARGET_CSV),
                    [r['target'] for r in history if r['target']],
                    run_files.MODEL_COLUMNS)
  rows = [run_files.round_row(r) for r in history]
  selection_runtime = sum(r['selection_seconds'] for r in rows)
  summary = {
      'method': exp.method.name, 'selector': exp.job.selector.name,
      'target': exp.job.target.name, 'pool_size': len(state.labeled),
      'rounds_completed': state.round, 'rounds_total': len(exp.schedule),
      'complete': state.round == len(exp.schedule),
      # The paper's "data selection runtime": all selector training,
      # scoring and ranking over all rounds.
      'data_selection_seconds': selection_runtime,
      'target_train_seconds': sum(r['target_train_seconds'] for r in history),
      'rounds': rows,
  }
  results.write_json(path(run_files.SUMMARY_JSON), summary)
  results.write_text(
      path(run_files.SUMMARY_MD),
      f'# {exp.method.name}: {exp.job.selector.name} selecting for '
      f'{exp.job.target.name}\n\n'
      f'{results.markdown_table(rows, run_files.ROUND_COLUMNS)}\n'
      f'Data selection runtime: {selection_runtime:.1f} s '
      f'({state.round}/{len(exp.schedule)} rounds).\n')
  return summary


_ITEMS = ('arrays', 'history', 'last_target', 'last_target_row')


def checkpoint_manager(workdir: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, run_files.CHECKPOINTS)),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=2, enable_async_checkpointing=False),
      item_names=_ITEMS)


def save(manager: ocp.CheckpointManager, state: RoundState):
  items = {
      'arrays': ocp.args.StandardSave({'labeled': state.labeled,
                                       'key': state.key}),
      'history': ocp.args.JsonSave(list(state.history))}
  if state.last_target is not None:
    items.update(
        last_target=ocp.args.StandardSave(state.last_target.state),
        last_target_row=ocp.args.JsonSave(state.last_target.row))
  try:
    manager.save(state.round, args=ocp.args.Composite(**items))
    # Synchronous: a round counts as complete once its checkpoint is on disk.
    manager.wait_until_finished()
  except Exception as e:  # pylint: disable=broad-except
    # orbax writes to a temporary folder and renames it when complete: the
    # previous rounds' checkpoints are intact.
    raise results.WriteError(
        getattr(e, 'errno', None),
        f'cannot save the round-{state.round} checkpoint in '
        f'{manager.directory}: {e}; the earlier checkpoints are intact') from e


def restore(manager: ocp.CheckpointManager,
            exp: Experiment) -> RoundState | None:
  """The newest readable saved state (None if nothing was saved).

  A checkpoint that cannot be read (truncated, corrupt) is moved aside as
  `<round>.unreadable` with a warning, and the one before it is used: the
  rounds after it run again and select exactly what they selected. If none
  can be read, the run fails naming the folder.
  """
  steps = sorted(manager.all_steps(), reverse=True)
  for step in steps:
    try:
      return _restore_step(manager, exp, step)
    except Exception as e:  # pylint: disable=broad-except
      path = os.path.join(str(manager.directory), str(step))
      logging.warning('Checkpoint %s cannot be read (%s: %s); moving it '
                      'aside to %s.unreadable and trying the one before.',
                      path, type(e).__name__, str(e).splitlines()[0], path)
      if results.is_writer():
        os.replace(path, f'{path}.unreadable')
      manager.reload()
  if steps:
    raise validation.ConfigError(
        f'no readable checkpoint in {manager.directory} (each was moved aside '
        'as <round>.unreadable); to start this run over, move the workdir '
        'aside or delete its checkpoints folder')
  return None


def _restore_step(manager: ocp.CheckpointManager, exp: Experiment,
                  step: int) -> RoundState:
  items = {'arrays': ocp.args.StandardRestore(),
           'history': ocp.args.JsonRestore()}
  saved = os.listdir(os.path.join(str(manager.directory), str(step)))
  if 'last_target' in saved:
    target = exp.job.target
    items.update(
        last_target=ocp.args.StandardRestore(train.abstract_state(
            target.model, target.pool_inputs.shape[1:], target.cfg,
            exp.job.mesh)),
        last_target_row=ocp.args.JsonRestore())
  restored = manager.restore(step, args=ocp.args.Composite(**items))
  last_target = None
  if 'last_target' in saved:
    last_target = experiment.Fit(restored['last_target'],
                                 restored['last_target_row'])
  arrays = restored['arrays']
  state = RoundState(np.asarray(arrays['labeled'], bool), int(step),
                     np.asarray(arrays['key'], np.uint32),
                     tuple(restored['history']), last_target)
  if (len(state.history) != step
      or int(state.labeled.sum()) != sum(exp.schedule[:step])):
    raise ValueError(f'its {len(state.history)} rounds and '
                     f'{int(state.labeled.sum())} labels do not match round '
                     f'{step} of the schedule {list(exp.schedule)}')
  return state


def check_index_files(workdir: str, state: RoundState):
  """At a resume: the index files of the rounds done agree with the state.

  The newest labeled set is in the checkpoint: a missing, truncated or
  different file of it is written again (with a warning). An earlier round's
  file cannot be rebuilt: if it is unreadable or inconsistent the run stops,
  naming it.
  """
  labeled = np.flatnonzero(state.labeled)
  sizes = [int(record['labeled']) for record in state.history]
  for round_index, size in enumerate(sizes):
    path = run_files.labeled_index_path(workdir, size, round_index == 0)
    try:
      indices = experiment.read_index(path)
    except (OSError, ValueError):
      indices = None
    newest = round_index == len(sizes) - 1
    if newest:
      if indices is None or not np.array_equal(indices, labeled):
        logging.warning('%s is missing or differs from the checkpoint; '
                        'writing it again from the checkpoint.', path)
        experiment.write_index(path, labeled)
    elif (indices is None or len(indices) != size
          or not np.all(np.isin(indices, labeled))):
      raise validation.ConfigError(
          f'{path} is missing or corrupt (expected the {size} pool indices '
          f'labeled after round {round_index}); the checkpoint keeps only the '
          'newest labeled set, so it cannot be rebuilt: restore it from a '
          'copy, or start the run over in a new workdir')


# ----------------------------------------------------------------------------
# Building and running an experiment.


def reuses_target(config: ml_collections.ConfigDict,
                  method: methods.SelectionMethod) -> bool:
  """Whether selectors are the last target (a baseline: Experiment.same_models).

  A method that trains no selector has nothing to reuse; one that counts
  forgetting events needs a selector that counted them.
  """
  return (run_files.same_training(config.selector, config.target)
          and method.trains_selector and not method.counts_forgetting)


def make_experiment(config: ml_collections.ConfigDict, workdir: str,
                    require_labels: bool = True) -> Experiment:
  """The fixed parts of a run: data, learners, schedule, method.

  A labeling loop (svp_jax.labeling) builds its experiment here too, without
  `require_labels`: people answer for the unlabeled examples.
  """
  job = experiment.load_job(config, workdir, {'selector': config.selector,
                                              'target': config.target},
                            require_labels=require_labels)
  schedule = resolve_schedule(config.selection.initial_subset,
                              config.selection.rounds, job.pool_size)
  method = methods.get(config.selection.method)
  return Experiment(
      job=job, method=method, schedule=schedule,
      target_sizes=resolve_target_sizes(config.selection, schedule),
      same_models=reuses_target(config, method),
      compare_with_target=config.selection.compare_with_target,
      preemption_policy=preemption.Policy.from_config(config))


def initial_state(config: ml_collections.ConfigDict,
                  pool_size: int) -> RoundState:
  return RoundState(np.zeros(pool_size, bool), 0,
                    experiment.root_key_data(config.seed), ())


@workdir_lock.holds_workdir
def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) an active-learning experiment; returns the summary."""
  validation.validate_active_config(config)
  start = time.perf_counter()
  # From here on SIGTERM and SIGINT only request a stop (svp_jax.preemption).
  with preemption.guard(preemption.Policy.from_config(config)):
    exp = make_experiment(config, workdir)
    experiment.claim_workdir(workdir, config)
    manager = checkpoint_manager(workdir)
    state = restore(manager, exp)
    if state is None:
      state = initial_state(config, exp.job.pool_size)
    else:
      logging.info('Resuming %s after round %d of %d (%d labeled)', workdir,
                   state.round - 1, len(exp.schedule),
                   int(state.labeled.sum()))
      check_index_files(workdir, state)
    logging.info('Active learning on %s: pool %d, test %d, schedule %s, '
                 'selector %s, target %s, method %s, %d device(s)',
                 config.data.name, exp.job.pool_size, len(exp.job.test[1]),
                 list(exp.schedule), exp.job.selector.name,
                 exp.job.target.name, exp.method.name, exp.job.mesh.size)
    while state.round < len(exp.schedule):
      preemption.raise_if_stop_requested(f'before round {state.round}')
      state, output = run_round(exp, state)
      write_round_files(workdir, state, output)
      save(manager, state)
      # The round is complete on disk: its trainings need no resuming.
      preemption.remove(round_checkpoints_dir(workdir))
      write_tables(exp, state)
  summary = write_tables(exp, state)
  manager.close()
  logging.info('Finished in %.0f s (this process). Rounds:\n%s',
               time.perf_counter() - start,
               results.markdown_table(summary['rounds'],
                                      run_files.ROUND_COLUMNS))
  return summary
