"""Load what the image promises: OpenCV and the CUDA runtime from their wheels.

Without a GPU (or without the NVIDIA container toolkit) the runtime still
loads and reports its version; only the device query fails, with CUDA's reason.
"""

import ctypes
import glob
import sysconfig

import cv2

site = sysconfig.get_paths()["purelib"]
libcudart = glob.glob(f"{site}/nvidia/cuda_runtime/lib/libcudart.so.*")[0]
cudart = ctypes.CDLL(libcudart)
cudart.cudaGetErrorString.restype = ctypes.c_char_p

version = ctypes.c_int()
assert cudart.cudaRuntimeGetVersion(ctypes.byref(version)) == 0
major, minor = version.value // 1000, version.value % 1000 // 10

count = ctypes.c_int()
err = cudart.cudaGetDeviceCount(ctypes.byref(count))
gpus = str(count.value) if err == 0 else f"none ({cudart.cudaGetErrorString(err).decode()})"

print(f"opencv {cv2.__version__}; CUDA runtime {major}.{minor} ({libcudart}); GPUs: {gpus}")
