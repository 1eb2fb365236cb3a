"""Building blocks of the Fashion-MNIST configs (not a config: no get_config).

The CIFAR recipe (batch 128, SGD momentum 0.9, weight decay 5e-4, 4-pixel
crop + flip) on schedules shortened to fit a 2-core CPU. Fashion-MNIST
comes from the Debian package dataset-fashion-mnist (BUILD.md).
"""

from configs import common

DATASET = 'fashion_mnist'
# SVP's selectors and target (fashion_mnist_svp.py): 15 epochs.
SVP_LR_SCHEDULE = ((1, 0.01), (9, 0.1), (5, 0.01))
# The fewer-epochs proxy: the target's architecture for 5 epochs.
FEWER_EPOCHS_LR_SCHEDULE = ((1, 0.01), (3, 0.1), (1, 0.01))
# A ResNet20 on all the data or on a core-set: 5 epochs.
SHORT_LR_SCHEDULE = ((1, 0.01), (2, 0.1), (1, 0.01), (1, 0.001))
# The core-set proxy (ResNet8): 3 epochs.
CORESET_PROXY_LR_SCHEDULE = ((1, 0.01), (1, 0.1), (1, 0.01))
TARGET = 'preact20'


def svp_target_section():
  """The target of fashion_mnist_svp.py: ResNet20, 15 epochs."""
  return common.model_section(TARGET, SVP_LR_SCHEDULE)
