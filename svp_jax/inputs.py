"""Which models a dataset takes, and what each model reads.

Image datasets feed their pixel arrays to the image models (svp_jax.models)
as they are. Text datasets load as documents (svp_jax.data) and each text
model (svp_jax.text_models) reads its own encoding of them: VDCNN quantised
characters, fastText hashed word n-grams. A proxy and a target of different
kinds therefore see the same examples, in the same order, encoded twice.

A text model's `model` config section may set:
  document_length  VDCNN: characters kept per document (default 1014, the
                   reference's).
  num_buckets      fastText: rows of the hashed n-gram table (default 10M).
  max_ids          fastText: n-gram ids kept per document (default 0: as
                   many as the longest document has).
"""

from collections.abc import Sequence
import time
from typing import Any

from absl import logging
import flax.linen as nn
import numpy as np

from svp_jax import models
from svp_jax import runtime
from svp_jax import text_models
from svp_jax.data import DatasetInfo

# The shortest document VDCNN can read: 3 halvings still leave k-max
# pooling (k = 8) its 8 positions.
MIN_DOCUMENT_LENGTH = 64


def model_names(info: DatasetInfo) -> tuple[str, ...]:
  """The model names allowed for dataset `info`."""
  if info.modality == 'text':
    return text_models.TEXT_MODEL_NAMES
  return models.MODEL_NAMES


def _num_buckets(model_section: Any) -> int:
  """fastText's table size: the model's rows and the ids' hash modulus."""
  return model_section.get('num_buckets', text_models.DEFAULT_NUM_BUCKETS)


def create_model(model_section: Any, info: DatasetInfo) -> nn.Module:
  """The model `model_section.name` with `info`'s number of classes.

  Image models convolve as svp_jax.runtime chose for this process.
  """
  if info.modality == 'text':
    return text_models.create_text_model(
        model_section.name, info.num_classes, _num_buckets(model_section))
  return models.create_model(
      model_section.name, info.num_classes,
      conv_general_dilated=runtime.current().conv_general_dilated)


def training_view(examples: Any, info: DatasetInfo, augment: bool) -> Any:
  """What training reads of a pool: with host augmentation, crops.

  Streamed ImageNet loads as an eval view (resize + center crop, what pool
  scoring and testing read); training reads its random-resized-crop view.
  """
  if info.host_augmentation and augment:
    return examples.with_mode('train')
  return examples


def _encoding(model_section: Any, info: DatasetInfo) -> tuple[Any, ...]:
  """What decides a model's encoding: models with equal ones share arrays."""
  if info.modality != 'text':
    return ('as loaded',)
  if model_section.name == 'fasttext':
    return ('fasttext', _num_buckets(model_section),
            model_section.get('max_ids', 0) or None)
  return ('characters', model_section.get('document_length',
                                          text_models.DOCUMENT_LENGTH))


def encode(model_section: Any, info: DatasetInfo,
           examples: np.ndarray) -> np.ndarray:
  """What model `model_section.name` reads of `examples` (see module doc)."""
  return encode_each([model_section], info, examples)[0]


def encode_each(model_sections: Sequence[Any], info: DatasetInfo,
                examples: np.ndarray) -> list[np.ndarray]:
  """`encode` for each model section, each distinct encoding made once."""
  return [encoded for encoded, _ in encode_each_timed(model_sections, info,
                                                      examples)]


def encode_each_timed(model_sections: Sequence[Any], info: DatasetInfo,
                      examples: np.ndarray) -> list[tuple[np.ndarray, float]]:
  """`encode_each`, with the seconds each section's encoding took.

  An encoding two sections share is made once and its seconds given to
  both: each model needs it (a selector's counts in data selection). Images
  are read as loaded: 0 seconds.
  """
  made = {}
  for section in model_sections:
    kind, *options = key = _encoding(section, info)
    if key in made:
      continue
    start = time.perf_counter()
    if kind == 'as loaded':
      made[key] = (examples, 0.0)
      continue
    if kind == 'fasttext':
      encoded = text_models.fasttext_ids(examples, *options)
    else:
      encoded = text_models.quantize(examples, *options)
    made[key] = (encoded, time.perf_counter() - start)
    logging.info('Encoded %d documents for %s as %s %s in %.1f s.',
                 len(examples), section.name, encoded.dtype, encoded.shape,
                 made[key][1])
  return [made[_encoding(section, info)] for section in model_sections]
