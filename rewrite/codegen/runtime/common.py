"""Runtime helpers every generated module has, whatever its backend: the checks of the input
arrays' names and shapes (binding the named dimensions on first use) and the 2-D shape of a
result. :mod:`rewrite.codegen.module` copies these functions verbatim into generated code.

>>> dims = {}
>>> _check_dims("A", (3, 2), ("n", "k"), dims)
>>> _check_dims("B", (4, 2), ("n", 2), dims)
Traceback (most recent call last):
    ...
ValueError: B: dimension n is 3 (from A) but B has 4 rows; expected a matrix of shape (n, 2)
"""

from .stand_ins import INPUTS


def _as2d(name, got, shape):
    if len(got) == 2:
        return got
    if len(got) == 1 and shape[1] == 1:
        return (got[0], 1)
    if len(got) == 1 and shape[0] == 1:
        return (1, got[0])
    if len(got) == 0 or got == (1,):
        return (1, 1)
    raise ValueError(f"{name}: expected {_describe(shape)}, got an array of shape {got}")


def _describe(shape):
    rows, cols = shape
    if shape == (1, 1):
        return "a scalar"
    if cols == 1:
        return f"a vector of length {rows} (1-D or a column)"
    return f"a matrix of shape ({rows}, {cols})"


def _check_dims(name, got, shape, dims):
    """Every dimension of ``got`` matches ``shape``; names are bound on first use."""
    for axis, (want, n) in enumerate(zip(shape, got, strict=True)):
        what = "rows" if axis == 0 else "columns"
        if isinstance(want, int):
            if n != want:
                raise ValueError(f"{name}: expected {_describe(shape)}, got {n} {what}")
        elif want in dims:
            size, source = dims[want]
            if n != size:
                raise ValueError(f"{name}: dimension {want} is {size} (from {source}) but {name} "
                                 f"has {n} {what}; expected {_describe(shape)}")
        else:
            dims[want] = (n, name)


def _check_names(arrays, needed=None):
    missing = [n for n in (INPUTS if needed is None else needed) if n not in arrays]
    unknown = sorted(set(arrays) - set(INPUTS))
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unknown:
            parts.append("unexpected " + ", ".join(unknown))
        raise TypeError(f"expected the arrays {', '.join(INPUTS)}: " + "; ".join(parts))


def _shape2(a):
    """A 2-D shape for a result (a 1×1 one may be a number or a 0-d array)."""
    shape = tuple(getattr(a, "shape", ()))
    return shape if len(shape) == 2 else (1, 1)


#: the names the sibling runtime files import these by (generated code calls them as above)
as2d, check_dims = _as2d, _check_dims
