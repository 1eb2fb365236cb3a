"""Datasets as host NumPy arrays, and per-example preprocessing in JAX.

Importing this package reads nothing and imports neither TensorFlow nor
TFDS; `load_split` does the I/O on call.
"""

from svp_jax.data.augment import normalize
from svp_jax.data.augment import random_crop_flip
from svp_jax.data.errors import DataError
from svp_jax.data.info import dataset_info
from svp_jax.data.info import DatasetInfo
from svp_jax.data.info import SUPPORTED_DATASETS
from svp_jax.data.loading import load_configured_split
from svp_jax.data.loading import load_split
from svp_jax.data.loading import SplitImages
from svp_jax.data.partition import process_slice

__all__ = [
    'DataError',
    'DatasetInfo',
    'SUPPORTED_DATASETS',
    'SplitImages',
    'dataset_info',
    'load_configured_split',
    'load_split',
    'normalize',
    'process_slice',
    'random_crop_flip',
]
