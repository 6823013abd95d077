"""The serving entry of a ``--kind model`` / ``--kind register`` step: the SageMaker inference toolkit's handlers.

Shipped in the step's ``sourcedir.tar.gz`` (``SAGEMAKER_PROGRAM``), never imported by the package; stdlib-only,
Python 3.8 syntax. ``model_fn`` runs the step's cell the way the engine does (prelude, parameters from
``JP_PARAM_<NAME>``, the training step's outputs from the model directory as inputs) and serves the ``predict``
the cell binds. Requests may be ``.npy`` bytes, a pickle (what an upstream step wrote) or CSV; responses are CSV.
"""

import builtins
import io
import json
import os
import pickle
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import runtime  # noqa: E402  (the engine's step runtime, beside this file)
from entry import StepFailure, coerce, env_name, value_ref  # noqa: E402


def model_fn(model_dir):  # type: ignore[no-untyped-def]
    with open(os.path.join(HERE, "step.json")) as handle:
        spec = json.load(handle)
    types = spec.get("parameters", {})
    cell = {
        "kind": "cell",
        "step": spec["step"],
        "code": spec["code"],
        "code_line": spec.get("code_line", 1),
        "last_expression": False,
        "prelude": spec.get("prelude", []),
        "parameters": {name: coerce(name, kind, os.environ.get(env_name(name))) for name, kind in types.items()},
        "inputs": {name: value_ref(model_dir, name, up) for name, up in sorted(spec.get("inputs", {}).items())},
        "binds": [],
        "outputs": [],
        "needed": [],
        "executor": "process",
        "env": {},
        "store": tempfile.mkdtemp(prefix="jp-store-"),
    }
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    result = runtime.run_cell(cell, namespace)
    if result["status"] != "succeeded":
        raise StepFailure(result["error"] or "the model step's cell failed")
    predict = namespace.get("predict")
    if not callable(predict):
        raise StepFailure("step %r must bind a function `predict(features)` to serve" % spec["step"])
    return predict


def input_fn(body, content_type):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, bytes) else str(body).encode("utf-8")
    if data.startswith(b"\x93NUMPY"):
        import numpy

        return numpy.load(io.BytesIO(data), allow_pickle=False)
    if data.startswith(b"\x80"):  # a pickle written by an upstream step of this same pipeline
        return pickle.loads(data)
    import numpy

    return numpy.loadtxt(io.StringIO(data.decode("utf-8")), delimiter=",", ndmin=2)


def predict_fn(data, predict):  # type: ignore[no-untyped-def]
    return predict(data)


def output_fn(prediction, accept):  # type: ignore[no-untyped-def]
    import numpy

    array = numpy.asarray(prediction)
    buffer = io.StringIO()
    numpy.savetxt(buffer, array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1), delimiter=",")
    return buffer.getvalue()
