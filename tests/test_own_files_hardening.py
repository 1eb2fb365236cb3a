"""Hardened image-folder and .npz readers and preparing (issue 32).

Layouts a person really has (ROOT/unlabeled beside train/, a class named
test or train, thumbnails, AppleDouble files, symlinks), pixels that were
read wrongly (16-bit, EXIF orientation, NaN), bad files that crashed (a
dangling link, a non-UTF-8 name, a truncated .npz, non-UTF-8 texts), and
preparing: two processes at once, bounded memory, a read-only data_dir.
Pure reads (`own_files.read`) where they suffice; tiny files throughout.
"""

import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib

import numpy as np
from PIL import Image
import pytest

from svp_jax import data
from svp_jax import results
from svp_jax.data import files
from svp_jax.data import own_files
from svp_jax.data import statistics
from svp_jax.data import tfds_catalog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def save_image(path, pixels, mode=None, **save_options):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(pixels, np.uint8), mode).save(path,
                                                           **save_options)


def image_folder(root, classes=('cat', 'dog'), per_class=3, size=(6, 4)):
  """ROOT/<class>/<i>.png, grey, class c's pixels all equal to 40 * (c + 1)."""
  for c, name in enumerate(classes):
    for i in range(per_class):
      save_image(os.path.join(root, name, f'{i}.png'),
                 np.full((size[1], size[0]), 40 * (c + 1)))
  return str(root)


def read(path, **options):
  return own_files.read(str(path), own_files.ReadOptions(**options))


def all_sources(own):
  return sorted(own.train.sources + own.test.sources)


def pixels_by_source(own):
  return dict(zip(own.train.sources + own.test.sources,
                  np.concatenate([own.train.inputs, own.test.inputs])))


def load_options(path, data_dir, **options):
  return data.LoadOptions(path=str(path), data_dir=str(data_dir), **options)


# ----------------------------------------------------------------------------
# Item 4: with ROOT/train/, ROOT/unlabeled/ is read; nothing else is ignored.


def test_unlabeled_folder_beside_train_is_read_as_pool_members(tmp_path):
  image_folder(tmp_path / 'train')
  image_folder(tmp_path / 'test', per_class=1)
  save_image(tmp_path / 'unlabeled' / 'x.png', np.zeros((4, 6)))
  own = read(tmp_path)
  assert own.class_names == ('cat', 'dog')
  unlabeled = [s for s, y in zip(own.train.sources, own.train.labels)
               if y == own_files.UNLABELED]
  assert unlabeled == [os.path.join('unlabeled', 'x.png')]
  assert len(own.test.labels) == 2
  # The content key covers it: a new unlabeled image prepares again.
  options = own_files.ReadOptions()
  key = own_files.content_key(str(tmp_path), options)
  save_image(tmp_path / 'unlabeled' / 'y.png', np.zeros((4, 6)))
  assert own_files.content_key(str(tmp_path), options) != key


@pytest.mark.parametrize('stray', ['extra/a.png', 'b.png'])
def test_anything_else_beside_train_is_a_named_error(tmp_path, stray):
  image_folder(tmp_path / 'train')
  save_image(tmp_path / stray, np.zeros((4, 6)))
  (tmp_path / 'notes.txt').write_text('not read, and no error')
  name = stray.split('/')[0]
  kind = 'a folder' if '/' in stray else 'an image'
  with pytest.raises(data.DataError,
                     match=rf'{name}: {kind} beside train/; .*nothing else'):
    read(tmp_path)


# ----------------------------------------------------------------------------
# Item 7: pixels as the file means them.


def png_16_bit(path, levels):
  """A 16-bit grey PNG of `levels` (uint16), written by hand."""
  height, width = levels.shape
  rows = b''.join(b'\0' + row.astype('>u2').tobytes() for row in levels)

  def chunk(kind, body):
    return (struct.pack('>I', len(body)) + kind + body
            + struct.pack('>I', zlib.crc32(kind + body)))

  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n'
            + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 16, 0, 0,
                                         0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def test_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
  levels = np.array([[0, 257 * 10, 257 * 128], [257 * 200, 65535, 300]],
                    np.uint16)
  for i in range(2):
    png_16_bit(str(tmp_path / 'a' / f'deep{i}.png'), levels)
    save_image(tmp_path / 'b' / f'plain{i}.png', np.full((2, 3), 7))
  every = pixels_by_source(read(tmp_path, test_fraction=0.5))
  np.testing.assert_array_equal(every[os.path.join('a', 'deep0.png')][..., 0],
                                [[0, 10, 128], [200, 255, 1]])
  np.testing.assert_array_equal(every[os.path.join('b', 'plain0.png')], 7)


def test_exif_orientation_is_applied(tmp_path):
  # Stored 3 wide, 2 high, first column bright; orientation 6: shown turned
  # a quarter clockwise, so 2 wide, 3 high, the bright column the top row.
  stored = np.zeros((2, 3), np.uint8)
  stored[:, 0] = 250
  exif = Image.Exif()
  exif[0x0112] = 6
  for i in range(2):
    save_image(tmp_path / 'a' / f'turned{i}.png', stored, exif=exif)
    save_image(tmp_path / 'b' / f'upright{i}.png', np.full((3, 2), 9))
  own = read(tmp_path, test_fraction=0.5)
  assert own.train.inputs.shape[1:] == (3, 2, 1)
  np.testing.assert_array_equal(
      pixels_by_source(own)[os.path.join('a', 'turned0.png')][..., 0],
      [[250, 250], [0, 0], [0, 0]])


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_nan_float_pixels_are_an_error_saying_what_is_allowed(tmp_path, bad):
  x = np.full((4, 3, 3), 0.5, np.float32)
  x[2, 1, 1] = bad
  np.savez(tmp_path / 'a.npz', x_train=x, y_train=np.array([0, 1, 0, 1]))
  with pytest.raises(data.DataError, match=r'x_train\[2\] has NaN or infinite'
                     r'.*finite, in \[0, 1\].*uint8'):
    read(tmp_path / 'a.npz', test_fraction=0.5)


def test_bytes_class_names_decode_to_text(tmp_path):
  np.savez(tmp_path / 'a.npz', x_train=np.zeros((4, 3, 3), np.uint8),
           y_train=np.array([0, 1, 0, 1]),
           class_names=np.array([b'cat', 'caf\u00e9'.encode()]))
  assert read(tmp_path / 'a.npz',
              test_fraction=0.5).class_names == ('cat', 'caf\u00e9')


# ----------------------------------------------------------------------------
# Item 8: a class named test, a class named train.


def test_a_class_folder_named_test_without_train_is_a_class(tmp_path):
  image_folder(tmp_path, classes=('exam', 'test'), per_class=10)
  assert read(tmp_path).class_names == ('exam', 'test')
  assert not own_files.has_test_split(str(tmp_path))
  # The split is carved, so the seed and fraction are in the key.
  keys = {own_files.content_key(str(tmp_path), own_files.ReadOptions(
      seed=seed, test_fraction=fraction))
          for seed, fraction in ((0, 0.2), (1, 0.2), (0, 0.3))}
  assert len(keys) == 3


def test_a_class_folder_named_train_is_explained(tmp_path):
  image_folder(tmp_path, classes=('cat', 'dog', 'train'))
  with pytest.raises(data.DataError, match=(
      r"cat: a folder beside train/; with .*train/ the folder holds "
      r"train/<class>/<image>, optionally test/<class>/<image>.*"
      r"cannot be named 'train'")):
    read(tmp_path)
  with pytest.raises(data.DataError, match=(
      r"cannot be named 'train'")):
    files.prepared_folder(load_options(tmp_path, tmp_path / 'tfds'))
  assert not os.path.exists(tmp_path / 'tfds')


# ----------------------------------------------------------------------------
# Item 10: what no one means as an example; symlinked folders.


def junk(root, paths=('cat/._0.png', 'cat/.thumbnails/0.png',
                       'cat/@eaDir/0.png', 'cat/.ipynb_checkpoints/0.png',
                       'cat/deep/._1.png', 'dog/.x.png', '__MACOSX/cat/._0.png',
                       '.hidden/0.png', '._cat', '@eaDir/cat/0.png')):
  """Thumbnails, notebook checkpoints, AppleDouble and hidden files."""
  for path in paths:
    os.makedirs(os.path.dirname(root / path), exist_ok=True)
    # AppleDouble files end in .png but are no image; the others are.
    if os.path.basename(path).startswith('._'):
      (root / path).write_bytes(b'\x00\x05\x16\x07 Mac OS X resource fork')
    else:
      save_image(root / path, np.full((4, 6), 250))


@pytest.mark.parametrize('layout', ['flat', 'splits'])
def test_hidden_thumbnail_and_appledouble_files_are_skipped(tmp_path, layout):
  root = tmp_path / 'pets'
  where = root / 'train' if layout == 'splits' else root
  image_folder(where)
  save_image(where / 'cat' / 'deep' / '1.png', np.full((4, 6), 40))
  clean_sources = sorted(all_sources(read(root, test_fraction=0.5)))
  options = own_files.ReadOptions(test_fraction=0.5)
  clean_key = own_files.content_key(str(root), options)
  junk(where)
  if layout == 'splits':
    junk(root, ('__MACOSX/train/cat/._0.png', '.hidden/0.png', '._x.png',
                '@eaDir/train/0.png', 'train/.thumbnails/0.png'))
  own = read(root, test_fraction=0.5)
  assert all_sources(own) == clean_sources
  assert len(clean_sources) == 7
  # The content key sees exactly the files read.
  assert sorted(os.path.relpath(f, root)
                for f in own_files.source_files(str(root))) == clean_sources
  assert own_files.content_key(str(root), options) == clean_key


def test_symlinked_subfolders_are_followed(tmp_path):
  root = image_folder(tmp_path / 'pets')
  elsewhere = tmp_path / 'more_cats'
  save_image(elsewhere / 'a.png', np.full((4, 6), 40))
  os.symlink(elsewhere, tmp_path / 'pets' / 'cat' / 'more')
  own = read(root, test_fraction=0.5)
  assert os.path.join('cat', 'more', 'a.png') in all_sources(own)
  assert os.path.join(root, 'cat', 'more', 'a.png') in own_files.source_files(
      root)
  # Its bytes are in the key.
  options = own_files.ReadOptions()
  key = own_files.content_key(root, options)
  save_image(elsewhere / 'a.png', np.full((4, 6), 41))
  assert own_files.content_key(root, options) != key


def test_a_symlink_cycle_is_a_named_error(tmp_path):
  root = image_folder(tmp_path / 'pets')
  os.symlink(tmp_path / 'pets', tmp_path / 'pets' / 'cat' / 'loop')
  for call in (lambda: read(root), lambda: own_files.source_files(root)):
    with pytest.raises(data.DataError, match=r'cat/loop: a symlink to .*pets, '
                       r'a folder it is in \(a cycle\)'):
      call()


# ----------------------------------------------------------------------------
# Item 13: one DataError naming the file, before anything is written.


def case_dangling_symlink(root):
  image_folder(root)
  os.symlink(root / 'nowhere.png', root / 'cat' / 'gone.png')
  return str(root), r'cat/gone\.png: a symlink to .*nowhere\.png.*does not'


def case_non_utf8_file_name(root):
  image_folder(root)
  shutil.copy(root / 'cat' / '0.png',
              os.path.join(os.fsencode(root / 'cat'), b'caf\xe9.png'))
  return str(root), r'cat/caf\\xe9\.png: the name is not UTF-8'


def case_non_utf8_class_folder(root):
  image_folder(root)
  shutil.copytree(os.fsencode(root / 'cat'),
                  os.path.join(os.fsencode(root), b'd\xf6g'))
  return str(root), r'd\\xf6g: the name is not UTF-8'


def case_truncated_npz(root):
  os.makedirs(root)
  path = root / 'a.npz'
  np.savez(path, x_train=np.zeros((40, 8, 8), np.uint8),
           y_train=np.arange(40) % 2)
  content = path.read_bytes()
  path.write_bytes(content[:len(content) // 2])
  return str(path), r'a\.npz: not a readable \.npz file.*truncated'


def case_damaged_npz_member(root):
  os.makedirs(root)
  path = root / 'a.npz'
  np.savez(path, x_train=np.full((40, 8, 8), 3, np.uint8),
           y_train=np.arange(40) % 2)
  content = bytearray(path.read_bytes())
  content[len(content) // 3] ^= 0xFF  # Inside x_train: its CRC fails.
  path.write_bytes(bytes(content))
  return str(path), r'a\.npz: cannot read its arrays .*truncated or damaged'


def case_non_utf8_npz_texts(root):
  os.makedirs(root)
  path = root / 'a.npz'
  np.savez(path, x_train=np.array([b'good', b'caf\xe9', b'bad', b'ok']),
           y_train=np.array([0, 1, 0, 1]))
  return str(path), r'a\.npz: x_train\[1\] is not UTF-8 text'


def case_lone_surrogate_in_npz_texts(root):
  os.makedirs(root)
  path = root / 'a.npz'
  np.savez(path, x_train=np.array(['good', 'half \ud800', 'bad', 'ok']),
           y_train=np.array([0, 1, 0, 1]))
  return str(path), r'a\.npz: x_train\[1\] is not UTF-8 text'


BAD_FILES = [case_dangling_symlink, case_non_utf8_file_name,
             case_non_utf8_class_folder, case_truncated_npz,
             case_damaged_npz_member, case_non_utf8_npz_texts,
             case_lone_surrogate_in_npz_texts]


@pytest.mark.parametrize('case', BAD_FILES, ids=lambda c: c.__name__[5:])
def test_bad_files_are_one_clear_error_and_write_nothing(tmp_path, case):
  path, message = case(tmp_path / 'data')
  with pytest.raises(data.DataError, match=message) as error:
    files.prepared_folder(load_options(path, tmp_path / 'tfds',
                                       test_fraction=0.5))
  text = str(error.value)
  assert '\n' not in text
  text.encode('utf-8')  # Printable as the `error:` line.
  assert not os.path.exists(tmp_path / 'tfds')


# ----------------------------------------------------------------------------
# Item 14: two processes preparing the same files at once.


def test_files_prepared_meanwhile_by_another_process_are_used(
    tmp_path, monkeypatch):
  from svp_jax.data.builders import user_files  # pylint: disable=g-import-not-at-top
  root = image_folder(tmp_path / 'pets')
  options = load_options(root, tmp_path / 'tfds', test_fraction=0.5)
  monkeypatch.setattr(files, '_PREPARED', {})
  folder = files.prepared_folder(options)
  expected = files.read_sources(options, 'train')
  other = shutil.copytree(folder, tmp_path / 'other_process')
  shutil.rmtree(folder)
  monkeypatch.setattr(files, '_PREPARED', {})
  real_generators = user_files.UserFiles._split_generators  # pylint: disable=protected-access
  finished = []

  def racing(self, dl_manager):
    # The other process finishes and renames its folder into place while
    # this one is writing.
    shutil.copytree(other, folder)
    finished.append(folder)
    return real_generators(self, dl_manager)

  monkeypatch.setattr(user_files.UserFiles, '_split_generators', racing)
  assert files.prepared_folder(options) == folder
  assert finished == [folder]
  monkeypatch.setattr(files, '_PREPARED', {})
  assert files.read_sources(options, 'train') == expected
  # Nothing left beside it: the scratch folder is gone.
  assert os.listdir(os.path.dirname(folder)) == [os.path.basename(folder)]


# ----------------------------------------------------------------------------
# Item 15: preparing in bounded memory.


def test_channel_statistics_need_little_memory_beyond_the_pixels():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (4000, 24, 24, 3), dtype=np.uint8)
  images[:, :, :, 2] = 77  # A constant channel: std floored.
  own = own_files.OwnData('image', ('a', 'b'), own_files.Split(
      images, np.zeros(len(images), np.int32), ('x',) * len(images)),
                          own_files.Split(images[:0], np.zeros(0, np.int32),
                                          ()))
  tracemalloc.start()
  try:
    meta = files.metadata(own)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  # Float copies of every pixel took 16x and more; now a chunk's worth.
  assert peak < 1.0 * images.nbytes, peak / images.nbytes
  pixels = images.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(meta['mean'], pixels.mean(0), rtol=1e-9)
  np.testing.assert_allclose(meta['std'][:2], pixels.std(0)[:2], rtol=1e-9)
  assert meta['std'][2] == statistics.STD_FLOOR


# ----------------------------------------------------------------------------
# Item 16: a read-only data_dir.


@pytest.fixture
def read_only(monkeypatch, tmp_path):
  """Makes folders read-only: chmod, and for root (whom chmod does not stop)
  os.access says so and writes under them fail, as on a read-only mount."""
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'user_cache'))
  frozen = []
  real_access, real_write_json = os.access, results.write_json

  def under(path):
    path = os.path.abspath(path)
    return any(path == f or path.startswith(f + os.sep) for f in frozen)

  def access(path, mode, **kwargs):
    if mode & os.W_OK and under(path):
      return False
    return real_access(path, mode, **kwargs)

  def write_json(path, value):
    if under(path):
      raise results.WriteError(30, f'cannot write {path}: Read-only file '
                               'system')
    real_write_json(path, value)

  monkeypatch.setattr(os, 'access', access)
  monkeypatch.setattr(results, 'write_json', write_json)

  def freeze(folder):
    os.makedirs(folder, exist_ok=True)
    frozen.append(os.path.abspath(folder))
    for base, subfolders, _ in os.walk(folder):
      for name in subfolders:
        os.chmod(os.path.join(base, name), 0o555)
    os.chmod(folder, 0o555)

  yield freeze
  for folder in frozen:
    for base, subfolders, _ in os.walk(folder):
      os.chmod(base, 0o755)
      for name in subfolders:
        os.chmod(os.path.join(base, name), 0o755)


class FakeSource:
  """A TFDS data source of a few images, counting reads."""

  def __init__(self, images):
    self.images, self.reads = images, 0

  def __len__(self):
    return len(self.images)

  def __getitems__(self, indices):
    self.reads += 1
    return [{'picture': self.images[i]} for i in indices]


class FakeBuilder:

  def __init__(self, folder, images):
    self.data_dir = str(folder)
    self.source = FakeSource(images)
    self.info = type('Info', (), {'full_name': 'fake/1.0.0'})()

  def as_data_source(self, split):
    del split
    return self.source


@pytest.mark.parametrize('access_tells', [True, False],
                         ids=['access_denied', 'write_fails'])
def test_tfds_statistics_of_a_read_only_data_dir_go_to_the_user_cache(
    tmp_path, read_only, monkeypatch, access_tells):
  folder = tmp_path / 'shared' / 'fake' / '1.0.0'
  read_only(tmp_path / 'shared')
  if not access_tells:  # As root on a read-only mount: only writing fails.
    monkeypatch.setattr(statistics, 'writable', lambda folder: True)
  images = np.random.default_rng(0).integers(0, 256, (7, 5, 5, 3), np.uint8)
  builder = FakeBuilder(folder, images)
  mean, std = tfds_catalog.channel_statistics(builder, 'train', 'picture')
  pixels = images.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(mean, pixels.mean(0), rtol=1e-9)
  np.testing.assert_allclose(std, pixels.std(0), rtol=1e-9)
  assert not os.path.exists(folder)
  cached = os.listdir(tmp_path / 'user_cache' / 'svp_jax' / 'statistics')
  assert len(cached) == 1 and cached[0].endswith(tfds_catalog.STATISTICS_FILE)
  reads = builder.source.reads
  # Read from the user's cache after, for this folder only.
  assert tfds_catalog.channel_statistics(builder, 'train', 'picture') == (
      mean, std)
  assert builder.source.reads == reads
  other = FakeBuilder(tmp_path / 'shared' / 'fake' / '2.0.0', images[:3])
  tfds_catalog.channel_statistics(other, 'train', 'picture')
  assert other.source.reads == 1


def test_own_files_with_a_read_only_data_dir(tmp_path, read_only,
                                             monkeypatch):
  root = image_folder(tmp_path / 'pets')
  monkeypatch.setattr(files, '_PREPARED', {})
  # Prepared there earlier: read from there.
  shared = tmp_path / 'shared'
  folder = files.prepared_folder(load_options(root, shared,
                                              test_fraction=0.5))
  read_only(shared)
  monkeypatch.setattr(files, '_PREPARED', {})
  assert files.prepared_folder(load_options(root, shared,
                                            test_fraction=0.5)) == folder
  # Not prepared there: prepared in the user's cache, data_dir untouched.
  empty = tmp_path / 'empty_shared'
  read_only(empty)
  info = data.dataset_info('files', path=root, data_dir=str(empty),
                           test_fraction=0.5)
  assert info.class_names == ('cat', 'dog')
  assert os.listdir(empty) == []
  cached = files.prepared_folder(load_options(root, empty, test_fraction=0.5))
  assert cached.startswith(str(tmp_path / 'user_cache' / 'svp_jax'))
  _, labels = data.load_split('files', 'train', path=root,
                              data_dir=str(empty), test_fraction=0.5)
  assert sorted(labels.tolist()) == [0, 1]  # 3 a class, half to test.


PREPARE_WHEN_TOLD = '''
import os, sys, time
from svp_jax import data
from svp_jax.data import files
from svp_jax.data.builders import user_files  # TFDS imported before the race.
root, data_dir, go = sys.argv[1:]
while not os.path.exists(go):  # Both processes start preparing together.
  time.sleep(0.01)
print(files.prepared_folder(data.LoadOptions(path=root, data_dir=data_dir,
                                             test_fraction=0.5)))
'''


@pytest.mark.slow  # Two Python processes importing TFDS: about 10 s.
def test_two_processes_preparing_the_same_files_both_succeed(tmp_path):
  root = image_folder(tmp_path / 'pets', per_class=300, size=(32, 32))
  go = tmp_path / 'go'
  runs = [subprocess.Popen(
      [sys.executable, '-c', PREPARE_WHEN_TOLD, root, str(tmp_path / 'tfds'),
       str(go)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for _ in range(2)]
  time.sleep(0.5)
  go.touch()
  outputs = [run.communicate(timeout=300) for run in runs]
  for run, (_, stderr) in zip(runs, outputs):
    assert run.returncode == 0, stderr[-3000:]
  folders = {stdout.strip().splitlines()[-1] for stdout, _ in outputs}
  assert len(folders) == 1
  folder, = folders
  assert os.listdir(os.path.dirname(folder)) == [os.path.basename(folder)]
  assert len(files.read_sources(load_options(root, tmp_path / 'tfds',
                                             test_fraction=0.5), 'test')) == 300
