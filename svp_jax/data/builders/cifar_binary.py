"""CIFAR-10 / CIFAR-100 from the official binary archive, without TensorFlow.

TFDS's own `cifar10` / `cifar100` builders store PNG-encoded `Image`
features, and encoding them needs TensorFlow. This builder reads the same
archive (`cifar-10-binary.tar.gz`, `cifar-100-binary.tar.gz`, in
manual_dir) and stores raw uint8 `Tensor`s, so it prepares with numpy
alone. Example i of a split is record i of the split's files in the official
order (data_batch_1..5 then test_batch; train.bin, test.bin), the order
svp_jax reads the official builders in; labels are CIFAR-100's fine ones.

Importing this module registers the TFDS name `cifar_binary`.
"""

import dataclasses
import os
import tarfile

import numpy as np
import tensorflow_datasets as tfds


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where an archive keeps its records."""
  archive: str  # The official file's name, looked for in manual_dir.
  folder: str
  label_bytes: int  # CIFAR-100 records start with (coarse, fine) labels.
  files: dict[str, tuple[str, ...]]
  num_classes: int


LAYOUTS = {
    'cifar10': Layout('cifar-10-binary.tar.gz', 'cifar-10-batches-bin', 1,
                      {'train': tuple(f'data_batch_{i}.bin'
                                      for i in range(1, 6)),
                       'test': ('test_batch.bin',)}, 10),
    'cifar100': Layout('cifar-100-binary.tar.gz', 'cifar-100-binary', 2,
                       {'train': ('train.bin',), 'test': ('test.bin',)}, 100),
}
IMAGE_BYTES = 32 * 32 * 3


def read_records(archive: str, layout: Layout, split: str
                 ) -> tuple[np.ndarray, np.ndarray]:
  """A split's uint8 HWC images and (fine) labels, in file order."""
  record = layout.label_bytes + IMAGE_BYTES
  chunks = []
  with tarfile.open(archive, 'r:gz') as tar:
    for filename in layout.files[split]:
      payload = tar.extractfile(f'{layout.folder}/{filename}').read()
      chunks.append(np.frombuffer(payload, np.uint8).reshape(-1, record))
  rows = np.concatenate(chunks)
  labels = rows[:, layout.label_bytes - 1].astype(np.int64)
  # Each record holds the R, G and B planes in turn.
  images = rows[:, layout.label_bytes:].reshape(-1, 3, 32, 32)
  return images.transpose(0, 2, 3, 1), labels


class CifarBinary(tfds.core.GeneratorBasedBuilder):
  """CIFAR-10/100 (Krizhevsky 2009) read from the official binary archive."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=n) for n in LAYOUTS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put the official binary archive (cifar-10-binary.tar.gz or '
      'cifar-100-binary.tar.gz) in manual_dir.')

  @property
  def _layout(self) -> Layout:
    return LAYOUTS[self.builder_config.name]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='CIFAR images as raw uint8 tensors, in the official '
                    'binary files\' order.',
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(32, 32, 3), dtype=np.uint8),
            'label': tfds.features.ClassLabel(
                num_classes=self._layout.num_classes),
        }),
        supervised_keys=('image', 'label'),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    # svp_jax.data.cifar checked the archive against TFDS's registered size
    # and sha256 before preparing.
    archive = os.path.join(str(dl_manager.manual_dir), self._layout.archive)
    return {split: self._generate_examples(archive, split)
            for split in self._layout.files}

  def _generate_examples(self, archive: str, split: str):
    images, labels = read_records(archive, self._layout, split)
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {'image': image, 'label': int(label)}
