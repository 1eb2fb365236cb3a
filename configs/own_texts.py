"""SVP on your own texts: a CSV, TSV or JSON Lines table (or an .npz).

  python main.py --config=configs/own_texts.py[:METHOD][,fasttext_target][,quick] \
      --config.data.path=FILE.csv

FILE has a header row (CSV/TSV) or one JSON object a line, with a `text` and
a `label` column (--config.data.text_column / label_column name others); an
empty label marks an unlabeled example. 20% of each class is held out as the
test split, drawn with config.seed. README, "On your own data".

fastText selects by least confidence (or METHOD) for VDCNN9 on 256
characters, the recipe of configs/rotten_tomatoes_svp.py (sized for short
snippets; --config.target.model.document_length=1014 for long documents),
on the paper's schedule: 2% labeled at random, then +8% and +10% per round
up to 50%. `fasttext_target`: fastText selects for itself.
"""

from configs import common
from configs import rotten_tomatoes_svp
from configs import text

ARGUMENTS = common.Arguments(method=common.active_method(),
                             fasttext_target=common.FLAG,
                             label=common.FLAG, quick=common.FLAG)


def get_config(arg=None):
  args = ARGUMENTS.parse(arg)
  selector = text.model_section('fasttext',
                                rotten_tomatoes_svp.FASTTEXT_LR_SCHEDULE)
  if args.fasttext_target:
    target = text.model_section('fasttext',
                                rotten_tomatoes_svp.FASTTEXT_LR_SCHEDULE)
  else:
    target = text.model_section(rotten_tomatoes_svp.TARGET)
    target.model.document_length = rotten_tomatoes_svp.DOCUMENT_LENGTH
  config = common.own_files_active_config(selector, target, args.method)
  if args.quick:
    text.make_active_quick(config)
  return common.make_labeling(config) if args.label else config
