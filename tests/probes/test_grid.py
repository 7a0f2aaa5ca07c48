import numpy as np
import pytest

from probes import Finding, ProbeGrid


def _grid():
    rng = np.random.default_rng(0)
    m = {"auroc": np.array([[0.5, 0.7], [0.9, np.nan]]), "p_value": np.array([[0.5, 0.1], [0.01, np.nan]])}
    return ProbeGrid(layers=[3, 7], positions=["latent_0", "resp_0"], metrics=m,
                     scores=rng.normal(size=(2, 2, 6)).astype(np.float32), y=np.array([0, 1] * 3),
                     groups=np.array(["a", "a", "b", "b", "c", "c"]),
                     warnings=[Finding("identical_features", "msg", "error", [(3, "latent_0")])],
                     config={"method": "logreg", "Cs": [0.1]})


def test_sel_best_table():
    g = _grid()
    assert g.best() == (7, "latent_0")
    assert g.best(positions=["resp_0"]) == (3, "resp_0")
    assert g.sel("auroc", layer=3, position="resp_0") == 0.7
    assert g.sel("auroc", position="latent_0").tolist() == [0.5, 0.9]
    t = g.table()
    assert list(t.columns[:4]) == ["layer", "position", "auroc", "p_value"]
    assert t.shape == (4, 4) and t.iloc[2].tolist()[:3] == [7, "latent_0", 0.9]
    with pytest.raises(KeyError, match="layer 5 is not in this grid"):
        g.sel("auroc", layer=5)
    with pytest.raises(KeyError, match="metric 'f1' not in this grid"):
        g.sel("f1")
    assert "ERROR identical_features" in g.summary()


def test_save_load_roundtrip(tmp_path):
    g = _grid()
    g.save(tmp_path / "g")
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["grid.json", "scores.safetensors", "table.csv"]
    h = ProbeGrid.load(tmp_path / "g")
    assert h.layers == g.layers and h.positions == g.positions
    np.testing.assert_array_equal(h.metrics["auroc"], g.metrics["auroc"])
    np.testing.assert_array_equal(h.scores, g.scores)
    assert h.groups.tolist() == g.groups.tolist() and h.y.tolist() == g.y.tolist()
    assert h.warnings[0].cells == [(3, "latent_0")] and h.warnings[0].severity == "error"
    assert h.config == g.config


def test_shape_errors():
    with pytest.raises(ValueError, match="expected \\[layers, positions\\]"):
        ProbeGrid(layers=[0], positions=["a"], metrics={"auroc": np.zeros((2, 1))}, scores=np.zeros((1, 1, 2)),
                  y=np.array([0, 1]), groups=np.array([0, 1]))
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "y", "fatal")


def test_p_text_names_the_permutation_floor():
    """With n permutations the smallest possible p is 1/(n+1): a p at that floor says so, others do not."""
    import numpy as np

    from probes.grid import ProbeGrid

    p = np.array([[1 / 11, 0.5]])
    g = ProbeGrid(layers=[0], positions=["a", "b"], metrics={"auroc": np.array([[0.9, 0.5]]), "p_value": p,
                                                            "p_corrected": np.array([[1 / 11, 0.9]])},
                  scores=np.zeros((1, 2, 4)), y=np.array([0, 1, 0, 1]), groups=np.arange(4),
                  config={"n_permutations": 10})
    assert g.p_text(0, "a") == ("p = 0.0909 (uncorrected; the floor for 10 permutations), p_FWER = 0.0909 "
                                "(max-T over 2 cells; the floor for 10 permutations)")
    assert g.p_text(0, "b") == "p = 0.5 (uncorrected), p_FWER = 0.9 (max-T over 2 cells)"


def test_finding_is_the_leafs():
    import grids

    assert Finding is grids.Finding and issubclass(ProbeGrid, grids.ResultGrid)


def test_saved_folder_verifies_itself(tmp_path):
    """A probe grid folder records a sha256 per file and refuses damaged ones, naming the file; the labels in
    grid.json and in scores.safetensors must agree."""
    import json

    from grids.folder import content_sha256

    out = _grid().save(tmp_path / "g")
    d = json.loads((out / "grid.json").read_text())
    assert d["format"] == "codi-lens.probegrid/2" and set(d["files"]) == {"table.csv", "scores.safetensors"}
    b = bytearray((out / "scores.safetensors").read_bytes())
    b[-3] ^= 0x10
    (out / "scores.safetensors").write_bytes(bytes(b))
    with pytest.raises(ValueError, match="scores.safetensors does not match the checksum"):
        ProbeGrid.load(out)
    out = _grid().save(tmp_path / "h")
    d = json.loads((out / "grid.json").read_text())
    d["y"] = d["y"][::-1]
    d["content_sha256"] = content_sha256(d)
    (out / "grid.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="grid.json: the labels y in grid.json and in scores.safetensors differ"):
        ProbeGrid.load(out)


def test_folders_saved_before_checksums_still_load():
    """tests/grids/data/probegrid_v1 was written by the ProbeGrid.save of the code before the neutral grid."""
    from pathlib import Path

    old = Path(__file__).parents[1] / "grids" / "data" / "probegrid_v1"
    h = ProbeGrid.load(old)
    g = _grid()
    assert h.layers == g.layers and h.positions == g.positions
    np.testing.assert_array_equal(h.metrics["auroc"], g.metrics["auroc"])
    np.testing.assert_array_equal(h.scores, g.scores)
    assert h.groups.tolist() == g.groups.tolist() and h.y.tolist() == g.y.tolist()
    assert h.warnings[0].cells == [(3, "latent_0")] and h.config["model"] == "legacy"


def test_result_grid_folder_is_not_a_probe_sweep(tmp_path):
    import grids
    from probes import load_grid

    r = grids.ResultGrid([0], ["a"], {"recovered": np.array([[0.5]])}, config={"kind": "patching"})
    r.save(tmp_path / "r")
    with pytest.raises(ValueError, match="holds a result grid \\(kind 'patching'\\), not a probe sweep"):
        ProbeGrid.load(tmp_path / "r")
    assert type(load_grid(tmp_path / "r")) is grids.ResultGrid
    assert type(load_grid(_grid().save(tmp_path / "p"))) is ProbeGrid
    with pytest.raises(ValueError, match="needs held-out scores"):
        ProbeGrid([0], ["a"], {}, None, np.array([0]), np.array([0]))
