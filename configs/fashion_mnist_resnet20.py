"""The default run: a pre-activation ResNet20 on real Fashion-MNIST, on CPU.

  python main.py --config=configs/fashion_mnist_resnet20.py --workdir=workdirs/fmnist

Full 60,000 training images, tested on the 10,000 test images. The recipe
is the CIFAR one on a schedule shortened to fit a 2-core CPU: 1@0.01,
2@0.1, 1@0.01, 1@0.001 (5 epochs; configs/fashion_mnist.py). Expected on a
2-core CPU: about 91-92% test accuracy.
Argument `quick`: preact8, 2 epochs on 2,000 / 1,000 images (plumbing check).
"""

from configs import common
from configs import fashion_mnist

ARGUMENTS = common.Arguments(quick=common.FLAG)


def get_config(arg=None):
  args = ARGUMENTS.parse(arg)
  config = common.base_config(fashion_mnist.DATASET, fashion_mnist.TARGET,
                              fashion_mnist.SHORT_LR_SCHEDULE)
  config.train.eval_every = 1
  if args.quick:
    config.model.name = 'preact8'
    common.make_quick(config)
  return config
