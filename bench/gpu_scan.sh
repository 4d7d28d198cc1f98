#!/usr/bin/env bash
# Scan speed on a GPU, in one command: photos/s, GPU utilisation (nvidia-smi sampled every
# 0.5 s during the scan) and where the time went (scan --profile), per detector.
#
#   bench/gpu_scan.sh [PHOTO_DIR] [DEVICE]     # default: bench/data/camera, cuda
#
# PHOTO_DIR defaults to the camera-size set (made by bench/make_camera_set.py when
# missing). Run from the repository root with the project's environment active (or
# through `uv run bash bench/gpu_scan.sh`). Nothing outside a temporary folder is written.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-bench/data/camera}"
device="${2:-cuda}"
py="${PYTHON:-python}"
[ -e "$dir" ] || "$py" bench/make_camera_set.py --out "$dir"
tmp="$(mktemp -d)"
trap 'kill "${smi:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
n=$(find "$dir" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.heic' \) | wc -l)
echo "$n photos in $dir, device $device"
for detector in yunet mtcnn; do
    smi=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits \
            -lms 500 >"$tmp/smi-$detector.csv" &
        smi=$!
    fi
    start=$(date +%s.%N)
    "$py" -m facecluster scan "$dir" --db "$tmp/$detector.db" --device "$device" \
        --detector "$detector" --profile >"$tmp/profile-$detector.txt"
    end=$(date +%s.%N)
    [ -n "$smi" ] && kill "$smi" && wait "$smi" 2>/dev/null || true
    "$py" -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]);
print(f'== $detector: {n / s:.2f} photos/s ({s:.1f} s, process start included)')" "$n" "$start" "$end"
    if [ -s "$tmp/smi-$detector.csv" ]; then
        awk -F', *' '{u+=$1; if ($1>m) m=$1; if ($2>mem) mem=$2; k++}
            END {printf "GPU utilisation: mean %.0f%%, max %d%%, memory max %d MiB (%d samples)\n",
                 u/k, m, mem, k}' "$tmp/smi-$detector.csv"
    fi
    sed -n '/where the time went/,$p' "$tmp/profile-$detector.txt"
done
