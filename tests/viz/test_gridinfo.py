"""viz.gridinfo: what figures read from any result grid (depth, model name, chance level, failed cells, hover text)
and the escaping of data text, on grids whose answers are known by construction."""

import math

import numpy as np
import pytest

from grids import Finding, ResultGrid
from viz.gridinfo import (
    CHANCE,
    cell_text,
    chance_of,
    failed_cells,
    fmt,
    metric_at,
    model_name_of,
    n_layers_of,
    plot_text,
)


def test_chance_levels_and_escaping():
    assert [chance_of(m) for m in ("auroc", "accuracy", "selectivity", "gap", "r2", "p_value")] == \
        [0.5, 0.5, 0.0, 0.0, 0.0, None]
    assert set(CHANCE) >= {"auroc_lo", "auroc_hi", "train_auroc", "pearson_r"}
    assert plot_text("<b>18</b> & 'x'") == "&lt;b&gt;18&lt;/b&gt; &amp; 'x'" and plot_text(7) == "7"


def test_depth_and_model_name_are_found_in_nested_configs():
    g = ResultGrid([0], ["a"], {}, config={"cache": {"meta": {"n_layers": 18, "model_name": "gemma3-270m"}}})
    assert n_layers_of(g) == 18 and n_layers_of(g, n_layers=30) == 30 and model_name_of(g) == "gemma3-270m"
    assert model_name_of(ResultGrid([0], ["a"], {}, config={"model": "smollm2-135m", "base_model": "x"})) == \
        "smollm2-135m"
    too_deep = ResultGrid([0], ["a"], {}, config={"a": {"b": {"c": {"d": {"n_layers": 3}}}}})
    with pytest.raises(ValueError, match="pass n_layers="):
        n_layers_of(too_deep)
    assert model_name_of(too_deep) == "model" and model_name_of(too_deep, default="grid 2") == "grid 2"


def test_failed_cells_are_the_error_and_warning_findings_cells():
    g = ResultGrid([0, 1], ["bot", "latent_0"], {}, warnings=[
        Finding("identical_features", "same", "error", [(0, "bot"), (1, "bot")]),
        Finding("low_n", "few", "warning", [(1, "bot")]),
        Finding("note", "fyi", "info", [(0, "latent_0")])])
    assert failed_cells(g) == {(0, "bot"): ["error identical_features: same"],
                               (1, "bot"): ["error identical_features: same", "warning low_n: few"]}


def test_numbers_for_display():
    assert [fmt(x) for x in (0.5, 0.12345, 1e-4, 0.0, -0.00012, None, math.nan, np.float32("nan"), np.inf)] == \
        ["0.500", "0.123", "0.0001", "0.000", "-0.00012", "n/a", "n/a", "n/a", "n/a"]
    assert fmt(3.14159, digits=1) == "3.1"


def test_cell_text_with_and_without_ci_p_and_n():
    auroc = np.array([[0.5, 0.75]])
    full = ResultGrid([4], ["q[-1]", "<eot>"], {"auroc": auroc, "auroc_lo": auroc - 0.1, "auroc_hi": auroc + 0.1,
                                                "p_value": np.array([[0.5, 0.002]]), "n_test": np.array([[30.0, 12]])})
    assert cell_text(full, "auroc", 0, 1) == ("layer 4, &lt;eot&gt;<br>auroc = 0.750  (95% CI [0.650, 0.850])<br>"
                                              "p = 0.002<br>n = 12")
    assert metric_at(full, "auroc", 0, 1) == 0.75 and math.isnan(metric_at(full, "f1", 0, 0))
    scores = np.full((1, 2, 5), np.nan)
    scores[0, 0, :3] = 1.0                                          # n from the held-out scores when no n_test
    bare = ResultGrid([4], ["a", "b"], {"accuracy": np.array([[0.6, 0.7]])}, scores=scores)
    assert cell_text(bare, "accuracy", 0, 0) == "layer 4, a<br>accuracy = 0.600<br>n = 3"
    assert cell_text(ResultGrid([0], ["a"], {"x": np.array([[1.0]])}), "x", 0, 0) == "layer 0, a<br>x = 1.000"
