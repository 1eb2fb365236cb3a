"""Fashion-MNIST from its four local IDX files, prepared without TensorFlow.

TFDS's own `fashion_mnist` stores PNG-encoded `Image` features (preparing
those needs TensorFlow) and accepts local files only if their sha256 matches
the upstream downloads, which Debian's re-packed files do not. This builder
stores raw uint8 `Tensor`s instead and checks the IDX content, so it prepares
as array_record with numpy alone. Example i of a split is example i of its
IDX file (shuffling disabled), the order other libraries use.

Importing this module registers the TFDS name `fashion_mnist_idx`.
"""

import numpy as np
import tensorflow_datasets as tfds

from svp_jax.data import idx

_CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')


class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST (Xiao et al. 2017) read from IDX files in manual_dir."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put the four Fashion-MNIST IDX files ('
      + ', '.join(idx.FASHION_MNIST_FILENAMES) + ') in manual_dir, e.g. '
      'with `apt-get install dataset-fashion-mnist` (they go to '
      '/usr/share/datasets/fashion-mnist).')

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='Fashion-MNIST: 28x28 grey images of 10 kinds of '
                    'clothing, 60,000 train and 10,000 test, in IDX order.',
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(names=_CLASS_NAMES),
        }),
        supervised_keys=('image', 'label'),
        homepage='https://github.com/zalandoresearch/fashion-mnist',
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = str(dl_manager.manual_dir)
    return {split: self._generate_examples(manual_dir, split)
            for split in idx.FASHION_MNIST_FILES}

  def _generate_examples(self, manual_dir: str, split: str):
    images, labels = idx.read_fashion_mnist(manual_dir, split)
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {'image': image, 'label': int(label)}
