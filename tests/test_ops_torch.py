"""PyTorch (CPU, float64) as an independent oracle for every op, on both backends:
forward values and gradients agree to 1e-10."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import TORCH_RTOL, assert_close  # noqa: E402
from fastbp._config import IDENTITY, RELU, SIGMOID, TANH  # noqa: E402

F64 = np.float64


def T(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def np_(t):
    return t.detach().numpy()


def close(actual, desired, what, scale=0.0):
    assert_close(actual, desired, TORCH_RTOL, scale, what)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 3, 2), (7, 5, 4), (40, 33, 130)])
def test_dense_vs_linear(ops, rng, bias, shape):
    n, i, o = shape
    x, W = rng.standard_normal((n, i)), rng.standard_normal((i, o))
    b = rng.standard_normal(o) if bias else np.zeros(0)
    R = rng.standard_normal((n, o))
    lin = torch.nn.Linear(i, o, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(T(W.T))  # torch stores (out, in)
        if bias:
            lin.bias.copy_(T(b))
    xt = T(x, grad=True)
    yt = lin(xt)
    yt.backward(T(R))

    out = np.empty((n, o))
    ops.dense_forward(x, W, b, out)
    s = np.abs(x) @ np.abs(W) + (np.abs(b) if bias else 0)
    close(out, np_(yt), "out", s)
    dx, dW, db = np.empty((n, i)), np.empty((i, o)), np.empty(o if bias else 0)
    ops.dense_backward(R, x, W, dx, dW, db)
    close(dx, np_(xt.grad), "dx", np.abs(R) @ np.abs(W.T))
    close(dW, np_(lin.weight.grad).T, "dW", np.abs(x.T) @ np.abs(R))
    if bias:
        close(db, np_(lin.bias.grad), "db", np.abs(R).sum(0))


@pytest.mark.parametrize("act,module", [(SIGMOID, "Sigmoid"), (RELU, "ReLU"), (TANH, "Tanh"),
                                        (IDENTITY, "Identity")],
                         ids=["sigmoid", "relu", "tanh", "identity"])
def test_activations_vs_torch(ops, rng, act, module):
    n, d = 9, 7
    x = rng.standard_normal((n, d)) * 4
    R = rng.standard_normal((n, d))
    xt = T(x, grad=True)
    yt = getattr(torch.nn, module)()(xt)
    yt.backward(T(R))
    y = np.empty((n, d))
    ops.act_forward(x, act, y)
    close(y, np_(yt), "forward")
    dx = np.empty((n, d))
    ops.act_backward(R, y, act, dx)
    close(dx, np_(xt.grad), "backward", np.abs(R))

    b = rng.standard_normal(d)
    ops.bias_act_forward(x, b, act, y)
    close(y, np_(getattr(torch.nn, module)()(T(x) + T(b))), "bias_act", np.abs(x) + np.abs(b))


def _bn_pair(d, momentum, gamma, beta, eps=1e-5):
    bn = torch.nn.BatchNorm1d(d, eps=eps, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(T(gamma))
        bn.bias.copy_(T(beta))
    return bn


@pytest.mark.parametrize("n,d", [(2, 1), (8, 5), (64, 33)])
def test_batchnorm_train_forward_backward(ops, rng, n, d):
    x = rng.standard_normal((n, d)) * 3 + 2
    gamma, beta = rng.standard_normal(d), rng.standard_normal(d)
    R = rng.standard_normal((n, d))
    bn = _bn_pair(d, 0.1, gamma, beta).train()
    xt = T(x, grad=True)
    yt = bn(xt)
    yt.backward(T(R))

    rm, rv = np.zeros(d), np.ones(d)  # torch's initial running statistics
    xhat, inv_std, out = np.empty((n, d)), np.empty(d), np.empty((n, d))
    ops.batchnorm_forward_train(x, gamma, beta, rm, rv, 0.1, 1e-5, xhat, inv_std, out)
    close(out, np_(yt), "out", np.abs(gamma) * np.abs(xhat) + np.abs(beta) + 1e-12)
    close(rm, np_(bn.running_mean), "running_mean")
    close(rv, np_(bn.running_var), "running_var")
    dx, dgamma, dbeta = np.empty((n, d)), np.empty(d), np.empty(d)
    ops.batchnorm_backward(R, xhat, inv_std, gamma, dx, dgamma, dbeta)
    k = np.abs(gamma) * inv_std / n
    s = np.abs(R).sum(0)
    close(dbeta, np_(bn.bias.grad), "dbeta", s)
    close(dgamma, np_(bn.weight.grad), "dgamma", (np.abs(R) * np.abs(xhat)).sum(0))
    close(dx, np_(xt.grad), "dx", k * (n * np.abs(R) + s + np.abs(xhat) * s))


@pytest.mark.parametrize("momentum", [0.1, 0.35])
def test_batchnorm_running_stats_and_eval(ops, rng, momentum):
    """Several training steps, then evaluation mode with the running statistics."""
    n, d = 10, 6
    gamma, beta = rng.standard_normal(d), rng.standard_normal(d)
    bn = _bn_pair(d, momentum, gamma, beta).train()
    rm, rv = np.zeros(d), np.ones(d)
    xhat, inv_std, out = np.empty((n, d)), np.empty(d), np.empty((n, d))
    for step in range(5):
        x = rng.standard_normal((n, d)) * (1 + step) + step
        with torch.no_grad():
            bn(T(x))
        ops.batchnorm_forward_train(x, gamma, beta, rm, rv, momentum, 1e-5, xhat, inv_std, out)
        close(rm, np_(bn.running_mean), f"running_mean step {step}", np.abs(rm).max())
        close(rv, np_(bn.running_var), f"running_var step {step}")
    bn.eval()
    x = rng.standard_normal((n, d)) * 3
    with torch.no_grad():
        yt = bn(T(x))
    ops.batchnorm_forward_eval(x, gamma, beta, rm, rv, 1e-5, out)
    s = np.abs(gamma) * (np.abs(x) + np.abs(rm)) / np.sqrt(rv + 1e-5) + np.abs(beta)
    close(out, np_(yt), "eval out", s)


def test_dropout_formula(ops, rng):
    """Inverted dropout is x * mask with mask in {0, 1/(1-p)}; torch on the same mask."""
    n, d, p = 20, 30, 0.3
    x, R = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    mask = np.empty((n, d))
    ops.dropout_mask(11, 5, p, mask)
    keep = mask != 0
    assert np.all(mask[keep] == 1 / (1 - p))
    xt = T(x, grad=True)
    yt = xt * T(keep.astype(F64)) / (1 - p)  # torch.nn.functional.dropout's formula
    yt.backward(T(R))
    out, dx = np.empty((n, d)), np.empty((n, d))
    ops.dropout_forward(x, mask, out)
    ops.dropout_backward(R, mask, dx)
    close(out, np_(yt), "out")
    close(dx, np_(xt.grad), "dx")


@pytest.mark.parametrize("n,k", [(1, 2), (16, 10), (33, 7)])
def test_cross_entropy(ops, rng, n, k):
    logits = rng.standard_normal((n, k)) * 3
    labels = rng.integers(0, k, n).astype(np.int64)
    lt = T(logits, grad=True)
    loss_t = torch.nn.CrossEntropyLoss()(lt, torch.tensor(labels))
    loss_t.backward()
    probs, dl = np.empty((n, k)), np.empty((n, k))
    loss = ops.softmax_cross_entropy(logits, labels, probs, dl)
    close(loss, loss_t.item(), "loss")
    close(probs, np_(torch.softmax(T(logits), dim=1)), "probs")
    close(dl, np_(lt.grad), "dlogits", 1.0 / n)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("half", [False, True])
def test_mse(ops, rng, reduction, half):
    n, k = 12, 3
    pred, target = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    pt = T(pred, grad=True)
    loss_t = torch.nn.MSELoss(reduction=reduction)(pt, T(target)) * (0.5 if half else 1.0)
    loss_t.backward()
    dpred = np.empty((n, k))
    loss = ops.mse_loss(pred, target, reduction == "sum", half, dpred)
    close(loss, loss_t.item(), "loss")
    close(dpred, np_(pt.grad), "dpred")


def test_bce(ops, rng):
    n, k = 10, 4
    z = rng.standard_normal((n, k)) * 4
    t = rng.random((n, k))
    t[:3] = (t[:3] > 0.5)
    zt = T(z, grad=True)
    loss_t = torch.nn.BCEWithLogitsLoss()(zt, T(t))
    loss_t.backward()
    dz = np.empty((n, k))
    loss = ops.bce_with_logits(z, t, dz)
    close(loss, loss_t.item(), "loss vs BCEWithLogitsLoss")
    close(dz, np_(zt.grad), "dz vs BCEWithLogitsLoss", 1.0 / z.size)
    # the same loss as BCELoss on sigmoid(z) (moderate z: no clamping in torch)
    zt2 = T(z, grad=True)
    loss2 = torch.nn.BCELoss()(torch.sigmoid(zt2), T(t))
    loss2.backward()
    close(loss, loss2.item(), "loss vs BCELoss(sigmoid)")
    close(dz, np_(zt2.grad), "dz vs BCELoss(sigmoid)", 1.0 / z.size)


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.0, False, 0.05),
                                                  (0.9, False, 0.0), (0.9, False, 0.01),
                                                  (0.8, True, 0.0), (0.9, True, 0.01)])
def test_sgd(ops, rng, momentum, nesterov, wd):
    P, lr = 17, 0.05
    p0 = rng.standard_normal(P)
    pt = T(p0.copy(), grad=True)
    opt = torch.optim.SGD([pt], lr=lr, momentum=momentum, nesterov=nesterov,
                          weight_decay=wd, dampening=0)
    params = p0.copy()
    velocity = np.zeros(P if momentum else 0)
    for step in range(6):
        g = rng.standard_normal(P)
        pt.grad = T(g)
        opt.step()
        ops.sgd_update(params, g, velocity, lr, momentum, wd, nesterov)
        close(params, np_(pt), f"params step {step}", np.abs(params).max())
        if momentum:
            buf = np_(opt.state[pt]["momentum_buffer"])
            close(velocity, buf, f"velocity step {step}", np.abs(buf).max())


@pytest.mark.parametrize("wd", [0.0, 0.02])
def test_adam(ops, rng, wd):
    P, lr, betas, eps = 23, 1e-2, (0.9, 0.999), 1e-8
    p0 = rng.standard_normal(P)
    pt = T(p0.copy(), grad=True)
    opt = torch.optim.Adam([pt], lr=lr, betas=betas, eps=eps, weight_decay=wd,
                           foreach=False)
    params, m, v = p0.copy(), np.zeros(P), np.zeros(P)
    for step in range(1, 8):
        g = rng.standard_normal(P) * step
        pt.grad = T(g)
        opt.step()
        ops.adam_update(params, g, m, v, step, lr, betas[0], betas[1], eps, wd)
        st = opt.state[pt]
        close(m, np_(st["exp_avg"]), f"m step {step}", np.abs(m).max())
        close(v, np_(st["exp_avg_sq"]), f"v step {step}")
        close(params, np_(pt), f"params step {step}", np.abs(params).max())
