"""Cost of caching the residual stream, side by side in one run on the same model and prompts.

    python benchmarks/bench_cache.py                                  # smollm2-135m, 16 prompts x 64 tokens, CPU
    python benchmarks/bench_cache.py --threads 1 --repeats 5          # one thread count only
    python benchmarks/bench_cache.py --model llama-3.2-3b --device cuda --n-prompts 16 --tokens 256

Rows: the plain HF forward WITH its LM head (what `model(...)` computes) and WITHOUT it (`base_model`: the blocks and
the final norm, no logits); HF output_hidden_states (kept on device, then every layer `.cpu()`); interp.cache with all
layers x all positions and all layers x 8 positions (in memory and streamed to disk); TransformerBridge
run_with_cache (all hooks; residual hooks only) and nnsight saving every layer output. interp.cache stops after the
last requested layer, so it never computes the LM head: compare it with the forward without the head (the forward
with the head is what a user would otherwise run). TransformerBridge switches its model to eager attention, so it
wraps a second copy of the model and is compared with a plain forward of that copy too.

Timing: at 1 thread and at all threads (torch, OpenBLAS and OpenMP pools pinned together, benchmarks/machine.py),
every method once to warm up, then all methods take turns `--repeats` times (so machine noise hits them alike);
median [min-max] of process CPU time and of wall time, ratios of the medians, the load average before/after.
Peak memory: on CPU, each method runs once in a fresh process (model loaded, then the peak-RSS mark reset through
/proc/self/clear_refs) and the peak resident set above the level before the call is reported, the returned result
included; on CUDA, max_memory_allocated above the level before the call. (Measured in this process, freed memory
that the allocator keeps would hide a method's need: the earlier table read 0.0 MB for methods that keep 70 MB.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from machine import describe, interleaved, load_range, loadavg, pin_threads, pools, spread, thread_counts

import interp

HERE = Path(__file__).parent
PLAIN, NO_HEAD, EAGER = "plain HF forward (with LM head)", "HF forward without LM head (base_model)", \
    "plain HF forward, eager attention (bridge's copy)"


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
    return dict(input_ids=enc["input_ids"].to(device), attention_mask=mask.to(device),
                position_ids=((mask.cumsum(-1) - 1).clamp(min=0)).to(device))


class Setup:
    """The model (and, loaded on first use, the bridge's eager copy and the nnsight wrapper), prompts, batches."""

    def __init__(self, args):
        self.args = args
        self.m = interp.load_model(args.model, dtype=args.dtype, device=args.device)
        self.device = self.m.device
        self.prompts = _prompts(self.m.tokenizer, args.n_prompts, args.tokens)
        self.batches = [_batch(self.m.tokenizer, self.prompts[i: i + args.batch_size], self.device)
                        for i in range(0, len(self.prompts), args.batch_size)]
        self.n_tokens = int(sum(b["attention_mask"].sum() for b in self.batches))
        self._tl = self._lm = None

    @property
    def tl(self):
        if self._tl is None:
            m_tl = interp.load_model(self.args.model, dtype=self.args.dtype, device=self.args.device)
            self._tl = (m_tl, interp.to_transformer_lens(m_tl))
        return self._tl

    @property
    def lm(self):
        if self._lm is None:
            from interp.hooks import decoder_layers

            lm = blocks = interp.to_nnsight(self.m)
            path = next(name for name, mod in self.m.model.named_modules() if mod is decoder_layers(self.m.model))
            for part in path.split("."):
                blocks = getattr(blocks, part)
            self._lm = (lm, blocks)
        return self._lm


def _nnsight_all_layers(lm, blocks, batch: dict, n_layers: int) -> dict:
    saved: dict = {}
    with lm.trace(dict(batch)):
        for layer in range(n_layers):
            saved[layer] = blocks[layer].output.save()
    return saved


def methods(s: Setup, tmp: Path) -> dict[str, Callable]:
    m, batches, n = s.m, s.batches, s.m.n_layers
    sync = (lambda: torch.cuda.synchronize(s.device)) if s.device.type == "cuda" else (lambda: None)
    few = [f"prompt[-{k}]" for k in range(8, 0, -1)]
    counter = [0]

    def run(fn):
        def timed():
            with torch.inference_mode():
                out = fn()
            sync()
            return out
        return timed

    def hidden(to_host: bool):
        def f():
            outs = [m.model(**b, use_cache=False, output_hidden_states=True).hidden_states for b in batches]
            return [[h.cpu() for h in hs] for hs in outs] if to_host else outs
        return run(f)

    def ours(positions, out=False):
        def f():
            counter[0] += 1
            return interp.cache(m, s.prompts, positions=positions, batch_size=s.args.batch_size,
                                out=tmp / f"c{counter[0]}" if out else None, progress=False)
        return run(f)

    def bridge(names_filter=None):
        kw = {} if names_filter is None else {"names_filter": names_filter}
        return run(lambda: [s.tl[1].run_with_cache(b["input_ids"], attention_mask=b["attention_mask"],
                                                    position_ids=b["position_ids"], **kw) for b in batches])

    return {
        PLAIN: run(lambda: [m.model(**b, use_cache=False).logits for b in batches]),
        NO_HEAD: run(lambda: [m.model.base_model(**b, use_cache=False).last_hidden_state for b in batches]),
        "HF output_hidden_states (on device)": hidden(False),
        "HF output_hidden_states + .cpu() every layer": hidden(True),
        "interp.cache all layers x all positions": ours("all"),
        "interp.cache all layers x 8 positions": ours(few),
        "interp.cache all layers x 8 positions, streamed to disk": ours(few, out=True),
        EAGER: run(lambda: [s.tl[0].model(**b, use_cache=False).logits for b in batches]),
        "TransformerBridge run_with_cache, all hooks": bridge(),
        "TransformerBridge run_with_cache, residual hooks only": bridge(lambda name: "hook_resid_p" in name),
        "nnsight, save every layer output": run(lambda: [_nnsight_all_layers(*s.lm, b, n) for b in batches]),
    }


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def peak_of(args, name: str) -> float:
    """Child mode: peak memory (MB) of one call of `name`, above the level before it, in this fresh process."""
    s = Setup(args)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        fn = methods(s, Path(tmp))[name]
        if "Bridge" in name or "eager" in name:
            _ = s.tl                                                 # load what the method needs before the mark
        if "nnsight" in name:
            _ = s.lm
        if s.device.type == "cuda":
            torch.cuda.synchronize(s.device)
            torch.cuda.reset_peak_memory_stats(s.device)
            base = torch.cuda.memory_allocated(s.device)
            out = fn()
            return (torch.cuda.max_memory_allocated(s.device) - base) / 2**20
        Path("/proc/self/clear_refs").write_text("5")            # peak RSS mark := the current RSS
        base = _rss()
        out = fn()
        peak = _hwm()
        del out
        return (peak - base) / 2**20


def _peaks(args, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        cmd = [sys.executable, __file__, "--peak-of", name, "--model", args.model, "--n-prompts", str(args.n_prompts),
               "--tokens", str(args.tokens), "--batch-size", str(args.batch_size), "--threads", "1"]
        cmd += ["--device", args.device] if args.device else []
        cmd += ["--dtype", args.dtype] if args.dtype else []
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
        try:
            out[name] = f"{json.loads(r.stdout.strip().splitlines()[-1])['peak_mb']:.0f}"
        except (IndexError, ValueError, KeyError):
            out[name] = "n/a"
            print(f"peak memory of {name!r} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
    return out


def _rows(names, t, ref) -> list[str]:
    cpu = {k: [x.cpu_s for x in v] for k, v in t.items()}
    wall = {k: [x.wall_s for x in v] for k, v in t.items()}
    med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in names}

    def ratio(k, base):
        return f"{med[k][0] / med[base][0]:.2f} / {med[k][1] / med[base][1]:.2f}"

    return [f"| {k} | {spread(wall[k], '{:.3f}')} | {spread(cpu[k], '{:.3f}')} | {ratio(k, PLAIN)} | "
            f"{ratio(k, NO_HEAD)} | {ratio(k, EAGER)} | {ref.get(k, 'n/a')} | {load_range(t[k])} |" for k in names]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when present)")
    p.add_argument("--dtype", default=None, help="default float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--n-prompts", type=int, default=16)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", default=",".join(map(str, thread_counts())), help="thread counts, e.g. 1,2")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory subprocesses")
    p.add_argument("--peak-of", help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(HERE / "results" / "cache.md"))
    args = p.parse_args()
    threads = [int(x) for x in str(args.threads).split(",")]
    if args.peak_of:
        pin_threads(threads[0])
        print(json.dumps({"peak_mb": peak_of(args, args.peak_of)}))
        return

    s = Setup(args)
    load0 = loadavg()
    sections = []
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        ms = methods(s, Path(tmp))
        for T in threads:
            pin_threads(T)
            for fn in ms.values():                                  # warm-up at this thread count
                fn()
            sections.append((T, pools(), interleaved(ms, args.repeats)))
    peaks = _peaks(args, list(ms)) if args.memory else {}
    mem = "CUDA max_memory_allocated" if s.device.type == "cuda" else "peak RSS in a fresh process per method"
    lines = [f"# interp.cache benchmark: {s.m.name}", "",
             f"- machine: {describe(s.device)}; load average {load0:.1f} at the start, {loadavg():.1f} at the end "
             f"(other jobs share the 2 cores)",
             f"- model: {s.m.name} ({s.m.n_layers} layers, d_model {s.m.d_model}, {str(s.m.dtype).split('.')[-1]}), "
             f"{args.n_prompts} prompts x ~{args.tokens} tokens ({s.n_tokens} real tokens), batch {args.batch_size}",
             f"- torch {torch.__version__}; per thread count: one warm-up call of each method, then {args.repeats} "
             f"interleaved rounds; median [min-max]; ratios of medians, CPU / wall",
             f"- peak memory (MB): {mem}, above the level before the call, result included", ""]
    for T, pool, t in sections:
        lines += [f"## {T} thread(s) ({pool})", "",
                  "| method | wall s | CPU s | x forward with LM head | x forward without LM head | x eager forward "
                  "| peak MB | load |", "|---|---:|---:|---:|---:|---:|---:|---|"]
        lines += _rows(list(ms), t, peaks) + [""]
    lines += ["interp.cache stops after the last requested layer, so it skips the final norm and the LM head that the "
              "plain forward computes: against the forward without the head it does the same blocks plus the "
              "recording. TransformerBridge runs with eager attention (it switches its model to eager), so compare "
              "its rows with the eager plain forward."]
    table = "\n".join(lines)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
