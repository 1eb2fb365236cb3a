"""svp_jax.data.imagenet: torchvision-style transforms and streamed reading.

No ImageNet here. The transforms are checked against direct Pillow
computations. The streaming tests read a tiny `imagenet2012` written as real
array_record files by TFDS's own writer, through the official builder class
(its `_split_generators` swapped for in-memory JPEGs), because
`tfds.testing.mock_data` cannot stand in: in TFDS 4.9.10 its `as_data_source`
mock breaks `__getitems__` (the function is set on a MagicMock without
binding `self`), it encodes its random JPEGs with TensorFlow, and its builder
has no splits, so neither batch reads nor the loader's prepared-data check
can run on it.
"""

import io
import os
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
from PIL import Image
import pytest

from svp_jax.data import imagenet
from svp_jax.data.errors import DataError

SIZE = 32  # Output side in the streaming tests: small, so they run fast.


def _gradient(height, width):
  """A smooth RGB image: resizing it is exact to compare, not trivial."""
  y, x = np.mgrid[0:height, 0:width]
  return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                   (x + 2 * y) % 256], -1).astype(np.uint8)


def _encode(image, fmt='JPEG', mode=None):
  pil = Image.fromarray(image)
  if mode:
    pil = pil.convert(mode)
  buf = io.BytesIO()
  pil.save(buf, format=fmt, quality=90)
  return buf.getvalue()


# ---------------------------------------------------------------------------
# Transforms.


@pytest.mark.parametrize('shape', [(375, 500, 3), (500, 375, 3), (64, 48, 3),
                                   (300, 200), (300, 200, 1), (120, 90, 4)])
def test_transforms_give_rgb_uint8_squares(shape):
  image = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
  rng = np.random.default_rng(1)
  for out in (imagenet.random_resized_crop(image, rng, 56),
              imagenet.resize_center_crop(image, 64, 56)):
    assert out.shape == (56, 56, 3) and out.dtype == np.uint8


def test_grayscale_becomes_three_equal_channels():
  grey = _gradient(90, 120)[..., 0]
  out = imagenet.resize_center_crop(grey, 64, 56)
  assert out.shape == (56, 56, 3)
  np.testing.assert_array_equal(out[..., 0], out[..., 1])
  np.testing.assert_array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize('fmt,mode', [('JPEG', 'L'), ('JPEG', 'CMYK'),
                                      ('PNG', 'RGBA'), ('PNG', 'P')])
def test_decode_rgb_of_other_colour_modes(fmt, mode):
  image = _gradient(40, 60)
  out = imagenet.decode_rgb(_encode(image, fmt, mode))
  assert out.shape == (40, 60, 3) and out.dtype == np.uint8
  if mode == 'CMYK':
    # Pillow writes Adobe (inverted) CMYK and undoes it on reading: the
    # colours survive, up to JPEG loss.
    assert np.abs(out.astype(int) - image).mean() < 8


@pytest.mark.parametrize('height,width', [(375, 500), (500, 375), (400, 400)])
def test_crop_box_statistics(height, width):
  rng = np.random.default_rng(0)
  boxes = np.array([imagenet.crop_box(height, width, rng)
                    for _ in range(4000)])
  top, left, h, w = boxes.T
  assert (top >= 0).all() and (left >= 0).all()
  assert (top + h <= height).all() and (left + w <= width).all()
  area = h * w / (height * width)
  log_aspect = np.log(w / h)
  # Rounding w and h to integers moves the area and aspect a little.
  assert area.min() >= 0.08 * 0.97 and area.max() <= 1
  assert np.exp(log_aspect.min()) >= 3 / 4 * 0.99
  assert np.exp(log_aspect.max()) <= 4 / 3 * 1.01
  # Areas are uniform on [0.08, 1] (mean 0.54) minus the large boxes that do
  # not fit: about 0.43 on 4:3 images, 0.47 on a square.
  assert 0.40 < area.mean() < 0.50
  # Log-uniform aspect, symmetric on a square; boxes too wide (tall) for a
  # portrait (landscape) image are redrawn, so the mean leans its way (by
  # ~0.03 against a standard error of ~0.003).
  orientation = np.sign(width - height)
  if orientation:
    assert orientation * log_aspect.mean() > 0.015
  else:
    assert abs(log_aspect.mean()) < 0.01


def test_crop_box_falls_back_to_a_centered_box_within_the_ratio():
  # No box of 8%..100% of a 10 x 1000 strip has aspect <= 4/3.
  rng = np.random.default_rng(0)
  assert imagenet.crop_box(10, 1000, rng) == (0, (1000 - 13) // 2, 10, 13)
  assert imagenet.crop_box(1000, 10, rng) == ((1000 - 13) // 2, 0, 13, 10)


def test_random_resized_crop_is_box_then_bilinear_resize_then_flip():
  image = _gradient(375, 500)
  for seed in range(6):
    out = imagenet.random_resized_crop(image, np.random.default_rng(seed), 64)
    # Oracle: same draws in the same order, then Pillow directly.
    rng = np.random.default_rng(seed)
    top, left, h, w = imagenet.crop_box(375, 500, rng)
    want = Image.fromarray(image).crop((left, top, left + w, top + h)).resize(
        (64, 64), Image.BILINEAR)
    if rng.random() < 0.5:
      want = want.transpose(Image.FLIP_LEFT_RIGHT)
    np.testing.assert_array_equal(out, np.asarray(want))


def test_random_resized_crop_is_deterministic_given_the_rng():
  image = _gradient(375, 500)

  def crop(seed):
    return imagenet.random_resized_crop(image, np.random.default_rng(seed), 64)

  np.testing.assert_array_equal(crop(3), crop(3))
  assert not np.array_equal(crop(3), crop(4))
  # The flip is the draw after the box's: heads about half the time.
  rngs = [np.random.default_rng(s) for s in range(400)]
  for rng in rngs:
    imagenet.crop_box(375, 500, rng)
  assert 150 < sum(rng.random() < 0.5 for rng in rngs) < 250


@pytest.mark.parametrize('height,width,new_size,top,left', [
    # 500 x 375 landscape: short side 375 -> 256, long int(341.3) = 341;
    # left = round(58.5) = 58 (Python rounds half to even, as torchvision).
    (375, 500, (341, 256), 16, 58),
    # Portrait: width 375 -> 256, height int(256 * 500 / 375) = 341.
    (500, 375, (256, 341), 58, 16),
    # Short side already 256: no resize; left = round(37.5) = 38.
    (256, 299, None, 16, 38),
    # Smaller than 256: upscaled, long int(256 * 150 / 100) = 384.
    (100, 150, (384, 256), 16, 80),
])
def test_resize_center_crop_matches_pillow(height, width, new_size, top, left):
  image = _gradient(height, width)
  pil = Image.fromarray(image)
  if new_size:
    pil = pil.resize(new_size, Image.BILINEAR)
  want = np.asarray(pil)[top:top + 224, left:left + 224]
  np.testing.assert_array_equal(
      imagenet.resize_center_crop(image, 256, 224), want)


def test_resize_center_crop_rejects_a_crop_larger_than_the_resize():
  with pytest.raises(ValueError, match='exceeds'):
    imagenet.resize_center_crop(_gradient(50, 50), 32, 40)


def test_eval_resize_keeps_torchvisions_ratio():
  assert imagenet.eval_resize(224) == 256
  assert imagenet.eval_resize(112) == 128


# ---------------------------------------------------------------------------
# A tiny imagenet2012, written as real array_record files.

# (height, width, colour mode) of the stored JPEGs: landscape, portrait,
# smaller than the crop, greyscale, CMYK.
_TINY_SHAPES = [(375, 500, 'RGB'), (500, 375, 'RGB'), (20, 30, 'RGB'),
                (120, 160, 'L'), (90, 70, 'CMYK'), (64, 64, 'RGB')]
_TINY_TRAIN = 12
_TINY_VALIDATION = 4


def _tiny_examples(count, split, seed):
  rng = np.random.default_rng(seed)
  examples = []
  for i in range(count):
    height, width, mode = _TINY_SHAPES[i % len(_TINY_SHAPES)]
    noise = rng.integers(-30, 30, (height, width, 3))
    image = np.clip(_gradient(height, width) + noise, 0, 255).astype(np.uint8)
    name = f'{split}_{i:04d}.JPEG'
    # Distinct labels spread over [0, 1000), derived from the name.
    examples.append((name, {'image': _encode(image, mode=mode),
                            'label': (i * 89) % 1000, 'file_name': name}))
  return examples


def _write_tiny_imagenet(data_dir):
  """`imagenet2012` in data_dir, written by TFDS (no TensorFlow needed)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder_cls('imagenet2012')(data_dir=data_dir)
  examples = {'train': _tiny_examples(_TINY_TRAIN, 'train', 0),
              'validation': _tiny_examples(_TINY_VALIDATION, 'validation', 1)}
  # The official builder reads the tar files here; everything after (the
  # features, the writer, the array_record shuffling) is TFDS's own.
  builder._split_generators = lambda dl_manager: {  # pylint: disable=protected-access
      split: iter(rows) for split, rows in examples.items()}
  builder.download_and_prepare(file_format='array_record')
  return {split: dict(rows) for split, rows in examples.items()}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  """(data_dir, {split: {file_name: example}}) of a tiny imagenet2012."""
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  return data_dir, _write_tiny_imagenet(data_dir)


def _load(data_dir, split='train', **kwargs):
  kwargs = {'mode': 'train', 'size': SIZE, 'seed': 0, **kwargs}
  return imagenet.load_imagenet_split(split, data_dir=data_dir, **kwargs)


def _stored(data_dir, split='train'):
  """The stored records in the loader's order (its own data source)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  source = builder.as_data_source(
      split=split, decoders={'image': tfds.decode.SkipDecoding()})
  return [source[i] for i in range(len(source))]


def test_streaming_shape_dtype_and_labels(tiny):
  data_dir, examples = tiny
  images, labels = _load(data_dir)
  assert len(images) == _TINY_TRAIN
  assert images.shape == (_TINY_TRAIN, SIZE, SIZE, 3) and images.ndim == 4
  assert images.dtype == np.uint8
  assert labels.dtype == np.int32 and labels.shape == (_TINY_TRAIN,)
  assert labels.min() >= 0 and labels.max() < 1000
  # Row i's label is the label of the record row i decodes.
  records = _stored(data_dir)
  names = [r['file_name'] for r in records]
  names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
  np.testing.assert_array_equal(
      labels, [examples['train'][n]['label'] for n in names])
  val_images, val_labels = _load(data_dir, 'validation', mode='eval')
  assert val_images.shape == (_TINY_VALIDATION, SIZE, SIZE, 3)
  assert sorted(val_labels) == sorted(
      e['label'] for e in examples['validation'].values())


def test_streaming_fancy_indices_and_slices(tiny):
  images, _ = _load(tiny[0], mode='eval')
  batch = images[np.array([5, 0, 5, 11])]
  assert batch.shape == (4, SIZE, SIZE, 3) and batch.dtype == np.uint8
  np.testing.assert_array_equal(batch[0], batch[2])
  assert images[[]].shape == (0, SIZE, SIZE, 3)
  assert images[3].shape == (SIZE, SIZE, 3)
  head = images[:5]
  assert isinstance(head, imagenet.StreamingImages)
  assert len(head) == 5 and head.shape == (5, SIZE, SIZE, 3)
  np.testing.assert_array_equal(head[[4, 1]], images[[4, 1]])
  np.testing.assert_array_equal(images[2:][[0]], images[[2]])
  with pytest.raises(IndexError):
    head[[5]]  # pylint: disable=pointless-statement


def test_eval_mode_is_resize_center_crop_of_the_stored_jpeg(tiny):
  data_dir = tiny[0]
  images, _ = _load(data_dir, mode='eval')
  first = images[np.arange(len(images))]
  np.testing.assert_array_equal(first, images[np.arange(len(images))])
  for i, record in enumerate(_stored(data_dir)):
    want = imagenet.resize_center_crop(imagenet.decode_rgb(record['image']),
                                       imagenet.eval_resize(SIZE), SIZE)
    np.testing.assert_array_equal(first[i], want)


def test_train_crop_of_the_kth_read_depends_on_seed_record_and_k(tiny):
  data_dir = tiny[0]
  images, _ = _load(data_dir, seed=7)
  records = _stored(data_dir)
  order = np.array([3, 0, 3, 8])  # Record 3 twice in a batch.
  reads = {'first': [0, 0, 1, 0], 'second': [2, 1, 3, 1]}
  for name, batch in (('first', images[order]), ('second', images[order])):
    for row, (i, k) in enumerate(zip(order, reads[name])):
      rng = np.random.default_rng(np.random.SeedSequence([7, i, k]))
      want = imagenet.random_resized_crop(
          imagenet.decode_rgb(records[i]['image']), rng, SIZE)
      np.testing.assert_array_equal(batch[row], want)


def test_train_crops_replay_and_change(tiny):
  data_dir = tiny[0]
  all_rows = np.arange(_TINY_TRAIN)

  def two_epochs(seed, **kwargs):
    images, _ = _load(data_dir, seed=seed, **kwargs)
    return images[all_rows], images[all_rows]

  epoch0, epoch1 = two_epochs(0)
  replay0, replay1 = two_epochs(0, num_threads=1)
  np.testing.assert_array_equal(epoch0, replay0)
  np.testing.assert_array_equal(epoch1, replay1)
  # New crops on the second read and with another seed (a 20 x 30 source
  # upscaled to 32 x 32 can repeat by chance, so not every row must differ).
  differ = lambda a, b: np.mean([not np.array_equal(x, y)
                                 for x, y in zip(a, b)])
  assert differ(epoch0, epoch1) > 0.7
  assert differ(epoch0, two_epochs(1)[0]) > 0.7


def test_views_share_the_read_counters(tiny):
  data_dir = tiny[0]
  images, _ = _load(data_dir)
  fresh, _ = _load(data_dir)
  images[:4][[2]]  # pylint: disable=expression-not-assigned
  # Record 2 was read once through the slice: the pool's next read is k=1.
  fresh[[2]]  # pylint: disable=expression-not-assigned
  np.testing.assert_array_equal(images[[2]], fresh[[2]])
  evaluate = images.with_mode('eval')
  assert evaluate.mode == 'eval' and images.mode == 'train'
  np.testing.assert_array_equal(evaluate[[1, 2]],
                                _load(data_dir, mode='eval')[0][[1, 2]])


def test_labels_are_cached_next_to_the_data(tiny):
  data_dir = tiny[0]
  _, labels = _load(data_dir)
  path = os.path.join(data_dir, 'imagenet2012', '5.1.0',
                      'svp_jax-train-labels.npy')
  np.testing.assert_array_equal(np.load(path), labels)
  _, again = _load(data_dir)
  np.testing.assert_array_equal(again, labels)


def test_reading_needs_no_tensorflow(tiny):
  # A fresh interpreter: other tests may have imported TensorFlow.
  script = textwrap.dedent(f"""
      import sys
      from svp_jax.data import imagenet
      images, labels = imagenet.load_imagenet_split(
          'train', data_dir={tiny[0]!r}, mode='train', size=24)
      assert images[[0, 1, 0]].shape == (3, 24, 24, 3)
      assert images.with_mode('eval')[[2]].shape == (1, 24, 24, 3)
      assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'
      """)
  subprocess.run([sys.executable, '-c', script], check=True,
                 env={**os.environ, 'JAX_PLATFORMS': 'cpu'})


def test_bad_arguments():
  with pytest.raises(ValueError, match='split'):
    imagenet.load_imagenet_split('test', data_dir='/nonexistent')
  with pytest.raises(ValueError, match='mode'):
    imagenet.load_imagenet_split('train', data_dir='/nonexistent',
                                 mode='augment')
  with pytest.raises(ValueError, match='mode'):
    imagenet.StreamingImages([], mode='valid', size=8)


# ---------------------------------------------------------------------------
# Missing data, and preparing from the tar files.


def test_missing_data_says_where_the_tar_files_go(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  def no_prepare(*args, **kwargs):
    raise AssertionError('TFDS must not try to prepare or download')

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare',
                      no_prepare)
  manual_dir = os.path.join(tmp_path, 'downloads', 'manual')
  with pytest.raises(DataError) as e:
    imagenet.load_imagenet_split('train', data_dir=str(tmp_path))
  message = str(e.value)
  assert manual_dir in message
  assert 'ILSVRC2012_img_train.tar' in message
  assert 'ILSVRC2012_img_val.tar' in message
  # One tar present: the message names the other.
  os.makedirs(manual_dir)
  open(os.path.join(manual_dir, 'ILSVRC2012_img_val.tar'), 'wb').close()
  with pytest.raises(DataError, match='lacks ILSVRC2012_img_train.tar\\.'):
    imagenet.load_imagenet_split('validation', data_dir=str(tmp_path))


def _tar(path, members):
  with tarfile.open(path, 'w') as tar:
    for name, data in members:
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))


def _tar_bytes(members):
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w') as tar:
    for name, data in members:
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


@pytest.mark.slow
def test_prepares_from_the_ilsvrc2012_tar_files(tmp_path):
  """TFDS's unmodified builder on stand-in tars in the official layout."""
  pytest.importorskip('tensorflow')  # Preparing needs it; reading does not.
  jpeg = _encode(_gradient(60, 80))
  # Train: one tar per synset, holding <synset>_<n>.JPEG. Validation: flat
  # ILSVRC2012_val_<8 digits>.JPEG, labelled by TFDS's validation_labels.txt
  # in sorted name order (its first lines: n01751748, n09193705, n02105855).
  synsets = ['n01440764', 'n01443537']  # Class 0 and 1 (sorted synsets).
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  _tar(manual_dir / 'ILSVRC2012_img_train.tar', [
      (f'{s}.tar', _tar_bytes([(f'{s}_{i}.JPEG', jpeg) for i in range(2)]))
      for s in synsets])
  _tar(manual_dir / 'ILSVRC2012_img_val.tar', [
      (f'ILSVRC2012_val_{i:08d}.JPEG', jpeg) for i in (1, 2, 3)])
  data_dir = str(tmp_path / 'tfds')
  images, labels = imagenet.load_imagenet_split(
      'train', data_dir=data_dir, manual_dir=str(manual_dir), size=SIZE)
  assert images[np.arange(4)].shape == (4, SIZE, SIZE, 3)
  assert sorted(labels) == [0, 0, 1, 1]
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  names = tfds.builder_cls('imagenet2012')(data_dir=data_dir).info.features[
      'label'].names
  _, val_labels = imagenet.load_imagenet_split(
      'validation', data_dir=data_dir, mode='eval', size=SIZE)
  assert sorted(names[i] for i in val_labels) == sorted(
      ['n01751748', 'n09193705', 'n02105855'])


# ----------------------------------------------------------------------------
# Through the jobs (plumbing only: a tiny model on the tiny dataset above).


@pytest.mark.slow
@pytest.mark.parametrize('config_name', ['imagenet_resnet18_proxy',
                                         'imagenet_resnet50_baseline'])
def test_active_run_trains_on_crops_and_scores_center_crops(tiny, tmp_path,
                                                           config_name):
  # pylint: disable=g-import-not-at-top
  import importlib
  from svp_jax import active
  from svp_jax import validation
  # pylint: enable=g-import-not-at-top
  config = importlib.import_module(f'configs.{config_name}').get_config(
      'kcenters,quick')
  config.data.data_dir = tiny[0]
  config.data.image_size = SIZE
  config.data.max_train_examples = config.data.max_test_examples = 0
  config.selection.initial_subset = 4.0
  config.selection.rounds = (4.0, 4.0)
  for role in ('selector', 'target'):
    config[role].train.batch_size = 4
  validation.validate_active_config(config)
  summary = active.run(config, str(tmp_path))
  assert summary['complete'] and summary['pool_size'] == _TINY_TRAIN
  labeled = np.loadtxt(tmp_path / 'proxy' / '12' / 'labeled_12.index', int)
  np.testing.assert_array_equal(np.sort(labeled), np.arange(_TINY_TRAIN))
  accuracy = summary['rounds'][-1]['target_accuracy']
  assert 0.0 <= accuracy <= 1.0


def test_imagenet_configs_follow_the_paper():
  # pylint: disable=g-import-not-at-top
  import importlib
  from configs import imagenet
  from svp_jax import active
  from svp_jax import run_files
  from svp_jax import validation
  # pylint: enable=g-import-not-at-top
  proxy = importlib.import_module('configs.imagenet_resnet18_proxy')
  config = proxy.get_config(None)
  validation.validate_active_config(config)
  assert (config.selector.model.name, config.target.model.name) == (
      'resnet18', 'resnet50')
  assert active.resolve_schedule(
      config.selection.initial_subset, config.selection.rounds,
      1_281_167) == (25_623, 102_493) + (128_117,) * 4
  target = config.target.train
  assert (target.batch_size, target.weight_decay, target.label_smoothing) == (
      256, 1e-4, 0.1)
  assert sum(e for e, _ in target.lr_schedule) == 100
  assert [lr for _, lr in target.lr_schedule[:6]] == [
      0.0167, 0.0333, 0.05, 0.0667, 0.0833, 0.1]
  fewer = importlib.import_module(
      'configs.imagenet_resnet18_fewer_epochs_proxy').get_config(None)
  assert sum(e for e, _ in fewer.selector.train.lr_schedule) == 45
  baseline = importlib.import_module(
      'configs.imagenet_resnet50_baseline').get_config(None)
  assert run_files.same_training(baseline.selector, baseline.target)
  # --scale-learning-rates: batch 1,024 multiplies every rate by 4.
  scaled = imagenet.model_section('resnet50', batch_size=1024)
  assert scaled.train.lr_schedule[5] == (25, 0.4)
