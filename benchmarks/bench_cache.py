"""Cost of caching the residual stream, side by side in one run on the same model and prompts.

    python benchmarks/bench_cache.py                                  # smollm2-135m, 16 prompts x 64 tokens, CPU
    python benchmarks/bench_cache.py --threads 1                      # steadier on a shared 2-core machine
    python benchmarks/bench_cache.py --model llama-3.2-3b --device cuda --n-prompts 16 --tokens 256

Rows: plain HF forward; HF output_hidden_states (kept on device, then every layer `.cpu()`); interp.cache with all
layers x all positions and all layers x 8 positions (in memory and streamed to disk); TransformerBridge
run_with_cache (all hooks; residual hooks only); nnsight saving every layer output. Each method runs once to warm
up, then all methods take turns `--repeats` times (so machine noise hits them alike); the table shows the median.
TransformerBridge switches its model to eager attention, so it wraps a second copy of the model and is compared
with a plain forward of that copy too. Peak memory: CUDA max_memory_allocated above the level before the call,
or on CPU the peak resident set size above it (sampled every ms), including the result the method returns.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine import describe  # noqa: E402  (benchmarks/ is the script's folder)

import interp

HERE = Path(__file__).parent


def _prompts(tokenizer, n: int, tokens: int) -> list[str]:
    words = "the cat sat on a mat while seven birds sang about numbers and rivers under the bright morning sky".split()
    out = []
    for i in range(n):
        text = " ".join(words[(i + j) % len(words)] for j in range(tokens * 2))
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: tokens - 1]
        out.append(tokenizer.decode(ids))
    return out


def _batch(tokenizer, prompts: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    mask = enc["attention_mask"]
    return dict(
        input_ids=enc["input_ids"].to(device),
        attention_mask=mask.to(device),
        position_ids=((mask.cumsum(-1) - 1).clamp(min=0)).to(device),
    )


class _Peak:
    """Peak memory above the starting level while the block runs."""

    def __init__(self, device: torch.device):
        self.device, self.value = device, 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        self.base, self.peak, self.running = self._rss(), self._rss(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.value = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.running = False
            self.thread.join()
            self.value = max(self.peak, self._rss()) - self.base


def _nnsight_all_layers(lm, blocks, batch: dict, n_layers: int) -> dict:
    saved: dict = {}
    with lm.trace(dict(batch)):
        for layer in range(n_layers):
            saved[layer] = blocks[layer].output.save()
    return saved


def _methods(args, m, m_tl, bridge, lm, blocks, prompts, batches, device, tmp: Path) -> dict[str, Callable]:
    n = m.n_layers
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    few = [f"prompt[-{k}]" for k in range(8, 0, -1)]
    counter = [0]

    def run(fn):
        def timed():
            with torch.inference_mode():
                out = fn()
            sync()
            return out

        return timed

    def plain(model):
        return run(lambda: [model(**b, use_cache=False).logits for b in batches])

    def hidden(to_host: bool):
        def f():
            outs = [m.model(**b, use_cache=False, output_hidden_states=True).hidden_states for b in batches]
            return [[h.cpu() for h in hs] for hs in outs] if to_host else outs

        return run(f)

    def ours(positions, out=False):
        def f():
            folder = None
            if out:
                counter[0] += 1
                folder = tmp / f"c{counter[0]}"
            return interp.cache(
                m, prompts, positions=positions, batch_size=args.batch_size, out=folder, progress=False
            )

        return run(f)

    return {
        "plain HF forward": plain(m.model),
        "HF forward without LM head (base_model)": run(
            lambda: [m.model.base_model(**b, use_cache=False).last_hidden_state for b in batches]
        ),
        "HF output_hidden_states (on device)": hidden(False),
        "HF output_hidden_states + .cpu() every layer": hidden(True),
        "interp.cache all layers x all positions": ours("all"),
        "interp.cache all layers x 8 positions": ours(few),
        "interp.cache all layers x 8 positions, streamed to disk": ours(few, out=True),
        "plain HF forward, eager attention (bridge's copy)": plain(m_tl.model),
        "TransformerBridge run_with_cache, all hooks": run(
            lambda: [
                bridge.run_with_cache(
                    b["input_ids"], attention_mask=b["attention_mask"], position_ids=b["position_ids"]
                )
                for b in batches
            ]
        ),
        "TransformerBridge run_with_cache, residual hooks only": run(
            lambda: [
                bridge.run_with_cache(
                    b["input_ids"],
                    attention_mask=b["attention_mask"],
                    position_ids=b["position_ids"],
                    names_filter=lambda name: "hook_resid_p" in name,
                )
                for b in batches
            ]
        ),
        "nnsight, save every layer output": run(
            lambda: [_nnsight_all_layers(lm, blocks, b, n) for b in batches]
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when present)")
    p.add_argument("--dtype", default=None, help="default float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--n-prompts", type=int, default=16)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a busy machine)"
    )
    p.add_argument("--out", default=str(HERE / "results" / "cache.md"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import tempfile

    from interp.hooks import decoder_layers

    m = interp.load_model(args.model, dtype=args.dtype, device=args.device)
    m_tl = interp.load_model(args.model, dtype=args.dtype, device=args.device)
    device = m.device
    bridge = interp.to_transformer_lens(m_tl)
    lm = interp.to_nnsight(m)
    blocks = lm
    path = next(name for name, mod in m.model.named_modules() if mod is decoder_layers(m.model))
    for part in path.split("."):
        blocks = getattr(blocks, part)
    prompts = _prompts(m.tokenizer, args.n_prompts, args.tokens)
    tok = m.tokenizer
    batches = [
        _batch(tok, prompts[i : i + args.batch_size], device) for i in range(0, len(prompts), args.batch_size)
    ]
    n_tokens = int(sum(b["attention_mask"].sum() for b in batches))

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        methods = _methods(args, m, m_tl, bridge, lm, blocks, prompts, batches, device, Path(tmp))
        times: dict[str, list[float]] = {k: [] for k in methods}
        cpu: dict[str, list[float]] = {k: [] for k in methods}
        peaks: dict[str, int] = {}
        methods["plain HF forward"]()  # first call grows the allocator; keep that out of the peaks below
        for name, fn in methods.items():  # warm-up run, also measures peak memory
            with _Peak(device) as pk:
                out = fn()
            peaks[name] = pk.value
            del out
        for _ in range(args.repeats):
            for name, fn in methods.items():
                t0, c0 = time.perf_counter(), time.process_time()
                out = fn()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                del out

    # On a CPU shared with other jobs, wall time swings with their load; the CPU time of this process does not,
    # so ratios use CPU time there (wall time on CUDA, where the host mostly waits).
    ref = cpu if device.type == "cpu" else times
    base = statistics.median(ref["plain HF forward"])
    eager = statistics.median(ref["plain HF forward, eager attention (bridge's copy)"])
    lines = [
        f"# interp.cache benchmark: {m.name}",
        "",
        f"- machine: {describe(device)}; load average at the end {os.getloadavg()[0]:.1f} (other jobs share it)",
        f"- model: {m.name} ({m.n_layers} layers, d_model {m.d_model}, {str(m.dtype).split('.')[-1]}), "
        f"{args.n_prompts} prompts x ~{args.tokens} tokens ({n_tokens} real tokens), batch {args.batch_size}",
        f"- torch {torch.__version__}; median of {args.repeats} interleaved runs after one warm-up; "
        f"peak memory = {'CUDA allocated' if device.type == 'cuda' else 'resident set'} above the level before",
        f"- ratios use {'process CPU time' if device.type == 'cpu' else 'wall time'}",
        "",
        "| method | wall (s) | CPU (s) | x plain forward | x eager forward | peak memory (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in methods:
        t, c, r = statistics.median(times[name]), statistics.median(cpu[name]), statistics.median(ref[name])
        lines.append(f"| {name} | {t:.3f} | {c:.3f} | {r / base:.2f} | {r / eager:.2f} | {peaks[name] / 2**20:.1f} |")
    lines += [
        "",
        "Our cache stops after the last requested layer, so it skips the final norm and the LM head "
        "that the plain forward computes; the base_model row is the forward without the LM head. "
        "TransformerBridge runs with eager attention (it switches its model to eager), so compare its rows "
        "with the eager plain forward.",
    ]
    table = "\n".join(lines)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
