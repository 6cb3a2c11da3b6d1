#!/usr/bin/env python3
"""Convert pytorch-fid's FID Inception weights (.pth) to safetensors for mammo-inception.

pytorch-fid downloads `pt_inception-2015-12-05-6726825d.pth` on first use and caches it under
`~/.cache/torch/hub/checkpoints/`; this script never downloads anything: name a copy you have.

    python tools/convert_pt_inception.py PTH OUT.safetensors

Needs torch and safetensors. Keys are kept as they are (`Conv2d_1a_3x3.conv.weight`, ...,
`fc.weight`; mammo-inception skips `fc.*`, the 1008-way classifier pool3 does not use). A
checkpoint saved from `pytorch_fid.inception.InceptionV3().state_dict()` (keys `blocks.*`)
converts and loads as well. When pytorch-fid is installed, the state dict is first loaded
strictly into its FID Inception, so a file from another network is refused here rather than
in Rust.
"""

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file


def check_with_pytorch_fid(state: dict) -> None:
    """Strict load into pytorch-fid's FID Inception (torchvision keys), if pytorch-fid is
    installed; its loader is handed `state` instead of downloading."""
    try:
        import pytorch_fid.inception as fid_inception
    except ImportError:
        print("pytorch-fid not installed: keys not checked", file=sys.stderr)
        return
    fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
    fid_inception.fid_inception_v3()  # load_state_dict(strict=True) inside: raises on a mismatch
    print("keys and shapes match pytorch-fid's FID Inception")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pth", type=Path, help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("out", type=Path, help="safetensors file to write")
    args = parser.parse_args()

    state = torch.load(args.pth, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        print(f"{args.pth}: not a state dict of tensors", file=sys.stderr)
        return 1
    state = {k: v.contiguous() for k, v in state.items()}
    if any(k.startswith("blocks.") for k in state):
        print("InceptionV3 state dict (blocks.*): keys not checked here", file=sys.stderr)
    else:
        check_with_pytorch_fid(state)
    save_file(state, str(args.out), metadata={"format": "pt", "source": args.pth.name})
    n = sum(v.numel() for v in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {n} values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
