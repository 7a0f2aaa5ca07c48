"""`codi-lens organism list / compare / train` on the shipped organisms (app/organism_commands.py; `codi-lens
models`, which lists them too, is tested in test_commands.py)."""

from __future__ import annotations

import re
from html import unescape

from app.cli import main


def test_list_shows_every_shipped_organism_with_its_table(capsys):
    import codi

    assert main(["organism", "list"]) == 0
    out = capsys.readouterr().out
    for name in codi.organisms.available():
        assert re.search(rf"^{name}\s+\d-hop pointer, 8 nodes", out, re.M), out


def test_compare_writes_one_report_across_depths(tmp_path):
    out = tmp_path / "c.html"
    assert main(["organism", "compare", "pointer3", "pointer4", "--n", "60", "--pairs", "10", "--permutations", "0",
                 "--out", str(out)]) == 0
    html = out.read_text()
    heads = [unescape(h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    assert heads[:3] == ["Organisms of different depth", "pointer3: value after hop 1", "pointer4: value after hop 1"]
    assert "Across models" in heads
    row = re.search(r"^pointer4\s+4\s+3\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", unescape(html), re.M)
    direct, written, codi_acc, zeroed = map(float, row.groups())
    assert codi_acc >= 0.9 and zeroed <= 0.25 and direct <= 0.25


def test_train_refuses_an_existing_folder_and_a_bad_family(tmp_path, capsys):
    assert main(["organism", "train", "--out", str(tmp_path)]) == 2
    assert "exists; choose a new folder" in capsys.readouterr().err
    assert main(["organism", "train", "--family", "maze", "--out", str(tmp_path / "new")]) == 2
    assert "--family 'maze'" in capsys.readouterr().err
