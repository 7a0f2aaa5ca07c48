"""Cache a CODI run: every layer at every position of question, <bot>, continuous thoughts, <eot> and response.

    >>> import codi, interp, torch
    >>> _ = torch.manual_seed(0)
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=6, lora_r=4))
    >>> c = interp.cache(cm, [{"text": "Tom has 3 apples. He buys 2. How many?", "response": "The answer is: 5"}],
    ...                  progress=False)
    >>> [p for p in c.positions if not p.startswith(("q_", "resp_"))]       # q_* ..., then resp_*
    ['bot', 'latent_0', 'latent_1', 'latent_2', 'latent_3', 'latent_4', 'latent_5', 'eot']
    >>> c.sel(layer=2, position="latent_3").shape
    (1, 64)
    >>> c.extras["latent_pre_prj"].shape        # [sample, k, d] last-layer hidden that produced each thought
    (1, 6, 64)
    >>> c = interp.cache(cm, ["1 + 2 = ?"], generate=True, max_new_tokens=8, progress=False)
    >>> type(c.samples["generated_text"][0])    # the text the model generated (resp_* are its tokens)
    <class 'str'>

How: `_CodiSource` is the batch source the one cache driver (`interp.driver.run`) runs: per batch, the one latent
loop (`codi.loop.latent_loop`, through the model's own `run`) runs under `interp.hooks.record_residuals`, which keeps
every layer of every forward call; `codi_plan` maps each position label to (call, column) from the run's `Segment`
list; `Plan.gather` (`interp.positions`) picks the cells on the device. Nothing of the loop is re-implemented here.

Both views of each thought are stored next to the residuals, in `cache.extras` (float32 numpy, `[sample, k, d]`):
- `latent_pre_prj`: HF `hidden_states[-1]` (after the final norm) at the position that produced thought j (the
  `<bot>` position for j = 0, `latent_{j-1}` after that); the projection's input;
- `latent_post_prj`: the embedding fed back as the input of position `latent_j` (the projection's output).
On disk they are `extras_<shard>.safetensors` files next to the residual shards (same rows; `interp.store`),
together with the response token ids (`response_ids`, `response_mask`), so an interrupted run resumes with them.

Response positions `resp_j` are the positions whose INPUT is response token j (like `latent_j`): `eot` predicts
`resp_0`. Teacher-forced responses come from `responses=` or the template's response part; with `generate=True` the
model's own tokens are fed back (the last generated token is never fed, so it has no residual).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

import argcheck
from basemodels.facts import facts, is_codi  # noqa: F401 (is_codi: re-exported, the one test)
from interp import driver
from interp.activations import ActivationCache, load_cache
from interp.cache_args import check_layers, check_prompts, check_run_args
from interp.cache_args import codi_labels as checked_codi_labels
from interp.hooks import record_residuals
from interp.identity import check_cache, warn_if_blind
from interp.positions import CODI_FORMS, codi_labels, codi_plan  # noqa: F401 (re-exported)
from interp.templates import Template, as_records, render_all

__all__ = [
    "is_codi",
    "codi_cache",
    "load_codi_cache",
    "codi_labels",
    "codi_plan",
    "latent_views",
    "EXTRA_KEYS",
]

EXTRA_KEYS = ("latent_pre_prj", "latent_post_prj", "response_ids", "response_mask")  # per-sample extras of a run


def _fingerprint(cm) -> str:
    """Base config hash + CODI config + projection and <bot>/<eot> weights: tells two CODI checkpoints apart."""
    h = hashlib.sha256(driver.config_hash(cm.model).encode())
    cfg = {k: v for k, v in cm.config.to_dict().items() if k not in ("extra",)}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    h.update(cm.special.detach().float().cpu().numpy().tobytes())
    for _, p in sorted(cm.prj.state_dict().items()):
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _default_template(records: list[dict], responses) -> Template:
    forced = responses is None and all(r.get("response") is not None for r in records)
    return Template(user="{text}", response="{response}" if forced else None)


@dataclass
class _Setup:
    """Everything known before the first forward call (all checks done here, before any file is written)."""

    prompts: list[str]  # rendered prompt text per sample (what precedes <bot>)
    forced: list[str] | None  # teacher-forced response text per sample
    gen_tokens: int  # max_new_tokens handed to the loop (0 = no generation)
    n_forced: int  # forced response tokens of the longest sample
    n_resp: int  # response positions of the longest sample
    layers: list[int]
    labels: list[str]
    samples: pd.DataFrame
    template: Template


def _prepare(cm, prompts, layers, positions, responses, generate, max_new_tokens, template) -> _Setup:
    from codi.batch import prompt_token_ids

    layer_list = check_layers(layers, cm.n_layers)

    try:
        records = as_records(prompts)
    except (ValueError, TypeError) as err:
        raise argcheck.BadArgument("prompts", prompts, str(err).rstrip(".")) from None
    template = template or _default_template(records, responses)
    rendered = render_all(template, records, cm.tokenizer, codi=True)
    texts = [r.prompt for r in rendered]
    forced = list(responses) if responses is not None else None
    if forced is None and template.response:
        forced = [r.response for r in rendered]
    if forced is not None and len(forced) != len(records):
        raise ValueError(f"{len(forced)} responses for {len(records)} prompts; give one response per prompt.")
    if generate and max_new_tokens < 2:
        raise ValueError(f"max_new_tokens={max_new_tokens}: generate=True needs at least 2 (the last generated "
                         f"token is never fed back, so 1 token gives no response position).")
    n_q = [len(prompt_token_ids(cm.tokenizer, cm.config, p)) for p in texts]
    has_prefix = forced is not None or cm.config.eos_separators
    n_forced = int(cm.tokenize_responses(forced, len(records))[0].shape[1]) if has_prefix else 0
    n_resp = n_forced + (max_new_tokens - 1 if generate else 0)
    limit = facts(cm).context_length
    longest = max(n_q) + 2 + cm.config.num_latents + n_resp
    if limit is not None and longest > limit:
        raise ValueError(f"the longest run needs {longest} positions but the base model takes {limit}; shorten "
                         f"prompts/responses or lower max_new_tokens.")
    labels = checked_codi_labels(positions, max(n_q), cm.config.num_latents, n_resp)
    samples = pd.DataFrame(records)
    if "text" not in samples.columns:
        samples["text"] = texts
    samples["prompt_text"] = texts
    if forced is not None:
        samples["response_text"] = forced
    samples = samples[["id", "text", *[c for c in samples.columns if c not in ("id", "text")]]]
    return _Setup(texts, forced, max_new_tokens if generate else 0, n_forced, n_resp, layer_list, labels, samples,
                  template)




class _CodiSource:
    """The batch source of a CODI model (see the module docstring)."""

    extra_keys = EXTRA_KEYS

    def __init__(self, cm, setup: _Setup):
        self.cm, self.setup = cm, setup
        self.name, self.samples = f"{cm.config.base_model}+codi", setup.samples
        self.layers, self.labels = setup.layers, setup.labels
        self.device, self.dtype = cm.device, next(cm.model.parameters()).dtype
        # response ids keep one width in every batch: the forced prefix, + every generated token
        self.width = setup.n_resp + (1 if setup.gen_tokens else 0)
        codi_meta = dict(num_latents=cm.config.num_latents, base_model=cm.config.base_model,
                         merged=type(cm).__name__ == "MergedCODI", template=setup.template.to_dict(),
                         responses="generated" if setup.gen_tokens else ("forced" if setup.forced else "none"),
                         max_new_tokens=setup.gen_tokens, n_forced=setup.n_forced)
        self.meta = dict(model=self.name, n_layers=cm.n_layers, d_model=cm.d_model, config_hash=_fingerprint(cm),
                         padding_side="left", codi=codi_meta)

    def batch(self, lo: int, hi: int) -> driver.Batch:
        s = self.setup
        with torch.inference_mode(), record_residuals(self.cm.model, s.layers) as rec:
            run = self.cm.run(s.prompts[lo:hi], None if s.forced is None else s.forced[lo:hi],
                              max_new_tokens=s.gen_tokens, keep_logits=False)
        plan = codi_plan(run, s.labels)
        first = rec.residuals[s.layers[0]][0]
        resid = first.new_zeros((hi - lo, len(s.layers), len(s.labels), first.shape[-1]))
        for li, layer in enumerate(s.layers):
            plan.gather(rec.residuals[layer], out=resid[:, li])  # cells a sample lacks are zeros
        return driver.Batch(resid, plan.valid, _batch_extras(run, self.width))

    def sample_columns(self, extras: Callable[[], dict[str, np.ndarray]]) -> dict[str, list]:
        if not self.setup.gen_tokens:
            return {}
        return {"generated_text": _generated_text(extras(), self.setup.n_forced, self.cm.tokenizer)}


def codi_cache(model, prompts: Any, layers: str | int | Sequence[int] = "all", positions: str | Sequence[str] = "all",
               batch_size: int = 16, out: str | os.PathLike | None = None, *, responses: Sequence[str] | None = None,
               generate: bool = False, max_new_tokens: int = 16, template: Template | None = None,
               dtype: str | torch.dtype | None = None, identity: bool = True, progress: bool = True,
               tokenizer: Any = None, padding_side: str | None = None, shard_size: int | None = None
               ) -> ActivationCache:
    """Record a CODI model's run (see the module docstring); `interp.cache(codi_model, ...)` calls this.

    prompts: strings or dicts (`text` or the template's fields, + label, group, id, extra columns), or a task.
    responses: texts teacher forced after <eot> (default: each prompt's `response` field when all have one).
    generate: feed the model's own greedy tokens instead (stored as `generated_text` in the sample table).
    template: an `interp.templates.Template` (system/instruction, user, response parts).
    identity: run the identity check and warn when positions cannot depend on the label.
    tokenizer, padding_side, shard_size: as on the plain path; a CODI run tokenises with the model's own tokenizer
      (it holds <bot>/<eot>) and left-pads its prompts, so only those values are accepted.

    >>> import codi
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> c = codi_cache(cm, ["1 + 2 = ?", "Sam has 7 coins."], positions=["q[-1]", "bot", "latents", "eot"],
    ...                progress=False, identity=False)
    >>> c.positions, c.array().shape
    (['q[-1]', 'bot', 'latent_0', 'latent_1', 'eot'], (2, 3, 5, 64))
    """
    if not is_codi(model):
        raise TypeError(f"codi_cache needs a codi.CODIModel or codi.MergedCODI, got {type(model).__name__}.")
    cm = model
    check_run_args(batch_size, out, dtype, shard_size)
    if padding_side is not None:
        argcheck.check_choice("padding_side", padding_side, ["left", "right"], fix="leave padding_side= out")
    if tokenizer is not None and tokenizer is not cm.tokenizer:
        raise argcheck.BadArgument("tokenizer", tokenizer, "a CODI model tokenises with its own tokenizer (it holds "
                                   "<bot>/<eot>)", "leave tokenizer= out or pass model.tokenizer",
                                   shown=type(tokenizer).__name__)
    if padding_side not in (None, "left"):
        raise argcheck.BadArgument("padding_side", padding_side, "the latent loop left-pads every CODI prompt (the "
                                   "prompt call ends with <bot>)", "leave padding_side= out or pass 'left'")
    argcheck.check_bool("generate", generate)
    argcheck.check_int("max_new_tokens", max_new_tokens, min=0)
    setup = _prepare(cm, check_prompts(prompts), layers, positions, responses, generate, max_new_tokens, template)
    result = driver.run(_CodiSource(cm, setup), batch_size=batch_size, out=out, dtype=dtype, shard_size=shard_size,
                        progress=progress)
    result.source_model = cm  # lets interp.lens find the unembedding of this session's cache
    if identity:
        warn_if_blind(check_cache(result), stacklevel=3)
    return result


def _batch_extras(run, width: int) -> dict[str, Tensor]:
    """Latent views (float32) and response ids padded to `width` columns, on the host."""
    ids, mask = run.response_ids.cpu(), run.response_mask.cpu().to(torch.uint8)
    pad = width - ids.shape[1]
    if pad > 0:
        ids = torch.cat([ids, ids.new_zeros(ids.shape[0], pad)], 1)
        mask = torch.cat([mask, mask.new_zeros(mask.shape[0], pad)], 1)
    return dict(
        latent_pre_prj=run.latents.detach().float().cpu(),
        latent_post_prj=run.latent_inputs.detach().float().cpu(),
        response_ids=ids[:, :width].long(),
        response_mask=mask[:, :width],
    )


def _generated_text(extras: dict[str, np.ndarray], n_forced: int, tokenizer) -> list[str]:
    """The generated response tokens of every sample, decoded (`generated_text` of the sample table)."""
    ids, mask = extras["response_ids"][:, n_forced:], extras["response_mask"][:, n_forced:].astype(bool)
    eos = tokenizer.eos_token_id
    return [tokenizer.decode([t for t, m in zip(r, k) if m and t != eos], skip_special_tokens=True)
            for r, k in zip(ids.tolist(), mask.tolist())]


def load_codi_cache(folder: str | os.PathLike) -> ActivationCache:
    """`interp.load_cache` (kept by name): a CODI store's extras are read with it, once, and the sample table
    already holds `generated_text`.

    >>> import codi, tempfile
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=2, lora_r=4))
    >>> out = tempfile.mkdtemp() + "/c"
    >>> _ = codi_cache(cm, ["1 + 2 = ?"], layers=[1], out=out, progress=False, identity=False)
    >>> load_codi_cache(out).extras["latent_post_prj"].shape     # [sample, k, d] float32
    (1, 2, 64)
    """
    return load_cache(folder)


def latent_views(c: ActivationCache) -> dict[str, Float[np.ndarray, "sample k d"]]:
    """`{"latent_pre_prj": ..., "latent_post_prj": ...}` of a CODI cache (raises for a plain-model cache).

    >>> import interp
    >>> latent_views(interp.cache(interp.load_model("tiny-gpt2"), ["Hi"], layers=[1], progress=False))
    Traceback (most recent call last):
    ...
    ValueError: this cache holds no latent views: it is not a CODI cache (cache a codi.CODIModel).
    """
    extras = getattr(c, "extras", None) or {}
    if "latent_pre_prj" not in extras:
        raise ValueError("this cache holds no latent views: it is not a CODI cache (cache a codi.CODIModel).")
    return {k: extras[k] for k in ("latent_pre_prj", "latent_post_prj")}
