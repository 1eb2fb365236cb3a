"""The default run: SVP on real Fashion-MNIST, sized for a 2-core CPU.

  python main.py --config=configs/fashion_mnist_svp.py[:METHOD][,baseline][,quick]

A cheap proxy (pre-activation ResNet8, 15 epochs) selects by least confidence
(or METHOD) for a pre-activation ResNet20 target (15 epochs). Pool: the
60,000 training images; 1,000 labeled at random, then +1,000 and +2,000
(1.7% -> 3.3% -> 6.7% of the pool); the target is trained from scratch and
tested on the 10,000 test images after every round. `baseline` makes the
target its own selector (the runtime SVP is compared against). Recipe:
batch 128, SGD momentum 0.9, weight decay 5e-4, crop + flip.
Measured on the 2-core CPU: see README ("The default run").
"""

from configs import common

FMNIST_LR_SCHEDULE = ((1, 0.01), (9, 0.1), (5, 0.01))  # 15 epochs.


def get_config(arg=None):
  parts = [p for p in (arg or '').split(',') if p]
  baseline = 'baseline' in parts
  quick = 'quick' in parts
  method, _ = common.parse_active_arg(
      ','.join(p for p in parts if p not in ('baseline', 'quick')))
  selector = 'preact20' if baseline else 'preact8'
  config = common.active_config(
      'fashion_mnist', common.model_section(selector, FMNIST_LR_SCHEDULE),
      common.model_section('preact20', FMNIST_LR_SCHEDULE), method,
      # Floats, like the fractions they may be overridden with.
      initial_subset=1000.0, rounds=(1000.0, 2000.0))
  if quick:
    common.make_active_quick(config)
  return config
