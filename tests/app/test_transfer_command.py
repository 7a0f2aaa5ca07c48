"""`codi-lens transfer` on tiny-model caches: the saved grid equals probes.transfer called directly on the same
caches (threshold from the control's negatives), the chosen cell is printed, and bad input is refused with the
problem named before anything is written."""

import re

import numpy as np
import pytest

import interp
import probes
from app.cli import main
from app.transfer_command import common_positions

POS = ["prompt[-2]", "last"]


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    d = tmp_path_factory.mktemp("caches")
    m = interp.load_model("tiny-llama")
    out = {}
    for name, task in (("train", probes.tasks.load("deception-arith", n=40, seed=0)),
                       ("test", probes.tasks.load("instructed-facts", n=40, seed=0)),
                       ("control", probes.tasks.load("intermediate-values", n=30, seed=0))):
        out[name] = d / name
        interp.cache(m, task, layers=[1, 2], positions=POS, out=out[name], progress=False)
    interp.cache(m, probes.tasks.load("instructed-facts", n=40, seed=0), layers=[1], positions=POS,
                 out=d / "one-layer", progress=False)
    interp.cache(interp.load_model("tiny-gpt2"), probes.tasks.load("instructed-facts", n=40, seed=0), layers=[1, 2],
                 positions=POS, out=d / "gpt2", progress=False)
    pos_only = probes.tasks.load("deception-arith", n=40, seed=3).filter(lambda s: s["label"] == 1)
    interp.cache(m, pos_only, layers=[1, 2], positions=POS, out=d / "positives", progress=False)
    out.update(one_layer=d / "one-layer", gpt2=d / "gpt2", positives=d / "positives")
    return out


def _run(caches, out, *extra):
    return main(["transfer", "--train-cache", str(caches["train"]), "--test-cache", str(caches["test"]),
                 "--out", str(out), "--bootstrap", "100", *extra])


def test_saved_grid_equals_the_library_call(caches, tmp_path, capsys):
    out = tmp_path / "t"
    assert _run(caches, out, "--control-cache", str(caches["control"]), "--control-negatives",
                "--cell", "2,last") == 0
    printed = capsys.readouterr().out
    got = probes.ProbeGrid.load(out)
    tr, te, ct = (interp.load_cache(caches[k]) for k in ("train", "test", "control"))
    ref = probes.transfer(tr, None, None, te, None, None, control=ct, control_y=np.zeros(len(ct), int),
                          control_groups=None, positions=POS, n_bootstrap=100)
    for k in ("auroc", "auroc_lo", "auroc_hi", "recall_at_1pct_fpr", "test_fpr_at_threshold", "threshold_1pct_fpr"):
        np.testing.assert_allclose(got.metrics[k], ref.metrics[k], rtol=1e-6, err_msg=k)
    assert got.config["n_control"] == 30 and got.config["control_negatives"] is True
    assert (got.metrics["n_control_negatives"] == 30).all() and np.isnan(got.metrics["control_auroc"]).all()
    a = got.sel("auroc", 2, "last")
    assert f"chosen cell    layer   2 last       auroc {a:.3f}" in printed and "30 control negatives" in printed


def test_top_cells_without_a_chosen_cell(caches, tmp_path, capsys):
    assert _run(caches, tmp_path / "t") == 0
    printed = capsys.readouterr().out
    assert printed.count("best (test)") == 4 and "optimistic" in printed and "recall" not in printed


def test_bad_input_is_refused_before_writing(caches, tmp_path, capsys):
    out = tmp_path / "never"
    cases = [
        (["--control-cache", str(caches["control"])], "has no 0/1 column 'label'.*--control-negatives"),
        (["--control-cache", str(caches["positives"])], "the control set has one class only \\(\\[1\\]\\) and no "
                                                        "negatives"),
        (["--control-negatives"], "--control-negatives: needs --control-cache"),
        (["--cell", "latent_0"], "--cell 'latent_0': must be LAYER,POSITION"),
        (["--cell", "7,last"], "--cell '7,last': must be a cell of the grid"),
        (["--test-cache", str(tmp_path / "missing")], "--test-cache .*must be the path of an existing folder"),
        (["--test-cache", str(caches["gpt2"])], "was cached with model 'tiny-gpt2', the train cache with "
                                                "'tiny-llama'"),
        (["--test-cache", str(caches["one_layer"])], r"the train set has layers \[1, 2\], the test set \[1\]"),
    ]
    for extra, msg in cases:
        assert _run(caches, out, *extra) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("codi-lens transfer: error: ") and re.search(msg, err), (extra, err)
        assert not (out / "grid.json").exists()
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "grid.json").write_text("{}")
    assert _run(caches, tmp_path / "exists") == 2 and "already holds grid.json" in capsys.readouterr().err


def test_common_positions_keeps_the_first_order():
    class C:
        def __init__(self, p):
            self.positions = p
    assert common_positions([C(["q[-1]", "bot", "resp_5"]), C(["bot", "q[-1]"])]) == ["q[-1]", "bot"]
