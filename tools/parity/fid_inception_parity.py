#!/usr/bin/env python3
"""Expected outputs of pytorch-fid's FID Inception for the mammo-inception parity test.

Loads the deterministic weights written by

    cargo run -p mammo-inception --example make_fid_inception_parity_weights -- WEIGHTS_DIR

into `pytorch_fid.inception.InceptionV3()` (defaults: block 3, resize to 299, [0, 1] -> [-1, 1],
`use_fid_inception=True`), by handing them to `fid_inception_v3()` in place of the download, so
torchvision's strict `load_state_dict` checks every key and shape. The 1008-way `fc` classifier,
which pool3 never uses, gets zeros. Runs the fixed input (`WEIGHTS_DIR/input.safetensors`, 2
images) in eval mode and writes a small JSON summary to
`crates/mammo-inception/tests/fixtures/fid_inception_parity.json`:

- `pool3`: every 8th of the 2048 features per image, and over all 2048 the mean, the L2 norm
  and a projection on w_k = ((k * 7919) mod 2048) / 2048 - 0.5 (computed in float64), so a
  permuted or wrong feature anywhere changes a number;
- `mixed_5b`: the output of the first Inception block (`blocks[2][0]`), every 4th channel's
  spatial mean per image, and rows 0 (border: padding and count_include_pad) and 17 (centre)
  of channels 0, 64, 128, 224 (the four branches) of image 0;

with the pytorch-fid, torchvision and torch versions. Needs torch, torchvision, pytorch-fid and
safetensors (a venv outside the repo); CI never runs it.

    /work/venv-torch/bin/python tools/parity/fid_inception_parity.py WEIGHTS_DIR

Exits 1 if the two images give pool3 features closer than MIN_SPREAD relative to their size
(the deterministic weights forgot the input, so the fixture could not catch a wrong layer).
"""

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

import torch
import torchvision
import pytorch_fid.inception as fid_inception
from safetensors import safe_open
from safetensors.torch import load_file

MIN_SPREAD = 0.01  # max |f0 - f1| / max |f|; 0.038 at the example's norm gain 1.8
POOL3_STRIDE = 8
MIXED_5B_CHANNEL_STRIDE = 4
MIXED_5B_CHANNELS = [0, 64, 128, 224]
MIXED_5B_ROWS = [0, 17]
FIXTURE = Path(__file__).resolve().parents[2] / "crates/mammo-inception/tests/fixtures/fid_inception_parity.json"


def rounded(values) -> list:
    """Values as JSON numbers with 7 significant digits: rounding error <= 5e-8 relative, far
    below the test's tolerance, and a fixture of a few KB."""
    return [float(f"{v:.7g}") for v in values]


def projection_weights(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.int64)
    return ((k * 7919) % n).to(torch.float64) / n - 0.5


def build_model(weights: Path) -> fid_inception.InceptionV3:
    state = load_file(str(weights))
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    # fid_inception_v3() would download pytorch-fid's weights here; hand it ours instead.
    fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
    model = fid_inception.InceptionV3()  # output_blocks=[3], strict load_state_dict inside
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights_dir", type=Path, help="output directory of make_fid_inception_parity_weights")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="fixture file")
    args = parser.parse_args()

    weights = args.weights_dir / "fid_inception.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        norm_gain = float((f.metadata() or {})["mammo.norm_gain"])
    x = load_file(str(args.weights_dir / "input.safetensors"))["input"]
    model = build_model(weights)

    captured = {}
    model.blocks[2][0].register_forward_hook(lambda m, i, o: captured.__setitem__("mixed_5b", o.detach()))
    with torch.no_grad():
        pool3 = model(x)[0].squeeze(3).squeeze(2)  # [N, 2048]
    mixed = captured["mixed_5b"]  # [N, 256, 35, 35]

    scale = pool3.abs().max().item()
    spread = (pool3[0] - pool3[1]).abs().max().item()
    if spread < MIN_SPREAD * scale:
        print(f"pool3 of the two images differs by {spread:.3e} at most (max |f| {scale:.3e})", file=sys.stderr)
        return 1

    p64 = pool3.to(torch.float64)
    w = projection_weights(p64.shape[1])
    fixture = {
        "generator": "tools/parity/fid_inception_parity.py",
        "versions": {
            "pytorch_fid": version("pytorch-fid"),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        },
        "weights": "make_fid_inception_parity_weights: mammo_models::deterministic::tensor_values per key",
        "norm_gain": norm_gain,
        "input": {
            "recipe": "(mammo_models::deterministic::deterministic_input(shape) + 1) / 2",
            "shape": list(x.shape),
            "sum": x.to(torch.float64).sum().item(),
        },
        "pool3": {
            "shape": list(pool3.shape),
            "stride": POOL3_STRIDE,
            "values": [rounded(row[::POOL3_STRIDE].tolist()) for row in pool3],
            "mean": p64.mean(dim=1).tolist(),
            "l2": p64.norm(dim=1).tolist(),
            "projection": (p64 @ w).tolist(),
            "max_abs": scale,
        },
        "mixed_5b": {
            "shape": list(mixed.shape),
            "channel_stride": MIXED_5B_CHANNEL_STRIDE,
            "channel_means": [
                rounded(m[::MIXED_5B_CHANNEL_STRIDE].tolist()) for m in mixed.to(torch.float64).mean(dim=(2, 3))
            ],
            "channels": MIXED_5B_CHANNELS,
            "rows": MIXED_5B_ROWS,
            "image0_rows": [[rounded(mixed[0, c, r].tolist()) for r in MIXED_5B_ROWS] for c in MIXED_5B_CHANNELS],
            "max_abs": mixed.abs().max().item(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One top-level entry per line, arrays inline.
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(', ', ': '))}" for k, v in fixture.items()]
    args.out.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(
        f"pool3 {tuple(pool3.shape)}: max |f| {scale:.4f}, mean {p64.mean().item():.4f}, image spread {spread:.4f}; "
        f"mixed_5b {tuple(mixed.shape)}: max {mixed.abs().max().item():.4f}, mean {mixed.mean().item():.4f}, "
        f"image spread {(mixed[0] - mixed[1]).abs().max().item():.4f} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
