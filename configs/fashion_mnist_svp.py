"""The default run: SVP on real Fashion-MNIST, sized for a 2-core CPU.

  python main.py --config=configs/fashion_mnist_svp.py[:METHOD][,baseline|,fewer_epochs][,quick]

A cheap proxy (pre-activation ResNet8, 15 epochs) selects by least confidence
(or METHOD) for a pre-activation ResNet20 target (15 epochs). Pool: the
60,000 training images; 1,000 labeled at random, then +1,000 and +2,000
(1.7% -> 3.3% -> 6.7% of the pool); the target is trained from scratch and
tested on the 10,000 test images after every round. `baseline` makes the
target its own selector (the runtime SVP is compared against);
`fewer_epochs` selects with the target's architecture trained for 5 epochs
instead of 15 (the paper's other kind of proxy). Recipe: batch 128, SGD
momentum 0.9, weight decay 5e-4, crop + flip.
Measured on the 2-core CPU: see README ("The default run") and the study in
docs/results/fashion_mnist_svp_study/.
"""

from configs import common

FMNIST_LR_SCHEDULE = ((1, 0.01), (9, 0.1), (5, 0.01))  # 15 epochs.
FMNIST_FEWER_EPOCHS_LR_SCHEDULE = ((1, 0.01), (3, 0.1), (1, 0.01))  # 5.
SELECTORS = {
    'proxy': ('preact8', FMNIST_LR_SCHEDULE),
    'baseline': ('preact20', FMNIST_LR_SCHEDULE),
    'fewer_epochs': ('preact20', FMNIST_FEWER_EPOCHS_LR_SCHEDULE),
}


def get_config(arg=None):
  parts = [p for p in (arg or '').split(',') if p]
  kinds = [p for p in parts if p in ('baseline', 'fewer_epochs')]
  if len(kinds) > 1:
    raise ValueError(f'config argument {arg!r}: choose one of baseline, '
                     'fewer_epochs (or neither, for the ResNet8 proxy)')
  quick = 'quick' in parts
  method, _ = common.parse_active_arg(
      ','.join(p for p in parts if p not in ('baseline', 'fewer_epochs',
                                             'quick')))
  selector, selector_schedule = SELECTORS[kinds[0] if kinds else 'proxy']
  config = common.active_config(
      'fashion_mnist', common.model_section(selector, selector_schedule),
      common.model_section('preact20', FMNIST_LR_SCHEDULE), method,
      # Floats, like the fractions they may be overridden with.
      initial_subset=1000.0, rounds=(1000.0, 2000.0))
  if quick:
    common.make_active_quick(config)
  return config
