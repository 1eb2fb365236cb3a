"""Datasets as host NumPy arrays, and per-example preprocessing in JAX.

Every dataset belongs to a family registered in `svp_jax.data.registry` by
the family's own module; importing this package imports the built-in ones
(their order is the order of `SUPPORTED_DATASETS`), so `dataset_info` and
`load_split` know every dataset. Adding a dataset: BUILD.md, "Datasets".

Importing this package reads nothing and imports neither TensorFlow nor
TFDS; `load_split` does the I/O on call.
"""

# The built-in families: each registers itself when imported, in this order.
# pylint: disable=unused-import
from svp_jax.data import cifar
from svp_jax.data import fashion_mnist
from svp_jax.data import imagenet
from svp_jax.data import text
from svp_jax.data import files  # A user's own files (dynamic).
# Any other TFDS name: last, so that the names above keep their families.
from svp_jax.data import tfds_catalog
# pylint: enable=unused-import
from svp_jax.data import registry
from svp_jax.data.augment import normalize
from svp_jax.data.augment import random_crop_flip
from svp_jax.data.errors import DataError
from svp_jax.data.image_splits import SplitImages
from svp_jax.data.info import DatasetInfo
from svp_jax.data.info import UNLABELED
from svp_jax.data.partition import process_slice
from svp_jax.data.registry import configured_info
from svp_jax.data.registry import dataset_info
from svp_jax.data.registry import DatasetFamily
from svp_jax.data.registry import load_configured_split
from svp_jax.data.registry import load_split
from svp_jax.data.registry import LoadOptions
from svp_jax.data.registry import register
from svp_jax.data.registry import supported_datasets
from svp_jax.data.registry import unregister

def __getattr__(name: str):
  # SUPPORTED_DATASETS is computed on each access (PEP 562) so that it is
  # the registry's list, including families registered after this import.
  if name == 'SUPPORTED_DATASETS':
    return registry.supported_datasets()
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = [
    'DataError',
    'DatasetFamily',
    'DatasetInfo',
    'LoadOptions',
    'SUPPORTED_DATASETS',
    'SplitImages',
    'UNLABELED',
    'configured_info',
    'dataset_info',
    'load_configured_split',
    'load_split',
    'normalize',
    'process_slice',
    'random_crop_flip',
    'register',
    'supported_datasets',
    'unregister',
]
