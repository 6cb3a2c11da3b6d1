#!/usr/bin/env python3
"""PyTorch + timm reference for the model benchmark (crates/mammo-models/benches/models.rs).

For each model: timm.create_model(name, pretrained=False, num_classes=1, in_chans=1) on the
CPU (or --device), a random [batch, 1, size, size] float32 batch, then

* forward: model.eval() under torch.inference_mode(), one forward pass;
* train step: model.train(), zero_grad, forward, BCEWithLogitsLoss against random 0/1
  targets, backward, torch.optim.Adam(lr=1e-4).step().

`--warmup` untimed iterations, then the median of `--iters` timed ones, in milliseconds.
torch.set_num_threads(--threads) so PyTorch uses the same cores as mammo.
Prints one JSON line per model on stdout. Never downloads weights (pretrained=False).
`--profile` adds "profile": {aten op: self CPU ms} for one inference forward.
"""

import argparse
import json
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", default=["resnet18", "efficientnet_b0"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--in-chans", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = torch default")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["forward", "train"], help="measure only one of the two")
    p.add_argument(
        "--amp",
        choices=["bf16", "f16"],
        help="run forward (and loss) under torch.autocast in this dtype; f16 training uses a GradScaler",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="add a per-op breakdown of one inference forward (torch.profiler self CPU time, ms)",
    )
    return p.parse_args()


def median_ms(fn, warmup, iters, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def main():
    args = parse_args()
    t_import = time.perf_counter()
    import torch
    import timm

    import_seconds = time.perf_counter() - t_import
    print(f"imports: {import_seconds:.2f} s", file=sys.stderr)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        sync = lambda: torch.cuda.synchronize(device)  # noqa: E731
    else:
        sync = lambda: None  # noqa: E731

    for name in args.models:
        model = timm.create_model(name, pretrained=False, num_classes=1, in_chans=args.in_chans)
        model = model.to(device)
        x = torch.randn(args.batch, args.in_chans, args.size, args.size, device=device)
        y = torch.randint(0, 2, (args.batch, 1), device=device).float()

        model.eval()
        amp_dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(args.amp)

        def autocast():
            if amp_dtype is None:
                import contextlib

                return contextlib.nullcontext()
            return torch.autocast(device_type=device.type, dtype=amp_dtype)

        def forward():
            with torch.inference_mode(), autocast():
                model(x)

        fwd_ms = train_ms = None
        fwd_all = train_all = []
        if args.only != "train":
            fwd_ms, fwd_all = median_ms(forward, args.warmup, args.iters, sync)

        profile = None
        if args.profile:
            from torch.profiler import ProfilerActivity, profile as torch_profile

            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                forward()
            profile = {
                e.key: e.self_cpu_time_total / 1e3
                for e in prof.key_averages()
                if e.self_cpu_time_total > 0
            }

        model.train()
        loss_fn = torch.nn.BCEWithLogitsLoss()
        optim = torch.optim.Adam(model.parameters(), lr=1e-4)

        scaler = torch.amp.GradScaler(device.type) if args.amp == "f16" else None

        def train_step():
            optim.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(model(x), y)
            if scaler is None:
                loss.backward()
                optim.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optim)
                scaler.update()

        if args.only != "forward":
            train_ms, train_all = median_ms(train_step, args.warmup, args.iters, sync)

        record = {
            "model": name,
            "backend": f"pytorch-{device.type}",
            "amp": args.amp,
            "batch": args.batch,
            "size": args.size,
            "in_chans": args.in_chans,
            "threads": torch.get_num_threads(),
            "warmup": args.warmup,
            "iters": args.iters,
            "forward_ms": fwd_ms,
            "train_step_ms": train_ms,
            "forward_all_ms": fwd_all,
            "train_step_all_ms": train_all,
            "params": sum(p.numel() for p in model.parameters()),
            "versions": {"torch": torch.__version__, "timm": timm.__version__},
            "import_seconds": import_seconds,
        }
        if profile is not None:
            record["profile"] = profile
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
