"""A user's own files read as a dataset: images in folders, texts in a table, arrays.

`config.data.path` points at one of:

* a folder of images, `ROOT/<class name>/**.{png,jpg,jpeg,bmp,gif,webp}`,
  optionally one level down as `ROOT/train/<class>/...` and
  `ROOT/test/<class>/...`. `ROOT/unlabeled/` (or `ROOT/train/unlabeled/`)
  holds pool members without a label. With `ROOT/train/`, anything else
  at the top level that would be read (another folder, an image) is a
  DataError, so nothing is ignored unseen and a class cannot be named
  `train`; without it, `ROOT/test/` is a class like any other. Hidden
  names (`.thumbnails`, `.ipynb_checkpoints`, AppleDouble `._x.png`) and
  `@eaDir`, `__MACOSX` are skipped at every depth; symlinked folders are
  followed (one leading back to a folder it is in is a DataError), a
  dangling symlink or a name that is not UTF-8 is a DataError. Grey, RGB
  and RGBA (and palette) images all load, upright (EXIF orientation
  applied), 16-bit grey scaled to 8 bits: the dataset is grey if every
  image is, else RGB (alpha dropped). Images are resized to `image_size` x
  `image_size` (bilinear); with image_size 0 they must all share one size,
  which is kept.
* a table of texts: `.csv`, `.tsv` or JSON Lines (`.jsonl`), UTF-8, with the
  text and label columns named by `text_column` and `label_column` (two
  different columns; CSV and TSV: a header row). A CSV quotes as
  spreadsheets write it; a TSV has no quoting (a cell is what stands between
  tabs: no tab or line break in a text); JSON Lines ends lines at '\n' only.
  An empty label (or null, NaN, or -1 however written: '-1.0') marks an
  unlabeled pool member.
* a NumPy `.npz` with `x_train`, `y_train` and optionally `x_test`,
  `y_test` and `class_names`: x images (N, H, W) or (N, H, W, C) of
  integer pixels 0..255 or finite floats in [0, 1] (times 255), or texts
  (str, or UTF-8 bytes); y integer classes from 0, -1 for unlabeled;
  `class_names` str or UTF-8 bytes.

Class names are `config.data.class_names`, or a `classes.txt` beside the
files (ROOT/classes.txt; for a file, in its folder: one class a line, blank
lines ignored); both given must agree. They fix the class order, and every
label the files bring must be one of them. Else the class names are the
folder names, the table's label values (sorted; as numbers when all are
numbers, and two spellings of one number, '1' and '01', are refused) or the
`.npz`'s `class_names` (else "0", "1", ...). Every class name is stripped
of spaces at its ends and put in Unicode NFC (`normalize_class_name`, which
a person's answers go through too). A label column with more than 1,000
classes and fewer than 2 labeled examples a class is refused as ids
(`looks_like_ids`) unless the class names are given.

A pool may have no label at all (the labeling loop starts from zero) when
its class names are given (at least 2). The test split is the files' own;
else `test_fraction` of each class's labeled examples is carved out as one,
drawn with the run's seed. No test split at all (0 examples) when the pool
has no label, or when some examples are unlabeled and the labeled ones are
too few for the carve to take any (the labeling loop asks a person for test
labels); a fully labeled dataset too small to carve (a simulated run's) is
a DataError.

This module only reads and checks, all in host memory, and raises
`DataError` naming the file (and line) at the first problem, before anything
is written; `svp_jax.data.files` prepares the result as TFDS array_record.
"""

from collections.abc import Iterable
import csv
import dataclasses
import decimal
import hashlib
import io
import json
import math
import os
import re
from typing import Any
import unicodedata
import zipfile
import zlib

import numpy as np

from svp_jax.data import partition
from svp_jax.data.errors import DataError
from svp_jax.data.info import UNLABELED

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp')
TABLE_DELIMITERS = {'.csv': ',', '.tsv': '\t'}
JSON_LINES_EXTENSIONS = ('.jsonl',)
NPZ_EXTENSION = '.npz'
UNLABELED_FOLDER = 'unlabeled'
# Besides hidden names ('.x'): folders file managers, NAS thumbnailers and
# archivers add beside a person's images (`skipped`).
SKIPPED_NAMES = ('@eaDir', '__MACOSX')
# EXIF orientations that turn the image a quarter (width and height swap).
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
# What numpy raises for a truncated or damaged .npz.
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
CLASSES_FILE = 'classes.txt'
_CLASS_NAMES_KEY = 'config.data.class_names'
# More classes than this, with fewer than 2 labeled examples a class on
# average, are taken for ids (looks_like_ids) unless the names are given.
MAX_CLASSES_UNASKED = 1000
# A number as a label may be written: '1', '01', '+1', '-1.0', '1e3'.
_NUMBER = re.compile(r'[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?', re.ASCII)
# Pillow modes read as one grey channel; everything else becomes RGB.
_GREY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'F')
# Bump when what preparing writes or the content key changes: older caches
# are then ignored. 2: skipped names, ROOT/unlabeled beside train/, 16-bit
# and EXIF-oriented images, a class folder named test.
FORMAT_VERSION = 2


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  """How to read the files; every field is part of the cache key."""
  image_size: int = 0  # Square side to resize to; 0: the images' own size.
  text_column: str = 'text'
  label_column: str = 'label'
  test_fraction: float = 0.2  # Carved when the files have no test split.
  seed: int = 0  # The run's seed: draws the carved test split.
  # Names fixing the classes and their order (config.data.class_names or a
  # classes.txt: files.read_options reads it, so that it is in the key).
  class_names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Split:
  """One split's examples in file order."""
  inputs: np.ndarray  # uint8 (N, H, W, C) images, or an object array of str.
  labels: np.ndarray  # int32 class indices; UNLABELED for pool members.
  sources: tuple[str, ...]  # Where each came from: 'cat/1.png', 'line 7'.


@dataclasses.dataclass(frozen=True)
class OwnData:
  """A user's dataset, read and checked."""
  modality: str  # 'image' or 'text'.
  class_names: tuple[str, ...]
  train: Split
  test: Split


def file_format(path: str) -> str:
  """'images', 'table' or 'npz' from what `path` is; DataError otherwise."""
  if os.path.isdir(path):
    return 'images'
  extension = os.path.splitext(path)[1].lower()
  if not os.path.isfile(path):
    raise DataError(f'config.data.path={path!r}: no such file or folder')
  if extension in TABLE_DELIMITERS or extension in JSON_LINES_EXTENSIONS:
    return 'table'
  if extension == NPZ_EXTENSION:
    return 'npz'
  raise DataError(
      f'config.data.path={path!r}: expected a folder of images, a '
      f'{"/".join(list(TABLE_DELIMITERS) + list(JSON_LINES_EXTENSIONS))} '
      f'table of texts or a {NPZ_EXTENSION} file')


def read(path: str, options: ReadOptions) -> OwnData:
  """Reads and checks the files at `path` (see the module docstring)."""
  reader = {'images': _read_image_folder, 'table': _read_table,
            'npz': _read_npz}[file_format(path)]
  return reader(path, options)


def has_test_split(path: str) -> bool:
  """Whether the files bring their own test split (else one is carved).

  Agrees with the reader: a folder's `test/` is a test split only beside
  `train/`; without `train/` it is a class folder named 'test'.
  """
  kind = file_format(path)
  if kind == 'images':
    return _has_split_folders(path) and os.path.isdir(
        os.path.join(path, 'test'))
  if kind == 'npz':
    with _open_npz(path) as arrays:
      return 'x_test' in arrays.files
  return False


# ----------------------------------------------------------------------------
# What identifies the files: their contents and the options that shape them.


def source_files(path: str) -> list[str]:
  """Every file that `read` reads at `path`, sorted (a file: itself).

  A folder's images are found by the same walk as the reader's (skipped
  names, symlinked folders), and the reader refuses anything at the top
  level it would not read, so these are exactly the files read.
  """
  if not os.path.isdir(path):
    return [path]
  return _images_under(path)


def content_key(path: str, options: ReadOptions) -> str:
  """A hex digest of the files' names and bytes and the read options.

  The seed and test fraction count only where a test split is carved, so
  files with their own test split are prepared once for every seed.
  """
  digest = hashlib.sha256()
  shaping = dataclasses.asdict(options)
  if has_test_split(path):
    del shaping['seed'], shaping['test_fraction']
  digest.update(json.dumps([FORMAT_VERSION, shaping], sort_keys=True).encode())
  for name in source_files(path):
    digest.update(os.path.relpath(name, path).encode() + b'\0')
    try:
      with open(name, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):  # pylint: disable=cell-var-from-loop
          digest.update(block)
    except OSError as e:
      raise DataError(f'{_shown(name)}: cannot read it '
                      f'({e.strerror or e})') from None
    digest.update(b'\0')
  return digest.hexdigest()[:16]


def fingerprint(path: str) -> tuple[Any, ...]:
  """Cheap stand-in for the content: each file's name, size and mtime."""
  return tuple((name, s.st_size, s.st_mtime_ns) for name in source_files(path)
               for s in [os.stat(name)])


# ----------------------------------------------------------------------------
# Labels: class names, indices, unlabeled members.


def normalize_class_name(name: str) -> str:
  """`name` as a class name: no spaces at the ends, Unicode NFC.

  A folder made on macOS names 'café' in NFD, a person types it in NFC, and
  a trailing space is invisible: every class name that is read and every
  answer a person gives go through here, so that they compare equal.
  """
  return unicodedata.normalize('NFC', name.strip())


def folder_class_names(folders: Iterable[str], where: str) -> dict[str, str]:
  """{folder name: its class name}; DataError if two become one name."""
  names = {}
  for folder in sorted(folders):
    name = normalize_class_name(folder)
    other = next((f for f, n in names.items() if n == name), None)
    if other is not None:
      raise DataError(
          f'{where}: the folders {other!r} and {folder!r} are both class '
          f'{name!r} (class names ignore spaces at the ends and Unicode '
          'normalisation); merge or rename them')
    names[folder] = name
  return names


def classes_file(path: str) -> str:
  """Where a `classes.txt` for the files at `path` is: ROOT/ or F's folder."""
  folder = path if os.path.isdir(path) else os.path.dirname(path)
  return os.path.join(folder, CLASSES_FILE)


def class_names_for(path: str, configured: Any) -> tuple[str, ...]:
  """The class names the config or a `classes.txt` gives; () if neither.

  Both given must agree. Names are normalised (`normalize_class_name`);
  DataError for a repeated or empty name, fewer than 2, or a config value
  that is not a list of strings.
  """
  key = _CLASS_NAMES_KEY
  if isinstance(configured, str) or not isinstance(configured,
                                                   (list, tuple)):
    raise DataError(f'{key}={configured!r}: expected a list of class names, '
                    'or () for the names the files bring')
  if not all(isinstance(n, str) for n in configured):
    raise DataError(f'{key}={configured!r}: class names must be strings')
  from_config = _checked_names([(n, f'{key}[{i}]')
                                for i, n in enumerate(configured)], key)
  file = classes_file(path)
  if not os.path.isfile(file):
    return from_config
  lines = _read_utf8(file).split('\n')
  from_file = _checked_names([(line, f'{file}, line {number}')
                              for number, line in enumerate(lines, 1)
                              if line.strip()], file)
  if from_config and from_file != from_config:
    raise DataError(f'{key}={list(from_config)} and {file} '
                    f'({list(from_file)}) name different classes; keep one '
                    'of them, or make them the same')
  return from_file


def _checked_names(names: list[tuple[str, str]], what: str
                   ) -> tuple[str, ...]:
  """(name, where) pairs as normalised, distinct names (at least 2)."""
  seen = {}
  for raw, where in names:
    name = normalize_class_name(raw)
    if not name:
      raise DataError(f'{where}: {raw!r} is no class name')
    if name in seen:
      raise DataError(f'{where}: class {name!r} repeats {seen[name]}')
    check_encodable(name, where)
    seen[name] = where
  if len(seen) == 1:
    # A flag's 'cat,dog' is one name; "('cat','dog')" is two.
    hint = ('' if what != _CLASS_NAMES_KEY else
            f' (on the command line: --{_CLASS_NAMES_KEY}="(\'cat\', '
            '\'dog\')")')
    raise DataError(f'{what}: one class {list(seen)}; a classifier needs at '
                    f'least 2{hint}')
  return tuple(seen)


def check_encodable(text: str, where: str):
  """DataError unless `text` can be written as UTF-8 (no lone surrogate)."""
  try:
    text.encode('utf-8')
  except UnicodeEncodeError as e:
    raise DataError(
        f'{where}: {text[e.start:e.end]!r} at character {e.start} is half a '
        'UTF-16 pair (a lone surrogate, e.g. JSON "\\ud800"), not a '
        'character; fix or remove it') from None


def _number(value: str) -> decimal.Decimal | None:
  """`value` as an exact number if it is written as one ('01', '+1', '1.0')."""
  if not _NUMBER.fullmatch(value):
    return None
  return decimal.Decimal(value)


def class_names_of(first_seen: dict[str, str], where: str
                   ) -> tuple[str, ...]:
  """Distinct label values, sorted; numerically when all are numbers.

  `first_seen` maps each value to where it first appears ('line 3'). Two
  spellings of one number ('1', '01', '+1', '1.0') are a DataError: one
  class or two, and in which order, would otherwise be a guess.
  """
  numbers = {v: _number(v) for v in first_seen}
  by_number = {}
  for value, number in numbers.items():
    if number is None:
      continue
    if number in by_number:
      other = by_number[number]
      raise DataError(
          f'{where}: the labels {other!r} ({first_seen[other]}) and {value!r} '
          f'({first_seen[value]}) are the same number written differently; '
          'write each class one way')
    by_number[number] = value
  if len(by_number) == len(numbers):
    return tuple(sorted(first_seen, key=numbers.get))
  return tuple(sorted(first_seen))


def looks_like_ids(num_classes: int, num_labeled: int) -> bool:
  """Whether a label column has too many classes to be classes (ids?).

  More than MAX_CLASSES_UNASKED classes and fewer than 2 labeled examples a
  class: never true of a dataset with 1,000 classes or fewer.
  """
  return num_classes > MAX_CLASSES_UNASKED and num_classes > num_labeled / 2


def check_classes(class_names: tuple[str, ...], labels: np.ndarray,
                  where: str, configured: bool = False,
                  label_source: str = 'the labels'):
  """Checks that `labels` (train and test) can train a classifier.

  At least 2 class names; a fully labeled dataset (a simulated run's) needs
  a labeled example of at least 2 classes. Without configured names, a
  label column with as many classes as ids is refused (`looks_like_ids`).
  """
  labeled = labels[labels != UNLABELED]
  hint = (f'name every class in config.data.class_names or a {CLASSES_FILE} '
          f'({classes_file(where)})')
  if len(class_names) < 2 and not len(labeled):
    raise DataError(f'{where}: no labels and no class names: give '
                    f'data.class_names or a {CLASSES_FILE} '
                    f'({classes_file(where)}), one class a line')
  present = np.unique(labeled)
  if len(class_names) < 2 or (len(labeled) == len(labels)
                              and len(present) < 2):
    names = [class_names[i] for i in present]
    raise DataError(f'{where}: the labeled examples have {len(present)} '
                    f'class{"" if len(present) == 1 else "es"} {names}; a '
                    f'classifier needs at least 2 (label another class, or '
                    f'{hint})')
  if not configured and looks_like_ids(len(class_names), len(labeled)):
    raise DataError(
        f'{where}: {label_source} make {len(class_names):,} classes for '
        f'{len(labeled):,} labeled examples: ids, not classes? (more than '
        f'{MAX_CLASSES_UNASKED:,} classes need 2 examples a class on average; '
        f'if these are the classes, {hint})')


def carve_test_split(split: Split, fraction: float, seed: int
                     ) -> tuple[Split, Split]:
  """(train, test): `fraction` of each class's labeled examples to test.

  Unlabeled examples stay in train; both keep file order.
  """
  labeled = np.flatnonzero(split.labels != UNLABELED)
  _, test_positions = partition.stratified_split(split.labels[labeled],
                                                 fraction, seed)
  test = labeled[test_positions]
  train = np.setdiff1d(np.arange(len(split.labels)), test)
  return _take(split, train), _take(split, test)


def _take(split: Split, rows: np.ndarray) -> Split:
  rows = np.asarray(rows, np.int64)
  return Split(split.inputs[rows], split.labels[rows],
               tuple(split.sources[i] for i in rows))


def _relabel(split: Split, names: tuple[str, ...], to: tuple[str, ...],
             where: str) -> Split:
  """`split` with its labels (indices into `names`) as indices into `to`."""
  for i, name in enumerate(names):
    if name not in to:
      rows = np.flatnonzero(split.labels == i)
      found = f' ({split.sources[rows[0]]})' if len(rows) else ''
      raise DataError(
          f'{where}: class {name!r}{found} is not one of the class names '
          f'{list(to)} (config.data.class_names or {classes_file(where)})')
  index = np.array([to.index(n) for n in names] + [UNLABELED], np.int32)
  # UNLABELED (-1) picks the last entry, itself UNLABELED.
  return Split(split.inputs, index[split.labels], split.sources)


def _finish(modality: str, class_names: tuple[str, ...], train: Split,
            test: Split | None, options: ReadOptions, where: str,
            label_source: str = 'the labels') -> OwnData:
  """The class names, the checks and the test split of what was read.

  `class_names` are the files' own (folders, label values, an .npz's), and
  `train` / `test` index into them; class names from the config or a
  classes.txt replace them and fix the order. `test` None: the files have
  no test split, and one is carved (module docstring).
  """
  configured = class_names_for(where, options.class_names)
  if configured:
    train = _relabel(train, class_names, configured, where)
    test = None if test is None else _relabel(test, class_names,
                                              configured, where)
    class_names = configured
  labels = train.labels if test is None else np.concatenate(
      [train.labels, test.labels])
  check_classes(class_names, labels, where, bool(configured), label_source)
  if test is None:
    train, test = _test_split(train, options, where)
  return OwnData(modality, class_names, train, test)


def _test_split(train: Split, options: ReadOptions, where: str
                ) -> tuple[Split, Split]:
  """(train, test) of files without a test split (module docstring)."""
  labeled = train.labels != UNLABELED
  if not labeled.any():
    return train, _take(train, [])
  carved_train, test = carve_test_split(train, options.test_fraction,
                                        options.seed)
  if len(test.labels):
    return carved_train, test
  if labeled.all():
    raise DataError(
        f'{where}: too few labeled examples to carve a test split of '
        f'test_fraction={options.test_fraction}; label more or provide a '
        'test split')
  return train, test


# ----------------------------------------------------------------------------
# A folder of images.


def skipped(name: str) -> bool:
  """Whether a file or folder name is left out at every depth.

  Hidden names (`.thumbnails`, `.ipynb_checkpoints`, macOS's AppleDouble
  `._x.png`, `.DS_Store`) and the folders file managers and archivers add
  (`SKIPPED_NAMES`) are no one's examples.
  """
  return name.startswith('.') or name in SKIPPED_NAMES


def _shown(path: str) -> str:
  """`path` printable: bytes that are not UTF-8 as \\x escapes."""
  return os.fsencode(path).decode('utf-8', 'backslashreplace')


def _is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS)


def _entries(folder: str) -> list[str]:
  """The names in `folder` that are read, sorted; skipped ones left out.

  Raises:
    DataError: a symlink to nothing, or a folder or image name that is not
      UTF-8 (it could be neither a class name nor a source).
  """
  try:
    names = sorted(os.listdir(folder))
  except OSError as e:
    raise DataError(f'{_shown(folder)}: cannot list the folder '
                    f'({e.strerror or e})') from None
  kept = []
  for name in names:
    if skipped(name):
      continue
    path = os.path.join(folder, name)
    if os.path.islink(path) and not os.path.exists(path):
      raise DataError(f'{_shown(path)}: a symlink to '
                      f'{_shown(os.readlink(path))!r}, which does not exist; '
                      'fix or remove the link')
    if os.path.isdir(path) or _is_image(name):
      try:
        name.encode('utf-8')
      except UnicodeEncodeError:
        raise DataError(f'{_shown(path)}: the name is not UTF-8; rename it '
                        '(class names and sources are text)') from None
    kept.append(name)
  return kept


def _images_under(folder: str) -> list[str]:
  """The image files under `folder` at any depth, in walk order.

  A folder's own images (sorted) come before its subfolders' (sorted).
  Symlinked folders are followed; one that leads back to a folder it is in
  is a DataError naming it.
  """
  found = []
  # (folder, the real paths of it and of every folder it is in), depth
  # first: a link to any of those would be walked forever.
  real = os.path.realpath(folder)
  above = {real}
  while os.path.dirname(real) != real:
    real = os.path.dirname(real)
    above.add(real)
  pending = [(folder, frozenset(above))]
  while pending:
    current, ancestors = pending.pop()
    subfolders = []
    for name in _entries(current):
      path = os.path.join(current, name)
      if os.path.isdir(path):
        real = os.path.realpath(path)
        if real in ancestors:
          raise DataError(f'{_shown(path)}: a symlink to {_shown(real)}, a '
                          'folder it is in (a cycle); remove the link')
        subfolders.append((path, ancestors | {real}))
      elif _is_image(name):
        found.append(path)
    pending.extend(reversed(subfolders))
  return found


def _has_split_folders(root: str) -> bool:
  """Whether `root` is laid out as ROOT/train/... (and ROOT/test/...)."""
  return os.path.isdir(os.path.join(root, 'train'))


def _split_layout(root: str) -> tuple[dict[str, list[str]],
                                      dict[str, list[str]] | None]:
  """({class or 'unlabeled': train images}, the same for test or None).

  Raises:
    DataError: beside ROOT/train/, anything read other than test/ and
      unlabeled/ (a class folder, a stray image), named.
  """
  if not _has_split_folders(root):
    return _class_folders(root, allow_unlabeled=True), None
  layout = (f'with {os.path.join(root, "train")}/ the folder holds train/'
            '<class>/<image>, optionally test/<class>/<image> and '
            'unlabeled/<image>, and nothing else')
  for name in _entries(root):
    path = os.path.join(root, name)
    if name in ('train', 'test', UNLABELED_FOLDER):
      continue
    if os.path.isdir(path):
      raise DataError(f'{_shown(path)}: a folder beside train/; {layout} (a '
                      "class folder cannot be named 'train': rename it, or "
                      'move the class folders into train/)')
    if _is_image(name):
      raise DataError(f'{_shown(path)}: an image beside train/; {layout}')
  train = _class_folders(os.path.join(root, 'train'), allow_unlabeled=True)
  unlabeled = os.path.join(root, UNLABELED_FOLDER)
  if os.path.isdir(unlabeled):
    train[UNLABELED_FOLDER] = (train.get(UNLABELED_FOLDER, [])
                               + _images_under(unlabeled))
  test = None
  if os.path.isdir(os.path.join(root, 'test')):
    test = _class_folders(os.path.join(root, 'test'), allow_unlabeled=False)
  return train, test


def _read_image_folder(root: str, options: ReadOptions) -> OwnData:
  train_files, test_files = _split_layout(root)
  train_root, test_root = ((os.path.join(root, 'train'),
                            os.path.join(root, 'test'))
                           if _has_split_folders(root) else (root, None))
  # {folder name: class name} (normalised: folder_class_names).
  folder_classes = folder_class_names(
      [c for c in train_files if c != UNLABELED_FOLDER], train_root)
  class_names = tuple(sorted(folder_classes.values()))
  if test_files is not None:
    test_classes = folder_class_names(test_files, test_root)
    unknown = sorted(set(test_classes.values()) - set(class_names))
    # Given class names may have test images before any training label
    # (a pool that starts from zero labels).
    given = class_names_for(root, options.class_names)
    if unknown and set(unknown) <= set(given):
      class_names = tuple(sorted(set(class_names) | set(unknown)))
    elif unknown:
      raise DataError(f'{test_root}: classes {unknown} have no training '
                      f'images (classes in {train_root}: '
                      f'{list(class_names)})')
    folder_classes.update(test_classes)
  everything = [f for files in [train_files, test_files or {}]
                for names in files.values() for f in names]
  shape = _image_shape(everything, options.image_size, root)

  def split_of(files: dict[str, list[str]]) -> Split:
    names = [(f, c) for c in sorted(files) for f in files[c]]
    images = np.empty((len(names), *shape), np.uint8)
    for i, (name, _) in enumerate(names):
      images[i] = _decode_image(name, shape, bool(options.image_size))
    labels = np.array([UNLABELED if c == UNLABELED_FOLDER
                       else class_names.index(folder_classes[c])
                       for _, c in names], np.int32)
    return Split(images, labels,
                 tuple(os.path.relpath(n, root) for n, _ in names))

  return _finish('image', class_names, split_of(train_files),
                 None if test_files is None else split_of(test_files),
                 options, root)


def _class_folders(split_root: str, allow_unlabeled: bool
                   ) -> dict[str, list[str]]:
  """{class folder name: its image files (recursive, sorted)}."""
  entries = _entries(split_root)
  stray = [e for e in entries if _is_image(e)
           and os.path.isfile(os.path.join(split_root, e))]
  if stray:
    where = os.path.join(split_root, stray[0])
    raise DataError(f'{_shown(where)}: images must be in a folder named after '
                    f'their class ({_shown(split_root)}/<class>/'
                    f'{_shown(stray[0])}'
                    + (f', or {_shown(split_root)}/{UNLABELED_FOLDER}/ when '
                       'they have none)' if allow_unlabeled else ')'))
  files = {e: _images_under(os.path.join(split_root, e)) for e in entries
           if os.path.isdir(os.path.join(split_root, e))}
  if not allow_unlabeled and UNLABELED_FOLDER in files:
    raise DataError(f'{os.path.join(split_root, UNLABELED_FOLDER)}: a test '
                    'split cannot have unlabeled images')
  if not files:
    raise DataError(f'{_shown(split_root)}: no class folders; expected '
                    f'{_shown(split_root)}/<class name>/<image>'
                    f'{"|".join(IMAGE_EXTENSIONS)}')
  empty = [c for c, names in files.items() if not names]
  if empty:
    raise DataError(f'{os.path.join(split_root, empty[0])}: no images '
                    f'({"/".join(IMAGE_EXTENSIONS)}) in this class folder')
  return files


def _is_grey(mode: str) -> bool:
  return mode in _GREY_MODES or mode.startswith('I;16')


def _orientation(image: Any) -> int:
  """The image's EXIF orientation (1: as stored), from the header.

  A PNG's EXIF after its pixels is not read here (that would decode the
  whole image); `_decode_image` applies it and checks the size then.
  """
  from PIL import ExifTags  # pylint: disable=g-import-not-at-top
  if image.format == 'PNG' and 'exif' not in image.info:
    return 1
  return image.getexif().get(ExifTags.Base.Orientation, 1)


def _image_shape(names: list[str], image_size: int, root: str
                 ) -> tuple[int, int, int]:
  """(H, W, C) every image is stored at; reads headers only."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  sizes, grey = {}, True
  for name in names:
    try:
      with Image.open(name) as image:
        width, height = image.size
        if _orientation(image) in _TRANSPOSING_ORIENTATIONS:
          width, height = height, width
        sizes.setdefault((width, height), name)
        grey = grey and _is_grey(image.mode)
    except (OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as e:
      raise DataError(f'{_shown(name)}: not a readable image ({e})') from None
  channels = 1 if grey else 3
  if image_size:
    return image_size, image_size, channels
  if len(sizes) > 1:
    (a, first), (b, second) = list(sizes.items())[:2]
    raise DataError(
        f'{root}: images differ in size ({_shown(first)} is {a[0]}x{a[1]}, '
        f'{_shown(second)} is {b[0]}x{b[1]}); set config.data.image_size to '
        'resize them all')
  (width, height), = sizes
  return height, width, channels


def _decode_image(name: str, shape: tuple[int, int, int], resize: bool
                  ) -> np.ndarray:
  """The image in `name` as uint8 (H, W, C): upright, 8-bit, converted.

  EXIF orientation is applied, 16-bit grey is scaled to 8 bits, and the
  image is resized to `shape` where `resize` (else it must be that size).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import ImageOps  # pylint: disable=g-import-not-at-top
  height, width, channels = shape
  try:
    with Image.open(name) as image:
      image = _eight_bit(ImageOps.exif_transpose(image), name)
      image = image.convert('L' if channels == 1 else 'RGB')
      if image.size != (width, height):
        if not resize:
          raise DataError(
              f'{_shown(name)}: {image.size[0]}x{image.size[1]} once its '
              f'EXIF orientation is applied, the others {width}x{height}; '
              'set config.data.image_size to resize them all')
        image = image.resize((width, height), Image.Resampling.BILINEAR)
      pixels = np.asarray(image, np.uint8)
  except (OSError, ValueError, SyntaxError,
          Image.DecompressionBombError) as e:
    raise DataError(f'{_shown(name)}: cannot decode the image ({e}); replace '
                    'or remove it') from None
  return pixels.reshape(height, width, channels)


def _eight_bit(image: Any, name: str) -> Any:
  """`image` with 8-bit channels: 16-bit grey scaled (0..65535 -> 0..255).

  Pillow reads a 16-bit grey PNG in mode I;16 or I, which `convert('L')`
  would clip to 255; 16-bit colour it already reads as 8-bit RGB(A).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if image.mode == 'F':
    raise DataError(f'{_shown(name)}: floating-point pixels; save it with '
                    '8 or 16 bits per channel')
  if not image.mode.startswith('I'):
    return image
  levels = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
  # Rounds v * 255 / 65535, exact for the 16-bit copy of an 8-bit value.
  return Image.fromarray(((levels * 255 + 32767) // 65535).astype(np.uint8))


# ----------------------------------------------------------------------------
# A table of texts.


def _read_table(path: str, options: ReadOptions) -> OwnData:
  if options.text_column == options.label_column:
    raise DataError(
        f'config.data.text_column and config.data.label_column are both '
        f'{options.text_column!r}: the label would be read as the text; name '
        'the text column and the label column')
  text = _read_utf8(path)
  extension = os.path.splitext(path)[1].lower()
  if extension in TABLE_DELIMITERS:
    rows = _csv_rows(path, text, TABLE_DELIMITERS[extension], options)
  else:
    rows = _json_lines(path, text, options)
  if not rows:
    raise DataError(f'{path}: no rows')
  first_seen = {}
  for number, _, label in rows:
    if label is not None:
      first_seen.setdefault(label, f'line {number}')
  class_names = class_names_of(first_seen, path)
  index = {name: i for i, name in enumerate(class_names)}
  labels = np.array([UNLABELED if label is None else index[label]
                     for _, _, label in rows], np.int32)
  documents = np.empty((len(rows),), object)
  documents[:] = [document for _, document, _ in rows]
  train = Split(documents, labels, tuple(f'line {n}' for n, _, _ in rows))
  return _finish('text', class_names, train, None, options, path,
                 f'the label column {options.label_column!r} '
                 '(config.data.label_column)')


def _read_utf8(path: str) -> str:
  with open(path, 'rb') as f:
    raw = f.read()
  try:
    return raw.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    line = raw.count(b'\n', 0, e.start) + 1
    raise DataError(f'{path}, line {line}: not UTF-8 ({e.reason} at byte '
                    f'{e.start}); save the file as UTF-8') from None


def _label_value(value: Any, where: str) -> str | None:
  """A label cell as a class name; None for unlabeled.

  Unlabeled: empty, null, NaN (a JSON number) or -1 however written ('-1',
  '-1.0', -1.0). Numbers in JSON keep their JSON spelling (1, 1.0, true).
  """
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return None
  if isinstance(value, (list, dict)) or (isinstance(value, float)
                                         and math.isinf(value)):
    raise DataError(f'{where}: the label is {value!r}; expected a class name '
                    'or number, or empty for unlabeled')
  if not isinstance(value, str):
    value = json.dumps(value)
  check_encodable(value, where)
  name = normalize_class_name(value)
  return None if not name or _number(name) == UNLABELED else name


def _csv_rows(path: str, text: str, delimiter: str, options: ReadOptions
              ) -> list[tuple[int, str, str | None]]:
  """(line number, text, label or None) per data row.

  A TSV has no quoting (a cell is everything between tabs, so a text may
  begin with a quote); a CSV quotes as spreadsheets write it.
  """
  # No cell is longer than the file (csv's default limit is 131,072).
  csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
  quoting = csv.QUOTE_NONE if delimiter == '\t' else csv.QUOTE_MINIMAL
  reader = csv.reader(io.StringIO(text, newline=''), delimiter=delimiter,
                      quoting=quoting)
  try:
    header = next(reader)
  except StopIteration:
    raise DataError(f'{path}: empty file; expected a header row naming the '
                    f'columns {options.text_column!r} and '
                    f'{options.label_column!r}') from None
  columns = []
  for key in ('text_column', 'label_column'):
    name = getattr(options, key)
    if name not in header:
      raise DataError(f'{path}: no column {name!r} (config.data.{key}); the '
                      f'header has {header}')
    columns.append(header.index(name))
  rows, line = [], reader.line_num + 1
  try:
    for cells in reader:
      if cells:  # A blank line is no row.
        if len(cells) != len(header):
          raise DataError(f'{path}, line {line}: {len(cells)} cells where '
                          f'the header has {len(header)}')
        rows.append((line, cells[columns[0]],
                     _label_value(cells[columns[1]], f'{path}, line {line}')))
      line = reader.line_num + 1
  except csv.Error as e:
    raise DataError(f'{path}, line {line}: {e}') from None
  return rows


def _json_lines(path: str, text: str, options: ReadOptions
                ) -> list[tuple[int, str, str | None]]:
  """(line number, text, label or None) per JSON object.

  Lines end at '\\n' only: U+2028 and friends may stand inside a JSON text.
  """
  rows = []
  for number, line in enumerate(text.split('\n'), 1):
    if not line.strip():
      continue
    where = f'{path}, line {number}'
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      raise DataError(f'{where}: not JSON ({e.msg})') from None
    if not isinstance(record, dict):
      raise DataError(f'{where}: expected a JSON object')
    for key in ('text_column', 'label_column'):
      if getattr(options, key) not in record:
        raise DataError(f'{where}: no key {getattr(options, key)!r} '
                        f'(config.data.{key}); it has {sorted(record)}')
    document = record[options.text_column]
    if not isinstance(document, str):
      raise DataError(f'{where}: {options.text_column!r} is '
                      f'{document!r}, not a string')
    check_encodable(document, f'{where}, {options.text_column!r}')
    rows.append((number, document,
                 _label_value(record[options.label_column], where)))
  return rows


# ----------------------------------------------------------------------------
# NumPy arrays.


def _open_npz(path: str) -> Any:
  try:
    return np.load(path, allow_pickle=False)
  except _NPZ_ERRORS as e:
    raise DataError(f'{path}: not a readable .npz file ({e}); a truncated '
                    'or damaged file? Save it again') from None


def _read_npz(path: str, options: ReadOptions) -> OwnData:
  with _open_npz(path) as arrays:
    missing = [k for k in ('x_train', 'y_train') if k not in arrays.files]
    if ('x_test' in arrays.files) != ('y_test' in arrays.files):
      missing.append('y_test' if 'x_test' in arrays.files else 'x_test')
    if missing:
      raise DataError(f'{path}: missing arrays {missing}; it has '
                      f'{sorted(arrays.files)} (expected x_train, y_train and '
                      'optionally x_test, y_test, class_names)')
    try:
      loaded = {k: arrays[k] for k in arrays.files}
    except _NPZ_ERRORS as e:
      raise DataError(f'{path}: cannot read its arrays ({e}); a truncated or '
                      'damaged file? Save it again') from None
  splits = {}
  for split in ('train', 'test'):
    if f'x_{split}' in loaded:
      splits[split] = _npz_split(path, split, loaded[f'x_{split}'],
                                 loaded[f'y_{split}'], options.image_size)
  modalities = {s: 'text' if x.dtype == object else 'image'
                for s, (x, _) in splits.items()}
  if len(set(modalities.values())) > 1:
    raise DataError(f'{path}: x_train and x_test differ in kind '
                    f'({modalities})')
  if 'test' in splits and (splits['test'][1] == UNLABELED).any():
    raise DataError(f'{path}: y_test has unlabeled examples (-1); every '
                    'test example needs its label')
  shapes = {x.shape[1:] for x, _ in splits.values()}
  if len(shapes) > 1:
    raise DataError(f'{path}: x_train and x_test images differ in shape '
                    f'{sorted(shapes)}; set config.data.image_size')
  highest = max(int(y.max(initial=UNLABELED)) for _, y in splits.values())
  class_names = _npz_class_names(path, loaded.get('class_names'), highest,
                                 class_names_for(path, options.class_names))

  def split_of(split: str) -> Split | None:
    if split not in splits:
      return None
    x, y = splits[split]
    return Split(x, y, tuple(f'x_{split}[{i}]' for i in range(len(y))))

  return _finish(modalities['train'], class_names, split_of('train'),
                 split_of('test'), options, path)


def _npz_split(path: str, split: str, x: np.ndarray, y: np.ndarray,
               image_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Checked (inputs, int32 labels) of one split of an .npz."""
  if y.ndim != 1 or y.dtype.kind not in 'iu':
    raise DataError(f'{path}: y_{split} must be a 1-D integer array; it is '
                    f'{y.dtype} of shape {y.shape}')
  if len(x) != len(y):
    raise DataError(f'{path}: x_{split} has {len(x)} examples but y_{split} '
                    f'{len(y)}; they must be the same length')
  if len(y) and int(y.min()) < UNLABELED:
    raise DataError(f'{path}: y_{split} has {int(y.min())}; classes are 0, '
                    '1, ... and -1 marks unlabeled')
  if x.dtype.kind in 'US':
    if x.ndim != 1:
      raise DataError(f'{path}: x_{split} texts must be 1-D; shape {x.shape}')
    texts = np.empty((len(x),), object)
    texts[:] = [_npz_text(path, f'x_{split}[{i}]', t) for i, t in enumerate(x)]
    return texts, y.astype(np.int32)
  return _npz_images(path, split, x, image_size), y.astype(np.int32)


def _npz_text(path: str, where: str, value: np.str_ | np.bytes_) -> str:
  """An .npz string as UTF-8 text (bytes decoded); DataError if not UTF-8."""
  try:
    text = (bytes(value).decode('utf-8') if isinstance(value, bytes)
            else str(value))
    text.encode('utf-8')  # A lone surrogate cannot be written.
  except UnicodeError as e:
    raise DataError(f'{path}: {where} is not UTF-8 text ({e.reason} at '
                    f'{e.start}); store str or UTF-8 bytes') from None
  return text


def _npz_images(path: str, split: str, x: np.ndarray, image_size: int
                ) -> np.ndarray:
  """uint8 (N, H, W, C) from integer 0..255 or finite float 0..1 pixels."""
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise DataError(f'{path}: x_{split} must be images (N, H, W) or (N, H, '
                    f'W, C) with C 1 or 3, or 1-D strings; shape {x.shape}')
  if x.dtype.kind == 'f':
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if not finite.all():
      first = int(np.flatnonzero(~finite)[0])
      raise DataError(f'{path}: x_{split}[{first}] has NaN or infinite '
                      'pixels; float pixels must be finite, in [0, 1] '
                      '(scaled by 255), or store uint8 pixels 0..255')
    if x.size and (x.min() < 0 or x.max() > 1):
      raise DataError(f'{path}: x_{split} is float with values outside '
                      '[0, 1]; float pixels must be in [0, 1] (scaled by '
                      '255), or store uint8 pixels 0..255')
    x = np.round(x * 255)
  elif x.dtype.kind in 'iu':
    if x.size and (x.min() < 0 or x.max() > 255):
      raise DataError(f'{path}: x_{split} has pixel values outside 0..255; '
                      'integer pixels must be 0..255 (or floats in [0, 1])')
  else:
    raise DataError(f'{path}: x_{split} has dtype {x.dtype}; expected '
                    'integer pixels 0..255, finite floats in [0, 1] or '
                    'strings')
  x = x.astype(np.uint8)
  if image_size and x.shape[1:3] != (image_size, image_size):
    x = _resize_all(x, image_size)
  return x


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
  for i, image in enumerate(images):
    resized = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1
                              else image).resize((size, size),
                                                 Image.Resampling.BILINEAR)
    out[i] = np.asarray(resized).reshape(size, size, -1)
  return out


def _npz_class_names(path: str, names: np.ndarray | None, highest: int,
                     configured: tuple[str, ...] = ()) -> tuple[str, ...]:
  """The npz's class names: its own, else the configured ones (y indexes
  into them), else "0", "1", ... up to the highest label."""
  if names is None and configured:
    if len(configured) <= highest:
      raise DataError(f'{path}: {_CLASS_NAMES_KEY} has {len(configured)} '
                      f'names but the labels go up to {highest}')
    return configured
  if names is None:
    return tuple(str(c) for c in range(highest + 1))
  names = tuple(normalize_class_name(
      _npz_text(path, f'class_names[{i}]', n) if isinstance(n, (str, bytes))
      else str(n)) for i, n in enumerate(np.asarray(names).reshape(-1)))
  if len(names) <= highest:
    raise DataError(f'{path}: class_names has {len(names)} names but the '
                    f'labels go up to {highest}')
  if len(set(names)) != len(names):
    raise DataError(f'{path}: class_names repeats a name: {list(names)}')
  return names
