"""The experiment core: what every job (train, active, core-set, precomputed)
is built from.

* `load_job`: a config's data (pool and test split), each model's encoding
  of it, its learners and the device mesh, loaded once;
* `fit`: train a learner from scratch on some pool indices and test it,
  giving the trained state and its proxy.csv / target.csv row;
* `method_scores`: what a selection method ranks by, from a trained
  selector (its own scoring: svp_jax.methods);
* key derivation: every random draw of a run comes from its root key
  (`config.seed`) folded with a purpose, so a resumed run draws again what an
  uninterrupted one drew;
* `claim_workdir`: one workdir, one config, one process at a time
  (svp_jax.workdir_lock);
* `resolve_size`: sizes given as pool fractions or counts.

The files a run writes, and their columns, are svp_jax.run_files (kept apart
so that readers need no JAX).
"""

from collections.abc import Callable, Mapping, Sequence
import dataclasses
import os
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np

from svp_jax import data
from svp_jax import methods
from svp_jax import model_registry
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import scoring
from svp_jax import sharding
from svp_jax import timing
from svp_jax import train
from svp_jax import validation
from svp_jax import workdir_lock
from svp_jax.data import own_files

# Purposes folded into a run's root key. Active learning: the initial draw
# and each round's random picks fold the round, then SELECT; a target's
# training folds TRAIN and a selector's SELECTOR_TRAIN, then the size of its
# labeled set. Core-set: the k-centers seeds fold CORESET_SEEDS and random
# subsets CORESET_RANDOM, fixed, so that a method's draws do not depend on
# which other methods run with it.
INITIAL, TRAIN, SELECT, SELECTOR_TRAIN = 0, 1, 2, 3
# A labeling loop's test examples (config.labeling.test_examples): folded
# once, far above any round index a schedule reaches, so the draw shares no
# stream with the rounds' picks or the trainings.
LABELING_TEST = 1 << 20
CORESET_SEEDS, CORESET_RANDOM = 0, 1
# Each role's training stream. The target keeps TRAIN, the stream every
# training used before issue 21, so target-only runs (random selection) are
# unchanged; selectors got their own stream then.
TRAINING_STREAMS = {'target': TRAIN, 'selector': SELECTOR_TRAIN}


@dataclasses.dataclass(frozen=True, eq=False)
class Learner:
  """A model, its full training recipe and its inputs (selector or target)."""

  name: str
  model: Any
  cfg: train.StepConfig
  batch_size: int
  eval_batch_size: int
  lr_schedule: tuple[tuple[int, float], ...]
  # The pool and test examples as this model reads them (its registry
  # entry's encoding, svp_jax.model_registry): the loaded arrays themselves
  # for images, an encoding for text. Training
  # reads `pool_inputs`; scoring reads `pool_eval_inputs`, which differ only
  # where augmentation happens while decoding (ImageNet's crops).
  pool_inputs: Any = None
  test_inputs: Any = None
  pool_eval_inputs: Any = None
  # Seconds this process took to encode the pool for this model (text; 0 for
  # images). A selector's counts in the data-selection runtime: the
  # reference re-encoded its text inside its timed selection.
  pool_encoding_seconds: float = 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class Job:
  """What stays fixed while a job runs."""

  info: data.DatasetInfo
  pool: tuple[Any, np.ndarray]  # As loaded: (examples, labels).
  test: tuple[Any, np.ndarray]
  learners: Mapping[str, Learner]  # By role: selector, target (train: model).
  mesh: Any
  workdir: str

  @property
  def pool_size(self) -> int:
    return len(self.pool[1])

  @property
  def selector(self) -> Learner | None:
    return self.learners.get('selector')

  @property
  def target(self) -> Learner:
    return self.learners['target']


@dataclasses.dataclass(frozen=True)
class Fit:
  """A learner trained and tested: its state and its MODEL_COLUMNS row."""

  state: train.TrainState
  row: dict[str, Any]
  forgetting: dict[str, jax.Array] | None = None  # Counters, if tracked.


# ----------------------------------------------------------------------------
# Building a job.


def load_job(config: ml_collections.ConfigDict, workdir: str,
             sections: Mapping[str, Any], require_labels: bool = True) -> Job:
  """Loads the data of `config` and builds a learner per role of `sections`.

  `sections` maps a role to the config section holding its `model` and
  `train` (config.selector, config.target; a train job's config itself).
  With `require_labels`, a pool with unlabeled examples (data.UNLABELED) is
  a DataError: only the labeling loop (svp_jax.labeling) asks for labels.
  """
  # Loading may wait on a download at little CPU: not a hang (the
  # preemption watchdog leaves it alone).
  with preemption.unwatched('loading the data'):
    info = data.configured_info(config.data, config.seed)
    pool = data.load_configured_split(config.data, info.train_split,
                                      config.data.max_train_examples,
                                      config.seed)
    test = data.load_configured_split(config.data, info.test_split,
                                      config.data.max_test_examples,
                                      config.seed)
    check_test_labeled(config.data, info.test_split, test[1])
    if require_labels:
      check_all_labeled(pool[1], f'{config.data.name} {info.train_split} split')
    roles = tuple(sections)
    models = [sections[role].model for role in roles]
    # Models that read the same encoding share one (svp_jax.model_registry).
    encoded = zip(model_registry.encode_each_timed(models, pool[0]),
                  model_registry.encode_each(models, test[0]))
    learners = {role: make_learner(sections[role], info, pool_inputs,
                                   test_inputs, pool_seconds)
                for role, ((pool_inputs, pool_seconds), test_inputs)
                in zip(roles, encoded)}
  return Job(info=info, pool=pool, test=test, learners=learners,
             mesh=sharding.make_mesh(), workdir=workdir)


def check_all_labeled(labels: np.ndarray, what: str):
  """DataError unless every example has a class: runs here simulate the
  labeler with the labels they already have."""
  unlabeled = int((labels == data.UNLABELED).sum())
  if unlabeled:
    raise data.DataError(
        f'{what}: {unlabeled} of its {len(labels)} examples are unlabeled '
        f'(label {data.UNLABELED}); a simulated run (mode active, coreset, '
        'train) needs every label. Label them (mode label: README, "On your '
        'own data"), or move them out of the data.')


def check_test_labeled(section, split: str, labels: np.ndarray):
  """DataError if a TFDS test split has unlabeled examples (label -1: STL10's
  `unlabelled`, a `unsupervised` split): no accuracy can be measured on it.

  A user's own files are the labeling loop's to judge (svp_jax.data.files).
  """
  if section.name == data.files.NAME:
    return
  unlabeled = int((labels == data.UNLABELED).sum())
  if unlabeled:
    raise data.DataError(
        f'config.data.test_split={split!r} of {section.name}: {unlabeled} of '
        f'its {len(labels)} examples have no label (TFDS gives them '
        f'{data.UNLABELED}), so no test accuracy can be measured on it. Set '
        'config.data.test_split to a labeled split of the dataset (its '
        "'test' split, say).")


def make_learner(section, info: data.DatasetInfo, pool_inputs: Any,
                 test_inputs: Any, pool_encoding_seconds: float = 0.0
                 ) -> Learner:
  """The learner of `section`; inputs as its model's encoding makes them
  (model_registry.encode_each).

  Training reads the pool's training view: streamed ImageNet loads as an
  eval view (resize + center crop, what pool scoring and testing read), and
  trains on its random-resized-crop view when the recipe augments.
  """
  tc = section.train
  train_view = (pool_inputs.with_mode('train')
                if info.host_augmentation and tc.augment else pool_inputs)
  return Learner(
      name=section.model.name,
      model=model_registry.create_model(section.model, info),
      cfg=train.step_config(tc, info),
      batch_size=tc.batch_size, eval_batch_size=tc.eval_batch_size,
      lr_schedule=tuple((int(e), float(lr)) for e, lr in tc.lr_schedule),
      pool_inputs=train_view,
      test_inputs=test_inputs, pool_eval_inputs=pool_inputs,
      pool_encoding_seconds=pool_encoding_seconds)


# ----------------------------------------------------------------------------
# Training, testing and scoring.


def fit(job: Job, learner: Learner, indices: np.ndarray, key: jax.Array,
        role: str, *, track_forgetting: bool = False,
        checkpoints: preemption.TrainingCheckpoints | None = None) -> Fit:
  """Trains `learner` from scratch on pool `indices`, then tests it.

  With `checkpoints`, a training saved there resumes where it stopped; its
  train_time then adds the wall seconds trained before the resume, and
  leaves out the seconds spent saving.
  """
  result, training = timing.timed(
      train.train_model, key, learner.model, learner.cfg, learner.pool_inputs,
      job.pool[1], indices, batch_size=learner.batch_size,
      lr_schedule=learner.lr_schedule, mesh=job.mesh,
      log_prefix=f'{role} {learner.name} n={len(indices)}',
      track_forgetting=track_forgetting, checkpoints=checkpoints)
  # Saving progress is the run's insurance, not the training's arithmetic;
  # a resumed training adds what it trained before.
  train_seconds = training.run_seconds + result.resumed_seconds - (
      checkpoints.save_seconds if checkpoints is not None else 0.0)
  accuracy, test_seconds = float('nan'), 0.0  # No test split: none.
  if len(job.test[1]):
    test, testing = timing.timed(
        train.evaluate, result.state, learner.model, learner.cfg,
        learner.test_inputs, job.test[1], learner.eval_batch_size, job.mesh)
    accuracy, test_seconds = test['accuracy'], testing.seconds
  # The row's train_time is the training's arithmetic, its compile_time
  # the training's compiling; test_time is the test's wall time (testing is
  # not part of a selection's cost).
  row = run_files.model_row(len(indices), result.history[-1]['train_accuracy'],
                            accuracy, train_seconds, test_seconds,
                            training.compile_seconds)
  logging.info('%s %s trained on %d labels in %.1f s (%.1f s of it '
               'compiling): %s', role, learner.name, len(indices),
               training.seconds, training.compile_seconds,
               f'test accuracy {accuracy:.4f}' if len(job.test[1])
               else 'no test split')
  return Fit(result.state, row, result.forgetting)


def with_pool_test(job: Job, indices: np.ndarray) -> Job:
  """`job` tested on its pool examples `indices`, with the pool's labels.

  A labeling loop whose files bring no test split asks people for some pool
  examples' labels and tests on them (config.labeling.test_examples); they
  are never trained on nor selected.
  """
  indices = np.asarray(indices, np.int64)
  learners = {role: dataclasses.replace(
      learner, test_inputs=learner.pool_eval_inputs[indices])
              for role, learner in job.learners.items()}
  return dataclasses.replace(job, learners=learners,
                             test=(job.pool[0][indices], job.pool[1][indices]))


def method_scores(job: Job, learner: Learner, method: methods.SelectionMethod,
                  trained: Fit, labeled: np.ndarray | None = None
                  ) -> np.ndarray | None:
  """What `method` ranks by, from a selector `learner` trained as `trained`.

  The method's own scoring (svp_jax.methods): none (None), its function of
  the selector's training record, or its per-batch function run over the
  pool by the one shared scoring loop on the job's mesh; `labeled` (bool
  [pool]) are the points it may not pick, which a method that scores only
  unlabeled points leaves NaN. (The loop lives in svp_jax.scoring, which
  imports the method registry, so the registry does not call it.)
  """
  scored_by = method.scoring
  if scored_by is None:
    return None
  if isinstance(scored_by, methods.FromTraining):
    # Counted over the whole pool while the selector trained.
    return scored_by.fn(trained.forgetting)
  return scoring.pool_scores(
      trained.state, learner.model, learner.cfg, learner.pool_eval_inputs,
      scored_by, batch_size=learner.eval_batch_size, mesh=job.mesh,
      labeled=labeled)


# ----------------------------------------------------------------------------
# Keys.


def root_key_data(seed: int) -> np.ndarray:
  """The uint32 data of a run's root key (what checkpoints store)."""
  return np.asarray(jax.random.key_data(jax.random.key(seed)), np.uint32)


def train_key(key_data: np.ndarray, role: str, size: int) -> jax.Array:
  """The key of a `role` ('selector' or 'target') training on `size` labels.

  Selector and target trainings draw independent initialisations, batch
  orders and augmentations, as the reference's separate runs did; sharing
  them made a proxy of the target's architecture repeat the target's first
  epochs, and measured their agreement between runs that shared randomness
  (docs/results/fashion_mnist_agreement_randomness/). The baseline,
  where the target selects for itself, reuses the target's training itself,
  not its key.
  """
  return jax.random.fold_in(
      jax.random.fold_in(jax.random.wrap_key_data(key_data),
                         TRAINING_STREAMS[role]), size)


# ----------------------------------------------------------------------------
# Workdirs and sizes.


# Config keys (or whole sections) that say how a run operates, not what it
# computes: a run may be resumed with other values, and a labeling loop's
# commands differ in their labeling.action and labeling.answers only.
RUN_OPERATION_KEYS = ('preemption', 'labeling.action', 'labeling.answers',
                      'data.download')
# Keys added to the configs after runs were made: a recorded config without
# one matches a config holding this value (what the run did without it).
ADDED_KEY_DEFAULTS = {'data.train_split': '', 'data.test_split': '',
                      'data.class_names': [],  # As JSON reads it.
                      'labeling.test_examples': 0}


def is_run_operation_key(dotted: str) -> bool:
  """Whether config key `dotted` ('a.b.c') is or lies in RUN_OPERATION_KEYS."""
  return any(dotted == k or dotted.startswith(f'{k}.')
             for k in RUN_OPERATION_KEYS)


# Modes whose runs go on after their schedule when it is extended.
EXTENDABLE_MODES = ('active', 'label')
SCHEDULE_KEY = 'selection.rounds'


def claim_workdir(workdir: str, config: ml_collections.ConfigDict, *,
                  still_points_at: Callable[[], str | None] | None = None):
  """Records the config; refuses a workdir that holds a different run.

  Locks the workdir first (svp_jax.workdir_lock; a no-op where the job
  holds it already). An active or labeling run whose recorded rounds are
  the start of `config`'s is the same run with its schedule extended: the
  new config is recorded. `still_points_at`: see check_same_files.
  """
  workdir_lock.acquire(workdir, str(config.get('mode')))
  path = os.path.join(workdir, run_files.CONFIG_JSON)
  wanted = results.to_jsonable(config.to_dict())
  if os.path.exists(path):
    existing = read_recorded(path, 'the config its run was started with')
    # How a run survives failures does not change what it computes.
    differing = sorted(
        key for key in results.differing_keys(existing, wanted)
        if not is_run_operation_key(key)
        and not _added_with_default(existing, wanted, key))
    if differing == [SCHEDULE_KEY] and extends_schedule(existing, wanted):
      logging.info('%s: extending config.%s from %s to %s', workdir,
                   SCHEDULE_KEY, existing['selection']['rounds'],
                   wanted['selection']['rounds'])
      results.write_json(path, wanted)
    elif differing:
      raise validation.ConfigError(
          f'workdir {workdir!r} holds a run of a different config (differs '
          f'at {differing}); resume it with its own config (or one that '
          f'only adds rounds to config.{SCHEDULE_KEY}), or choose another '
          f'--workdir. Nothing was changed.')
  else:
    results.write_json(path, wanted)
  check_same_files(workdir, config, still_points_at)


def extends_schedule(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
  """Whether `wanted` adds rounds at the end of `existing`'s schedule.

  Rounds already run keep their sizes and keys, so a run resumed with more
  rounds selects what one run with all of them from the start would.
  """
  if wanted.get('mode') not in EXTENDABLE_MODES:
    return False
  old = existing.get('selection', {}).get('rounds')
  new = wanted.get('selection', {}).get('rounds')
  return (isinstance(old, list) and isinstance(new, list)
          and len(new) > len(old) and new[:len(old)] == old)


def read_recorded(path: str, what: str) -> Any:
  """A JSON file a run recorded; ConfigError naming it if it is damaged.

  These files are written atomically, so a damaged one was changed outside
  svp_jax (or the disk failed): the run cannot know what it recorded.
  """
  try:
    return results.read_json(path)
  except ValueError as e:  # JSONDecodeError, UnicodeDecodeError.
    raise validation.ConfigError(
        f'{path} is not valid JSON ({e}); it holds {what}. Restore it from a '
        'copy, or, if this command is exactly what started the run, delete '
        'it and run again (it is then recorded anew); else choose another '
        '--workdir. Nothing was changed.') from None


def check_same_files(workdir: str, config: ml_collections.ConfigDict,
                     still_points_at: Callable[[], str | None] | None = None):
  """A run on a user's own files goes on reading the files it started on.

  Its index files and label store hold pool indices into those files: if
  they changed (another content key), resuming would point the indices at
  other examples, so the run stops instead.

  A key recorded by an older reader (own_files.FORMAT_VERSION) differs
  even for the same files. Then `still_points_at` (the labeling loop's:
  each stored label's id still names the example it was given for, or the
  problem) decides: the same examples at the same ids, and the new key is
  recorded, so a person's labels survive an upgrade; anything else stops.
  """
  if config.data.name != data.files.NAME:
    return
  folder = data.files.prepared_folder(data.LoadOptions(
      **data.registry.configured_options(config.data, config.seed)))
  key = os.path.basename(os.path.dirname(folder))
  path = os.path.join(workdir, run_files.DATA_KEY_JSON)
  current = {'path': config.data.path, 'key': key,
             'format': own_files.FORMAT_VERSION}
  if not os.path.exists(path):
    results.write_json(path, current)
    return
  recorded = read_recorded(path, 'the content key of the files its run '
                           'reads')
  if recorded.get('key') == key:
    return
  # Keys recorded before the format was recorded are format 1's.
  older = recorded.get('format', 1) != current['format']
  problem = still_points_at() if older and still_points_at else None
  if older and still_points_at and problem is None:
    logging.warning(
        '%s: its files were keyed by an older svp_jax (format %s, now %s); '
        'every stored label still names its example at its id, so the new '
        'content key %s is recorded.', workdir, recorded.get('format', 1),
        current['format'], key)
    results.write_json(path, current)
    return
  if older:
    raise validation.ConfigError(
        f'the run in {workdir!r} read config.data.path='
        f'{config.data.path!r} with an older svp_jax (file format '
        f'{recorded.get("format", 1)}, now {current["format"]}), which may '
        'order or choose the examples differently: '
        + (problem or 'its pool indices cannot be checked against the '
           'examples') + '. Start a new --workdir, or run this one with the '
        'svp_jax that started it (labels.csv holds every label with its '
        'example). Nothing was changed.')
  if recorded.get('key') != key:
    raise validation.ConfigError(
        f'the files at config.data.path={config.data.path!r} changed since '
        f'the run in {workdir!r} began (content key {recorded["key"]}, now '
        f'{key}): its pool indices would point at other examples. Put the '
        'files back, or start a new --workdir (a labeling run: export its '
        'labels first).')


def _added_with_default(existing: dict[str, Any], wanted: dict[str, Any],
                        dotted: str) -> bool:
  """Whether `dotted` is missing from `existing` and at its ADDED default."""
  if dotted not in ADDED_KEY_DEFAULTS:
    return False
  *sections, key = dotted.split('.')
  for section in sections:
    existing, wanted = existing.get(section, {}), wanted.get(section, {})
  return key not in existing and wanted.get(key) == ADDED_KEY_DEFAULTS[dotted]


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


def write_index(path: str, indices: Sequence[int] | np.ndarray):
  """Pool indices, one per line, written atomically (process 0 only)."""
  if results.is_writer():
    with results.atomic_open(path, 'wb') as f:
      np.savetxt(f, np.asarray(indices), fmt='%d')


def read_index(path: str) -> np.ndarray:
  return np.loadtxt(path, dtype=np.int64, ndmin=1)
