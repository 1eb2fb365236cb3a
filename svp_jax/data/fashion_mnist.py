"""Fashion-MNIST: TFDS's official builder, or ours from the four IDX files.

Where the data comes from, in this order: TFDS's official `fashion_mnist` if
already prepared as array_record; else our `fashion_mnist_idx` builder,
prepared (no TensorFlow) from the four IDX files in manual_dir (default:
Debian's /usr/share/datasets/fashion-mnist, then <data_dir>/downloads/manual);
else, with `download=True`, the official builder downloads and prepares
(that needs TensorFlow, requirements-prepare.txt).

Order of examples: `fashion_mnist_idx` keeps IDX file order; an official
`fashion_mnist` prepared elsewhere comes in TFDS's fixed shuffled order.
Importing this module registers the `fashion_mnist` family.
"""

from typing import Any

from absl import logging

from svp_jax.data import idx
from svp_jax.data import image_splits
from svp_jax.data import registry
from svp_jax.data import tfds_util
from svp_jax.data.errors import DataError
from svp_jax.data.info import DatasetInfo

# Debian's dataset-fashion-mnist package installs the IDX files here.
FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist'
# Not in the paper. Computed from the 60,000 training images (all pixels,
# population std): mean 0.28604, std 0.35302.
INFO = DatasetInfo(
    name='fashion_mnist', num_classes=10, image_shape=(28, 28, 1),
    mean=(0.2860,), std=(0.3530,),
    train_split='train', test_split='test')


def fashion_mnist_builder(name: str, data_dir: str, manual_dir: str | None,
                          download: bool) -> Any:
  """A prepared builder; see the module docstring for the order of sources."""
  del name  # The family's one dataset, named in the messages below.
  official_cls = tfds_util.tfds().builder_cls('fashion_mnist')
  try:
    builder = tfds_util.prepared(official_cls, data_dir)
  except DataError as e:
    # Our own builder is an equally good source; no need to fail.
    logging.warning('%s Using fashion_mnist_idx instead.', e)
    builder = None
  if builder:
    return builder
  # Registers `fashion_mnist_idx` with TFDS, hence imported only here.
  # pylint: disable-next=g-import-not-at-top
  from svp_jax.data.builders import fashion_mnist_idx
  builder = tfds_util.prepared(fashion_mnist_idx.FashionMnistIdx, data_dir)
  if builder:
    return builder

  searched = ([manual_dir] if manual_dir else
              [FASHION_MNIST_SYSTEM_DIR,
               tfds_util.default_manual_dir(data_dir)])
  for folder in searched:
    found = idx.find_fashion_mnist_files(folder)
    if len(found) == len(idx.FASHION_MNIST_FILENAMES):
      builder = fashion_mnist_idx.FashionMnistIdx(data_dir=data_dir)
      tfds_util.prepare(builder, folder)
      return builder
    if found:
      missing = [f for f in idx.FASHION_MNIST_FILENAMES
                 if f.removesuffix('.gz') not in found]
      raise DataError(f'fashion_mnist: {folder} holds only some of the IDX '
                      f'files; missing {missing}.')

  if tfds_util.may_download(official_cls, download):
    tfds_util.require_tensorflow('fashion_mnist',
                                 "preparing TFDS's download")
    builder = official_cls(data_dir=data_dir)
    tfds_util.prepare(builder, None)
    return builder
  raise _missing_error(data_dir, searched,
                       tfds_util.download_refusal(official_cls, download))


def _missing_error(data_dir: str, searched: list[str],
                   no_download: str) -> DataError:
  return DataError(
      f'fashion_mnist is not prepared in data_dir={data_dir}, its four '
      f'IDX files ({", ".join(idx.FASHION_MNIST_FILENAMES)}) are not in '
      f'{" or ".join(searched)}, and {no_download}. Provide them in one of '
      'these ways:\n'
      '  * as root: apt-get install dataset-fashion-mnist (installs them in '
      f'{FASHION_MNIST_SYSTEM_DIR});\n'
      '  * without root: apt-get download dataset-fashion-mnist && '
      'dpkg -x dataset-fashion-mnist_*.deb DIR, then '
      f'--config.data.manual_dir=DIR{FASHION_MNIST_SYSTEM_DIR};\n'
      '  * with internet: --config.data.download=True (after '
      f'{tfds_util.PREPARE_HINT}).')


registry.register(registry.DatasetFamily(
    name='fashion_mnist', infos=(INFO,),
    load=image_splits.loader(fashion_mnist_builder)))
