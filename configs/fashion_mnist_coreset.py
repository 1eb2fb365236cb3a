"""Core-set via proxy on real Fashion-MNIST, sized for a 2-core CPU.

  python main.py --config=configs/fashion_mnist_coreset.py[:METHOD|all][,quick]

A pre-activation ResNet8 proxy trains once on all 60,000 training images for
3 epochs (forgetting events counted in every minibatch when
forgetting_events is among the methods); each method keeps 6,000 images
(10%) from it (k-centers: 1,000 random seeds included), and a ResNet20 target
trains on each subset for 5 epochs (the recipe of fashion_mnist_resnet20.py)
and is tested on the 10,000 test images. METHOD: forgetting_events (default),
least_confidence, entropy, margin, kcenters or random; `all` ranks by all six
from the one proxy. Results per method in <workdir>/<method>/, the comparison
in <workdir>/summary.md. Measured on a 2-core CPU shared with other jobs
(docs/results/fashion_mnist_coreset_study): the proxy 3-6 min (once),
scoring + ranking 23-38 s per method, each target about 2.5 min; `all`
about 23 min. scripts/study_fashion_mnist_coreset.sh runs
`all` for 3 seeds plus the full-data target (fashion_mnist_resnet20.py, the
same recipe on all 60,000 images) and writes the report.
`quick`: a CPU plumbing run (2,000-image pool, keep 500, 1 epoch each).
"""

from configs import common
from configs import fashion_mnist

ARGUMENTS = common.Arguments(method=common.coreset_method(),
                             quick=common.FLAG)


def get_config(arg=None):
  args = ARGUMENTS.parse(arg)
  config = common.coreset_config(
      fashion_mnist.DATASET,
      common.model_section('preact8', fashion_mnist.CORESET_PROXY_LR_SCHEDULE),
      common.model_section(fashion_mnist.TARGET,
                           fashion_mnist.SHORT_LR_SCHEDULE),
      common.coreset_methods(args.method), subset_size=0.1)
  return common.make_coreset_quick(config) if args.quick else config
