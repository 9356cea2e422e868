"""What the PyTorch sides of the cross-checks (tests/torch_interop.py, tests/torch_transformer.py)
share: the safetensors format, read and written with the standard library and numpy, so no
extra package is needed.

The scripts import this module from their own directory (see their first lines).
"""
import json
import struct

import numpy as np

DTYPES = {np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
NUMPY_DTYPES = {"F64": np.float64, "F32": np.float32, "I64": np.int64}


def write_safetensors(path, tensors):
    """Writes a dict name -> numpy array (float64, float32 or int64) as a safetensors file."""
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        blob = array.tobytes()
        header[name] = {"dtype": DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    """Reads a safetensors file: (dict name -> numpy array, the "__metadata__" dict or {})."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + begin:8 + n + end],
                                  dtype=NUMPY_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out, metadata
