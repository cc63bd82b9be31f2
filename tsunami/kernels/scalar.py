"""Scalar building blocks shared by the compute kernels.

Everything here is inlined into the kernels at compile time. The helpers keep one
definition of each piece of physics (the flow depth at a face, Manning friction, the
upwind advective difference, the semi-implicit flux update) so the x- and y-momentum
loops in :mod:`tsunami.kernels.momentum` read as the same equation in two directions.

State arrays may be float32 or float64. Numba types a Python float literal as float64,
which would silently promote float32 arithmetic; :func:`typed` casts a constant to the
precision of a reference value so a float32 kernel stays float32.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

# Fast-math flags of the leapfrog kernels, without 'nnan'/'ninf': blow-up detection relies
# on NaN comparisons.
FASTMATH = {"contract", "arcp", "reassoc", "afn", "nsz"}
# Without 'reassoc' too, for sums whose order must not change: reassociation orders a
# sum's terms by where they come from, so a face and its mirror image added the same
# numbers in different orders and a symmetric problem drifted apart by round-off
# (docs/inundation_accuracy.md, "Mirror symmetry of the leapfrog"). The flags are per
# instruction, so these sums keep their order once inlined into a kernel.
EXACT_ORDER = FASTMATH - {"reassoc"}


def typed(value, like):
    """Return ``value`` converted to the floating type of ``like`` (Python fallback)."""
    return type(like)(value)


@overload(typed, inline="always")
def _typed(value, like):
    cast = as_dtype(like).type

    def impl(value, like):
        return cast(value)

    return impl


@intrinsic
def _bits_of(typingctx, x):
    """Reinterpret a float's bits as a signed integer of the same width."""
    width = 32 if x == types.float32 else 64
    sig = types.int32(x) if width == 32 else types.int64(x)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(width))

    return sig, codegen


@intrinsic
def _float_of(typingctx, i):
    """Reinterpret an int32/int64's bits as a float32/float64."""
    if i == types.int32:
        sig, llvm_type = types.float32(i), ir.FloatType()
    else:
        sig, llvm_type = types.float64(i), ir.DoubleType()

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_type)

    return sig, codegen


@intrinsic
def max_of_numbers(typingctx, a, b):
    """max(a, b) of two floats of one type, neither of them NaN: a compare and select
    flagged 'nnan nsz', so that LLVM vectorises a running maximum over a loop (a
    reduction) into packed ``vmaxps``/``vmaxpd``. A plain ``max`` there keeps the whole
    loop scalar, since LLVM vectorises a floating-point max reduction only under those
    flags, which the kernels cannot have (blow-up detection relies on NaN comparisons).
    The flags are on these two instructions only. A NaN argument gives an undefined
    result: callers replace NaN first. (Signed zeros may come out either way.)"""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        first, second = args
        flags = ("nnan", "nsz")
        greater = builder.fcmp_ordered(">", second, first, flags=flags)
        return builder.select(greater, second, first, flags=flags)

    return a(a, b), codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
_FTZ_DAZ = 0x8040  # MXCSR flush-to-zero and denormals-are-zero bits


@intrinsic
def _swap_mxcsr(typingctx, bits):
    """Set the MXCSR FTZ/DAZ bits to those in ``bits``; return the previous MXCSR."""
    sig = types.uint32(types.uint32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not _X86:
            return ir.Constant(i32, 0)
        slot = cgutils.alloca_once(builder, i32)
        fnty = ir.FunctionType(ir.VoidType(), [slot.type])
        store = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.stmxcsr")
        load = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.ldmxcsr")
        builder.call(store, [slot])
        old = builder.load(slot)
        mask = ir.Constant(i32, _FTZ_DAZ)
        new = builder.or_(builder.and_(old, builder.not_(mask)), builder.and_(args[0], mask))
        builder.store(new, slot)
        builder.call(load, [slot])
        return old

    return sig, codegen


@njit(inline="always", cache=True)
def flush_denormals():
    """Treat subnormal floats as zero in this thread; returns the mode to restore.

    The far field of a spreading wave decays through subnormal values, which cost ~100
    cycles per operation on x86 and slowed a whole step by 2x. Kernels call this at the
    start of each row and :func:`restore_fp_mode` at its end, so the caller's
    floating-point mode is left as it was. (A no-op on other architectures.)
    """
    return _swap_mxcsr(np.uint32(_FTZ_DAZ))


@njit(inline="always", cache=True)
def restore_fp_mode(mode):
    _swap_mxcsr(mode)


def inverse_cbrt(x):
    """x**(-1/3) for x > 0 (Python fallback)."""
    return x ** (-1.0 / 3.0)


@overload(inverse_cbrt, inline="always")
def _inverse_cbrt(x):
    # libm cbrt costs ~40 cycles and dominated the friction term; a bit-level first
    # guess refined by Newton steps y <- y (4 - x y^3) / 3 uses multiplications only.
    # Relative error: 2e-7 (float32, 3 steps), 4e-16 (float64, 4 steps), 1e-8 < x < 1e5.
    if x == types.float32:
        def impl(x):
            y = _float_of(np.int32(np.int32(0x54A2FA8C) - np.int32(_bits_of(x) // 3)))
            third = np.float32(1.0 / 3.0)
            four = np.float32(4.0)
            y = y * (four - x * y * y * y) * third
            y = y * (four - x * y * y * y) * third
            return y * (four - x * y * y * y) * third
    else:
        def impl(x):
            y = _float_of(np.int64(0x553EF0FF289DD794) - _bits_of(x) // 3)
            third = 1.0 / 3.0
            y = y * (4.0 - x * y * y * y) * third
            y = y * (4.0 - x * y * y * y) * third
            y = y * (4.0 - x * y * y * y) * third
            return y * (4.0 - x * y * y * y) * third
    return impl


@njit(inline="always", cache=True)
def face_depth(eta_a, eta_b, h_a, h_b):
    """Flow depth (m) at the face between two cells.

    The higher water surface over the higher bed: water from a wet cell flows onto a dry
    neighbour only when its surface stands above the neighbour's ground, and a lake at
    rest next to dry land gives exactly zero depth at the shoreline face.
    """
    return max(eta_a, eta_b) + min(h_a, h_b)


@njit(inline="always", cache=True)
def upwind_difference(velocity, here, behind, ahead):
    """First-order upwind difference of an advected quantity (caller divides by spacing).

    At zero velocity neither side is upwind and the mean of the two one-sided differences
    is taken: a fixed side (``velocity >= 0``) gave a face at rest on a symmetry line its
    neighbour's momentum from the south only, and broke the mirror symmetry of the flow.
    """
    if velocity > 0:
        return here - behind
    if velocity < 0:
        return ahead - here
    return typed(0.5, here) * (ahead - behind)


@njit(fastmath=EXACT_ORDER, cache=True)
def mean_of_pairs(a0, a1, b0, b1):
    """(a0 + a1 + b0 + b1) / 4, each pair summed first.

    The transverse flux at a face is the mean of the four faces around it: two pairs
    side by side along one row (a0, a1 and b0, b1). A north-south mirror swaps the pairs
    and an east-west mirror the faces within each, and a sum of two numbers does not
    depend on their order, so mirror faces get bit-identical means; ((a0 + a1) + b0) + b1
    rounds differently from ((b0 + b1) + a0) + a1. Compiled apart (LLVM still inlines
    it) so that the kernels' reassociation cannot reorder the sum.
    """
    return typed(0.25, a0) * ((a0 + a1) + (b0 + b1))


@njit(inline="always", cache=True)
def flux_update(flux, depth, pressure, advection, coriolis, transverse, n2, dt, g, max_speed):
    """Advance a volume flux per unit width (m^2/s) one leapfrog step.

    ``pressure`` is g D d(eta)/ds, ``advection`` the momentum-flux divergence and
    ``coriolis`` the Coriolis acceleration term (all m^2/s^2). Manning friction
    g n^2 |q| q / D^(7/3) is treated semi-implicitly (TUNAMI-N2: the friction uses the
    mean of the old and new flux), which stays stable as D -> 0.
    """
    one = typed(1.0, flux)
    f = typed(0.0, flux)
    if n2 > 0:
        magnitude = np.sqrt(flux * flux + transverse * transverse)
        w = inverse_cbrt(depth)
        w2 = w * w
        f = typed(0.5, flux) * dt * g * n2 * magnitude * (w2 * w2 * w2 * w)
    new = ((one - f) * flux - dt * (pressure + advection - coriolis)) / (one + f)
    # A cap on the speed guards against thin-film spikes at a moving shoreline.
    limit = max_speed * depth
    if new > limit:
        return limit
    if new < -limit:
        return -limit
    return new


@njit(inline="always", cache=True)
def record_maxima(surface, depth, ground, time, dry_depth, arrival_threshold, eta_max,
                  arrival_time, j, i):
    """Update the maximum surface and the arrival time of cell (j, i) with its new state.

    Arrival: the first time the surface stands ``arrival_threshold`` above its still level
    (the sea at rest, or the ground on initially dry land). Branch-free (selects and plain
    stores) so the calling loop stays vectorised.
    """
    wet = depth > dry_depth
    previous_max = eta_max[j, i]
    rises = wet and surface > previous_max
    eta_max[j, i] = surface if rises else previous_max
    arrival = arrival_time[j, i]
    arrives = rises and np.isnan(arrival) and (
        surface > max(ground, typed(0.0, surface)) + arrival_threshold)
    arrival_time[j, i] = time if arrives else arrival


@njit(inline="always", cache=True)
def record_flow_maxima(depth, u, v, speed_depth, speed_max, momentum_flux_max, j, i):
    """Raise cell (j, i)'s running maxima of flow speed |u, v| (m/s) and momentum flux
    D |u, v|^2 (m^3/s^2) with its new state; water no deeper than ``speed_depth`` (m)
    counts as still (a film's speed is no flow speed). Branch-free, as
    :func:`record_maxima`."""
    zero = typed(0.0, depth)
    speed2 = u * u + v * v if depth > speed_depth else zero
    previous = speed_max[j, i]
    speed_max[j, i] = np.sqrt(speed2) if speed2 > previous * previous else previous
    momentum_flux_max[j, i] = max(momentum_flux_max[j, i], depth * speed2)


# Columns are visited in blocks of this many, counted from the first column of the whole
# row's loop (see :func:`aligned_range`).
VECTOR_BLOCK = 64


@njit(inline="always", cache=True)
def aligned_range(start, stop, first, last):
    """The part [start, stop) of a row loop over [first, last), widened to whole blocks of
    ``VECTOR_BLOCK`` columns counted from ``first`` (clipped to [first, last)); empty where
    [start, stop) holds none of [first, last).

    Why: LLVM vectorises a row loop in chunks (vector width x interleave) and finishes it
    with a scalar remainder, and the two round differently (fused multiply-adds,
    reassociation, a shared reciprocal: 1 ulp now and then). A loop over an active span
    that ended where the whole row's loop has a chunk (or began off its chunk grid) sent
    some cells through the other path, and a run skipping dry land drifted from one that
    visits every cell. Widened to blocks (chunks are powers of two up to 64 columns: 16
    float32 lanes interleaved 4 times), every cell takes the path it takes in the whole
    row's loop, so results are bit-for-bit the same however much of a row is active.
    """
    lo = max(start, first)
    hi = min(stop, last)
    if lo >= hi:
        return first, first
    block = VECTOR_BLOCK
    lo = first + (lo - first) // block * block
    hi = first + (hi - first + block - 1) // block * block
    return lo, min(hi, last)


# Rows too narrow for a whole VECTOR_BLOCK are done in blocks of this many (or one by one).
NARROW_BLOCK = 8


@njit(inline="always", cache=True)
def block_width(faces):
    """Width of the blocks a row loop over ``faces`` faces is done in (see
    :func:`block_start`): VECTOR_BLOCK, or NARROW_BLOCK or 1 on narrow grids."""
    if faces >= VECTOR_BLOCK:
        return VECTOR_BLOCK
    return NARROW_BLOCK if faces >= NARROW_BLOCK else 1


@njit(inline="always", cache=True)
def block_start(lo, hi, width, k):
    """First index of the k-th block of ``width`` indices covering [lo, hi), the last
    block moved back to end at ``hi`` (it overlaps the one before: only for loops whose
    iterations are independent, writing results computed from other arrays).

    Why: every block then has the same length, so LLVM runs every iteration through the
    same code (the vector body, or the scalar loop when the block is shorter than one
    vector iteration): none falls into a loop's scalar remainder, which rounds differently
    under fast-math. A face and its east-west mirror are then computed alike."""
    return min(lo + k * width, hi - width)


@njit(inline="always", cache=True)
def span_union(lo_a, hi_a, lo_b, hi_b):
    """Smallest column range [lo, hi) holding two ranges, ignoring an empty one."""
    if lo_a >= hi_a:
        return lo_b, hi_b
    if lo_b >= hi_b:
        return lo_a, hi_a
    return min(lo_a, lo_b), max(hi_a, hi_b)
