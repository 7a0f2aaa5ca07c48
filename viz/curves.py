"""Line plots of necessity and early-exit curves (`interp.curves`): one line per curve, thoughts on the x axis.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> c = SimpleNamespace(name="pointer3", kind="necessity", steps=[0, 1, 2, 3],
    ...                     values={"accuracy": np.array([0.0, 0.0, 0.0, 0.94])})
    >>> fig = curves([c], "accuracy")
    >>> len(fig.data), list(fig.data[0].x)
    (1, [0, 1, 2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = ["curves"]

_X = {"necessity": "thoughts run before <eot>", "early_exit": "thoughts seen (0 = at <bot>)"}


def curves(items: Sequence[Any], metric: str, title: str | None = None) -> go.Figure:
    """One line per curve (objects with `.name`, `.kind`, `.steps`, `.values[metric]`; optional
    `.values[metric + "_lo"/"_hi"]` are drawn as error bars).

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> c = SimpleNamespace(name="pointer3", kind="early_exit", steps=[0, 1, 2],
    ...                     values={"accuracy": np.array([0.1, 0.5, 0.9]), "accuracy_lo": np.array([0.0, 0.4, 0.8]),
    ...                             "accuracy_hi": np.array([0.2, 0.6, 0.95])})
    >>> fig = curves([c], "accuracy")
    >>> fig.layout.xaxis.title.text, [round(v, 2) for v in fig.data[0].error_y.array]    # error bars: hi - value
    ('thoughts seen (0 = at <bot>)', [0.1, 0.1, 0.05])
    """
    if not items:
        raise ValueError("curves([]): pass at least one curve (interp.curves.necessity / early_exit).")
    fig = go.Figure()
    for c in items:
        if metric not in c.values:
            raise ValueError(f"metric={metric!r} is not in curve {c.name!r}; it has {sorted(c.values)}.")
        y = [float(v) for v in c.values[metric]]
        err = None
        if f"{metric}_lo" in c.values and f"{metric}_hi" in c.values:
            lo, hi = c.values[f"{metric}_lo"], c.values[f"{metric}_hi"]
            err = dict(type="data", symmetric=False, array=[float(h - v) for h, v in zip(hi, y)],
                       arrayminus=[float(v - low) for v, low in zip(y, lo)])
        fig.add_trace(go.Scatter(x=list(c.steps), y=y, mode="lines+markers", name=str(c.name), error_y=err))
    kind = items[0].kind
    fig.update_layout(title=title or f"{kind.replace('_', '-')}: {metric}", xaxis_title=_X.get(kind, "thoughts"),
                      yaxis_title=metric, template="plotly_white", width=640, height=400)
    fig.update_xaxes(dtick=1)
    return fig
