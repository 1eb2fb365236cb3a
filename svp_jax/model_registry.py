"""The models: one registry entry (a svp_jax.model_spec.ModelSpec) each.

Every part that needs a model asks here: the configs for names, validation
for what a model takes and checks, the jobs to build a learner's model and
encode its data (svp_jax.experiment), the benchmarks. The built-in models
are the SPECS of their own modules, svp_jax.models (image ResNets) and
svp_jax.text_models (VDCNN, fastText), registered on import; adding one to
a module is one entry there plus its tests, and a test may register a model
of its own (tests/test_model_registry.py does).
"""

from collections.abc import Sequence
import time
from typing import Any

from absl import logging
from svp_jax import models
from svp_jax import registry_table
from svp_jax import runtime
from svp_jax import text_models
from svp_jax.model_spec import ModelSpec

_TABLE = registry_table.Table[ModelSpec]('model')


def register(spec: ModelSpec) -> ModelSpec:
  """Adds `spec`; a name is registered once (tests may `unregister`)."""
  return _TABLE.register(spec)


def unregister(name: str):
  """Removes a model registered by a test."""
  _TABLE.unregister(name)


def names(modality: str | None = None) -> tuple[str, ...]:
  """Registered model names for datasets of `modality` (all if None)."""
  return tuple(s.name for s in _TABLE
               if modality is None or s.modality == modality)


def get(name: str) -> ModelSpec:
  """The model `name`; ValueError naming the registered ones."""
  return _TABLE.get(name)


for _spec in (*models.SPECS, *text_models.SPECS):
  register(_spec)


def create_model(model_section: Any, info: Any) -> Any:
  """The model `model_section.name` for dataset `info`'s classes.

  Convolves as svp_jax.runtime chose for this process.
  """
  return get(model_section.name).create(
      model_section, info.num_classes, runtime.current().conv_general_dilated)


def create_default(name: str, num_classes: int,
                   conv_general_dilated: Any = None) -> Any:
  """Model `name` with its options' defaults, convolving by
  `conv_general_dilated` (None: XLA's): for benchmarks and tests."""
  return get(name).create({'name': name}, num_classes, conv_general_dilated)


def encode_each(model_sections: Sequence[Any], examples: Any) -> list[Any]:
  """What each section's model reads of `examples` (its spec's encoding),
  each distinct encoding made once."""
  return [encoded for encoded, _ in encode_each_timed(model_sections,
                                                      examples)]


def encode_each_timed(model_sections: Sequence[Any], examples: Any
                      ) -> list[tuple[Any, float]]:
  """`encode_each`, with the seconds each section's encoding took.

  An encoding two sections share is made once and its seconds given to
  both: each model needs it (a selector's counts in data selection). A model
  without an encoding (images) reads the examples as loaded: 0 seconds.
  """
  made = {}
  keys = []
  for section in model_sections:
    encoding = get(section.name).encoding
    key = None if encoding is None else encoding(section)
    keys.append(key)
    if key in made:
      continue
    if key is None:
      made[key] = (examples, 0.0)
      continue
    start = time.perf_counter()
    encoded = key.encode(examples, *key.options)
    made[key] = (encoded, time.perf_counter() - start)
    logging.info('Encoded %d documents for %s as %s %s in %.1f s.',
                 len(examples), section.name, encoded.dtype, encoded.shape,
                 made[key][1])
  return [made[key] for key in keys]
