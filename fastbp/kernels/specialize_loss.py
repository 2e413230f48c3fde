"""The loss, right-answer count and L2 term of the generated mini-batch functions
(:mod:`fastbp.kernels.specialize_batch`): :mod:`fastbp.kernels.losses` and
:func:`fastbp.kernels.network.count_correct` / ``add_l2`` emitted for one loss,
term for term and in the same order, over the b rows of ``z`` (the last row's
output) with the gradient in ``g`` and probabilities in ``pr``.
"""
from .. import plan as P


def emit_loss(emit, ind, loss_code, k, weighted=False):
    """:func:`fastbp.kernels.network.loss_and_grad` of the b rows of ``z`` (the last
    row's output) against targets ``yf`` / ``yi`` from row y0: ``loss``, gradient in ``g``;
    weighted: ``loss_and_grad_weighted`` with the weights ``swb`` (their sum ``bw``)."""
    if weighted:
        _emit_loss_weighted(emit, ind, loss_code, k)
        return
    emit(ind, "lacc = 0.0  # float64")
    if loss_code == P.MSE:
        emit(ind, f"Dm = 1 if sum_red else b * {k}")
        emit(ind, "coef = T(2.0 * f / Dm)")
        emit(ind, "for i in range(b):")
        emit(ind + 1, f"for c in range({k}):")
        emit(ind + 2, "dv = z[i, c] - yf[y0 + i, c]")
        emit(ind + 2, "g[i, c] = coef * dv")
        emit(ind + 2, "lacc += dv * dv")
        emit(ind, "loss = f * lacc / Dm")
    elif loss_code == P.BCE:
        emit(ind, f"Nb = b * {k}")
        emit(ind, "Nf = T(Nb)")
        emit(ind, "for i in range(b):")
        emit(ind + 1, f"for c in range({k}):")
        emit(ind + 2, "tv = yf[y0 + i, c]")
        emit(ind + 2, "term, sig = _bce_one(z[i, c], tv, T(1), T(0))")
        emit(ind + 2, "lacc += term")
        emit(ind + 2, "g[i, c] = (sig - tv) / Nf")
        emit(ind, "loss = lacc / Nb")
    else:       # softmax cross-entropy: _softmax_row, then the gradient
        emit(ind, "nf = T(b)")
        emit(ind, "for i in range(b):")
        _emit_softmax_row(emit, ind + 1, k)
        emit(ind + 1, "lab = yi[y0 + i]")
        emit(ind + 1, "lacc += (m + np.log(s)) - z[i, lab]")
        emit(ind + 1, f"for c in range({k}):")
        emit(ind + 2, "gv = pr[i, c]")
        emit(ind + 2, "if c == lab:")
        emit(ind + 3, "gv = gv - T(1)")
        emit(ind + 2, "g[i, c] = gv / nf")
        emit(ind, "loss = lacc / b")


def _emit_loss_weighted(emit, ind, loss_code, k):
    """The weighted losses of :mod:`fastbp.kernels.losses`, term for term (a batch
    without weight has no loss and no gradient)."""
    mse = loss_code == P.MSE
    if loss_code == P.SOFTMAX_CE:      # each loss's divisor, as its kernel forms it
        emit(ind, "Dw = bw")
    elif mse:
        emit(ind, f"Dw = 1.0 if sum_red else {k} * bw")
    else:
        emit(ind, f"Dw = {k} * bw")
    emit(ind, "if Dw == 0.0:")
    emit(ind + 1, "for i in range(b):")
    emit(ind + 2, f"for c in range({k}):")
    emit(ind + 3, "g[i, c] = T(0)")
    emit(ind + 1, "loss = 0.0")
    emit(ind, "else:")
    ind += 1
    emit(ind, "lacc = 0.0  # float64")
    emit(ind, "for i in range(b):")
    if loss_code == P.SOFTMAX_CE:
        _emit_softmax_row(emit, ind + 1, k)
        emit(ind + 1, "lab = yi[y0 + i]")
        emit(ind + 1, "lacc += swb[i] * ((m + np.log(s)) - z[i, lab])")
        emit(ind + 1, "coef = T(swb[i] / Dw)")
        emit(ind + 1, f"for c in range({k}):")
        emit(ind + 2, "gv = pr[i, c]")
        emit(ind + 2, "if c == lab:")
        emit(ind + 3, "gv = gv - T(1)")
        emit(ind + 2, "g[i, c] = gv * coef")
        emit(ind, "loss = lacc / Dw")
        return
    emit(ind + 1, "racc = 0.0")
    emit(ind + 1, "coef = T((2.0 * f / Dw) * swb[i])" if mse else "coef = T(swb[i] / Dw)")
    emit(ind + 1, f"for c in range({k}):")
    if mse:
        emit(ind + 2, "dv = z[i, c] - yf[y0 + i, c]")
        emit(ind + 2, "g[i, c] = coef * dv")
        emit(ind + 2, "racc += dv * dv")
    else:
        emit(ind + 2, "tv = yf[y0 + i, c]")
        emit(ind + 2, "term, sig = _bce_one(z[i, c], tv, T(1), T(0))")
        emit(ind + 2, "racc += term")
        emit(ind + 2, "g[i, c] = coef * (sig - tv)")
    emit(ind + 1, "lacc += swb[i] * racc")
    emit(ind, f"loss = {'f * ' if mse else ''}lacc / Dw")


def _emit_softmax_row(emit, ind, k):
    """``_softmax_row`` of row i: max ``m``, sum ``s``, probabilities in ``pr``."""
    emit(ind, "m = z[i, 0]")
    emit(ind, f"for c in range(1, {k}):")
    emit(ind + 1, "if z[i, c] > m:")
    emit(ind + 2, "m = z[i, c]")
    emit(ind, "s = T(0)")
    emit(ind, f"for c in range({k}):")
    emit(ind + 1, "ex = np.exp(z[i, c] - m)")
    emit(ind + 1, "pr[i, c] = ex")
    emit(ind + 1, "s += ex")
    emit(ind, f"for c in range({k}):")
    emit(ind + 1, "pr[i, c] = pr[i, c] / s")


def emit_count(emit, ind, loss_code, k, into, yf="yf", yi="yi", y0="y0"):
    """:func:`fastbp.kernels.network.count_correct` of the b rows of ``z`` against targets
    ``yf`` / ``yi`` from row ``y0``, added to ``into``."""
    emit(ind, "for i in range(b):")
    if k == 1:
        emit(ind + 1, f"if (z[i, 0] > threshold) == ({yf}[{y0} + i, 0] > 0.5):")
        emit(ind + 2, f"{into} += 1")
        return
    emit(ind + 1, "best = 0")
    emit(ind + 1, f"for c in range(1, {k}):")
    emit(ind + 2, "if z[i, c] > z[i, best]:")
    emit(ind + 3, "best = c")
    if loss_code == P.SOFTMAX_CE:
        emit(ind + 1, f"label = {yi}[{y0} + i]")
    else:
        emit(ind + 1, "label = 0")
        emit(ind + 1, f"for c in range(1, {k}):")
        emit(ind + 2, f"if {yf}[{y0} + i, c] > {yf}[{y0} + i, label]:")
        emit(ind + 3, "label = c")
    emit(ind + 1, "if best == label:")
    emit(ind + 2, f"{into} += 1")


def emit_l2(emit, ind, plan):
    """:func:`fastbp.kernels.network.add_l2` (Dense weights, in row order), scaled by the
    batch's weight, as ``train_epochs`` adds it."""
    emit(ind, "if l2 != 0.0 and bw > 0.0:")
    emit(ind + 1, "cl2 = T(l2 / bw)")
    emit(ind + 1, "tl2 = 0.0")
    for r in range(plan.shape[0]):
        if int(plan[r, P.KIND]) == P.DENSE:
            lo = int(plan[r, P.P_A])
            emit(ind + 1, f"for j in range({lo}, {lo + int(plan[r, P.N_IN] * plan[r, P.N_OUT])}):")
            emit(ind + 2, "w = params[j]")
            emit(ind + 2, "grads[j] += cl2 * w")
            emit(ind + 2, "tl2 += w * w")
    emit(ind + 1, "loss += 0.5 * l2 / bw * tl2")
