"""CIFAR-10 and CIFAR-100 through TFDS's official, unmodified builders.

A split is prepared once (as array_record) from the official *binary*
archive in manual_dir (default <data_dir>/downloads/manual), or downloaded
with `download=True`; preparing needs TensorFlow (requirements-prepare.txt),
reading it back needs only Pillow. Examples come in the official files'
order (sorted by the builder's `id`). Importing this module registers the
`cifar` family.
"""

import os
from typing import Any

from svp_jax.data import image_splits
from svp_jax.data import registry
from svp_jax.data import tfds_util
from svp_jax.data.errors import DataError
from svp_jax.data.info import DatasetInfo

# The official binary archives TFDS's cifar builders register (name, size).
CIFAR_ARCHIVES = {
    'cifar10': ('cifar-10-binary.tar.gz', 170_052_171),
    'cifar100': ('cifar-100-binary.tar.gz', 168_513_733),
}
# The constants are the reference implementation's (docs/reference.md).
INFOS = (
    DatasetInfo(
        name='cifar10', num_classes=10, image_shape=(32, 32, 3),
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        train_split='train', test_split='test'),
    DatasetInfo(
        name='cifar100', num_classes=100, image_shape=(32, 32, 3),
        mean=(0.5071, 0.4866, 0.4409), std=(0.2673, 0.2564, 0.2762),
        train_split='train', test_split='test'),
)


def cifar_builder(name: str, data_dir: str, manual_dir: str | None,
                  download: bool) -> Any:
  """TFDS's official builder, prepared if needed from the binary archive."""
  builder_cls = tfds_util.tfds().builder_cls(name)
  builder = tfds_util.prepared(builder_cls, data_dir)
  if builder:
    return builder

  archive, size = CIFAR_ARCHIVES[name]
  manual_dir = manual_dir or tfds_util.default_manual_dir(data_dir)
  have_archive = os.path.isfile(os.path.join(manual_dir, archive))
  if not (have_archive or tfds_util.may_download(builder_cls, download)):
    raise DataError(
        f'{name} is not prepared in data_dir={data_dir}, the official '
        f'binary archive {archive} ({size:,} bytes, the "binary version" of '
        f'CIFAR, not the python one) is not in manual_dir={manual_dir}, and '
        f'{tfds_util.download_refusal(builder_cls, download)}. Copy the '
        'archive there (or set --config.data.manual_dir to its folder), or '
        'let TFDS download it with --config.data.download=True (needs '
        f'internet). Preparing needs TensorFlow: {tfds_util.PREPARE_HINT}.')

  tfds_util.require_tensorflow(name, 'preparing the official TFDS builder')
  # Not re-exported by TFDS's public API.
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.core.download import download_manager
  builder = builder_cls(data_dir=data_dir)
  try:
    tfds_util.prepare(builder, manual_dir)
  except download_manager.NonMatchingChecksumError as e:
    raise DataError(
        f'{name}: {os.path.join(manual_dir, archive)} is not the official '
        f'archive TFDS registers ({size:,} bytes, fixed sha256); get the '
        f'original file or remove it and use --config.data.download=True.'
    ) from e
  return builder


registry.register(registry.DatasetFamily(
    name='cifar', infos=INFOS, load=image_splits.loader(cifar_builder)))
