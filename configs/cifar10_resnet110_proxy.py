"""CIFAR10, SVP: a ResNet110 proxy selects for a ResNet164 target (Table 1).

  python main.py --config=configs/cifar10_resnet110_proxy.py[:METHOD][,quick]

METHOD: least_confidence (default), kcenters, entropy, margin or random.
The paper's schedule and the full 181-epoch recipe (configs/cifar.py).
Expected (docs/reference.md): a 1.8x-1.9x data-selection speed-up over
cifar10_resnet164_baseline.py by least confidence, with target error
within 1 std of the baseline's.
`quick`: a CPU plumbing run (3,000-image pool, 1 epoch per model).
"""

from configs import cifar

ARGUMENTS = cifar.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return cifar.active_config('cifar10', 'preact110', arg)
