"""grids.folder: grid folders are written atomically and verify themselves on load.

Every damaged file is refused with an error that names it: a hand-edited value in grid.json or table.csv, a
truncated or bit-flipped scores.safetensors, a missing file, a grid.json that no longer matches its arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import formats
from grids import Finding, ResultGrid
from grids.folder import GRID_JSON, SCORES_FILE, TABLE_CSV, content_sha256


def _grid(scores: bool = True) -> ResultGrid:
    rng = np.random.default_rng(0)
    return ResultGrid([-1, 0, 2], ["latent_0", "latent_1", "eot"],
                      {"recovered": rng.normal(size=(3, 3)), "logit_diff": np.where(np.eye(3) > 0, np.nan, 1.25)},
                      scores=rng.normal(size=(3, 3, 5)).astype(np.float32) if scores else None,
                      warnings=[Finding("equal_answers", "1 of 5 pairs", "info"),
                                Finding("no_effect", "x", "warning", [(2, "eot")])],
                      config={"kind": "patching", "model": "tiny-llama", "n_layers": 2, "n": 5,
                              "baseline": {"logit_diff_clean": 2.5, "nested": [1, None]}})


def _equal(a: ResultGrid, b: ResultGrid) -> None:
    assert a.layers == b.layers and a.positions == b.positions and a.config == b.config
    assert sorted(a.metrics) == sorted(b.metrics)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k])
    assert (a.scores is None) == (b.scores is None)
    if a.scores is not None:
        np.testing.assert_array_equal(a.scores, b.scores)
    assert [w.to_dict() for w in a.warnings] == [w.to_dict() for w in b.warnings]


def test_round_trip_is_exact_and_leaves_no_temporaries(tmp_path):
    g = _grid()
    out = g.save(tmp_path / "g")
    assert sorted(p.name for p in out.iterdir()) == [GRID_JSON, SCORES_FILE, TABLE_CSV]
    assert not [p for p in tmp_path.iterdir() if formats.is_temporary(p)]
    _equal(g, ResultGrid.load(out))
    payload = json.loads((out / GRID_JSON).read_text())
    assert payload["format"] == "codi-lens.resultgrid/1" and set(payload["files"]) == {TABLE_CSV, SCORES_FILE}
    assert payload["files"][SCORES_FILE] == formats.file_sha256(out / SCORES_FILE)
    assert payload["content_sha256"] == content_sha256(payload)
    h = _grid(scores=False)
    _equal(h, ResultGrid.load(h.save(tmp_path / "h")))
    assert not (tmp_path / "h" / SCORES_FILE).exists()


def test_saving_over_a_grid_folder_keeps_other_files_and_drops_stale_ones(tmp_path):
    out = _grid().save(tmp_path / "g")
    (out / "heatmap.html").write_text("<html></html>")
    h = _grid(scores=False)
    h.save(out)
    assert sorted(p.name for p in out.iterdir()) == [GRID_JSON, "heatmap.html", TABLE_CSV]
    _equal(h, ResultGrid.load(out))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        _grid().save(tmp_path / "file")


def test_not_json_able_raises_before_writing(tmp_path):
    g = _grid()
    g.config["bad"] = object()
    with pytest.raises(TypeError):
        g.save(tmp_path / "g")
    assert not (tmp_path / "g").exists() and list(tmp_path.iterdir()) == []


def _edit_json(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d, indent=1))


def _flip(path: Path, at: int) -> None:
    b = bytearray(path.read_bytes())
    b[at] ^= 0x01
    path.write_bytes(bytes(b))


TAMPER = {
    "metric value edited in grid.json": (GRID_JSON, lambda p: _edit_json(p, lambda d: d["metrics"]["recovered"][0]
                                                                         .__setitem__(0, 0.5))),
    "layer edited in grid.json": (GRID_JSON, lambda p: _edit_json(p, lambda d: d["layers"].__setitem__(0, 1))),
    "finding removed from grid.json": (GRID_JSON, lambda p: _edit_json(p, lambda d: d["warnings"].pop())),
    "config edited in grid.json": (GRID_JSON, lambda p: _edit_json(p, lambda d: d["config"].__setitem__("n", 6))),
    "grid.json cut short": (GRID_JSON, lambda p: p.write_text(p.read_text()[:200])),
    "grid.json not an object": (GRID_JSON, lambda p: p.write_text("[1, 2]")),
    "table.csv edited": (TABLE_CSV, lambda p: p.write_text(p.read_text().replace("latent_0", "latent_9", 1))),
    "table.csv missing": (TABLE_CSV, lambda p: p.unlink()),
    "scores bit flip": (SCORES_FILE, lambda p: _flip(p, p.stat().st_size - 7)),
    "scores header bit flip": (SCORES_FILE, lambda p: _flip(p, 20)),
    "scores truncated": (SCORES_FILE, lambda p: p.write_bytes(p.read_bytes()[:-16])),
    "scores missing": (SCORES_FILE, lambda p: p.unlink()),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_damaged_files_are_refused_naming_the_file(tmp_path, case):
    name, damage = TAMPER[case]
    out = _grid().save(tmp_path / "g")
    damage(out / name)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        ResultGrid.load(out)
    assert str(out / name) in str(err.value), (case, str(err.value))


def test_consistent_edit_with_recomputed_checksums_is_still_shape_checked(tmp_path):
    """Someone edits grid.json AND re-records its checksum: the shape/consistency checks still refuse a grid
    whose parts disagree, naming grid.json."""
    out = _grid().save(tmp_path / "g")
    path = out / GRID_JSON

    def drop_layer(d):
        d["layers"] = d["layers"][1:]
        d["content_sha256"] = content_sha256(d)

    _edit_json(path, drop_layer)
    with pytest.raises(ValueError, match="expected \\[layers, positions\\]") as err:
        ResultGrid.load(out)
    assert str(path) in str(err.value)

    def cell_outside(d):
        d["layers"] = [-1, 0, 3]
        d["content_sha256"] = content_sha256(d)

    _edit_json(path, cell_outside)
    with pytest.raises(ValueError, match="findings name cells that are not in the grid"):
        ResultGrid.load(out)


def test_unknown_format_and_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="grid.json not found"):
        ResultGrid.load(tmp_path / "nothing")
    out = _grid().save(tmp_path / "g")

    def other(d):
        d["format"] = "someone-else/3"
        d["content_sha256"] = content_sha256(d)

    _edit_json(out / GRID_JSON, other)
    with pytest.raises(ValueError, match="has format 'someone-else/3'"):
        ResultGrid.load(out)


def test_folders_written_before_checksums_still_load():
    """Folders saved by the code before the neutral grid (format codi-lens.probegrid/1, no checksums): an ablation
    grid as interp.patching wrote it (with the labels it had to fake) reads as a neutral grid, values intact."""
    old = Path(__file__).parent / "data" / "ablation_probegrid_v1"
    g = ResultGrid.load(old)
    assert g.layers == [-1, 1] and g.positions == ["latent_0", "latent_1"] and g.config.kind == "ablation"
    np.testing.assert_array_equal(g.metrics["delta_logp"], [[-0.25, 0.0], [0.125, np.nan]])
    np.testing.assert_array_equal(g.scores, np.arange(12, dtype=np.float32).reshape(2, 2, 3))
    assert g.config["baseline"] == {"answer_logp": -3.5} and not hasattr(g, "y")
