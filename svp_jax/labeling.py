"""People answer the queries: the labeling loop (mode 'label').

  python main.py --config=configs/own_images.py:label --config.data.path=ROOT
      # writes WORKDIR/queries/round_<r>.csv: fill in its answer column, then
      # run the same command again: it merges the answers and asks the next
      # round's queries
  ... --config.labeling.action=train_target   # the target on the labels so far
  ... --config.labeling.action=export         # WORKDIR/labeled.csv

Each `query` run does what one round of a simulated run (svp_jax.active)
does, with a person instead of the known labels: round 0 asks for a uniform
random `selection.initial_subset` (skipped when the files already bring
labels: they are round 0), and round r >= 1 trains the selector from scratch
on every label so far, scores the unlabeled pool and asks for the
`selection.rounds[r - 1]` examples its method picks. Keys, trainings and
picks are the simulated run's, so answers equal to the known labels give
its selections exactly (tests/test_labeling.py).

Files (workdir):
  labels.csv            the label store: id (pool index), example, label
                        (class name), round; rewritten atomically with each
                        merge, so a crash leaves the previous store intact.
  queries/round_<r>.csv id, example (file path or text), predicted (the
                        selector's class; round 0: none), confidence, answer
                        (empty: for the person to fill in; left empty: the
                        example stays unlabeled and may be asked again).
  queries/round_<r>.index  the ids asked (kept apart from the file a person
                        edits; written last: the round counts as asked).
  rounds.csv            per round: labels the selector trained on, asked,
                        answered, the selector's test accuracy and seconds.
  target.csv, models/target_<n>/   train_target's test rows and weights.
  labeled.csv           export: every labeled example and its label.
Answers are validated before anything is merged: an unknown class, an id
that was not asked, an id answered twice differently, an empty file or one
that is not UTF-8 is one error naming the file, the line and the value.
"""

import csv
import dataclasses
import io
import os
import re
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from svp_jax import active
from svp_jax import data
from svp_jax import experiment
from svp_jax import methods
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import scoring
from svp_jax import validation
from svp_jax.data import files

LABELS_CSV = 'labels.csv'
LABELS_COLUMNS = ('id', 'example', 'label', 'round')
QUERIES_DIR = 'queries'
QUERY_COLUMNS = ('id', 'example', 'predicted', 'confidence', 'answer')
ROUNDS_CSV = 'rounds.csv'
ROUNDS_COLUMNS = ('round', 'labeled', 'asked', 'answered',
                  'selector_accuracy', 'selector_train_seconds',
                  'scoring_seconds', 'ranking_seconds')
EXPORT_CSV = 'labeled.csv'
EXPORT_COLUMNS = ('id', 'example', 'label', 'origin')
MODELS_DIR = 'models'


class AnswerError(validation.ConfigError):
  """An answer file that cannot be merged; nothing was merged."""


# ----------------------------------------------------------------------------
# The label store and the query files.


def query_path(workdir: str, round_index: int) -> str:
  """The query file a person answers."""
  return os.path.join(workdir, QUERIES_DIR, f'round_{round_index}.csv')


def asked_path(workdir: str, round_index: int) -> str:
  """The ids a round asked, kept apart from the file a person edits."""
  return os.path.join(workdir, QUERIES_DIR, f'round_{round_index}.index')


def query_rounds(workdir: str) -> list[int]:
  """Rounds that asked their queries, ascending."""
  folder = os.path.join(workdir, QUERIES_DIR)
  if not os.path.isdir(folder):
    return []
  found = (re.fullmatch(r'round_(\d+)\.index', n) for n in os.listdir(folder))
  return sorted(int(m.group(1)) for m in found if m)


def read_store(workdir: str) -> list[dict[str, Any]]:
  """The label store's rows (id and round as int); [] before any answer."""
  path = os.path.join(workdir, LABELS_CSV)
  if not os.path.exists(path):
    return []
  with open(path, encoding='utf-8', newline='') as f:
    return [dict(row, id=int(row['id']), round=int(row['round']))
            for row in csv.DictReader(f)]


def write_rows(path: str, rows: list[dict[str, Any]], columns: tuple[str, ...]):
  """A UTF-8 CSV replacing `path` atomically (process 0 only)."""
  if results.is_writer():
    with results.atomic_open(path, encoding='utf-8', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(columns))
      writer.writeheader()
      writer.writerows({c: row.get(c, '') for c in columns} for row in rows)


def read_answers(path: str, asked: set[int], class_names: tuple[str, ...]
                 ) -> dict[int, str]:
  """{id: class name} answered in a query file; blank answers skipped.

  Raises:
    AnswerError: naming the file, the line and the value, for the first
      problem; nothing is merged then.
  """
  try:
    with open(path, 'rb') as f:
      raw = f.read()
    text = raw.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    line = raw.count(b'\n', 0, e.start) + 1
    raise AnswerError(f'{path}, line {line}: not UTF-8 ({e.reason}); save '
                      'the answers as UTF-8') from None
  reader = csv.DictReader(io.StringIO(text, newline=''))
  missing = [c for c in ('id', 'answer') if c not in (reader.fieldnames or [])]
  if missing:
    raise AnswerError(f'{path}: no column {missing[0]!r}; expected the '
                      f'columns {list(QUERY_COLUMNS)} as written')
  answers, where = {}, {}
  for row in reader:
    line = reader.line_num
    value = (row['id'] or '').strip()
    if not value.isdigit() or int(value) not in asked:
      raise AnswerError(f'{path}, line {line}: id {value!r} was not asked in '
                        'this round')
    answer = (row['answer'] or '').strip()
    if not answer:
      continue  # Skipped: stays unlabeled.
    if answer not in class_names:
      raise AnswerError(f'{path}, line {line}: answer {answer!r} is not a '
                        f'class; expected one of {list(class_names)} (or '
                        'blank to skip)')
    index = int(value)
    if index in answers and answers[index] != answer:
      raise AnswerError(f'{path}, lines {where[index]} and {line}: id '
                        f'{index} answered {answers[index]!r} and {answer!r}')
    answers[index], where[index] = answer, line
  if not answers:
    raise AnswerError(f'{path}: no answers; fill in the answer column with '
                      f'one of {list(class_names)} (a blank answer skips '
                      'that example), then run the same command again')
  return answers


# ----------------------------------------------------------------------------
# The labels a round sees.


@dataclasses.dataclass(frozen=True)
class Labels:
  """The pool's labels: the files' own, overridden by the store's answers."""
  labels: np.ndarray  # int32 [pool]; data.UNLABELED where nobody answered.
  store: tuple[dict[str, Any], ...]
  files_labeled: int  # How many the files labeled.

  @property
  def labeled(self) -> np.ndarray:
    return self.labels != data.UNLABELED


def current_labels(file_labels: np.ndarray, store: list[dict[str, Any]],
                   class_names: tuple[str, ...]) -> Labels:
  labels = np.asarray(file_labels, np.int32).copy()
  for row in store:
    if row['label'] not in class_names or not 0 <= row['id'] < len(labels):
      raise validation.ConfigError(
          f'{LABELS_CSV}: id {row["id"]} labeled {row["label"]!r} is not an '
          f'example and class of the data ({len(labels)} examples, classes '
          f'{list(class_names)}); was the store edited by hand?')
    labels[row['id']] = class_names.index(row['label'])
  return Labels(labels, tuple(store),
                int((file_labels != data.UNLABELED).sum()))


def merge(workdir: str, labels: Labels, round_index: int,
          answers: dict[int, str], examples: list[str]) -> list[dict[str, Any]]:
  """The store with this round's answers appended, written atomically."""
  store = list(labels.store) + [
      {'id': i, 'example': examples[i], 'label': answers[i],
       'round': round_index} for i in sorted(answers)]
  write_rows(os.path.join(workdir, LABELS_CSV), store, LABELS_COLUMNS)
  return store


# ----------------------------------------------------------------------------
# Predictions shown beside each query.


def _predicted_class(logits: jax.Array) -> jax.Array:
  return jnp.argmax(logits, axis=-1).astype(jnp.float32)


def _confidence(logits: jax.Array) -> jax.Array:
  return jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)


def predictions(exp: active.Experiment, trained: experiment.Fit,
                indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The selector's class and confidence for pool `indices`."""
  learner = exp.job.selector
  outputs = [scoring.pool_uncertainty(
      trained.state, learner.model, learner.cfg, learner.pool_eval_inputs,
      measure=measure, batch_size=learner.eval_batch_size, mesh=exp.job.mesh,
      indices=indices) for measure in (_predicted_class, _confidence)]
  return outputs[0].astype(np.int64), outputs[1]


# ----------------------------------------------------------------------------
# The actions.


@dataclasses.dataclass(frozen=True)
class Session:
  """What every action reads: the experiment, class names, examples."""
  exp: active.Experiment
  class_names: tuple[str, ...]
  examples: list[str]  # Per pool index: a file path, a text, an array row.
  file_labels: np.ndarray


def example_names(config: ml_collections.ConfigDict, pool_inputs: Any,
                  info: data.DatasetInfo) -> list[str]:
  """What a person sees of each pool example: its text or its file."""
  if info.modality == 'text':
    return [str(d) for d in pool_inputs]
  if config.data.name != files.NAME:  # A built-in dataset: its row.
    return [f'{info.train_split}[{i}]' for i in range(len(pool_inputs))]
  options = data.LoadOptions(**data.registry.configured_options(
      config.data, config.seed))
  sources = files.read_sources(options, info.train_split)[:len(pool_inputs)]
  root = os.path.abspath(os.path.expanduser(config.data.path))
  if os.path.isdir(root):  # Image files: a path a person can open.
    return [os.path.join(root, s) for s in sources]
  return sources


def open_session(config: ml_collections.ConfigDict, workdir: str) -> Session:
  with preemption.unwatched('loading the data'):
    job = experiment.load_job(config, workdir,
                              {'selector': config.selector,
                               'target': config.target},
                              require_labels=False)
  schedule = active.resolve_schedule(config.selection.initial_subset,
                                     config.selection.rounds, job.pool_size)
  method = methods.get(config.selection.method)
  exp = active.Experiment(
      job=job, method=method, schedule=schedule,
      # The simulated run's, for its baseline's reuse (ask()).
      target_sizes=active.resolve_target_sizes(config.selection, schedule),
      same_models=active.reuses_target(config, method),
      preemption_policy=preemption.Policy.from_config(config))
  file_labels = np.asarray(job.pool[1], np.int32)
  if config.labeling.ignore_file_labels:
    file_labels = np.full_like(file_labels, data.UNLABELED)
  # Datasets that name no classes are answered with their numbers.
  class_names = job.info.class_names or tuple(
      str(c) for c in range(job.info.num_classes))
  return Session(exp, class_names,
                 example_names(config, job.pool[0], job.info), file_labels)


def with_labels(session: Session, labels: Labels) -> active.Experiment:
  """The experiment training on `labels` (the files' and the answers')."""
  job = dataclasses.replace(session.exp.job,
                            pool=(session.exp.job.pool[0], labels.labels))
  return dataclasses.replace(session.exp, job=job)


def query(session: Session, workdir: str, key: np.ndarray) -> dict[str, Any]:
  """Merges the open round's answers, then asks the next round's queries."""
  names = session.class_names
  store = read_store(workdir)
  merged = {row['round'] for row in store}
  asked = query_rounds(workdir)
  labels = current_labels(session.file_labels, store, names)
  if asked and asked[-1] not in merged:
    round_index = asked[-1]
    path = query_path(workdir, round_index)
    if not os.path.exists(path):
      raise AnswerError(f'{path} is missing: it holds round {round_index}\'s '
                        'queries and their answers; put it back')
    ids = set(experiment.read_index(asked_path(workdir, round_index)).tolist())
    answers = read_answers(path, ids, names)
    store = merge(workdir, labels, round_index, answers, session.examples)
    labels = current_labels(session.file_labels, store, names)
    logging.info('Merged %d answers of round %d (%d skipped) from %s.',
                 len(answers), round_index, len(ids) - len(answers), path)
    update_rounds(workdir, round_index, answered=len(answers))
    merged.add(round_index)
  first = 1 if labels.files_labeled else 0
  round_index = max([first - 1] + sorted(merged)) + 1
  if round_index >= len(session.exp.schedule):
    message = (f'the schedule is complete ({len(session.exp.schedule)} '
               f'rounds, {int(labels.labeled.sum())} labeled); train the '
               'target (--config.labeling.action=train_target), export the '
               'labels (--config.labeling.action=export), or extend '
               'config.selection.rounds')
    logging.info('Nothing to ask: %s.', message)
    return {'round': None, 'message': message}
  return ask(session, workdir, key, labels, round_index)


def ask(session: Session, workdir: str, key: np.ndarray, labels: Labels,
        round_index: int) -> dict[str, Any]:
  """Selects round `round_index`'s queries and writes its query file."""
  exp = with_labels(session, labels)
  unlabeled = int((~labels.labeled).sum())
  k = min(exp.schedule[round_index], unlabeled)
  if not k:
    raise validation.ConfigError('config.mode=label: every pool example is '
                                 'labeled; nothing is left to ask')
  state = active.RoundState(labels.labeled, round_index, key, ())
  indices = np.flatnonzero(labels.labeled)
  if exp.same_models and round_index and len(indices) in exp.target_sizes:
    # A baseline (the selector trains as the target) selects, as the
    # simulated run does, with the target trained on these labels: the same
    # training that train_target at this size gives.
    state = dataclasses.replace(state, last_target=active.fit_role(
        exp, 'target', indices, state))
  logging.info('round %d: asking for %d of %d unlabeled examples by %s',
               round_index, k, unlabeled,
               'random' if round_index == 0 else exp.method.name)
  picked, measured = active.select(exp, state, k)
  trained = measured['trained']
  if trained is not None:
    predicted, confidence = predictions(exp, trained, picked)
  rows = [{'id': int(i), 'example': session.examples[i],
           'predicted': (session.class_names[predicted[j]]
                         if trained is not None else ''),
           'confidence': (f'{confidence[j]:.4f}' if trained is not None
                          else ''),
           'answer': ''} for j, i in enumerate(picked)]
  path = query_path(workdir, round_index)
  write_rows(path, rows, QUERY_COLUMNS)
  # Written last: a round counts as asked once its query file is complete.
  experiment.write_index(asked_path(workdir, round_index), picked)
  preemption.remove(active.round_checkpoints_dir(workdir))
  selector = measured['selector']
  update_rounds(workdir, round_index, labeled=int(labels.labeled.sum()),
                asked=len(rows),
                selector_accuracy=selector['test_accuracy'] if selector
                else '',
                selector_train_seconds=selector['train_time'] if selector
                else 0.0,
                scoring_seconds=measured['scoring_seconds'],
                ranking_seconds=measured['ranking_seconds'])
  message = (f'round {round_index}: wrote {len(rows)} queries to {path}; '
             f'fill in its answer column with one of '
             f'{list(session.class_names)} (blank: skip), then run the same '
             'command again')
  logging.info('%s', message)
  return {'round': round_index, 'queries': path, 'picked': picked,
          'message': message}


def update_rounds(workdir: str, round_index: int, **values: Any):
  """Sets `values` in round `round_index`'s row of rounds.csv."""
  path = os.path.join(workdir, ROUNDS_CSV)
  rows = results.read_csv(path) if os.path.exists(path) else []
  row = next((r for r in rows if r['round'] == round_index), None)
  if row is None:
    row = {'round': round_index}
    rows.append(row)
  row.update(values)
  for r in rows:  # Counts read back as floats.
    r.update({c: int(r[c]) for c in ('round', 'labeled', 'asked', 'answered')
              if isinstance(r.get(c), float)})
  rows.sort(key=lambda r: r['round'])
  results.write_csv(path, rows, ROUNDS_COLUMNS)


def train_target(session: Session, workdir: str,
                 key: np.ndarray) -> dict[str, Any]:
  """Trains the target on every label so far, tests it and saves it."""
  labels = current_labels(session.file_labels, read_store(workdir),
                          session.class_names)
  indices = np.flatnonzero(labels.labeled)
  if len(np.unique(labels.labels[indices])) < 2:
    raise validation.ConfigError(
        f'config.labeling.action=train_target: the {len(indices)} labels so '
        'far cover fewer than 2 classes; answer more queries first')
  exp = with_labels(session, labels)
  fit = active.fit_role(exp, 'target', indices,
                        active.RoundState(labels.labeled, 0, key, ()))
  preemption.remove(active.round_checkpoints_dir(workdir))
  path = os.path.join(workdir, run_files.TARGET_CSV)
  rows = [r for r in (results.read_csv(path) if os.path.exists(path) else [])
          if int(r['nexamples']) != len(indices)] + [fit.row]
  results.write_csv(path, sorted(rows, key=lambda r: int(r['nexamples'])),
                    run_files.MODEL_COLUMNS)
  model_dir = os.path.abspath(os.path.join(workdir, MODELS_DIR,
                                           f'target_{len(indices)}'))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(model_dir, fit.state, force=True)
  logging.info('target %s trained on %d labels: test accuracy %.4f; weights '
               'in %s', exp.job.target.name, len(indices),
               fit.row['test_accuracy'], model_dir)
  return {'labeled': len(indices), 'test_accuracy': fit.row['test_accuracy'],
          'weights': model_dir}


def export(session: Session, workdir: str) -> dict[str, Any]:
  """Writes labeled.csv: every labeled pool example and its class name."""
  store = read_store(workdir)
  answered = {row['id']: row['round'] for row in store}
  labels = current_labels(session.file_labels, store, session.class_names)
  rows = [{'id': int(i), 'example': session.examples[i],
           'label': session.class_names[labels.labels[i]],
           'origin': (f'round {answered[i]}' if i in answered else 'files')}
          for i in np.flatnonzero(labels.labeled)]
  path = os.path.join(workdir, EXPORT_CSV)
  write_rows(path, rows, EXPORT_COLUMNS)
  logging.info('Exported %d labeled examples to %s.', len(rows), path)
  return {'labeled': len(rows), 'path': path}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs `config.labeling.action` on the run in `workdir`."""
  validation.validate_label_config(config)
  start = time.perf_counter()
  with preemption.guard(preemption.Policy.from_config(config)):
    session = open_session(config, workdir)
    experiment.claim_workdir(workdir, config)
    key = experiment.root_key_data(config.seed)
    action = config.labeling.action
    if action == 'query':
      outcome = query(session, workdir, key)
    elif action == 'train_target':
      outcome = train_target(session, workdir, key)
    else:
      outcome = export(session, workdir)
  logging.info('labeling %s done in %.0f s.', action,
               time.perf_counter() - start)
  return outcome
