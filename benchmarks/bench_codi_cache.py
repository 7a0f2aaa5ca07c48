"""CODI latent generation throughput (our loop vs official-style loops) and the cost of caching on top of it.

    python benchmarks/bench_codi_cache.py            # tiny-llama (batch 1, 64) + smollm2-135m (1, 8), CPU
    python benchmarks/bench_codi_cache.py --runs smollm2-135m:1,64 llama-3.2-3b:1,64 --device cuda

Per model and batch size, on the same arithmetic questions (codi.data.arithmetic, 2-3 steps), a fresh CODI model
(`CODIModel.from_config`, LoRA not trained: speed does not depend on the weights), 6 latents + `--answer-tokens`
generated tokens (greedy, no early stop, so every method does the same number of steps):

- ours: `codi.loop.latent_loop` (full 2-D masks, position ids, KV cache);
- official-style: like zhenyi4/codi test.py: KV cache, prompt masked but NO attention mask and no position ids in
  the latent and decode steps (so left-padded rows attend to padding), and a per-row Python loop with `.item()`
  to track EOS. Written here only, as a baseline. "agree" = share of rows whose generated tokens equal ours;
- no-KV-cache: re-runs the whole sequence (masks and position ids correct) for every latent and answer step;
- caching: `interp.cache(cm, ..., generate=True)` = our loop under hooks + gathering + host copy, all layers at all
  positions, and all layers at the latent positions only; ratio to the plain loop.

Each method runs once to warm up, then they take turns `--repeats` times; the table shows the median. Writes
benchmarks/results/codi_cache.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from machine import describe  # noqa: E402  (benchmarks/ is the script's folder)

import codi
from codi.loop import latent_loop, position_ids
from interp.codi_cache import codi_cache

HERE = Path(__file__).parent


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------ methods
@torch.inference_mode()
def ours(cm, ids, mask, k: int, m: int) -> torch.Tensor:
    run = latent_loop(
        cm.model,
        ids,
        mask,
        prj=cm.prj,
        num_latents=k,
        eot_embeds=cm.eot_embeds,
        bot_embeds=cm.bot_embeds,
        max_new_tokens=m,
        eos_token_id=None,
        vocab_size=cm.vocab_size,
        keep_logits=False,
    )
    return run.response_ids


@torch.inference_mode()
def official_style(cm, ids, mask, k: int, m: int) -> torch.Tensor:
    """Baseline only: the official evaluation loop's structure (no masks after the prompt, per-row EOS loop)."""
    model, emb = cm.model, cm.model.get_input_embeddings()
    b = ids.shape[0]
    x = torch.cat([emb(ids), cm.bot_embeds.expand(b, 1, -1)], 1)
    full = torch.cat([mask, mask.new_ones(b, 1)], 1)
    out = model(inputs_embeds=x, attention_mask=full, use_cache=True, output_hidden_states=True)
    pkv, h = out.past_key_values, cm.prj(out.hidden_states[-1][:, -1:])
    for _ in range(k):
        out = model(inputs_embeds=h, use_cache=True, output_hidden_states=True, past_key_values=pkv)
        pkv, h = out.past_key_values, cm.prj(out.hidden_states[-1][:, -1:])
    x = cm.eot_embeds.expand(b, 1, -1)
    finished = torch.zeros(b, dtype=torch.bool, device=ids.device)
    tokens: list[list[int]] = [[] for _ in range(b)]
    eos = cm.tokenizer.eos_token_id
    for _ in range(m):
        out = model(inputs_embeds=x, attention_mask=None, use_cache=True, past_key_values=pkv)
        pkv = out.past_key_values
        nxt = out.logits[:, -1, : cm.vocab_size].argmax(-1)
        for r in range(b):  # the official per-row bookkeeping: one device sync per row and step
            tok = nxt[r].item()
            tokens[r].append(tok)
            finished[r] |= tok == eos  # the official loop stops once all rows finished; here all run m steps
        x = emb(nxt)[:, None]
    return torch.tensor(tokens)


@torch.inference_mode()
def no_kv_cache(cm, ids, mask, k: int, m: int) -> torch.Tensor:
    """Baseline only: correct masks, but the whole sequence is recomputed at every latent and answer step."""
    model, emb = cm.model, cm.model.get_input_embeddings()
    b = ids.shape[0]
    x = torch.cat([emb(ids), cm.bot_embeds.expand(b, 1, -1)], 1)
    full = torch.cat([mask, mask.new_ones(b, 1)], 1)

    def fwd(x, full):
        return model(
            inputs_embeds=x,
            attention_mask=full,
            position_ids=position_ids(full, full.shape[1]),
            use_cache=False,
            output_hidden_states=True,
        )

    out = fwd(x, full)
    for _ in range(k):
        x = torch.cat([x, cm.prj(out.hidden_states[-1][:, -1:])], 1)
        full = torch.cat([full, full.new_ones(b, 1)], 1)
        out = fwd(x, full)
    x = torch.cat([x, cm.eot_embeds.expand(b, 1, -1)], 1)
    full = torch.cat([full, full.new_ones(b, 1)], 1)
    toks = []
    for t in range(m):
        out = fwd(x, full)
        nxt = out.logits[:, -1, : cm.vocab_size].argmax(-1)
        toks.append(nxt)
        if t < m - 1:
            x = torch.cat([x, emb(nxt)[:, None]], 1)
            full = torch.cat([full, full.new_ones(b, 1)], 1)
    return torch.stack(toks, 1)


def cache_all(cm, questions, k, m):
    return codi_cache(
        cm,
        questions,
        generate=True,
        max_new_tokens=m,
        batch_size=len(questions),
        progress=False,
        identity=False,
    )


def cache_latents(cm, questions, k, m):
    return codi_cache(
        cm,
        questions,
        positions="latents",
        generate=True,
        max_new_tokens=m,
        batch_size=len(questions),
        progress=False,
        identity=False,
    )


# ------------------------------------------------------------------------------------------------ driver
def bench(model_name: str, batch: int, k: int, m: int, repeats: int, device: torch.device, skip_no_kv: bool):
    cm = codi.CODIModel.from_config(codi.CODIConfig(model_name, num_latents=k, lora_r=8), device=device)
    questions = [p.question for p in codi.data.arithmetic(batch, steps=(2, 3), seed=0)]
    ids, mask = cm.tokenize_prompts(questions)
    methods = {
        "ours": lambda: ours(cm, ids, mask, k, m),
        "official-style": lambda: official_style(cm, ids, mask, k, m),
    }
    if not skip_no_kv:
        methods["no-KV-cache"] = lambda: no_kv_cache(cm, ids, mask, k, m)
    methods["cache all layers x all positions"] = lambda: cache_all(cm, questions, k, m)
    methods["cache all layers x latents"] = lambda: cache_latents(cm, questions, k, m)
    results, times = {}, {name: [] for name in methods}
    for name, fn in methods.items():  # warm up
        results[name] = fn()
    for _ in range(repeats):
        for name, fn in methods.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    ref = results["ours"].cpu()
    rows = []
    base = statistics.median(times["ours"])
    for name in methods:
        t = statistics.median(times[name])
        agree = ""
        if name in ("official-style", "no-KV-cache"):
            got = results[name].cpu()
            agree = f"{(got[:, : ref.shape[1]] == ref).all(1).float().mean().item():.2f}"
        steps_tokens = batch * (k + m)  # thoughts + answer tokens produced per call
        rows.append(dict(model=model_name, batch=batch, method=name, seconds=t, best=min(times[name]),
                         per_s=steps_tokens / t, ratio=t / base, agree=agree))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["tiny-llama:1,64", "smollm2-135m:1,8"],
                    help="MODEL:BATCH,BATCH,... (smollm2 at batch 64 takes minutes per method on 2 CPU cores)")
    ap.add_argument("--latents", type=int, default=6)
    ap.add_argument("--answer-tokens", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: 1 on CPU, where a shared machine makes OpenMP spin-waits dominate)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-kv-max-batch", type=int, default=64, help="skip the no-KV-cache baseline above this batch")
    ap.add_argument("--out", default=str(HERE / "results" / "codi_cache.md"))
    args = ap.parse_args()
    device = torch.device(args.device)
    threads = args.threads or (1 if device.type == "cpu" else torch.get_num_threads())
    torch.set_num_threads(threads)
    rows = []
    for spec in args.runs:
        name, _, batches = spec.partition(":")
        for batch in [int(b) for b in (batches or "1,64").split(",")]:
            print(f"... {name} batch {batch}", flush=True)
            rows += bench(name, batch, args.latents, args.answer_tokens, args.repeats, device,
                          skip_no_kv=batch > args.no_kv_max_batch)
    lines = [
        "# CODI latent generation and caching",
        "",
        f"Machine: {describe(device)}; torch {torch.__version__}. {args.latents} latents + {args.answer_tokens} "
        f"generated answer tokens (greedy, no early stop), fresh CODI model; {args.repeats} timed runs per method "
        "after a warm-up, methods interleaved.",
        "`median s` / `best s`: median and fastest run; `tok/s` = batch x (latents + answer tokens) / median;",
        "`x ours` = median / our loop's median; `agree` = share of rows whose generated tokens equal our loop's.",
        "",
        "| model | batch | method | median s | best s | tok/s | x ours | agree |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['batch']} | {r['method']} | {r['seconds']:.4f} | {r['best']:.4f} | "
                     f"{r['per_s']:.1f} | {r['ratio']:.2f} | {r['agree']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
