"""CIFAR100, SVP: a ResNet56 proxy selects for a ResNet164 target (Table 1).

  python main.py --config=configs/cifar100_resnet56_proxy.py[:METHOD][,quick]

METHOD: least_confidence (default), kcenters, entropy, margin or random.
Schedule (the paper's): 2% of the 50,000-image pool at random (1,000), then
+8% (4,000) and +10% (5,000) per round up to 50%; the selector is retrained
from scratch each round with the full 181-epoch recipe, the target trained at
every budget. The paper reports the ResNet56 proxy's data-selection speed-up
over the ResNet164 baseline with target error within 1 std of the baseline's
(REFERENCE.md: ResNet20 3.8x-7.2x, ResNet56 2.6x-3.1x, ResNet110 1.8x-1.9x for
least confidence on CIFAR10; CIFAR100 similar).
`quick`: a CPU plumbing run (3,000-image pool, 1 epoch per model).
"""

from configs import common


def get_config(arg=None):
  return common.cifar_active_config('cifar100', 'preact56', arg)
