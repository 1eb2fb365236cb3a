"""The default run: SVP on real Fashion-MNIST, sized for a 2-core CPU.

  python main.py --config=configs/fashion_mnist_svp.py[:METHOD][,baseline|,fewer_epochs][,quick]

A cheap proxy (pre-activation ResNet8, 15 epochs) selects by least confidence
(or METHOD) for a pre-activation ResNet20 target (15 epochs). Pool: the
60,000 training images; 1,000 labeled at random, then +1,000 and +2,000
(1.7% -> 3.3% -> 6.7% of the pool); the target is trained from scratch and
tested on the 10,000 test images after every round. `baseline` makes the
target its own selector (the runtime SVP is compared against);
`fewer_epochs` selects with the target's architecture trained for 5 epochs
instead of 15 (the paper's other kind of proxy); `proxy` (the default)
is the ResNet8. Recipe: configs/fashion_mnist.py.
Measured on the 2-core CPU: see README ("The default run") and the study in
docs/results/fashion_mnist_svp_study/ and, at 2% -> 10% -> 20% of the
pool, docs/results/fashion_mnist_svp_20pct/.
"""

from configs import common
from configs import fashion_mnist

SELECTORS = {
    'proxy': ('preact8', fashion_mnist.SVP_LR_SCHEDULE),
    'baseline': (fashion_mnist.TARGET, fashion_mnist.SVP_LR_SCHEDULE),
    'fewer_epochs': (fashion_mnist.TARGET,
                     fashion_mnist.FEWER_EPOCHS_LR_SCHEDULE),
}
ARGUMENTS = common.Arguments(
    method=common.active_method(),
    selector=common.Choice(tuple(SELECTORS), 'proxy', 'SELECTOR'),
    quick=common.FLAG)


def get_config(arg=None):
  args = ARGUMENTS.parse(arg)
  config = common.active_config(
      fashion_mnist.DATASET,
      common.model_section(*SELECTORS[args.selector]),
      fashion_mnist.svp_target_section(), args.method,
      # Floats, like the fractions they may be overridden with.
      initial_subset=1000.0, rounds=(1000.0, 2000.0))
  return common.make_active_quick(config) if args.quick else config
