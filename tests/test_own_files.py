"""A user's own files as a dataset (svp_jax.data.own_files, svp_jax.data.files).

Formats, class names, unlabeled members, the carved test split, the content
cache, and one clear error for each kind of bad data, with nothing written.
Images and texts here are tiny and made up: they check formats and
plumbing; learning on real files is tests/test_own_files_end_to_end.py.
"""

import csv
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
from PIL import Image
import pytest

from configs import own_images
from svp_jax import data
from svp_jax import experiment
from svp_jax import validation
from svp_jax.data import files
from svp_jax.data import own_files

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_image(path, pixels, mode=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(pixels, np.uint8), mode).save(path)


def image_folder(root, classes=('cat', 'dog'), per_class=5, size=(6, 4)):
  """ROOT/<class>/<i>.png, grey, class c's pixels all equal to 40 * (c + 1)."""
  for c, name in enumerate(classes):
    for i in range(per_class):
      save_image(os.path.join(root, name, f'{i}.png'),
                 np.full((size[1], size[0]), 40 * (c + 1)))
  return str(root)


def write_csv(path, rows, header=('text', 'label'), delimiter=','):
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
  return str(path)


def texts(n=10):
  return [(f'good movie {i}', 'pos') for i in range(n)] + [
      (f'bad movie {i}', 'neg') for i in range(n)]


def load(path, data_dir, split='train', **options):
  return data.load_split('files', split, path=path, data_dir=str(data_dir),
                         **options)


def info_of(path, data_dir, **options):
  return data.dataset_info('files', path=path, data_dir=str(data_dir),
                           **options)


# ----------------------------------------------------------------------------
# Formats.


def test_image_folder_keeps_class_names_and_carves_a_stratified_test_split(
    tmp_path):
  root = image_folder(tmp_path / 'pets', per_class=10)
  info = info_of(root, tmp_path / 'tfds')
  assert info.class_names == ('cat', 'dog') and info.num_classes == 2
  assert info.image_shape == (4, 6, 1) and info.modality == 'image'
  train_x, train_y = load(root, tmp_path / 'tfds')
  test_x, test_y = load(root, tmp_path / 'tfds', 'test')
  # 20% of each class, the pixels telling which class each image is.
  assert np.bincount(test_y).tolist() == [2, 2]
  assert np.bincount(train_y).tolist() == [8, 8]
  for x, y in ((train_x, train_y), (test_x, test_y)):
    np.testing.assert_array_equal(x[:, 0, 0, 0], 40 * (y + 1))
  np.testing.assert_allclose(info.mean, [60 / 255], rtol=1e-6)


def test_carved_test_split_follows_the_seed(tmp_path):
  root = image_folder(tmp_path / 'pets', per_class=20)
  sources = {seed: files.read_sources(data.LoadOptions(
      path=root, data_dir=str(tmp_path / 'tfds'), seed=seed), 'test')
             for seed in (0, 0, 1)}
  again = files.read_sources(data.LoadOptions(
      path=root, data_dir=str(tmp_path / 'tfds'), seed=0), 'test')
  assert sources[0] == again
  assert sources[0] != sources[1]


def test_mixed_modes_and_sizes_load_as_rgb_at_the_configured_size(tmp_path):
  root = tmp_path / 'mixed'
  save_image(root / 'a' / 'grey.png', np.full((5, 7), 200))
  save_image(root / 'a' / 'rgba.png', np.full((3, 3, 4), 90), 'RGBA')
  save_image(root / 'b' / 'rgb.jpg', np.full((9, 4, 3), 30))
  save_image(root / 'b' / 'palette.gif', np.full((4, 4), 10))
  with pytest.raises(data.DataError, match='differ in size.*image_size'):
    info_of(str(root), tmp_path / 'tfds', test_fraction=0.5)
  info = info_of(str(root), tmp_path / 'tfds', image_size=6,
                 test_fraction=0.5)
  assert info.image_shape == (6, 6, 3)
  images, _ = load(str(root), tmp_path / 'tfds', image_size=6,
                   test_fraction=0.5)
  test_images, _ = load(str(root), tmp_path / 'tfds', 'test', image_size=6,
                        test_fraction=0.5)
  every = np.concatenate([images, test_images])
  assert every.shape == (4, 6, 6, 3)
  # Grey becomes equal R, G and B; alpha is dropped.
  assert sorted(int(v) for v in every[:, 3, 3, 0]) == [10, 30, 90, 200]


def test_train_test_folders_and_unlabeled_images(tmp_path):
  root = tmp_path / 'split'
  image_folder(root / 'train', per_class=3)
  image_folder(root / 'test', per_class=2)
  save_image(root / 'train' / 'unlabeled' / 'x.png', np.zeros((4, 6)))
  _, labels = load(str(root), tmp_path / 'tfds')
  _, test_labels = load(str(root), tmp_path / 'tfds', 'test')
  assert sorted(labels.tolist()) == [-1, 0, 0, 0, 1, 1, 1]
  assert test_labels.tolist() == [0, 0, 1, 1]
  sources = files.read_sources(data.LoadOptions(
      path=str(root), data_dir=str(tmp_path / 'tfds')), 'train')
  assert os.path.join('train', 'unlabeled', 'x.png') in sources
  assert info_of(str(root), tmp_path / 'tfds').class_names == ('cat', 'dog')


@pytest.mark.parametrize('extension', ['csv', 'tsv', 'jsonl'])
def test_tables_of_texts_with_named_columns_and_unlabeled_rows(
    tmp_path, extension):
  rows = texts(5) + [('no label yet', ''), ('none either', '-1')]
  path = tmp_path / f'reviews.{extension}'
  if extension == 'jsonl':
    path.write_text('\n'.join(
        json.dumps({'body': t, 'stars': None if not c or c == '-1' else c})
        for t, c in rows) + '\n', encoding='utf-8')
  else:
    write_csv(path, rows, header=('body', 'stars'),
              delimiter='\t' if extension == 'tsv' else ',')
  options = dict(text_column='body', label_column='stars', test_fraction=0.2)
  info = info_of(str(path), tmp_path / 'tfds', **options)
  assert info.modality == 'text' and info.class_names == ('neg', 'pos')
  documents, labels = load(str(path), tmp_path / 'tfds', **options)
  test_documents, test_labels = load(str(path), tmp_path / 'tfds', 'test',
                                     **options)
  assert (labels == -1).sum() == 2 and (test_labels >= 0).all()
  assert len(documents) + len(test_documents) == len(rows)
  for document, label in zip(documents, labels):
    if label >= 0:
      assert document.startswith(('bad', 'good')[label])
  assert {'no label yet', 'none either'} <= set(documents)


def test_integer_labels_sort_as_numbers(tmp_path):
  path = write_csv(tmp_path / 't.csv', [(f'x{i}', str(c)) for i in range(4)
                                        for c in (2, 10, 1)])
  assert info_of(path, tmp_path / 'tfds',
                 test_fraction=0.25).class_names == ('1', '2', '10')


def test_npz_images_and_texts(tmp_path):
  rng = np.random.default_rng(0)
  path = tmp_path / 'arrays.npz'
  np.savez(path, x_train=rng.integers(0, 255, (12, 5, 5), dtype=np.uint8),
           y_train=np.array([0, 1, 2] * 4), x_test=np.zeros((3, 5, 5),
                                                            np.uint8),
           y_test=np.array([0, 1, 2]), class_names=np.array(['a', 'b', 'c']))
  info = info_of(str(path), tmp_path / 'tfds')
  assert info.class_names == ('a', 'b', 'c') and info.image_shape == (5, 5, 1)
  images, labels = load(str(path), tmp_path / 'tfds')
  assert images.shape == (12, 5, 5, 1) and labels.tolist() == [0, 1, 2] * 4
  text_path = tmp_path / 'texts.npz'
  np.savez(text_path, x_train=np.array(['a b', 'c d', 'e f', 'g h'] * 3),
           y_train=np.array([0, 1] * 6))
  assert info_of(str(text_path), tmp_path / 'tfds',
                 test_fraction=0.5).class_names == ('0', '1')
  documents, _ = load(str(text_path), tmp_path / 'tfds', test_fraction=0.5)
  assert documents.dtype == object and set(documents) <= {'a b', 'c d',
                                                          'e f', 'g h'}


def test_streamed_images_equal_the_in_memory_ones(tmp_path):
  root = image_folder(tmp_path / 'pets', per_class=6)
  whole, labels = load(root, tmp_path / 'tfds')
  streamed, streamed_labels = load(root, tmp_path / 'tfds', in_memory=False)
  np.testing.assert_array_equal(streamed_labels, labels)
  np.testing.assert_array_equal(streamed[np.arange(len(labels))], whole)


# ----------------------------------------------------------------------------
# The content cache.


def test_prepared_once_and_again_when_the_files_change(tmp_path, monkeypatch):
  root = image_folder(tmp_path / 'pets')
  prepared = []
  real_prepare = files._prepare  # pylint: disable=protected-access
  monkeypatch.setattr(files, '_prepare', lambda *a: (prepared.append(a[0]),
                                                     real_prepare(*a)))
  monkeypatch.setattr(files, '_PREPARED', {})  # No memory across calls.
  first = files.prepared_folder(data.LoadOptions(
      path=root, data_dir=str(tmp_path / 'tfds')))
  monkeypatch.setattr(files, '_PREPARED', {})
  assert files.prepared_folder(data.LoadOptions(
      path=root, data_dir=str(tmp_path / 'tfds'))) == first
  assert len(prepared) == 1
  save_image(os.path.join(root, 'dog', 'new.png'), np.zeros((4, 6)))
  second = files.prepared_folder(data.LoadOptions(
      path=root, data_dir=str(tmp_path / 'tfds')))
  assert second != first and len(prepared) == 2
  # Options that shape the examples are part of the key too.
  assert files.prepared_folder(data.LoadOptions(
      path=root, data_dir=str(tmp_path / 'tfds'), image_size=3)) != second


# ----------------------------------------------------------------------------
# Bad data: one clear error before anything is written.


def truncated_png(path):
  """A PNG whose header reads but whose pixel data stops half-way."""
  noise = np.random.default_rng(0).integers(0, 255, (32, 32), np.uint8)
  save_image(path, noise)
  with open(path, 'rb') as f:
    content = f.read()
  with open(path, 'wb') as f:
    f.write(content[:len(content) // 2])


def case_empty_folder(root):
  os.makedirs(root)
  return str(root), 'no class folders'


def case_empty_class_folder(root):
  image_folder(root)
  os.makedirs(root / 'bird')
  return str(root), 'bird: no images'


def case_single_class(root):
  image_folder(root, classes=('cat',))
  return str(root), r"1 class \['cat'\].*at least 2"


def case_truncated_image(root):
  image_folder(root, size=(32, 32))
  truncated_png(root / 'dog' / '3.png')
  return str(root), r'dog/3\.png: cannot decode the image'


def case_not_an_image(root):
  image_folder(root)
  (root / 'cat' / 'notes.png').write_text('not a picture')
  return str(root), r'cat/notes\.png: not a readable image'


def case_csv_without_the_column(root):
  os.makedirs(root)
  return write_csv(root / 't.csv', texts(), header=('review', 'label')), (
      r"no column 'text' \(config\.data\.text_column\)")


def case_label_column_with_one_class(root):
  os.makedirs(root)
  return write_csv(root / 't.csv', [(t, 'pos') for t, _ in texts()]), (
      r"1 class \['pos'\]")


def case_csv_not_utf8(root):
  os.makedirs(root)
  path = root / 't.csv'
  path.write_bytes(b'text,label\ngood,pos\ncaf\xe9,neg\n')
  return str(path), 't.csv, line 3: not UTF-8'


def case_csv_row_with_extra_cells(root):
  os.makedirs(root)
  path = write_csv(root / 't.csv', texts(3))
  with open(path, 'a', encoding='utf-8') as f:
    f.write('one,two,three\n')
  return path, 't.csv, line 8: 3 cells where the header has 2'


def case_npz_lengths_differ(root):
  os.makedirs(root)
  np.savez(root / 'a.npz', x_train=np.zeros((5, 4, 4), np.uint8),
           y_train=np.array([0, 1, 0, 1]))
  return str(root / 'a.npz'), 'x_train has 5 examples but y_train 4'


def case_npz_without_labels(root):
  os.makedirs(root)
  np.savez(root / 'a.npz', x_train=np.zeros((5, 4, 4), np.uint8))
  return str(root / 'a.npz'), r"missing arrays \['y_train'\]"


def case_unknown_extension(root):
  os.makedirs(root)
  (root / 'data.xlsx').write_text('')
  return str(root / 'data.xlsx'), 'expected a folder of images'


BAD_DATA = [case_empty_folder, case_empty_class_folder, case_single_class,
            case_truncated_image, case_not_an_image,
            case_csv_without_the_column, case_label_column_with_one_class,
            case_csv_not_utf8, case_csv_row_with_extra_cells,
            case_npz_lengths_differ, case_npz_without_labels,
            case_unknown_extension]


@pytest.mark.parametrize('case', BAD_DATA, ids=lambda c: c.__name__[5:])
def test_bad_data_is_one_clear_error_and_writes_nothing(tmp_path, case):
  path, message = case(tmp_path / 'data')
  with pytest.raises(data.DataError, match=message) as error:
    info_of(path, tmp_path / 'tfds')
  assert '\n' not in str(error.value)
  assert not os.path.exists(tmp_path / 'tfds')


def test_bad_data_at_the_command_line_is_one_error_line(tmp_path):
  path, _ = case_single_class(tmp_path / 'data')
  result = subprocess.run(
      [sys.executable, 'main.py', '--config=configs/own_images.py:quick',
       f'--config.data.path={path}', f'--config.data.data_dir={tmp_path}',
       f'--workdir={tmp_path / "run"}'],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 1, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and 'at least 2' in last
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'run')


def test_a_simulated_run_needs_every_label(tmp_path):
  root = tmp_path / 'pets'
  image_folder(root)
  save_image(root / 'unlabeled' / 'x.png', np.zeros((4, 6)))
  config = own_images.get_config('quick')
  config.data.path = str(root)
  config.data.data_dir = str(tmp_path / 'tfds')
  with pytest.raises(data.DataError, match='1 of its 9 examples are '
                     'unlabeled'):
    experiment.load_job(config, str(tmp_path / 'run'),
                        {'target': config.target})


def test_missing_path_is_named(tmp_path):
  with pytest.raises(data.DataError, match='needs config.data.path'):
    info_of('', tmp_path)
  with pytest.raises(data.DataError, match='no such file or folder'):
    info_of(str(tmp_path / 'nowhere'), tmp_path)


def test_read_options_come_from_the_config():
  config = ml_collections.ConfigDict(own_images.get_config().data)
  config.path = '/x'
  config.text_column = 'body'
  config.test_fraction = 0.3
  options = data.LoadOptions(**data.registry.configured_options(config, 7))
  assert files.read_options(options) == own_files.ReadOptions(
      image_size=0, text_column='body', label_column='label',
      test_fraction=0.3, seed=7)


def test_a_run_refuses_files_that_changed_under_it(tmp_path):
  root = image_folder(tmp_path / 'pets')
  config = own_images.get_config('quick')
  config.data.path = root
  config.data.data_dir = str(tmp_path / 'tfds')
  workdir = str(tmp_path / 'run')
  experiment.claim_workdir(workdir, config)
  experiment.claim_workdir(workdir, config)  # The same files: resumes.
  save_image(os.path.join(root, 'cat', 'extra.png'), np.zeros((4, 6)))
  with pytest.raises(validation.ConfigError, match='changed since the run'):
    experiment.claim_workdir(workdir, config)
