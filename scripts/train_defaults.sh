#!/usr/bin/env bash
# The recipe behind the shipped detectors in src/xunjian/models/weights/<detector>/.
#
#   scripts/train_defaults.sh [data|subset|train|ship|all] [DETECTOR...]
#
#   data    synthetic test-range flights (seeds 1-8) → YOLO tiles → `xunjian datasets build`
#   subset  a seeded train subset (list file) so all three CPU runs fit in ~90 min (2 threads)
#   train   `xunjian train` from scratch (yolo11n.yaml); resumes automatically when
#           RUN/weights/last.pt exists and results.csv shows an unfinished run
#   ship    evaluate on the build's val split (real where it exists), export ONNX, write card
#
# Runs and data live outside the repository in $XUNJIAN_TRAINING (default
# /work/xunjian-training). Real samples are read from $XUNJIAN_REAL_DATA_DIR
# (default ../shared/data). Never more than 2 CPU threads: OMP_NUM_THREADS=2, --threads 2.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${XUNJIAN_TRAINING:-/work/xunjian-training}"
REAL="${XUNJIAN_REAL_DATA_DIR:-$ROOT/../shared/data}"
XJ="${XJ:-$ROOT/.venv/bin/xunjian}"
PY="${PY:-$ROOT/.venv/bin/python}"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
SEEDS="1 2 3 4 5 6 7 8"
HOLDOUT_SEEDS="101 102"  # synthetic val only, never trained on
# The synthetic flights are 30 m over ground with the "small" camera (fx 727 px): 0.041 m/px.
# `synth export-yolo` cuts 640 px tiles and training sees them at 320 px, so the network
# learns aerial targets at ~0.08 m/px: the card records it, and detection decodes near-nadir
# frames at that ground sampling (inspect/detect.py, "The models' own scale").
GSD_M=0.08
VEHICLE_NOTE="Its synthetic training tiles come from nadir drone surveys only: patrol-vehicle \
(dashcam) views are not in its training data, and on the range's dashcam frames it finds almost \
nothing (docs/benchmarks.md). Its real photos (sources below) are ground-level or low-altitude."
VEHICLE_TRAINED_NOTE="Its training tiles come from the test range only: nadir drone surveys and \
patrol-vehicle (dashcam) runs, rendered; no real photo of a spoil truck exists here yet."

# detector → imgsz epochs batch train-subset (real, synthetic-with-target, background)
declare -A IMGSZ=([road_damage]=320 [illegal_dumping]=320 [spoil_truck]=320)
declare -A EPOCHS=([road_damage]=35 [illegal_dumping]=25 [spoil_truck]=24)
declare -A SUBSET=([road_damage]="500 300 60" [illegal_dumping]="700 250 40" [spoil_truck]="0 600 100")
# Detectors that also learn from patrol-vehicle (dashcam) runs of the range. Those frames are
# detected at full resolution, so their tiles are cut at the network input (320 px).
VEHICLE_DETS="spoil_truck"

data() {
  local det="$1" syn=()
  for s in $SEEDS; do
    [ -d "$WORK/synth/flight_s$s" ] || "$XJ" synth flight --out "$WORK/synth/flight_s$s" --seed "$s"
    [ -d "$WORK/synth/yolo_${det}_s$s" ] ||
      "$XJ" synth export-yolo "$WORK/synth/flight_s$s" --out "$WORK/synth/yolo_${det}_s$s" --detector "$det"
    syn+=(--synthetic "$WORK/synth/yolo_${det}_s$s")
  done
  if [[ " $VEHICLE_DETS " == *" $det "* ]]; then
    for s in $SEEDS; do vehicle "$det" "$s"; syn+=(--synthetic "$WORK/synth/yolo_${det}_vehicle_s$s"); done
  fi
  "$XJ" datasets build "$det" --out "$WORK/data/$det" --resize tile --imgsz 640 \
    --data-root "$REAL" "${syn[@]}"
}

vehicle() {  # a patrol-vehicle run of world SEED, as 320 px YOLO tiles for DET
  local det="$1" s="$2"
  [ -d "$WORK/synth/vehicle_s$s" ] || "$XJ" synth vehicle --out "$WORK/synth/vehicle_s$s" --seed "$s"
  [ -d "$WORK/synth/yolo_${det}_vehicle_s$s" ] ||
    "$XJ" synth export-yolo "$WORK/synth/vehicle_s$s" --out "$WORK/synth/yolo_${det}_vehicle_s$s" \
      --detector "$det" --tile 320
}

# Writes data/<det>/data_train.yaml; train = a seeded sample of the build's train images:
# N real images, M synthetic images holding a target, K synthetic backgrounds ("all": every one).
subset() {
  local det="$1" spec="${SUBSET[$1]}"
  "$PY" - "$WORK/data/$det" "$spec" <<'EOF'
import random, sys
from pathlib import Path
import yaml
root, spec = Path(sys.argv[1]), sys.argv[2].split()
data = yaml.safe_load((root / "data.yaml").read_text())
images = sorted((root / "images" / "train").iterdir())
if spec != ["all"]:
    n_real, n_syn, n_bg = map(int, spec)
    def has_box(p): return (root / "labels" / "train" / (p.stem + ".txt")).read_text().strip() != ""
    synth = [p for p in images if p.name.startswith("synthetic")]
    real = [p for p in images if not p.name.startswith("synthetic")]
    rng = random.Random(0)
    pick = lambda xs, n: rng.sample(xs, min(n, len(xs)))
    images = sorted(pick(real, n_real) + pick([p for p in synth if has_box(p)], n_syn)
                    + pick([p for p in synth if not has_box(p)], n_bg))
(root / "train_subset.txt").write_text("".join(f"{p}\n" for p in images))
data["train"] = str(root / "train_subset.txt")
(root / "data_train.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
print(f"{root.name}: {len(images)} train images → {root / 'data_train.yaml'}")
EOF
}

train() {
  local det="$1" run="$WORK/$1/run" resume=()
  mkdir -p "$WORK/$det"
  if [ -f "$run/weights/last.pt" ]; then
    local done; done=$(($(wc -l < "$run/results.csv") - 1))
    if [ "$done" -ge "${EPOCHS[$det]}" ]; then echo "$det: finished ($done epochs)"; return; fi
    resume=(--resume)
  fi
  "$XJ" train "$det" --data "$WORK/data/$det/data_train.yaml" --out "$run" \
    --epochs "${EPOCHS[$det]}" --imgsz "${IMGSZ[$det]}" --batch 16 --seed 0 --threads 2 \
    "${resume[@]}"
}

ship() {
  local det="$1" extra=()
  if [ "$det" != road_damage ]; then
    # classes without real val images: also measure on synthetic tiles from flights (and
    # vehicle runs) whose seeds were NOT used for training (the build puts every tile of its
    # synthetic folders, the export's val split included, into train)
    local folders=()
    for s in $HOLDOUT_SEEDS; do
      [ -d "$WORK/synth/flight_s$s" ] || "$XJ" synth flight --out "$WORK/synth/flight_s$s" --seed "$s"
      [ -d "$WORK/synth/yolo_${det}_s$s" ] ||
        "$XJ" synth export-yolo "$WORK/synth/flight_s$s" --out "$WORK/synth/yolo_${det}_s$s" --detector "$det"
      folders+=("yolo_${det}_s$s")
      if [[ " $VEHICLE_DETS " == *" $det "* ]]; then vehicle "$det" "$s"; folders+=("yolo_${det}_vehicle_s$s"); fi
    done
    "$PY" - "$WORK" "$det" "${folders[@]}" <<'EOF'
import sys, yaml
from pathlib import Path
work, det, folders = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
vals = [str(work / "synth" / f / "images" / split) for f in folders for split in ("train", "val")]
names = yaml.safe_load((work / f"data/{det}/data.yaml").read_text())["names"]
out = work / f"data/{det}_synthval"
out.mkdir(parents=True, exist_ok=True)
(out / "data.yaml").write_text(yaml.safe_dump({"path": str(out), "train": vals, "val": vals, "nc": len(names), "names": names}))
EOF
    extra=(--synthetic-val "$WORK/data/${det}_synthval/data.yaml")
  fi
  local note="$VEHICLE_NOTE"
  [[ " $VEHICLE_DETS " == *" $det "* ]] && note="$VEHICLE_TRAINED_NOTE"
  "$XJ" train "$det" --data "$WORK/data/$det/data.yaml" --out "$WORK/$det/run" \
    --imgsz "${IMGSZ[$det]}" --ship-only "${extra[@]}" --gsd-m "$GSD_M" \
    --limitation "$note" --reproduce "scripts/train_defaults.sh all $det"
}

step="${1:-all}"; shift || true
detectors=("$@"); [ ${#detectors[@]} -gt 0 ] || detectors=(road_damage illegal_dumping spoil_truck)
for det in "${detectors[@]}"; do
  case "$step" in
    data) data "$det" ;;
    subset) subset "$det" ;;
    train) train "$det" ;;
    ship) ship "$det" ;;
    all) data "$det"; subset "$det"; train "$det"; ship "$det" ;;
    *) echo "unknown step $step (data|subset|train|ship|all)" >&2; exit 2 ;;
  esac
done
