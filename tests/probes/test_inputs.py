"""probes.inputs: what a user passes to a sweep becomes checked arrays: an array's axes named, a real
ActivationCache (interp, tiny-llama) read cell by cell exactly as the cache gives it (aliases, validity, meta), and
bad input refused before any work with the problem named."""

import numpy as np
import pytest

from probes.inputs import check_finite, check_fit_args, check_grid, check_sweep_inputs, is_cache, resolve


@pytest.fixture(scope="module")
def cache():
    """Every token of 8 instructed-facts prompts (different lengths: late positions are valid for some only)."""
    import interp
    import probes

    task = probes.tasks.load("instructed-facts", n=8, seed=0)
    return interp.cache(interp.load_model("tiny-llama"), task, positions="all")


def test_arrays_of_any_rank_get_named_axes():
    rng = np.random.default_rng(0)
    X4 = rng.normal(size=(6, 2, 3, 5))
    inp = resolve(X4, labels=[0, 1] * 3, groups=[0, 0, 1, 1, 2, 2], layers=[4, 8], positions=["a", "b", "c"])
    assert (inp.layers, inp.positions, inp.d) == ([4, 8], ["a", "b", "c"], 5) and inp.valid.all()
    np.testing.assert_array_equal(inp.read_layer(1), X4[:, 1].astype(np.float32))
    assert inp.read_layer(1).dtype == np.float32 and inp.y.dtype == np.int64
    X3 = rng.normal(size=(6, 2, 5))                                     # [sample, layer, d]: one position "0"
    assert resolve(X3, labels=[0, 1] * 3, groups=np.arange(6)).positions == ["0"]
    X2 = rng.normal(size=(6, 5))                                        # [sample, d]: one cell
    inp = resolve(X2, labels=[0, 1] * 3, groups=np.arange(6))
    assert (inp.layers, inp.positions) == ([0], ["0"]) and np.array_equal(inp.read_layer(0)[:, 0], X2.astype("f4"))
    reg = resolve(X2, labels=np.arange(6) * 0.5, groups=np.arange(6), regression=True)
    assert reg.y.dtype == np.float64 and reg.y.tolist() == [0, 0.5, 1, 1.5, 2, 2.5]
    mc = resolve(X2, labels=[0, 1, 2, 0, 1, 2], groups=np.arange(6), multiclass=True)
    assert mc.y.tolist() == [0, 1, 2, 0, 1, 2]
    valid = np.ones((6, 3), bool)
    valid[0, 2] = False
    assert not resolve(X4, labels=[0, 1] * 3, groups=np.arange(6), valid=valid).valid[0, 2]


def test_a_cache_is_read_exactly_as_the_cache_gives_it(cache):
    last_tok = cache.positions[-1]                                      # exists for one sample only
    inp = resolve(cache, positions=["tok_0", last_tok, "prompt[-1]"], layers=[2, 0])
    assert is_cache(cache) and inp.layers == [2, 0] and inp.positions == ["tok_0", last_tok, "prompt[-1]"]
    assert inp.y.tolist() == cache.samples["label"].tolist() and inp.groups.tolist() == cache.samples["group"].tolist()
    assert inp.meta["model"] == "tiny-llama" and inp.d == cache.meta["d_model"] == 64
    assert inp.valid[:, 1].tolist() == np.asarray(cache.valid)[:, cache.positions.index(last_tok)].tolist()
    assert inp.valid[:, [0, 2]].all() and inp.valid[:, 1].sum() == 1
    for li, layer in enumerate(inp.layers):
        X = inp.read_layer(li)
        for pj, p in enumerate(inp.positions):
            np.testing.assert_array_equal(X[:, pj], cache.sel(layer=layer, position=p, allow_missing=True))
    control = resolve(cache, positions=["tok_0"], control="label").control
    assert control.tolist() == cache.samples["label"].tolist()


def test_a_cache_refuses_what_it_does_not_hold(cache):
    with pytest.raises(KeyError, match="layer 7 is not in the cache"):
        resolve(cache, layers=[7])
    with pytest.raises(KeyError, match="position 'latent_0' is not in the cache"):
        resolve(cache, positions=["latent_0"])
    with pytest.raises(KeyError, match="target column 'honesty' is not in the cache's sample table"):
        resolve(cache, target="honesty")


def test_array_errors_name_the_problem():
    X = np.zeros((4, 1, 1, 3))
    with pytest.raises(ValueError, match="without labels="):
        resolve(X, groups=np.arange(4))
    with pytest.raises(ValueError, match="mismatched sample counts: activations have 4 samples, labels 3"):
        resolve(X, labels=[0, 1, 0], groups=np.arange(4))
    with pytest.raises(ValueError, match="groups contain missing values"):
        resolve(X, labels=[0, 1, 0, 1], groups=[0, None, 1, 1])
    with pytest.raises(ValueError, match="one class only"):
        resolve(X, labels=[1, 1, 1, 1], groups=np.arange(4))
    with pytest.raises(ValueError, match="labels must be numeric"):
        resolve(X, labels=["yes", "no", "yes", "no"], groups=np.arange(4))
    with pytest.raises(ValueError, match="labels contain NaN/inf"):
        resolve(X, labels=[0.0, np.nan, 1.0, 0.0], groups=np.arange(4))
    with pytest.raises(ValueError, match="must have lengths 1 and 1"):
        resolve(X, labels=[0, 1, 0, 1], groups=np.arange(4), layers=[0, 1])
    with pytest.raises(ValueError, match="activations have shape \\(4, 1, 1, 1, 3\\)"):
        resolve(X[..., None, :], labels=[0, 1, 0, 1], groups=np.arange(4))
    with pytest.raises(ValueError, match="must be an ActivationCache"):
        resolve("runs/cache", labels=[0, 1], groups=[0, 1])


def test_argument_checks_before_any_work():
    check_fit_args(folds=5, Cs=(0.1, 1.0), n_permutations=None, n_bootstrap=None, test_size=0.25, inherit=True)
    for name in ("n_permutations", "n_bootstrap"):        # None means "the grid's" for text_baseline only
        with pytest.raises(ValueError, match=f"{name}=None: must be an integer"):
            check_fit_args(**{name: None})
    for kwargs, named in [({"folds": 1}, "folds=1"), ({"Cs": (0.0,)}, "Cs="), ({"inner_folds": 1}, "inner_folds=1"),
                          ({"n_bootstrap": 5}, "n_bootstrap=5"), ({"test_size": 1.0}, "test_size=1.0"),
                          ({"device": 3}, "device=3"), ({"target": 5}, "target=5"), ({"progress": "yes"}, "progress=")]:
        with pytest.raises(ValueError, match=named.replace("(", "\\(").replace(")", "\\)")):
            check_fit_args(**kwargs)
    with pytest.raises(ValueError, match="must be a ProbeGrid"):
        check_grid("grid", {"auroc": 1})


def test_constant_target_too_many_folds_and_non_finite_cells():
    inp = resolve(np.zeros((6, 1, 1, 2)), labels=np.full(6, 2.0), groups=np.arange(6), regression=True)
    with pytest.raises(ValueError, match="a constant target has nothing to predict"):
        check_sweep_inputs(inp, folds=2, target="value")
    inp = resolve(np.zeros((6, 1, 1, 2)), labels=[0, 1] * 3, groups=[0, 0, 1, 1, 2, 2])
    check_sweep_inputs(inp, folds=3, target=None)
    with pytest.raises(ValueError, match="folds=4: is more than the 3 groups"):
        check_sweep_inputs(inp, folds=4, target=None)
    X = np.zeros((3, 3, 2))
    X[0, 2, 1] = np.inf
    X[1, 0, 0] = np.nan
    check_finite(X, np.array([[0, 1, 0], [0, 1, 1], [1, 1, 1]], bool), 0, ["a", "b", "c"])   # bad cells not valid
    with pytest.raises(ValueError, match=r"layer 3, positions \['a', 'c'\] \(2 sample-cells\)"):
        check_finite(X, np.ones((3, 3), bool), 3, ["a", "b", "c"])
