"""Elementwise functions declared in rule files, with derivatives from sympy.

A declaration ``function sigmoid(x) = 1/(1 + exp(-x)); d/dx = sigmoid(x)*(1 - sigmoid(x))``
defines σ by a scalar sympy expression; the optional derivative is checked against sympy's
(numerically, at several points) and otherwise derived by sympy.

>>> reg = FunctionRegistry()
>>> _ = reg.declare("sq", "x**2")
>>> reg["sq"].derivative_text("A")
'2 .* (A)'
>>> reg["sq"].numpy()(3.0)
9.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from tokenize import TokenError
from typing import TYPE_CHECKING

import numpy as np

from .errors import RuleFileError
from .parse import BUILTIN_CALLS, RULE_CALLS

if TYPE_CHECKING:  # sympy is imported where it is used (it takes ~0.35 s)
    import sympy

#: names sympy knows natively; a declaration ``function exp(x) = exp(x)`` makes them usable
PRIMITIVE_NAMES = ("exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "sqrt", "abs",
                   "sign", "atan", "erf", "step", "relu")
#: sympy's spelling of a primitive whose language name differs: ``step(x)`` is the Heaviside step
#: with step(0) = 0, ``relu(x)`` is max(x, 0)
SYMPY_SPELLING = {"abs": "Abs", "step": "Heaviside", "relu": "Max"}
#: the sympy fields of a declaration (kept as text when pickled, see FunctionDecl)
_SYMPY_FIELDS = ("definition", "derivative", "expanded")


@lru_cache(maxsize=1)
def _symbols() -> tuple:
    """``(X, PRIMITIVES)``: the argument symbol and the sympy functions of
    :data:`PRIMITIVE_NAMES`. sympy is imported here, on first use: a process that only reads
    cached rules and differentiates never needs it (importing it takes ~0.35 s)."""
    import sympy

    x = sympy.Symbol("x", real=True)
    fns = {n: getattr(sympy, SYMPY_SPELLING.get(n, n)) for n in PRIMITIVE_NAMES}
    # one-argument forms: the step is 0 at 0 (so relu'(0) = 0), relu is max(x, 0)
    fns["step"] = sympy.Lambda(x, sympy.Heaviside(x, 0))
    fns["relu"] = sympy.Lambda(x, sympy.Max(x, 0))
    return x, fns


def language_name(e: sympy.Expr) -> str | None:
    """The language's name of a primitive applied to one argument (``Abs(x)`` → ``abs``,
    ``Heaviside(x, 0)`` → ``step``, ``Max(x, 0)`` → ``relu``), else None."""
    name = type(e).__name__
    if name == "Heaviside" and (len(e.args) == 1 or e.args[1] == 0):
        return "step"
    if name == "Max" and len(e.args) == 2 and 0 in e.args:
        return "relu"
    if name in ("Heaviside", "Max"):
        return None
    return {"Abs": "abs"}.get(name, name)


def language_argument(e: sympy.Expr) -> sympy.Expr:
    """The argument of a primitive application (the non-zero one of ``Max(x, 0)``)."""
    if type(e).__name__ == "Max":
        return next(a for a in e.args if a != 0)
    return e.args[0]


def argument_symbol() -> sympy.Symbol:
    """The sympy symbol ``x`` that declarations are written in (real)."""
    return _symbols()[0]


def primitive_functions() -> dict:
    """Name → sympy function, for :data:`PRIMITIVE_NAMES`."""
    return _symbols()[1]


def __getattr__(name: str):
    """``X`` and ``PRIMITIVES``, built (with sympy) on first use."""
    if name == "X":
        return _symbols()[0]
    if name == "PRIMITIVES":
        return _symbols()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class FunctionDecl:
    """One elementwise function: its scalar definition and derivative (sympy, in ``x``).

    Pickled, the sympy expressions are kept as text (``sympy.srepr``) and rebuilt on first
    access, so that unpickling a rule set does not import sympy.
    """

    name: str
    definition: sympy.Expr
    derivative: sympy.Expr
    expanded: sympy.Expr  # definition with every declared function unfolded
    source: str = ""
    registry: FunctionRegistry | None = field(default=None, repr=False)

    def __getstate__(self) -> dict:
        import sympy

        state = {k: v for k, v in self.__dict__.items() if k not in ("_numpy", "_texts")}
        texts = dict(self.__dict__.get("_texts", {}))
        for k in _SYMPY_FIELDS:
            if k in state:
                texts[k] = sympy.srepr(state.pop(k))
        state["_texts"] = texts
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __getattr__(self, name: str):
        texts = self.__dict__.get("_texts")
        if texts and name in texts:
            import sympy

            value = eval(texts[name], vars(sympy))  # srepr text, made by __getstate__
            setattr(self, name, value)
            return value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def numpy(self):
        """A numpy ufunc-like callable for the definition (built once, kept)."""
        fn = self.__dict__.get("_numpy")
        if fn is None:
            fn = self.__dict__["_numpy"] = _lambdify(self.expanded)
        return fn

    def derivative_text(self, arg: str) -> str:
        """σ'(arg) in the expression language, elementwise (``.*``, ``./``, ``.^``)."""
        names = set(self.registry.names()) if self.registry else set()
        return to_language(self.derivative, arg, names, self.name)


def to_language(e: sympy.Expr, arg: str, names: set[str], owner: str = "?") -> str:
    """Print a scalar sympy expression in ``x`` as elementwise language text.

    >>> import sympy
    >>> x = sympy.Symbol("x", real=True)
    >>> to_language(sympy.exp(-x) / (1 + sympy.exp(-x))**2, "A", {"exp"})
    'exp(-(A)) ./ ((1 + exp(-(A))) .^ 2)'
    """
    import sympy

    X, PRIMITIVES = _symbols()

    def go(t: sympy.Expr, prec: int) -> str:
        if t == X:
            return f"({arg})"
        if t.is_Rational:
            p, q = int(t.p), int(t.q)
            s = str(p) if q == 1 else f"{p}/{q}"
            return f"({s})" if (q != 1 or p < 0) and prec > 0 else s
        if t.is_Float:
            return repr(float(t))
        if t.is_Add:
            parts = [go(a, 1) for a in sympy.Add.make_args(t)]
            out = parts[0]
            for p in parts[1:]:
                out += f" - {p[1:]}" if p.startswith("-") and not p.startswith("-(") else f" + {p}"
            return f"({out})" if prec > 0 else out
        if t.is_Mul:
            coeff, rest = t.as_coeff_Mul()
            if coeff == -1:
                inner = go(rest, 2)
                return f"-{inner}"
            num, den = [], []
            for f in sympy.Mul.make_args(t):
                b, ex = f.as_base_exp()
                if ex.is_Number and ex < 0:
                    den.append(b if ex == -1 else b ** (-ex))
                else:
                    num.append(f)
            top = " .* ".join(go(f, 2) for f in num) if num else "1"
            if den:
                bottom = go(sympy.Mul(*den), 3) if len(den) == 1 else f"({' .* '.join(go(d, 2) for d in den)})"
                out = f"{top} ./ {bottom}"
            else:
                out = top
            return f"({out})" if prec > 1 else out
        if t.is_Pow:
            b, ex = t.as_base_exp()
            if ex == -1:
                out = f"1 ./ {go(b, 3)}"
                return f"({out})" if prec > 1 else out
            out = f"{go(b, 3)} .^ {go(ex, 3)}"
            return f"({out})" if prec > 2 else out
        if isinstance(t, (sympy.Function, sympy.Max)) or t.func in PRIMITIVES.values():
            fname = language_name(t) or t.func.__name__
            if fname not in names:
                raise RuleFileError(f"the derivative of {owner} uses {fname}(), which is not a "
                                    f"declared function; declare it with 'function {fname}(x) = ...'")
            return f"{fname}({go(language_argument(t), 0)})"
        raise RuleFileError(f"the derivative of {owner} contains {t}, which has no elementwise form")

    return go(sympy.sympify(e), 0)


class FunctionRegistry:
    """Declared elementwise functions, in declaration order."""

    def __init__(self) -> None:
        self._decls: dict[str, FunctionDecl] = {}
        # name -> its sympy function (a primitive's own, else an undefined Function); None in
        # an unpickled registry until first needed (built by _syms from _primitive)
        self._sym: dict[str, object] | None = {}
        self._primitive: set[str] = set()

    def names(self) -> list[str]:
        return list(self._decls)

    def __contains__(self, name: str) -> bool:
        return name in self._decls

    def __getitem__(self, name: str) -> FunctionDecl:
        return self._decls[name]

    def __getstate__(self) -> dict:
        return {"_decls": self._decls, "_primitive": self._primitive}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._sym = None

    def _syms(self) -> dict[str, object]:
        if self._sym is None:
            import sympy

            prims = _symbols()[1]
            self._sym = {n: prims[n] if n in self._primitive else sympy.Function(n)
                         for n in self._decls}
        return self._sym

    def copy(self) -> FunctionRegistry:
        out = FunctionRegistry()
        for d in self._decls.values():
            c = object.__new__(FunctionDecl)  # field by field, so lazy fields stay lazy
            c.__dict__.update(d.__dict__)
            c.registry = out
            out._decls[d.name] = c
        out._sym = None if self._sym is None else dict(self._sym)
        out._primitive = set(self._primitive)
        return out

    def _sympify(self, text: str, name: str, self_primitive: bool = False) -> sympy.Expr:
        import sympy

        X, PRIMITIVES = _symbols()
        local: dict[str, object] = {"x": X}
        for n, f in PRIMITIVES.items():
            local[n] = f
        syms = self._syms()
        for n in self._decls:
            local[n] = syms[n]
        if not self_primitive and name not in PRIMITIVES:
            local[name] = sympy.Function(name)
        try:
            e = sympy.sympify(text.replace("^", "**"), locals=local)
        except (sympy.SympifyError, SyntaxError, TypeError, TokenError) as exc:
            raise RuleFileError(f"function {name}: cannot read {text!r}: {exc}") from None
        bad = e.free_symbols - {X}
        if bad:
            raise RuleFileError(f"function {name}: unknown name(s) {sorted(map(str, bad))}; "
                                "the argument must be called x")
        return e

    def declare(self, name: str, definition: str, derivative: str | None = None,
                source: str = "") -> FunctionDecl:
        """Declare (or re-declare identically) an elementwise function."""
        import sympy

        X, PRIMITIVES = _symbols()
        if name in BUILTIN_CALLS or name in RULE_CALLS or len(name) == 1 or not name.isidentifier():
            raise RuleFileError(f"{name!r} cannot name a function (reserved or a single letter)")
        primitive = name in PRIMITIVES and definition.replace(" ", "") == f"{name}(x)"
        e = self._sympify(definition, name, self_primitive=True)
        if not primitive and e.has(sympy.Function(name)):
            raise RuleFileError(f"function {name} is defined in terms of itself")
        expanded = self.expand(e)
        if primitive:
            sym = PRIMITIVES[name]
        else:
            sym = sympy.Function(name)
        derived = sympy.diff(expanded, X)
        syms = self._syms()
        if derivative is not None:
            syms[name] = sym
            self._decls[name] = FunctionDecl(name, e, sympy.Integer(0), expanded, source, self)
            try:
                given = self._sympify(derivative, name, self_primitive=True)
            except RuleFileError:
                del self._decls[name]
                raise
            if not _numerically_equal(self.expand(given), derived):
                del self._decls[name]
                raise RuleFileError(f"function {name}: the stated derivative {derivative!r} "
                                    f"disagrees with sympy's {sympy.simplify(derived)}")
            deriv = given
        else:  # sympy's simplest form, unless it needs Piecewise (which the language lacks)
            deriv = next((c for c in (self._fold(sympy.simplify(derived), name, expanded),
                                      self._fold(derived, name, expanded))
                          if not c.has(sympy.Piecewise)), derived)
        syms[name] = sym
        if primitive:
            self._primitive.add(name)
        else:
            self._primitive.discard(name)
        decl = FunctionDecl(name, e, deriv, expanded, source, self)
        self._decls[name] = decl
        return decl

    def check_writable(self, name: str) -> None:
        """Raise unless the derivative of ``name`` can be written in the language (``d(f(A))``
        needs it); call once every function it may use is declared."""
        decl = self._decls[name]
        try:
            decl.derivative_text("A")
        except RuleFileError as exc:
            raise RuleFileError(f"its derivative {decl.derivative} cannot be written in the "
                                f"language ({exc.message}); state one with '; d/dx = ...' "
                                "using declared functions") from None

    def expand(self, e: sympy.Expr) -> sympy.Expr:
        """Unfold declared (non-primitive) functions into their definitions."""
        import sympy

        X, PRIMITIVES = _symbols()
        syms = self._syms()
        reps = {}
        for n, d in self._decls.items():
            if n in PRIMITIVES and isinstance(syms.get(n), type) is False:
                continue
            f = syms.get(n)
            if f is not None and f not in PRIMITIVES.values():
                reps[f] = sympy.Lambda(X, d.expanded)
        return e.replace(lambda t: t.func in reps, lambda t: reps[t.func](*t.args)) if reps else e

    def _fold(self, deriv: sympy.Expr, name: str, expanded: sympy.Expr) -> sympy.Expr:
        """Prefer a derivative written with the function itself when that is shorter."""
        import sympy

        X = _symbols()[0]
        f = sympy.Function(name)(X)
        try:
            cand = sympy.simplify(deriv.subs(expanded, f))
        except Exception:  # pragma: no cover - sympy corner cases
            return deriv
        return cand if sympy.count_ops(cand) < sympy.count_ops(deriv) else deriv


_LAMBDIFIED: list = []


def _lambdify(e: sympy.Expr):
    """``sympy.lambdify`` in ``x``; the callable is kept alive, because when one is collected its
    linecache entry is dropped by a finalizer, racing with ``linecache.checkcache`` elsewhere."""
    import sympy

    X = _symbols()[0]
    fn = sympy.lambdify(X, e, modules="numpy")
    _LAMBDIFIED.append(fn)
    return fn


def _numerically_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal at random points of (-1.8, -0.2) ∪ (0.2, 1.8) (point masses at 0 ignored)."""
    import sympy

    a, b = (sympy.sympify(e).replace(sympy.DiracDelta, lambda *_: sympy.Integer(0))
            for e in (a, b))
    rng = np.random.default_rng(0)
    pts = rng.uniform(0.2, 1.8, size=12) * np.where(np.arange(12) % 2, 1.0, -1.0)
    try:
        fa = _lambdify(a)
        fb = _lambdify(b)
        with np.errstate(all="ignore"):
            va = np.asarray(fa(pts), dtype=float) * np.ones_like(pts)
            vb = np.asarray(fb(pts), dtype=float) * np.ones_like(pts)
    except Exception as exc:  # sympy constructs numpy cannot evaluate
        raise RuleFileError(f"cannot evaluate {a} or {b} numerically: {exc}") from None
    ok = np.isfinite(va) & np.isfinite(vb)
    if ok.sum() < 6:
        return False
    return bool(np.allclose(va[ok], vb[ok], rtol=1e-9, atol=1e-12))


__all__ = ["FunctionDecl", "FunctionRegistry", "argument_symbol", "language_argument", "language_name",
           "primitive_functions", "to_language"]
