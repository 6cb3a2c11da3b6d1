#!/usr/bin/env python3
"""Make a synthetic, RSNA-like full-field mammogram DICOM for benchmarking.

The image mimics the files of the Kaggle "RSNA Screening Mammography Breast
Cancer Detection" data set closely enough to exercise the same decode path:

* 3328 rows x 2560 columns (configurable), 16 bits allocated, 12 bits stored,
  unsigned, MONOCHROME2, one frame;
* Transfer Syntax JPEG 2000 Image Compression (Lossless Only)
  (1.2.840.10008.1.2.4.90), the single fragment being a *JP2 file* (it starts
  with the JP2 signature box, not with a bare J2K SOC marker), as in RSNA's
  files;
* content: a smooth half-ellipse "breast" against the left edge, values about
  1500-3500, with low-frequency "tissue" texture and pixel noise, over a
  background of about 100 with a little noise (the entropy matters: a
  constant image decodes far faster than a real one);
* Window Center/Width set (two windows; the first is the one to apply),
  VOI LUT Function LINEAR, Rescale Slope 1 / Intercept 0.

Encoders (--encoder):
  openjpeg  pylibjpeg-openjpeg's ``openjpeg.encode(..., codec_format=1)``
            (JP2 output, lossless 5-3 DWT, 6 resolutions, 1 tile). Default.
  opj       the ``opj_compress`` command line tool (Debian package
            ``libopenjp2-tools``), fed a 16-bit PGM, writing a .jp2.

Usage:
  python make_bench_dicom.py [--out /tmp/bench/full_j2k.dcm] [--rows 3328]
                             [--cols 2560] [--seed 0] [--encoder openjpeg|opj]
                             [--copies N]

--copies N additionally writes N copies (full_j2k_000.dcm ...) into a
sibling directory named after the output file's stem (e.g. /tmp/bench/full_j2k/),
each with its own SOP Instance UID, for batch benchmarking.

Do not commit the generated DICOM files.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, generate_uid, ExplicitVRLittleEndian

DIGITAL_MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"


def make_image(rows, cols, seed):
    """Return a uint16 (rows, cols) array with 12-bit breast-like content."""
    rng = np.random.default_rng(seed)
    y = (np.arange(rows, dtype=np.float32) - rows / 2.0)[:, None]
    x = np.arange(cols, dtype=np.float32)[None, :]
    a = 0.44 * rows  # vertical semi-axis
    b = 0.72 * cols  # horizontal semi-axis (chest wall at column 0)
    r2 = (y / a) ** 2 + (x / b) ** 2
    inside = r2 < 1.0
    # compressed-breast thickness profile: flat in the middle, rolling off
    # towards the skin line
    thick = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) ** 0.5

    # low-frequency "fibroglandular" texture: band-limited noise via FFT
    noise = rng.standard_normal((rows, cols)).astype(np.float32)
    f = np.fft.rfft2(noise)
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.rfftfreq(cols)[None, :]
    sigma = 0.004  # cycles/pixel
    f *= np.exp(-(fx ** 2 + fy ** 2) / (2 * sigma ** 2))
    tex = np.fft.irfft2(f, s=(rows, cols)).astype(np.float32)
    tex /= tex.std() + 1e-9
    # finer texture on top
    f2 = np.fft.rfft2(rng.standard_normal((rows, cols)).astype(np.float32))
    f2 *= np.exp(-(fx ** 2 + fy ** 2) / (2 * 0.03 ** 2))
    tex2 = np.fft.irfft2(f2, s=(rows, cols)).astype(np.float32)
    tex2 /= tex2.std() + 1e-9

    img = np.full((rows, cols), 100.0, dtype=np.float32)
    breast = 1500.0 + 1500.0 * thick + 250.0 * tex * thick + 80.0 * tex2 * thick
    img = np.where(inside, breast, img)
    # quantum noise: stronger in the breast than in the background
    img += rng.standard_normal((rows, cols)).astype(np.float32) * np.where(inside, 18.0, 4.0)
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


def encode_openjpeg(arr):
    import openjpeg

    return openjpeg.encode(arr, bits_stored=12, photometric_interpretation=2, codec_format=1)


def encode_opj(arr):
    exe = shutil.which("opj_compress")
    if not exe:
        sys.exit("opj_compress not found (apt-get install -y libopenjp2-tools)")
    with tempfile.TemporaryDirectory() as td:
        pgm = os.path.join(td, "in.pgm")
        jp2 = os.path.join(td, "out.jp2")
        with open(pgm, "wb") as fh:
            fh.write(b"P5\n%d %d\n4095\n" % (arr.shape[1], arr.shape[0]))
            fh.write(arr.astype(">u2").tobytes())
        subprocess.run([exe, "-i", pgm, "-o", jp2], check=True, stdout=subprocess.DEVNULL)
        with open(jp2, "rb") as fh:
            return fh.read()


def build_dataset(arr, codestream):
    rows, cols = arr.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DIGITAL_MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEG2000Lossless

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DIGITAL_MG_FOR_PRESENTATION
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "BENCH0001"
    ds.PatientName = "Bench^Synthetic"
    ds.Modality = "MG"
    ds.BodyPartExamined = "BREAST"
    ds.ImageLaterality = "L"
    ds.ViewPosition = "CC"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.WindowCenter = ["2400", "2300"]
    ds.WindowWidth = ["2600", "3000"]
    ds.WindowCenterWidthExplanation = ["NORMAL", "WIDE"]
    ds.VOILUTFunction = "LINEAR"
    ds.LossyImageCompression = "00"
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/bench/full_j2k.dcm")
    ap.add_argument("--rows", type=int, default=3328)
    ap.add_argument("--cols", type=int, default=2560)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", choices=["openjpeg", "opj"], default="openjpeg")
    ap.add_argument("--copies", type=int, default=0, help="also write N copies into <out stem>/")
    ap.add_argument("--verify", action="store_true", help="decode back with pydicom and compare")
    args = ap.parse_args()

    arr = make_image(args.rows, args.cols, args.seed)
    stream = encode_openjpeg(arr) if args.encoder == "openjpeg" else encode_opj(arr)
    if not stream.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        sys.exit("encoder did not produce a JP2 file")
    ds = build_dataset(arr, stream)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ds.save_as(args.out, enforce_file_format=True)
    print(f"wrote {args.out}: {args.rows}x{args.cols}, J2K {len(stream)} bytes "
          f"({8.0 * len(stream) / arr.size:.2f} bpp), range {arr.min()}..{arr.max()}")

    if args.verify:
        back = pydicom.dcmread(args.out).pixel_array
        if not np.array_equal(back, arr):
            sys.exit("verify FAILED: decoded pixels differ")
        print("verify ok: lossless round trip")

    if args.copies:
        stem = os.path.splitext(args.out)[0]
        os.makedirs(stem, exist_ok=True)
        base = os.path.basename(stem)
        for i in range(args.copies):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            p = os.path.join(stem, f"{base}_{i:03d}.dcm")
            ds.save_as(p, enforce_file_format=True)
        print(f"wrote {args.copies} copies to {stem}/")


if __name__ == "__main__":
    main()
