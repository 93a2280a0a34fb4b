"""Plain float32 ONNX from OpenCV Zoo's int8 block-quantised files, for runtimes other than OpenCV's DNN.

The `*_int8bq.onnx` files keep each weight as int8 blocks behind a
DequantizeLinear (opset 21, `block_size`) and a Reshape, and still declare
the float weights as graph inputs that no node reads: OpenCV fills them in
itself, onnxruntime asks for them, OpenVINO cannot read blocked dequantising.
Folding each of those into a float32 constant (what OpenCV computes when it
loads the file, so the outputs are the same) gives a plain ONNX file every
runtime runs. The first dimension of the input and output is made free, so
the faces of a frame go through in one call.

The result is derived deterministically: its sha256 is in the catalogue, and
a copy is kept in facerec's cache folder (modelfiles.cache_dir, writable even
when the models folder is not) so it is derived only once, and checked by
modelfiles.file_digests like the downloaded files (hashed again only when it
changed).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from .catalogue import ModelFile
from .errors import FacerecError
from .fileio import atomic_writer
from .modelfiles import file_digests

BATCH_DIMENSION = "batch"


def fold_block_quantised(source: Path) -> bytes:
    """The file at `source` with its constant DequantizeLinear/Reshape weights folded to float32 (serialised ONNX).

    Needs the `onnx` package (ImportError otherwise).
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in constants for name in node.input):
            attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
            quantised, scales, zero_points = (constants[name] for name in node.input)
            folded[node.output[0]] = _dequantise(quantised, scales, zero_points,
                                                 axis=attributes.get("axis", 1), block=attributes.get("block_size", 0))
        elif node.op_type == "Reshape" and node.input[0] in folded and node.input[1] in constants:
            folded[node.output[0]] = folded[node.input[0]].reshape(constants[node.input[1]])
        else:
            nodes.append(node)
    read = {name for node in nodes for name in node.input}
    initializers = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in folded.items() if name in read]
    initializers += [tensor for tensor in graph.initializer if tensor.name in read]
    inputs = [value for value in graph.input if value.name in read and value.name not in constants]
    for value in (*inputs, *graph.output):  # any number of faces a call
        dimension = value.type.tensor_type.shape.dim[0]
        dimension.ClearField("dim_value")
        dimension.dim_param = BATCH_DIMENSION
    plain = helper.make_graph(nodes, graph.name, inputs, list(graph.output), initializers)
    result = helper.make_model(plain, opset_imports=model.opset_import, ir_version=model.ir_version,
                               producer_name="facerec.plainonnx")
    onnx.checker.check_model(result)
    return result.SerializeToString()


def _dequantise(quantised, scales, zero_points, axis: int, block: int):
    """ONNX DequantizeLinear: (x - zero point) * scale, per tensor, per axis, or per block of `block` along `axis`."""
    import numpy as np

    values = quantised.astype(np.float32)
    scales, zero_points = np.asarray(scales, np.float32), np.asarray(zero_points).astype(np.float32)
    if scales.ndim == 0:
        return (values - zero_points) * scales
    axis %= values.ndim
    if block:  # each scale covers `block` consecutive entries along the axis
        scales, zero_points = (np.repeat(array, block, axis=axis).take(range(values.shape[axis]), axis=axis)
                               for array in (scales, zero_points))
    else:  # one scale per slice along the axis
        shape = [1] * values.ndim
        shape[axis] = -1
        scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
    return (values - zero_points) * scales


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plain_model(source: Path, derived: ModelFile, cache_folder: Path | None) -> bytes:
    """The plain float32 model derived from `source` (the catalogued `derived` file), from the cache when it is there.

    The copy in `cache_folder` is used when its sha256 (remembered while the file is unchanged, see
    modelfiles.file_digests) is the catalogue's; else the model is derived again and
    saved there (when the folder can be written). FacerecError when it cannot be derived (no `onnx` package)
    or derives to other bytes than the catalogue's (another version of the conversion: not the file checked).
    """
    cached = None if cache_folder is None else cache_folder / derived.filename
    if cached is not None and cached.is_file() and file_digests(cached)["sha256"] == derived.sha256:
        return cached.read_bytes()
    try:
        data = fold_block_quantised(source)
    except ImportError:
        raise FacerecError(f"{derived.filename} is not in {cache_folder} and deriving it from {source.name} "
                           "needs the onnx package: pip install -r requirements.txt") from None
    if _sha256(data) != derived.sha256:
        raise FacerecError(f"{source.name} derives to a float32 model whose sha256 is {_sha256(data)}, "
                           f"not the {derived.sha256} checked (another onnx version?)")
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(cached) as handle:
                handle.write(data)
        except OSError as error:  # a read-only folder: derive again next time
            print(f"warning: cannot keep {cached}: {os.strerror(error.errno or 0) or error}", file=sys.stderr)
    return data
