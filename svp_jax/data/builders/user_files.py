"""A user's own files (svp_jax.data.own_files), prepared as TFDS array_record.

One builder config per content key: `<data_dir>/user_files/<key>/1.0.0/`.
The config carries the examples already read and checked in host memory, so
preparing only writes them. Features are uint8 `Tensor`s or `Text`, an int32
label (-1: unlabeled, which `ClassLabel` cannot hold) and the example's
`source` (file path, table line, array row), so it prepares with numpy
alone. The class names, modality and normalisation statistics go in the
dataset's metadata, which TFDS writes with the rest before renaming the
finished folder into place: a folder that exists is complete. A split
without examples (the test split of a pool without labels) is not written.

Read back with `tfds.builder_from_directory` (no class, no TensorFlow).
Importing this module registers the TFDS name `user_files`.
"""

import dataclasses
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from svp_jax.data import own_files


@dataclasses.dataclass(eq=False)
class UserFilesConfig(tfds.core.BuilderConfig):
  """One user dataset: its examples and what the metadata records."""
  # Not in the repr: TFDS logs the config, and this holds every example.
  data: own_files.OwnData | None = dataclasses.field(default=None, repr=False)
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


def features(data: own_files.OwnData) -> Any:
  """The TFDS features of `data`'s examples."""
  if data.modality == 'text':
    inputs = tfds.features.Text()
  else:
    inputs = tfds.features.Tensor(shape=data.train.inputs.shape[1:],
                                  dtype=np.uint8)
  return tfds.features.FeaturesDict({
      'inputs': inputs,
      'label': tfds.features.Scalar(dtype=np.int32),
      'source': tfds.features.Text(),
  })


class UserFiles(tfds.core.GeneratorBasedBuilder):
  """A folder of images, a table of texts or an .npz, read by own_files."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=f'A user dataset read from {config.description}.',
        features=features(config.data),
        supervised_keys=('inputs', 'label'),
        metadata=tfds.core.MetadataDict(config.metadata),
        disable_shuffling=True,  # File order, as read.
    )

  def _split_generators(self, dl_manager: Any):
    del dl_manager  # Nothing to download: the examples are in the config.
    data = self.builder_config.data
    # TFDS cannot write a split without examples: an empty test split (a
    # pool without labels) is left out, and svp_jax.data.files reads a
    # split that is not there as empty.
    return {name: self._generate_examples(split)
            for name, split in (('train', data.train), ('test', data.test))
            if len(split.labels)}

  def _generate_examples(self, split: own_files.Split):
    for i, (inputs, label, source) in enumerate(
        zip(split.inputs, split.labels, split.sources)):
      yield i, {'inputs': inputs, 'label': int(label), 'source': source}
