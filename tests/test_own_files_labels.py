"""A user's own tables, texts and labels (svp_jax.data.own_files), issue 32.

How a table is split into rows and cells, which label values mean
"unlabeled", how class names are normalised and where they come from
(config.data.class_names, a classes.txt), and a pool with no label at all,
whose test split is then empty. Most tests read tiny files with
`own_files.read` alone; the few that go through TFDS check what reaches
`DatasetInfo` and the loaded splits.
"""

import json
import os
import re

import ml_collections
import numpy as np
from PIL import Image
import pytest

from configs import own_images
from configs import own_texts
from svp_jax import data
from svp_jax import experiment
from svp_jax.data import files
from svp_jax.data import own_files
from test_own_files import write_csv


def write_jsonl(path, records):
  with open(path, 'w', encoding='utf-8', newline='') as f:
    f.write(''.join(json.dumps(r) + '\n' for r in records))
  return str(path)


def read(path, **options):
  return own_files.read(str(path), own_files.ReadOptions(**options))


def every_label(own):
  return np.concatenate([own.train.labels, own.test.labels])


def every_text(own):
  return list(own.train.inputs) + list(own.test.inputs)


def reviews(n=4):
  return [(f'good {i}', 'pos') for i in range(n)] + [
      (f'bad {i}', 'neg') for i in range(n)]


def save_image(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.full((4, 6), value, np.uint8)).save(path)


# ----------------------------------------------------------------------------
# Rows and cells (items 3, 10, 13, 18).


def test_a_tsv_has_no_quoting_so_a_leading_quote_swallows_no_rows(tmp_path):
  lines = [f'{"good" if i % 2 else "bad"} {i}\t{"pos" if i % 2 else "neg"}'
           for i in range(23)]
  lines[4] = '"So-called" best film\tneg'
  lines[9] = 'a "quoted" word and a lone " quote\tpos'
  path = tmp_path / 't.tsv'
  path.write_text('text\tlabel\n' + '\n'.join(lines) + '\n', encoding='utf-8')
  own = read(path)
  assert len(every_label(own)) == 23
  assert {'"So-called" best film', 'a "quoted" word and a lone " quote'} <= (
      set(every_text(own)))


def test_text_column_equal_to_label_column_is_refused(tmp_path):
  path = write_csv(tmp_path / 't.csv', reviews())
  with pytest.raises(data.DataError, match='text_column and config.data.'
                     "label_column are both 'label'"):
    read(path, text_column='label', label_column='label')


def test_a_lone_surrogate_is_a_data_error_before_anything_is_written(
    tmp_path):
  path = tmp_path / 't.jsonl'
  write_jsonl(path, [{'text': t, 'label': c} for t, c in reviews()])
  with open(path, 'a', encoding='utf-8') as f:
    f.write('{"text": "half a pair \\ud800 here", "label": "pos"}\n')
  with pytest.raises(data.DataError, match=r"t\.jsonl, line 9, 'text'.*"
                     'lone surrogate'):
    data.dataset_info('files', path=str(path),
                      data_dir=str(tmp_path / 'tfds'))
  assert not os.path.exists(tmp_path / 'tfds')
  path.write_text('{"text": "x", "label": "\\udc00"}\n', encoding='utf-8')
  with pytest.raises(data.DataError, match='line 1: .*lone surrogate'):
    read(path)


def test_json_lines_split_on_newlines_only(tmp_path):
  records = [{'text': t, 'label': c} for t, c in reviews()]
  for i, separator in enumerate(('\u2028', '\u2029', '\u0085')):
    records[i]['text'] = f'one{separator}two'
  path = write_jsonl(tmp_path / 't.jsonl', records)
  # json.dumps escapes them; a file written by another tool may not.
  with open(path, encoding='utf-8') as f:
    text = f.read()
  for escaped in ('\\u2028', '\\u2029', '\\u0085'):
    text = text.replace(escaped, json.loads(f'"{escaped}"'))
  with open(path, 'w', encoding='utf-8', newline='') as f:
    f.write(text)
  own = read(path)
  assert len(every_label(own)) == 8
  assert 'one\u2028two' in every_text(own)


@pytest.mark.parametrize('delimiter', [',', '\t'])
def test_cells_longer_than_csvs_default_limit_read(tmp_path, delimiter):
  long = 'word ' * 40_000  # 200,000 characters; csv's limit is 131,072.
  rows = reviews() + [(long, 'pos')]
  path = write_csv(tmp_path / ('t.csv' if delimiter == ',' else 't.tsv'),
                   rows, delimiter=delimiter)
  assert long in every_text(read(path))


# ----------------------------------------------------------------------------
# Label values (item 9).


def test_nan_and_minus_one_however_written_are_unlabeled(tmp_path):
  records = [{'text': t, 'label': c} for t, c in reviews()] + [
      {'text': 'nan', 'label': float('nan')},
      {'text': 'float', 'label': -1.0}, {'text': 'int', 'label': -1},
      {'text': 'null', 'label': None}, {'text': 'string', 'label': '-1.0'}]
  # json.dumps writes NaN as the bare NaN pandas writes too.
  own = read(write_jsonl(tmp_path / 't.jsonl', records))
  assert own.class_names == ('neg', 'pos')
  assert (every_label(own) == -1).sum() == 5
  table = read(write_csv(tmp_path / 't.csv', reviews() + [
      ('a', '-1.0'), ('b', '-1'), ('c', ''), ('d', ' -01 ')]))
  assert table.class_names == ('neg', 'pos')
  assert (every_label(table) == -1).sum() == 4


@pytest.mark.parametrize('label', [[1], {'a': 1}, float('inf')])
def test_a_label_that_is_no_class_name_is_named(tmp_path, label):
  records = [{'text': t, 'label': c} for t, c in reviews()]
  records.append({'text': 'odd', 'label': label})
  with pytest.raises(data.DataError, match=r'line 9: the label is .*; '
                     'expected a class name or number'):
    read(write_jsonl(tmp_path / 't.jsonl', records))


@pytest.mark.parametrize('spellings', [('1', '01'), ('1', '+1'),
                                       ('2', '2.0'), ('1', 1.0)])
def test_one_number_written_two_ways_is_refused(tmp_path, spellings):
  first, second = spellings
  records = ([{'text': f'a{i}', 'label': first} for i in range(4)]
             + [{'text': f'b{i}', 'label': '0'} for i in range(4)]
             + [{'text': 'c', 'label': second}])
  shown = second if isinstance(second, str) else json.dumps(second)
  with pytest.raises(data.DataError, match=(
      rf"labels '{first}' \(line 1\) and '{re.escape(shown)}' \(line 9\) are "
      'the same number written differently')):
    read(write_jsonl(tmp_path / 't.jsonl', records))


def test_numbers_sort_as_numbers_and_names_as_text(tmp_path):
  rows = [(f'x{i}', c) for i in range(3) for c in ('10.5', '2.5', '0.5')]
  assert read(write_csv(tmp_path / 'a.csv', rows)).class_names == (
      '0.5', '2.5', '10.5')
  rows = [(f'x{i}', c) for i in range(3) for c in ('10', '2', 'b')]
  assert read(write_csv(tmp_path / 'b.csv', rows)).class_names == (
      '10', '2', 'b')


def test_ids_are_not_taken_for_classes():
  assert own_files.looks_like_ids(1_000_001, 20)
  assert own_files.looks_like_ids(1001, 2001)
  # Never a dataset of 1,000 classes or fewer, nor 2 examples a class.
  assert not own_files.looks_like_ids(1000, 1000)
  assert not own_files.looks_like_ids(1001, 2002)
  assert not own_files.looks_like_ids(5, 5)


def test_an_id_column_as_labels_is_refused_naming_it(tmp_path):
  path = write_csv(tmp_path / 't.csv', [(f'x{i}', str(i)) for i in range(1200)],
                   header=('text', 'id'))
  with pytest.raises(data.DataError, match=(
      r"label column 'id' \(config.data.label_column\) make 1,200 classes "
      'for 1,200 labeled examples: ids')):
    read(path, label_column='id')
  arrays = tmp_path / 'a.npz'
  np.savez(arrays, x_train=np.zeros((20, 2, 2), np.uint8),
           y_train=np.arange(20) * 50_000 + 50_000)
  with pytest.raises(data.DataError, match='make 1,000,001 classes for 20 '):
    read(arrays)


# ----------------------------------------------------------------------------
# Class names (items 11, 12).


def test_normalize_class_name_strips_and_composes():
  assert own_files.normalize_class_name(' cafe\u0301 \t') == 'caf\u00e9'
  assert own_files.normalize_class_name('caf\u00e9') == 'caf\u00e9'
  assert own_files.normalize_class_name('a b') == 'a b'


def test_labels_differing_in_spaces_or_normal_form_are_one_class(tmp_path):
  rows = [(f'x{i}', c) for i in range(3)
          for c in ('cat ', ' cat', 'cafe\u0301', 'caf\u00e9')]
  own = read(write_csv(tmp_path / 't.csv', rows))
  assert own.class_names == ('caf\u00e9', 'cat')
  assert np.bincount(every_label(own)).tolist() == [6, 6]


def test_folders_that_normalise_to_one_class_are_refused():
  assert own_files.folder_class_names(['dog', 'cafe\u0301 '], 'ROOT') == {
      'cafe\u0301 ': 'caf\u00e9', 'dog': 'dog'}
  with pytest.raises(data.DataError, match=r"ROOT: the folders 'cat' and "
                     r"'cat ' are both class 'cat'"):
    own_files.folder_class_names(['cat ', 'cat', 'dog'], 'ROOT')


def test_configured_class_names_fix_the_order_and_the_indices(tmp_path):
  path = write_csv(tmp_path / 't.csv', reviews() + [('?', '')])
  own = read(path, class_names=('pos', 'neg', 'meh'))
  assert own.class_names == ('pos', 'neg', 'meh')
  for split in (own.train, own.test):
    for text, label in zip(split.inputs, split.labels):
      assert label == {'g': 0, 'b': 1, '?': -1}[text[0]]


def test_a_classes_txt_beside_the_files_gives_the_names(tmp_path):
  path = write_csv(tmp_path / 't.csv', reviews())
  (tmp_path / 'classes.txt').write_text('\n pos \n\nneg\r\nmeh\n',
                                        encoding='utf-8')
  assert read(path).class_names == ('pos', 'neg', 'meh')
  # The same names in the config agree; other names do not.
  assert read(path, class_names=('pos', 'neg', 'meh')).class_names == (
      'pos', 'neg', 'meh')
  with pytest.raises(data.DataError, match=r"class_names=\['neg', 'pos'\] "
                     r'and .*classes\.txt .* name different classes'):
    read(path, class_names=('neg', 'pos'))


@pytest.mark.parametrize('content, message', [
    ('cat\ndog\ncat\n', r"classes\.txt, line 3: class 'cat' repeats "
     r'.*classes\.txt, line 1'),
    ('cat\n\n', r"classes\.txt: one class \['cat'\]"),
])
def test_a_bad_classes_txt_is_named(tmp_path, content, message):
  path = write_csv(tmp_path / 't.csv', reviews())
  (tmp_path / 'classes.txt').write_text(content, encoding='utf-8')
  with pytest.raises(data.DataError, match=message):
    read(path)


@pytest.mark.parametrize('names, message', [
    (('cat', ' cat'), r"class_names\[1\]: class 'cat' repeats"),
    (('cat', ''), r"class_names\[1\]: '' is no class name"),
    ('cat,dog', 'expected a list of class names'),
    ((1, 2), 'class names must be strings'),
    # What a flag's --config.data.class_names=cat,dog gives.
    (('cat,dog',), r"one class \['cat,dog'\].*on the command line: "
     r'--config.data.class_names='),
])
def test_bad_configured_class_names_are_named(tmp_path, names, message):
  path = write_csv(tmp_path / 't.csv', reviews())
  with pytest.raises(data.DataError, match=message):
    read(path, class_names=names)


def test_a_label_not_among_the_class_names_is_named(tmp_path):
  path = write_csv(tmp_path / 't.csv', reviews() + [('odd', 'meh')])
  with pytest.raises(data.DataError, match=(
      r"class 'meh' \(line 10\) is not one of the class names "
      r"\['neg', 'pos'\]")):
    read(path, class_names=('neg', 'pos'))


def test_the_classes_txt_is_part_of_the_content_key(tmp_path):
  path = write_csv(tmp_path / 't.csv', reviews())
  options = data.LoadOptions(path=path)
  keys = [own_files.content_key(path, files.read_options(options))]
  (tmp_path / 'classes.txt').write_text('neg\npos\n', encoding='utf-8')
  assert files.read_options(options).class_names == ('neg', 'pos')
  keys.append(own_files.content_key(path, files.read_options(options)))
  (tmp_path / 'classes.txt').write_text('pos\nneg\n', encoding='utf-8')
  keys.append(own_files.content_key(path, files.read_options(options)))
  assert len(set(keys)) == 3


def test_class_names_come_from_the_config():
  for config in (own_images.get_config(), own_texts.get_config('label')):
    assert config.data.class_names == ()
  config = ml_collections.ConfigDict(own_texts.get_config().data)
  config.path = '/nowhere/t.csv'
  config.class_names = ['neg', 'pos']  # ml_collections keeps a tuple.
  options = data.LoadOptions(**data.registry.configured_options(config))
  assert files.read_options(options).class_names == ('neg', 'pos')


def test_a_run_recorded_before_class_names_existed_resumes(tmp_path):
  path = write_csv(tmp_path / 't.csv', reviews(5))
  config = own_texts.get_config('quick')
  config.data.path = path
  config.data.data_dir = str(tmp_path / 'tfds')
  workdir = str(tmp_path / 'run')
  experiment.claim_workdir(workdir, config)
  recorded = os.path.join(workdir, 'config.json')
  with open(recorded) as f:
    old = json.load(f)
  del old['data']['class_names']
  with open(recorded, 'w') as f:
    json.dump(old, f)
  experiment.claim_workdir(workdir, config)  # Resumes.


# ----------------------------------------------------------------------------
# Starting from zero labels (item 12).


def unlabeled_pool(kind, root):
  """A pool of 6 examples none of which has a label, in format `kind`."""
  os.makedirs(root)
  if kind == 'folder':
    for i in range(6):
      save_image(os.path.join(root, 'images', 'unlabeled', f'{i}.png'), i)
    return os.path.join(root, 'images')
  if kind == 'csv':
    return write_csv(root / 't.csv', [(f'x{i}', '') for i in range(6)])
  if kind == 'jsonl':
    return write_jsonl(root / 't.jsonl',
                       [{'text': f'x{i}', 'label': None} for i in range(6)])
  np.savez(root / 'a.npz', x_train=np.zeros((6, 4, 6), np.uint8),
           y_train=np.full(6, -1))
  return str(root / 'a.npz')


KINDS = ['folder', 'csv', 'jsonl', 'npz']


@pytest.mark.parametrize('kind', KINDS)
def test_a_pool_without_labels_reads_with_class_names(tmp_path, kind):
  path = unlabeled_pool(kind, tmp_path / 'data')
  own = read(path, class_names=('cat', 'dog'))
  assert own.class_names == ('cat', 'dog')
  assert own.train.labels.tolist() == [-1] * 6
  # No test split: empty, shaped like the pool.
  assert len(own.test.labels) == 0 and own.test.labels.dtype == np.int32
  assert own.test.inputs.shape[1:] == own.train.inputs.shape[1:]
  assert own.test.inputs.dtype == own.train.inputs.dtype
  # A classes.txt beside the files does the same.
  with open(own_files.classes_file(path), 'w', encoding='utf-8') as f:
    f.write('cat\ndog\n')
  assert read(path).class_names == ('cat', 'dog')


@pytest.mark.parametrize('kind', KINDS)
def test_a_pool_without_labels_or_class_names_is_refused(tmp_path, kind):
  path = unlabeled_pool(kind, tmp_path / 'data')
  with pytest.raises(data.DataError, match='no labels and no class names: '
                     'give data.class_names or a classes.txt'):
    read(path)


def test_zero_labels_reach_dataset_info_and_an_empty_test_split(tmp_path):
  path = unlabeled_pool('folder', tmp_path / 'data')
  with open(os.path.join(path, 'classes.txt'), 'w', encoding='utf-8') as f:
    f.write('cat\ndog\n')
  options = dict(path=path, data_dir=str(tmp_path / 'tfds'))
  info = data.dataset_info('files', **options)
  assert info.class_names == ('cat', 'dog') and info.num_classes == 2
  images, labels = data.load_split('files', 'train', **options)
  assert images.shape == (6, 4, 6, 1) and labels.tolist() == [-1] * 6
  test_images, test_labels = data.load_split('files', 'test', **options)
  assert test_images.shape == (0, 4, 6, 1) and test_labels.shape == (0,)
  assert files.read_sources(data.LoadOptions(**options), 'test') == []
  table = write_csv(tmp_path / 't.csv', [(f'x{i}', '') for i in range(4)])
  documents, test_labels = data.load_split(
      'files', 'test', path=table, data_dir=str(tmp_path / 'tfds'),
      class_names=('neg', 'pos'))
  assert documents.shape == (0,) and documents.dtype == object
  assert test_labels.dtype == np.int32


def test_too_few_labels_to_carve_leave_the_test_split_empty(tmp_path):
  # 2 of each class: 20% of 2 rounds to 0, so nothing is carved.
  rows = [('g0', 'pos'), ('g1', 'pos'), ('b0', 'neg'), ('b1', 'neg')]
  own = read(write_csv(tmp_path / 'a.csv', rows + [('?', '')]))
  assert len(own.test.labels) == 0
  assert sorted(own.train.labels.tolist()) == [-1, 0, 0, 1, 1]
  # Every example labeled: a simulated run's, which needs a test split.
  with pytest.raises(data.DataError, match='too few labeled examples to '
                     'carve a test split'):
    read(write_csv(tmp_path / 'b.csv', rows))


def test_some_labels_of_one_class_read_when_the_names_are_given(tmp_path):
  rows = [(f'x{i}', 'pos' if i < 5 else '') for i in range(10)]
  path = write_csv(tmp_path / 't.csv', rows)
  with pytest.raises(data.DataError, match=r"1 class \['pos'\].*at least 2 "
                     r'\(label another class, or name every class'):
    read(path)
  own = read(path, class_names=('neg', 'pos'))
  assert own.class_names == ('neg', 'pos')
  assert every_label(own).tolist().count(1) == 5


def test_npz_labels_index_into_the_given_class_names(tmp_path):
  path = tmp_path / 'a.npz'
  np.savez(path, x_train=np.zeros((4, 4, 6), np.uint8),
           y_train=np.array([0, 1, -1, 1]))
  own = read(path, class_names=('cat', 'dog'))
  assert own.class_names == ('cat', 'dog')
  assert sorted(every_label(own).tolist()) == [-1, 0, 1, 1]
  with pytest.raises(data.DataError, match='has 1 names but the labels go up '
                     'to 1'):
    own_files._npz_class_names(str(path), None, 1, ('cat',))


def test_test_images_of_a_class_without_training_labels_read_when_named(
    tmp_path):
  root = tmp_path / 'images'
  for i in range(4):
    save_image(os.path.join(root, 'train', 'unlabeled', f'{i}.png'), i)
  save_image(os.path.join(root, 'test', 'cat', 'c.png'), 9)
  save_image(os.path.join(root, 'test', 'dog', 'd.png'), 8)
  with pytest.raises(data.DataError, match='have no training images'):
    read(root)
  own = read(root, class_names=('cat', 'dog'))
  assert own.train.labels.tolist() == [-1] * 4
  assert own.test.labels.tolist() == [0, 1]
