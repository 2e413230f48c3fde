"""ONNX export: ``model.to_onnx(path)`` and ``fastbp export model.npz model.onnx`` (the
command is in :mod:`fastbp._cli_export`).

The exported graph computes what ``model.predict`` computes (eval mode), in
the model's dtype (float32 or float64), for any number of rows:

- input ``"input"``, shape ``(batch, n_inputs)``, ``batch`` a dynamic dimension;
- ``Dense`` becomes ``Gemm`` (``x @ W + b``; W stored (in, out), no transpose);
- ``ReLU``, ``Sigmoid``, ``Tanh`` become the operators of the same names;
  ``Identity`` and ``Dropout`` (the identity in eval mode) vanish;
- ``BatchNorm`` becomes ``BatchNormalization`` over the running statistics,
  or, with ``fold_batchnorm=True``, is folded into the ``Gemm`` before it
  (``W * s`` and ``(b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``)
  wherever a Dense precedes it with only Identity or Dropout between them; a
  BatchNorm elsewhere (first layer, after an activation) stays a node.
  ONNX holds ``epsilon`` as a 32-bit float, which would change a float64
  model's numbers: instead the stored variance is ``running_var + eps``
  (computed in the model's dtype, exactly as fastbp computes it) and
  ``epsilon`` is 0;
- the outputs follow the loss: ``"logits"`` (what ``predict`` returns) and
  ``"probabilities"`` (a ``Softmax``, what ``predict_proba`` returns) for
  ``SoftmaxCrossEntropy``; ``"output"`` (what ``predict`` returns: for
  ``BinaryCrossEntropy`` the final sigmoid) otherwise.

The graph is built with the ``onnx`` package's helpers, with the lowest IR
version its opset allows (so older runtimes read it), and checked with
``onnx.checker.check_model(full_check=True)`` before anything is written. The
file is written atomically (:func:`fastbp.io.atomic_write`): an error leaves
no file behind, and an existing file is replaced only by a complete new one.
``onnx`` is imported only when an export runs (``pip install "fastbp[onnx]"``).
"""
import numbers

import numpy as np

from ._convert import read_layers
from ._version import __version__
from .io import atomic_write, check_path
from .losses import SoftmaxCrossEntropy

DEFAULT_OPSET = 13      # conservative: every ONNX runtime of the last years reads it
MIN_OPSET = 13          # Softmax takes its per-row semantics from opset 13 on
INPUT, OUTPUT, LOGITS, PROBABILITIES = "input", "output", "logits", "probabilities"
_ACTIVATION_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('ONNX export needs the onnx package: pip install "fastbp[onnx]" '
                          '(or pip install onnx)') from exc
    return onnx


def _check_opset(opset, onnx):
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral):
        raise TypeError(f"opset must be an integer, got {type(opset).__name__} {opset!r}")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"unsupported opset {opset}: fastbp exports opsets {MIN_OPSET} to "
                         f"{newest} (the newest the installed onnx {onnx.__version__} knows); "
                         f"the default is {DEFAULT_OPSET}")
    return int(opset)


def _fold(dense, bn):
    """``dense`` with the eval-mode BatchNorm ``bn`` after it folded in (computed in float64)."""
    dtype = dense["W"].dtype
    W, gamma, beta, mean, var = (a.astype(np.float64) for a in (
        dense["W"], bn["gamma"], bn["beta"], bn["running_mean"], bn["running_var"]))
    b = np.zeros(W.shape[1]) if dense["b"] is None else dense["b"].astype(np.float64)
    s = gamma / np.sqrt(var + bn["eps"])            # (out,)
    return {"kind": "dense", "index": dense["index"], "folded": bn["index"],
            "W": (W * s).astype(dtype), "b": ((b - mean) * s + beta).astype(dtype)}


def eval_steps(specs, fold_batchnorm=False):
    """The eval-mode computation of :func:`fastbp.interop.read_layers`'s ``specs``.

    Dropout and Identity vanish; with ``fold_batchnorm`` a BatchNorm that
    follows a Dense (only Identity or Dropout between) is folded into it.
    """
    steps = []
    for s in specs:
        if s["kind"] == "dropout" or (s["kind"] == "activation" and s["name"] == "identity"):
            continue
        if s["kind"] == "batchnorm" and fold_batchnorm and steps and steps[-1]["kind"] == "dense":
            steps[-1] = _fold(steps[-1], s)
            continue
        steps.append(s)
    return steps


def _node(helper, numpy_helper, step, x, y, inits):
    """The ONNX node computing ``step`` from tensor ``x`` into ``y``; adds its initializers."""
    name = f"layers.{step['index']}"
    if step["kind"] == "dense":
        if "folded" in step:
            name += f"+layers.{step['folded']}"
        arrays = [("W", step["W"])] + ([("b", step["b"])] if step["b"] is not None else [])
        op, attrs = "Gemm", {}
    elif step["kind"] == "activation":
        arrays, op, attrs = [], _ACTIVATION_OPS[step["name"]], {}
    else:
        var = step["running_var"] + step["running_var"].dtype.type(step["eps"])
        arrays = [("gamma", step["gamma"]), ("beta", step["beta"]),
                  ("running_mean", step["running_mean"]), ("running_var_plus_eps", var)]
        op, attrs = "BatchNormalization", {"epsilon": 0.0}
    inputs = [x]
    for suffix, arr in arrays:
        inputs.append(f"{name}.{suffix}")
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), inputs[-1]))
    return helper.make_node(op, inputs, [y], name=f"{name}.{op}", **attrs)


def build_onnx(model, opset=DEFAULT_OPSET, fold_batchnorm=False):
    """The ONNX ``ModelProto`` of ``model`` (checked, not written); see :func:`to_onnx`."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper
    opset = _check_opset(opset, onnx)
    if not isinstance(fold_batchnorm, (bool, np.bool_)):
        raise TypeError(f"fold_batchnorm must be True or False, got {fold_batchnorm!r}")
    specs = read_layers(model)
    dtype = np.dtype(model.dtype)
    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[dtype.name]
    n_out = n_in = model.n_inputs
    for s in specs:
        n_out = s["W"].shape[1] if s["kind"] == "dense" else n_out
    softmax = isinstance(model.loss, SoftmaxCrossEntropy)
    steps = eval_steps(specs, bool(fold_batchnorm))
    nodes, inits, x = [], [], INPUT
    for k, step in enumerate(steps):
        y = (LOGITS if softmax else OUTPUT) if k == len(steps) - 1 else f"h{k + 1}"
        nodes.append(_node(helper, numpy_helper, step, x, y, inits))
        x = y
    outs = [LOGITS, PROBABILITIES] if softmax else [OUTPUT]
    if softmax:
        nodes.append(helper.make_node("Softmax", [LOGITS], [PROBABILITIES], axis=1,
                                      name="probabilities.Softmax"))
    graph = helper.make_graph(
        nodes, "fastbp", [helper.make_tensor_value_info(INPUT, elem, ["batch", n_in])],
        [helper.make_tensor_value_info(o, elem, ["batch", n_out]) for o in outs],
        initializer=inits, doc_string=repr(model))
    imports = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=imports, producer_name="fastbp",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(imports))
    helper.set_model_props(proto, {"fastbp.loss": repr(model.loss), "fastbp.dtype": dtype.name})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model, path=None, opset=DEFAULT_OPSET, fold_batchnorm=False):
    """Export ``model`` (eval mode) to ONNX; write it to ``path`` if one is given.

    Parameters
    ----------
    model : fastbp.Sequential
    path : str or os.PathLike, optional
        The file to write, in a folder that exists. None: only return the model.
    opset : int, default 13
        The ONNX operator set, from 13 (the default, chosen to be conservative:
        it came with ONNX 1.8 in 2020 and ONNX Runtime reads it from 1.6 on) to
        the newest the installed ``onnx`` package knows.
    fold_batchnorm : bool, default False
        Fold each BatchNorm that follows a Dense into that Dense's ``Gemm``
        (fewer nodes; the same function up to rounding).

    Returns
    -------
    onnx.ModelProto
        Input ``"input"`` (batch, n_inputs); outputs ``"logits"`` and
        ``"probabilities"`` with ``SoftmaxCrossEntropy``, else ``"output"``; the
        model's dtype throughout (see :mod:`fastbp.export`).

    Raises
    ------
    ImportError
        The ``onnx`` package is not installed.
    TypeError, ValueError
        A bad ``opset`` or ``fold_batchnorm``, or a layer whose parameters have
        the wrong shape or are not finite.
    FileNotFoundError
        ``path``'s folder does not exist.

    Nothing is written unless the whole export succeeds.
    """
    if path is not None:
        path = check_path(path, "path")
    proto = build_onnx(model, opset, fold_batchnorm)
    if path is not None:
        data = proto.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return proto
