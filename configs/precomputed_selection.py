"""Trains a target on the selections stored by an earlier run.

  python main.py --config=configs/precomputed_selection.py:DATASET \
      --config.precomputed.run_dir=workdirs/fashion_mnist_svp \
      [--config.precomputed.sizes='(2000, 4000)']

DATASET: fashion_mnist (ResNet20, the Fashion-MNIST SVP recipe), cifar10 or
cifar100 (ResNet164, the 181-epoch recipe), amazon_review_polarity or
amazon_review_full (VDCNN29, its 15-epoch recipe; e.g. on a reference
fastText run's selections). Reads every labeled-index file
of the run directory (svp_jax's, or the reference's `selector/<n>/labelled_<n>.index`)
and trains the target from scratch on each chosen size; target.csv as usual.
"""

from configs import cifar
from configs import common
from configs import fashion_mnist
from configs import text
from svp_jax import data

# Dataset -> its target (each a name of svp_jax.data).
TARGETS = {
    fashion_mnist.DATASET: fashion_mnist.svp_target_section,
    'cifar10': cifar.target_section,
    'cifar100': cifar.target_section,
    'amazon_review_polarity': lambda: text.model_section(text.TARGET),
    'amazon_review_full': lambda: text.model_section(text.TARGET),
}
ARGUMENTS = common.Arguments(dataset=common.Choice(
    lambda: tuple(d for d in data.supported_datasets() if d in TARGETS),
    fashion_mnist.DATASET, 'DATASET'))


def get_config(arg=None):
  dataset = ARGUMENTS.parse(arg).dataset
  return common.precomputed_config(dataset, TARGETS[dataset]())
