#!/usr/bin/env bash
# Fetches the `liveness` service's models and the test images from PyPI (issue 10), checks them
# against pinned SHA-256 sums and unpacks the few files used into $YIQIAN_CACHE/models.
# Models are data, not source: they stay out of git. Licences: docs/identity/models.md.
# Idempotent: when every file is present with the right sum it only checks (under a second).
set -euo pipefail
cache=${YIQIAN_CACHE:-/var/cache/yiqian}
models="$cache/models"
dl="$cache/models-download"
say() { printf '[models] %s\n' "$*"; }

# wheel file | sha256 of the wheel | path inside the wheel | target under $models | sha256 of it
entries=(
  "rapidocr_onnxruntime-1.4.4-py3-none-any.whl|971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf|rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx|ppocr/ch_PP-OCRv4_rec_infer.onnx|48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
  "onnxruntime-1.22.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl|b978aa63a9a22095479c38371a9b359d4c15173cbb164eaad5f2cd27d666aa65|onnxruntime/capi/libonnxruntime.so.1.22.0|onnxruntime/libonnxruntime.so.1.22.0|7520bc1b4f649ee8fa956442a66ded303e8fd3b465b0159b7e893bdc87df4e38"
  "onnxruntime-1.22.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl|b978aa63a9a22095479c38371a9b359d4c15173cbb164eaad5f2cd27d666aa65|onnxruntime/LICENSE|onnxruntime/LICENSE|2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c"
  "scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl|fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c|skimage/data/astronaut.png|test-images/astronaut.png|88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
)
# The pip requirement each wheel comes from.
declare -A spec=(
  [rapidocr_onnxruntime-1.4.4-py3-none-any.whl]="rapidocr-onnxruntime==1.4.4"
  [onnxruntime-1.22.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl]="onnxruntime==1.22.0"
  [scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl]="scikit-image==0.24.0"
)

sum_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

for e in "${entries[@]}"; do
  IFS='|' read -r wheel wsum inner target tsum <<<"$e"
  sum_ok "$models/$target" "$tsum" && continue
  mkdir -p "$dl" "$(dirname "$models/$target")"
  if ! sum_ok "$dl/$wheel" "$wsum"; then
    say "downloading ${spec[$wheel]} from PyPI"
    # Fixed platform and Python version: the same wheel whatever Python the host has.
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_28_x86_64 -d "$dl" "${spec[$wheel]}"
    sum_ok "$dl/$wheel" "$wsum" || { say "checksum mismatch for $wheel"; exit 1; }
  fi
  tmp=$(mktemp -d)
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$dl/$wheel" "$inner" "$tmp"
  sum_ok "$tmp/$inner" "$tsum" || { say "checksum mismatch for $inner in $wheel"; rm -rf "$tmp"; exit 1; }
  mv "$tmp/$inner" "$models/$target"
  rm -rf "$tmp"
  say "installed $target"
done
