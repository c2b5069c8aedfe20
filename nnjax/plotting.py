"""Figures for files: ``matplotlib.figure.Figure`` objects, no pyplot state.

Library code draws on a fresh :class:`~matplotlib.figure.Figure` and saves it, so it never
switches the global backend (which would turn off inline figures in a notebook kernel) and
never leaks open pyplot figures.
"""

# the keywords of Figure.subplots; every other keyword goes to Figure, as plt.subplots does
_SUBPLOTS_KW = frozenset(
    {"sharex", "sharey", "squeeze", "width_ratios", "height_ratios", "subplot_kw", "gridspec_kw"}
)


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(fig, axes)`` like ``plt.subplots``, on a stand-alone Figure (no pyplot): the
    keywords of ``Figure.subplots`` (sharex, squeeze, ...) lay out the axes, any other
    (figsize, dpi, layout, facecolor, constrained_layout, ...) goes to the Figure."""
    from matplotlib.figure import Figure

    fig_kw = {k: kwargs.pop(k) for k in list(kwargs) if k not in _SUBPLOTS_KW}
    fig = Figure(**fig_kw)
    return fig, fig.subplots(nrows, ncols, **kwargs)
