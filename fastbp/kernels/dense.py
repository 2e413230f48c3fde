"""Numba kernels of :mod:`fastbp.reference.dense` (see there for the maths).

Products of fewer than ``SMALL_GEMM`` multiply-adds run as plain loops (a BLAS
call costs about a microsecond before it does any work); larger ones call
BLAS ``?gemm`` directly (NumPy's own, see :mod:`fastbp._blas`), with its
transpose flags, leading dimensions and alpha/beta: no operand is copied, no
output allocated, and an SGD step folds into the weight-gradient product
(``W += -lr * x.T @ dout`` is one GEMM with beta = 1).
"""
import numpy as np
from llvmlite import binding, ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .. import _blas
from .._config import SMALL_GEMM, njit

CBLAS = _blas.cblas()       # NumPy's own ?gemm, made known to the JIT's linker by name
if CBLAS is not None:
    for _dt, _name in _blas.NAMES.items():
        binding.add_symbol(_name, CBLAS[_dt])

# Transpose flags as typed values: literal 0/1 would compile _matmul once per pair.
_N, _T = np.int64(0), np.int64(1)


@intrinsic
def _xgemm(typingctx, transa, transb, alpha, a, b, beta, c):
    """BLAS ``?gemm`` on row-major operands: c = alpha * op(a) @ op(b) + beta * c.

    Calls, by symbol name (so the compiled kernel can be cached), NumPy's own
    CBLAS ``?gemm`` where it has one (:mod:`fastbp._blas`), else Numba's
    ``numba_xxgemm`` helper (SciPy's BLAS). ``transa`` / ``transb``: 0 or 1;
    ``a``, ``b``, ``c``: arrays of one float dtype whose rows are contiguous
    (see :func:`_gemm_rm`). Nothing is allocated.
    """
    sig = types.void(transa, transb, alpha, a, b, beta, c)

    def codegen(context, builder, signature, args):
        ta, tb, al, A, B, be, C = args
        dtype = signature.args[6].dtype
        intp = context.get_value_type(types.intp)
        llty = context.get_value_type(dtype)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(llty))
        one = ir.Constant(intp, 1)

        def operand(i, value):      # (rows, columns, leading dimension, data pointer)
            arr = context.make_array(signature.args[i])(context, builder, value)
            rows, cols = cgutils.unpack_tuple(builder, arr.shape, 2)
            ld = builder.sdiv(cgutils.unpack_tuple(builder, arr.strides, 2)[0], itemsize)
            ld = builder.select(builder.icmp_signed("<", ld, one), one, ld)
            return rows, cols, ld, arr.data

        def flag(i, value):
            return builder.icmp_signed("!=", context.cast(builder, value, signature.args[i],
                                                          types.intp), ir.Constant(intp, 0))

        ra, ca, lda, pa = operand(3, A)
        _, _, ldb, pb = operand(4, B)
        rc, cc, ldc, pc = operand(6, C)
        ta_b, tb_b = flag(0, ta), flag(1, tb)
        k = builder.select(ta_b, ra, ca)
        al = context.cast(builder, al, signature.args[2], dtype)
        be = context.cast(builder, be, signature.args[5], dtype)
        if CBLAS is not None:
            i32 = ir.IntType(32)
            ptr = llty.as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, intp, intp, intp, llty, ptr,
                                                   intp, ptr, intp, llty, ptr, intp])
            fn = cgutils.get_or_insert_function(builder.module, fnty, _blas.NAMES[str(dtype)])
            trans = lambda f: builder.select(f, ir.Constant(i32, _blas.TRANS),  # noqa: E731
                                             ir.Constant(i32, _blas.NO_TRANS))
            builder.call(fn, (ir.Constant(i32, _blas.ROW_MAJOR), trans(ta_b), trans(tb_b),
                              rc, cc, k, al, pa, lda, pb, ldb, be, pc, ldc))
            return context.get_dummy_value()
        # Numba's helper is column-major: row-major C (m, n) = op(A) (m, k) @ op(B) (k, n)
        # is column-major C^T = op(B)^T @ op(A)^T, B first, each with its own flag.
        char = ir.IntType(8)
        voidp = char.as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, voidp,
                                                 voidp, intp, voidp, intp, voidp, voidp, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        p_al = cgutils.alloca_once_value(builder, al)
        p_be = cgutils.alloca_once_value(builder, be)
        tr = lambda f: builder.select(f, ir.Constant(char, ord("t")),  # noqa: E731
                                      ir.Constant(char, ord("n")))
        kind = ir.Constant(char, ord("d" if dtype == types.float64 else "s"))
        builder.call(fn, (kind, tr(tb_b), tr(ta_b), cc, rc, k, builder.bitcast(p_al, voidp),
                          builder.bitcast(pb, voidp), ldb, builder.bitcast(pa, voidp), lda,
                          builder.bitcast(p_be, voidp), builder.bitcast(pc, voidp), ldc))
        return context.get_dummy_value()

    return sig, codegen


@njit
def _rows_contiguous(a):
    return a.shape[0] <= 1 or a.shape[1] <= 1 or a.strides[1] == a.itemsize


@njit
def _gemm_rm(transa, transb, alpha, a, b, beta, c):
    """Row-major ``c = alpha * op(a) @ op(b) + beta * c`` through BLAS (op: transpose if set).

    Every operand is a 2-D array whose rows are contiguous (any row stride),
    as the workspace views are; no operand is copied.
    """
    m, n = c.shape
    if m == 0 or n == 0:
        return
    k = a.shape[0] if transa else a.shape[1]
    if k == 0:
        for r in range(m):
            for j in range(n):
                c[r, j] = c[r, j] * beta if beta != 0 else c.dtype.type(0)
        return
    _xgemm(transa, transb, alpha, a, b, beta, c)


@njit
def _matmul_loops(a, b, out, alpha, beta):
    # a (m, k), b (k, n), out (m, n): out = a @ b (alpha 1, beta 0), sum over k in order,
    # any layout; otherwise out = alpha * (a @ b) + beta * out
    m, k = a.shape
    n = b.shape[1]
    t = out.dtype.type
    zero = t(0)
    plain = alpha == 1 and beta == 0
    for r in range(m):
        if plain:
            for c in range(n):
                out[r, c] = zero
            for j in range(k):
                av = a[r, j]
                for c in range(n):
                    out[r, c] += av * b[j, c]
        else:
            for c in range(n):
                acc = zero
                for j in range(k):
                    acc += a[r, j] * b[j, c]
                out[r, c] = t(alpha) * acc + t(beta) * out[r, c]


@njit
def _matmul(ta, tb, alpha, a, b, beta, c):
    """``c = alpha * op(a) @ op(b) + beta * c``: BLAS, or loops for operands BLAS cannot take."""
    if _rows_contiguous(a) and _rows_contiguous(b) and _rows_contiguous(c):
        _gemm_rm(ta, tb, alpha, a, b, beta, c)
    else:
        _matmul_loops(a.T if ta else a, b.T if tb else b, c, alpha, beta)


@njit
def dense_forward(x, W, b, out):
    """Numba kernel of :func:`fastbp.reference.dense.dense_forward`."""
    # x (n, i), W (i, o), b (o,) or (0,), out (n, o)
    n, i = x.shape
    o = W.shape[1]
    if n * i * o < SMALL_GEMM:
        _matmul_loops(x, W, out, 1.0, 0.0)  # (n, o)
    else:
        _matmul(_N, _N, 1.0, x, W, 0.0, out)  # (n, o)
    if b.size != 0:
        for r in range(n):
            for c in range(o):
                out[r, c] += b[c]


@njit
def _dx(dout, W, dx, small):
    # dx (n, i) = dout (n, o) @ W.T
    if small:
        zero = dx.dtype.type(0)
        for r in range(dout.shape[0]):
            for k in range(W.shape[0]):  # dx[r, k] = dout[r, :] . W[k, :]
                acc = zero
                for c in range(W.shape[1]):
                    acc += dout[r, c] * W[k, c]
                dx[r, k] = acc
    else:
        _matmul(_N, _T, 1.0, dout, W, 0.0, dx)  # (n, o) @ (o, i) -> (n, i)


@njit
def _colsum(dout, db):
    # db (o,) = dout.sum(axis=0), rows in order
    zero = db.dtype.type(0)
    for c in range(db.shape[0]):
        db[c] = zero
    for r in range(dout.shape[0]):
        for c in range(db.shape[0]):
            db[c] += dout[r, c]


@njit
def dense_backward(dout, x, W, dx, dW, db):
    """Numba kernel of :func:`fastbp.reference.dense.dense_backward`."""
    # dout (n, o), x (n, i), W (i, o), dx (n, i) or (0, i), dW (i, o), db (o,) or (0,)
    n, o = dout.shape
    i = x.shape[1]
    small = n * i * o < SMALL_GEMM
    if dx.shape[0] != 0:
        _dx(dout, W, dx, small)
    if small:
        _xt_dout_loops(x, dout, dW, 1.0, 0.0)
    else:
        _matmul(_T, _N, 1.0, x, dout, 0.0, dW)  # (i, n) @ (n, o) -> (i, o)
    if db.size != 0:
        _colsum(dout, db)


@njit
def dense_backward_sgd(dout, x, W, lr, dx, db):
    """Numba kernel of :func:`fastbp.reference.dense.dense_backward_sgd`."""
    # dout (n, o), x (n, i), W (i, o) updated, dx (n, i) or (0, i), db (o,) or (0,)
    n, o = dout.shape
    i = x.shape[1]
    small = n * i * o < SMALL_GEMM
    if dx.shape[0] != 0:
        _dx(dout, W, dx, small)  # with W before its update
    if small:
        _xt_dout_loops(x, dout, W, -lr, 1.0)
    else:
        _matmul(_T, _N, -lr, x, dout, 1.0, W)  # W += -lr * x.T @ dout, one GEMM
    if db.size != 0:
        _colsum(dout, db)


@njit
def _xt_dout_loops(x, dout, dW, alpha, beta):
    # dW (i, o) = alpha * x.T @ dout + beta * dW; rows of x in order
    n, i = x.shape
    o = dout.shape[1]
    t = dW.dtype.type
    if beta == 0:
        for k in range(i):
            for c in range(o):
                dW[k, c] = t(0)
        for r in range(n):  # dW += outer(x[r], dout[r]), rows in order
            for k in range(i):
                xv = x[r, k]
                for c in range(o):
                    dW[k, c] += xv * dout[r, c]
        if alpha != 1:
            a = t(alpha)
            for k in range(i):
                for c in range(o):
                    dW[k, c] *= a
    else:
        a = t(-alpha)
        for k in range(i):  # beta == 1: dW[k, c] -= (-alpha) * (x[:, k] . dout[:, c])
            for c in range(o):
                acc = t(0)
                for r in range(n):
                    acc += x[r, k] * dout[r, c]
                dW[k, c] -= a * acc
