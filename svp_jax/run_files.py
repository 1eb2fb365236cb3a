"""The files a run writes: their names, paths and columns, in one place.

The writers (svp_jax.active, svp_jax.coreset, svp_jax.train_job) and the
readers (svp_jax.report, the benchmarks) both take the schema from here, and
the rule that makes a run a baseline (same_training).
Imports neither JAX nor NumPy, so a report can read runs without them.

A workdir holds:

  config.json             the resolved config (claims the workdir for it)
  summary.json, .md       what the run found, rewritten as it goes
  proxy.csv, target.csv   one MODEL_COLUMNS row per selector / target fit
  selection.csv           one SELECTION_COLUMNS row per selection
  metrics.jsonl           per-epoch records of a train job
  initial_subset_<n>.index, proxy/<n>/labeled_<n>.index
                          active learning's labeled sets, one pool index a
                          line (the reference's names)
  <method>/coreset_<n>.index, <method>/selection.json
                          a core-set method's subset and record
  agreement/round_<r>.npz proxy and target scores of round r
  checkpoints/            the round state (orbax)
  round_checkpoints/<role>_<n>/
                          a training of the round in progress (orbax;
                          svp_jax.preemption), removed when the round is done
  training_checkpoints/<what>/, <method>/training_checkpoints/target_<n>/
                          a train job's or core-set run's training in
                          progress (orbax), removed once its result is written
  .lock                   held by the process using the workdir
                          (svp_jax.workdir_lock)
"""

from collections.abc import Mapping
import os
from typing import Any

CONFIG_JSON = 'config.json'
# Which prepared copy of a user's own files a run reads (svp_jax.data.files).
DATA_KEY_JSON = 'data_key.json'
SUMMARY_JSON = 'summary.json'
SUMMARY_MD = 'summary.md'
PROXY_CSV = 'proxy.csv'
SELECTION_CSV = 'selection.csv'
TARGET_CSV = 'target.csv'
METRICS_JSONL = 'metrics.jsonl'
SELECTION_JSON = 'selection.json'
CHECKPOINTS = 'checkpoints'
# The trainings of the round in progress, saved inside it (svp_jax.preemption).
ROUND_CHECKPOINTS = 'round_checkpoints'
# A train job's or core-set run's training in progress (svp_jax.preemption).
TRAINING_CHECKPOINTS = 'training_checkpoints'
AGREEMENT_DIR = 'agreement'
# The arrays of an agreement file.
AGREEMENT_ARRAYS = ('proxy', 'target', 'labeled', 'k')

# The reference's columns for a trained model (proxy.csv, target.csv) and a
# selection (selection.csv), then svp_jax's `compile_time`: the seconds JAX
# spent compiling, kept out of the other times (svp_jax.timing). A model's
# train_time and a selection's inference_time and ranking_time are the
# arithmetic alone; total_time = inference + ranking + compile.
MODEL_COLUMNS = ('nexamples', 'train_accuracy', 'dev_accuracy',
                 'test_accuracy', 'train_time', 'dev_time', 'test_time',
                 'compile_time')
SELECTION_COLUMNS = ('nexamples', 'current_nexamples', 'new_nexamples',
                     'total_time', 'inference_time', 'ranking_time',
                     'compile_time')
# The parts of an active round's data-selection seconds (the paper's data
# selection runtime, summed over rounds): the selector's training, encoding
# the pool for the selector (text; once per run, in round 1), scoring the
# pool, ranking it, and the compiling of training, scoring and ranking,
# which the other parts leave out.
SELECTION_PARTS = ('selector_train_seconds', 'encoding_seconds',
                   'scoring_seconds', 'ranking_seconds', 'compile_seconds')
# An active run's summary table, one row per round (summary.json 'rounds');
# selection_seconds is the sum of SELECTION_PARTS.
ROUND_COLUMNS = ('round', 'labeled', 'selector_accuracy',
                 'selection_seconds') + SELECTION_PARTS + (
                     'target_accuracy', 'target_train_seconds')
# A core-set run's summary, one row per method (summary.json 'methods').
CORESET_SUMMARY_COLUMNS = (
    'method', 'proxy', 'target', 'pool_size', 'subset_size',
    'proxy_train_seconds', 'proxy_test_accuracy', 'encoding_seconds',
    'scoring_seconds', 'ranking_seconds', 'compile_seconds',
    'target_train_seconds', 'target_test_accuracy')
# Columns (and summary keys) added after runs were first written: readers
# take a file without them (as 0 seconds), so older runs still report.
ADDED_COLUMNS = ('compile_time', 'compile_seconds', 'encoding_seconds')

# Index files of svp_jax runs and of the reference's run directories, as
# training on precomputed selections finds them.
INDEX_PATTERNS = ('initial_subset_*.index', 'proxy/*/labeled_*.index',
                  'coreset_*.index', 'selector/*/labelled_*.index',
                  'proxy/*/labelled_*.index')


# Learner settings that change how a model is evaluated, not what is trained.
EVALUATION_ONLY = ('eval_batch_size', 'eval_every')


def _plain(section: Any) -> dict[str, Any]:
  return section.to_dict() if hasattr(section, 'to_dict') else dict(section)


def same_training(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
  """Whether two learner sections train the very same model.

  Args:
    a: a learner section (`selector` or `target`: `model` and `train`), as a
      ConfigDict or as config.json holds it; here, not in svp_jax.experiment,
      so that the report can tell a baseline without importing JAX.
    b: the other section, in either form.
  """

  def training(section):
    train = {k: v for k, v in _plain(section['train']).items()
             if k not in EVALUATION_ONLY}
    return _plain(section['model']), train

  return training(a) == training(b)


def labeled_index_path(workdir: str, size: int, initial: bool) -> str:
  """Where an active run keeps a labeled set of `size` (reference names)."""
  if initial:
    return os.path.join(workdir, f'initial_subset_{size}.index')
  return os.path.join(workdir, 'proxy', str(size), f'labeled_{size}.index')


def coreset_index_path(folder: str, size: int) -> str:
  return os.path.join(folder, f'coreset_{size}.index')


def agreement_path(workdir: str, round_index: int) -> str:
  return os.path.join(workdir, AGREEMENT_DIR, f'round_{round_index}.npz')


def model_row(nexamples: int, train_accuracy: float, test_accuracy: float,
              train_time: float, test_time: float,
              compile_time: float = 0.0) -> dict[str, Any]:
  """A MODEL_COLUMNS row (no dev split: its columns stay empty / 0).

  `train_time` leaves out `compile_time`, the training's compiling.
  """
  return {'nexamples': nexamples, 'train_accuracy': train_accuracy,
          'dev_accuracy': '', 'test_accuracy': test_accuracy,
          'train_time': train_time, 'dev_time': 0.0, 'test_time': test_time,
          'compile_time': compile_time}


def selection_row(nexamples: int, current: int, scoring_seconds: float,
                  ranking_seconds: float,
                  compile_seconds: float = 0.0) -> dict[str, Any]:
  """A SELECTION_COLUMNS row: `nexamples` labeled after adding to `current`.

  Scoring and ranking seconds leave out `compile_seconds`, their compiling.
  """
  return {'nexamples': nexamples, 'current_nexamples': current,
          'new_nexamples': nexamples - current,
          'total_time': scoring_seconds + ranking_seconds + compile_seconds,
          'inference_time': scoring_seconds,
          'ranking_time': ranking_seconds, 'compile_time': compile_seconds}


def round_row(record: dict[str, Any]) -> dict[str, Any]:
  """The summary table's row (ROUND_COLUMNS) for one active round record."""
  # Records of runs written before a part existed lack it: 0 seconds.
  parts = {part: record.get(part, 0.0) if part in ADDED_COLUMNS
           else record[part] for part in SELECTION_PARTS}
  return {
      'round': record['round'], 'labeled': record['labeled'],
      'selector_accuracy': (record['selector'] or {}).get('test_accuracy', ''),
      'selection_seconds': sum(parts.values()),
      **parts,
      'target_accuracy': (record['target'] or {}).get('test_accuracy', ''),
      'target_train_seconds': record['target_train_seconds'],
  }
