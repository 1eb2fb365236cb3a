"""python -m svp_jax.report RUN_DIR [RUN_DIR ...] --out=DIR (see __init__)."""

from absl import app

from svp_jax.report import cli

if __name__ == '__main__':
  cli.define_flags()
  app.run(cli.main)
