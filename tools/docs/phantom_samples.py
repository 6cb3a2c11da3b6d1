#!/usr/bin/env python3
"""Render docs/phantom-samples.png: CC and MLO views of every simulated machine, with and
without lesions, as a viewer shows them (`mammo convert`, first window), lesion boxes from
lesions.csv in red.

Usage (from the repo root, after `cargo build --release --bin mammo`):
    /work/venv/bin/python tools/docs/phantom_samples.py [--mammo target/release/mammo]
Needs Pillow. Not run by CI.
"""
import argparse, csv, os, subprocess, tempfile
from PIL import Image, ImageDraw

ap = argparse.ArgumentParser()
ap.add_argument("--mammo", default=os.environ.get("MAMMO", "target/release/mammo"))
ap.add_argument("--out", default="docs/phantom-samples.png")
ap.add_argument("--tile", type=int, default=200, help="tile width in pixels")
a = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="mammo-samples-")
data = os.path.join(tmp, "data")
subprocess.run([a.mammo, "phantom", "--out", data, "--patients", "40", "--seed", "5",
                "--prevalence", "0.5", "--conspicuity", "high", "--quiet"], check=True)
rows = list(csv.DictReader(open(os.path.join(data, "train.csv"))))
lesions = {r["image_id"]: r for r in csv.DictReader(open(os.path.join(data, "lesions.csv")))}

# Per machine: a CC and an MLO with a lesion (when the set has one) and a CC and an MLO without.
machines = sorted({r["machine_id"] for r in rows}, key=int)
picked = []
for m in machines:
    for cancer in ("1", "0"):
        for view in ("CC", "MLO"):
            c = [r for r in rows if r["machine_id"] == m and r["view"] == view and r["cancer"] == cancer
                 and (cancer == "0" or r["image_id"] in lesions)]
            if c:
                picked.append(c[0])

W = a.tile
H = int(W * 1.3)
cols = 8
sheet = Image.new("RGB", (cols * W, ((len(picked) + cols - 1) // cols) * H), (40, 40, 40))
for i, r in enumerate(picked):
    dcm = os.path.join(data, "train_images", r["patient_id"], r["image_id"] + ".dcm")
    png = os.path.join(tmp, r["image_id"] + ".png")
    subprocess.run([a.mammo, "convert", dcm, png], check=True, capture_output=True)
    im = Image.open(png).convert("RGB")
    s = min(W / im.width, H / im.height)
    small = im.resize((max(1, int(im.width * s)), max(1, int(im.height * s))), Image.BOX)
    d = ImageDraw.Draw(small)
    if r["image_id"] in lesions:
        L = lesions[r["image_id"]]
        d.rectangle([int(L["x0"]) * s - 2, int(L["y0"]) * s - 2, int(L["x1"]) * s + 2, int(L["y1"]) * s + 2],
                    outline=(255, 40, 40), width=2)
    d.text((4, small.height - 14), f"m{r['machine_id']} {r['laterality']} {r['view']}"
           + (f" {lesions[r['image_id']]['lesion_type']}" if r["image_id"] in lesions else ""), fill=(255, 230, 0))
    sheet.paste(small, ((i % cols) * W, (i // cols) * H))
sheet.save(a.out, optimize=True)
print(f"wrote {a.out}: {len(picked)} images from machines {', '.join(machines)}")
