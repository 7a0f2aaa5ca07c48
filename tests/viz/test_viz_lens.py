import numpy as np
import pytest

import viz
from viz.lens import LensTable, show_token

TOP = {
    (3, "latent_1"): [(" 18", 0.61), ("18", 0.12), ("<s>", 0.05)],
    (3, "latent_0"): [("</script>", 0.30)],
    (0, "latent_1"): [("\n", 0.9)],
    (0, "bot"): [],
}


def test_tokens_and_probs_in_their_cells():
    fig = viz.lens(TOP, mark="18")
    hm = fig.data[0]
    assert list(hm.x) == ["bot", "latent_0", "latent_1"] and list(hm.y) == [0, 3]
    z = np.asarray(hm.z, dtype=float)
    assert z[1, 2] == 0.61 and hm.text[1][2] == "␣18"
    assert z[1, 1] == 0.30 and hm.text[1][1] == "&lt;/script&gt;"
    assert z[0, 2] == 0.9 and hm.text[0][2] == "⏎"
    assert np.isnan(z[0, 1]) and hm.text[0][1] == ""  # missing cell
    assert np.isnan(z[0, 0]) and "(no tokens)" in hm.hovertext[0][0]
    hover = hm.hovertext[1][2]
    assert "layer 3, latent_1" in hover and "␣18  0.610" in hover and "18  0.120" in hover
    assert "&lt;s&gt;  0.050" in hover
    assert (hm.zmin, hm.zmax) == (0, 1)
    marked = [t for t in fig.data if t.name == "marked token"][0]
    assert list(zip(marked.x, marked.y)) == [("latent_1", 3)]


def test_show_token():
    assert show_token(" hello world ") == "␣hello wo…"
    assert show_token("a<b") == "a&lt;b"


def test_save_load_roundtrip(tmp_path):
    t = LensTable.from_dict(TOP, meta={"model": "tiny-llama", "question": "<script>x</script>"})
    back = LensTable.load(t.save(tmp_path / "lens.json"))
    assert back.cells == t.cells and back.meta == t.meta
    with pytest.raises(FileNotFoundError, match="LensTable"):
        LensTable.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="layer, position"):
        LensTable({"latent_0": [("a", 0.1)]})
    with pytest.raises(ValueError, match="empty"):
        viz.lens({})


def test_draws_an_interp_logit_lens_result():
    import interp
    from interp.lens import logit_lens

    m = interp.load_model("tiny-llama")
    c = interp.cache(m, ["Tom has 3 apples </script>"], progress=False)
    result = logit_lens(c, layer=None, position=["tok_0", "last"], k=3, model=m)
    hm = viz.lens(result).data[0]
    cells = result.cells(sample=0)
    assert list(hm.x) == ["tok_0", "last"] and list(hm.y) == sorted({layer for layer, _ in cells})
    for (layer, p), top in cells.items():
        i, j = list(hm.y).index(layer), list(hm.x).index(p)
        assert hm.z[i][j] == pytest.approx(top[0][1]) and hm.text[i][j] == show_token(top[0][0])
    with pytest.raises(TypeError, match="LensResult"):
        viz.lens([1, 2])
