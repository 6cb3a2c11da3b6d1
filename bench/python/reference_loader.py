#!/usr/bin/env python3
"""Reference for `mammo bench loader`: the training loader a PyTorch user writes for
preprocessed mammogram PNGs, timed on the same files, batch size and worker count.

Per image: read the PNG (PIL; 8- or 16-bit grayscale), scale to [0, 1], flip horizontally
when the sample says so, normalise with the model's mean and std, add the channel axis; a
batch is the stacked images. With torch installed this is a `torch.utils.data.DataLoader`
(`num_workers` persistent worker processes, `prefetch_factor` 2, the default collate);
without it the same per-image work on a `multiprocessing.Pool` of that many processes, the
images returned pickled and stacked in the parent (a DataLoader collates in its workers and
passes batches through shared memory). Workers are started, and one pass made, before the
timed pass, as mammo's bench does. The JSON line printed says which ran.

    python reference_loader.py --files files.txt --batch 64 --jobs 2 --mean 0.449 --std 0.226
"""

import argparse
import json
import multiprocessing
import sys
import time

import numpy as np
from PIL import Image


def load(args):
    path, flip, mean, std = args
    a = np.asarray(Image.open(path))
    scale = 65535.0 if a.dtype == np.uint16 or a.dtype == np.int32 else 255.0
    x = a.astype(np.float32) / scale
    if flip:
        x = x[:, ::-1]
    x = (x - mean) / std
    return np.ascontiguousarray(x)[None]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--files", required=True, help="one PNG path per line")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--mean", type=float, required=True)
    p.add_argument("--std", type=float, required=True)
    a = p.parse_args()
    with open(a.files) as f:
        files = [line.strip() for line in f if line.strip()]
    # Every other sample flipped, as mammo's bench does.
    samples = [(path, i % 2 == 0, a.mean, a.std) for i, path in enumerate(files)]

    try:
        import torch
        from torch.utils.data import DataLoader, Dataset

        class PngSet(Dataset):
            def __len__(self):
                return len(samples)

            def __getitem__(self, i):
                return torch.from_numpy(load(samples[i]))

        torch.set_num_threads(1)
        loader = DataLoader(
            PngSet(),
            batch_size=a.batch,
            shuffle=False,
            num_workers=a.jobs,
            prefetch_factor=2 if a.jobs > 0 else None,
            persistent_workers=a.jobs > 0,
        )
        kind = f"torch {torch.__version__} DataLoader (persistent workers)"
        # One untimed pass starts the workers and warms the page cache, as mammo's bench
        # builds its thread pool and makes a warm-up pass before the clock.
        sum(batch.shape[0] for batch in loader)
        t = time.perf_counter()
        n = sum(batch.shape[0] for batch in loader)
        seconds = time.perf_counter() - t
    except ImportError:
        kind = "multiprocessing.Pool (torch not installed)"

        def epoch(pool):
            # imap keeps the workers ahead of the consumer, as the DataLoader's prefetch
            # does; the images come back pickled and are stacked in this process (a
            # DataLoader stacks in the workers and passes batches through shared memory).
            n, pending = 0, []
            for x in pool.imap(load, samples, chunksize=4):
                pending.append(x)
                if len(pending) == a.batch:
                    n += np.stack(pending).shape[0]
                    pending = []
            if pending:
                n += np.stack(pending).shape[0]
            return n

        with multiprocessing.Pool(a.jobs) as pool:
            epoch(pool)  # untimed: starts the workers, warms the page cache
            t = time.perf_counter()
            n = epoch(pool)
            seconds = time.perf_counter() - t

    print(
        json.dumps(
            {
                "loader": kind,
                "images": n,
                "seconds": seconds,
                "images_per_second": n / seconds,
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "pillow": Image.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
