"""The default run: a pre-activation ResNet20 on real Fashion-MNIST, on CPU.

  python main.py --config=configs/fashion_mnist_resnet20.py --workdir=workdirs/fmnist

Full 60,000 training images, tested on the 10,000 test images. The recipe is
the CIFAR one (batch 128, SGD momentum 0.9, weight decay 5e-4, 4-pixel crop +
flip) on a schedule shortened to fit a 2-core CPU: 1@0.01, 2@0.1, 1@0.01,
1@0.001 (5 epochs).  Expected on a 2-core CPU: about 91-92% test accuracy.
Argument `quick`: preact8, 2 epochs on 2,000 / 1,000 images (plumbing check).
Fashion-MNIST comes from the Debian package dataset-fashion-mnist (BUILD.md).
"""

from configs import common


def get_config(arg=None):
  config = common.base_config(
      'fashion_mnist', 'preact20',
      ((1, 0.01), (2, 0.1), (1, 0.01), (1, 0.001)))
  config.train.eval_every = 1
  if arg == 'quick':
    config.model.name = 'preact8'
    common.make_quick(config)
  elif arg:
    raise ValueError(f'config argument {arg!r}: allowed: quick or nothing')
  return config
