import json
import re
from html.parser import HTMLParser

import plotly.graph_objects as go
import pytest

import viz
from app.cli import main as cli_main
from probes.grid import Finding, ProbeGrid

HOSTILE = "<script>alert(1)</script>"
CLOSER = 'value </script><script>alert("config")</script> end'


class _Collect(HTMLParser):
    """Script bodies and visible text nodes, as a browser's parser would split the page."""

    def __init__(self):
        super().__init__()
        self.scripts, self.text, self.tags, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        (self.scripts if self._in == "script" else self.text).append(data)


def _hostile_grid(grid):
    g = ProbeGrid(
        layers=grid.layers,
        positions=grid.positions,
        metrics=grid.metrics,
        scores=grid.scores,
        y=grid.y,
        groups=grid.groups,
        warnings=list(grid.warnings),
        config=dict(grid.config),
    )
    g.config["sample_text"] = CLOSER
    g.config["nested"] = {"prompt": HOSTILE}
    g.warnings.append(Finding("leak", f"question {HOSTILE} seen twice", "warning", [(1, "bot")]))
    return g


def test_hostile_text_is_escaped_everywhere(grid, big_grid, tmp_path):
    g = _hostile_grid(grid)
    lens = {(1, "latent_0"): [("</script>", 0.5)]}
    out = viz.report(
        [g, big_grid],
        out=tmp_path / "r.html",
        title=f"T {HOSTILE}",
        names=[f"m {HOSTILE}", "big"],
        lens=viz.LensTable.from_dict(lens, meta={"question": CLOSER}),
        extra_sections=[(f"extra {HOSTILE}", f"plain {HOSTILE}"), ("fig", go.Figure())],
    )
    doc = out.read_text()
    p = _Collect()
    p.feed(doc)
    scripts = [t for t, _ in p.tags if t == "script"]
    n_figures = doc.count('data-figure="figure-')
    assert n_figures == 2 * 2 + 1 + 1 + 1  # heatmap+roc per grid, compare, lens, extra fig
    assert len(scripts) == 1 + n_figures + 1  # plotly.js, one JSON block per figure, the drawer
    assert len(p.scripts) == len(scripts)  # no script element was opened by data
    for body in p.scripts[1:-1]:  # every JSON block parses whole: nothing broke out
        fig = json.loads(body)
        assert "data" in fig and "layout" in fig
        assert "<" not in body and ">" not in body
    text = "".join(p.text)
    assert f"T {HOSTILE}" in text and f"question {HOSTILE} seen twice" in text and CLOSER in text
    assert f"plain {HOSTILE}" in text and f"m {HOSTILE}" in text
    assert "<tr><td><code>nested.prompt</code></td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td></tr>" in doc
    assert "alert(1)" not in "".join(p.scripts[0:1]) + p.scripts[-1]
    assert doc.count("<script>alert") == 0 and doc.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    # offline: no external resources
    assert not [a for t, a in p.tags if re.match(r"https?:", a.get("src", "") + a.get("href", ""))]
    assert "Plotly.newPlot" in p.scripts[-1] and len(p.scripts[0]) > 3_000_000  # plotly.js inline


def test_report_sections_and_verdicts(grid, tmp_path):
    out = viz.report(grid, out=tmp_path / "one.html", title="One")
    doc = out.read_text()
    assert "Do not trust these numbers yet: 1 check(s) failed with an error" in doc
    assert "identical_features" in doc and "L2/latent_0, L2/latent_1" in doc
    layer, pos = grid.best("auroc", positions=["latent_0", "latent_1"])
    assert (
        f"best latent cell: layer {layer}, <code>{pos}</code>: auroc {grid.sel('auroc', layer, pos):.3f}"
        in doc
    )
    n_cells = int((grid.metrics["p_corrected"] >= 0).sum())
    floor = 1 / (grid.config["n_permutations"] + 1)
    tail = f"; the floor for {grid.config['n_permutations']} permutations"
    p, pc = grid.sel("p_value", layer, pos), grid.sel("p_corrected", layer, pos)
    assert (
        f"p = {p:.3g} (uncorrected{tail if p <= floor * (1 + 1e-9) else ''}), "
        f"p_FWER = {pc:.3g} (max-T over {n_cells} cells{tail if pc <= floor * (1 + 1e-9) else ''})" in doc
    )
    assert "Run config of tiny-llama" in doc and "<tr><td><code>n_layers</code></td><td>4</td></tr>" in doc
    assert "Across models" not in doc  # one grid: no comparison
    clean = ProbeGrid(
        layers=grid.layers,
        positions=grid.positions,
        metrics=grid.metrics,
        scores=grid.scores,
        y=grid.y,
        groups=grid.groups,
        config=grid.config,
    )
    assert "No check failed" in viz.report(clean, out=tmp_path / "c.html").read_text()


def test_bad_input_raises_before_writing(grid, tmp_path):
    out = tmp_path / "never.html"
    with pytest.raises(ValueError, match="at least one"):
        viz.report([], out=out)
    with pytest.raises(ValueError, match="one name per grid"):
        viz.report([grid], out=out, names=["a", "b"])
    with pytest.raises(TypeError, match="ProbeGrid.load"):
        viz.report(["runs/probe"], out=out)
    with pytest.raises(TypeError, match="extra_sections"):
        viz.report([grid], out=out, extra_sections=["<b>raw html</b>"])
    assert not out.exists()


def test_png_skipped_with_a_clear_message_without_browser(grid, tmp_path, monkeypatch):
    monkeypatch.setenv("CODI_LENS_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert viz.find_browser() is None
    with pytest.warns(
        UserWarning, match="PNG export skipped: no headless Chromium.*apt-get install -y chromium"
    ):
        out = viz.report(grid, out=tmp_path / "r.html", png=tmp_path / "r.png")
    assert out.exists() and not (tmp_path / "r.png").exists()


def test_cli_report(grid, big_grid, tmp_path, capsys):
    grid.save(tmp_path / "a")
    big_grid.save(tmp_path / "b")
    viz.LensTable.from_dict({(1, "latent_0"): [(" 4", 0.5)]}).save(tmp_path / "lens.json")
    rc = cli_main(
        [
            "report",
            "--probe",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--out",
            str(tmp_path / "r.html"),
            "--name",
            "small",
            "big",
            "--title",
            "CLI <x>",
            "--lens",
            str(tmp_path / "lens.json"),
        ]
    )
    assert rc == 0 and "wrote" in capsys.readouterr().out
    doc = (tmp_path / "r.html").read_text()
    assert "<h1>CLI &lt;x&gt;</h1>" in doc and "Across models" in doc and "Logit lens" in doc
    assert cli_main(["report", "--probe", str(tmp_path / "missing"), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "--probe" in err and "none is there" in err and not (tmp_path / "x.html").exists()


def test_regression_grid_draws_r2_and_no_roc(tmp_path):
    import numpy as np
    import torch
    from viz_synthetic import POSITIONS, activations

    import probes

    x, _, groups = activations(n_layers=2)
    target = x[:, 2, POSITIONS.index("latent_1"), 0] + np.random.default_rng(0).normal(size=len(groups))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = probes.sweep(x, labels=target, groups=groups, method="ridge", layers=[0, 1, 2], positions=POSITIONS,
                         n_permutations=4, n_bootstrap=50, progress=False)
    finally:
        torch.set_num_threads(threads)
    fig = viz.heatmap(g, metric="r2")
    assert fig.data[0].zmid == 0.0 and np.asarray(fig.data[0].z)[2, 4] == g.sel("r2", 2, "latent_1")
    doc = viz.report(g, out=tmp_path / "ridge.html").read_text()
    assert doc.count('data-figure="figure-') == 1 and "r2 per layer and position" in doc


def test_report_takes_a_neutral_grid_beside_a_probe_grid(grid, neutral_grid, tmp_path):
    """A probe grid and an ablation grid in one report: both get their heatmap; only the probe grid gets a ROC
    figure (the neutral one has no labels); the neutral grid's meta line says what it is."""
    doc = viz.report([grid, neutral_grid], out=tmp_path / "mixed.html", names=["probe", "ablation"],
                     metric="auroc").read_text()
    assert "ablation of 5 samples" in doc and "2 result grid(s)" in doc
    assert "This grid has no auroc metric" in doc  # the ablation grid, asked for auroc
    doc = viz.report(neutral_grid, out=tmp_path / "abl.html", metric="delta_logp").read_text()
    assert doc.count('data-figure="figure-') == 1 and "delta_logp per layer and position" in doc
    assert "nothing moved at &lt;eot&gt;" in doc
