"""CIFAR10, SVP with a fewer-epochs proxy: ResNet164 trained for 50 epochs.

  python main.py --config=configs/cifar10_resnet164_fewer_epochs_proxy.py[:METHOD][,quick]

The selector has the target's architecture but the paper's shortened
schedule (1@0.01, 45@0.1, 4@0.01: 50 epochs instead of 181); the target
is a ResNet164 trained with the full recipe at every budget.
"""

from configs import cifar

ARGUMENTS = cifar.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return cifar.active_config(
      'cifar10', cifar.TARGET, arg,
      selector_lr_schedule=cifar.FEWER_EPOCHS_LR_SCHEDULE)
