"""Export a trained LeNet to ONNX for the book's live page.

The exported model has one input, ``image`` (a batch of 28x28x1 images scaled
to [0, 1]), and three outputs: the feature maps of both convolutions after
their ReLU (``conv1``, ``conv2``) and the ten probabilities
(``probabilities``). Its weights can be stored as float16, which halves the
file; they are cast back to float32 inside the graph, so all arithmetic stays
float32 and only the weights are rounded.

onnx, onnxruntime and tf2onnx are needed here only; they are pinned in
``requirements.txt`` and imported when a function needs them.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lenet_utils.errors import LenetError
from lenet_utils.models import build_lenet

FEATURE_LAYERS = {"conv1": "conv1_relu", "conv2": "conv2_relu"}
INPUT_NAME = "image"
OUTPUT_NAMES = (*FEATURE_LAYERS, "probabilities")
FLOAT16_SUFFIX = "/float32"  # the Cast of a float16 weight back to float32


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise LenetError(
            f"Exporting to ONNX needs the package {module!r}, which is not installed; "
            "install the pinned versions with pip install -r requirements.txt."
        ) from error


def with_feature_maps(model: keras.Model) -> keras.Model:
    """The same layers and weights, with the feature maps as extra outputs.

    Parameters
    ----------
    model : keras.Model
        A modern LeNet from :func:`lenet_utils.models.build_lenet` (trained
        or not), with layers ``conv1_relu`` and ``conv2_relu``.

    Returns
    -------
    keras.Model
        Outputs, in order: the ``conv1_relu`` maps (N, 28, 28, 20), the
        ``conv2_relu`` maps (N, 14, 14, 50) and the probabilities (N, 10).

    Raises
    ------
    LenetError
        If the model lacks one of the feature layers.

    Examples
    --------
    >>> [output.shape for output in with_feature_maps(build_lenet()).outputs]
    [(None, 28, 28, 20), (None, 14, 14, 50), (None, 10)]
    """
    names = [layer.name for layer in model.layers]
    missing = [name for name in FEATURE_LAYERS.values() if name not in names]
    if missing:
        raise LenetError(f"model {model.name!r} has no layer {', '.join(missing)}; export "
                         "a modern LeNet from lenet_utils.models.build_lenet.")
    image = keras.Input(model.inputs[0].shape[1:], name=INPUT_NAME)
    features, tensor = {}, image
    for layer in model.layers:
        tensor = layer(tensor)
        features[layer.name] = tensor
    outputs = [features[name] for name in FEATURE_LAYERS.values()] + [tensor]
    return keras.Model(image, outputs, name=f"{model.name}_with_feature_maps")


def round_weights_to_float16(model: keras.Model) -> keras.Model:
    """A copy of ``model`` whose float32 weights are rounded to float16 and back.

    This is the Keras model that an export with float16 weights computes.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    keras.Model
        A new model; ``model`` is left unchanged.

    Examples
    --------
    >>> rounded = round_weights_to_float16(build_lenet())
    """
    copy = keras.models.clone_model(model)
    copy.set_weights([np.asarray(weight).astype(np.float16).astype(np.float32)
                      for weight in model.get_weights()])
    return copy


def _onnx_layout(weight: np.ndarray) -> np.ndarray:
    # Keras stores a convolution kernel as (height, width, in, out); ONNX's Conv
    # wants (out, in, height, width). Dense kernels and biases keep their layout.
    return weight.transpose(3, 2, 0, 1) if weight.ndim == 4 else weight


def _keras_layout(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight


def _rename_value(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output, *graph.initializer]:
        if value.name == old:
            value.name = new


def name_weights(onnx_model: Any, model: keras.Model) -> None:
    """Give each weight in the ONNX graph its Keras name, such as ``conv1/kernel``.

    tf2onnx names weights after TensorFlow's variable reads; matching them to
    the Keras weights by value gives them stable names that
    :func:`weights_from_onnx` reads back.

    Parameters
    ----------
    onnx_model : onnx.ModelProto
        The export of ``model``; changed in place.
    model : keras.Model
        The model that was exported, with its float32 weights.

    Raises
    ------
    LenetError
        If a Keras weight is not found unchanged in the graph (the converter
        folded it into another constant).

    Examples
    --------
    >>> name_weights(onnx_model, model)  # doctest: +SKIP
    """
    numpy_helper = _require("onnx.numpy_helper")
    arrays = {init.name: numpy_helper.to_array(init) for init in onnx_model.graph.initializer}
    for layer in model.layers:
        for variable in layer.weights:
            wanted = _onnx_layout(np.asarray(variable))
            found = [name for name, array in arrays.items()
                     if array.shape == wanted.shape and np.array_equal(array, wanted)]
            if not found:
                raise LenetError(f"weight {layer.name}/{variable.name} is not a constant of "
                                 "the exported graph; the converter changed it, so the "
                                 "export cannot be checked against Keras.")
            _rename_value(onnx_model.graph, found[0], f"{layer.name}/{variable.name}")
            del arrays[found[0]]


def store_weights_as_float16(onnx_model: Any) -> None:
    """Store every float32 weight as float16, cast back to float32 in the graph.

    The file shrinks by half; the arithmetic stays float32, so the result
    equals float32 inference with weights rounded to float16 (see
    :func:`round_weights_to_float16`).

    Parameters
    ----------
    onnx_model : onnx.ModelProto
        Changed in place.

    Examples
    --------
    >>> store_weights_as_float16(onnx_model)  # doctest: +SKIP
    """
    onnx = _require("onnx")
    numpy_helper = _require("onnx.numpy_helper")
    graph = onnx_model.graph
    casts = []
    for index, initializer in enumerate(graph.initializer):
        if initializer.data_type != onnx.TensorProto.FLOAT:
            continue
        name = initializer.name
        _rename_value(graph, name, name + FLOAT16_SUFFIX)
        half = numpy_helper.to_array(initializer).astype(np.float16)
        graph.initializer[index].CopyFrom(numpy_helper.from_array(half, name))
        casts.append(onnx.helper.make_node("Cast", [name], [name + FLOAT16_SUFFIX],
                                           to=onnx.TensorProto.FLOAT,
                                           name=f"{name}/cast"))
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)


def _rename_inputs_and_outputs(onnx_model: Any) -> None:
    graph = onnx_model.graph
    _rename_value(graph, graph.input[0].name, INPUT_NAME)
    for output, name in zip(list(graph.output), OUTPUT_NAMES, strict=True):
        _rename_value(graph, output.name, name)


def export_onnx(model: keras.Model, path: str | os.PathLike, *,
                float16_weights: bool = True) -> Path:
    """Export LeNet with its feature maps to an ONNX file.

    Parameters
    ----------
    model : keras.Model
        A modern LeNet (see :func:`with_feature_maps`).
    path : str or path-like
        The ``.onnx`` file to write; its folder must exist. It is written
        whole or not at all.
    float16_weights : bool
        Store the weights as float16 (half the size); the computation stays
        float32.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    LenetError
        If the folder of ``path`` does not exist, the export packages are
        missing, or a weight cannot be found in the converted graph.

    Examples
    --------
    >>> export_onnx(model, "book/models/lenet.onnx")  # doctest: +SKIP
    """
    onnx = _require("onnx")
    _require("tf2onnx")
    path = Path(path)
    if not path.parent.is_dir():
        raise LenetError(f"path={str(path)!r}: the folder {str(path.parent)!r} does not "
                         "exist; create it first.")
    features = with_feature_maps(model)
    features(np.zeros((1, *features.inputs[0].shape[1:]), np.float32))  # export needs a call
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as staging:
        converted = Path(staging) / "converted.onnx"
        with warnings.catch_warnings():
            # Keras's patch for tf2onnx probes np.object, which NumPy 2 warns about.
            warnings.filterwarnings("ignore", message=".*np.object", category=FutureWarning)
            features.export(converted, format="onnx", verbose=False)
        onnx_model = onnx.load(converted)
        _rename_inputs_and_outputs(onnx_model)
        name_weights(onnx_model, model)
        if float16_weights:
            store_weights_as_float16(onnx_model)
        onnx.checker.check_model(onnx_model, full_check=True)
        onnx.save(onnx_model, converted)
        converted.replace(path)
    return path


def weights_from_onnx(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The weights stored in an exported file, in Keras's layout and as float32.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`export_onnx`.

    Returns
    -------
    dict of str to ndarray
        Keyed ``"conv1/kernel"``, ``"conv1/bias"``, ... as Keras names them.

    Raises
    ------
    LenetError
        If the file does not exist.

    Examples
    --------
    >>> weights_from_onnx("book/models/lenet.onnx")["conv1/kernel"].shape  # doctest: +SKIP
    (5, 5, 1, 20)
    """
    onnx = _require("onnx")
    numpy_helper = _require("onnx.numpy_helper")
    if not Path(path).is_file():
        raise LenetError(f"path={str(path)!r} does not exist; export a model first "
                         "(make live-model).")
    graph = onnx.load(path).graph
    return {init.name: _keras_layout(numpy_helper.to_array(init).astype(np.float32))
            for init in graph.initializer if "/" in init.name}


def lenet_from_onnx(path: str | os.PathLike) -> keras.Model:
    """Rebuild the exported LeNet in Keras, with the weights stored in the file.

    With float16 weights this is the Keras model the file computes, which
    lets a test compare the two implementations on the same weights.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`export_onnx` from :func:`build_lenet`'s model.

    Returns
    -------
    keras.Model

    Raises
    ------
    LenetError
        If the file does not exist or lacks one of LeNet's weights.

    Examples
    --------
    >>> lenet_from_onnx("book/models/lenet.onnx").count_params()  # doctest: +SKIP
    1256080
    """
    stored = weights_from_onnx(path)
    model = build_lenet()
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.name}"
            if key not in stored:
                raise LenetError(f"{path}: no weight {key!r}; was it written by export_onnx "
                                 "from build_lenet's model?")
            variable.assign(stored[key])
    return model


def run_onnx(path: str | os.PathLike, images: np.ndarray,
             batch_size: int = 500) -> dict[str, np.ndarray]:
    """Run an exported file with onnxruntime on a batch of images.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`export_onnx`.
    images : ndarray of shape (N, 28, 28, 1), float32 in [0, 1]
    batch_size : int
        Images per call to onnxruntime.

    Returns
    -------
    dict of str to ndarray
        One array per output name (``conv1``, ``conv2``, ``probabilities``).

    Raises
    ------
    LenetError
        If the file does not exist.

    Examples
    --------
    >>> run_onnx("book/models/lenet.onnx", x_test[:10])["probabilities"].shape
    ... # doctest: +SKIP
    (10, 10)
    """
    onnxruntime = _require("onnxruntime")
    if not Path(path).is_file():
        raise LenetError(f"path={str(path)!r} does not exist; export a model first "
                         "(make live-model).")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    batches = [session.run(list(OUTPUT_NAMES), {INPUT_NAME: images[start:start + batch_size]})
               for start in range(0, len(images), batch_size)]
    return {name: np.concatenate([batch[index] for batch in batches])
            for index, name in enumerate(OUTPUT_NAMES)}
