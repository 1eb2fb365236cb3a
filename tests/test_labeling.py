"""The labeling loop (svp_jax.labeling): answers checked, merged, and equal
selections to the simulated run when the answers are the known labels."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import own_images
from svp_jax import active
from svp_jax import experiment
from svp_jax import labeling
from svp_jax import results
from svp_jax import validation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ('cat', 'dog')


def write_answers(path, rows, header=('id', 'example', 'predicted',
                                      'confidence', 'answer')):
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  return str(path)


# ----------------------------------------------------------------------------
# Answers.


def test_answers_are_read_and_blanks_skipped(tmp_path):
  path = write_answers(tmp_path / 'a.csv', [
      (3, 'x.png', 'cat', '0.6', 'dog'), (5, 'y.png', 'cat', '0.7', ''),
      (7, 'z.png', 'dog', '0.9', ' cat '), (3, 'x.png', 'cat', '0.6', 'dog')])
  answers = labeling.read_answers(path, {3, 5, 7}, CLASSES)
  assert {i: a.label for i, a in answers.items()} == {3: 'dog', 7: 'cat'}
  assert answers[7].where == 'line 4'


def bad_unknown_class(path):
  return write_answers(path, [(3, '', '', '', 'cow')]), (
      r"line 2: answer 'cow' is not a class; expected one of \['cat', 'dog'\]")


def bad_id_not_asked(path):
  return write_answers(path, [(3, '', '', '', 'cat'), (4, '', '', '', 'cat')]
                       ), "line 3: id '4' was not asked"


def bad_id_not_a_number(path):
  return write_answers(path, [('three', '', '', '', 'cat')]), (
      "line 2: id 'three' is not a pool index")


def bad_answered_twice_differently(path):
  return write_answers(path, [(3, '', '', '', 'cat'), (5, '', '', '', 'cat'),
                              (3, '', '', '', 'dog')]), (
                                  "lines 2 and 4: id 3 answered 'cat' and "
                                  "'dog'")


def bad_empty_file(path):
  path.write_text('')
  return str(path), "no column 'id'"


def bad_non_ascii_digit_id(path):
  # str.isdigit() accepts '3²' and int() then fails: one error, not that.
  return write_answers(path, [('3\u00b2', '', '', '', 'cat')]), (
      "line 2: id '3\u00b2' is not a pool index")


def bad_fraction_id(path):
  return write_answers(path, [('3.5', '', '', '', 'cat')]), (
      "line 2: id '3.5' is not a pool index")


def bad_wrong_case(path):
  return write_answers(path, [(3, '', '', '', 'Cat')]), (
      "line 2: answer 'Cat' is not a class")


def bad_not_utf8(path):
  path.write_bytes(b'id,answer\n3,cat\n5,caf\xe9\n')
  return str(path), 'line 3: not UTF-8'


def bad_answer_column_removed(path):
  return write_answers(path, [(3, 'cat')], header=('id', 'label')), (
      "no column 'answer'")


BAD_ANSWERS = [bad_unknown_class, bad_id_not_asked, bad_id_not_a_number,
               bad_answered_twice_differently, bad_empty_file,
               bad_not_utf8, bad_answer_column_removed,
               bad_non_ascii_digit_id, bad_fraction_id, bad_wrong_case]


@pytest.mark.parametrize('case', BAD_ANSWERS, ids=lambda c: c.__name__[4:])
def test_bad_answers_are_one_error_naming_the_file(tmp_path, case):
  path, message = case(tmp_path / 'answers.csv')
  with pytest.raises(labeling.AnswerError, match=message) as error:
    labeling.read_answers(path, {3, 5, 7}, CLASSES)
  assert str(error.value).startswith(path) and '\n' not in str(error.value)


def test_spreadsheet_saved_answers_are_read(tmp_path):
  # Excel where the decimal mark is a comma: a BOM, ';', CRLF, ids as
  # numbers ('3.0'), the example column mangled; ids alone count.
  path = tmp_path / 'round_0.csv'
  path.write_bytes('\ufeffid;example;predicted;confidence;answer\r\n'
                   "3.0;'=HYPERLINK(x);;;dog\r\n5;;;;\r\n7;;;;cat\r\n"
                   ';;;;\r\n'.encode('utf-8'))
  answers = labeling.read_answers(str(path), {3, 5, 7}, CLASSES)
  assert {i: a.label for i, a in answers.items()} == {3: 'dog', 7: 'cat'}


def test_answers_match_class_names_stripped_and_nfc(tmp_path):
  # A folder named on macOS (NFD) and one with a trailing space: answers
  # typed in NFC, without the space, are theirs.
  names = ('cafe\u0301', 'dog ')
  path = write_answers(tmp_path / 'a.csv', [(3, '', '', '', 'caf\u00e9'),
                                            (5, '', '', '', 'dog')])
  answers = labeling.read_answers(path, {3, 5}, names)
  assert {i: a.label for i, a in answers.items()} == {3: names[0],
                                                      5: names[1]}


def test_query_cells_a_spreadsheet_would_run_are_neutralised():
  for text in ('=1+1', '+1', '-2', '@SUM(A1)', '\tx', '\rx'):
    assert labeling.spreadsheet_safe(text) == "'" + text
  for text in ('cat.png', "'=quoted", '', '1-2'):
    assert labeling.spreadsheet_safe(text) == text


# ----------------------------------------------------------------------------
# Merging: every answer, any round, corrections kept.

EXAMPLES = [f'e{i}' for i in range(10)]


def session(answers=''):
  """What merging reads of a session (no experiment needed)."""
  return labeling.Session(exp=None, class_names=CLASSES, examples=EXAMPLES,
                          file_labels=np.full(10, -1, np.int32),
                          answers=answers)


def ask_round(workdir, round_index, ids):
  """A round's index and query file, as `ask` writes them."""
  os.makedirs(os.path.join(workdir, labeling.QUERIES_DIR), exist_ok=True)
  np.savetxt(labeling.asked_path(workdir, round_index), ids, fmt='%d')
  labeling.write_rows(labeling.query_path(workdir, round_index),
                      [{'id': i, 'example': EXAMPLES[i], 'answer': ''}
                       for i in ids], labeling.QUERY_COLUMNS)


def fill(workdir, round_index, answers):
  """A person edits round `round_index`'s file: {id: answer}."""
  path = labeling.query_path(workdir, round_index)
  with open(path, encoding='utf-8', newline='') as f:
    rows = list(csv.DictReader(f))
  for row in rows:
    row['answer'] = answers.get(int(row['id']), row['answer'])
  labeling.write_rows(path, rows, labeling.QUERY_COLUMNS)


def labels_of(store):
  """Each id's current label: its last row."""
  return {row['id']: row['label'] for row in store}


def test_every_round_is_merged_and_corrections_are_kept(tmp_path):
  workdir = str(tmp_path)
  ask_round(workdir, 0, [1, 2, 3])
  ask_round(workdir, 1, [4, 5])
  fill(workdir, 0, {1: 'cat'})  # Round 0 answered late, with round 1.
  fill(workdir, 1, {4: 'dog'})
  labels = labeling.merge_answers(session(), workdir)
  assert labels_of(labels.store) == {1: 'cat', 4: 'dog'}
  # A wrong answer fixed and a skipped row filled in, in round 0's file.
  fill(workdir, 0, {1: 'dog', 2: 'cat'})
  labels = labeling.merge_answers(session(), workdir)
  store = labeling.read_store(workdir)
  assert labels_of(store) == {1: 'dog', 2: 'cat', 4: 'dog'}
  assert [(r['id'], r['label'], r['previous'], r['change'], r['round'],
           r['source'], r['where']) for r in store] == [
               (1, 'cat', '', 'answer', 0, 'queries/round_0.csv', 'line 2'),
               (4, 'dog', '', 'answer', 1, 'queries/round_1.csv', 'line 2'),
               (1, 'dog', 'cat', 'correction', 0, 'queries/round_0.csv',
                'line 2'),
               (2, 'cat', '', 'answer', 0, 'queries/round_0.csv', 'line 3')]
  assert list(labels.labels[[1, 2, 3, 4]]) == [1, 0, -1, 1]
  rounds = results.read_csv(os.path.join(workdir, labeling.ROUNDS_CSV))
  assert [(r['round'], r['answered'], r['corrections']) for r in rounds] == [
      (0, 2, 1), (1, 1, 0)]
  exported = labeling.export_rows(session(), labels)
  assert [(r['id'], r['label'], r['origin'], r['split'])
          for r in exported] == [
              (1, 'dog', 'round 0, corrected in queries/round_0.csv', 'train'),
              (2, 'cat', 'round 0', 'train'), (4, 'dog', 'round 1', 'train')]
  # Nothing new: merging again adds nothing.
  before = (tmp_path / labeling.LABELS_CSV).read_bytes()
  labeling.merge_answers(session(), workdir)
  assert (tmp_path / labeling.LABELS_CSV).read_bytes() == before


def test_a_merged_answer_made_blank_is_refused_and_nothing_merged(tmp_path):
  workdir = str(tmp_path)
  ask_round(workdir, 0, [1, 2, 3])
  fill(workdir, 0, {1: 'cat', 2: 'dog'})
  labeling.merge_answers(session(), workdir)
  before = (tmp_path / labeling.LABELS_CSV).read_bytes()
  fill(workdir, 0, {1: '', 3: 'cat'})
  with pytest.raises(labeling.AnswerError,
                     match=r"round_0\.csv: id 1 was answered 'cat' \(line 2\)"
                     ' and now has no answer there'):
    labeling.merge_answers(session(), workdir)
  assert (tmp_path / labeling.LABELS_CSV).read_bytes() == before
  # Its row deleted: the same.
  path = labeling.query_path(workdir, 0)
  labeling.write_rows(path, [{'id': 2, 'answer': 'dog'}],
                      labeling.QUERY_COLUMNS)
  with pytest.raises(labeling.AnswerError, match='id 1 was answered'):
    labeling.merge_answers(session(), workdir)
  assert (tmp_path / labeling.LABELS_CSV).read_bytes() == before


def test_two_files_newly_disagreeing_merge_nothing(tmp_path):
  workdir = str(tmp_path)
  ask_round(workdir, 0, [1, 2])
  ask_round(workdir, 1, [2, 3])  # 2 was skipped in round 0, asked again.
  fill(workdir, 0, {2: 'cat'})
  fill(workdir, 1, {2: 'dog'})
  with pytest.raises(labeling.AnswerError,
                     match=r"id 2 is answered 'cat' in .*round_0\.csv "
                     r"\(line 3\) and 'dog' in .*round_1\.csv"):
    labeling.merge_answers(session(), workdir)
  assert not (tmp_path / labeling.LABELS_CSV).exists()


def test_an_answer_file_is_copied_once_and_merged_into_its_round(tmp_path):
  workdir = str(tmp_path / 'run')
  ask_round(workdir, 0, [1, 2])
  ask_round(workdir, 1, [2, 3])
  answers = write_answers(tmp_path / 'mine.csv', [(2, '', '', '', 'dog'),
                                                  (3.0, '', '', '', 'cat')],
                          header=('id', 'x', 'y', 'z', 'answer'))
  labeling.merge_answers(session(answers), workdir)
  copy = os.path.join(workdir, 'queries', 'answers_1.csv')
  assert open(copy, 'rb').read() == open(answers, 'rb').read()
  store = labeling.read_store(workdir)
  assert [(r['id'], r['label'], r['round'], r['source']) for r in store] == [
      (2, 'dog', 1, 'queries/answers_1.csv'),
      (3, 'cat', 1, 'queries/answers_1.csv')]
  # The same file again: not copied again, nothing new; another: copied.
  labeling.merge_answers(session(answers), workdir)
  assert labeling.answer_copies(workdir) == ['queries/answers_1.csv']
  write_answers(tmp_path / 'mine.csv', [(3, '', '', '', 'dog')],
                header=('id', 'x', 'y', 'z', 'answer'))
  labels = labeling.merge_answers(session(answers), workdir)
  assert labeling.answer_copies(workdir) == ['queries/answers_1.csv',
                                             'queries/answers_2.csv']
  assert labels_of(labels.store) == {2: 'dog', 3: 'dog'}
  assert labeling.export_rows(session(), labels)[1]['origin'] == (
      'round 1, corrected in queries/answers_2.csv')
  # An id no round asked: one error, nothing copied.
  write_answers(tmp_path / 'mine.csv', [(7, '', '', '', 'dog')],
                header=('id', 'x', 'y', 'z', 'answer'))
  with pytest.raises(labeling.AnswerError,
                     match="mine.csv, line 2: id '7' was not asked in any"):
    labeling.merge_answers(session(answers), workdir)
  assert len(labeling.answer_copies(workdir)) == 2


def label_studio_export(path, answers):
  """A Label Studio JSON export: {pool id: class, or None for a skip}."""
  tasks = [{'id': n, 'data': {'pool_id': i, 'round': 1}, 'annotations': [{
      'id': n, 'was_cancelled': answer is None,
      'created_at': '2026-12-08T04:05:10Z', 'result': [] if answer is None
      else [{'from_name': 'label', 'to_name': 'image', 'type': 'choices',
             'value': {'choices': [answer]}}]}]}
           for n, (i, answer) in enumerate(answers.items(), 1)]
  path.write_text(json.dumps(tasks), encoding='utf-8')
  return str(path)


def test_a_label_studio_export_is_merged_as_answers(tmp_path):
  workdir = str(tmp_path / 'run')
  ask_round(workdir, 0, [1, 2])
  ask_round(workdir, 1, [2, 3])
  fill(workdir, 0, {1: 'cat'})
  labeling.merge_answers(session(), workdir)
  export = label_studio_export(tmp_path / 'project.json',
                               {1: 'dog', 2: 'cat', 3: None})
  labels = labeling.merge_answers(session(export), workdir)
  assert labeling.answer_copies(workdir) == ['queries/answers_1.json']
  assert [(r['id'], r['label'], r['previous'], r['change'], r['round'],
           r['where']) for r in labels.store[1:]] == [
               (1, 'dog', 'cat', 'correction', 0, 'task 1 (Label Studio ID 1)'),
               (2, 'cat', '', 'answer', 1, 'task 2 (Label Studio ID 2)')]
  # Its CSV export too (Label Studio's columns: its task id, then ours).
  (tmp_path / 'project.csv').write_text(
      'annotation_id,created_at,id,label,pool_id,round,updated_at\n'
      '7,2026-12-08T04:05:10Z,3,dog,3,1,2026-12-08T04:05:10Z\n',
      encoding='utf-8')
  labels = labeling.merge_answers(session(str(tmp_path / 'project.csv')),
                                  workdir)
  assert labels_of(labels.store)[3] == 'dog'
  assert labels.store[-1]['source'] == 'queries/answers_2.csv'
  # The same checks as a query file's: an unknown class is one error.
  bad = label_studio_export(tmp_path / 'bad.json', {3: 'cow'})
  with pytest.raises(labeling.AnswerError,
                     match=r"bad\.json, task 1 \(Label Studio ID 1\): "
                     "answer 'cow' is not a class"):
    labeling.merge_answers(session(bad), workdir)


def test_a_spreadsheet_saved_store_is_read_and_a_broken_one_refused(
    tmp_path):
  # A store from before histories, saved by Excel: BOM, ';', '3.0'.
  (tmp_path / labeling.LABELS_CSV).write_bytes(
      '\ufeffid;example;label;round\r\n3.0;e3;cat;0\r\n5;e5;dog ;1\r\n'
      .encode('utf-8'))
  store = labeling.read_store(str(tmp_path))
  assert [(r['id'], r['label'], r['round'], r['source'], r['change'])
          for r in store] == [(3, 'cat', 0, 'queries/round_0.csv', 'answer'),
                              (5, 'dog', 1, 'queries/round_1.csv', 'answer')]
  (tmp_path / labeling.LABELS_CSV).write_text(
      'id,example,label,round\n3\u00b2,e3,cat,0\n', encoding='utf-8')
  with pytest.raises(validation.ConfigError,
                     match=r"labels\.csv, line 2: id '3\u00b2' and round '0'"):
    labeling.read_store(str(tmp_path))


def test_a_failed_merge_leaves_the_previous_store(tmp_path, monkeypatch):
  workdir = str(tmp_path)
  ask_round(workdir, 0, [1, 4])
  fill(workdir, 0, {1: 'cat', 4: 'dog'})
  labeling.merge_answers(session(), workdir)
  before = (tmp_path / labeling.LABELS_CSV).read_bytes()
  ask_round(workdir, 1, [2])
  fill(workdir, 1, {2: 'dog'})

  def fail_half_way(self, rows):
    self.writerow(next(iter(rows)))
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(csv.DictWriter, 'writerows', fail_half_way)
  with pytest.raises(results.WriteError, match='previous version is intact'):
    labeling.merge_answers(session(), workdir)
  assert (tmp_path / labeling.LABELS_CSV).read_bytes() == before
  assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]


def test_test_examples_are_drawn_apart_from_the_files_labels():
  key = np.asarray([0, 7], np.uint32)
  file_labels = np.full(20, -1, np.int32)
  file_labels[:5] = 0
  drawn = labeling.draw_test_examples(key, file_labels, 6)
  assert len(set(drawn.tolist())) == 6 and drawn.min() >= 5
  assert np.array_equal(drawn, labeling.draw_test_examples(key, file_labels,
                                                            6))
  with pytest.raises(validation.ConfigError,
                     match='test_examples=16: the files leave only 15'):
    labeling.draw_test_examples(key, file_labels, 16)


# ----------------------------------------------------------------------------
# The loop against the simulated run.


def tiny_config(path, data_dir, method, label):
  config = own_images.get_config(f'{method},quick{",label" if label else ""}')
  config.data.path = path
  config.data.data_dir = str(data_dir)
  config.selection.initial_subset = 4.0
  config.selection.rounds = (3.0, 3.0)
  if label:
    config.labeling.ignore_file_labels = True
  return config


def labeled_sets(workdir):
  """The cumulative labeled set after each round of a simulated run."""
  summary = results.read_json(os.path.join(workdir, 'summary.json'))
  sizes = [int(r['labeled']) for r in summary['rounds']]
  paths = [os.path.join(workdir, 'initial_subset_4.index')] + [
      os.path.join(workdir, 'proxy', str(n), f'labeled_{n}.index')
      for n in sizes[1:]]
  return [np.loadtxt(p, dtype=np.int64).tolist() for p in paths]


@pytest.mark.slow
# 'baseline': the selector trains as the target, and reuses it.
@pytest.mark.parametrize('method', ['least_confidence', 'kcenters',
                                    'least_confidence,baseline'])
def test_answering_with_the_known_labels_selects_what_the_simulation_does(
    own_files, tmp_path, method, load_script):
  answer = load_script('answer_queries').answer
  simulated = tmp_path / 'simulated'
  active.run(tiny_config(own_files['images'], tmp_path / 'tfds', method,
                         False), str(simulated))
  loop = str(tmp_path / 'loop')
  config = tiny_config(own_files['images'], tmp_path / 'tfds', method, True)
  asked = []
  for round_index in range(3):
    outcome = labeling.run(config, loop)
    assert outcome['round'] == round_index
    asked.extend(outcome['picked'].tolist())
    answer(loop)
  assert labeling.run(config, loop)['round'] is None  # Schedule complete.
  want = labeled_sets(str(simulated))
  got = [sorted(asked[:n]) for n in (4, 7, 10)]
  assert got == want
  # The store holds every answer, each with its round; the export too.
  store = labeling.read_store(loop)
  assert sorted(row['id'] for row in store) == want[-1]
  assert [row['round'] for row in store].count(0) == 4
  config.labeling.action = 'export'
  assert labeling.run(config, loop)['labeled'] == 10
  config.labeling.action = 'train_target'
  trained = labeling.run(config, loop)
  target_rows = results.read_csv(os.path.join(simulated, 'target.csv'))
  assert trained['test_accuracy'] == pytest.approx(
      target_rows[-1]['test_accuracy'])


def test_skipped_answers_stay_unlabeled_and_may_be_asked_again(
    own_files, tmp_path, monkeypatch):
  # The loop builds the simulated run's experiment and selects through its
  # round step, not copies of them.
  calls = []
  for name in ('make_experiment', 'round_step'):
    original = getattr(active, name)
    monkeypatch.setattr(active, name, lambda *a, original=original, name=name,
                        **k: calls.append(name) or original(*a, **k))
  loop = str(tmp_path / 'loop')
  config = tiny_config(own_files['images'], tmp_path / 'tfds', 'random', True)
  first = labeling.run(config, loop)
  assert calls == ['make_experiment', 'round_step']
  path = first['queries']
  with pytest.raises(labeling.AnswerError,
                     match=r'round_0\.csv: no answers; fill in the answer'):
    labeling.run(config, loop)  # Nothing answered yet.
  with open(path, encoding='utf-8', newline='') as f:
    rows = list(csv.DictReader(f))
  rows[0]['answer'] = 'dark'
  labeling.write_rows(path, rows, labeling.QUERY_COLUMNS)
  second = labeling.run(config, loop)
  assert [r['id'] for r in labeling.read_store(loop)] == [int(rows[0]['id'])]
  assert second['round'] == 1
  rounds = results.read_csv(os.path.join(loop, labeling.ROUNDS_CSV))
  assert [(r['round'], r['asked'], r.get('answered')) for r in rounds][0] == (
      0, 4, 1)


def test_bad_answers_at_the_command_line_merge_nothing(own_files, tmp_path):
  workdir = tmp_path / 'loop'
  command = [sys.executable, 'main.py',
             '--config=configs/own_images.py:random,quick,label',
             f'--config.data.path={own_files["images"]}',
             f'--config.data.data_dir={tmp_path / "tfds"}',
             '--config.selection.initial_subset=4.0',
             '--config.selection.rounds=(3.0,)',
             '--config.labeling.ignore_file_labels=True',
             f'--workdir={workdir}']
  subprocess.run(command, cwd=REPO, check=True, capture_output=True,
                 timeout=300)
  path = labeling.query_path(str(workdir), 0)
  with open(path, encoding='utf-8', newline='') as f:
    rows = list(csv.DictReader(f))
  rows[1]['answer'] = 'tiger'
  labeling.write_rows(path, rows, labeling.QUERY_COLUMNS)
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f'error: {path}, line 3: answer ') and 'tiger' in last
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(workdir / labeling.LABELS_CSV)


# ----------------------------------------------------------------------------
# From zero labels.


def unlabeled_images(root):
  """24 images in ROOT/unlabeled/ (even: dark, odd: light), classes.txt."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  folder = root / 'unlabeled'
  folder.mkdir(parents=True)
  for i in range(24):
    pixels = rng.integers(0, 100, (8, 8)) + 150 * (i % 2)
    Image.fromarray(pixels.astype(np.uint8)).save(folder / f'{i:02d}.png')
  (root / 'classes.txt').write_text('dark\nlight\n', encoding='utf-8')
  return str(root)


def answer_truly(path, skip=(), wrong=()):
  """Fills a query file with each image's class (by its name), except ids
  in `skip` (blank) and `wrong` (the other class)."""
  with open(path, encoding='utf-8', newline='') as f:
    rows = list(csv.DictReader(f))
  for row in rows:
    light = int(os.path.basename(row['example'])[:2]) % 2
    if int(row['id']) in wrong:
      light = 1 - light
    row['answer'] = '' if int(row['id']) in skip else ('dark', 'light')[light]
  labeling.write_rows(path, rows, labeling.QUERY_COLUMNS)
  return rows


def zero_label_loop(root, rounds):
  """(images folder, config) of a least-confidence loop from zero labels
  on `unlabeled_images`: 4 asked at random, then `rounds`."""
  images = unlabeled_images(root / 'images')
  config = own_images.get_config('least_confidence,quick,label')
  config.data.path = images
  config.data.data_dir = str(root / 'tfds')
  config.selection.initial_subset = 4.0
  config.selection.rounds = rounds
  return images, config


@pytest.mark.slow  # Two loops of 2 rounds, 3 small trainings: about 30 s.
def test_a_loop_starts_from_zero_labels_with_and_without_test_examples(
    tmp_path):
  root, config = zero_label_loop(tmp_path, rounds=(3.0,))
  config.labeling.test_examples = 4
  loop = str(tmp_path / 'loop')
  first = labeling.run(config, loop)
  test_ids = labeling.read_test_ids(loop).tolist()
  # The same queries as Label Studio tasks, and its labeling config.
  with open(labeling.tasks_path(loop, 0), encoding='utf-8') as f:
    assert sorted(t['data']['pool_id'] for t in json.load(f)) == sorted(
        experiment.read_index(labeling.asked_path(loop, 0)).tolist())
  assert os.path.exists(os.path.join(loop, 'queries',
                                     labeling.LABEL_STUDIO_CONFIG))
  asked = experiment.read_index(labeling.asked_path(loop, 0)).tolist()
  assert first['round'] == 0 and len(test_ids) == 4
  assert sorted(asked) == sorted(first['picked'].tolist() + test_ids)
  assert not set(first['picked'].tolist()) & set(test_ids)
  skipped = first['picked'][0]
  answer_truly(first['queries'], skip={skipped})
  # Export before any query run merged them: every answer is in it.
  config.labeling.action = 'export'
  assert labeling.run(config, loop)['labeled'] == 7
  exported = results.read_csv(os.path.join(loop, labeling.EXPORT_CSV))
  assert sorted(int(r['id']) for r in exported if r['split'] == 'test') == (
      sorted(test_ids))
  config.labeling.action = 'query'
  second = labeling.run(config, loop)
  assert second['round'] == 1
  # Never a test example or an answered one (the skipped one may be asked).
  assert set(second['picked'].tolist()) & set(asked) <= {skipped}
  rounds = results.read_csv(os.path.join(loop, labeling.ROUNDS_CSV))
  assert rounds[1]['labeled'] == 3  # Test examples are not trained on.
  assert 0.0 <= rounds[1]['selector_accuracy'] <= 1.0  # On the 4 answered.
  # Round 1 answered; in round 0's file a test answer is corrected and the
  # skipped row filled in.
  answer_truly(second['queries'])
  answer_truly(first['queries'], wrong={test_ids[0]})
  config.labeling.action = 'train_target'
  trained = labeling.run(config, loop)
  training = set(first['picked'].tolist()) | set(second['picked'].tolist())
  assert trained['labeled'] == len(training)
  assert 0.0 <= trained['test_accuracy'] <= 1.0
  config.labeling.action = 'export'
  assert labeling.run(config, loop)['labeled'] == len(training) + 4
  exported = {int(r['id']): r
              for r in results.read_csv(os.path.join(loop,
                                                     labeling.EXPORT_CSV))}
  assert exported[test_ids[0]]['origin'] == (
      'round 0, corrected in queries/round_0.csv')
  assert exported[test_ids[0]]['split'] == 'test'
  rounds = results.read_csv(os.path.join(loop, labeling.ROUNDS_CSV))
  assert [(r['answered'], r['corrections']) for r in rounds] == [(8, 1),
                                                                 (3, 0)]

  # No test split and no test examples: selection runs, no accuracy.
  config.labeling.test_examples = 0
  config.labeling.action = 'query'
  bare = str(tmp_path / 'bare')
  answer_truly(labeling.run(config, bare)['queries'])
  assert labeling.run(config, bare)['round'] == 1
  rounds = results.read_csv(os.path.join(bare, labeling.ROUNDS_CSV))
  assert rounds[1]['selector_accuracy'] == ''
  config.labeling.action = 'train_target'
  assert labeling.run(config, bare)['test_accuracy'] is None
  target = results.read_csv(os.path.join(bare, 'target.csv'))
  assert target[0]['test_accuracy'] == ''


def test_labels_of_a_workdir_keyed_by_an_older_reader_survive_the_upgrade(
    tmp_path):
  # A workdir from before own_files.FORMAT_VERSION 2: its data_key.json has
  # another key and no format. Export (no training) must go on when every
  # stored label still names its example, and stop when one does not.
  root, config = zero_label_loop(tmp_path, rounds=(3.0,))
  config.labeling.action = 'export'
  loop = str(tmp_path / 'loop')
  labeling.run(config, loop)  # Records config.json and data_key.json.
  examples = [os.path.join(root, 'unlabeled', f'{i:02d}.png')
              for i in range(24)]
  key_path = os.path.join(loop, 'data_key.json')
  new_key = results.read_json(key_path)
  results.write_json(key_path, {'path': root, 'key': '0123456789abcdef'})
  # Round 0 asked 3 and 5 and had 3 answered, as an older loop wrote it.
  os.makedirs(os.path.join(loop, labeling.QUERIES_DIR))
  np.savetxt(labeling.asked_path(loop, 0), [3, 5], fmt='%d')
  labeling.write_rows(labeling.query_path(loop, 0), [
      {'id': 3, 'example': examples[3], 'answer': 'light'},
      {'id': 5, 'example': examples[5], 'answer': ''}], labeling.QUERY_COLUMNS)
  store = [{'id': 3, 'example': examples[3], 'label': 'light', 'round': 0}]
  labeling.write_rows(os.path.join(loop, labeling.LABELS_CSV), store,
                      ('id', 'example', 'label', 'round'))
  assert labeling.run(config, loop)['labeled'] == 1
  assert results.read_json(key_path) == new_key
  results.write_json(key_path, {'path': root, 'key': '0123456789abcdef'})
  store[0]['example'] = examples[4]
  labeling.write_rows(os.path.join(loop, labeling.LABELS_CSV), store,
                      ('id', 'example', 'label', 'round'))
  with pytest.raises(validation.ConfigError, match=(
      r"older svp_jax \(file format 1, now 2\).*labels.csv: id 3 was "
      r".*04.png', the pool now has .*03.png' there")):
    labeling.run(config, loop)
  assert results.read_json(key_path)['key'] == '0123456789abcdef'


# ----------------------------------------------------------------------------
# What the preemption soak of the loop found (docs/results/preemption_soak_jobs/).


def test_a_merge_removes_trainings_saved_on_the_labels_before_it(tmp_path):
  # A training saved before a correction would resume at the same size
  # with what it learnt from the old label (the preemption soak's finding).
  workdir = str(tmp_path)
  ask_round(workdir, 0, [1, 2])
  fill(workdir, 0, {1: 'cat', 2: 'dog'})
  labeling.merge_answers(session(), workdir)
  saved = os.path.join(active.round_checkpoints_dir(workdir), 'selector_2')
  os.makedirs(saved)
  labeling.merge_answers(session(), workdir)  # Nothing new: kept.
  assert os.path.isdir(saved)
  fill(workdir, 0, {1: 'dog'})  # A correction: same size, other labels.
  labeling.merge_answers(session(), workdir)
  assert not os.path.exists(active.round_checkpoints_dir(workdir))


def test_answers_in_a_query_file_left_without_its_index_are_kept(tmp_path):
  path = str(tmp_path / 'round_1.csv')
  labeling.write_rows(path, [{'id': 3, 'answer': 'cat'}, {'id': 5,
                      'answer': ''}], labeling.QUERY_COLUMNS)
  assert labeling.interrupted_answers(path, np.array([5, 3])) == {3: 'cat'}
  assert labeling.interrupted_answers(str(tmp_path / 'none.csv'),
                                      np.array([3])) == {}
  with pytest.raises(labeling.AnswerError, match=r'answers ids \[3\] that '
                     'this round no longer asks'):
    labeling.interrupted_answers(path, np.array([5, 4]))


def test_round_counts_follow_the_store_after_a_stop_between_them(tmp_path):
  # A run stopped after writing the store, before rounds.csv: the next
  # merge has nothing new, and still writes the round's counts.
  workdir = str(tmp_path)
  ask_round(workdir, 0, [1, 2])
  fill(workdir, 0, {1: 'cat', 2: 'dog'})
  labeling.merge_answers(session(), workdir)
  os.remove(os.path.join(workdir, labeling.ROUNDS_CSV))
  labeling.merge_answers(session(), workdir)
  rounds = results.read_csv(os.path.join(workdir, labeling.ROUNDS_CSV))
  assert [(r['round'], r['answered'], r['corrections'])
          for r in rounds] == [(0, 2, 0)]
  before = os.stat(os.path.join(workdir, labeling.ROUNDS_CSV)).st_ino
  labeling.merge_answers(session(), workdir)  # In step: not rewritten.
  assert os.stat(os.path.join(workdir, labeling.ROUNDS_CSV)).st_ino == before
