"""Amazon Review Full core-set via proxy: 60% kept for a VDCNN29 target.

  python main.py --config=configs/amazon_review_full_coreset.py[:ARG] \
      --config.data.manual_dir=DIR

DIR holds Zhang et al.'s amazon_review_full_csv.tar.gz or its CSVs.

ARG: [PROXY][,METHOD|all][,quick], e.g. `vdcnn9,kcenters`. PROXY: fasttext
(default), vdcnn9 or vdcnn29 (VDCNN29 selecting for itself); the VDCNN
variant is maxpool (--config.selector.model.name=vdcnn9-conv etc. to change
it). METHOD: entropy (default), least_confidence, margin, forgetting_events,
kcenters (seeded with 1,000 random points, counted in the subset) or random;
`all` ranks by all six from one trained proxy (a target per method). The
proxy trains once on the whole training split and keeps 1,800,000 of the
3,000,000 reviews; a VDCNN29 trains from scratch on them.
Models and recipes: configs/text.py (model_section); the data:
BUILD.md ("Text datasets"). `quick`: a CPU plumbing run (2,000-document
pool, keep 500, 1 epoch each, tiny models).
"""

from configs import text

ARGUMENTS = text.CORESET_ARGUMENTS


def get_config(arg=None):
  return text.amazon_coreset_config('amazon_review_full', arg)
