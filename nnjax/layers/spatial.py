"""Window arithmetic shared by convolutions and pooling: tuples per spatial axis, padding.

Channels-last throughout: an input is (B, *spatial, C) with 1 or 2 spatial axes
(NWC or NHWC). A window of size k dilated by d covers k_eff = (k - 1) d + 1 positions; with
padding (lo, hi) and stride s an axis of size n gives

    out = floor((n + lo + hi - k_eff) / s) + 1.

``"VALID"`` is (0, 0). ``"SAME"`` is XLA's (``lax.padtype_to_pads``): out = ceil(n / s),
total = max((out - 1) s + k_eff - n, 0), lo = floor(total / 2), hi = total - lo.
"""

import numbers
from collections.abc import Sequence

import numpy as np

SPATIAL_RANKS = (1, 2)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_)


def int_tuple(name: str, what: str, value, rank: int | None, minimum: int = 1):
    """``value`` (an int, or a sequence of ints; Python or NumPy, not bools) as a tuple of
    ``rank`` Python ints >= ``minimum``; ``rank=None`` keeps an int as an int (its rank is
    fixed later by the input)."""
    if _is_int(value):
        if value < minimum:
            raise ValueError(f"{name}: {what} must be >= {minimum}, got {value}")
        return int(value) if rank is None else (int(value),) * rank
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(
            f"{name}: {what} must be an int or a tuple of ints, got {value!r}"
        ) from None
    if not items or any(not _is_int(v) or v < minimum for v in items):
        raise ValueError(f"{name}: {what} must be ints >= {minimum}, got {value!r}")
    items = tuple(int(v) for v in items)
    if rank is not None and len(items) != rank:
        raise ValueError(f"{name}: {what} {items} has {len(items)} entries for {rank} spatial axes")
    return items


def normalize_padding(name: str, padding):
    """ "SAME"/"VALID" (any case), an int p (p on both sides of every axis), or a sequence of
    (lo, hi) pairs, one per spatial axis; returned as "SAME", "VALID", int or list of lists."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"{name}: padding must be 'SAME', 'VALID', an int or (lo, hi) "
                f"pairs, got {padding!r}"
            )
        return padding.upper()
    if _is_int(padding):
        if padding < 0:
            raise ValueError(f"{name}: padding must be >= 0, got {padding}")
        return int(padding)
    try:
        pairs = [list(p) for p in padding]
    except TypeError:
        raise ValueError(
            f"{name}: padding must be 'SAME', 'VALID', an int or (lo, hi) pairs, got {padding!r}"
        ) from None
    for p in pairs:
        if len(p) != 2 or any(not _is_int(v) or v < 0 for v in p):
            raise ValueError(
                f"{name}: padding pairs must be (lo, hi) with ints >= 0, got {padding!r}"
            )
    if not pairs:
        raise ValueError(f"{name}: padding needs one (lo, hi) pair per spatial axis, got []")
    return [[int(v) for v in p] for p in pairs]


def spatial_rank(name: str, in_shape: tuple, fixed: int | None) -> int:
    """The number of spatial axes of a (B, *spatial, C) input: ndim - 2, which must be 1 or 2
    and agree with ``fixed`` (the rank a tuple argument implies) when that is not None."""
    rank = len(in_shape) - 2
    if rank not in SPATIAL_RANKS:
        raise ValueError(f"{name}: expected input (B, W, C) or (B, H, W, C), got {in_shape}")
    if fixed is not None and rank != fixed:
        want = "(B, W, C)" if fixed == 1 else "(B, H, W, C)"
        raise ValueError(f"{name}: built for {fixed} spatial axes, expected {want}, got {in_shape}")
    return rank


def explicit_pads(
    name: str, padding, sizes: Sequence[int], k_eff: Sequence[int], strides: Sequence[int]
) -> list[tuple[int, int]]:
    """(lo, hi) per spatial axis for normalized ``padding`` (module docstring)."""
    rank = len(sizes)
    if padding == "VALID":
        return [(0, 0)] * rank
    if padding == "SAME":
        pads = []
        for n, k, s in zip(sizes, k_eff, strides):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        return [(padding, padding)] * rank
    if len(padding) != rank:
        raise ValueError(
            f"{name}: padding {padding} has {len(padding)} pairs for {rank} spatial axes"
        )
    return [(int(lo), int(hi)) for lo, hi in padding]


def output_sizes(
    name: str, sizes, k_eff, strides, pads, in_shape=None, dilated_by=None
) -> tuple[int, ...]:
    """floor((n + lo + hi - k_eff) / s) + 1 per axis; a ValueError when one is < 1, naming
    the axis and ``in_shape`` (the (B, *spatial, C) input) when given; ``dilated_by``: the
    strides ``sizes`` were dilated by (a transposed convolution's (n - 1) s + 1)."""
    out = []
    for i, (n, k, s, (lo, hi)) in enumerate(zip(sizes, k_eff, strides, pads)):
        if n + lo + hi < k:
            where = "" if in_shape is None else f" (spatial axis {i + 1} of the input {in_shape}"
            if where and dilated_by is not None:
                where += f" dilated by the stride {dilated_by[i]}"
            raise ValueError(
                f"{name}: spatial size {n} padded by ({lo}, {hi}) is smaller than the "
                f"(dilated) window {k}{where + ')' if where else ''}"
            )
        out.append((n + lo + hi - k) // s + 1)
    return tuple(out)
