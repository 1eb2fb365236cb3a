"""CIFAR100, SVP: a ResNet56 proxy selects for a ResNet164 target (Table 1).

  python main.py --config=configs/cifar100_resnet56_proxy.py[:METHOD][,quick]

METHOD: least_confidence (default), kcenters, entropy, margin or random.
The paper's schedule and the full 181-epoch recipe (configs/cifar.py).
Expected (docs/reference.md): speed-ups like CIFAR10's
(cifar10_resnet56_proxy.py) over cifar100_resnet164_baseline.py.
`quick`: a CPU plumbing run (3,000-image pool, 1 epoch per model).
"""

from configs import cifar

ARGUMENTS = cifar.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return cifar.active_config('cifar100', 'preact56', arg)
