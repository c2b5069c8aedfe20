"""Figures for files: ``matplotlib.figure.Figure`` objects, no pyplot state.

Library code draws on a fresh :class:`~matplotlib.figure.Figure` and saves it, so it never
switches the global backend (which would turn off inline figures in a notebook kernel) and
never leaks open pyplot figures. It needs no backend at all: an ``MPLBACKEND`` that names
none (a typo) is ignored, with a warning, when matplotlib is first imported here (``import
matplotlib`` refused it, and ``nnjax train --out`` lost the whole run at its figures).
"""

import os
import sys
import warnings

# the keywords of Figure.subplots; every other keyword goes to Figure, as plt.subplots does
_SUBPLOTS_KW = frozenset(
    {"sharex", "sharey", "squeeze", "width_ratios", "height_ratios", "subplot_kw", "gridspec_kw"}
)


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(fig, axes)`` like ``plt.subplots``, on a stand-alone Figure (no pyplot): the
    keywords of ``Figure.subplots`` (sharex, squeeze, ...) lay out the axes, any other
    (figsize, dpi, layout, facecolor, constrained_layout, ...) goes to the Figure."""
    Figure = _figure_class()
    fig_kw = {k: kwargs.pop(k) for k in list(kwargs) if k not in _SUBPLOTS_KW}
    fig = Figure(**fig_kw)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _figure_class():
    """``matplotlib.figure.Figure``, imported with an invalid ``MPLBACKEND`` left out (for
    that import only, with a warning naming it): these figures are saved by file format,
    whatever the backend."""
    try:
        from matplotlib.figure import Figure
    except ValueError as e:
        bad = os.environ.get("MPLBACKEND")
        if bad is None or "backend" not in str(e):
            raise
        for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
            del sys.modules[name]  # the half-imported package's submodules: import anew
        del os.environ["MPLBACKEND"]
        try:
            from matplotlib.figure import Figure
        finally:
            os.environ["MPLBACKEND"] = bad
        warnings.warn(
            f"MPLBACKEND={bad!r} is not a matplotlib backend; ignored (nnjax's figures are "
            "written to files and need none)",
            stacklevel=3,
        )
    return Figure
