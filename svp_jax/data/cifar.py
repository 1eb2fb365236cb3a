"""CIFAR-10 and CIFAR-100, prepared without TensorFlow from the binary archive.

Where the data comes from, in this order: TFDS's official `cifar10` /
`cifar100` if already prepared as array_record (read in the official files'
order, sorted by the builder's `id`); else our `cifar_binary` builder,
prepared (numpy alone) from the official *binary* archive, found in
manual_dir (default <data_dir>/downloads/manual) or downloaded into
<data_dir>/downloads (`data.download`: the URL, size and sha256 are the
ones TFDS registers for its official builder) and checked. Both give the
same images in the same order. Importing this module registers the `cifar`
family.
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
                  download: bool | str) -> Any:
  """A prepared builder; see the module docstring for the order of sources."""
  official_cls = tfds_util.tfds().builder_cls(name)
  builder = tfds_util.prepared(official_cls, data_dir)
  if builder:
    return builder
  # Registers `cifar_binary` with TFDS, hence imported only here.
  # pylint: disable-next=g-import-not-at-top
  from svp_jax.data.builders import cifar_binary
  builder = tfds_util.prepared(cifar_binary.CifarBinary, data_dir,
                               config=name)
  if builder:
    return builder

  archive, size = CIFAR_ARCHIVES[name]
  manual_dir = manual_dir or tfds_util.default_manual_dir(data_dir)
  path = os.path.join(manual_dir, archive)
  if not os.path.isfile(path):
    if not tfds_util.may_download(official_cls, download):
      raise DataError(
          f'{name} is not prepared in data_dir={data_dir}, the official '
          f'binary archive {archive} ({size:,} bytes, the "binary version" '
          f'of CIFAR, not the python one) is not in manual_dir={manual_dir}, '
          f'and {tfds_util.download_refusal(official_cls, download)}. Copy '
          'the archive there (or set --config.data.manual_dir to its '
          'folder), or let it download with --config.data.download=True '
          '(needs internet).')
    path = tfds_util.download_registered(
        official_cls, os.path.join(data_dir, 'downloads'))
  tfds_util.check_registered(official_cls, path)
  builder = cifar_binary.CifarBinary(config=name, data_dir=data_dir)
  tfds_util.prepare(builder, os.path.dirname(path))
  return builder


registry.register(registry.DatasetFamily(
    name='cifar', infos=INFOS, load=image_splits.loader(cifar_builder)))
