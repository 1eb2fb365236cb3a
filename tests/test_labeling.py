"""The labeling loop (svp_jax.labeling): answers checked, merged, and equal
selections to the simulated run when the answers are the known labels."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import own_images
from svp_jax import active
from svp_jax import labeling
from svp_jax import results

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
  assert labeling.read_answers(path, {3, 5, 7}, CLASSES) == {3: 'dog',
                                                             7: 'cat'}


def bad_unknown_class(path):
  return write_answers(path, [(3, '', '', '', 'cow')]), (
      r"line 2: answer 'cow' is not a class; expected one of \['cat', 'dog'\]")


def bad_id_not_asked(path):
  return write_answers(path, [(3, '', '', '', 'cat'), (4, '', '', '', 'cat')]
                       ), "line 3: id '4' was not asked"


def bad_id_not_a_number(path):
  return write_answers(path, [('three', '', '', '', 'cat')]), (
      "line 2: id 'three' was not asked")


def bad_answered_twice_differently(path):
  return write_answers(path, [(3, '', '', '', 'cat'), (5, '', '', '', 'cat'),
                              (3, '', '', '', 'dog')]), (
                                  "lines 2 and 4: id 3 answered 'cat' and "
                                  "'dog'")


def bad_empty_file(path):
  path.write_text('')
  return str(path), "no column 'id'"


def bad_no_answers(path):
  return write_answers(path, [(3, '', '', '', ''), (5, '', '', '', '')]), (
      'no answers; fill in the answer column')


def bad_not_utf8(path):
  path.write_bytes(b'id,answer\n3,cat\n5,caf\xe9\n')
  return str(path), 'line 3: not UTF-8'


def bad_answer_column_removed(path):
  return write_answers(path, [(3, 'cat')], header=('id', 'label')), (
      "no column 'answer'")


BAD_ANSWERS = [bad_unknown_class, bad_id_not_asked, bad_id_not_a_number,
               bad_answered_twice_differently, bad_empty_file, bad_no_answers,
               bad_not_utf8, bad_answer_column_removed]


@pytest.mark.parametrize('case', BAD_ANSWERS, ids=lambda c: c.__name__[4:])
def test_bad_answers_are_one_error_naming_the_file(tmp_path, case):
  path, message = case(tmp_path / 'answers.csv')
  with pytest.raises(labeling.AnswerError, match=message) as error:
    labeling.read_answers(path, {3, 5, 7}, CLASSES)
  assert str(error.value).startswith(path) and '\n' not in str(error.value)


def test_a_failed_merge_leaves_the_previous_store(tmp_path, monkeypatch):
  labels = labeling.current_labels(np.full(6, -1, np.int32), [], CLASSES)
  store = labeling.merge(str(tmp_path), labels, 0, {1: 'cat', 4: 'dog'},
                         [f'e{i}' for i in range(6)])
  before = (tmp_path / labeling.LABELS_CSV).read_bytes()
  assert labeling.read_store(str(tmp_path)) == [
      {'id': 1, 'example': 'e1', 'label': 'cat', 'round': 0},
      {'id': 4, 'example': 'e4', 'label': 'dog', 'round': 0}]

  def fail_half_way(self, rows):
    self.writerow(next(iter(rows)))
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(csv.DictWriter, 'writerows', fail_half_way)
  labels = labeling.current_labels(np.full(6, -1, np.int32), store, CLASSES)
  with pytest.raises(results.WriteError, match='previous version is intact'):
    labeling.merge(str(tmp_path), labels, 1, {2: 'dog'},
                   [f'e{i}' for i in range(6)])
  assert (tmp_path / labeling.LABELS_CSV).read_bytes() == before
  assert os.listdir(tmp_path) == [labeling.LABELS_CSV]


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
    own_files, tmp_path):
  loop = str(tmp_path / 'loop')
  config = tiny_config(own_files['images'], tmp_path / 'tfds', 'random', True)
  first = labeling.run(config, loop)
  path = first['queries']
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
