"""The checks of :mod:`fastbp.demo`: a value against a published (or exact) figure,
and the line that reports it."""


def _silent(line):
    pass


def _check(name, value, expected, decimals, what="published", tol=None):
    """One check: ``|value - expected| <= tol``; by default ``tol`` is half a
    unit in the last of the ``decimals`` decimals ``expected`` is given to."""
    tol = _half_unit(decimals) if tol is None else tol
    ok = bool(abs(float(value) - float(expected)) <= tol)
    return {"name": name, "value": float(value), "expected": float(expected),
            "decimals": int(decimals), "tol": tol, "against": what, "ok": ok}


def _half_unit(decimals):
    """Half a unit in the last published decimal, plus float64 slack."""
    return 0.5 * 10.0 ** (-decimals) + 1e-12


def _fmt_check(c):
    mark = "ok" if c["ok"] else "MISMATCH"
    expected = f"{c['expected']:.{c['decimals']}f}"
    return (f"    {c['name']:<15}= {c['value']: .8f}   {c['against']:<9} {expected:>11}  {mark}")
