"""The datasets svp_jax knows: one registered family per kind of source.

A family (`DatasetFamily`) is the facts of its datasets (`DatasetInfo`s) and
the one function that loads a split of any of them. Each family's module
registers it when imported (`svp_jax.data` imports the built-in ones), and
everything else asks the registry: config validation for the names,
models and training for the facts, the runs for the arrays. Adding a
dataset is one `register` call; nothing here names a dataset.

A dynamic family (one with `describe`) is one dataset, named like the
family, whose facts come from the data it is pointed at (a user's files):
`dataset_info` asks it with the load options. A catch-all family (with
`claims` too) takes the names no other family has that it recognises (any
TFDS classification dataset), and registers none.

Registration order is the order of `supported_datasets()`.
"""

from collections.abc import Callable
import dataclasses
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np

from svp_jax.data.info import DatasetInfo


@dataclasses.dataclass(frozen=True)
class LoadOptions:
  """Where and how to read a split; each family uses the fields it needs."""
  # TFDS data folder (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
  data_dir: str | None = None
  # Folder with local source files (None: the family's default places).
  manual_dir: str | None = None
  # Allow downloading: True, False, or 'auto' (when the dataset's download
  # host answers at once: tfds_util.may_download), so that missing data
  # fails at once instead of after minutes of download retries.
  download: bool | str = 'auto'
  # Decode every image now, or on demand (an object indexed like the array).
  in_memory: bool = True
  # Output height and width of streamed images (None: the dataset's own).
  image_size: int | None = None
  # A user's own files (svp_jax.data.files): where they are, the table's
  # columns, the share of labeled examples carved out as a test split when
  # the files have none, the seed that draws it (the run's), and the class
  # names (() : the files', or a classes.txt's beside them).
  path: str | None = None
  text_column: str = 'text'
  label_column: str = 'label'
  test_fraction: float = 0.2
  seed: int = 0
  class_names: tuple[str, ...] = ()
  # Split names of datasets named by TFDS name ('': train and test).
  train_split: str = ''
  test_split: str = ''


# (info, split, options) -> (inputs, int32 labels). Inputs are indexed like
# an array of N examples: uint8 images (N, H, W, C) or a stand-in that
# decodes on demand, or an object array of documents for text.
Loader = Callable[[DatasetInfo, str, LoadOptions], tuple[Any, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class DatasetFamily:
  """Datasets that share a source and a loader (e.g. CIFAR-10 and -100)."""
  name: str
  infos: tuple[DatasetInfo, ...]
  load: Loader
  # Dynamic families: (name, options) -> the info of the data they point at.
  describe: Callable[[str, LoadOptions], DatasetInfo] | None = None
  # A catch-all dynamic family: which names, of those no other family has,
  # it takes (any TFDS name); it registers no name of its own.
  claims: Callable[[str], bool] | None = None

  @property
  def dataset_names(self) -> tuple[str, ...]:
    if self.claims:
      return ()
    return (self.name,) if self.describe else tuple(i.name for i in self.infos)


_FAMILIES: dict[str, DatasetFamily] = {}
_FAMILY_OF: dict[str, DatasetFamily] = {}  # Dataset name -> its family.


def register(family: DatasetFamily) -> DatasetFamily:
  """Adds a family; ValueError if it or one of its datasets is known."""
  taken = [name for name in family.dataset_names if name in _FAMILY_OF]
  if family.name in _FAMILIES or taken:
    raise ValueError(f'dataset family {family.name!r} clashes with the '
                     f'registered families {tuple(_FAMILIES)} (datasets '
                     f'already registered: {taken})')
  _FAMILIES[family.name] = family
  for name in family.dataset_names:
    _FAMILY_OF[name] = family
  return family


def unregister(family_name: str):
  """Removes a family (tests, plugins); KeyError if it is not registered."""
  family = _FAMILIES.pop(family_name)
  for name in family.dataset_names:
    del _FAMILY_OF[name]


def supported_datasets() -> tuple[str, ...]:
  """Every registered dataset name, in registration order."""
  return tuple(_FAMILY_OF)


def _claiming_family(name: str) -> DatasetFamily | None:
  return next((f for f in _FAMILIES.values() if f.claims and f.claims(name)),
              None)


def known_dataset(name: Any) -> bool:
  """Whether `name` is a registered dataset or one a catch-all family takes."""
  if not isinstance(name, str):
    return False
  return name in _FAMILY_OF or _claiming_family(name) is not None


def _family(name: str) -> DatasetFamily:
  family = None
  if isinstance(name, str):
    family = _FAMILY_OF.get(name) or _claiming_family(name)
  if family is None:
    any_tfds = any(f.claims for f in _FAMILIES.values())
    raise ValueError(
        f'config.data.name={name!r} is not supported: expected one of '
        f'{supported_datasets()}'
        + (' or the name of a TFDS classification dataset' if any_tfds
           else ''))
  return family


def dataset_info(name: str, **options: Any) -> DatasetInfo:
  """The `DatasetInfo` of `name`; ValueError naming the allowed names.

  `options` (fields of `LoadOptions`) matter to dynamic families only,
  which may read (and prepare) the data to describe it.
  """
  family = _family(name)
  if family.describe:
    return family.describe(name, LoadOptions(**options))
  return next(info for info in family.infos if info.name == name)


def load_split(name: str, split: str, **options: Any
               ) -> tuple[Any, np.ndarray]:
  """Reads a split through its family, preparing it first if needed.

  Args:
    name: one of `supported_datasets()`.
    split: the dataset's train or test split name.
    **options: the fields of `LoadOptions`.

  Returns:
    inputs (uint8 images (N, H, W, C), an on-demand stand-in with
    `in_memory=False` or for streamed datasets, or documents for text) and
    int32 labels (N,).

  Raises:
    ValueError: unknown name or split.
    DataError: the data is missing or cannot be prepared here; the message
      says how to provide it.
  """
  info = dataset_info(name, **options)
  splits = (info.train_split, info.test_split)
  if split not in splits:
    raise ValueError(f'split={split!r} is not a split of {name}: expected '
                     f'one of {splits}')
  return _family(name).load(info, split, LoadOptions(**options))


def configured_options(data_config: Any, seed: int = 0) -> dict[str, Any]:
  """The `LoadOptions` fields a config's `data` section sets.

  '' in data_dir / manual_dir / path means the default; keys a section does
  not have keep their defaults (only the own-files configs have path, the
  columns and class_names). `seed` is the run's (config.seed).
  """
  defaults = LoadOptions()
  return dict(
      data_dir=data_config.data_dir or None,
      manual_dir=data_config.manual_dir or None,
      download=data_config.download, in_memory=data_config.in_memory,
      image_size=data_config.get('image_size') or None,
      path=data_config.get('path') or None,
      text_column=data_config.get('text_column', defaults.text_column),
      label_column=data_config.get('label_column', defaults.label_column),
      test_fraction=data_config.get('test_fraction', defaults.test_fraction),
      # A list stays a sequence; anything else is refused, named, on reading.
      class_names=_as_tuple(data_config.get('class_names',
                                            defaults.class_names)),
      train_split=data_config.get('train_split', defaults.train_split),
      test_split=data_config.get('test_split', defaults.test_split),
      seed=seed)


def _as_tuple(value: Any) -> Any:
  return tuple(value) if isinstance(value, list) else value


def _process_zero_first(read: Callable[[], Any], what: str) -> Any:
  """`read()` on every process, process 0 first.

  Processes preparing the same data_dir at once would race for its files.
  """
  if jax.process_count() == 1:
    return read()
  if jax.process_index() == 0:
    result = read()
  multihost_utils.sync_global_devices(f'svp_jax: {what} prepared')
  if jax.process_index() != 0:
    result = read()
  return result


def configured_info(data_config: Any, seed: int = 0) -> DatasetInfo:
  """`dataset_info` of a config's `data` section (preparing dynamic data)."""
  return _process_zero_first(
      lambda: dataset_info(data_config.name,
                           **configured_options(data_config, seed)),
      data_config.name)


def load_configured_split(data_config: Any, split: str, limit: int = 0,
                          seed: int = 0) -> tuple[Any, np.ndarray]:
  """`load_split` driven by a config's `data` section.

  `limit` > 0 keeps the first `limit` examples (for quick runs); `seed` is
  the run's. ImageNet comes back streamed
  (svp_jax.data.imagenet.StreamingImages). Text datasets come back as an
  object array of documents (title + ' ' + body), which each model's
  encoding reads (svp_jax.model_registry).
  """
  inputs, labels = _process_zero_first(
      lambda: load_split(data_config.name, split,
                         **configured_options(data_config, seed)),
      f'{data_config.name} {split}')
  if limit:
    inputs, labels = inputs[:limit], labels[:limit]
  return inputs, labels
