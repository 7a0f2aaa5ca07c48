"""Logit lens: read any cached residual through the model's final norm and unembedding.

    >>> import codi, interp
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=6, lora_r=4))
    >>> c = interp.cache(cm, ["Tom has 3 apples. He buys 2. How many?"], progress=False)
    >>> t = interp.lens.logit_lens(c, layer=None, position=["latent_0", "latent_1"], k=5, model=cm)
    >>> t.frame.shape                    # 3 layers x 2 positions x 5 tokens, one row each
    (30, 10)
    >>> t.frame.columns.tolist()
    ['sample', 'id', 'layer', 'position', 'view', 'rank', 'token_id', 'token', 'prob', 'logit']
    >>> pre = interp.lens.logit_lens(c, position="latent_0", view="pre_prj", model=cm)   # the thought's source
    >>> sorted(set(zip(pre.frame["layer"], pre.frame["view"])))                         # sits at layer n_layers
    [(2, 'pre_prj')]

`viz.lens(t.cells(sample=0))` draws the layer x position grid of top tokens.

Views of a continuous thought j (`position="latent_j"`):
- `view="resid"` (default): the residual stream at `layer` of position latent_j, through final norm + unembedding;
- `view="pre_prj"`: the last-layer hidden that produced thought j (HF `hidden_states[-1]`, already after the final
  norm, so only the unembedding is applied: exactly the model's own next-token logits at the step before);
- `view="post_prj"`: the embedding fed back (the projection's output), through final norm + unembedding.
In the table, `pre_prj` rows carry layer = n_layers and `post_prj` rows layer = 0 (where they sit in the stream).

The result, `LensResult`, holds a tidy pandas table (`.frame`) and `.cells(sample, view)`, the
`{(layer, position): [(token, prob), ...]}` dict that `viz.lens` draws (best first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor, nn

import poslabels
from basemodels.facts import is_codi, text_config
from interp.hooks import decoder_layers

__all__ = ["LensResult", "logit_lens", "final_norm", "unembed"]

VIEWS = ("resid", "pre_prj", "post_prj")


@dataclass
class LensResult:
    """Top-k lens tokens. `frame` columns: sample (row in the cache), id, layer, position, view, rank (0 = best),
    token_id, token (decoded string), prob, logit.

    >>> import interp
    >>> m = interp.load_model("tiny-gpt2")
    >>> t = logit_lens(interp.cache(m, ["a b c"], layers=[2], progress=False), position="last", k=3, model=m)
    >>> type(t).__name__, len(t.frame), t.meta["k"]
    ('LensResult', 3, 3)
    """

    frame: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def cells(
        self, sample: int = 0, view: str | None = None
    ) -> dict[tuple[int, str], list[tuple[str, float]]]:
        """`{(layer, position): [(token, prob), ...]}` of one sample and one view (default: the first view present),
        the input `viz.lens` draws.

        >>> import interp
        >>> m = interp.load_model("tiny-gpt2")
        >>> c = interp.cache(m, ["a b c"], layers=[1, 2], progress=False)
        >>> cells = logit_lens(c, position=["tok_0", "last"], k=2, model=m).cells(0)
        >>> sorted(cells)
        [(1, 'last'), (1, 'tok_0'), (2, 'last'), (2, 'tok_0')]
        >>> [type(x).__name__ for x in cells[(2, "last")][0]]         # (token, prob), best first
        ['str', 'float']
        """
        f = self.frame[self.frame["sample"] == sample]
        if f.empty:
            raise ValueError(
                f"sample {sample} is not in this lens table (samples {sorted(set(self.frame['sample']))})."
            )
        view = view or str(f["view"].iloc[0])
        f = f[f["view"] == view].sort_values(["layer", "position", "rank"])
        out: dict[tuple[int, str], list[tuple[str, float]]] = {}
        for (layer, p), g in f.groupby(["layer", "position"], sort=False):
            out[(int(layer), str(p))] = list(zip(g["token"].tolist(), g["prob"].astype(float).tolist()))
        return out

    def top(self, layer: int, position: str, sample: int = 0, view: str = "resid") -> list[tuple[str, float]]:
        """Top tokens of one cell, best first.

        >>> import interp
        >>> m = interp.load_model("tiny-gpt2")
        >>> t = logit_lens(interp.cache(m, ["a b c"], layers=[2], progress=False), position="last", k=4, model=m)
        >>> probs = [p for _, p in t.top(2, "last")]
        >>> len(probs), probs == sorted(probs, reverse=True)
        (4, True)
        """
        f = self.frame
        g = f[
            (f["sample"] == sample)
            & (f["layer"] == layer)
            & (f["position"] == position)
            & (f["view"] == view)
        ]
        if g.empty:
            raise ValueError(
                f"no lens row for sample {sample}, layer {layer}, position {position!r}, view {view!r}."
            )
        g = g.sort_values("rank")
        return list(zip(g["token"].tolist(), g["prob"].astype(float).tolist()))


def final_norm(model: nn.Module) -> nn.Module | None:
    """The final norm applied after the last decoder block (`model.norm`, `transformer.ln_f`, ...), found as the
    norm-like child of the module that holds the decoder blocks; None if the architecture has none.

    >>> import interp
    >>> type(final_norm(interp.load_model("tiny-llama").model)).__name__
    'LlamaRMSNorm'
    """
    blocks = decoder_layers(model)
    for _, mod in model.named_modules():
        if any(child is blocks for child in mod.children()):
            norms = [
                c
                for n, c in mod.named_children()
                if "norm" in type(c).__name__.lower() or n in ("ln_f", "norm")
            ]
            return norms[-1] if norms else None
    return None


def unembed(model: nn.Module, h: Float[Tensor, "... d"], normed: bool = False) -> Float[Tensor, "... vocab"]:
    """Logits of residual vectors: final norm (unless `normed`) then the LM head (+ soft-capping where the config
    has it). Returns float32.

    >>> import interp
    >>> m = interp.load_model("tiny-llama")
    >>> unembed(m.model, torch.randn(3, 64)).shape          # [..., vocab] float32
    torch.Size([3, 512])
    """
    head = model.get_output_embeddings()
    dt = head.weight.dtype
    h = h.to(head.weight.device, dt)
    if not normed:
        norm = final_norm(model)
        if norm is not None:
            h = norm(h)
    logits = head(h).float()
    cap = getattr(text_config(model.config), "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _parts(model: Any, tokenizer: Any) -> tuple[nn.Module, Any, int | None]:
    """(HF model, tokenizer, vocab limit) of a CODI model, an interp.Model or a raw HF model."""
    if is_codi(model):
        return model.model, model.tokenizer, model.vocab_size
    if hasattr(model, "model") and hasattr(model, "tokenizer") and isinstance(model.model, nn.Module):
        return model.model, tokenizer or model.tokenizer, len(model.tokenizer)
    if isinstance(model, nn.Module):
        if tokenizer is None:
            raise ValueError("a raw Hugging Face model needs tokenizer= to decode the lens tokens.")
        return model, tokenizer, len(tokenizer)
    raise TypeError(
        f"cannot use {type(model).__name__} as a lens model; pass a codi model, an interp.Model or a "
        "Hugging Face model with tokenizer=."
    )


def _as_list(x: Any, default: Sequence) -> list:
    if x is None:
        return list(default)
    if isinstance(x, (str, int, np.integer)):
        return [x]
    return list(x)


def _unembedding_model(c: Any, model: Any) -> Any:
    """The model whose final norm and unembedding read the cache: `model=`, else the CODI model this session cached
    it from, else the registry model named in its meta (a CODI cache without its model is an error)."""
    model = model if model is not None else getattr(c, "source_model", None)
    if model is not None:
        return model
    name = c.meta.get("model", "")
    if c.meta.get("codi"):
        raise ValueError(
            f"this CODI cache ({name}) needs its model for the unembedding: pass model=<the "
            f"codi.CODIModel or MergedCODI it was cached from>."
        )
    from interp.models import load_model

    return load_model(name)


def logit_lens(
    source: Any,
    layer: int | Sequence[int] | None = None,
    position: str | Sequence[str] | None = None,
    k: int = 5,
    *,
    model: Any = None,
    prompts: Any = None,
    samples: int | Sequence[int] | None = None,
    view: str | Sequence[str] = "resid",
    tokenizer: Any = None,
    **cache_kwargs,
) -> LensResult:
    """Top-`k` tokens of cached residuals at `layer`(s) and `position`(s) (None = all cached ones).

    source: an ActivationCache (then `model=` gives the unembedding; a CODI cache made in this session remembers
    its model), or a model with `prompts=` (cached first, with `cache_kwargs`).
    view: "resid", "pre_prj", "post_prj" or a list of them (see the module docstring).

    >>> import codi, interp
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=4, lora_r=4))
    >>> c = interp.cache(cm, ["1 + 2 = ?"], progress=False)
    >>> t = logit_lens(c, layer=2, position="latent_3", k=3, model=cm)
    >>> len(t.top(2, "latent_3"))                           # 3 (token, prob) pairs, best first
    3
    >>> m = interp.load_model("tiny-gpt2")
    >>> len(logit_lens(m, prompts=["a b c", "hi"], layer=1, position="last", k=2).frame)   # a model: cached first
    4
    """
    from interp.cache import ActivationCache

    views = _as_list(view, VIEWS)
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise ValueError(f"view {bad[0]!r}: choose from {VIEWS}.")
    if k < 1:
        raise ValueError(f"k={k}: ask for at least one token.")
    if not isinstance(source, ActivationCache):
        if prompts is None:
            raise ValueError("logit_lens on a model needs prompts=; or pass a cache made by interp.cache.")
        model = source
        source = _cache(model, prompts, layer, position, views, **cache_kwargs)
    c = source
    hf, tok, vocab = _parts(_unembedding_model(c, model), tokenizer)
    layers = _as_list(layer, c.layers)
    positions = _as_list(position, c.positions)
    rows = _as_list(samples, range(len(c)))
    n_layers = int(c.meta.get("n_layers", max(c.layers)))
    extras = getattr(c, "extras", None) or {}
    frames = []
    with torch.inference_mode():
        for v in views:
            for p in positions:
                if v == "resid":
                    for layer_ in layers:
                        x = c.sel(layer=int(layer_), position=p, allow_missing=True)[rows]
                        ok = _found(c, p, rows)
                        frames.append(
                            _top(hf, tok, vocab, x, ok, rows, c, int(layer_), p, v, k, normed=False)
                        )
                    continue
                key = "latent_pre_prj" if v == "pre_prj" else "latent_post_prj"
                if key not in extras:
                    raise ValueError(
                        f"view={v!r} needs a CODI cache with latent views (cache.extras[{key!r}]); this "
                        f"cache has none. Cache a codi.CODIModel with interp.cache."
                    )
                j = poslabels.latent_index(p)
                if j is None:
                    if position is None:
                        continue
                    raise ValueError(f"view={v!r} exists only for latent positions (latent_0..), not {p!r}.")
                x = extras[key][rows, j]
                frames.append(
                    _top(
                        hf,
                        tok,
                        vocab,
                        x,
                        np.ones(len(rows), bool),
                        rows,
                        c,
                        n_layers if v == "pre_prj" else 0,
                        p,
                        v,
                        k,
                        normed=(v == "pre_prj"),
                    )
                )
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            columns=[
                "sample",
                "id",
                "layer",
                "position",
                "view",
                "rank",
                "token_id",
                "token",
                "prob",
                "logit",
            ]
        )
    )
    return LensResult(frame=frame, meta=dict(model=c.meta.get("model"), lens="logit lens", k=k, views=views))


def _found(c, label: str, rows: list[int]) -> np.ndarray:
    from interp import positions as pos

    _, found = pos.resolve_alias(label, c.positions, c.valid)
    return found[rows]


def _top(
    hf,
    tok,
    vocab,
    x: np.ndarray,
    ok: np.ndarray,
    rows: list[int],
    c,
    layer: int,
    position: str,
    view: str,
    k: int,
    normed: bool,
) -> pd.DataFrame:
    logits = unembed(hf, torch.from_numpy(np.ascontiguousarray(x)), normed=normed)
    if vocab:
        logits = logits[..., :vocab]
    probs = torch.softmax(logits, dim=-1)
    top_p, top_i = probs.topk(k, dim=-1)
    top_l = logits.gather(-1, top_i)
    ids = c.samples["id"].tolist()
    recs = []
    for r, sample in enumerate(rows):
        if not ok[r]:
            continue
        for rank in range(k):
            t = int(top_i[r, rank])
            recs.append(
                dict(
                    sample=sample,
                    id=ids[sample],
                    layer=layer,
                    position=position,
                    view=view,
                    rank=rank,
                    token_id=t,
                    token=tok.decode([t]),
                    prob=float(top_p[r, rank]),
                    logit=float(top_l[r, rank]),
                )
            )
    return pd.DataFrame(recs)


def _cache(model, prompts, layer, position, views, **kw):
    from interp.cache import cache
    from interp.codi_cache import codi_cache

    layers = "all" if layer is None else _as_list(layer, [])
    positions = "all" if position is None else _as_list(position, [])
    if is_codi(model):
        return codi_cache(model, prompts, layers=layers, positions=positions, progress=False, **kw)
    return cache(model, prompts, layers=layers, positions=positions, progress=False, **kw)
