"""Trains a target on the selections stored by an earlier run.

  python main.py --config=configs/precomputed_selection.py:DATASET \
      --config.precomputed.run_dir=workdirs/fashion_mnist_svp \
      [--config.precomputed.sizes='(2000, 4000)']

DATASET: fashion_mnist (ResNet20, the Fashion-MNIST SVP recipe), cifar10 or
cifar100 (ResNet164, the 181-epoch recipe). Reads every labeled-index file
of the run directory (svp_jax's, or the reference's `selector/<n>/labelled_<n>.index`)
and trains the target from scratch on each chosen size; target.csv as usual.
"""

from configs import common
from configs import fashion_mnist_svp

TARGETS = {
    'fashion_mnist': ('preact20', fashion_mnist_svp.FMNIST_LR_SCHEDULE),
    'cifar10': ('preact164', common.CIFAR_LR_SCHEDULE),
    'cifar100': ('preact164', common.CIFAR_LR_SCHEDULE),
}


def get_config(arg='fashion_mnist'):
  if (arg or 'fashion_mnist') not in TARGETS:
    raise ValueError(f'config argument {arg!r}: expected one of {tuple(TARGETS)}')
  model, schedule = TARGETS[arg or 'fashion_mnist']
  return common.precomputed_config(arg or 'fashion_mnist',
                                   common.model_section(model, schedule))
