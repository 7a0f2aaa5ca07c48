"""One CODI training step: forward passes per step and tokens/s, ours vs the official schedule, side by side.

Ours runs the teacher once per step (targets detached from the same pass). The official code (zhenyi4/codi
`src/model.py`) runs the teacher twice: once under no_grad for the distillation targets and once with grad for its
CE loss, plus the student loop. Both schedules below use the same model, batch and optimizer; "official" = ours
plus the extra no-grad teacher pass, which is exactly the work the official code adds.

    OMP_NUM_THREADS=1 python benchmarks/bench_codi_step.py                 # smollm2-135m on CPU
    python benchmarks/bench_codi_step.py --model llama-3.2-3b --device cuda --batch-size 16

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode on one untimed step (matmuls + attention,
forward + backward), so achieved TFLOP/s = counted FLOPs / measured step time; on CUDA it is compared to the
card's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import codi

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step(cm, batch, opt, official: bool) -> dict:
    opt.zero_grad(set_to_none=True)
    if official:
        with torch.no_grad():
            cm.teacher_forward(batch)  # the official code's extra teacher pass (targets under no_grad)
    parts = cm.loss(batch)
    parts["total"].backward()
    torch.nn.utils.clip_grad_norm_(list(cm.trainable_parameters().values()), 2.0)
    opt.step()
    return parts


def count(cm, batch, opt, official: bool) -> tuple[int, float]:
    """Base-model forward calls and FLOPs (FlopCounterMode: matmuls + attention, forward + backward) of one step."""
    calls = []
    handle = cm.model.get_base_model().register_forward_hook(lambda *a: calls.append(1))
    try:
        with FlopCounterMode(display=False) as fc:
            step(cm, batch, opt, official)
    finally:
        handle.remove()
    return len(calls), float(fc.get_total_flops())


def timed(cm, batch, opt, official: bool, device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one step."""
    _sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    step(cm, batch, opt, official)
    _sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


def peak_for(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on CUDA")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--num-latents", type=int, default=6)
    ap.add_argument("--lora-r", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per schedule (after 1 warm-up step)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "codi_step.md"))
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    cfg = codi.CODIConfig(base_model=args.model, num_latents=args.num_latents, lora_r=args.lora_r)
    cm = codi.CODIModel.from_config(cfg, device=device, dtype=args.dtype)
    cm.train()
    opt = torch.optim.AdamW(list(cm.trainable_parameters().values()), lr=1e-5)
    probs = codi.data.arithmetic(n=args.batch_size * (args.steps + 1), steps=(2, 3), seed=0)
    batches = [cm.make_batch(probs[i:i + args.batch_size]) for i in range(0, len(probs), args.batch_size)]
    tokens = statistics.mean(b.n_tokens for b in batches[1:])

    schedules = {"ours (teacher once)": False, "official (teacher twice)": True}
    rows = {}
    for name, official in schedules.items():
        print(f"[bench] counting {name} ...", file=sys.stderr, flush=True)
        calls, flops = count(cm, batches[0], opt, official)
        timed(cm, batches[0], opt, official, device)  # warm-up
        rows[name] = dict(passes=2 + official, calls=calls, flops=flops, wall=[], cpu=[])
    for i, b in enumerate(batches[1:]):  # interleaved, alternating order: both schedules see the same machine load
        order = list(schedules.items()) if i % 2 == 0 else list(schedules.items())[::-1]
        for name, official in order:
            print(f"[bench] step {i} {name} ...", file=sys.stderr, flush=True)
            wall, cpu = timed(cm, b, opt, official, device)
            rows[name]["wall"].append(wall)
            rows[name]["cpu"].append(cpu)
    # on CPU (1 thread) process time is the work done, robust to other processes; on CUDA wall time counts
    use_cpu = device.type == "cpu" and torch.get_num_threads() == 1
    for r in rows.values():
        r["sec"] = statistics.median(r["cpu"] if use_cpu else r["wall"])
        r["wall_med"] = statistics.median(r["wall"])
        r["tok_s"], r["tflops"] = tokens / r["sec"], r["flops"] / r["sec"] / 1e12

    peak = peak_for(device)
    dev_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)")
    ours, off = rows["ours (teacher once)"], rows["official (teacher twice)"]
    lines = [
        f"## CODI training step: {args.model} on {dev_name}",
        "",
        f"batch {args.batch_size}, {args.num_latents} latents, LoRA r={args.lora_r}, dtype {cm.dtype}, "
        f"{tokens:.0f} real tokens per step (teacher + student), median of {args.steps} interleaved steps after "
        f"1 warm-up; torch {torch.__version__}. tokens/s and TFLOP/s use the "
        f"{'process CPU time (robust to other load on the machine)' if use_cpu else 'wall time'}.",
        "",
        f"| schedule | model passes / step | base-model forward calls / step | {'CPU' if use_cpu else 'wall'} "
        f"s / step | wall s / step | tokens / s | counted TFLOP / step | achieved TFLOP/s | % of peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        pct = f"{100 * r['tflops'] / peak:.1f}%" if peak else "n/a"
        lines.append(f"| {name} | {r['passes']} | {r['calls']} | {r['sec']:.3f} | {r['wall_med']:.3f} | "
                     f"{r['tok_s']:.0f} | {r['flops'] / 1e12:.3f} | {r['tflops']:.3f} | {pct} |")
    lines += ["", f"Speed-up of ours over the official schedule: {off['sec'] / ours['sec']:.2f}x "
                  f"(FLOPs per step: {ours['flops'] / off['flops']:.2f}x of the official's)."
              + (f" Peak used: {peak:.0f} TFLOP/s dense bf16." if peak else ""), ""]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    return table


if __name__ == "__main__":
    main()
