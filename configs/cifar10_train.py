"""Trains one pre-activation ResNet on CIFAR10 with the reference recipe.

  python main.py --config=configs/cifar10_train.py:preact164 --workdir=/tmp/c10

Argument: MODEL[,quick] with MODEL one of preact20/56/110/164 (default
preact20). Recipe (docs/reference.md): 181 epochs at 1@0.01, 90@0.1, 45@0.01,
45@0.001; batch 128; SGD momentum 0.9; weight decay 5e-4; crop + flip.
Expected (published full-data results for these nets, roughly): about 92% test accuracy for
preact20 up to about 95% for preact164; preact20 trains in about 30 minutes
and preact164 in about 4 hours on one modern GPU.
`quick` is a CPU plumbing check (2 epochs, 2,000 train / 1,000 test images).
CIFAR10 must be prepared first: BUILD.md, "Datasets".
"""

from configs import cifar

ARGUMENTS = cifar.TRAIN_ARGUMENTS


def get_config(arg=None):
  return cifar.train_config('cifar10', arg)
