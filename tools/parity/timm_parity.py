#!/usr/bin/env python3
"""Expected outputs of timm for the mammo-models parity test.

Loads the deterministic weights written by

    cargo run -p mammo-models --example make_parity_weights -- WEIGHTS_DIR

into `timm.create_model(name, pretrained=False, num_classes=1, in_chans=1)` (strict key match,
`num_batches_tracked` aside), runs the fixed input in eval mode, and writes the input, the last
feature map (`forward_features`) and the logits (`forward_head`) to
`crates/mammo-models/tests/fixtures/parity/<name>.safetensors` (MaxViT also the map after its
first stage, `stage0`, and built with `img_size` from the saved config), with the timm and torch versions
in the metadata. Needs torch, timm and safetensors (a venv outside the repo); CI never runs it.

    /work/venv-torch/bin/python tools/parity/timm_parity.py WEIGHTS_DIR [--models resnet18 ...]

Exits 1 if a state dict does not match the timm model key for key, or if the two parity
images give features closer than MIN_SPREAD (the deterministic weights forgot the input, so the
fixture could not catch a wrong layer; see `mammo_models::deterministic::norm_gain`).
"""

import argparse
import json
import sys
from pathlib import Path

import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

DEFAULT_MODELS = [
    "resnet18", "resnet34", "resnet50", "resnet152", "efficientnet_b0", "tf_efficientnet_lite0",
    "maxvit_nano_rw_256",
]
MIN_SPREAD = 1e-3
FIXTURES = Path(__file__).resolve().parents[2] / "crates/mammo-models/tests/fixtures/parity"


def create_kwargs(name: str, weights: Path) -> dict:
    """timm constructor arguments beyond the defaults, from the config mammo saved with the
    weights: MaxViT is built for the config's input size (its window is img_size // 32)."""
    with safe_open(str(weights), framework="pt") as f:
        cfg = json.loads((f.metadata() or {})["mammo.model_config"])
    if name.startswith("maxvit"):
        return {"img_size": tuple(cfg["input_size"])}
    return {}


def expected_outputs(name: str, weights: Path, x: torch.Tensor) -> dict:
    kwargs = create_kwargs(name, weights)
    model = timm.create_model(name, pretrained=False, num_classes=1, in_chans=1, **kwargs)
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{name}: missing keys {missing}, unexpected keys {unexpected}")
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model.forward_head(features)
        out = {"input": x.contiguous(), "features": features.contiguous(), "logits": logits.contiguous()}
        if name.startswith("maxvit"):
            # An early map as well: the first stage (MBConv + block + grid attention) alone.
            out["stage0"] = model.stages[0](model.stem(x)).contiguous()
    return out


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
