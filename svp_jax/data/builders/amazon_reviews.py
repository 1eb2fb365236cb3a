"""Amazon Review Polarity / Full (and Rotten Tomatoes) from Zhang's CSV files.

TFDS has no builder for the Zhang et al. 2015 CSV archives, and they cannot
be downloaded here, so this builder reads them from manual_dir (see
`svp_jax.data.zhang_csv` for the layouts it accepts). Its features are `Text`
and `ClassLabel` only, so it prepares as array_record with no TensorFlow.

Configs (TFDS names `amazon_reviews/<config>`):
  amazon_review_polarity  2 classes (negative, positive)
  amazon_review_full      5 classes (1..5 stars)
  rotten_tomatoes         2 classes (rotten, fresh): the offline stand-in,
                          written in the same layout by
                          `svp_jax.data.rotten_tomatoes`.

Example i of a split is line i of its CSV file: examples are keyed by line
number and shuffling is disabled, under which TFDS writes them sorted by key.
Escaped new lines are unescaped; labels are 0-based.

Importing this module registers the TFDS name `amazon_reviews`.
"""

import dataclasses

import tensorflow_datasets as tfds

from svp_jax.data import zhang_csv


@dataclasses.dataclass(eq=False)
class ZhangCsvConfig(tfds.core.BuilderConfig):
  """A builder config naming one `zhang_csv.DATASETS` entry."""


class AmazonReviews(tfds.core.GeneratorBasedBuilder):
  """Review text classification in Zhang et al.'s CSV layout."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}
  BUILDER_CONFIGS = [
      ZhangCsvConfig(name=d.name, description=d.description)
      for d in zhang_csv.DATASETS.values()
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put <config>_csv.tar.gz (e.g. amazon_review_polarity_csv.tar.gz) in '
      'manual_dir, or its extracted train.csv and test.csv, either in '
      'manual_dir/<config>_csv/ or in manual_dir itself. For '
      'rotten_tomatoes: python -m svp_jax.data.rotten_tomatoes '
      '--out_dir=<manual_dir>.')

  @property
  def _dataset(self) -> zhang_csv.CsvDataset:
    return zhang_csv.csv_dataset(self.builder_config.name)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self._dataset.description,
        features=tfds.features.FeaturesDict({
            'title': tfds.features.Text(),
            'text': tfds.features.Text(),
            'label': tfds.features.ClassLabel(
                names=self._dataset.class_names),
        }),
        supervised_keys=('text', 'label'),
        homepage='https://arxiv.org/abs/1509.01626',
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    source = zhang_csv.find_source(str(dl_manager.manual_dir), self._dataset)
    return {split: self._generate_examples(source, split)
            for split in zhang_csv.SPLITS}

  def _generate_examples(self, source: zhang_csv.Source, split: str):
    rows = zhang_csv.read_rows(source, self._dataset, split)
    for line, (label, title, body) in enumerate(rows):
      yield line, {'title': title, 'text': body, 'label': label}
