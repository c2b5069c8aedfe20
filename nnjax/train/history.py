"""The outputs of a driven run so far, joined as the chunks come (:class:`History`).

A hook of :func:`nnjax.train.driver.drive` may read every chunk's outputs after every chunk
(the divergence guard, ``on_epochs``, a checkpoint). Joining a list of n chunks each time
costs O(n) NumPy calls per leaf, so O(n^2) over a run: 14 s of a 1000-epoch ``nnjax train``
(one epoch per chunk) went there. Here each leaf lives in one buffer that doubles when full:
appending a chunk costs the chunk's size (amortised), and reading everything so far is a
view, with no copy.
"""

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np


class History:
    """Chunk outputs (pytrees of arrays that share a structure) joined along ``axis``.

    ``append(outputs)`` adds a chunk; ``joined()`` is every chunk so far as one pytree of
    read-only NumPy views (valid after later appends: a full buffer is replaced, never
    written over), or None before the first chunk; ``len(history)`` counts the chunks.
    """

    def __init__(self, axis: int = 0, chunks: Sequence = ()):
        self.axis = axis
        self._treedef = None
        self._buffers: list[np.ndarray] = []  # each leaf with ``axis`` moved to the front
        self._filled: list[int] = []
        self._chunks = 0
        for chunk in chunks:
            self.append(chunk)

    def __len__(self) -> int:
        return self._chunks

    def append(self, outputs: Any) -> None:
        leaves, treedef = jax.tree.flatten(outputs)
        leaves = [np.moveaxis(np.asarray(a), self.axis, 0) for a in leaves]
        if self._treedef is None:
            self._treedef = treedef
            self._buffers = [np.empty((0,) + a.shape[1:], a.dtype) for a in leaves]
            self._filled = [0] * len(leaves)
        elif treedef != self._treedef:
            raise ValueError(
                f"History: a chunk's outputs changed structure: {treedef} after {self._treedef}"
            )
        for i, a in enumerate(leaves):
            buffer, n = self._buffers[i], self._filled[i]
            if a.shape[1:] != buffer.shape[1:]:
                raise ValueError(
                    f"History: leaf {i} of a chunk has shape {a.shape[1:]} beside the axis, "
                    f"earlier chunks {buffer.shape[1:]}"
                )
            dtype = np.result_type(buffer.dtype, a.dtype)  # as np.concatenate joins them
            if n + len(a) > len(buffer) or dtype != buffer.dtype:  # room is no reason to cast
                grown = np.empty(
                    (max(2 * len(buffer), n + len(a)),) + buffer.shape[1:],
                    dtype,
                )
                grown[:n] = buffer[:n]
                buffer = self._buffers[i] = grown
            buffer[n : n + len(a)] = a
            self._filled[i] = n + len(a)
        self._chunks += 1

    def joined(self) -> Any:
        """Every chunk's outputs concatenated along ``axis`` (read-only views); None if none."""
        if self._treedef is None:
            return None
        views = []
        for buffer, n in zip(self._buffers, self._filled, strict=True):
            view = np.moveaxis(buffer[:n], 0, self.axis)
            view.flags.writeable = False
            views.append(view)
        return jax.tree.unflatten(self._treedef, views)

    def copy(self) -> Any:
        """:meth:`joined` as fresh, writable arrays of their own (to hand to a caller)."""
        joined = self.joined()
        return None if joined is None else jax.tree.map(np.array, joined)
