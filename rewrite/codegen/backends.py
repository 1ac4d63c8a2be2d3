"""The spellings of generated code per backend (NumPy, JAX, PyTorch), as data: how each one
writes a trace, a solve, an identity, an elementwise function, a Kronecker product, …, which
runtime file holds its helpers, and which optimisations it supports (in-place operators, a
symmetric ``A'·diag(w)·A``, scaling the smallest operand of a product, contracting a
transposed operand in place).

>>> BY_NAME["numpy"].solve.format("A", "b")
'np.linalg.solve(A, b)'
>>> BY_NAME["torch"].fns["exp"], BY_NAME["jax"].dot_general
('torch.exp', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

BACKENDS = ("numpy", "jax", "torch")


@dataclass(frozen=True)
class Backend:
    """One backend's spellings: ``{}`` marks where the arguments go (``str.format``)."""

    name: str
    imports: str
    ns: str  # module prefix of elementwise functions
    trace: str
    det: str
    inv: str
    solve: str
    mpow: str
    sum: str
    norm: str
    eye: str
    ones: str
    diag: str
    diagv: str
    fns: Mapping[str, str]
    sigmoid: str  # a spelling starting with "_" calls that function of the runtime helpers
    softplus: str
    scalar_out: str
    kron: str
    #: a result as a float64 array of its 2-D shape (``_shape2`` is a runtime helper)
    matrix: str
    #: the runtime file (``rewrite/codegen/runtime/<helpers>.py``) of ``_input``, ``_like``, …
    helpers: str
    literal: str = "{}"  # how a literal number is made an array argument of a function
    dot: str = ""  # sum of the elementwise product of two same-shape arrays, if not sum(a * b)
    #: functions taking ``out=`` for the operators (+, -, *, /, **, neg): a temporary array that is
    #: not used afterwards is overwritten instead of allocating a new one (none for JAX, whose
    #: arrays are immutable, and PyTorch, whose autograd rejects ``out=``)
    ufuncs: Mapping[str, str] = field(default_factory=dict)
    #: ``A'*diag(w)*A`` as ``_gram(A, w)`` (a symmetric rank-k update when w >= 0)
    gram: bool = False
    #: ``c*(A*B)`` as ``_scaled_matmul(c, A, B)`` (the scalar goes to the smallest operand)
    scaled_matmul: bool = False
    #: a transposed operand of a product contracted in place (``jax.lax.dot_general``)
    dot_general: bool = False
    #: the runtime file of its ``check_gradient``
    gradient_check: str = "check"
    #: column-wise softmax and logsumexp (1×n) of a matrix
    softmax: str = "_softmax({})"
    logsumexp: str = "_logsumexp({})"


PRIM_FNS = {"exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh",
            "sinh": "sinh", "cosh": "cosh", "sqrt": "sqrt", "abs": "abs", "sign": "sign"}
#: the non-smooth primitives: a spelling starting with "_" is a function of the runtime helpers
#: (step(0) = 0, so that relu'(0) = 0 as in the language)

NUMPY = Backend(
    "numpy", "import numpy as np", "np", "np.trace({})", "np.linalg.det({})", "np.linalg.inv({})",
    "np.linalg.solve({}, {})", "np.linalg.matrix_power({}, {})", "np.sum({})", "np.linalg.norm({})",
    "np.eye({})", "np.ones(({}, {}))", "np.diag({}[:, 0])", "np.diagonal({})[:, None]",
    {**{k: f"np.{v}" for k, v in PRIM_FNS.items()}, "atan": "np.arctan", "step": "_step",
     "relu": "_relu"},
    "_sigmoid({})", "np.logaddexp(0.0, {})", "float({})", "np.kron({}, {})",
    "np.asarray({0}, dtype=float).reshape(_shape2({0}))", "numpy_helpers", dot="np.vdot({}, {})",
    ufuncs={"+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide",
            "**": "np.power", "neg": "np.negative"},
    gram=True, scaled_matmul=True)
JAX = Backend(
    "jax", "import jax\nimport jax.numpy as jnp\nimport numpy as np\n\n"
    "jax.config.update(\"jax_enable_x64\", True)  # double precision, like the NumPy backend",
    "jnp", "jnp.trace({})", "jnp.linalg.det({})", "jnp.linalg.inv({})", "jnp.linalg.solve({}, {})",
    "jnp.linalg.matrix_power({}, {})", "jnp.sum({})", "jnp.linalg.norm({})", "jnp.eye({})",
    "jnp.ones(({}, {}))", "jnp.diag({}[:, 0])", "jnp.diagonal({})[:, None]",
    {**{k: f"jnp.{v}" for k, v in PRIM_FNS.items()}, "atan": "jnp.arctan",
     "erf": "jax.scipy.special.erf", "step": "_step", "relu": "jax.nn.relu"},
    "jax.nn.sigmoid({})", "jax.nn.softplus({})", "jnp.asarray({})", "jnp.kron({}, {})",
    "jnp.asarray({0}, dtype=jnp.float64).reshape(_shape2({0}))", "jax_helpers",
    dot_general=True, softmax="jax.nn.softmax({}, axis=0)",
    logsumexp="jax.nn.logsumexp({}, axis=0, keepdims=True)")
TORCH = Backend(
    "torch", "import torch", "torch", "torch.trace({})", "torch.linalg.det({})",
    "torch.linalg.inv({})", "torch.linalg.solve({}, {})", "torch.linalg.matrix_power({}, {})",
    "torch.sum({})", "torch.linalg.norm({})", "torch.eye({}, dtype=torch.float64)",
    "torch.ones(({}, {}), dtype=torch.float64)", "torch.diag({}[:, 0])",
    "torch.diagonal({})[:, None]",
    {**{k: f"torch.{v}" for k, v in PRIM_FNS.items()}, "atan": "torch.atan", "erf": "torch.erf",
     "step": "_step", "relu": "torch.relu"},
    "torch.sigmoid({})", "torch.logaddexp({0}, torch.zeros_like({0}))",
    "torch.as_tensor({}, dtype=torch.float64)",
    # torch.kron views its arguments, which fails on transposed (non-contiguous) strides
    "torch.kron({}.contiguous(), {}.contiguous())",
    "torch.as_tensor({0}, dtype=torch.float64).reshape(_shape2({0}))", "torch_helpers",
    "torch.tensor({}, dtype=torch.float64)",
    dot="torch.dot({}.reshape(-1), {}.reshape(-1))",  # no out=: it would break autograd
    scaled_matmul=True, gradient_check="torch_helpers", softmax="torch.softmax({}, dim=0)",
    logsumexp="torch.logsumexp({}, dim=0, keepdim=True)")

BY_NAME = {b.name: b for b in (NUMPY, JAX, TORCH)}

__all__ = ["BACKENDS", "BY_NAME", "JAX", "NUMPY", "PRIM_FNS", "TORCH", "Backend"]
