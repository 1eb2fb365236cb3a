"""CIFAR10 core-set via proxy: a ResNet20 keeps 50% for a ResNet164 target.

  python main.py --config=configs/cifar10_resnet20_coreset.py[:METHOD|all][,quick]

METHOD: forgetting_events (default), least_confidence, entropy, margin,
kcenters (seeded with 1,000 random points, counted in the subset) or random;
`all` ranks by all six from one trained proxy (a target per method).
The ResNet20 proxy trains on all 50,000 images with the 181-epoch recipe
(forgetting events counted over every minibatch of every epoch), keeps 25,000,
and a ResNet164 trains from scratch on them. The published SVP paper reports
that ResNet20-selected core-sets keep ResNet164's accuracy at 50% of CIFAR10
with forgetting events while cutting end-to-end time.
`quick`: a CPU plumbing run (2,000-image pool, keep 500, 1 epoch each).
"""

from configs import cifar

ARGUMENTS = cifar.CORESET_ARGUMENTS


def get_config(arg=None):
  return cifar.coreset_config('cifar10', arg)
