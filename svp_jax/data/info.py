"""What the rest of svp_jax knows about a dataset (no I/O).

Each dataset family's module declares its datasets' `DatasetInfo`s and
registers them (`svp_jax.data.registry`).
"""

import dataclasses

# The label of a pool member that has none yet (own files, svp_jax.data.files).
UNLABELED = -1


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What models, training and selection need to know about a dataset."""
  name: str  # As in `config.data.name`; the TFDS name for TFDS datasets.
  num_classes: int
  image_shape: tuple[int, ...]  # (H, W, C); () for text.
  mean: tuple[float, ...]  # Per channel, on the [0, 1] pixel scale.
  std: tuple[float, ...]
  train_split: str
  test_split: str
  # 'image' (arrays fed as they are) or 'text' (documents, encoded for each
  # model as its spec says: svp_jax.model_registry). Also which models it
  # takes (a ModelSpec's modality).
  modality: str = 'image'
  # Training augmentation happens on the host while decoding (ImageNet's
  # random-resized crops: the split loads as an eval view with a training
  # view), not on the device (CIFAR's pad-crop-flip).
  host_augmentation: bool = False
  # Class i's name, where the dataset names them (() otherwise).
  class_names: tuple[str, ...] = ()

