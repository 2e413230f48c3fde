"""A :class:`fastbp.trace.Trace` as a worked example, the way a teacher writes one.

Every value is written as ``name = formula = numbers substituted = result``, in
the order forward -> loss -> backward -> update, then the same forward pass
again with the new weights. The record is cut into *frames* (one per layer
and stage, see :func:`frames`): the text prints them one after another and
the web page (:mod:`fastbp._trace_html`) steps through them.

The names of the values (``x1``, ``z1[j]``, ``W1[k,j]``, ...) are those of
:class:`fastbp._trace_notation.Names`.

Past ``limit`` values in a layer, its frame summarises (shape, norm, range,
largest entries) and says so.
"""
from . import _trace_frames as F
from ._trace_notation import _ASCII, Names, _with_shapes, num


# --------------------------------------------------------------------------- the frames
def frames(trace, limit=64, names=None):
    """The record cut into frames: ``{"stage", "title", "rule", "lines", "items"}``.

    ``lines`` is the text of the frame; ``items`` ties each drawn value to its
    formula: ``{"k": key, "r": sample or -1, "v": value, "f": formula}``, with
    keys ``v:ARRAY:j`` (a unit's value), ``g:ARRAY:j`` (its gradient),
    ``w:/g:/n:PARAM:k,j`` (a weight, its gradient, its new value; ``PARAM:j``
    for a bias) and ``v:L``.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    nm = Names(trace, _with_shapes(names, trace))
    out = [F.start(trace, nm, limit)]
    out += [F.forward(s, nm, limit) for s in trace.stage("forward")]
    out.append(F.loss(trace.stage("loss")[0], nm, limit))
    out += [F.backward(s, nm, limit, trace) for s in trace.stage("backward")]
    out += F.updates(trace, nm, limit)
    out.append(F.check(trace, nm))
    for fr in out:
        fr.pop("nm", None)
    return out, nm


def format_text(trace, limit=64, names=None, ascii=False):
    """The whole step as text: a header, then every frame under its stage's heading.

    ``ascii=True`` spells the Greek letters and symbols out (for terminals that
    cannot show them).
    """
    frs, nm = frames(trace, limit, names)
    n = trace.x.shape[0]
    lines = [f"One step of backpropagation: plain SGD, lr = {num(trace.lr)}, "
             f"{n} sample{'s' if n > 1 else ''}, {trace.dtype}, NumPy reference",
             "network: x (" + str(trace.x.shape[1]) + ") -> " + " -> ".join(trace.layers)
             + f"; loss {trace.loss_repr}"]
    heading = {"start": "Inputs and weights", "forward": "1. Forward pass", "loss": "2. Loss",
               "backward": "3. Backward pass (chain rule, last layer first)",
               "update": f"4. Update: w ← w - lr·d{nm.L}/dw", "check": "Check"}
    current = None
    for fr in frs:
        if fr["stage"] != current and fr["stage"] in heading and fr["stage"] != "check":
            current = fr["stage"]
            lines += ["", f"== {heading[current]} =="]
        lines.append("")
        lines.append(fr["title"] + (f"    {fr['rule']}" if fr["rule"] else ""))
        lines += ["  " + part for line in fr["lines"] for part in line.split("\n")]
    text = "\n".join(lines)
    return text.translate(_ASCII) if ascii else text
