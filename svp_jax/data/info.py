"""Static facts about the supported datasets (no I/O)."""

import dataclasses

from svp_jax.data import zhang_csv


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What models, training and selection need to know about a dataset."""
  name: str  # TFDS name, as in `config.data.name`.
  num_classes: int
  image_shape: tuple[int, ...]  # (H, W, C); () for text.
  mean: tuple[float, ...]  # Per channel, on the [0, 1] pixel scale.
  std: tuple[float, ...]
  train_split: str
  test_split: str
  # 'image' (arrays fed as they are) or 'text' (documents, encoded for each
  # model by svp_jax.inputs).
  modality: str = 'image'
  # Training augmentation happens on the host while decoding (ImageNet's
  # random-resized crops: the split loads as an eval view with a training
  # view), not on the device (CIFAR's pad-crop-flip).
  host_augmentation: bool = False


_INFOS = {
    # CIFAR constants are the reference implementation's (REFERENCE.md).
    'cifar10': DatasetInfo(
        name='cifar10', num_classes=10, image_shape=(32, 32, 3),
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        train_split='train', test_split='test'),
    'cifar100': DatasetInfo(
        name='cifar100', num_classes=100, image_shape=(32, 32, 3),
        mean=(0.5071, 0.4866, 0.4409), std=(0.2673, 0.2564, 0.2762),
        train_split='train', test_split='test'),
    # Not in the paper. Computed from the 60,000 training images (all pixels,
    # population std): mean 0.28604, std 0.35302.
    'fashion_mnist': DatasetInfo(
        name='fashion_mnist', num_classes=10, image_shape=(28, 28, 1),
        mean=(0.2860,), std=(0.3530,),
        train_split='train', test_split='test'),
    # Streamed (svp_jax.data.imagenet): images are decoded per batch, at
    # config.data.image_size (224). Tested on the validation split.
    'imagenet2012': DatasetInfo(
        name='imagenet2012', num_classes=1000, image_shape=(224, 224, 3),
        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
        train_split='train', test_split='validation',
        host_augmentation=True),
}


def _text_info(name: str, num_classes: int) -> DatasetInfo:
  return DatasetInfo(name=name, num_classes=num_classes, image_shape=(),
                     mean=(), std=(), train_split='train', test_split='test',
                     modality='text')


# Zhang et al.'s review CSVs through our amazon_reviews builder
# (svp_jax.data.text); Rotten Tomatoes is the offline stand-in (DATA.md).
_INFOS.update({d.name: _text_info(d.name, d.num_classes)
               for d in zhang_csv.DATASETS.values()})

SUPPORTED_DATASETS: tuple[str, ...] = tuple(_INFOS)


def dataset_info(name: str) -> DatasetInfo:
  """The `DatasetInfo` of `name`; ValueError naming the allowed names."""
  try:
    return _INFOS[name]
  except (KeyError, TypeError):
    raise ValueError(
        f'config.data.name={name!r} is not supported: expected one of '
        f'{SUPPORTED_DATASETS}') from None
