"""Plots of the evaluation: PNG bytes, drawn with matplotlib off screen."""

import numpy as np


def det_plot_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, marks=()) -> bytes:
    """FNIR against FPIR, both on log scales (the DET plot of FRVT reports).
    `marks`: (label, fpir, fnir) operating points to draw."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5), dpi=100)
    axes = figure.subplots()
    plotted = False
    for label, (fpir, fnir) in curves.items():
        keep = (fpir > 0) & (fnir > 0)
        plotted |= bool(keep.any())
        axes.plot(fpir[keep], fnir[keep], label=label)
    for label, x, y in marks:
        if x > 0 and y > 0:
            plotted = True
            axes.plot([x], [y], "o", label=label)
    if plotted:
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlim(1e-4, 1)
    else:  # no strangers accepted and nobody missed at any threshold: nothing to draw on log scales
        axes.text(0.5, 0.5, "no errors to plot", ha="center", transform=axes.transAxes)
    axes.set_xlabel("FPIR (strangers accepted as someone)")
    axes.set_ylabel("FNIR (enrolled people not recognized)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
