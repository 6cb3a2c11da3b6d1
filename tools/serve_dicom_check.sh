#!/usr/bin/env bash
# Independent validation of `mammo serve`'s DICOM results (docs/serve_dicom_check.txt):
# a tiny phantom run is served, one phantom patient's study (all its views) is posted with
# curl, and the
# Secondary Captures and the SR it writes to --out are checked by two readers that share
# no code with mammo: dciodvfy (Debian's dicom3tools: IOD conformance, errors and warnings)
# and pydicom (reads every file back; prints the UIDs, the SR's probabilities and boxes).
#
#   tools/serve_dicom_check.sh MAMMO_BINARY WORK_DIR [RESULT_FILE]
#
# Needs: curl, dciodvfy (apt-get install dicom3tools), a Python with pydicom in
# $VENV (default /work/venv-serve: python3 -m venv /work/venv-serve &&
# /work/venv-serve/bin/pip install pydicom). Not run by CI (CI needs no Python).
set -euo pipefail
mammo=$1
work=$2
result=${3:-docs/serve_dicom_check.txt}
venv=${VENV:-/work/venv-serve}
[ -x "$mammo" ] || { echo "$mammo: not an executable" >&2; exit 2; }
command -v dciodvfy >/dev/null || { echo "needs dciodvfy (apt-get install dicom3tools)" >&2; exit 2; }
[ -x "$venv/bin/python" ] || { echo "needs a venv with pydicom at $venv" >&2; exit 2; }
rm -rf "$work" && mkdir -p "$work"

"$mammo" phantom --out "$work/data" --patients 4 --size 200x260 --prevalence 0.5 --seed 5 --quiet
"$mammo" preprocess --csv "$work/data/train.csv" --images "$work/data/train_images" \
  --out "$work/processed" --size 32 --flip-to left --quiet
"$mammo" train --manifest "$work/processed/32/manifest.csv" --out "$work/run" --folds 2 \
  --epochs 1 --batch-size 8 --quiet

"$mammo" serve --run "$work/run" --bind 127.0.0.1:0 --device flex --out "$work/out" \
  >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
  sleep 0.2
done
url=$(sed -n 's/^listening on //p' "$work/serve.out")
[ -n "$url" ] || { cat "$work/serve.err" >&2; exit 1; }

patient=$(ls "$work/data/train_images" | sort | head -1)
args=()
for f in "$work/data/train_images/$patient"/*.dcm; do args+=(-F "files=@$f;type=application/dicom"); done
curl -sS --fail-with-body "${args[@]}" "$url/api/v1/predict" >"$work/answer.json"
folder=$(ls -d "$work/out"/*/ | head -1)

{
  echo "# mammo serve: DICOM results checked by independent readers"
  echo
  echo "One phantom study (patient $patient, $(( ${#args[@]} / 2 )) images) posted to mammo serve; its --out folder"
  echo "checked with dciodvfy ($(dpkg-query -W -f '${Version}' dicom3tools 2>/dev/null || echo '?'))"
  echo "and pydicom $("$venv/bin/python" -c 'import pydicom; print(pydicom.__version__)')."
  echo "Made by tools/serve_dicom_check.sh; UIDs and dates differ on every run. The warnings"
  echo "are the phantom source's (no Study Date, Time or ID; a bare number as Patient's Name),"
  echo "copied into the results as Type 2 attributes; dciodvfy reports no error."
  for f in "$folder"sc_*.dcm "$folder"sr.dcm; do
    echo
    echo "## dciodvfy $(basename "$f")"
    echo
    echo '```'
    dciodvfy "$f" 2>&1 | sed "s|$folder||g" || true
    echo '```'
  done
  echo
  echo "## pydicom"
  echo
  echo '```'
  "$venv/bin/python" - "$folder" "$work/data/train_images/$patient" <<'PY'
import glob, json, os, sys
import pydicom
folder, source_dir = sys.argv[1], sys.argv[2]
sources = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in glob.glob(os.path.join(source_dir, "*.dcm"))}
study = {s.StudyInstanceUID for s in sources.values()}
assert len(study) == 1, study
study = study.pop()
source_series = {s.SeriesInstanceUID for s in sources.values()}
answer = json.load(open(os.path.join(folder, "result.json")))
for p in sorted(glob.glob(os.path.join(folder, "sc_*.dcm"))):
    d = pydicom.dcmread(p)
    px = d.pixel_array
    ref = d.SourceImageSequence[0].ReferencedSOPInstanceUID
    assert d.StudyInstanceUID == study and d.SeriesInstanceUID not in source_series
    assert ref in sources and d.SOPInstanceUID not in sources
    print(f"{os.path.basename(p)}: {d.SOPClassUID.name}, {d.Rows}x{d.Columns} {d.PhotometricInterpretation} "
          f"pixels {px.shape} {px.dtype}; study kept, new series; source {sources[ref].ImageLaterality} {sources[ref].ViewPosition}")
sr = pydicom.dcmread(os.path.join(folder, "sr.dcm"))
assert sr.StudyInstanceUID == study and sr.SeriesInstanceUID not in source_series
print(f"sr.dcm: {sr.SOPClassUID.name}, {sr.ConceptNameCodeSequence[0].CodeMeaning}, {sr.CompletionFlag}/{sr.VerificationFlag}")
for item in sr.ContentSequence:
    name = item.ConceptNameCodeSequence[0].CodeMeaning
    if item.ValueType == "TEXT":
        print(f"  {name}: {item.TextValue}")
        continue
    side = prob = None
    for c in item.ContentSequence:
        m = c.ConceptNameCodeSequence[0].CodeMeaning
        if c.ValueType == "CODE":
            side = c.ConceptCodeSequence[0].CodeMeaning
        elif c.ValueType == "NUM":
            prob = float(c.MeasuredValueSequence[0].NumericValue)
            print(f"  {name}: {side} breast, {m} {prob}")
        elif c.ValueType == "SCOORD":
            ref = c.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            s = sources[ref]
            pts = [round(v, 1) for v in c.GraphicData]
            print(f"    {m} {c.GraphicType} {pts[:4]}... on {s.ImageLaterality} {s.ViewPosition} ({s.Columns}x{s.Rows})")
    want = [b["probability"] for b in answer["breasts"] if b["laterality"] == side[0]][0]
    assert abs(prob - want) < 1e-6, (prob, want)
print("all checks passed")
PY
  echo '```'
} >"$result"
echo "wrote $result"
