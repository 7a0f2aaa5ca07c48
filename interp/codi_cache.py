"""Cache a CODI run: every layer at every position of question, <bot>, continuous thoughts, <eot> and response.

    >>> import codi, interp
    >>> cm = codi.CODIModel.from_config(codi.CODIConfig("tiny-llama", num_latents=6, lora_r=4))
    >>> c = interp.cache(cm, [{"text": "Tom has 3 apples. He buys 2. How many?", "response": "The answer is: 5"}])
    >>> c.positions[-10:]                       # q_* ..., bot, latent_0..latent_5, eot, resp_*
    >>> c.sel(layer=2, position="latent_3").shape
    (1, 64)
    >>> c.extras["latent_pre_prj"].shape        # [sample, k, d] last-layer hidden that produced each thought
    (1, 6, 64)
    >>> c = interp.cache(cm, ["1 + 2 = ?"], generate=True, max_new_tokens=8)
    >>> c.samples["generated_text"][0]          # the answer the model generated (resp_* are its tokens)

How: the one latent loop (`codi.loop.latent_loop`, through the model's own `run`) runs under
`interp.hooks.record_residuals`, which keeps every layer of every forward call; `codi_plan` maps each position label
to (call, column) from the run's `Segment` list; `interp.activations.gather_plan` picks the cells on the device.
Nothing of the loop is re-implemented here.

Both views of each thought are stored next to the residuals, in `cache.extras` (float32 numpy, `[sample, k, d]`):
- `latent_pre_prj`: HF `hidden_states[-1]` (after the final norm) at the position that produced thought j (the
  `<bot>` position for j = 0, `latent_{j-1}` after that); the projection's input;
- `latent_post_prj`: the embedding fed back as the input of position `latent_j` (the projection's output).
On disk they are `extras_<shard>.safetensors` files next to the residual shards (same rows), together with the
response token ids (`response_ids`, `response_mask`), so an interrupted run resumes with them.

Response positions `resp_j` are the positions whose INPUT is response token j (like `latent_j`): `eot` predicts
`resp_0`. Teacher-forced responses come from `responses=` or the template's response part; with `generate=True` the
model's own tokens are fed back (the last generated token is never fed, so it has no residual).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

import formats
from interp import store
from interp.activations import ActivationCache, ToHost, config_hash, gather_plan, load_cache, store_dtype
from interp.hooks import _check_layers, record_residuals
from interp.identity import check_cache, warn_if_blind
from interp.positions import CODI_FORMS, codi_labels, codi_plan  # noqa: F401 (re-exported)
from interp.store import EXTRA_KEYS, load_extras  # noqa: F401 (re-exported)
from interp.templates import Template, as_records, render_all

__all__ = [
    "is_codi",
    "codi_cache",
    "load_codi_cache",
    "codi_labels",
    "codi_plan",
    "load_extras",
    "latent_views",
    "EXTRA_KEYS",
]



def is_codi(model: Any) -> bool:
    """True for a `codi.CODIModel` or `codi.MergedCODI` (anything built on `codi.runner.CODIRunner`)."""
    from codi.runner import CODIRunner

    return isinstance(model, CODIRunner)


# ------------------------------------------------------------------------------------------------ extras on disk
def _extras_name(shard: int) -> str:
    return f"extras_{shard:05d}.safetensors"


class _ExtrasWriter:
    """Per-shard files with the latent views and response ids, aligned with the residual shards (same rows)."""

    def __init__(self, folder: Path, shard_size: int, start_row: int, checksums: dict[str, str] | None = None):
        self.folder, self.shard_size = folder, shard_size
        self.checksums = {} if checksums is None else checksums  # the store's meta["checksums"] (written with it)
        self.shard = start_row // shard_size
        self.buf: dict[str, list[Tensor]] = {k: [] for k in EXTRA_KEYS}
        self.fill = 0
        for stale in folder.glob("extras_*.safetensors"):
            if int(stale.stem.split("_")[1]) >= self.shard:
                stale.unlink()

    def add_extras(self, extras: dict[str, Tensor]) -> None:
        n, done = len(extras[EXTRA_KEYS[0]]), 0
        while done < n:
            take = min(self.shard_size - self.fill, n - done)
            for k in EXTRA_KEYS:
                self.buf[k].append(extras[k][done : done + take])
            self.fill += take
            done += take
            if self.fill == self.shard_size:
                self.flush()

    def flush(self) -> None:
        if not self.fill:
            return
        path = self.folder / _extras_name(self.shard)
        tmp = store.tmp_name(path)
        save_file({k: torch.cat(v).contiguous() for k, v in self.buf.items()}, str(tmp))
        self.checksums[path.name] = store.file_sha256(tmp)
        os.replace(tmp, path)
        self.shard, self.fill = self.shard + 1, 0
        self.buf = {k: [] for k in EXTRA_KEYS}


# ------------------------------------------------------------------------------------------------ the cache
def _fingerprint(cm) -> str:
    """Base config hash + CODI config + projection and <bot>/<eot> weights: tells two CODI checkpoints apart."""
    h = hashlib.sha256(config_hash(cm.model).encode())
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

    records = as_records(prompts)
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
    layer_list = list(range(cm.n_layers + 1)) if layers == "all" else _check_layers(
        [layers] if isinstance(layers, int) else list(layers), cm.n_layers)
    n_q = [len(prompt_token_ids(cm.tokenizer, cm.config, p)) for p in texts]
    has_prefix = forced is not None or cm.config.eos_separators
    n_forced = int(cm._response_prefix(forced, len(records))[0].shape[1]) if has_prefix else 0
    n_resp = n_forced + (max_new_tokens - 1 if generate else 0)
    text_cfg = cm.model.config.get_text_config()
    limit = getattr(text_cfg, "max_position_embeddings", None) or getattr(text_cfg, "n_positions", None)
    longest = max(n_q) + 2 + cm.config.num_latents + n_resp
    if limit is not None and longest > limit:
        raise ValueError(f"the longest run needs {longest} positions but the base model takes {limit}; shorten "
                         f"prompts/responses or lower max_new_tokens.")
    labels = codi_labels(positions, max(n_q), cm.config.num_latents, n_resp)
    samples = pd.DataFrame(records)
    if "text" not in samples.columns:
        samples["text"] = texts
    samples["prompt_text"] = texts
    if forced is not None:
        samples["response_text"] = forced
    samples = samples[["id", "text", *[c for c in samples.columns if c not in ("id", "text")]]]
    return _Setup(texts, forced, max_new_tokens if generate else 0, n_forced, n_resp, layer_list, labels, samples,
                  template)


def _meta(cm, setup: _Setup, sdt: torch.dtype, batch_size: int, shard_size: int | None) -> dict:
    codi_meta = dict(num_latents=cm.config.num_latents, base_model=cm.config.base_model,
                     merged=type(cm).__name__ == "MergedCODI", template=setup.template.to_dict(),
                     responses="generated" if setup.gen_tokens else ("forced" if setup.forced else "none"),
                     max_new_tokens=setup.gen_tokens, n_forced=setup.n_forced)
    per_row = len(setup.layers) * len(setup.labels) * cm.d_model * sdt.itemsize
    return dict(format=store.FORMAT, version=store.VERSION, model=f"{cm.config.base_model}+codi",
                n_layers=cm.n_layers, d_model=cm.d_model, config_hash=_fingerprint(cm),
                model_dtype=str(cm.dtype).split(".")[-1], dtype=str(sdt).split(".")[-1], layers=setup.layers,
                positions=setup.labels, n_samples=len(setup.samples), samples_hash=store.samples_hash(setup.samples),
                padding_side="left", codi=codi_meta,
                shard_size=store.shard_rows(shard_size, per_row, batch_size))


def _codi_batches(cm, setup: _Setup, batch_size: int, start: int):
    """Per batch: (resid [batch, layer, pos, d] on device, invalid cells zeroed; valid [batch, pos]; extras)."""
    for lo in range(start, len(setup.prompts), batch_size):
        hi = min(lo + batch_size, len(setup.prompts))
        with torch.inference_mode(), record_residuals(cm.model, setup.layers) as rec:
            run = cm.run(setup.prompts[lo:hi], None if setup.forced is None else setup.forced[lo:hi],
                         max_new_tokens=setup.gen_tokens, keep_logits=False)
        plan = codi_plan(run, setup.labels)
        resid = gather_plan(rec, plan)
        del rec
        ok = plan.valid.to(resid.device)[:, None, :, None]
        yield torch.where(ok, resid, torch.zeros((), dtype=resid.dtype, device=resid.device)), plan.valid, \
            _batch_extras(run, setup.n_resp)


class _MemorySink:
    """Rows kept in memory (no `out=`)."""

    def __init__(self, n: int, setup: _Setup, d: int, sdt: torch.dtype):
        self.resid = torch.zeros((n, len(setup.layers), len(setup.labels), d), dtype=sdt)
        self.valid = torch.zeros((n, len(setup.labels)), dtype=torch.bool)
        self.extras: dict[str, list[Tensor]] = {k: [] for k in EXTRA_KEYS}
        self.row = 0

    def add(self, x: Tensor, v: Tensor) -> None:
        self.resid[self.row:self.row + len(x)] = x
        self.valid[self.row:self.row + len(x)] = v
        self.row += len(x)

    def add_extras(self, extras: dict[str, Tensor]) -> None:
        for k in EXTRA_KEYS:
            self.extras[k].append(extras[k])


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

    >>> c = codi_cache(cm, task, positions=["q[-1]", "bot", "latents", "eot"], out="runs/c")
    """

    if not is_codi(model):
        raise TypeError(f"codi_cache needs a codi.CODIModel or codi.MergedCODI, got {type(model).__name__}.")
    cm = model
    if tokenizer is not None and tokenizer is not cm.tokenizer:
        raise ValueError("tokenizer=: a CODI model tokenises with its own tokenizer (it holds <bot>/<eot>); leave "
                         "tokenizer= out or pass model.tokenizer.")
    if padding_side not in (None, "left"):
        raise ValueError(f"padding_side={padding_side!r}: the latent loop left-pads every CODI prompt (the prompt "
                         f"call ends with <bot>); leave padding_side= out or pass 'left'.")
    prompts = [prompts] if isinstance(prompts, str) else prompts  # one prompt, as on the plain path
    setup = _prepare(cm, prompts, layers, positions, responses, generate, max_new_tokens, template)
    sdt = store_dtype(dtype, cm.model)
    meta = _meta(cm, setup, sdt, batch_size, shard_size)
    start, sink, xsink = 0, None, None
    if out is not None:
        old = store.check_folder(out, meta)  # raises before anything is written
        if old is not None and old.get("complete"):
            return _finish(load_codi_cache(out), cm, identity)
        sink = store.open_writer(out, meta, setup.samples, meta["shard_size"])
        start = sink.start_row
        xsink = _ExtrasWriter(Path(out), meta["shard_size"], start, sink.meta["checksums"])
    else:
        sink = _MemorySink(len(setup.samples), setup, cm.d_model, sdt)
    host = ToHost(cm.device)
    batches = _codi_batches(cm, setup, batch_size, start)
    total = -(-(len(setup.samples) - start) // batch_size)
    for resid, valid, extras in tqdm(batches, total=total, disable=not progress, desc=f"cache {meta['model']}",
                                     unit="batch"):
        (xsink or sink).add_extras(extras)
        for x, v in host.push(resid.to(sdt), valid):
            sink.add(x, v)
    for x, v in host.flush():
        sink.add(x, v)

    if out is not None:
        xsink.flush()
        sink.finish()
        result = load_codi_cache(out)
        if setup.gen_tokens:  # the generated text joins the sample table on disk too
            _add_generated(result, cm.tokenizer)
            formats.atomic_write_bytes(Path(out) / "samples.jsonl", store.samples_jsonl(result.samples))
    else:
        result = ActivationCache(layers=setup.layers, positions=setup.labels, samples=setup.samples,
                                 meta={**meta, "complete": True},
                                 parts=[store.Part(resid=sink.resid, valid=sink.valid.numpy(), stored=meta["dtype"])])
        result.extras = {k: _numpy(torch.cat(v)) for k, v in sink.extras.items()}
        _add_generated(result, cm.tokenizer)
    return _finish(result, cm, identity)


def _numpy(t: Tensor) -> np.ndarray:
    return t.float().numpy() if t.is_floating_point() else t.numpy()


def _finish(result: ActivationCache, cm, identity: bool) -> ActivationCache:
    result.source_model = cm  # lets interp.lens find the unembedding of this session's cache
    if identity:
        warn_if_blind(check_cache(result), stacklevel=4)
    return result


def _batch_extras(run, n_resp: int) -> dict[str, Tensor]:
    """Latent views (float32) and response ids padded to `n_resp` columns, on the host."""
    ids, mask = run.response_ids.cpu(), run.response_mask.cpu().to(torch.uint8)
    width = max(n_resp, ids.shape[1])
    pad = width - ids.shape[1]
    if pad:
        ids = torch.cat([ids, ids.new_zeros(ids.shape[0], pad)], 1)
        mask = torch.cat([mask, mask.new_zeros(mask.shape[0], pad)], 1)
    return dict(
        latent_pre_prj=run.latents.detach().float().cpu(),
        latent_post_prj=run.latent_inputs.detach().float().cpu(),
        response_ids=ids[:, :width].long(),
        response_mask=mask[:, :width],
    )


def _add_generated(c: ActivationCache, tokenizer) -> None:
    """Decode generated response tokens into the sample table (`generated_text`)."""
    codi_meta = c.meta.get("codi") or {}
    if codi_meta.get("responses") != "generated" or "response_ids" not in c.extras:
        return
    n_forced = int(codi_meta.get("n_forced", 0))
    ids, mask = c.extras["response_ids"][:, n_forced:], c.extras["response_mask"][:, n_forced:].astype(bool)
    eos = tokenizer.eos_token_id
    texts = [
        tokenizer.decode([t for t, m in zip(r, k) if m and t != eos], skip_special_tokens=True)
        for r, k in zip(ids.tolist(), mask.tolist())
    ]
    c.samples["generated_text"] = texts


def load_codi_cache(folder: str | os.PathLike) -> ActivationCache:
    """`interp.load_cache` plus the CODI extras (`cache.extras`); the sample table already holds `generated_text`.

    >>> c = load_codi_cache("runs/cache-smol")
    """
    c = load_cache(folder)
    c.extras = load_extras(folder)
    return c


def latent_views(c: ActivationCache) -> dict[str, Float[np.ndarray, "sample k d"]]:
    """`{"latent_pre_prj": ..., "latent_post_prj": ...}` of a CODI cache (raises for a plain-model cache)."""
    extras = getattr(c, "extras", None) or {}
    if "latent_pre_prj" not in extras:
        raise ValueError("this cache holds no latent views: it is not a CODI cache (cache a codi.CODIModel).")
    return {k: extras[k] for k in ("latent_pre_prj", "latent_post_prj")}
