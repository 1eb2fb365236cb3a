"""The Label Studio round trip: a round's queries as tasks, its exports read.

A person who labels in Label Studio instead of a spreadsheet:

  1. creates a project with the labeling config (`labeling_config`: one
     single-choice question over the class names) and imports the round's
     task file (`write_tasks`): one task per query, the selector's predicted
     class and confidence as a prediction whose `score` Label Studio sorts
     by (data manager column "Prediction score", or the project's sampling
     "prediction-score-min": the least confident first);
  2. answers, skips (a skip is no answer: the example stays unlabeled);
  3. exports the project as JSON or CSV and hands the file back to the
     labeling loop, which reads it with `read_export` and applies the same
     checks as to its own query files.

Task data: `pool_id` (our pool index; authoritative), `round`, and the
example as `text`, or as `image`: a URL that Label Studio's local-files
storage serves, `/data/local-files/?d=<path relative to the document root,
URL-quoted>` (the form its own local storage writes). Serving local files
needs the server started with

  LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true
  LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<a folder above the images>

and, in the project, a "Local files" source storage whose absolute path is
the folder holding the images (below the document root, not the root
itself; no sync needed: the tasks come from our file). Without it Label
Studio answers the image URLs with 404.

Why `pool_id` and not `id`: Label Studio's CSV export writes its own task
id and the task data in one row, and a data key `id` silently overwrites the
task id's column (label_studio_sdk's csv2 exporter, Label Studio 1.23.2):
which of the two a file's `id` holds would depend on the exporter's version.
`pool_id` is never ambiguous. tests/test_label_studio_server.py checks these
facts against a real server (scripts/setup_label_studio.sh installs it).

Only JSON and CSV are read and written here; nothing imports Label Studio.
"""

from collections.abc import Iterable, Mapping, Sequence
import csv
import datetime
import io
import json
import os
from typing import Any
import urllib.parse
from xml.sax import saxutils

from svp_jax import results
from svp_jax import validation

MODALITIES = ('image', 'text')
ID_KEY = 'pool_id'  # Task data: our pool index (see the module docstring).
ROUND_KEY = 'round'  # Task data: the round that asked.
CHOICES_NAME = 'label'  # The Choices tag: from_name of every answer.
LOCAL_FILES_URL = '/data/local-files/?d='
# Label Studio's own default document root (its settings: os.sep), used
# when its environment variable is unset here too.
DEFAULT_DOCUMENT_ROOT = os.path.abspath(os.sep)
DOCUMENT_ROOT_ENV = 'LOCAL_FILES_DOCUMENT_ROOT'
# The prefixes Label Studio reads its settings with, in its order.
ENV_PREFIXES = ('LABEL_STUDIO_', 'HEARTEX_', '')


class LabelStudioError(validation.ConfigError):
  """A Label Studio export that cannot be read, or an example that a task
  cannot show; nothing was merged or written."""


# ----------------------------------------------------------------------------
# Tasks and the labeling config.


def document_root(environ: Mapping[str, str] = os.environ) -> str:
  """The folder Label Studio serves local files below, as the server reads it.

  The first of LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT,
  HEARTEX_LOCAL_FILES_DOCUMENT_ROOT, LOCAL_FILES_DOCUMENT_ROOT that is set,
  else Label Studio's default, the file system's root.
  """
  for prefix in ENV_PREFIXES:
    value = environ.get(prefix + DOCUMENT_ROOT_ENV)
    if value is not None:
      return os.path.abspath(os.path.expanduser(value))
  return DEFAULT_DOCUMENT_ROOT


def image_url(path: str, root: str) -> str:
  """The local-files URL of image file `path` under document root `root`.

  Raises:
    LabelStudioError: `path` is not a file, or not below `root`.
  """
  if not os.path.isfile(path):
    raise LabelStudioError(
        f'{path!r} is not an image file: Label Studio shows images by their '
        'file (examples read from an array file cannot be shown)')
  relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
  if relative == os.pardir or relative.startswith(os.pardir + os.sep):
    raise LabelStudioError(
        f'{path} is not below the Label Studio document root {root}: start '
        'Label Studio with LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT set to a '
        'folder above the images, and write the tasks with the same root')
  # Quoted as Label Studio quotes it: '&', '#', '?', spaces and non-ASCII
  # names would otherwise break the query string.
  return LOCAL_FILES_URL + urllib.parse.quote(relative.replace(os.sep, '/'))


def _check_modality(modality: str):
  if modality not in MODALITIES:
    raise ValueError(f'modality {modality!r}: expected one of '
                     f'{list(MODALITIES)}')


def tasks(rows: Iterable[Mapping[str, Any]], class_names: Sequence[str],
          modality: str, round_index: int, *,
          root: str | None = None) -> list[dict[str, Any]]:
  """Label Studio tasks for a round's query rows, in their order.

  Args:
    rows: query rows (svp_jax.labeling.QUERY_COLUMNS): id, example (an
      image file's path or a text), predicted (a class name; '' before the
      selector trained: round 0), confidence (a float or its text).
    class_names: the classes, as in `labeling_config`.
    modality: 'image' or 'text'.
    round_index: the round that asks these queries.
    root: the server's local-files document root (images only); None: as
      `document_root()` reads it from this process's environment.

  Raises:
    LabelStudioError: an image example that Label Studio cannot serve.
  """
  _check_modality(modality)
  if modality == 'image' and root is None:
    root = document_root()
  out = []
  for row in rows:
    example = str(row['example'])
    task = {'data': {
        ID_KEY: int(row['id']), ROUND_KEY: int(round_index),
        modality: image_url(example, root) if modality == 'image' else example}}
    predicted = row.get('predicted') or ''
    if predicted:
      if predicted not in class_names:
        raise ValueError(f'row {row["id"]}: predicted {predicted!r} is not '
                         f'one of {list(class_names)}')
      task['predictions'] = [{
          'model_version': f'svp_jax round {round_index}',
          'score': float(row['confidence']),
          'result': [{'from_name': CHOICES_NAME, 'to_name': modality,
                      'type': 'choices',
                      'value': {'choices': [predicted]}}]}]
    out.append(task)
  return out


def write_tasks(path: str, rows: Iterable[Mapping[str, Any]],
                class_names: Sequence[str], modality: str, round_index: int,
                *, root: str | None = None):
  """Writes `tasks(...)` to `path` as Label Studio's JSON import, atomically.

  Every task is built (and checked) before anything is written.
  """
  content = json.dumps(tasks(rows, class_names, modality, round_index,
                             root=root), ensure_ascii=False, indent=1)
  results.write_text(path, content + '\n')


def labeling_config(class_names: Sequence[str], modality: str) -> str:
  """Label Studio's labeling config: one single choice over `class_names`."""
  _check_modality(modality)
  tag = 'Image' if modality == 'image' else 'Text'
  choices = ''.join(f'    <Choice value={saxutils.quoteattr(name)}/>\n'
                    for name in class_names)
  return (f'<View>\n'
          f'  <{tag} name="{modality}" value="${modality}"/>\n'
          f'  <Choices name="{CHOICES_NAME}" toName="{modality}" '
          f'choice="single" required="true">\n'
          f'{choices}'
          f'  </Choices>\n'
          f'</View>\n')


def write_labeling_config(path: str, class_names: Sequence[str],
                          modality: str):
  """Writes `labeling_config(...)` to `path`, atomically."""
  results.write_text(path, labeling_config(class_names, modality))


# ----------------------------------------------------------------------------
# Exports.
#
# A task may carry several annotations (several people, or "create another
# annotation"). The answer is the latest that gives a class: the one last
# updated (a person's correction of an older annotation updates it), then
# the higher annotation id. Cancelled (skipped) annotations and ones that
# choose nothing carry no class, so they never override one that does. Only
# what both formats carry decides (the CSV has no ground-truth flag), so a
# project gives the same answers exported either way.


def read_export(path: str) -> list[tuple[str, str, str]]:
  """(pool id as written, answer or '', where) per task of an export.

  The answer is the class name chosen by the task's latest annotation that
  chose one (above), or '' when none did (unannotated, skipped, cancelled).
  `where` is 'task N (Label Studio ID T)' (JSON, N from 1 in the file) or
  'line N' (CSV: the chosen annotation's line, else the task's). One tuple
  per Label Studio task: a task imported twice gives its id twice. The id
  and answer are not checked against the round here:
  the labeling loop checks them as it checks its own query files.

  Raises:
    LabelStudioError: naming the file (and task or line) for the first
      problem: not UTF-8, not an export of our tasks, several choices in one
      annotation.
  """
  text = _read_text(path)
  start = text.lstrip()[:1]
  if start in ('[', '{') or path.lower().endswith('.json'):
    return _read_json_export(path, text)
  return _read_csv_export(path, text)


def _read_text(path: str) -> str:
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except OSError as e:
    raise LabelStudioError(f'{path}: cannot read the Label Studio export '
                           f'({e.strerror or e})') from None
  try:
    text = raw.decode('utf-8-sig')  # A BOM, if a spreadsheet saved it.
  except UnicodeDecodeError as e:
    line = raw.count(b'\n', 0, e.start) + 1
    raise LabelStudioError(f'{path}, line {line}: not UTF-8 ({e.reason}); '
                           'export it from Label Studio again') from None
  if not text.strip():
    raise LabelStudioError(f'{path}: empty; export the project from Label '
                           'Studio as JSON or CSV')
  return text


def _not_ours(path: str, where: str, problem: str) -> LabelStudioError:
  return LabelStudioError(
      f'{path}, {where}: {problem}; expected Label Studio\'s JSON or CSV '
      'export of the tasks svp_jax wrote (queries/round_<r>.label_studio.json, '
      f'each with data.{ID_KEY})')


def _timestamp(value: Any, path: str, where: str) -> datetime.datetime:
  """An annotation's ISO 8601 time, in UTC; the earliest time when absent."""
  if value in (None, ''):
    return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
  try:
    # Label Studio writes '...Z', which Python < 3.11 does not parse.
    when = datetime.datetime.fromisoformat(str(value).replace('Z', '+00:00'))
  except ValueError:
    raise _not_ours(path, where, f'time {value!r} is not an ISO 8601 '
                    'time') from None
  if when.tzinfo is None:
    when = when.replace(tzinfo=datetime.timezone.utc)
  return when


def _annotation_number(value: Any) -> int:
  text = str(value if value is not None else '').strip()
  return int(text) if text.isdigit() else -1


def _raw_id(value: Any, path: str, where: str) -> str:
  """data.pool_id as written: a string as is, a number as JSON writes it."""
  if isinstance(value, str):
    if not value.strip():
      raise _not_ours(path, where, f'data.{ID_KEY} is empty')
    return value
  if isinstance(value, (int, float)):  # bool too: the loop refuses it.
    return json.dumps(value)
  raise _not_ours(path, where, f'no data.{ID_KEY}' if value is None else
                  f'data.{ID_KEY} is {json.dumps(value)}')


def _single(choices: list[Any], path: str, where: str) -> str:
  """The one class of a single-choice answer; '' when it chose none."""
  if len(choices) > 1:
    raise LabelStudioError(
        f'{path}, {where}: one annotation chose {len(choices)} classes '
        f'{choices}; the question is single-choice: keep one in Label '
        'Studio and export again')
  if choices and not isinstance(choices[0], str):
    raise _not_ours(path, where, f'choice {json.dumps(choices[0])} is not a '
                    'class name')
  return choices[0] if choices else ''


def _latest(candidates: list[tuple[Any, str, str]], where: str
            ) -> tuple[str, str]:
  """(answer, where) of the latest candidate (sort key, answer, where) that
  has an answer; ('', `where`) when none has."""
  answered = [c for c in candidates if c[1]]
  if not answered:
    return '', where
  latest = max(answered, key=lambda c: c[0])
  return latest[1], latest[2]


def _json_answer(annotation: Any, path: str, where: str) -> str:
  """The class one JSON annotation chose ('' for none or cancelled)."""
  if not isinstance(annotation, dict):
    raise _not_ours(path, where, 'an annotation is not an object')
  if annotation.get('was_cancelled') or annotation.get('skipped'):
    return ''
  result = annotation.get('result') or []
  if not isinstance(result, list):
    raise _not_ours(path, where, 'an annotation\'s result is not a list')
  choices, other = [], set()
  for item in result:
    value = item.get('value') if isinstance(item, dict) else None
    if not isinstance(value, dict) or 'choices' not in value:
      continue  # Another kind of region (a comment, say): no class.
    if item.get('from_name') != CHOICES_NAME:
      other.add(str(item.get('from_name')))
      continue
    if not isinstance(value['choices'], list):
      raise _not_ours(path, where, 'value.choices is not a list')
    choices += value['choices']
  if other and not choices:
    raise _not_ours(path, where, f'choices of {sorted(other)} but none of '
                    f'{CHOICES_NAME!r}: was the labeling config changed?')
  return _single(choices, path, where)


def _read_json_export(path: str, text: str) -> list[tuple[str, str, str]]:
  try:
    exported = json.loads(text)
  except json.JSONDecodeError as e:
    raise LabelStudioError(f'{path}, line {e.lineno}: not JSON ({e.msg}); '
                           'export the project from Label Studio again, as '
                           'JSON or CSV') from None
  if not isinstance(exported, list):
    raise _not_ours(path, 'top level', 'not a list of tasks')
  out = []
  for n, task in enumerate(exported, 1):
    where = f'task {n}'
    if isinstance(task, dict) and task.get('id') is not None:
      where += f' (Label Studio ID {task["id"]})'
    if not isinstance(task, dict) or not isinstance(task.get('data'), dict):
      # JSON-MIN flattens the data: its id is not ours to trust.
      raise _not_ours(path, where, 'no data (a JSON-MIN export? export as '
                      'JSON or CSV)')
    raw = _raw_id(task['data'].get(ID_KEY), path, where)
    annotations = task.get('annotations', [])
    if not isinstance(annotations, list):
      raise _not_ours(path, where, 'annotations is not a list')
    candidates = []
    for i, annotation in enumerate(annotations):
      answer = _json_answer(annotation, path, where)
      candidates.append(((_timestamp(annotation.get('updated_at') or
                                     annotation.get('created_at'), path,
                                     where),
                          _annotation_number(annotation.get('id')), i),
                         answer, where))
    out.append((raw,) + _latest(candidates, where))
  return out


def _csv_answer(cell: str, path: str, where: str) -> str:
  """The class a CSV label cell holds.

  Label Studio writes one choice as its text, and anything else as JSON: an
  object {"choices": [...]} for several choices in one region, a list for
  several regions.
  """
  if not cell.strip():
    return ''
  if cell.strip()[:1] in ('{', '['):
    try:
      value = json.loads(cell)
    except json.JSONDecodeError:
      return cell  # A class name that starts with a bracket.
    if isinstance(value, dict) and isinstance(value.get('choices'), list):
      return _single(value['choices'], path, where)
    if isinstance(value, list):
      return _single([v for part in value for v in (
          part.get('choices', [part]) if isinstance(part, dict) else [part])],
                     path, where)
  return cell


def _read_csv_export(path: str, text: str) -> list[tuple[str, str, str]]:
  # Strict: a quote left open (a file cut short) is an error, not a cell
  # that swallows the rest.
  reader = csv.DictReader(io.StringIO(text, newline=''), strict=True)
  try:
    columns = reader.fieldnames or []
    if ID_KEY not in columns:
      raise _not_ours(path, 'line 1', f'no column {ID_KEY!r}')
    # One row per annotation, and one for a task without any: grouped by
    # Label Studio's task id (a task imported twice is two tasks).
    tasks_seen: dict[str, dict[str, Any]] = {}
    for row in reader:
      where = f'line {reader.line_num}'
      if None in row:
        raise _not_ours(path, where, 'more cells than columns')
      raw = (row[ID_KEY] or '').strip()
      if not raw:
        raise _not_ours(path, where, f'empty {ID_KEY!r}')
      key = (row.get('id') or '').strip() or raw
      task = tasks_seen.setdefault(key, {'id': raw, 'where': where,
                                         'candidates': []})
      if task['id'] != raw:
        raise _not_ours(path, where, f'Label Studio task {key} is '
                        f'{ID_KEY} {task["id"]} on {task["where"]} and {raw} '
                        'here')
      annotation = (row.get('annotation_id') or '').strip()
      if not annotation:
        continue  # A task nobody annotated.
      if CHOICES_NAME not in columns:
        raise _not_ours(path, where, f'annotation {annotation} and no column '
                        f'{CHOICES_NAME!r}: was the labeling config changed?')
      sort_key = (_timestamp(row.get('updated_at') or row.get('created_at'),
                             path, where),
                  _annotation_number(annotation), reader.line_num)
      task['candidates'].append(
          (sort_key, _csv_answer(row[CHOICES_NAME] or '', path, where),
           where))
  except csv.Error as e:
    raise LabelStudioError(f'{path}, after line {reader.line_num}: not a '
                           f'CSV file ({e}); export it from Label Studio '
                           'again, as JSON or CSV') from None
  return [(t['id'],) + _latest(t['candidates'], t['where'])
          for t in tasks_seen.values()]
