"""People answer the queries: the labeling loop (mode 'label').

  python main.py --config=configs/own_images.py:label --config.data.path=ROOT
      # writes WORKDIR/queries/round_<r>.csv: fill in its answer column, then
      # run the same command again: it merges the answers and asks the next
      # round's queries
  ... --config.labeling.action=train_target   # the target on the labels so far
  ... --config.labeling.action=export         # WORKDIR/labeled.csv
  ... --config.labeling.answers=FILE          # also merge an answer file:
      # columns id and answer (as a query file), or a Label Studio export

Each `query` run does what one round of a simulated run (svp_jax.active)
does, with a person instead of the known labels, through the same experiment
(active.make_experiment) and round step (active.round_step): round 0 asks
for a uniform random `selection.initial_subset` (skipped when the files
already bring labels: they are round 0), and round r >= 1 trains the
selector from scratch on every label so far, scores the unlabeled pool and
asks for the `selection.rounds[r - 1]` examples its method picks. Keys,
trainings and picks are the simulated run's, so answers equal to the known
labels give its selections exactly (tests/test_labeling.py).

No answer is ignored: every action (query, train_target, export) first
merges whatever is answered and not merged yet, in any round's query file
and in `labeling.answers`. An answer changed in a file already merged (a
skipped row filled in, a wrong answer fixed) is merged as a correction:
logged (old -> new, file, line) and counted in rounds.csv. A merged answer
is never removed: one made blank (or its row deleted) is refused, naming
the file and line; write the right class to correct it. A new
`labeling.answers` file is the newest word on the ids it answers (one it
answers otherwise: a correction). When two files newly give one id
different answers, nothing is merged either. A training a stopped command
saved is resumed only if nothing was merged since: a merge removes the
saved trainings (one resumed after a correction would keep what it learnt
from the old label).

Answers match the class names after stripping spaces and Unicode NFC (a
name typed on macOS matches), case-sensitively. Files saved by a
spreadsheet are read: a UTF-8 BOM, ';' or tab separators, CRLF lines, ids
written '3.0'. Ids are ASCII digits only ('3²' is refused). Ids are what
count: the example column is for the person (cells a spreadsheet would run
as a formula, starting with = + - @, are shown with a leading ').

Test examples: with no test split in the files and
`labeling.test_examples` = n > 0, the first round also asks n random pool
examples (drawn with their own key, experiment.LABELING_TEST), kept out of
training and selection for good; the selector and target are tested on
those answered. With no test split at all, no accuracy is reported (blank)
and selection still runs.

Files (workdir):
  labels.csv            the label store, every label's history: one row per
                        merged answer, never rewritten away (LABELS_COLUMNS:
                        id, example, label, previous (the label it changed),
                        round (the round that asked it), split (train or
                        test), change (answer, correction, or same: another
                        file agreeing), source (the file, relative to the
                        workdir), where (its line)); an id's label is its
                        last row. Written atomically.
  queries/round_<r>.csv id, example (file path or text), predicted (the
                        selector's class; round 0: none), confidence, answer
                        (empty: for the person to fill in; left empty: the
                        example stays unlabeled and may be asked again).
  queries/round_<r>.label_studio.json  the same queries as Label Studio
                        tasks, and queries/label_studio_config.xml its
                        labeling config (svp_jax.label_studio; images that
                        Label Studio cannot serve get none, with a warning).
  queries/round_<r>.index  the ids asked (kept apart from the file a person
                        edits; written last: the round counts as asked). A
                        query file a stopped run left without its index is
                        written again by the next run with the answers a
                        person put in it.
  queries/test.index    the test examples (with labeling.test_examples).
  queries/answers_<n>.<ext>  each new `labeling.answers` file, copied: the
                        history can be merged again from the workdir alone.
  rounds.csv            per round: labels the selector trained on, asked,
                        answered, corrections, the selector's test accuracy
                        and seconds.
  target.csv, models/target_<n>/   train_target's test rows and weights.
  labeled.csv           export: every labeled example, its label, where the
                        label came from (origin) and its split.
Answers are validated before anything is merged: an unknown class, an id
that was not asked, an id answered twice differently, an empty file or one
that is not UTF-8 is one error naming the file, the line and the value.
"""

from collections.abc import Iterable
import csv
import dataclasses
import io
import os
import re
import shutil
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
from svp_jax import label_studio
from svp_jax import methods
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import scoring
from svp_jax import selection
from svp_jax import validation
from svp_jax import workdir_lock
from svp_jax.data import files
from svp_jax.data import own_files

LABELS_CSV = 'labels.csv'
LABELS_COLUMNS = ('id', 'example', 'label', 'previous', 'round', 'split',
                  'change', 'source', 'where')
# What a store row's `change` says: the id's first label, a different label
# than its last, or the same label from another file.
ANSWER, CORRECTION, SAME = 'answer', 'correction', 'same'
TRAIN, TEST = 'train', 'test'
QUERIES_DIR = 'queries'
QUERY_COLUMNS = ('id', 'example', 'predicted', 'confidence', 'answer')
TEST_INDEX = 'test.index'
LABEL_STUDIO_CONFIG = 'label_studio_config.xml'
ANSWERS_PREFIX = 'answers_'
ROUNDS_CSV = 'rounds.csv'
ROUNDS_COLUMNS = ('round', 'labeled', 'asked', 'answered', 'corrections',
                  'selector_accuracy', 'selector_train_seconds',
                  'scoring_seconds', 'ranking_seconds')
ROUND_COUNTS = ('round', 'labeled', 'asked', 'answered', 'corrections')
EXPORT_CSV = 'labeled.csv'
EXPORT_COLUMNS = ('id', 'example', 'label', 'origin', 'split')
MODELS_DIR = 'models'
# Separators a spreadsheet saves a CSV with (Excel: ';' where the decimal
# mark is a comma).
DELIMITERS = (',', ';', '\t')
# Cells a spreadsheet runs as a formula (OWASP, "CSV injection").
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')
# A pool index as a person's file may write it: ASCII digits, or an
# integral decimal as spreadsheets save numbers ('3.0').
_ID = re.compile(r'([0-9]+)(?:\.0*)?')


class AnswerError(validation.ConfigError):
  """An answer file that cannot be merged; nothing was merged."""


class NoColumnError(AnswerError):
  """A table without a column it needs."""


# ----------------------------------------------------------------------------
# Reading what people and spreadsheets write.


def normalized(name: str | None) -> str:
  """A class name or an answer as they are matched (strip, NFC)."""
  return own_files.normalize_class_name(name or '')


def parse_id(value: str) -> int | None:
  """The pool index `value` writes ('3', ' 3 ', '3.0'), else None."""
  match = _ID.fullmatch(value.strip())
  return int(match.group(1)) if match else None


def spreadsheet_safe(text: str) -> str:
  """`text` shown as text by a spreadsheet, never run as a formula."""
  return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def read_table(path: str, required: tuple[str, ...]
               ) -> list[tuple[int, dict[str, str]]]:
  """(line, row) of a CSV as we or a spreadsheet wrote it.

  UTF-8 with or without a BOM; the separator is whichever of DELIMITERS
  makes a header with every `required` column; CRLF or LF lines.

  Raises:
    AnswerError: naming `path` (and the line) when it is not UTF-8;
      NoColumnError when it lacks a required column.
  """
  with open(path, 'rb') as f:
    raw = f.read()
  try:
    text = raw.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    line = raw.count(b'\n', 0, e.start) + 1
    raise AnswerError(f'{path}, line {line}: not UTF-8 ({e.reason}); save '
                      'it as UTF-8') from None
  header = text.splitlines()[0] if text else ''
  found = {}  # delimiter -> the required columns its header has.
  for delimiter in DELIMITERS:
    names = [n.strip() for n in next(csv.reader([header],
                                                delimiter=delimiter), [])]
    found[delimiter] = [c for c in required if c in names]
  delimiter = max(DELIMITERS, key=lambda d: len(found[d]))
  if len(found[delimiter]) < len(required):
    missing = next(c for c in required if c not in found[delimiter])
    raise NoColumnError(f'{path}: no column {missing!r}; expected the '
                        f'columns {list(required)} as written')
  reader = csv.reader(io.StringIO(text, newline=''), delimiter=delimiter)
  columns = [n.strip() for n in next(reader)]
  rows = []
  for cells in reader:
    if not any(c.strip() for c in cells):
      continue  # A blank line a spreadsheet left.
    rows.append((reader.line_num, dict(zip(columns, cells))))
  return rows


# ----------------------------------------------------------------------------
# Answers.


@dataclasses.dataclass(frozen=True)
class Answer:
  label: str  # A class name as the data spells it.
  where: str  # Where in its file ('line 3').


def match_answers(path: str, items: Iterable[tuple[str, str, str]],
                  asked: set[int], class_names: tuple[str, ...],
                  not_asked: str = 'was not asked in this round'
                  ) -> dict[int, Answer]:
  """{id: Answer} of (raw id, raw answer, where) items; blanks skipped.

  Raises:
    AnswerError: naming the file, the place and the value, for the first
      problem; nothing is merged then.
  """
  by_name = {normalized(c): c for c in class_names}
  answers = {}
  for raw_id, raw_answer, where in items:
    index = parse_id(raw_id or '')
    if index is None:
      raise AnswerError(f'{path}, {where}: id {raw_id!r} is not a pool index '
                        '(ASCII digits, as written in the query file)')
    if index not in asked:
      raise AnswerError(f'{path}, {where}: id {raw_id.strip()!r} {not_asked}')
    answer = normalized(raw_answer)
    if not answer:
      continue  # Skipped: stays unlabeled.
    if answer not in by_name:
      raise AnswerError(f'{path}, {where}: answer {answer!r} is not a class; '
                        f'expected one of {list(class_names)} (or blank to '
                        'skip; case counts)')
    label = by_name[answer]
    if index in answers and answers[index].label != label:
      first = answers[index]
      places = (f'lines {first.where[5:]} and {where[5:]}'
                if first.where.startswith('line ') and where.startswith(
                    'line ') else f'{first.where} and {where}')
      raise AnswerError(f'{path}, {places}: id {index} answered '
                        f'{first.label!r} and {label!r}')
    answers.setdefault(index, Answer(label, where))
  return answers


def read_answers(path: str, asked: set[int], class_names: tuple[str, ...]
                 ) -> dict[int, Answer]:
  """{id: Answer} answered in a query file (or one like it); blanks skipped.

  Raises:
    AnswerError: naming the file, the line and the value, for the first
      problem; nothing is merged then.
  """
  rows = read_table(path, ('id', 'answer'))
  return match_answers(path, ((row.get('id') or '', row.get('answer') or '',
                               f'line {line}') for line, row in rows),
                       asked, class_names)


# ----------------------------------------------------------------------------
# The query files and the label store.


def query_path(workdir: str, round_index: int) -> str:
  """The query file a person answers."""
  return os.path.join(workdir, QUERIES_DIR, f'round_{round_index}.csv')


def asked_path(workdir: str, round_index: int) -> str:
  """The ids a round asked, kept apart from the file a person edits."""
  return os.path.join(workdir, QUERIES_DIR, f'round_{round_index}.index')


def test_index_path(workdir: str) -> str:
  return os.path.join(workdir, QUERIES_DIR, TEST_INDEX)


def tasks_path(workdir: str, round_index: int) -> str:
  """A round's queries as Label Studio tasks (svp_jax.label_studio)."""
  return os.path.join(workdir, QUERIES_DIR,
                      f'round_{round_index}.label_studio.json')


def query_rounds(workdir: str) -> list[int]:
  """Rounds that asked their queries, ascending."""
  folder = os.path.join(workdir, QUERIES_DIR)
  if not os.path.isdir(folder):
    return []
  found = (re.fullmatch(r'round_(\d+)\.index', n) for n in os.listdir(folder))
  return sorted(int(m.group(1)) for m in found if m)


def answer_copies(workdir: str) -> list[str]:
  """The copied `labeling.answers` files (relative names), in order."""
  folder = os.path.join(workdir, QUERIES_DIR)
  if not os.path.isdir(folder):
    return []
  found = [(int(m.group(1)), n) for n in os.listdir(folder)
           if (m := re.fullmatch(rf'{ANSWERS_PREFIX}(\d+)\.\w+', n))]
  return [f'{QUERIES_DIR}/{n}' for _, n in sorted(found)]


def query_source_name(round_index: int) -> str:
  """A round's query file as the store's `source` names it."""
  return f'{QUERIES_DIR}/round_{round_index}.csv'


def read_store(workdir: str) -> list[dict[str, Any]]:
  """The label store's rows (id and round as int); [] before any answer.

  A store written before it kept histories (id, example, label, round) reads
  as answers from each round's query file. One a spreadsheet saved (BOM,
  ';', ids '3.0') reads as written; anything else is one ConfigError.
  """
  path = os.path.join(workdir, LABELS_CSV)
  if not os.path.exists(path):
    return []
  store = []
  for line, row in read_table(path, ('id', 'label', 'round')):
    index, round_index = (parse_id(row.get(c) or '') for c in ('id', 'round'))
    if index is None or round_index is None:
      raise validation.ConfigError(
          f'{path}, line {line}: id {row.get("id")!r} and round '
          f'{row.get("round")!r} must be whole numbers; was the store edited '
          'by hand? (Correct answers in the query files instead.)')
    store.append({
        'id': index, 'example': row.get('example') or '',
        'label': normalized(row.get('label')),
        'previous': normalized(row.get('previous')),
        'round': round_index, 'split': (row.get('split') or TRAIN).strip(),
        'change': (row.get('change') or ANSWER).strip(),
        'source': (row.get('source') or '').strip()
                  or query_source_name(round_index),
        'where': (row.get('where') or '').strip()})
  return store


def write_rows(path: str, rows: list[dict[str, Any]], columns: tuple[str, ...]):
  """A UTF-8 CSV replacing `path` atomically (process 0 only)."""
  if results.is_writer():
    with results.atomic_open(path, encoding='utf-8', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(columns))
      writer.writeheader()
      writer.writerows({c: row.get(c, '') for c in columns} for row in rows)


def write_store(workdir: str, store: list[dict[str, Any]]):
  """The whole store, replacing the previous one atomically."""
  write_rows(os.path.join(workdir, LABELS_CSV), store, LABELS_COLUMNS)


# ----------------------------------------------------------------------------
# Merging: what every action does first.


@dataclasses.dataclass(frozen=True)
class Source:
  """One file of answers: a round's query file or a `labeling.answers` one."""
  name: str  # As the store's `source` names it (relative to the workdir).
  path: str  # Where it was read (errors name it).
  answers: dict[int, Answer]
  rounds: dict[int, int]  # id -> the round it belongs to.


def plan_merge(store: list[dict[str, Any]], sources: list[Source],
               examples: list[str], test: set[int]) -> list[dict[str, Any]]:
  """The store rows that merge what `sources` say and the store lacks.

  An answer a source gives and the store has not merged from it is a new
  row: an `answer` (the id had no label), a `correction` (it had another)
  or `same`. Pure: nothing is written.

  Raises:
    AnswerError: a merged answer is gone from its file (blank, its row
      deleted, or the file), or two files newly answer one id differently.
  """
  merged, current = {}, {}
  for row in store:
    merged[(row['source'], row['id'])] = row
    current[row['id']] = row['label']
  by_name = {s.name: s for s in sources}
  for (name, index), row in merged.items():
    source = by_name.get(name)
    if source is None:
      raise AnswerError(f'{name} is missing from the workdir: it holds '
                        f'merged answers (id {index}: {row["label"]!r}); put '
                        'it back')
    if index not in source.answers:
      raise AnswerError(
          f'{source.path}: id {index} was answered {row["label"]!r} '
          f'({row["where"] or "merged"}) and now has no answer there (blank '
          'or its row deleted); a merged label is never removed: put the '
          'answer back, or write the right class to correct it')
  newly = {}  # id -> (source, answer): the first file newly answering it.
  rows = []
  for source in sources:
    for index, answer in sorted(source.answers.items()):
      row = merged.get((source.name, index))
      if row is not None and row['label'] == answer.label:
        continue
      if index in newly and newly[index][1].label != answer.label:
        first, said = newly[index]
        raise AnswerError(
            f'id {index} is answered {said.label!r} in {first.path} '
            f'({said.where}) and {answer.label!r} in {source.path} '
            f'({answer.where}); keep one of them, then run again')
      newly.setdefault(index, (source, answer))
      previous = current.get(index, '')
      change = (ANSWER if not previous else
                SAME if previous == answer.label else CORRECTION)
      rows.append({'id': index, 'example': examples[index],
                   'label': answer.label, 'previous': previous,
                   'round': source.rounds[index],
                   'split': TEST if index in test else TRAIN,
                   'change': change, 'source': source.name,
                   'where': answer.where})
      current[index] = answer.label
  return rows


def sync_round_counts(workdir: str, store: list[dict[str, Any]]):
  """rounds.csv's answered and corrections of each round, where they
  differ from the store's counts (round_counts)."""
  path = os.path.join(workdir, ROUNDS_CSV)
  rows = {r['round']: r for r in (results.read_csv(path)
                                  if os.path.exists(path) else [])}
  for round_index in sorted({r['round'] for r in store}):
    counts = round_counts(store, round_index)
    row = rows.get(round_index, {})
    if any(row.get(c) != n for c, n in counts.items()):
      update_rounds(workdir, round_index, **counts)


def round_counts(store: list[dict[str, Any]], round_index: int
                 ) -> dict[str, int]:
  """rounds.csv's answered (ids labeled) and corrections of a round."""
  rows = [r for r in store if r['round'] == round_index]
  return {'answered': len({r['id'] for r in rows}),
          'corrections': sum(r['change'] == CORRECTION for r in rows)}


# ----------------------------------------------------------------------------
# The labels a round sees.


@dataclasses.dataclass(frozen=True)
class Labels:
  """The pool's labels: the files' own, overridden by the store's answers."""
  labels: np.ndarray  # int32 [pool]; data.UNLABELED where nobody answered.
  store: tuple[dict[str, Any], ...]
  files_labeled: int  # How many the files labeled.
  # bool [pool]: test examples (labeling.test_examples), never trained on
  # nor selected; None: there are none.
  test: np.ndarray | None = None

  @property
  def labeled(self) -> np.ndarray:
    return self.labels != data.UNLABELED

  @property
  def training(self) -> np.ndarray:
    """Labeled examples the models train on (the test ones left out)."""
    return self.labeled if self.test is None else self.labeled & ~self.test


def current_labels(file_labels: np.ndarray, store: list[dict[str, Any]],
                   class_names: tuple[str, ...],
                   test: np.ndarray | None = None) -> Labels:
  """The files' labels with the store's last label of each id."""
  labels = np.asarray(file_labels, np.int32).copy()
  for row in store:
    if row['label'] not in class_names or not 0 <= row['id'] < len(labels):
      raise validation.ConfigError(
          f'{LABELS_CSV}: id {row["id"]} labeled {row["label"]!r} is not an '
          f'example and class of the data ({len(labels)} examples, classes '
          f'{list(class_names)}); was the store edited by hand?')
    labels[row['id']] = class_names.index(row['label'])
  return Labels(labels, tuple(store),
                int((file_labels != data.UNLABELED).sum()), test)


def origin(row: dict[str, Any]) -> str:
  """Where a label came from, for the export: its round and file."""
  said = f'round {row["round"]}'
  if row['change'] == CORRECTION:
    return f'{said}, corrected in {row["source"]}'
  if row['source'] != query_source_name(row['round']):
    return f'{said}, from {row["source"]}'
  return said


# ----------------------------------------------------------------------------
# Predictions shown beside each query.


def _class_and_confidence(logits: jax.Array) -> jax.Array:
  """[batch, 2]: the predicted class (as a float) and its probability."""
  logits = logits.astype(jnp.float32)
  return jnp.stack([jnp.argmax(logits, axis=-1).astype(jnp.float32),
                    jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)],
                   axis=-1)


# One pass over the asked examples gives both; made once, so it compiles once.
_PREDICTION = methods.PerBatch((methods.LOGITS,), _class_and_confidence)


def predictions(exp: active.Experiment, trained: experiment.Fit,
                indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The selector's class and confidence for pool `indices`."""
  learner = exp.job.selector
  rows = scoring.pool_outputs(
      trained.state, learner.model, learner.cfg, learner.pool_eval_inputs,
      _PREDICTION, batch_size=learner.eval_batch_size, mesh=exp.job.mesh,
      indices=indices).reshape(-1, 2)  # [0] rows when nothing is asked.
  return rows[:, 0].astype(np.int64), np.ascontiguousarray(rows[:, 1])


# ----------------------------------------------------------------------------
# The session every action opens.


@dataclasses.dataclass(frozen=True)
class Session:
  """What every action reads: the experiment, class names, examples."""
  exp: active.Experiment
  class_names: tuple[str, ...]
  examples: list[str]  # Per pool index: a file path, a text, an array row.
  file_labels: np.ndarray
  test_examples: int = 0  # config.labeling.test_examples.
  answers: str = ''  # config.labeling.answers: a file to merge, or ''.


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
  """The simulated run's experiment (active.make_experiment), for people."""
  exp = active.make_experiment(config, workdir, require_labels=False)
  # Agreement scores are evidence for a simulated run's report; a person's
  # loop writes none, so it trains no target for them.
  exp = dataclasses.replace(exp, compare_with_target=False)
  job = exp.job
  file_labels = np.asarray(job.pool[1], np.int32)
  if config.labeling.ignore_file_labels:
    file_labels = np.full_like(file_labels, data.UNLABELED)
  test_examples = config.labeling.get('test_examples', 0)
  if test_examples and len(job.test[1]):
    raise validation.ConfigError(
        f'config.labeling.test_examples={test_examples}: the files bring a '
        f'test split of {len(job.test[1])} examples, which tests the models; '
        'set it to 0')
  if test_examples + sum(exp.schedule) > job.pool_size:
    raise validation.ConfigError(
        f'config.labeling.test_examples={test_examples} and the schedule '
        f'{list(exp.schedule)} add up to more than the pool of '
        f'{job.pool_size} examples')
  # Datasets that name no classes are answered with their numbers.
  class_names = job.info.class_names or tuple(
      str(c) for c in range(job.info.num_classes))
  return Session(exp, tuple(class_names),
                 example_names(config, job.pool[0], job.info), file_labels,
                 test_examples, config.labeling.get('answers', ''))


def read_test_ids(workdir: str) -> np.ndarray | None:
  """The test examples drawn by the first round, if any."""
  path = test_index_path(workdir)
  return experiment.read_index(path) if os.path.exists(path) else None


def test_mask(session: Session, ids: np.ndarray | None) -> np.ndarray | None:
  if ids is None:
    return None
  mask = np.zeros(len(session.file_labels), bool)
  mask[ids] = True
  return mask


def draw_test_examples(key: np.ndarray, file_labels: np.ndarray,
                       count: int) -> np.ndarray:
  """`count` random pool examples the files leave unlabeled, sorted.

  Drawn with their own purpose (experiment.LABELING_TEST), so the training
  draws do not depend on them.
  """
  candidates = file_labels == data.UNLABELED
  if count > int(candidates.sum()):
    raise validation.ConfigError(
        f'config.labeling.test_examples={count}: the files leave only '
        f'{int(candidates.sum())} pool examples unlabeled to test on')
  draw_key = jax.random.fold_in(jax.random.wrap_key_data(key),
                                experiment.LABELING_TEST)
  return np.sort(np.asarray(jax.device_get(
      selection.select_random(draw_key, ~candidates, count)), np.int64))


def answers_source(session: Session, path: str, name: str,
                   rounds: dict[int, int]) -> Source:
  """A `labeling.answers` file: each id belongs to the last round asking it.

  Our own answer CSV (columns id and answer, as a query file), or a Label
  Studio JSON or CSV export (svp_jax.label_studio.read_export).
  """
  items = None
  if not path.lower().endswith('.json'):
    try:
      items = [(row.get('id') or '', row.get('answer') or '', f'line {line}')
               for line, row in read_table(path, ('id', 'answer'))]
    except NoColumnError:
      pass  # Not our columns: a Label Studio CSV export, or neither.
  if items is None:
    items = label_studio.read_export(path)
  return Source(name, path, match_answers(path, items, set(rounds),
                                          session.class_names,
                                          'was not asked in any round'),
                rounds)


def gather_sources(session: Session, workdir: str
                   ) -> tuple[list[Source], str | None]:
  """Every answer file of the run, read and checked; and a new copy's name.

  The copy's name is where `labeling.answers` is to be copied, when its
  content is not in the workdir yet (None: nothing to copy).
  """
  rounds = query_rounds(workdir)
  belongs = {}  # id -> the last round that asked it.
  sources = []
  for round_index in rounds:
    path = query_path(workdir, round_index)
    if not os.path.exists(path):
      raise AnswerError(f'{path} is missing: it holds round {round_index}\'s '
                        'queries and their answers; put it back')
    ids = experiment.read_index(asked_path(workdir, round_index)).tolist()
    belongs.update(dict.fromkeys(ids, round_index))
    sources.append(Source(query_source_name(round_index), path,
                          read_answers(path, set(ids), session.class_names),
                          dict.fromkeys(ids, round_index)))
  copies = answer_copies(workdir)
  for name in copies:
    sources.append(answers_source(session, os.path.join(workdir, name), name,
                                  belongs))
  if not session.answers:
    return sources, None
  path = os.path.abspath(os.path.expanduser(session.answers))
  if not os.path.isfile(path):
    raise AnswerError(f'config.labeling.answers={session.answers!r}: no such '
                      'file')
  with open(path, 'rb') as f:
    content = f.read()
  for name in copies:
    with open(os.path.join(workdir, name), 'rb') as f:
      if f.read() == content:
        return sources, None  # Merged before, from its copy.
  if not rounds:
    raise AnswerError(f'config.labeling.answers={session.answers!r}: no '
                      'round has asked anything yet to answer')
  ext = os.path.splitext(path)[1].lower() or '.csv'
  name = f'{QUERIES_DIR}/{ANSWERS_PREFIX}{len(copies) + 1}{ext}'
  source = answers_source(session, path, name, belongs)
  return sources + [source], name


def merge_answers(session: Session, workdir: str) -> Labels:
  """Merges every answer not merged yet; returns the labels after it.

  Every file is read and checked before anything is written: one problem
  anywhere and nothing is merged.
  """
  by_name = {normalized(c): c for c in session.class_names}
  store = [dict(row, label=by_name.get(row['label'], row['label']))
           for row in read_store(workdir)]
  test_ids = read_test_ids(workdir)
  current_labels(session.file_labels, store, session.class_names)  # Checks.
  sources, copy_to = gather_sources(session, workdir)
  rows = plan_merge(store, sources, session.examples,
                    set() if test_ids is None else set(test_ids.tolist()))
  if copy_to is not None and results.is_writer():
    with results.atomic_open(os.path.join(workdir, copy_to), 'wb') as f:
      with open(os.path.abspath(os.path.expanduser(session.answers)),
                'rb') as original:
        shutil.copyfileobj(original, f)
    logging.info('Copied %s to %s.', session.answers,
                 os.path.join(workdir, copy_to))
  if rows:
    # Trainings saved in the round's checkpoints learnt the labels before
    # this merge; one resumed at the same size after a correction would
    # keep what it learnt from the old label. Removed before the store is
    # written: a kill in between merges (and removes) again.
    preemption.remove(active.round_checkpoints_dir(workdir))
    store = store + rows
    write_store(workdir, store)
    log_merge(rows)
  # From the store: also after a run stopped between writing the store and
  # rounds.csv.
  sync_round_counts(workdir, store)
  return current_labels(session.file_labels, store, session.class_names,
                        test_mask(session, test_ids))


def log_merge(rows: list[dict[str, Any]]):
  """Says what a merge added: counts per file, and every correction."""
  for source in sorted({r['source'] for r in rows}):
    mine = [r for r in rows if r['source'] == source]
    logging.info('Merged from %s: %d answers, %d corrections, %d agreeing '
                 'with an earlier file.', source,
                 sum(r['change'] == ANSWER for r in mine),
                 sum(r['change'] == CORRECTION for r in mine),
                 sum(r['change'] == SAME for r in mine))
  for r in rows:
    if r['change'] == CORRECTION:
      logging.warning('Correction: id %d %r -> %r (%s, %s).', r['id'],
                      r['previous'], r['label'], r['source'], r['where'])


# ----------------------------------------------------------------------------
# The actions.


def with_labels(session: Session, labels: Labels) -> active.Experiment:
  """The experiment training on `labels` (the files' and the answers').

  With test examples, its test split is those answered.
  """
  job = dataclasses.replace(session.exp.job,
                            pool=(session.exp.job.pool[0], labels.labels))
  if labels.test is not None:
    job = experiment.with_pool_test(
        job, np.flatnonzero(labels.test & labels.labeled))
  return dataclasses.replace(session.exp, job=job)


def query(session: Session, workdir: str, key: np.ndarray) -> dict[str, Any]:
  """Merges every answer so far, then asks the next round's queries."""
  labels = merge_answers(session, workdir)
  asked = query_rounds(workdir)
  if asked:
    last = asked[-1]
    if not any(r['round'] == last and r['split'] == TRAIN
               for r in labels.store):
      raise AnswerError(
          f'{query_path(workdir, last)}: no answers; fill in the answer '
          f'column with one of {list(session.class_names)} (a blank answer '
          'skips that example), then run the same command again')
    round_index = last + 1
  else:
    round_index = 1 if labels.files_labeled else 0
  if round_index >= len(session.exp.schedule):
    message = (f'the schedule is complete ({len(session.exp.schedule)} '
               f'rounds, {int(labels.labeled.sum())} labeled); train the '
               'target (--config.labeling.action=train_target), export the '
               'labels (--config.labeling.action=export), or extend '
               'config.selection.rounds')
    logging.info('Nothing to ask: %s.', message)
    return {'round': None, 'message': message}
  return ask(session, workdir, key, labels, round_index, first=not asked)


def ask(session: Session, workdir: str, key: np.ndarray, labels: Labels,
        round_index: int, first: bool = False) -> dict[str, Any]:
  """Selects round `round_index`'s queries and writes its query file.

  The first round also draws and asks the test examples
  (labeling.test_examples) when the files bring no test split.
  """
  test_ids = None
  if first and session.test_examples:
    test_ids = draw_test_examples(key, session.file_labels,
                                  session.test_examples)
    labels = dataclasses.replace(labels, test=test_mask(session, test_ids))
  exp = with_labels(session, labels)
  if not len(exp.job.test[1]):
    logging.info('No test split: the selector\'s accuracy is not reported.')
  excluded = labels.test
  open_ = ~labels.labeled if excluded is None else ~labels.labeled & ~excluded
  unlabeled = int(open_.sum())
  k = min(exp.schedule[round_index], unlabeled)
  if not k:
    raise validation.ConfigError('config.mode=label: every pool example is '
                                 'labeled; nothing is left to ask')
  state = active.RoundState(labels.training, round_index, key, ())
  picked, measured = active.round_step(exp, state, k, excluded)
  asked = picked if test_ids is None else np.concatenate([picked, test_ids])
  path = query_path(workdir, round_index)
  rows = query_rows(session, exp, measured['trained'], asked,
                    interrupted_answers(path, asked))
  write_label_studio_tasks(session, workdir, round_index, rows)
  write_rows(path, [dict(row, example=spreadsheet_safe(row['example']),
                         predicted=spreadsheet_safe(row['predicted']))
                    for row in rows], QUERY_COLUMNS)
  if test_ids is not None:
    experiment.write_index(test_index_path(workdir), test_ids)
  selector = measured['selector']
  update_rounds(workdir, round_index, labeled=int(labels.training.sum()),
                asked=len(rows),
                selector_accuracy=accuracy_cell(selector),
                selector_train_seconds=selector['train_time'] if selector
                else 0.0,
                scoring_seconds=measured['scoring_seconds'],
                ranking_seconds=measured['ranking_seconds'])
  # Written last: a round counts as asked once its query file and its row
  # of rounds.csv are complete (a run stopped before asks it again).
  experiment.write_index(asked_path(workdir, round_index), asked)
  preemption.remove(active.round_checkpoints_dir(workdir))
  tests = '' if test_ids is None else f' ({len(test_ids)} test examples)'
  message = (f'round {round_index}: wrote {len(rows)} queries{tests} to '
             f'{path}; fill in its answer column with one of '
             f'{list(session.class_names)} (blank: skip), then run the same '
             'command again')
  logging.info('%s', message)
  return {'round': round_index, 'queries': path, 'picked': picked,
          'message': message}


def query_rows(session: Session, exp: active.Experiment,
               trained: experiment.Fit | None, asked: np.ndarray,
               given: dict[int, str]) -> list[dict[str, Any]]:
  """A query file's rows: each asked id, its example, the selector's class
  and confidence (blank where no selector trained: round 0) and any answer
  already `given`."""
  predicted, confidence = (predictions(exp, trained, asked)
                           if trained is not None else (None, None))
  return [{'id': int(i), 'example': session.examples[i],
           'predicted': ('' if predicted is None
                         else session.class_names[predicted[j]]),
           'confidence': ('' if confidence is None
                          else f'{confidence[j]:.4f}'),
           'answer': given.get(int(i), '')} for j, i in enumerate(asked)]


def interrupted_answers(path: str, asked: np.ndarray) -> dict[int, str]:
  """Answers already in a round's query file that a run stopped before
  writing the round's index (so the round does not count as asked): a
  person may have answered it. They are kept in the file written again.

  Raises:
    AnswerError: the file answers an id the round no longer asks (answers
      merged meanwhile changed the selection); nothing is written.
  """
  if not os.path.exists(path):
    return {}
  given = {}
  for line, row in read_table(path, ('id', 'answer')):
    index, answer = parse_id(row.get('id') or ''), row.get('answer') or ''
    if answer.strip():
      if index is None:
        raise AnswerError(f'{path}, line {line}: id {row.get("id")!r} is not '
                          'a pool index')
      given[index] = answer
  gone = sorted(set(given) - set(np.asarray(asked).tolist()))
  if gone:
    raise AnswerError(
        f'{path} was written by a run stopped before the round counted as '
        f'asked, and answers ids {gone} that this round no longer asks; move '
        'it aside to keep its answers, then run again')
  return given


def write_label_studio_tasks(session: Session, workdir: str,
                             round_index: int, rows: list[dict[str, Any]]):
  """The round's queries as Label Studio tasks, and its labeling config.

  Images Label Studio cannot serve (rows of an array file, or files outside
  its document root) get no task file, with a warning: the query CSV is
  the same queries.
  """
  modality = session.exp.job.info.modality
  folder = os.path.join(workdir, QUERIES_DIR)
  try:
    label_studio.write_tasks(tasks_path(workdir, round_index), rows,
                             session.class_names, modality, round_index)
  except label_studio.LabelStudioError as e:
    logging.warning('No Label Studio tasks for round %d: %s', round_index, e)
    return
  config = os.path.join(folder, LABEL_STUDIO_CONFIG)
  if not os.path.exists(config):
    label_studio.write_labeling_config(config, session.class_names, modality)


def accuracy_cell(row: dict[str, Any] | None) -> Any:
  """A model row's test accuracy as rounds.csv shows it ('' when none)."""
  if row is None or np.isnan(row['test_accuracy']):
    return ''
  return row['test_accuracy']


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
    r.update({c: int(r[c]) for c in ROUND_COUNTS
              if isinstance(r.get(c), float)})
  rows.sort(key=lambda r: r['round'])
  results.write_csv(path, rows, ROUNDS_COLUMNS)


def train_target(session: Session, workdir: str,
                 key: np.ndarray) -> dict[str, Any]:
  """Merges every answer so far; trains, tests and saves the target."""
  labels = merge_answers(session, workdir)
  indices = np.flatnonzero(labels.training)
  if len(np.unique(labels.labels[indices])) < 2:
    raise validation.ConfigError(
        f'config.labeling.action=train_target: the {len(indices)} labels so '
        'far cover fewer than 2 classes; answer more queries first')
  exp = with_labels(session, labels)
  fit = active.fit_role(exp, 'target', indices,
                        active.RoundState(labels.training, 0, key, ()))
  preemption.remove(active.round_checkpoints_dir(workdir))
  path = os.path.join(workdir, run_files.TARGET_CSV)
  accuracy = accuracy_cell(fit.row)
  rows = [r for r in (results.read_csv(path) if os.path.exists(path) else [])
          if int(r['nexamples']) != len(indices)] + [
              dict(fit.row, test_accuracy=accuracy)]
  results.write_csv(path, sorted(rows, key=lambda r: int(r['nexamples'])),
                    run_files.MODEL_COLUMNS)
  model_dir = os.path.abspath(os.path.join(workdir, MODELS_DIR,
                                           f'target_{len(indices)}'))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(model_dir, fit.state, force=True)
  logging.info('target %s trained on %d labels: %s; weights in %s',
               exp.job.target.name, len(indices),
               'no test split' if accuracy == '' else
               f'test accuracy {accuracy:.4f} on {len(exp.job.test[1])}',
               model_dir)
  return {'labeled': len(indices),
          'test_accuracy': None if accuracy == '' else accuracy,
          'weights': model_dir}


def export_rows(session: Session, labels: Labels) -> list[dict[str, Any]]:
  """labeled.csv's rows: each labeled pool example, label, origin, split."""
  setting = {}  # id -> the store row that set its label.
  for row in labels.store:
    if row['change'] != SAME or row['id'] not in setting:
      setting[row['id']] = row
  test = labels.test if labels.test is not None else np.zeros(
      len(labels.labels), bool)
  return [{'id': int(i), 'example': session.examples[i],
           'label': session.class_names[labels.labels[i]],
           'origin': origin(setting[i]) if i in setting else 'files',
           'split': TEST if test[i] else TRAIN}
          for i in np.flatnonzero(labels.labeled)]


def export(session: Session, workdir: str) -> dict[str, Any]:
  """Merges every answer so far; writes labeled.csv."""
  rows = export_rows(session, merge_answers(session, workdir))
  path = os.path.join(workdir, EXPORT_CSV)
  write_rows(path, rows, EXPORT_COLUMNS)
  logging.info('Exported %d labeled examples to %s.', len(rows), path)
  return {'labeled': len(rows), 'path': path}


def first_moved_example(session: Session, workdir: str) -> str | None:
  """Where a stored label or an asked query no longer names its example.

  Every row of the label store and of each query file keeps the example
  it was given for; None when each still sits at its id in the pool read
  now (what a workdir keyed by an older reader needs: check_same_files).
  """
  rows = [(LABELS_CSV, row['id'], row['example'])
          for row in read_store(workdir)]
  for round_index in query_rounds(workdir):
    path = query_path(workdir, round_index)
    if os.path.exists(path):
      rows += [(query_source_name(round_index), parse_id(row.get('id') or ''),
                row.get('example') or '')
               for _, row in read_table(path, ('id',))]
  for source, index, example in rows:
    if index is None or not 0 <= index < len(session.examples):
      return f'{source}: id {index} is not an example of the pool now'
    now = session.examples[index]
    if example not in (now, spreadsheet_safe(now)):
      return (f'{source}: id {index} was {example!r}, the pool now has '
              f'{now!r} there')
  return None


@workdir_lock.holds_workdir
def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs `config.labeling.action` on the run in `workdir`."""
  validation.validate_label_config(config)
  start = time.perf_counter()
  with preemption.guard(preemption.Policy.from_config(config)):
    session = open_session(config, workdir)
    experiment.claim_workdir(
        workdir, config,
        still_points_at=lambda: first_moved_example(session, workdir))
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
