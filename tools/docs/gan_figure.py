"""Figure 1 for docs/gan: a GAN run's sample grids over training, enlarged for the eye.

    python tools/docs/gan_figure.py RUN16 RUN32 docs/gan

Reads RUN/samples/progress.png (first row of every snapshot grid, top = start) and
RUN/samples/reals.png of each run, enlarges them with nearest-neighbour pixels (no
smoothing, so what is shown is what the generator made), and writes
<out>/<run name>_progress.png and <out>/<run name>_reals.png. Needs Pillow.
"""
import sys
from pathlib import Path

from PIL import Image


def enlarge(src: Path, dst: Path, target_width: int = 640) -> None:
    im = Image.open(src)
    k = max(1, target_width // im.width)
    im.resize((im.width * k, im.height * k), Image.NEAREST).save(dst)


def main() -> None:
    *runs, out = sys.argv[1:]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for run in map(Path, runs):
        for name in ("progress", "reals"):
            enlarge(run / "samples" / f"{name}.png", out / f"{run.name}_{name}.png")


if __name__ == "__main__":
    main()
