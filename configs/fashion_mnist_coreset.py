"""Core-set via proxy on real Fashion-MNIST, sized for a 2-core CPU.

  python main.py --config=configs/fashion_mnist_coreset.py[:METHOD][,quick]

A pre-activation ResNet8 proxy trains on all 60,000 training images for 3
epochs (forgetting events counted in every minibatch), keeps 30,000 (50%) by
METHOD (default forgetting_events; k-centers seeds 1,000 random points), and a
ResNet20 target trains on them for 5 epochs and is tested on the 10,000 test
images. Run with `random`, and the full-data train config
(fashion_mnist_resnet20.py), for comparison.
"""

from configs import common

PROXY_LR_SCHEDULE = ((1, 0.01), (1, 0.1), (1, 0.01))
TARGET_LR_SCHEDULE = ((1, 0.01), (2, 0.1), (1, 0.01), (1, 0.001))


def get_config(arg=None):
  method, quick = common.parse_coreset_arg(arg)
  config = common.coreset_config(
      'fashion_mnist', common.model_section('preact8', PROXY_LR_SCHEDULE),
      common.model_section('preact20', TARGET_LR_SCHEDULE), method,
      subset_size=0.5)
  return common.make_coreset_quick(config) if quick else config
