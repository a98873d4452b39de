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
  # face match (issue 10): dlib's models by Davis King, CC0, in the `face_recognition_models` sdist.
  "face_recognition_models-0.3.0.tar.gz|b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf|face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat|dlib/dlib_face_recognition_resnet_model_v1.dat|55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
  "face_recognition_models-0.3.0.tar.gz|b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf|face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat|dlib/shape_predictor_5_face_landmarks.dat|c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
  "face_recognition_models-0.3.0.tar.gz|b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf|face_recognition_models-0.3.0/face_recognition_models/models/mmod_human_face_detector.dat|dlib/mmod_human_face_detector.dat|4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"
  "face_recognition_models-0.3.0.tar.gz|b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf|face_recognition_models-0.3.0/LICENSE|dlib/LICENSE|6a1ee543e5282cd9061881edf462e6fdab181f328da71fc2c9a6950a80e94d01"
  # a second public-domain face (US Navy photograph) for "different people" tests.
  "matplotlib-3.9.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl|8912ef7c2362f7193b5819d17dae8629b34a95c58603d781329712ada83f9447|matplotlib/mpl-data/sample_data/grace_hopper.jpg|test-images/grace_hopper.jpg|a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"
)
# The 68-point landmark model drives active liveness. The file is CC0, but upstream says the iBUG
# 300-W data it was trained on rules out commercial use: a deployment may skip it
# (YIQIAN_SKIP_LANDMARKS68=1) and point LIVENESS_LANDMARKS68 at a model it is licensed to use.
if [ "${YIQIAN_SKIP_LANDMARKS68:-0}" != 1 ]; then
  entries+=("face_recognition_models-0.3.0.tar.gz|b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf|face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_68_face_landmarks.dat|dlib/shape_predictor_68_face_landmarks.dat|fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f")
fi
# The pip requirement each wheel comes from.
declare -A spec=(
  [rapidocr_onnxruntime-1.4.4-py3-none-any.whl]="rapidocr-onnxruntime==1.4.4"
  [onnxruntime-1.22.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl]="onnxruntime==1.22.0"
  [scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl]="scikit-image==0.24.0"
  [face_recognition_models-0.3.0.tar.gz]="face-recognition-models==0.3.0"
  [matplotlib-3.9.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl]="matplotlib==3.9.2"
)

sum_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

for e in "${entries[@]}"; do
  IFS='|' read -r wheel wsum inner target tsum <<<"$e"
  sum_ok "$models/$target" "$tsum" && continue
  mkdir -p "$dl" "$(dirname "$models/$target")"
  if ! sum_ok "$dl/$wheel" "$wsum"; then
    say "downloading ${spec[$wheel]} from PyPI"
    if [[ $wheel == *.tar.gz ]]; then
      # A source distribution (the package has no wheel): the archive is the same on any host.
      python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary=:all: \
        -d "$dl" "${spec[$wheel]}"
    else
      # Fixed platform and Python version: the same wheel whatever Python the host has.
      python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_28_x86_64 -d "$dl" "${spec[$wheel]}"
    fi
    sum_ok "$dl/$wheel" "$wsum" || { say "checksum mismatch for $wheel"; exit 1; }
  fi
  tmp=$(mktemp -d)
  # Only the one member is extracted, under its archive path (checked against its sum next).
  python3 -c '
import sys, tarfile, zipfile
archive, inner, out = sys.argv[1:4]
if archive.endswith(".tar.gz"):
    with tarfile.open(archive) as t:
        # the "data" filter where this Python has it (3.11.4+; Debian 12 backports it)
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        t.extract(t.getmember(inner), out, **kw)
else:
    zipfile.ZipFile(archive).extract(inner, out)
' "$dl/$wheel" "$inner" "$tmp"
  sum_ok "$tmp/$inner" "$tsum" || { say "checksum mismatch for $inner in $wheel"; rm -rf "$tmp"; exit 1; }
  mv "$tmp/$inner" "$models/$target"
  rm -rf "$tmp"
  say "installed $target"
done
