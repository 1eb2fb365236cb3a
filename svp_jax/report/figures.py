"""The active-learning report's figures: learning curves and time breakdown.

Drawn on an Agg canvas without pyplot: no display, no global figure state.
"""

from collections.abc import Sequence

from matplotlib import figure
from matplotlib.backends import backend_agg
import numpy as np

from svp_jax import results
from svp_jax.report import active
from svp_jax.report import stats
from svp_jax.report import text

_LINE_STYLE = {active.BASELINE: '--', active.PROXY: '-', active.RANDOM: ':'}


def _new_figure(width: float, height: float) -> figure.Figure:
  fig = figure.Figure(figsize=(width, height), layout='constrained')
  backend_agg.FigureCanvasAgg(fig)
  return fig


def plot_curves(groups: Sequence[active.Group], pool: int, path: str):
  """Target error (%) against labeled fraction, mean ± std band per group."""
  fig = _new_figure(7, 4.5)
  ax = fig.add_subplot()
  for g in groups:
    points = []
    for size in active.budgets(g.runs):
      mean, std = stats.mean_std(active.errors(g, size))
      points.append((100.0 * size / pool, mean, std or 0.0))
    if not points:
      continue
    x, mean, std = (np.array(v) for v in zip(*points))
    line, = ax.plot(x, mean, _LINE_STYLE[g.kind], marker='o',
                    label=f'{g.label}, {g.method} '
                    f'({text.count(len(g.runs), "run")})')
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(),
                    alpha=0.2, linewidth=0)
  ax.set_title(active.title(groups[0].runs))
  ax.set_xlabel('labeled fraction of the pool (%)')
  ax.set_ylabel('target top-1 error (%)')
  ax.grid(alpha=0.3)
  if ax.lines:
    ax.legend(fontsize='small')
  else:
    ax.text(0.5, 0.5, 'no target was trained', ha='center',
            transform=ax.transAxes)
  with results.atomic_open(path, 'wb') as f:
    fig.savefig(f, format='png', dpi=100)


def plot_time_breakdown(runs: Sequence[active.Run], path: str):
  """Stacked bars: seconds per phase, one bar per run."""
  fig = _new_figure(max(6.0, 0.7 * len(runs) + 3), 4.5)
  ax = fig.add_subplot()
  x = np.arange(len(runs))
  bottom = np.zeros(len(runs))
  for part in active.TIME_PARTS:
    heights = np.array([active.time_breakdown(r)[part] for r in runs])
    ax.bar(x, heights, width=0.6, bottom=bottom,
           label=part.removesuffix('_seconds').replace('_', ' '))
    bottom += heights
  ax.set_xticks(x, [r.name + ('' if r.complete else ' (partial)')
                    + (' (shared)' if r.shared else '') for r in runs],
                rotation=30, ha='right', fontsize='small')
  ax.set_xlim(-1, len(runs))
  ax.set_title(active.title(runs))
  ax.set_ylabel('seconds (all completed rounds)')
  ax.legend(fontsize='small')
  with results.atomic_open(path, 'wb') as f:
    fig.savefig(f, format='png', dpi=100)
