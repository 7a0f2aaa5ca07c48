"""Logit-lens tokens of each continuous thought per layer, drawn as an annotated layer x position grid.

Input: a `LensTable`, or the plain dict it is built from, mapping (layer, position) to the lens's top tokens
with their probabilities, best first:

    >>> import tempfile, pathlib, viz
    >>> top = {(12, "latent_0"): [(" 18", 0.61), ("18", 0.12)], (12, "latent_1"): [(" 9", 0.33)]}
    >>> fig = viz.lens(top)                          # or viz.lens(viz.LensTable.from_dict(top, meta=...))
    >>> fig.data[0].text                             # top-1 token per layer (row) and position, a leading space: ␣
    (['␣18', '␣9'],)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "lens.json"
    >>> viz.LensTable.from_dict(top).save(out).name   # what `codi-lens report --lens lens.json` reads
    'lens.json'

Cells missing from the dict are drawn empty. Tokens are shown as decoded strings (a leading space as a visible
`␣`), escaped so that `<s>` or `</think>` show as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

import formats
from viz.gridinfo import plot_text
from viz.heatmap import kind_shapes
from viz.position_kinds import run_order


@dataclass
class LensTable:
    """Top-k lens tokens per cell: cells[(layer, position)] = [(token, prob), ...], best first.

    `meta` is free text describing the run (model, lens kind, the sample's question) and is shown escaped.

    >>> import tempfile, pathlib
    >>> t = LensTable({(12, "latent_1"): [(" 9", 0.33)], (3, "latent_0"): [(" 18", 0.6), ("18", 0.1)]},
    ...               meta={"model": "tiny-llama"})
    >>> t.layers, t.positions
    ([3, 12], ['latent_0', 'latent_1'])
    >>> back = LensTable.load(t.save(pathlib.Path(tempfile.mkdtemp()) / "lens.json"))
    >>> back.cells == t.cells, back.meta
    (True, {'model': 'tiny-llama'})
    """

    cells: dict[tuple[int, str], list[tuple[str, float]]]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {}
        for key, top in self.cells.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise ValueError(
                    f"LensTable key {key!r} is not a (layer, position) pair, e.g. (12, 'latent_0')"
                )
            clean[(int(key[0]), str(key[1]))] = [(str(t), float(p)) for t, p in top]
        self.cells = clean

    @classmethod
    def from_dict(cls, cells: dict, meta: dict | None = None) -> LensTable:
        """Build from {(layer, position): [(token, prob), ...]}."""
        return cls(cells=dict(cells), meta=dict(meta or {}))

    @property
    def layers(self) -> list[int]:
        return sorted({layer for layer, _ in self.cells})

    @property
    def positions(self) -> list[str]:
        return run_order(sorted({p for _, p in self.cells}))

    def save(self, path: str | Path) -> Path:
        """Write JSON: {"meta": {...}, "cells": [{"layer": 12, "position": "latent_0", "top": [[t, p]]}]}."""
        payload = {
            "format": "codi-lens.lens/1",
            "meta": self.meta,
            "cells": [
                {"layer": layer, "position": p, "top": [[t, prob] for t, prob in top]}
                for (layer, p), top in sorted(self.cells.items())
            ],
        }
        text = json.dumps(payload, indent=1, ensure_ascii=False)
        path = Path(path)
        formats.atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LensTable:
        """Read a file written by `save`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"lens file {path} not found; write one with viz.LensTable(...).save(path)"
            )
        d = json.loads(path.read_text(encoding="utf-8"))
        if "cells" not in d:
            raise ValueError(f"{path} has no 'cells' list; is it a file written by LensTable.save?")
        return cls(
            cells={(c["layer"], c["position"]): [tuple(x) for x in c["top"]] for c in d["cells"]},
            meta=d.get("meta", {}),
        )


def show_token(token: str, width: int = 10) -> str:
    r"""A token as drawn in a cell: leading/trailing spaces visible, newlines as ⏎, cut to `width`, escaped.

    >>> show_token(" 18"), show_token("</think>"), show_token("a\nb "), show_token("abcdefghijkl", width=6)
    ('␣18', '&lt;/think&gt;', 'a⏎b␣', 'abcde…')
    """
    t = token.replace("\n", "⏎").replace("\t", "⇥")
    if t.startswith(" "):
        t = "␣" + t[1:]
    if t.endswith(" ") and len(t) > 1:
        t = t[:-1] + "␣"
    if len(t) > width:
        t = t[: width - 1] + "…"
    return plot_text(t)


def as_lens_table(table: object, sample: int = 0) -> LensTable:
    """A LensTable from a LensTable, a {(layer, position): [(token, prob), ...]} dict, or any object with a
    `.cells(sample=...)` method returning that dict (e.g. interp.lens.LensResult; its `.meta` is kept).

    >>> from types import SimpleNamespace
    >>> result = SimpleNamespace(cells=lambda sample: {(1, f"latent_{sample}"): [(" 4", 0.5)]}, meta={"lens": "logit"})
    >>> t = as_lens_table(result, sample=2)                  # the cells of sample 2 of a lens result
    >>> t.cells, t.meta
    ({(1, 'latent_2'): [(' 4', 0.5)]}, {'lens': 'logit'})
    >>> as_lens_table({(0, "bot"): [("a", 1.0)]}).positions   # or a plain dict
    ['bot']
    """
    if isinstance(table, LensTable):
        return table
    if isinstance(table, dict):
        return LensTable.from_dict(table)
    if callable(getattr(table, "cells", None)):
        return LensTable.from_dict(table.cells(sample=sample), meta=getattr(table, "meta", None))
    raise TypeError(
        f"lens input must be a viz.LensTable, a {{(layer, position): [(token, prob), ...]}} dict or an "
        f"object with .cells(sample=...) such as interp.lens.LensResult; got {type(table).__name__}"
    )


def lens(
    table: LensTable | dict,
    title: str | None = None,
    mark: list[str] | str | None = None,
    top_k: int = 5,
    sample: int = 0,
) -> go.Figure:
    """Annotated grid: y = layer, x = position (run order), cell text = top-1 token, colour = its probability;
    hover lists the top `top_k` tokens with probabilities. `mark` (a token or list of tokens, compared after
    stripping spaces) draws a square around cells whose top-1 token matches, e.g. an intermediate result "18".

    `table` may also be an interp.lens.LensResult: its cells for `sample` are drawn.

    >>> fig = lens({(3, "latent_0"): [(" 18", 0.6)], (3, "latent_1"): [(" 7", 0.2)]}, mark="18")
    >>> fig.data[0].text, fig.data[0].z.tolist()         # top-1 token and its probability per cell
    ((['␣18', '␣7'],), [[0.6, 0.2]])
    >>> fig.data[1].x, fig.data[1].y                      # the square around the marked token
    (('latent_0',), (3,))
    """
    table = as_lens_table(table, sample)
    if not table.cells:
        raise ValueError("lens() got an empty table; give {(layer, position): [(token, prob), ...]}")
    layers, positions = table.layers, table.positions
    z = np.full((len(layers), len(positions)), np.nan)
    text = [["" for _ in positions] for _ in layers]
    hover = [["" for _ in positions] for _ in layers]
    marks = {mark.strip()} if isinstance(mark, str) else {m.strip() for m in (mark or [])}
    marked = []
    for (layer, p), top in table.cells.items():
        i, j = layers.index(layer), positions.index(p)
        head = f"layer {layer}, {plot_text(p)}"
        if not top:
            hover[i][j] = head + "<br>(no tokens)"
            continue
        z[i, j] = top[0][1]
        text[i][j] = show_token(top[0][0])
        hover[i][j] = head + "".join(f"<br>{show_token(t, 24)}  {prob:.3f}" for t, prob in top[:top_k])
        if top[0][0].strip() in marks:
            marked.append((p, layer))
    traces = [
        go.Heatmap(
            z=z,
            x=positions,
            y=layers,
            text=text,
            hovertext=hover,
            texttemplate="%{text}",
            textfont={"size": 10},
            hovertemplate="%{hovertext}<extra></extra>",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "top-1 prob"}},
            hoverongaps=False,
            name="lens",
        )
    ]
    if marked:
        traces.append(
            go.Scatter(
                x=[p for p, _ in marked],
                y=[layer for _, layer in marked],
                mode="markers",
                name="marked token",
                showlegend=False,
                hoverinfo="skip",
                marker={"symbol": "square-open", "size": 26, "color": "#d62728", "line": {"width": 2}},
            )
        )
    fig = go.Figure(traces)
    shapes, notes = kind_shapes(positions)
    what = table.meta.get("lens", "logit lens")
    fig.update_layout(
        title={"text": plot_text(title) if title else f"{plot_text(what)}: top token per layer and position"},
        xaxis={
            "title": {"text": "position (run order)"},
            "type": "category",
            "range": [-0.5, len(positions) - 0.5],
        },
        yaxis={"title": {"text": "layer"}},
        shapes=shapes,
        annotations=notes,
        template="plotly_white",
        width=max(520, 200 + 70 * len(positions)),
        height=max(380, 170 + 24 * len(layers)),
        margin={"t": 80},
    )
    return fig
