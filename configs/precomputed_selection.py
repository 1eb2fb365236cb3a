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

from configs import common
from configs import fashion_mnist_svp

TARGETS = {
    'fashion_mnist': lambda: common.model_section(
        'preact20', fashion_mnist_svp.FMNIST_LR_SCHEDULE),
    'cifar10': lambda: common.model_section('preact164',
                                            common.CIFAR_LR_SCHEDULE),
    'cifar100': lambda: common.model_section('preact164',
                                             common.CIFAR_LR_SCHEDULE),
    'amazon_review_polarity': lambda: common.text_model_section(
        common.AMAZON_SELECTORS['vdcnn29']),
    'amazon_review_full': lambda: common.text_model_section(
        common.AMAZON_SELECTORS['vdcnn29']),
}


def get_config(arg='fashion_mnist'):
  dataset = arg or 'fashion_mnist'
  if dataset not in TARGETS:
    raise ValueError(f'config argument {arg!r}: expected one of {tuple(TARGETS)}')
  return common.precomputed_config(dataset, TARGETS[dataset]())
