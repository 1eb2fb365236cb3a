"""Pure training, evaluation and prediction steps, and the epoch loop over them.

The steps are jitted once per model and shape: the model and its step settings
are static arguments, batches are padded to a fixed size with a `mask`, and the
learning rate is a traced argument, so changing epochs, rounds or labeled-set
sizes never recompiles. Batches are sharded over the mesh's `data` axis and
the state is replicated; under `jit`, BatchNorm statistics are therefore over
the global batch, as on one device.

What varies between models (the step's update, where a batch lives, the
learning rate of each step) comes from the model's `TrainingHooks`
(`hooks_for`): the loop below names no model.
"""

import collections
from collections.abc import Callable, Iterator, Sequence
import dataclasses
import functools
import time
from typing import Any

from absl import logging
from flax import struct
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import numpy as np
import optax

from svp_jax import data
from svp_jax import preemption
from svp_jax import sharding

# Purposes folded into a run's key, so each random stream is independent.
_SHUFFLE, _AUGMENT, _INIT = 0, 1, 2

# Long epochs also log their progress every this many seconds.
PROGRESS_SECONDS = 60.0

# How often each step was traced (the Python body runs only when tracing):
# tests use it to show that each step compiles once per shape.
TRACE_COUNTS = collections.Counter()


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Everything a step needs besides arrays; hashable, so it is static."""

  num_classes: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  momentum: float = 0.9
  weight_decay: float = 5e-4
  label_smoothing: float = 0.0
  augment: bool = False
  crop_padding: int = 4
  # 'image': pixels, normalised (and augmented) on the device; 'tokens':
  # integer ids (text), fed to the model as they are.
  inputs: str = 'image'


def step_config(train_config: Any, info: data.DatasetInfo) -> StepConfig:
  """The StepConfig of a config's `train` section for dataset `info`."""
  return StepConfig(
      num_classes=info.num_classes, mean=tuple(info.mean), std=tuple(info.std),
      momentum=train_config.momentum, weight_decay=train_config.weight_decay,
      label_smoothing=train_config.label_smoothing,
      # Host-augmented data (ImageNet) arrives cropped and flipped.
      augment=train_config.augment and not info.host_augmentation,
      inputs='tokens' if info.modality == 'text' else 'image')


@struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any


def make_optimizer(cfg: StepConfig) -> optax.GradientTransformation:
  """PyTorch's SGD(momentum, weight_decay) without the learning rate.

  Coupled L2 is added to the gradient of every parameter, then heavy-ball
  momentum `buf = m * buf + g` (no dampening, not Nesterov); the train step
  multiplies by the epoch's learning rate, as PyTorch does.
  """
  return optax.chain(
      optax.add_decayed_weights(cfg.weight_decay),
      optax.trace(decay=cfg.momentum, nesterov=False))


def _optimizer_state(params: Any, cfg: StepConfig) -> Any:
  return make_optimizer(cfg).init(params)


def init_state(key: jax.Array, model: Any, image_shape: Sequence[int],
               cfg: StepConfig, mesh: Mesh) -> TrainState:
  """Fresh parameters and optimizer state, replicated over `mesh`.

  The initialiser is jitted once per (model, shape, cfg, mesh) and reused,
  so only a process's first fit of a model pays for tracing and compiling
  it (issue 23: 5-7 s on every fit of a ResNet8 on a 2-core CPU).
  """
  return _jitted_init(model, tuple(image_shape), cfg, mesh)(key)


@functools.lru_cache(maxsize=64)
def _jitted_init(model: Any, image_shape: tuple[int, ...], cfg: StepConfig,
                 mesh: Mesh) -> Callable[[jax.Array], TrainState]:
  dtype = jnp.int32 if cfg.inputs == 'tokens' else jnp.float32

  def init(key):
    TRACE_COUNTS['init_state'] += 1
    variables = model.init(key, jnp.zeros((1, *image_shape), dtype),
                           train=False)
    params = variables['params']
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        batch_stats=variables.get('batch_stats', {}),
        opt_state=hooks_for(model).init_opt_state(params, cfg))

  return jax.jit(init, out_shardings=sharding.replicated(mesh))


def abstract_state(model: Any, image_shape: Sequence[int], cfg: StepConfig,
                   mesh: Mesh) -> TrainState:
  """`init_state`'s shapes, dtypes and shardings, computing nothing.

  The template a checkpointed state is restored into.
  """
  shapes = jax.eval_shape(
      functools.partial(init_state, model=model, image_shape=image_shape,
                        cfg=cfg, mesh=mesh), jax.random.key(0))
  replicated = sharding.replicated(mesh)
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
      shapes)


def _preprocess(images, key, cfg: StepConfig, train: bool):
  if cfg.inputs == 'tokens':
    return images
  if train and cfg.augment:
    images = data.random_crop_flip(key, images, cfg.crop_padding)
  return data.normalize(images, cfg.mean, cfg.std)


def batch_metrics(logits, labels, mask, per_example_loss):
  """Sums (not means), so metrics of several batches simply add up."""
  mask = mask.astype(jnp.float32)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return {'loss': jnp.sum(per_example_loss * mask),
          'correct': jnp.sum(correct * mask), 'count': jnp.sum(mask)}


def _cross_entropy(logits, labels, cfg: StepConfig):
  targets = jax.nn.one_hot(labels, cfg.num_classes)
  if cfg.label_smoothing:
    targets = optax.smooth_labels(targets, cfg.label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def _sgd_step(state: TrainState, batch: dict[str, jax.Array], lr: jax.Array,
              key: jax.Array, model: Any, cfg: StepConfig):
  """One SGD step; also returns which examples the step's forward got right."""
  TRACE_COUNTS['train_step'] += 1
  return hooks_for(model).step(state, batch, lr, key, model, cfg)


def _dense_sgd_step(state: TrainState, batch: dict[str, jax.Array],
                    lr: jax.Array, key: jax.Array, model: Any,
                    cfg: StepConfig):
  """`make_optimizer`'s SGD on the gradient of the batch's mean loss."""
  images = _preprocess(batch['image'], jax.random.fold_in(key, state.step),
                       cfg, train=True)
  mask = batch['mask']

  def loss_fn(params):
    (logits, _), updates = model.apply(
        {'params': params, 'batch_stats': state.batch_stats}, images,
        train=True, mask=mask, mutable=['batch_stats'])
    per_example = _cross_entropy(logits, batch['label'], cfg)
    # Mean over the real examples only, like PyTorch on a short last batch.
    loss = jnp.sum(per_example * mask) / jnp.maximum(jnp.sum(mask), 1.0)
    return loss, (logits, per_example, updates['batch_stats'])

  grads, (logits, per_example, batch_stats) = jax.grad(
      loss_fn, has_aux=True)(state.params)
  updates, opt_state = make_optimizer(cfg).update(
      grads, state.opt_state, state.params)
  params = jax.tree.map(lambda p, u: p - lr * u, state.params, updates)
  new_state = state.replace(step=state.step + 1, params=params,
                            batch_stats=batch_stats, opt_state=opt_state)
  correct = jnp.argmax(logits, -1) == batch['label']
  return (new_state,
          batch_metrics(logits, batch['label'], mask, per_example), correct)


@functools.partial(
    jax.jit, static_argnames=('model', 'cfg'), donate_argnames=('state',))
def train_step(state: TrainState, batch: dict[str, jax.Array], lr: jax.Array,
               key: jax.Array, *, model: Any, cfg: StepConfig
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One SGD step on the real (mask=1) examples of a padded batch."""
  new_state, metrics, _ = _sgd_step(state, batch, lr, key, model, cfg)
  return new_state, metrics


# ----------------------------------------------------------------------------
# Forgetting events (Toneva et al. 2019), counted on the device.


def init_forgetting(num_examples: int, mesh: Mesh) -> dict[str, jax.Array]:
  """Per-example counters over the whole dataset, replicated."""
  return sharding.replicate(mesh, {
      'correct': np.zeros(num_examples, bool),  # At its latest minibatch.
      'learned': np.zeros(num_examples, bool),  # Ever classified correctly.
      'forgotten': np.zeros(num_examples, np.int32),  # correct -> incorrect.
  })


@functools.partial(
    jax.jit, static_argnames=('model', 'cfg'),
    donate_argnames=('state', 'forgetting'))
def forgetting_train_step(state: TrainState, forgetting: dict[str, jax.Array],
                          batch: dict[str, jax.Array], lr: jax.Array,
                          key: jax.Array, *, model: Any, cfg: StepConfig):
  """`train_step` that also counts each example's forgetting events.

  An event is a correct -> incorrect transition between two consecutive
  minibatches that contain the example, judged by the training forward pass
  (as the reference does), in the same jitted step: no host round trip.
  """
  new_state, metrics, correct = _sgd_step(state, batch, lr, key, model, cfg)
  forgetting = update_forgetting(forgetting, batch['index'], batch['mask'],
                                 correct)
  return new_state, forgetting, metrics


def update_forgetting(forgetting: dict[str, jax.Array], index: jax.Array,
                      mask: jax.Array, correct: jax.Array
                      ) -> dict[str, jax.Array]:
  """Folds one minibatch's correctness into the per-example counters."""
  n = forgetting['correct'].shape[0]
  # Padding rows point past the end: reads give False, writes are dropped.
  index = jnp.where(mask > 0, index, n)

  def read(name):
    return forgetting[name].at[index].get(mode='fill', fill_value=0)

  was_correct = read('correct').astype(bool)
  return {
      'correct': forgetting['correct'].at[index].set(correct, mode='drop'),
      'learned': forgetting['learned'].at[index].set(
          read('learned').astype(bool) | correct, mode='drop'),
      'forgotten': forgetting['forgotten'].at[index].add(
          (was_correct & ~correct).astype(jnp.int32), mode='drop'),
  }


def forgetting_scores(forgetting: dict[str, jax.Array]) -> np.ndarray:
  """Events per example, +inf for never-learned ones (they rank first)."""
  learned = np.asarray(jax.device_get(forgetting['learned']))
  counts = np.asarray(jax.device_get(forgetting['forgotten']), np.float32)
  return np.where(learned, counts, np.inf).astype(np.float32)


@functools.partial(jax.jit, static_argnames=('model', 'cfg'))
def predict_step(state: TrainState, images: jax.Array, *, model: Any,
                 cfg: StepConfig) -> tuple[jax.Array, jax.Array]:
  """Logits and penultimate features with the running BatchNorm statistics."""
  TRACE_COUNTS['predict_step'] += 1
  x = _preprocess(images, None, cfg, train=False)
  return model.apply({'params': state.params, 'batch_stats': state.batch_stats},
                     x, train=False)


@functools.partial(jax.jit, static_argnames=('model', 'cfg'))
def eval_step(state: TrainState, batch: dict[str, jax.Array], *, model: Any,
              cfg: StepConfig) -> dict[str, jax.Array]:
  logits, _ = predict_step(state, batch['image'], model=model, cfg=cfg)
  per_example = _cross_entropy(logits, batch['label'], cfg)
  return batch_metrics(logits, batch['label'], batch['mask'], per_example)


# ----------------------------------------------------------------------------
# Host side: batches and the epoch loop.


def padded_batches(indices: np.ndarray, batch_size: int, mesh: Mesh,
                   rng: np.random.Generator | None = None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Yields (example indices, mask) batches of one fixed, device-divisible size.

  Shuffles with `rng` when given. The last partial batch is kept (as in the
  reference) and padded, with mask 0 marking the padding.
  """
  indices = np.asarray(indices)
  if rng is not None:
    indices = indices[rng.permutation(len(indices))]
  size = sharding.padded_size(batch_size, mesh)
  for start in range(0, len(indices), batch_size):
    chunk = indices[start:start + batch_size]
    mask = np.zeros(size, np.float32)
    mask[:len(chunk)] = 1.0
    yield np.resize(chunk, size), mask


def global_batch(mesh: Mesh, images: np.ndarray, labels: np.ndarray,
                 batch_indices: np.ndarray, mask: np.ndarray
                 ) -> dict[str, jax.Array]:
  """This process's rows of a batch, gathered on the host, as global arrays."""
  rows = data.process_slice(len(batch_indices))
  local = batch_indices[rows]
  return sharding.host_to_global(mesh, {
      'image': images[local], 'label': labels[local].astype(np.int32),
      'mask': mask[rows], 'index': local.astype(np.int32)})


def replicated_batch(mesh: Mesh, images: np.ndarray, labels: np.ndarray,
                     batch_indices: np.ndarray, mask: np.ndarray
                     ) -> dict[str, jax.Array]:
  """A whole batch on every device (each process gathers all its rows).

  fastText's batches (its hooks choose this): with the batch split over
  devices, XLA sums the scattered table updates with an all-reduce of the
  whole table (1.6 s a step at 10M buckets on 2 CPU devices, against 11 ms
  on one). A replicated batch makes every device apply the same few-row
  update to its copy instead.
  """
  host = {'image': images[batch_indices],
          'label': labels[batch_indices].astype(np.int32), 'mask': mask,
          'index': batch_indices.astype(np.int32)}
  everywhere = sharding.replicated(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, everywhere,
                                             lambda i: x[i]), host)


# ----------------------------------------------------------------------------
# Per-model training hooks.

# (state, batch, lr, key, model, cfg) -> (state, summed metrics, which
# examples the step's forward got right): the body of one jitted step.
StepFn = Callable[
    [TrainState, dict[str, jax.Array], jax.Array, jax.Array, Any, StepConfig],
    tuple[TrainState, dict[str, jax.Array], jax.Array]]
# (mesh, images, labels, batch indices, mask) -> the batch as global arrays.
BatchFn = Callable[
    [Mesh, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    dict[str, jax.Array]]


@dataclasses.dataclass(frozen=True)
class TrainingHooks:
  """What a model may change about how `train_model` trains it.

  A model class supplies its own as a `training_hooks` class attribute
  (`hooks_for` reads it); any other model trains by `DEFAULT_HOOKS`, the
  dense SGD of `make_optimizer`. Hooks belong to a model's class, not its
  fields: the jitted steps, cached by the static `model`, read them only
  when tracing.
  """

  step: StepFn = _dense_sgd_step
  make_batch: BatchFn = global_batch
  # (step of the run, steps in the run, the epoch's rate) -> this step's
  # rate; None: every step of an epoch takes the epoch's rate.
  step_lr: Callable[[int, int, float], float] | None = None
  # (params, cfg) -> the optimizer state `step` reads and updates.
  init_opt_state: Callable[[Any, StepConfig], Any] = _optimizer_state
  # `train` recipe settings `step` does not apply, which configs must
  # therefore set to 0 (validation checks), and why, for the error message.
  zero_settings: tuple[str, ...] = ()
  zero_reason: str = ''


DEFAULT_HOOKS = TrainingHooks()


def hooks_for(model: Any) -> TrainingHooks:
  """The training hooks of `model`: its own, or `DEFAULT_HOOKS`."""
  return getattr(model, 'training_hooks', DEFAULT_HOOKS)


def epochs_and_rates(lr_schedule: Sequence[Sequence[float]]) -> list[float]:
  """Expands ((epochs, lr), ...) into one learning rate per epoch."""
  return [float(lr) for epochs, lr in lr_schedule for _ in range(int(epochs))]


def evaluate(state: TrainState, model: Any, cfg: StepConfig,
             images: np.ndarray, labels: np.ndarray, batch_size: int,
             mesh: Mesh) -> dict[str, float]:
  """Loss and accuracy over every example of a split (pad + mask)."""
  totals = None
  for idx, mask in padded_batches(np.arange(len(labels)), batch_size, mesh):
    m = eval_step(state, global_batch(mesh, images, labels, idx, mask),
                  model=model, cfg=cfg)
    totals = m if totals is None else jax.tree.map(jnp.add, totals, m)
  totals = jax.device_get(totals)
  count = max(float(totals['count']), 1.0)
  return {'loss': float(totals['loss']) / count,
          'accuracy': float(totals['correct']) / count}


@dataclasses.dataclass
class TrainResult:
  state: TrainState  # After the last epoch.
  history: list[dict[str, float]]  # One metrics dict per epoch.
  forgetting: dict[str, jax.Array] | None = None  # If tracked.
  # Wall seconds of the training done before this process resumed it from a
  # checkpoint (0 if it did not).
  resumed_seconds: float = 0.0


def train_model(key: jax.Array, model: Any, cfg: StepConfig,
                images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                *, batch_size: int, lr_schedule: Sequence[Sequence[float]],
                mesh: Mesh,
                eval_data: tuple[np.ndarray, np.ndarray] | None = None,
                eval_every: int = 0, eval_batch_size: int = 512,
                log_prefix: str = 'train', on_epoch=None,
                track_forgetting: bool = False,
                checkpoints: preemption.TrainingCheckpoints | None = None
                ) -> TrainResult:
  """Trains a freshly initialised model on `images[indices]`.

  Everything random derives from `key`: initialisation, each epoch's
  shuffle, and each step's augmentation, so a run is reproducible.
  Evaluates on `eval_data` every `eval_every` epochs (0: only after the last).
  With `track_forgetting`, counts forgetting events of every example.
  The model's `TrainingHooks` (`hooks_for`) choose its step, where its
  batches live and each step's learning rate.

  With `checkpoints` (svp_jax.preemption) it resumes, saves and stops on
  request, ending bit for bit as a training never interrupted.
  """
  rates = epochs_and_rates(lr_schedule)
  run = _Run(key, model, cfg, images, labels, indices, batch_size, mesh,
             len(rates), log_prefix)
  progress = _starting_point(run, track_forgetting, checkpoints)
  began = time.perf_counter()

  def snapshot(state, forgetting, totals, epoch, step):
    return preemption.Progress(
        state, forgetting, totals, epoch, step, list(history),
        progress.seconds + time.perf_counter() - began)

  state, forgetting, history = (progress.state, progress.forgetting,
                                list(progress.history))
  first_step, totals = progress.step, progress.totals
  after_step = None if checkpoints is None else functools.partial(
      _save_if_due, checkpoints, snapshot, run.steps_per_epoch)
  for epoch in range(progress.epoch, len(rates)):
    lr = rates[epoch]
    start = time.perf_counter()
    state, forgetting, totals = _train_epoch(
        run, state, forgetting, epoch, lr, start, first_step=first_step,
        totals=totals, after_step=after_step)
    record = _epoch_record(epoch, lr, totals, start)
    first_step, totals = 0, None
    if eval_data is not None and (epoch + 1 == len(rates) or (
        eval_every and (epoch + 1) % eval_every == 0)):
      record.update(_test_metrics(state, model, cfg, eval_data,
                                  eval_batch_size, mesh))
    _log_epoch(log_prefix, len(rates), record)
    history.append(record)
    if on_epoch is not None:
      on_epoch(record)
    if checkpoints is not None:
      _save_after_epoch(checkpoints,
                        snapshot(state, forgetting, None, epoch + 1, 0),
                        len(rates))
  # A fresh training's progress has 0 seconds before this process.
  return TrainResult(state, history, forgetting, progress.seconds)


def _save_after_epoch(checkpoints: preemption.TrainingCheckpoints,
                      progress: preemption.Progress, num_epochs: int):
  """Always after the last epoch, so that a run stopped before its round
  ends need not train this again; otherwise when the policy asks on any
  process (a collective save must be taken by all)."""
  if progress.epoch == num_epochs:
    checkpoints.save(progress, 'training done')
  elif preemption.any_process((checkpoints.due(True, progress.epoch),))[0]:
    checkpoints.save(progress, 'schedule')


def _starting_point(run: '_Run', track_forgetting: bool,
                    checkpoints: preemption.TrainingCheckpoints | None
                    ) -> preemption.Progress:
  """The saved progress if there is one, else a fresh initialisation's
  (which is also the template a saved state is restored into)."""
  state = init_state(jax.random.fold_in(run.key, _INIT), run.model,
                     run.images.shape[1:], run.cfg, run.mesh)
  forgetting = (init_forgetting(len(run.images), run.mesh)
                if track_forgetting else None)
  fresh = preemption.Progress(state, forgetting, None, 0, 0, [], 0.0)
  return (checkpoints.restore(fresh) if checkpoints is not None else None
          ) or fresh


def _test_metrics(state: TrainState, model: Any, cfg: StepConfig,
                  eval_data: tuple[np.ndarray, np.ndarray], batch_size: int,
                  mesh: Mesh) -> dict[str, float]:
  metrics = evaluate(state, model, cfg, *eval_data, batch_size, mesh)
  return {'test_loss': metrics['loss'], 'test_accuracy': metrics['accuracy']}


def _log_epoch(log_prefix: str, num_epochs: int, record: dict[str, float]):
  logging.info('%s epoch %d/%d: %s', log_prefix, record['epoch'], num_epochs,
               ', '.join(f'{k}={v:.4g}' for k, v in record.items()
                         if k != 'epoch'))


def _save_if_due(checkpoints: preemption.TrainingCheckpoints, snapshot,
                 steps_per_epoch: int, state: TrainState,
                 forgetting: dict[str, jax.Array] | None,
                 totals: dict[str, jax.Array], epoch: int, steps_done: int):
  """After a step: saves if a stop was requested or a save is due by time.

  On several processes the decision is taken together, every
  preemption.SYNC_EVERY_STEPS steps, so that all save and stop at one step.
  """
  several = jax.process_count() > 1
  if several and (epoch * steps_per_epoch + steps_done) % (
      preemption.SYNC_EVERY_STEPS) != 0:
    return
  stop, due = preemption.stop_requested(), checkpoints.due(False, epoch)
  if several:
    stop, due = preemption.any_process((stop, due))
  if not (stop or due):
    return
  checkpoints.save(snapshot(state, forgetting, totals, epoch, steps_done),
                   'stop requested' if stop else 'time')
  if stop:
    raise preemption.Preempted(
        f'stopped in {checkpoints.what} at epoch {epoch + 1}, step '
        f'{steps_done} of {steps_per_epoch}, after saving it')


@dataclasses.dataclass(frozen=True, eq=False)
class _Run:
  """What every epoch of one `train_model` call shares."""

  key: jax.Array
  model: Any
  cfg: StepConfig
  images: np.ndarray
  labels: np.ndarray
  indices: np.ndarray
  batch_size: int
  mesh: Mesh
  num_epochs: int
  log_prefix: str

  @property
  def steps_per_epoch(self) -> int:
    return -(-len(self.indices) // self.batch_size)


def _train_epoch(run: _Run, state: TrainState,
                 forgetting: dict[str, jax.Array] | None, epoch: int,
                 lr: float, start: float, *, first_step: int = 0,
                 totals: dict[str, jax.Array] | None = None,
                 after_step: Callable[..., None] | None = None):
  """One epoch's steps at rate `lr` (begun at `start`, for progress logs).

  A resumed epoch starts at `first_step` with the metric sums `totals` of
  the steps before it; the batch order is the epoch's own either way.
  `after_step(state, forgetting, totals, epoch, steps_done)` runs after
  every step (checkpoints and stop requests).

  Returns:
    the state, the forgetting counters (None if not tracked) and the
    epoch's summed metrics, still on the device.
  """
  hooks = hooks_for(run.model)
  shuffle_key = jax.random.fold_in(jax.random.fold_in(run.key, _SHUFFLE),
                                   epoch)
  rng = np.random.default_rng(np.asarray(jax.random.key_data(shuffle_key)))
  augment_key = jax.random.fold_in(run.key, _AUGMENT)
  num_steps = run.steps_per_epoch
  lr_array = jnp.asarray(lr, jnp.float32)
  last_log = start
  for step, (idx, mask) in enumerate(
      padded_batches(run.indices, run.batch_size, run.mesh, rng)):
    if step < first_step:  # Done before the resume.
      continue
    batch = hooks.make_batch(run.mesh, run.images, run.labels, idx, mask)
    if hooks.step_lr is not None:
      step_lr = hooks.step_lr(epoch * num_steps + step,
                              run.num_epochs * num_steps, lr)
      lr_array = jnp.asarray(step_lr, jnp.float32)
    if forgetting is None:
      state, m = train_step(state, batch, lr_array, augment_key,
                            model=run.model, cfg=run.cfg)
    else:
      state, forgetting, m = forgetting_train_step(
          state, forgetting, batch, lr_array, augment_key, model=run.model,
          cfg=run.cfg)
    totals = m if totals is None else jax.tree.map(jnp.add, totals, m)
    preemption.progress(run.log_prefix)
    if after_step is not None:
      after_step(state, forgetting, totals, epoch, step + 1)
    if time.perf_counter() - last_log > PROGRESS_SECONDS:
      last_log = time.perf_counter()
      logging.info('%s epoch %d/%d: step %d/%d, %.0f s', run.log_prefix,
                   epoch + 1, run.num_epochs, step + 1, num_steps,
                   last_log - start)
  return state, forgetting, totals


def _epoch_record(epoch: int, lr: float, totals: dict[str, jax.Array],
                  start: float) -> dict[str, float]:
  """The epoch's history entry from its summed training metrics."""
  totals = jax.device_get(totals)
  seconds = time.perf_counter() - start
  count = float(totals['count'])
  return {'epoch': epoch + 1, 'lr': lr,
          'train_loss': float(totals['loss']) / count,
          'train_accuracy': float(totals['correct']) / count,
          'seconds': seconds, 'images_per_second': count / seconds}
