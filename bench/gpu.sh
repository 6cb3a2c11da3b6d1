#!/usr/bin/env bash
# mammo on one NVIDIA GPU beside PyTorch + timm on the same GPU, for a machine that has PyTorch
# and an NVIDIA driver but no Rust toolchain and no network. Finishes in about 6 minutes.
#
#   bench/gpu.sh [MAMMO_BINARY]        (default: bench/gpu-kit/mammo)
#
# Prepare the kit on a build machine first (bench/gpu-prepare.sh): a stripped release binary
# built with the vulkan feature (and cuda, where it can be built) and a copy of the Vulkan
# loader, libvulkan.so.1, for machines whose image lacks it. Nothing here downloads anything.
#
# Prints, per model and size: forward and train-step images/s of mammo on vulkan (and cuda if
# the binary has it) and of PyTorch f32 and bf16 autocast; the GAN's kimg/s at 16 and 32 px;
# and the estimated device-hours of Algorithm 1 on RSNA from the measured rates.
set -uo pipefail
cd "$(dirname "$0")/.."
kit=bench/gpu-kit
bin="${1:-$kit/mammo}"
[ -x "$bin" ] || { echo "no mammo binary at $bin (run bench/gpu-prepare.sh on a build machine)" >&2; exit 2; }

# The Vulkan loader: the system's, else the kit's copy.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  if [ -e "$kit/lib/libvulkan.so.1" ]; then
    export LD_LIBRARY_PATH="$PWD/$kit/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "Vulkan loader: $kit/lib/libvulkan.so.1 (none installed)"
  else
    echo "no Vulkan loader installed and none in $kit/lib: the vulkan rows will be missing" >&2
  fi
fi
# The NVIDIA Vulkan driver manifest: containers often have the driver library but not its ICD
# file. Point the loader at the driver that is there.
if ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  glx=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')
  if [ -n "$glx" ]; then
    icd=$(mktemp -d)/nvidia_icd.json
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" >"$icd"
    export VK_ICD_FILENAMES="$icd"
    echo "NVIDIA ICD manifest written for $glx"
  fi
fi

py=$(command -v python3 || command -v python)
"$bin" --version
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
"$py" -c 'import torch, timm; print("torch", torch.__version__, "timm", timm.__version__, "cuda", torch.version.cuda)' || py=""

devices=(vulkan)
"$bin" bench models --help >/dev/null 2>&1 || { echo "this mammo has no 'bench models'" >&2; exit 2; }
if "$bin" bench models resnet18 --device cuda --size 32 --batch 1 --warmup 0 --iters 1 >/dev/null 2>&1; then
  devices+=(cuda)
fi

status=0
for dev in "${devices[@]}"; do
  echo
  echo "## classifiers, mammo on $dev"
  # 4 model/size pairs x (mammo + PyTorch f32 + bf16): about 3 minutes on an H100-class GPU.
  timeout 240 "$bin" bench models resnet18 efficientnet_b0 --size 256 --size 512 --batch 64 \
    --warmup 3 --iters 10 --device "$dev" ${py:+--python "$py" --python-device cuda} || status=1
  py=""  # PyTorch's rows are the same for every mammo device: measure them once
  echo
  echo "## GAN, mammo on $dev"
  timeout 90 "$bin" bench gan --res 16 --res 32 --batch 64 --warmup-kimg 0.5 --kimg 2 --device "$dev" || status=1
done
exit $status
