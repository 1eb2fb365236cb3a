"""CIFAR100 baseline: ResNet164 selects for itself (Table 1's baseline row).

  python main.py --config=configs/cifar100_resnet164_baseline.py[:METHOD][,quick]

The selector is the target, so each round trains one ResNet164 (181 epochs)
whose last-epoch weights both give the target accuracy at that budget and
score the pool for the next round. Schedule as the proxy configs. This is the
runtime every SVP speed-up is measured against.
"""

from configs import cifar

ARGUMENTS = cifar.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return cifar.active_config('cifar100', cifar.TARGET, arg)
