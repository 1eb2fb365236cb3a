"""What one model is: the `ModelSpec` every model module declares.

A model module (svp_jax.models, svp_jax.text_models) declares a spec per
model in its `SPECS`; svp_jax.model_registry registers them, and every
other part (configs, validation, the jobs, the benchmarks) reads a model's
facts from its spec there. A spec says:

  name        the config's `model.name`
  modality    the datasets it takes: 'image' or 'text' (DatasetInfo.modality)
  module      the Flax module class `create` returns. How it trains is that
              class's `training_hooks` (svp_jax.train.hooks_for reads it,
              the jitted steps too, and validation from the class, building
              nothing); a class without them trains by the dense SGD.
  create      (model section, number of classes, conv_general_dilated) ->
              the module. `conv_general_dilated` is the convolution this
              process runs (svp_jax.runtime; None: XLA's); a model without
              2-D convolutions ignores it.
  feature_dim (model section) -> the width of its features. Every model maps
              `(inputs, train, mask)` to `(logits, features)`, `features`
              being the input of its final linear layer: what k-centers
              reads.
  encoding    (model section) -> the `Encoding` it reads of a dataset's
              examples; None (the field): the arrays as loaded (images).
  options     the `IntOption`s its model section may set: their defaults
              (what `create` and `encoding` read when a key is absent) and
              the bounds validation checks.

Weights: every registered model starts from its initialisers (random, as
the reference's); a spec that starts from stored weights (issue 35's
pretrained encoders) is the next field here.

Importing this module imports no JAX or Flax.
"""

from collections.abc import Callable
import dataclasses
from typing import Any

MODALITIES = ('image', 'text')


@dataclasses.dataclass(frozen=True)
class Encoding:
  """How a model reads a dataset's examples: `encode(examples, *options)`.

  Equal encodings (the same function and options) are made once per split
  and shared by every model that reads them (model_registry.encode_each).
  """

  encode: Callable[..., Any]
  options: tuple[Any, ...] = ()


@dataclasses.dataclass(frozen=True)
class IntOption:
  """An integer key of a model section, its default and its least value."""

  key: str
  default: int
  minimum: int

  def value(self, model_section: Any) -> int:
    """The section's value, or the default where it does not set one."""
    return model_section.get(self.key, self.default)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """One model; see the module docstring for the fields."""

  name: str
  modality: str
  module: type
  create: Callable[[Any, Any, Any], Any]
  feature_dim: Callable[[Any], int]
  encoding: Callable[[Any], Encoding] | None = None
  options: tuple[IntOption, ...] = ()

  def __post_init__(self):
    if self.modality not in MODALITIES:
      raise ValueError(f'model {self.name!r}: modality={self.modality!r}, '
                       f'expected one of {MODALITIES}')

  def option(self, model_section: Any, key: str) -> int:
    """Option `key` of `model_section`, or its default."""
    for option in self.options:
      if option.key == key:
        return option.value(model_section)
    raise KeyError(f'model {self.name!r} has no option {key!r}; its options: '
                   f'{tuple(o.key for o in self.options)}')
