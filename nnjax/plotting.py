"""Figures for files: ``matplotlib.figure.Figure`` objects, no pyplot state.

Library code draws on a fresh :class:`~matplotlib.figure.Figure` and saves it, so it never
switches the global backend (which would turn off inline figures in a notebook kernel) and
never leaks open pyplot figures.
"""


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(fig, axes)`` like ``plt.subplots``, on a stand-alone Figure (no pyplot)."""
    from matplotlib.figure import Figure

    fig_kw = {k: kwargs.pop(k) for k in ("figsize", "dpi", "layout") if k in kwargs}
    fig = Figure(**fig_kw)
    return fig, fig.subplots(nrows, ncols, **kwargs)
