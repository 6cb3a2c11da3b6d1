"""Writes the small safetensors seeds of the `safetensors` fuzz target (fuzz/seeds/safetensors/).

Plain Python, no torch: a safetensors file is an 8-byte little-endian header length, a JSON
header (name -> dtype, shape, data_offsets; optional __metadata__) and the tensor bytes.
Run from the repository root: python3 fuzz/make_safetensors_seeds.py
"""

import json
import struct
from pathlib import Path

OUT = Path("fuzz/seeds/safetensors")
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8}


def write(name, tensors, metadata=None):
    header, data = {}, b""
    for key, (dtype, shape) in tensors.items():
        n = SIZE[dtype]
        for d in shape:
            n *= d
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        # A repeating ramp, not zeros, so conversions see varied values.
        data += bytes((i * 37) % 251 for i in range(n))
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (OUT / name).write_bytes(struct.pack("<Q", len(text)) + text + data)


OUT.mkdir(parents=True, exist_ok=True)
config = {
    "architecture": "resnet18",
    "num_classes": 1,
    "in_chans": 1,
    "drop_rate": 0.0,
    "input_size": [64, 64],
    "mean": [0.449],
    "std": [0.226],
}
# The first conv as timm ships it (3 input channels, adapted to 1), and in f16.
write("conv1-rgb.safetensors", {"conv1.weight": ("BF16", [64, 3, 7, 7])})
write("conv1-f16.safetensors", {"conv1.weight": ("F16", [64, 1, 7, 7])})
# A batch norm with the buffer burn does not keep, and a head of another class count.
write(
    "bn-head.safetensors",
    {
        "bn1.weight": ("F32", [64]),
        "bn1.bias": ("BF16", [64]),
        "bn1.running_mean": ("F64", [64]),
        "bn1.running_var": ("F32", [64]),
        "bn1.num_batches_tracked": ("I64", []),
        "fc.weight": ("F16", [2, 512]),
        "fc.bias": ("F32", [2]),
    },
)
# mammo's own metadata (read by `predict` before loading).
write(
    "metadata.safetensors",
    {"fc.weight": ("F32", [1, 512]), "fc.bias": ("F32", [1])},
    {"mammo.model_config": json.dumps(config)},
)
