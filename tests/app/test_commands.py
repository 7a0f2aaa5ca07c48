"""The commands of app/commands.py: `codi-lens patch` (ablate, patch, attribute, necessity, early-exit) on a
checkpoint folder and on a shipped organism; `codi-lens models` (the registry and the organisms). `codi-lens cache`
is tested in test_cache_command.py."""

from __future__ import annotations

import json

import torch

import codi
from app.cli import main


def test_cli_attribute_and_curves(tmp_path, capsys):
    from app.cli import main
    from codi.config import CODIConfig
    from codi.model import CODIModel
    from grids import ResultGrid

    torch.manual_seed(0)
    CODIModel.from_config(CODIConfig("tiny-llama", num_latents=2, lora_r=4)).save_pretrained(tmp_path / "run")
    common = ["--model", str(tmp_path / "run"), "--arith", "6", "--arith-steps", "2"]
    assert main(["patch", "--study", "attribute", *common, "--positions", "latents", "--verify-top", "3",
                 "--verify-sample", "4", "--out", str(tmp_path / "a")]) == 0
    g = ResultGrid.load(tmp_path / "a")
    assert g.config["kind"] == "attribution" and len(g.config["verification"]["top"]) == 3
    assert "AtP: 3 top cells and 4 random cells" in capsys.readouterr().out
    for study in ("necessity", "early-exit"):
        assert main(["patch", "--study", study, *common, "--out", str(tmp_path / study)]) == 0
        c = json.loads((tmp_path / study / "curve.json").read_text())
        assert c["steps"] == [0, 1, 2]
    assert main(["patch", "--study", "attribute", *common, "--verify-top", "-2", "--out", str(tmp_path / "b")]) == 2
    assert "--verify-top -2" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_cli_on_a_shipped_organism(tmp_path, capsys):
    from app.cli import main
    from grids import ResultGrid

    assert main(["patch", "--study", "attribute", "--organism", "pointer3", "--n", "8", "--hop", "2",
                 "--verify-top", "5", "--out", str(tmp_path / "a")]) == 0
    g = ResultGrid.load(tmp_path / "a")
    assert g.config["n"] == 8 and len(g.config["verification"]["top"]) == 5
    assert main(["patch", "--study", "necessity", "--organism", "pointer3", "--n", "50",
                 "--out", str(tmp_path / "n")]) == 0
    acc = json.loads((tmp_path / "n" / "curve.json").read_text())["values"]["accuracy"]
    assert acc[-1] > 0.8 and max(acc[:-1]) < 0.2, acc
    assert main(["patch", "--organism", "pointer9", "--out", str(tmp_path / "x")]) == 2
    assert "--organism 'pointer9': not shipped" in capsys.readouterr().err
    assert main(["patch", "--out", str(tmp_path / "x")]) == 2
    assert "exactly one of --model" in capsys.readouterr().err


def _tiny_codi_llama() -> codi.CODIModel:
    """A tiny-llama CODI model, 3 latents, LoRA B drawn at random (tests/interp/interventions' `llama` fixture)."""
    torch.manual_seed(0)
    cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=3, lora_r=4))
    with torch.no_grad():  # LoRA B starts at zero; give the adapter an effect
        for name, p in cm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return cm.eval()


def test_cli_patch_and_ablate(tmp_path, capsys):
    llama = _tiny_codi_llama()
    from app.cli import main
    from grids import ResultGrid

    llama.save_pretrained(tmp_path / "run")
    common = ["--model", str(tmp_path / "run"), "--arith", "4", "--arith-steps", "2"]
    assert (
        main(
            ["patch", *common, "--layers", "input,2", "--positions", "latents", "--out", str(tmp_path / "p")]
        )
        == 0
    )
    g = ResultGrid.load(tmp_path / "p")
    assert (
        g.layers == [-1, 2]
        and g.positions == ["latent_0", "latent_1", "latent_2"]
        and "recovered" in g.metrics
    )
    assert (
        main(
            [
                "patch",
                "--study",
                "ablate",
                *common,
                "--mode",
                "mean",
                "--merge",
                "--heatmap",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert (tmp_path / "a" / "heatmap.html").exists()
    assert ResultGrid.load(tmp_path / "a").config["mode"] == "mean"
    assert main(["patch", *common, "--out", str(tmp_path / "p")]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err


def test_models_lists_organisms_too(capsys):
    assert main(["models"]) == 0
    assert "pointer3   3-hop pointer" in capsys.readouterr().out


def test_models_prints_one_row_per_registry_name(capsys):
    from interp.models import model_info

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = model_info()
    assert lines[1].split()[:3] == ["name", "kind", "layers"]
    for line, r in zip(lines[2:], rows):
        assert line.split()[:2] == [r["name"], r["kind"].split()[0]]
        assert f" {r['n_layers']:>6} {r['d_model']:>7} " in line
        assert line.split()[-len(r["description"].split()) - 1] == ("yes" if r["present"] else "no")
    assert len(rows) >= 7 and {"smollm2-135m", "tiny-llama", "tiny-gpt2"} <= {r["name"] for r in rows}
