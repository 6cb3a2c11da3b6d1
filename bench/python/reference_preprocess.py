#!/usr/bin/env python3
"""Reference Python mammography preprocessing pipeline, for benchmarking mammo.

This reproduces what a typical Kaggle "RSNA Screening Mammography" pipeline
does to turn each DICOM into a small 8-bit PNG, so that mammo's throughput
can be compared against what users run today. Per image:

  1. decode the pixel data
       --backend pydicom : pydicom.dcmread(path).pixel_array, with the
                           "pylibjpeg" decoding plugin forced (for JPEG 2000
                           that is pylibjpeg-openjpeg; see --pydicom-plugin)
       --backend dicomsdl: dicomsdl.open(path).pixelData()  (its default:
                           returns float32 with Rescale Slope/Intercept
                           already applied)
  2. modality rescale (Rescale Slope / Intercept)
       pydicom : pydicom.pixels.apply_modality_lut
       dicomsdl: done by pixelData() itself
  3. the FIRST VOI window (Window Center / Width, index 0)
       LINEAR per PS3.3 C.11.2.1.2.1, LINEAR_EXACT per C.11.2.1.3.2,
       SIGMOID per C.11.2.1.3.1 when VOI LUT Function says so.
       pydicom : pydicom.pixels.apply_voi_lut(arr, ds, index=0) (float64;
                 uses a VOI LUT Sequence instead when the file has one)
       dicomsdl: a float32 numpy implementation (window_own() below)
       (--voi own forces the numpy implementation for both backends.)
       With no window in the file: min-max over the image.
     then scaled to 0..255 and rounded to uint8.
  4. MONOCHROME1: invert (255 - x).
  5. crop to the breast: take every 8th pixel of the 8-bit image, Otsu
     threshold, largest 8-connected component (cv2.connectedComponentsWithStats,
     or a numpy/Python run-length labelling when cv2 is absent), its bounding
     box scaled back to full resolution.
  6. resize keeping the aspect ratio so the longer side is --size
     (cv2.INTER_AREA if cv2 is importable, else PIL Image.BOX).
  7. pad with zeros on the bottom/right to --size x --size (image at top-left).
  8. write an 8-bit greyscale PNG, OUT/<input stem>.png (cv2.imwrite, default
     compression; PIL if no cv2).

Timing: imports (numpy, the DICOM library and its decoders, cv2/PIL) are done
and timed before the clock starts; the reported "seconds" is the wall time of
the whole batch (pool start-up included, interpreter start-up and imports
excluded). cv2 is limited to one thread per process (cv2.setNumThreads(1)),
so --jobs N uses about N cores in total (the decoders are single-threaded).

Usage:
  reference_preprocess.py --backend pydicom|dicomsdl [--size 512] [--out DIR]
                          [--jobs N] [--decode-only] [--voi auto|own]
                          [--pydicom-plugin pylibjpeg] [--list FILE]
                          [--no-cv2] [PATH ...]

  PATH may be a .dcm file or a directory (searched recursively for *.dcm);
  --list FILE adds one path per line. --jobs N uses a multiprocessing Pool of
  N workers (fork); 1 (default) runs sequentially in-process.
  --decode-only decodes each image (step 1 only) and writes nothing.

Output: progress/diagnostics on stderr, and one JSON line on stdout:
  {"backend": ..., "mode": "full"|"decode-only", "images": n, "failed": k,
   "seconds": t, "images_per_s": r, "jobs": N, "size": 512,
   "import_seconds": ..., "stage_mean_s": {...}, "ops": {...},
   "versions": {...}}
Exit status 1 if any image failed.
"""
import argparse
import os
import sys
import time

T_IMPORT0 = time.perf_counter()

import json  # noqa: E402
import platform  # noqa: E402

import numpy as np  # noqa: E402

try:
    import cv2  # noqa: E402
except ImportError:  # pragma: no cover
    cv2 = None
from PIL import Image  # noqa: E402

# ---------------------------------------------------------------------------
# backend state (set up in load_backend(), before the clock starts; inherited
# by forked workers)
# ---------------------------------------------------------------------------
BACKEND = None
VOI_MODE = "auto"
USE_CV2 = cv2 is not None
PYDICOM_PLUGIN = "pylibjpeg"
CROP_STRIDE = 8

pydicom = None
dicomsdl = None


def load_backend(name):
    """Import the backend and eagerly load its decoders (so that lazy plugin
    imports are not charged to the first image)."""
    global pydicom, dicomsdl
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": Image.__version__,
        "opencv": cv2.__version__ if USE_CV2 else None,
    }
    if name == "pydicom":
        import pydicom as _pd
        import pydicom.pixels  # noqa: F401
        from pydicom.pixels.decoders import JPEG2000LosslessDecoder

        pydicom = _pd
        versions["pydicom"] = _pd.__version__
        # resolve plugin availability now (triggers the plugin imports)
        versions["pydicom_j2k_plugins"] = list(JPEG2000LosslessDecoder.available_plugins)
        try:
            import pylibjpeg

            versions["pylibjpeg"] = pylibjpeg.__version__
        except ImportError:
            pass
        try:
            import openjpeg

            versions["pylibjpeg-openjpeg"] = openjpeg.__version__
            versions["libopenjp2"] = openjpeg.utils.get_openjpeg_version()
        except ImportError:
            pass
        try:
            import libjpeg

            versions["pylibjpeg-libjpeg"] = libjpeg.__version__
        except ImportError:
            pass
        # import the pydicom-side glue modules for the forced plugin
        if PYDICOM_PLUGIN == "pylibjpeg":
            import pydicom.pixels.decoders.pylibjpeg  # noqa: F401
        elif PYDICOM_PLUGIN == "pillow":
            import pydicom.pixels.decoders.pillow  # noqa: F401
    elif name == "dicomsdl":
        import dicomsdl as _ds

        dicomsdl = _ds
        versions["dicomsdl"] = getattr(_ds, "DICOMSDL_VERSION", None)
    else:
        raise ValueError(name)
    return versions


# ---------------------------------------------------------------------------
# decode
# ---------------------------------------------------------------------------
def decode_pydicom(path):
    ds = pydicom.dcmread(path)
    if PYDICOM_PLUGIN:
        ds.pixel_array_options(decoding_plugin=PYDICOM_PLUGIN)
    arr = ds.pixel_array
    return arr, ds


def decode_dicomsdl(path):
    dcm = dicomsdl.open(path)
    arr = dcm.pixelData()  # float32, rescale applied
    return arr, dcm


def meta_pydicom(ds):
    wc = ds.get("WindowCenter")
    ww = ds.get("WindowWidth")

    def first(v):
        if v is None:
            return None
        try:
            return float(v[0])
        except TypeError:
            return float(v)

    return {
        "photometric": str(ds.get("PhotometricInterpretation", "MONOCHROME2")),
        "wc": first(wc),
        "ww": first(ww),
        "func": str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper(),
        "slope": float(ds.get("RescaleSlope", 1) or 1),
        "intercept": float(ds.get("RescaleIntercept", 0) or 0),
    }


def meta_dicomsdl(dcm):
    info = dcm.getPixelDataInfo()  # WindowCenter/Width here are the first ones
    func = dcm.VOILUTFunction
    if isinstance(func, (list, tuple)):
        func = func[0] if func else None
    return {
        "photometric": str(info.get("PhotometricInterpretation") or "MONOCHROME2"),
        "wc": info.get("WindowCenter"),
        "ww": info.get("WindowWidth"),
        "func": str(func or "LINEAR").upper(),
        "slope": info.get("RescaleSlope"),
        "intercept": info.get("RescaleIntercept"),
    }


# ---------------------------------------------------------------------------
# VOI
# ---------------------------------------------------------------------------
def minmax_u8(x):
    x = x.astype(np.float32, copy=False)
    lo, hi = float(x.min()), float(x.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    y = (x - lo) * scale + 0.5
    return y.astype(np.uint8)


def window_own(x, wc, ww, func):
    """First VOI window to uint8, float32 numpy. x must already be rescaled."""
    x = np.asarray(x, dtype=np.float32)
    if func == "SIGMOID":
        if ww <= 0:
            raise ValueError("SIGMOID needs Window Width > 0")
        y = np.multiply(x - np.float32(wc), np.float32(-4.0 / ww))
        np.exp(y, out=y)
        y += 1.0
        np.divide(np.float32(255.0), y, out=y)
    else:
        if func == "LINEAR_EXACT":
            c, w = wc, ww
            if w <= 0:
                raise ValueError("LINEAR_EXACT needs Window Width > 0")
        else:  # LINEAR (also the fallback for unknown values)
            if ww < 1:
                raise ValueError("LINEAR needs Window Width >= 1")
            c, w = wc - 0.5, ww - 1.0
        if w == 0:  # LINEAR with width 1: a step at c
            return np.where(x > c, 255, 0).astype(np.uint8)
        y = np.subtract(x, np.float32(c))
        y *= np.float32(1.0 / w)
        y += 0.5
        np.clip(y, 0.0, 1.0, out=y)
        y *= 255.0
    y += 0.5
    return y.astype(np.uint8)


def voi_pydicom(arr, ds):
    """pydicom's own functions, as Kaggle notebooks call them."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    arr = apply_modality_lut(arr, ds)
    if "VOILUTSequence" not in ds and "WindowCenter" not in ds:
        return minmax_u8(arr)
    out = apply_voi_lut(arr, ds, index=0)
    # apply_voi_lut/apply_windowing map to the range of the (rescaled) input
    # type: [0, 2**BitsStored - 1] for unsigned data (or the LUT's range)
    if "VOILUTSequence" in ds and ds.VOILUTSequence:
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        y_min, y_max = 0.0, float(2**bits - 1)
    else:
        bs = int(ds.BitsStored)
        if ds.get("PixelRepresentation", 0) == 0:
            y_min, y_max = 0.0, float(2**bs - 1)
        else:
            y_min, y_max = float(-(2 ** (bs - 1))), float(2 ** (bs - 1) - 1)
        s, i = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
        if s is not None and i is not None:
            y_min, y_max = y_min * float(s) + float(i), y_max * float(s) + float(i)
    out = (out - y_min) * (255.0 / (y_max - y_min)) + 0.5
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def to_u8(arr, handle, m):
    if BACKEND == "pydicom" and VOI_MODE == "auto":
        return voi_pydicom(arr, handle)
    x = arr
    if BACKEND == "pydicom":  # own VOI on pydicom's stored values: rescale first
        x = arr.astype(np.float32)
        if m["slope"] != 1.0 or m["intercept"] != 0.0:
            x = x * np.float32(m["slope"]) + np.float32(m["intercept"])
    if m["wc"] is None or m["ww"] is None:
        return minmax_u8(x)
    return window_own(x, float(m["wc"]), float(m["ww"]), m["func"])


# ---------------------------------------------------------------------------
# crop
# ---------------------------------------------------------------------------
def otsu_threshold(u8):
    hist = np.bincount(u8.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    s0 = np.cumsum(hist * levels)
    w1 = total - w0
    mu_t = s0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu_t * w0 - total * s0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    return int(np.argmax(between))  # foreground: value > threshold


def largest_cc_bbox_numpy(mask):
    """Bounding box (y0, x0, y1, x1), exclusive ends, of the largest
    8-connected component of a boolean mask; run-length labelling with
    union-find (Python loops over runs, not pixels)."""
    parent = []

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    runs = []  # (row, start, end_exclusive, label)
    prev = []
    m8 = mask.astype(np.int8)
    for r in range(mask.shape[0]):
        d = np.diff(np.concatenate(([0], m8[r], [0])))
        starts = np.flatnonzero(d == 1)
        ends = np.flatnonzero(d == -1)
        cur = []
        j = 0
        for s, e in zip(starts.tolist(), ends.tolist()):
            lab = -1
            # previous-row runs overlapping [s-1, e+1) (8-connectivity)
            # prev runs are sorted; [ps, pe) touches [s, e) diagonally or
            # directly iff ps <= e and pe >= s
            while j < len(prev) and prev[j][1] < s:
                j += 1
            k = j
            while k < len(prev) and prev[k][0] <= e:
                if prev[k][1] >= s:  # overlaps including diagonal
                    pl = find(prev[k][2])
                    if lab < 0:
                        lab = pl
                    elif pl != lab:
                        parent[pl] = lab
                k += 1
            if lab < 0:
                lab = len(parent)
                parent.append(lab)
            cur.append((s, e, lab))
            runs.append((r, s, e, lab))
        prev = cur
    if not runs:
        return None
    stats = {}
    for r, s, e, lab in runs:
        root = find(lab)
        st = stats.get(root)
        if st is None:
            stats[root] = [e - s, r, s, r + 1, e]
        else:
            st[0] += e - s
            st[1] = min(st[1], r)
            st[2] = min(st[2], s)
            st[3] = max(st[3], r + 1)
            st[4] = max(st[4], e)
    best = max(stats.values(), key=lambda v: v[0])
    return best[1], best[2], best[3], best[4]


def crop_breast(img):
    small = img[::CROP_STRIDE, ::CROP_STRIDE]
    if USE_CV2:
        thr, mask = cv2.threshold(np.ascontiguousarray(small), 0, 255,
                                  cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return img
        i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h = (int(v) for v in stats[i, :4])
        box = (y, x, y + h, x + w)
    else:
        t = otsu_threshold(small)
        box = largest_cc_bbox_numpy(small > t)
        if box is None:
            return img
    y0, x0, y1, x1 = box
    s = CROP_STRIDE
    return img[y0 * s:min(y1 * s, img.shape[0]), x0 * s:min(x1 * s, img.shape[1])]


# ---------------------------------------------------------------------------
# resize / pad / write
# ---------------------------------------------------------------------------
def resize_pad(img, size):
    h, w = img.shape
    scale = min(size / h, size / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if USE_CV2:
        small = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=cv2.INTER_AREA)
    else:
        small = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((nw, nh), Image.BOX))
    out = np.zeros((size, size), dtype=np.uint8)
    out[:nh, :nw] = small
    return out


def write_png(path, img):
    if USE_CV2:
        if not cv2.imwrite(path, img):
            raise OSError(f"cv2.imwrite failed: {path}")
    else:
        Image.fromarray(img).save(path)


# ---------------------------------------------------------------------------
# per-image work
# ---------------------------------------------------------------------------
CFG = {}


def process(path):
    """Returns (path, error or None, {stage: seconds})."""
    t = {}
    try:
        t0 = time.perf_counter()
        if BACKEND == "pydicom":
            arr, handle = decode_pydicom(path)
        else:
            arr, handle = decode_dicomsdl(path)
        t1 = time.perf_counter()
        t["decode"] = t1 - t0
        if arr is None or arr.size == 0:  # dicomsdl returns an empty array for non-DICOM input
            raise ValueError("no pixel data decoded")
        if CFG["decode_only"]:
            return path, None, t
        m = meta_pydicom(handle) if BACKEND == "pydicom" else meta_dicomsdl(handle)
        if arr.ndim != 2:
            raise ValueError(f"expected one greyscale frame, got shape {arr.shape}")
        img = to_u8(arr, handle, m)
        if m["photometric"] == "MONOCHROME1":
            img = 255 - img
        t2 = time.perf_counter()
        t["voi"] = t2 - t1
        img = crop_breast(img)
        t3 = time.perf_counter()
        t["crop"] = t3 - t2
        img = resize_pad(img, CFG["size"])
        t4 = time.perf_counter()
        t["resize"] = t4 - t3
        stem = os.path.splitext(os.path.basename(path))[0]
        write_png(os.path.join(CFG["out"], stem + ".png"), img)
        t["write"] = time.perf_counter() - t4
        return path, None, t
    except Exception as exc:  # report, keep going
        return path, f"{type(exc).__name__}: {exc}", t


def worker_init():
    if USE_CV2:
        cv2.setNumThreads(1)


# ---------------------------------------------------------------------------
def collect_inputs(paths, list_file):
    items = list(paths)
    if list_file:
        with open(list_file) as fh:
            items += [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
    files = []
    for p in items:
        if os.path.isdir(p):
            for root, _dirs, names in os.walk(p):
                files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(".dcm")]
        else:
            files.append(p)
    return files


def main():
    global BACKEND, VOI_MODE, USE_CV2, PYDICOM_PLUGIN
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring for the exact pipeline.")
    ap.add_argument("paths", nargs="*", help=".dcm files or directories")
    ap.add_argument("--backend", choices=["pydicom", "dicomsdl"], required=True)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", default="out/python-ref", help="PNG output directory")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (1 = sequential)")
    ap.add_argument("--list", dest="list_file", help="file with one input path per line")
    ap.add_argument("--decode-only", action="store_true", help="decode only, write nothing")
    ap.add_argument("--voi", choices=["auto", "own"], default="auto",
                    help="auto: pydicom's apply_modality_lut/apply_voi_lut for the pydicom "
                         "backend; own: this script's float32 numpy windowing for both")
    ap.add_argument("--pydicom-plugin", default="pylibjpeg",
                    help="pydicom decoding plugin to force ('' = pydicom's own choice)")
    ap.add_argument("--no-cv2", action="store_true", help="use PIL/numpy even if cv2 is present")
    args = ap.parse_args()

    BACKEND = args.backend
    VOI_MODE = args.voi
    PYDICOM_PLUGIN = args.pydicom_plugin
    if args.no_cv2:
        USE_CV2 = False
    versions = load_backend(BACKEND)
    worker_init()
    import_s = time.perf_counter() - T_IMPORT0
    print(f"imports: {import_s:.3f} s", file=sys.stderr)

    files = collect_inputs(args.paths, args.list_file)
    if not files:
        ap.error("no input files")
    CFG.update(size=args.size, out=os.path.abspath(args.out), decode_only=args.decode_only)
    if not args.decode_only:
        os.makedirs(CFG["out"], exist_ok=True)

    t0 = time.perf_counter()
    if args.jobs <= 1:
        results = [process(f) for f in files]
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        with ctx.Pool(args.jobs, initializer=worker_init) as pool:
            results = list(pool.imap_unordered(process, files, chunksize=1))
    seconds = time.perf_counter() - t0

    failed = [(p, e) for p, e, _ in results if e]
    for p, e in failed:
        print(f"FAILED {p}: {e}", file=sys.stderr)
    ok = [t for _, e, t in results if not e]
    stages = {}
    for t in ok:
        for k, v in t.items():
            stages[k] = stages.get(k, 0.0) + v
    stage_mean = {k: round(v / len(ok), 4) for k, v in stages.items()} if ok else {}
    n = len(ok)
    report = {
        "backend": BACKEND,
        "mode": "decode-only" if args.decode_only else "full",
        "images": n,
        "failed": len(failed),
        "seconds": round(seconds, 4),
        "images_per_s": round(n / seconds, 4) if seconds > 0 else None,
        "jobs": max(1, args.jobs),
        "size": args.size,
        "import_seconds": round(import_s, 4),
        "stage_mean_s": stage_mean,
        "ops": {
            "voi": ("pydicom.apply_voi_lut" if BACKEND == "pydicom" and VOI_MODE == "auto"
                    else "numpy-float32"),
            "pydicom_plugin": PYDICOM_PLUGIN if BACKEND == "pydicom" else None,
            "imaging": "cv2" if USE_CV2 else "pil+numpy",
        },
        "versions": versions,
    }
    print(json.dumps(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
