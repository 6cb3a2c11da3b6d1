#!/usr/bin/env python3
"""Expected outputs of timm for the mammo-models parity test.

Loads the deterministic weights written by

    cargo run -p mammo-models --example make_parity_weights -- WEIGHTS_DIR

into `timm.create_model(name, pretrained=False, num_classes=1, in_chans=1)` (strict key match,
`num_batches_tracked` aside), runs the fixed input in eval mode, and writes the input, the last
feature map (`forward_features`) and the logits (`forward_head`) to
`crates/mammo-models/tests/fixtures/parity/<name>.safetensors`, with the timm and torch versions
in the metadata. Needs torch, timm and safetensors (a venv outside the repo); CI never runs it.

    /work/venv-torch/bin/python tools/parity/timm_parity.py WEIGHTS_DIR [--models resnet18 ...]

Exits 1 if a state dict does not match the timm model key for key, or if the two parity
images give features closer than MIN_SPREAD (the deterministic weights forgot the input, so the
fixture could not catch a wrong layer; see `mammo_models::deterministic::norm_gain`).
"""

import argparse
import sys
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file, save_file

DEFAULT_MODELS = [
    "resnet18", "resnet34", "resnet50", "resnet152", "efficientnet_b0", "tf_efficientnet_lite0",
]
MIN_SPREAD = 1e-3
FIXTURES = Path(__file__).resolve().parents[2] / "crates/mammo-models/tests/fixtures/parity"


def expected_outputs(name: str, weights: Path, x: torch.Tensor) -> dict:
    model = timm.create_model(name, pretrained=False, num_classes=1, in_chans=1)
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{name}: missing keys {missing}, unexpected keys {unexpected}")
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model.forward_head(features)
    return {"input": x.contiguous(), "features": features.contiguous(), "logits": logits.contiguous()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights_dir", type=Path, help="output directory of make_parity_weights")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="timm model names")
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixture directory")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = load_file(str(args.weights_dir / "input.safetensors"))["input"]
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"timm": timm.__version__, "torch": torch.__version__, "input": "make_parity_weights"}
    for name in args.models:
        tensors = expected_outputs(name, args.weights_dir / f"{name}.safetensors", x)
        features = tensors["features"]
        spread = (features[0] - features[1]).abs().max().item()
        if spread < MIN_SPREAD:
            raise SystemExit(f"{name}: the two parity images give features within {spread:.1e}")
        path = args.out / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=meta)
        logits = tensors["logits"].flatten().tolist()
        print(f"{name}: features {tuple(features.shape)} (max |f| {features.abs().max():.3f}, image spread {spread:.3f}) logits {logits} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
