"""Topology updaters: what one drop-and-grow update of DST does (docs/algorithms.md §3).

An updater object is the whole rule of one update, layer by layer: which
active weights die (`drop`), how inactive positions are scored for growth
(`grow_scores`), which are grown (`grow`), and the write-back (`rewire`):
dropped weights zeroed, grown weights start at zero, their optimizer slots
reset, the explored record extended. It also says what it needs (a growth
batch for the dense gradient, momentum slots) and what one update costs
beyond the training steps (`update_flops`, docs/algorithms.md §6).
`update` does it for every kernel of a model with two host reads in all
(the active counts before, the moved count after); under magnitude death
each layer is one compiled program (`backend.compile_array_function`)
around `topology.drop_and_grow`, whose selection is exact and sort-free
(`topology.top_n_mask`), and a model of `WHOLE_MODEL_WEIGHTS` masked
weights or more is one program for all its layers, which writes the
variables in place (`backend.compile_variable_update`); on PyTorch on a CPU
each layer is updated in its variables' memory by NumPy
(`backend.drop_and_grow_in_place`), the same update in half the passes. A
rule with its own `drop` or `grow` runs them eagerly instead.

`SET` drops by magnitude (or SET's rule) and grows at random; `RigL(SET)`
and `MomentumGrowth(SET)` override only the growth scores, as jaxpruner's
`RigL(SET)` does. `DynamicSparsityCallback` decides *when* to update and asks
its updater *how*; a new growth rule is a subclass overriding `grow_scores`.
Strings name them only at the edges (`EnsembleConfig.growth`, the command
line), through `UPDATERS` and `get`.

Example:

>>> updater = freetickets_tf.updaters.get("gradient")   # RigL
>>> dst = freetickets_tf.callbacks.DynamicSparsityCallback(
...     data=(x, y), growth=updater, update_frequency=100)
"""

import functools
import math
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from freetickets_tf import backend
from freetickets_tf import optimizer_slots
from freetickets_tf import topology
from freetickets_tf._validation import check_choice

# How active weights die: smallest magnitude (RigL, the original), or SET's
# rule (the smallest positive and the largest negative weights).
DEATH_RULES = {"magnitude": topology.magnitude_prune, "set": topology.set_prune}


def _write_back(kernel, old_mask, explored, survivors, new_mask):
    """What an update writes, given its masks: the kernel zeroed outside the
    survivors (dropped weights die, grown ones start at zero), the explored
    record, the grown positions (regrown right after being dropped counts
    as grown: they restart from zero too, as RigL) and the moved count."""
    grown = ops.logical_and(new_mask, ops.logical_not(survivors))
    moved = backend.count_true(ops.logical_and(new_mask, ops.logical_not(old_mask)))
    return (ops.where(survivors, kernel, 0.0), ops.logical_or(explored, new_mask), grown,
            moved)


def _magnitude_rewire(kernel, mask, explored, scores, n):
    survivors, new_mask = topology.drop_and_grow(kernel, mask, scores, n)
    kernel, explored, grown, moved = _write_back(kernel, mask, explored, survivors, new_mask)
    return kernel, new_mask, explored, grown, moved


# Kernels from this size on are updated by an XLA program on TensorFlow:
# there it halves the update, while compiling a small kernel's program
# would take longer than all its updates (`backend.compile_array_function`).
LARGE_KERNEL = 1 << 16
_COMPILED = {}


def _padded_size(size):
    """The length a kernel of `size` weights is padded to for a compiled
    update: 4, 5, 6 or 7 times a power of two (at least 1,024), at most 25%
    more, so that kernels of nearby sizes share one compiled program."""
    if size <= 1024:
        return 1024
    step = 1 << (size.bit_length() - 3)
    return -(-size // step) * step


def _pad(x, length, value):
    flat = ops.reshape(x, (-1,))
    extra = length - ops.shape(flat)[0]
    return ops.concatenate([flat, ops.full((extra,), value, dtype=flat.dtype)]) if extra else flat


def _compiled_magnitude_rewire(size):
    """The update of one layer of `size` weights under magnitude death,
    compiled for the backend in use (built on first use), and the length
    its arrays are padded to (None: not padded)."""
    name = keras.backend.backend()
    large = size >= LARGE_KERNEL
    key = (name, large)
    if key not in _COMPILED:
        _COMPILED[key] = backend.compile_array_function(_magnitude_rewire, large=large)
    return _COMPILED[key], _padded_size(size) if name != "torch" else None


def _magnitude_rewire_padded(mk, scores, n):
    """`_magnitude_rewire` of `mk`'s variables, padded for the compiled
    program: the padding is inactive, so never dropped, with growth score
    zero, the least magnitude, after every real position: there are always
    `n` real positions to grow that rank above it or tie with it ahead (the
    survivors' complement holds at least `n`), so it never grows. (Active
    padding would rank below a NaN weight, the largest magnitude, and could
    be dropped in its place.)"""
    shape = mk.mask.shape
    size = math.prod(shape)
    rewire, length = _compiled_magnitude_rewire(size)
    arrays = (mk.kernel.value, mk.mask.value, mk.explored.value, scores)
    if length is not None:
        arrays = (_pad(arrays[0], length, 0.0), _pad(arrays[1], length, False),
                  _pad(arrays[2], length, False), _pad(ops.cast(arrays[3], "float32"),
                                                       length, 0.0))
    kernel, mask, explored, grown, moved = rewire(*arrays, ops.convert_to_tensor(n, "int32"))
    if length is not None:
        kernel, mask, explored, grown = (ops.reshape(x[:size], shape)
                                         for x in (kernel, mask, explored, grown))
    return kernel, mask, explored, grown, moved


def _magnitude_rewire_all(written, scores, n, count_moved=True):
    """`_magnitude_rewire` of every kernel in one program, the optimizer
    slots of the grown weights zeroed too: `written` holds per kernel its
    kernel, mask, explored record and slots (`[kernel, mask, explored,
    *slots]`), `scores` one array and `n` one int32 count per kernel; returns
    their new values, nested alike, and the moved total (None unless
    `count_moved`: the caller counts it on the host).

    The kernels are updated one after another: each one's mask is and-ed
    with a flag that is always True but comes from the kernel before it
    (`_true_after`), and its count taken only where that flag holds, so that
    XLA cannot start a kernel's passes (nor write its histograms' zeros,
    `backend._histogram`) before the last one's selection is done. Left
    free, XLA interleaves the kernels' passes: a WRN-28-10's seven largest
    then hold their bucket arrays at once (200 MB of temporaries on JAX,
    57 MB in turn), and every pass finds its arrays out of the caches. In
    turn, on one core, the update of a WRN-28-10 takes 220 ms instead of
    320 on TensorFlow, 233 instead of 386 on JAX (benchmarks/RESULTS.md).
    """
    new_values, moved = [], []
    previous_done = None
    for i, ((kernel, mask, explored, *slots), kernel_scores) in enumerate(zip(written, scores)):
        count_to_move = n[i]
        if previous_done is not None:
            mask = ops.logical_and(mask, previous_done)
            # The count too: what is computed from it alone (the histograms'
            # zeros, `backend._histogram`) then waits for its kernel's turn.
            count_to_move = ops.where(previous_done, count_to_move, 0)
        kernel, mask, explored, grown, count = _magnitude_rewire(
            kernel, mask, explored, kernel_scores, count_to_move)
        previous_done = _true_after(mask)
        new_values.append([kernel, mask, explored, *(ops.where(grown, 0.0, s) for s in slots)])
        moved.append(count)
    return new_values, ops.sum(ops.stack(moved)) if count_moved else None


def _true_after(mask):
    """True, as a boolean scalar that depends on `mask` (its first entry
    or its negation): a compiler cannot compute what uses it before
    `mask`'s selection."""
    first = ops.reshape(mask, (-1,))[0]
    return ops.logical_or(first, ops.logical_not(first))


class _Move(NamedTuple):
    """One kernel's part of an update: its `MaskedKernel`, how many weights
    move, its growth scores, random-growth seed and optimizer slots, and a
    host copy of its mask from before (None unless the moved count is taken
    on the host)."""

    masked: object
    n: int
    scores: object
    seed: object
    slots: tuple
    mask_before: object


def _check_scores(masked_kernels, scores):
    """Raises ValueError unless `scores` holds one array of its kernel's
    shape (or None) per kernel: scores are read position by position, and a
    transposed array of the same size would grow the wrong weights."""
    masked_kernels, scores = list(masked_kernels), list(scores)
    if len(scores) != len(masked_kernels):
        raise ValueError(f"Invalid `scores`: {len(scores)} arrays for "
                         f"{len(masked_kernels)} masked kernels (one per kernel, or None).")
    for mk, kernel_scores in zip(masked_kernels, scores):
        if kernel_scores is None:
            continue
        shape = tuple(np.shape(kernel_scores))
        if shape != tuple(mk.kernel.shape):
            raise ValueError(
                f"Invalid `scores` for {mk.kernel.path}: shape {shape}, but the "
                f"kernel's is {tuple(mk.kernel.shape)}. Growth scores are read position "
                "by position: give an array of the kernel's shape (or None).")


# Models with this many masked weights or more are updated by one compiled
# program for all their kernels, on TensorFlow (XLA) and JAX: it saves each
# layer's dispatch, padding and slicing (benchmarks/topology_update.py,
# WRN-16-4: 0.232 to 0.077 s on TensorFlow, 0.124 to 0.053 s on JAX, whose
# figures then ran on two cores; benchmarks/RESULTS.md), and writes the
# variables in place
# (`backend.compile_variable_update`), but compiles once per model (7 to
# 11 s there), which small models' few updates would not repay. PyTorch runs
# layer by layer either way (`SET._rewire`).
WHOLE_MODEL_WEIGHTS = 1 << 20


def _whole_model_program(count_moved):
    key = (keras.backend.backend(), "whole model", count_moved)
    if key not in _COMPILED:
        _COMPILED[key] = backend.compile_variable_update(
            functools.partial(_magnitude_rewire_all, count_moved=count_moved))
    return _COMPILED[key]


class SET:
    """Sparse Evolutionary Training: drop, then grow at random (Mocanu et al.).

    Args:
        death: `"magnitude"` or `"set"` (see `DEATH_RULES`).

    Example:

    >>> moved = SET().rewire(masked_kernel, death_rate=0.5, seed=0)
    """

    #: The growth name of this rule in `UPDATERS` (and `EnsembleConfig.growth`).
    name = "random"
    #: Whether `grow_scores` needs the dense gradient of a growth batch.
    needs_gradient = False
    #: Whether `grow_scores` reads the optimizer's momentum slots.
    needs_momentum = False

    def __init__(self, death="magnitude"):
        self.death = check_choice("death", death, tuple(DEATH_RULES))

    def drop(self, weights, mask, n):
        """The mask without its `n` weakest active weights."""
        return DEATH_RULES[self.death](weights, mask, n)

    def grow_scores(self, model, masked_kernels, gradients=None):
        """One score array per kernel (the largest `|score|` grows first,
        `topology.grow`), or None per kernel for random growth.

        Args:
            model: The compiled model being trained.
            masked_kernels: Its `MaskedKernel`s, in order.
            gradients: The dense gradients of the loss with respect to those
                kernels on a growth batch, when `needs_gradient`.
        """
        return [None] * len(masked_kernels)

    def grow(self, survivors, scores, n, seed=None):
        """`survivors` plus `n` inactive positions: the top `scores`, or at
        random (seeded) where `scores` is None."""
        if scores is None:
            return topology.random_grow(survivors, n, seed=seed)
        return topology.grow(survivors, scores, n)

    def update_flops(self, sparse_forward, dense_forward, batch_size):
        """FLOPs of one update beyond the training steps, from the model's
        forward FLOPs per example at its masks before the update (sparse)
        and dense: none for random growth (docs/algorithms.md §6)."""
        return 0.0

    def rewire(self, masked_kernel, death_rate, scores=None, seed=None, slots=(),
               skip_dense=True):
        """Moves `ceil(death_rate * n_active)` weights of one masked kernel.

        Args:
            masked_kernel: A `freetickets_tf.layers.MaskedKernel`.
            death_rate: Fraction of the active weights to drop and regrow.
            scores: The kernel's growth scores (from `grow_scores`).
            seed: Seed of random growth (int or `keras.random.SeedGenerator`).
            slots: Optimizer slot variables to zero at the grown positions.
            skip_dense: Leave a kernel without inactive weights (ERK may give
                a layer density 1) alone (docs/algorithms.md §3). False rewires it too, as
                the original's `truncate_weights`: its `n` smallest weights
                are dropped and, being the only inactive positions, regrown
                at zero.

        Returns:
            The number of positions active now that were not before.
        """
        return self.update([masked_kernel], death_rate, [scores], [seed], [slots],
                           skip_dense)

    def update(self, masked_kernels, death_rate, scores, seeds, slots, skip_dense=True):
        """`rewire` for every kernel of a model at once: two host reads in
        all (the active counts before, the moved count after), the rest on
        the device.

        Args:
            masked_kernels: The `MaskedKernel`s.
            death_rate: Fraction of each kernel's active weights to move.
            scores: One growth-score array (or None: random) per kernel.
            seeds: One random-growth seed per kernel.
            slots: One sequence of optimizer slots to reset per kernel.
            skip_dense: As in `rewire`.

        Returns:
            The number of positions active now that were not before, summed.
        """
        _check_scores(masked_kernels, scores)
        masked_kernels = list(masked_kernels)
        whole_model = self._compiled_rule() and keras.backend.backend() != "torch" and sum(
            math.prod(mk.mask.shape) for mk in masked_kernels) >= WHOLE_MODEL_WEIGHTS
        masks = [mk.mask.value for mk in masked_kernels]
        # The whole-model program leaves the moved count to the host on a
        # CPU (`_rewire_all`), from copies of the masks: counted here too.
        before = backend.host_copies(masks) if whole_model else None
        if before is None:
            counts, before = backend.count_true_each(masks), [None] * len(masks)
        else:
            counts = np.array([np.count_nonzero(mask) for mask in before])
        work = []  # a `_Move` per kernel that moves
        for mk, active, kernel_scores, seed, kernel_slots, mask in zip(
                masked_kernels, counts.tolist(), scores, seeds, slots, before):
            if skip_dense and active == math.prod(mk.mask.shape):
                continue
            n = topology.moved_count(active, death_rate)
            if n:
                work.append(_Move(mk, n, kernel_scores, seed, kernel_slots, mask))
        if not work:
            return 0
        if whole_model:
            moved = self._rewire_all(work)
        else:
            moved = sum(self._rewire(m.masked, m.n, m.scores, m.seed, m.slots) for m in work)
        return int(ops.convert_to_numpy(moved))

    def _compiled_rule(self):
        """Whether this is the built-in magnitude death and top-score growth,
        which run as compiled programs (a rule of its own runs eagerly)."""
        return (type(self).drop is SET.drop and type(self).grow is SET.grow
                and self.death == "magnitude")

    @staticmethod
    def _scores_or_uniform(mk, scores, seed):
        """`scores`, or for random growth uniform ones, drawn as
        `topology.random_grow` draws them."""
        if scores is None:
            return keras.random.uniform(ops.shape(mk.mask.value), seed=seed)
        return scores

    def _rewire_all(self, work):
        """Every kernel of `work` moved by one compiled program; returns how
        many weights moved (a device scalar or an int).

        Where `work` holds host copies of the masks (on a CPU), NumPy counts
        the moved weights on them: in XLA the count is a scalar loop over
        every mask, a seventh of the update (`backend.count_newly_true`)."""
        on_host = work[0].mask_before is not None
        moved = _whole_model_program(count_moved=not on_host)(
            [[m.masked.kernel, m.masked.mask, m.masked.explored, *m.slots] for m in work],
            [self._scores_or_uniform(m.masked, m.scores, m.seed) for m in work],
            ops.convert_to_tensor([m.n for m in work], "int32"))
        if not on_host:
            return moved
        return backend.count_newly_true([m.mask_before for m in work],
                                        (m.masked.mask.value for m in work))

    def _rewire(self, mk, n, scores, seed, slots):
        """Moves `n` weights of `mk`; returns how many (a device scalar or
        an int)."""
        if self._compiled_rule():
            scores = self._scores_or_uniform(mk, scores, seed)
            if backend.drops_and_grows_in_place(mk.kernel):
                return backend.drop_and_grow_in_place(
                    mk.kernel, mk.mask, mk.explored, ops.convert_to_tensor(scores), n, slots)
            kernel, mask, explored, grown, moved = _magnitude_rewire_padded(mk, scores, n)
        else:  # a rule of its own: its `drop` and `grow`, eagerly
            # A snapshot: on TensorFlow `.value` is the live variable.
            old = ops.copy(mk.mask.value)
            survivors = self.drop(mk.kernel.value, old, n)
            mask = self.grow(survivors, scores, n, seed)
            kernel, explored, grown, moved = _write_back(
                mk.kernel.value, old, mk.explored.value, survivors, mask)
        mk.kernel.assign(kernel)
        mk.mask.assign(mask)
        mk.explored.assign(explored)
        for slot in slots:
            slot.assign(ops.where(grown, 0.0, slot.value))
        return moved

    def check_model(self, model):
        """Raises `ValueError` if `model` cannot give what this rule needs."""

    def get_config(self):
        return {"death": self.death}

    def __repr__(self):
        return f"{type(self).__name__}(death={self.death!r})"


class RigL(SET):
    """Rigging the Lottery (Evci et al.): grow where the dense gradient of the
    loss on a growth batch is largest in magnitude."""

    name = "gradient"
    needs_gradient = True

    def grow_scores(self, model, masked_kernels, gradients=None):
        if gradients is None:
            raise ValueError("RigL grows by the dense gradient: pass `gradients`.")
        return list(gradients)

    def update_flops(self, sparse_forward, dense_forward, batch_size):
        # The gradient pass: a forward at the current masks and one dense
        # backward (2 f_D) per growth example (`flops.growth_pass_flops`).
        return (sparse_forward + 2.0 * dense_forward) * batch_size


class MomentumGrowth(SET):
    """Grow where the optimizer's momentum is largest in magnitude (Sparse
    Momentum, Dettmers & Zettlemoyer): no gradient pass."""

    name = "momentum"
    needs_momentum = True

    def check_model(self, model):
        optimizer = model.optimizer
        if not optimizer_slots.has_momentum(optimizer):
            raise ValueError(
                f"growth='momentum' needs an optimizer with momentum; "
                f"{type(optimizer).__name__} has none. Use e.g. SGD(momentum=0.9) "
                "or Adam, or growth='gradient' / 'random'.")

    def grow_scores(self, model, masked_kernels, gradients=None):
        optimizer = model.optimizer
        return [optimizer_slots.momentum_variable(optimizer, mk.kernel).value
                for mk in masked_kernels]


# The growth names of `EnsembleConfig.growth` and `--growth`, in that order.
UPDATERS = {cls.name: cls for cls in (RigL, SET, MomentumGrowth)}
GROWTH_MODES = tuple(UPDATERS)


def get(growth, death="magnitude"):
    """The updater named `growth` with `death`, or `growth` itself when it is
    already an updater (then `death` must be its own or the default).

    Example:

    >>> get("random", death="set")
    SET(death='set')
    """
    if isinstance(growth, SET):
        if death not in ("magnitude", growth.death):
            raise ValueError(
                f"Invalid `death`: {death!r}, but the updater {growth!r} drops by "
                f"{growth.death!r}. Set it on the updater.")
        return growth
    check_choice("growth", growth, GROWTH_MODES)
    return UPDATERS[growth](death)
