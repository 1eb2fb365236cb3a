"""ImageNet (ILSVRC2012) streamed from TFDS: JPEGs decoded per batch, no TF.

The 1.28M training JPEGs do not fit in host memory, so `StreamingImages`
keeps them encoded in TFDS's array_record files and decodes, crops and
resizes only the rows a process feeds, when a batch is gathered
(`images[batch_indices]`). The transforms are torchvision's ImageNet recipe,
on Pillow (which torchvision itself uses for PIL images):

* 'train' view: RandomResizedCrop(S) + RandomHorizontalFlip(),
* 'eval' view: Resize(round(S * 256 / 224)) + CenterCrop(S).

Reading needs TFDS, array_record and Pillow, never TensorFlow: TFDS returns
the stored JPEG bytes (`tfds.decode.SkipDecoding`) and Pillow decodes them.
Preparing the array_record files once from the ILSVRC2012 tar files goes
through TFDS's official `imagenet2012` builder, which needs TensorFlow.

Examples come in the order TFDS stored them (fixed, shuffled by file name),
so the first N examples of a split are a class-mixed subset. Importing this
module registers the `imagenet` family, whose loader returns the eval view.
"""

from collections.abc import Sequence
import concurrent.futures
import copy
import io
import math
import os
import threading
import time
from typing import Any

from absl import logging
import numpy as np
from PIL import Image

from svp_jax.data import registry
from svp_jax.data import tfds_util
from svp_jax.data.errors import DataError
from svp_jax.data.info import DatasetInfo

NAME = 'imagenet2012'
NUM_CLASSES = 1000
SPLITS = ('train', 'validation')
# The files TFDS's builder expects in manual_dir (its MANUAL_DOWNLOAD_
# INSTRUCTIONS); the test-set tar is optional there and unused here.
MANUAL_FILES = ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar')
MODES = ('train', 'eval')
# torchvision's ImageNet evaluation resizes the shorter side to 256 for a
# 224 crop; other crop sizes keep that ratio.
EVAL_RESIZE_RATIO = 256 / 224
# RandomResizedCrop defaults (torchvision and the reference).
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
# torchvision tries this many random boxes before its center-crop fallback.
_CROP_ATTEMPTS = 10
# Streamed: images are decoded per batch, at config.data.image_size (224).
# Tested on the validation split.
INFO = DatasetInfo(
    name=NAME, num_classes=NUM_CLASSES, image_shape=(224, 224, 3),
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    train_split=SPLITS[0], test_split=SPLITS[1], host_augmentation=True)


def eval_resize(size: int) -> int:
  """Shorter side before the center crop: 256 for size 224."""
  return round(size * EVAL_RESIZE_RATIO)


def decode_rgb(encoded: bytes) -> np.ndarray:
  """JPEG (or PNG) bytes -> uint8 (H, W, 3), whatever the stored colour mode."""
  return np.asarray(_open_rgb(encoded))


def random_resized_crop(image: np.ndarray, rng: np.random.Generator,
                        size: int,
                        scale: tuple[float, float] = CROP_SCALE,
                        ratio: tuple[float, float] = CROP_RATIO
                        ) -> np.ndarray:
  """torchvision's RandomResizedCrop(size) then RandomHorizontalFlip().

  Args:
    image: uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (RGBA: alpha is
      dropped).
    rng: the only source of randomness (box, then flip).
    size: output height and width.
    scale: range of the box area as a fraction of the image area.
    ratio: range of the box aspect ratio (width / height), sampled
      log-uniformly.

  Returns:
    uint8 (size, size, 3).
  """
  return np.asarray(_random_resized_crop(_to_pil_rgb(image), rng, size,
                                         scale, ratio))


def resize_center_crop(image: np.ndarray, resize: int, size: int
                       ) -> np.ndarray:
  """torchvision's Resize(resize) then CenterCrop(size), bilinear.

  Args:
    image: uint8 image as for `random_resized_crop`.
    resize: the shorter side is scaled to this, keeping the aspect ratio.
    size: output height and width; at most `resize`.

  Returns:
    uint8 (size, size, 3).
  """
  return np.asarray(_resize_center_crop(_to_pil_rgb(image), resize, size))


def crop_box(height: int, width: int, rng: np.random.Generator,
             scale: tuple[float, float] = CROP_SCALE,
             ratio: tuple[float, float] = CROP_RATIO
             ) -> tuple[int, int, int, int]:
  """(top, left, box height, box width): torchvision's RandomResizedCrop box.

  Same algorithm as `RandomResizedCrop.get_params`, draws from `rng` in the
  same order (area, log aspect ratio, top, left), Python's `round`.
  """
  area = height * width
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(_CROP_ATTEMPTS):
    target_area = area * rng.uniform(scale[0], scale[1])
    aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
    w = int(round(math.sqrt(target_area * aspect)))
    h = int(round(math.sqrt(target_area / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return top, left, h, w
  # Fallback: the largest centered box whose aspect ratio is within range.
  in_ratio = width / height
  if in_ratio < min(ratio):
    w, h = width, int(round(width / min(ratio)))
  elif in_ratio > max(ratio):
    w, h = int(round(height * max(ratio))), height
  else:
    w, h = width, height
  return (height - h) // 2, (width - w) // 2, h, w


def _open_rgb(encoded: bytes) -> Image.Image:
  image = Image.open(io.BytesIO(encoded))
  # Pillow decodes grayscale JPEGs as 'L' and CMYK ones as 'CMYK' (undoing
  # Adobe's inversion); the model wants 3 channels either way.
  return image if image.mode == 'RGB' else image.convert('RGB')


def _to_pil_rgb(image: np.ndarray) -> Image.Image:
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f'expected a uint8 image, got {image.dtype}')
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.ndim not in (2, 3) or (image.ndim == 3 and
                                  image.shape[-1] not in (3, 4)):
    raise ValueError(f'expected an (H, W[, 1|3|4]) image, got {image.shape}')
  pil = Image.fromarray(image)
  return pil if pil.mode == 'RGB' else pil.convert('RGB')


def _random_resized_crop(image: Image.Image, rng: np.random.Generator,
                         size: int, scale: tuple[float, float],
                         ratio: tuple[float, float]) -> Image.Image:
  top, left, h, w = crop_box(image.height, image.width, rng, scale, ratio)
  # Crop, then resize (as torchvision's resized_crop): resizing with a `box`
  # instead would filter in pixels from outside the box at its edges.
  image = image.crop((left, top, left + w, top + h)).resize(
      (size, size), Image.Resampling.BILINEAR)
  if rng.random() < 0.5:
    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
  return image


def _resize_center_crop(image: Image.Image, resize: int, size: int
                        ) -> Image.Image:
  if size > resize:
    raise ValueError(f'crop size {size} exceeds the resized side {resize}')
  width, height = image.size
  # torchvision's Resize(int): the long side is truncated, not rounded.
  if width <= height:
    new_size = (resize, int(resize * height / width))
  else:
    new_size = (int(resize * width / height), resize)
  if new_size != image.size:
    image = image.resize(new_size, Image.Resampling.BILINEAR)
  width, height = image.size
  # torchvision's CenterCrop rounds the offsets with Python's round.
  top = int(round((height - size) / 2))
  left = int(round((width - size) / 2))
  return image.crop((left, top, left + size, top + size))


class StreamingImages:
  """ImageNet images decoded and transformed on demand, indexed like numpy.

  `images[indices]` -> uint8 (len(indices), S, S, 3); `images[a:b]` is
  another lazy view; `len(images)`, `images.shape` (n, S, S, 3), `.dtype`
  and `.ndim` behave as for the array this stands in for.

  Randomness ('train' mode) is a pure function of (seed, i, k): the k-th
  read (k = 0, 1, ...) of record i of the split (its position in TFDS's
  files, whatever view reads it) crops with a numpy Generator seeded from
  `SeedSequence([seed, i, k])`. The read counters (int32, 4 bytes a record)
  live in this process and are shared by all views of one pool, so a
  process that reads the same rows in the same order sees the same crops,
  and each epoch sees new ones. 'eval' mode is deterministic.
  """

  def __init__(self, source: Sequence[Any], *, mode: str, size: int,
               seed: int = 0, num_threads: int | None = None):
    """Wraps a TFDS data source.

    Args:
      source: random-access records with the stored image bytes under
        'image', e.g. `builder.as_data_source(split=..., decoders={'image':
        tfds.decode.SkipDecoding()})`; needs `__getitems__` and `__len__`.
      mode: 'train' (random resized crop + flip) or 'eval' (resize + center
        crop).
      size: output height and width S.
      seed: non-negative; with the read counts it fixes every 'train' crop.
      num_threads: decoding threads (Pillow releases the GIL while it
        decodes and resizes); default `os.cpu_count()`.
    """
    if mode not in MODES:
      raise ValueError(f'mode={mode!r}: expected one of {MODES}')
    if seed < 0:
      raise ValueError(f'seed={seed} must be non-negative (SeedSequence)')
    self._source = source
    self._mode = mode
    self._size = size
    self._seed = seed
    self._positions = np.arange(len(source))
    # Per record, not per view: a view's row i is record _positions[i].
    self._reads = np.zeros(len(source), np.int32)
    self._reads_lock = threading.Lock()
    self._num_threads = max(1, num_threads or os.cpu_count() or 1)
    self._executor = (
        concurrent.futures.ThreadPoolExecutor(
            self._num_threads, thread_name_prefix='svp_jax-imagenet')
        if self._num_threads > 1 else None)
    self.dtype = np.dtype(np.uint8)
    self.ndim = 4

  @property
  def shape(self) -> tuple[int, int, int, int]:
    return (len(self._positions), self._size, self._size, 3)

  @property
  def mode(self) -> str:
    return self._mode

  def __len__(self) -> int:
    return len(self._positions)

  def __repr__(self) -> str:
    return (f'StreamingImages(mode={self._mode!r}, shape={self.shape}, '
            f'seed={self._seed}, num_threads={self._num_threads})')

  def with_mode(self, mode: str) -> 'StreamingImages':
    """The same rows in another mode (sharing source, threads and counters)."""
    if mode not in MODES:
      raise ValueError(f'mode={mode!r}: expected one of {MODES}')
    view = copy.copy(self)
    view._mode = mode  # pylint: disable=protected-access
    return view

  def __getitem__(self, rows) -> 'np.ndarray | StreamingImages':
    if isinstance(rows, slice):
      view = copy.copy(self)
      view._positions = self._positions[rows]  # pylint: disable=protected-access
      return view
    rows = np.asarray(rows)
    if not rows.size:
      rows = rows.astype(np.int64)  # np.asarray([]) is float.
    positions = np.atleast_1d(self._positions[rows])
    out = np.empty((len(positions), self._size, self._size, 3), np.uint8)
    if len(positions):
      self._fill(out, positions)
    return out[0] if rows.ndim == 0 else out

  def _fill(self, out: np.ndarray, positions: np.ndarray):
    records = self._source.__getitems__(positions.tolist())
    reads = (self._next_reads(positions) if self._mode == 'train'
             else np.zeros(len(positions), np.int64))

    def fill_row(row: int):
      out[row] = self._transform(records[row]['image'], int(positions[row]),
                                 int(reads[row]))

    if self._executor is None or len(positions) == 1:
      for row in range(len(positions)):
        fill_row(row)
    else:
      # list() re-raises the first worker exception here.
      list(self._executor.map(fill_row, range(len(positions))))

  def _next_reads(self, positions: np.ndarray) -> np.ndarray:
    """Read numbers k of these records, counting repeats within the batch."""
    reads = np.empty(len(positions), np.int64)
    with self._reads_lock:
      for row, position in enumerate(positions):
        reads[row] = self._reads[position]
        self._reads[position] += 1
    return reads

  def _transform(self, encoded: bytes, position: int, read: int
                 ) -> np.ndarray:
    try:
      image = _open_rgb(encoded)
      if self._mode == 'train':
        rng = np.random.default_rng(
            np.random.SeedSequence([self._seed, position, read]))
        image = _random_resized_crop(image, rng, self._size, CROP_SCALE,
                                     CROP_RATIO)
      else:
        image = _resize_center_crop(image, eval_resize(self._size),
                                    self._size)
      return np.asarray(image)
    except (OSError, ValueError) as e:
      # Pillow's errors do not say which of a million records was bad.
      raise DataError(f'{NAME}: cannot decode record {position}: {e}') from e


def load_imagenet_split(split: str, *, data_dir: str | None = None,
                        manual_dir: str | None = None, mode: str = 'train',
                        size: int = 224, seed: int = 0,
                        num_threads: int | None = None
                        ) -> tuple[StreamingImages, np.ndarray]:
  """A split's images (streamed) and labels, preparing the split if needed.

  If `data_dir` holds no array_record `imagenet2012`, TFDS's official builder
  prepares it (once; hours, ~150 GB) from ILSVRC2012_img_train.tar and
  ILSVRC2012_img_val.tar in `manual_dir`. That step needs TensorFlow
  (requirements-prepare.txt); reading never does. Nothing is downloaded.

  Args:
    split: 'train' or 'validation'.
    data_dir: TFDS data folder (default: `tfds_util.default_data_dir()`).
    manual_dir: folder of the tar files (default <data_dir>/downloads/manual).
    mode: 'train' or 'eval' (see `StreamingImages`).
    size: output height and width.
    seed: seed of the 'train' crops.
    num_threads: decoding threads (default: `os.cpu_count()`).

  Returns:
    `StreamingImages` (n, size, size, 3) and int32 labels (n,) in [0, 1000).

  Raises:
    ValueError: unknown split or mode.
    DataError: not prepared and the tar files are missing (the message says
      where to put them), or preparing needs TensorFlow.
  """
  if split not in SPLITS:
    raise ValueError(f'split={split!r}: expected one of {SPLITS}')
  if mode not in MODES:
    raise ValueError(f'mode={mode!r}: expected one of {MODES}')
  data_dir, manual_dir = tfds_util.resolve_dirs(data_dir, manual_dir)
  builder = _imagenet_builder(data_dir, manual_dir)
  if split not in builder.info.splits:
    raise DataError(f'{NAME} in {builder.data_dir} has no {split!r} split '
                    f'(it has {sorted(builder.info.splits)}).')
  # The stored JPEG bytes, not TFDS's decoding (which needs TensorFlow or
  # decodes into arrays we would only re-encode).
  skip_decoding = tfds_util.tfds().decode.SkipDecoding()
  source = builder.as_data_source(split=split,
                                  decoders={'image': skip_decoding})
  labels = _split_labels(builder, split, source)
  images = StreamingImages(source, mode=mode, size=size, seed=seed,
                           num_threads=num_threads)
  return images, labels


def _imagenet_builder(data_dir: str, manual_dir: str | None) -> Any:
  """TFDS's official builder, prepared if needed from the tar files."""
  builder_cls = tfds_util.tfds().builder_cls(NAME)
  builder = tfds_util.prepared(builder_cls, data_dir)
  if builder:
    return builder
  manual_dir = manual_dir or tfds_util.default_manual_dir(data_dir)
  missing = [f for f in MANUAL_FILES
             if not os.path.isfile(os.path.join(manual_dir, f))]
  if missing:
    # Checked here because the builder would only log a warning per missing
    # tar and prepare whatever splits remain.
    raise DataError(
        f'{NAME} is not prepared (as array_record) in data_dir={data_dir} '
        f'and manual_dir={manual_dir} lacks {", ".join(missing)}. ImageNet '
        'cannot be downloaded automatically: get ILSVRC2012_img_train.tar '
        '(147,897,477,120 bytes) and ILSVRC2012_img_val.tar (6,744,924,160 '
        'bytes) from image-net.org (registration needed), put both in '
        f'{manual_dir} (or set '
        '--config.data.manual_dir to their folder) and run again; preparing '
        f'them once needs TensorFlow: {tfds_util.PREPARE_HINT}.')
  tfds_util.require_tensorflow(NAME, 'preparing the official TFDS builder')
  builder = builder_cls(data_dir=data_dir)
  tfds_util.prepare(builder, manual_dir)
  return builder


def _labels_cache_path(builder: Any, split: str) -> str:
  return os.path.join(builder.data_dir, f'svp_jax-{split}-labels.npy')


def _split_labels(builder: Any, split: str, source: Sequence[Any]
                  ) -> np.ndarray:
  """All labels of a split (int32), cached next to the array_record files.

  Each label sits in its record next to the JPEG and TFDS reads records
  whole, so the first read of the train split reads all ~140 GB; the cache
  (5 MB) makes later runs instant.
  """
  path = _labels_cache_path(builder, split)
  if os.path.isfile(path):
    labels = np.load(path)
    if labels.shape == (len(source),) and labels.dtype == np.int32:
      return labels
    logging.warning('Ignoring %s: %s %s, expected (%d,) int32.', path,
                    labels.shape, labels.dtype, len(source))
  start = time.perf_counter()
  labels = _read_labels(source)
  logging.info('Read %d %s[%s] labels in %.1f s.', len(labels), NAME, split,
               time.perf_counter() - start)
  # Unique name, then atomic rename: processes of a multi-host run may
  # write the same file at once.
  tmp = f'{path}.{os.getpid()}.{threading.get_ident()}.tmp'
  try:
    with open(tmp, 'wb') as f:
      np.save(f, labels)
    os.replace(tmp, path)
  except OSError as e:  # E.g. a read-only data_dir: just read again next time.
    logging.warning('Cannot cache %s labels in %s: %s', NAME, path, e)
  return labels


def _read_labels(source: Sequence[Any]) -> np.ndarray:
  num = len(source)
  labels = np.empty((num,), np.int32)
  for start, records in tfds_util.read_chunks(source):
    labels[start:start + len(records)] = [r['label'] for r in records]
  if num and not 0 <= labels.min() <= labels.max() < NUM_CLASSES:
    raise DataError(f'{NAME}: labels outside [0, {NUM_CLASSES}): '
                    f'{labels.min()}..{labels.max()}')
  return labels


def load(info: DatasetInfo, split: str, options: registry.LoadOptions
         ) -> tuple[StreamingImages, np.ndarray]:
  """The family's loader (`registry.Loader`): the split's eval view.

  Resize + center crop at `options.image_size` (default 224); training reads
  its crop view of the same pool (svp_jax.experiment.make_learner). Nothing is
  downloaded and nothing is held in memory, whatever `options` say.
  """
  return load_imagenet_split(
      split, data_dir=options.data_dir, manual_dir=options.manual_dir,
      mode='eval', size=options.image_size or info.image_shape[0])


registry.register(registry.DatasetFamily(name='imagenet', infos=(INFO,),
                                         load=load))
