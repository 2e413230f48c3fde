"""``fastbp export``: write a saved model as an ONNX file (see :mod:`fastbp.export`)."""
import numpy as np

from ._cli_common import CLIError
from .export import DEFAULT_OPSET, MIN_OPSET, to_onnx
from .io import load


def add_parser(subparsers):
    """Register ``fastbp export`` on the command line's ``subparsers``."""
    p = subparsers.add_parser(
        "export", help="write a saved model as an ONNX file",
        description="Write a model saved by fastbp (.npz) as an ONNX file that computes its "
                    "eval-mode output (what predict returns) in the model's dtype, with a "
                    "dynamic batch dimension: input 'input'; outputs 'logits' and "
                    "'probabilities' for a softmax cross-entropy model, 'output' otherwise. "
                    "Needs the onnx package (pip install \"fastbp[onnx]\").",
        epilog="Example: fastbp export model.npz model.onnx")
    p.add_argument("model", help="the saved model (.npz)")
    p.add_argument("output", help="the ONNX file to write (its folder must exist)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} or newer (default: %(default)s)")
    p.add_argument("--fold-batchnorm", action="store_true",
                   help="fold each BatchNorm that follows a Dense into its Gemm")
    p.set_defaults(func=run)
    return p


def run(args):
    """Run ``fastbp export``; return the exit status."""
    model = load(args.model)
    try:
        proto = to_onnx(model, args.output, opset=args.opset, fold_batchnorm=args.fold_batchnorm)
    except ImportError as exc:
        raise CLIError(str(exc)) from exc
    outs = ", ".join(f"'{o.name}'" for o in proto.graph.output)
    print(f"wrote {args.output}: ONNX opset {args.opset}, {np.dtype(model.dtype).name}, "
          f"{len(proto.graph.node)} nodes, input 'input' (batch, {model.n_inputs}), "
          f"output(s) {outs}")
    return 0
