"""The float64 oracle written into a script: ``numerics.reference`` transcribed, specialized for one case.

The case's geometry is written as literals (how each input shape is viewed so that each normalized group is the
reduced axes of the view, the axes γ and β vary along, eps, momentum); the formulas are the reference's, two-pass,
summed in extended precision like it. A script holds only the functions its check uses.
"""

from __future__ import annotations

from ..adapters.repro import py
from ..ops.spec import NormSpec

# Each function: (the names it calls, its source). Sources are flush left; names end in _ref where a
# framework's method has the same name.
_FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "group_sum": ((), '''
def group_sum(a):
    """Σ of ``a`` over each normalized group, spread back over the group; summed in extended precision (long
    double) over the group's axes made contiguous, as normbench's oracle sums."""
    view, axes = GROUPS[a.shape]
    kept = [d for i, d in enumerate(view) if i not in axes]
    flat = np.moveaxis(a.reshape(view), axes, range(len(view) - len(axes), len(view))).reshape(*kept, -1)
    s = flat.astype(np.longdouble).sum(axis=-1).astype(np.float64)
    s = s.reshape([1 if i in axes else d for i, d in enumerate(view)])
    return np.broadcast_to(s, view).reshape(a.shape)
'''),
    "weights": ((), '''
def weights(x, mask):
    """1 where a position counts towards the statistics (the mask, spread over the parameter axes)."""
    if mask is None:
        return np.ones_like(x)
    return np.broadcast_to(np.expand_dims(np.asarray(mask, np.float64), PARAM_AXES), x.shape)
'''),
    "moments": (("group_sum", "weights"), '''
def moments(x, mask=None):
    """Two-pass mean and biased variance of each normalized group (its unmasked positions), spread over x;
    the mean is 0 where the op does not centre (RMSNorm: the variance is then the mean square)."""
    w = weights(x, mask)
    count = group_sum(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = group_sum(w * x) / count if CENTRED else np.zeros_like(x)
        var = group_sum(w * (x - mean) ** 2) / count
    return mean, var, count
'''),
    "affine": ((), '''
def affine(shape, gamma, beta):
    """γ and β shaped to broadcast against x (1 and 0 where the layer has none)."""
    b = tuple(d if a in PARAM_AXES else 1 for a, d in enumerate(shape))
    g = np.ones(b) if gamma is None else np.asarray(gamma, np.float64).reshape(b)
    o = np.zeros(b) if beta is None else np.asarray(beta, np.float64).reshape(b)
    return g, o
'''),
    "forward_ref": (("moments", "affine"), '''
def forward_ref(x, gamma, beta, mask=None):
    """y = γ·(x − μ)/√(σ² + eps) + β with each group's own statistics (training mode)."""
    x = np.asarray(x, np.float64)
    mean, var, _ = moments(x, mask)
    g, o = affine(x.shape, gamma, beta)
    return g * (x - mean) / np.sqrt(var + EPS) + o
'''),
    "forward_eval_ref": (("affine",), '''
def forward_eval_ref(x, gamma, beta, running_mean, running_var):
    """Inference: normalized with the running statistics the layer holds."""
    x = np.asarray(x, np.float64)
    b = tuple(d if a in PARAM_AXES else 1 for a, d in enumerate(x.shape))
    g, o = affine(x.shape, gamma, beta)
    rm, rv = (np.asarray(r, np.float64).reshape(b) for r in (running_mean, running_var))
    return g * (x - rm) / np.sqrt(rv + EPS) + o
'''),
    "update_running_ref": (("moments",), '''
def update_running_ref(running_mean, running_var, x, mask=None, unbiased=False):
    """One training step's running statistics: momentum is the new batch's weight (torch's convention), the
    variance stored biased or, like torch, unbiased (n/(n − 1)); per channel, BatchNorm's batch statistics or
    InstanceNorm's batch average of its per-instance ones."""
    x = np.asarray(x, np.float64)
    axes = tuple(a for a in range(x.ndim) if a not in PARAM_AXES)
    mean, var, count = (np.asarray(a, np.longdouble).mean(axis=axes).astype(np.float64).reshape(PARAM_SHAPE)
                        for a in moments(x, mask))
    if unbiased:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(count > 1, var * count / (count - 1), np.nan)
    new_mean = (1 - MOMENTUM) * np.asarray(running_mean, np.float64) + MOMENTUM * mean
    new_var = (1 - MOMENTUM) * np.asarray(running_var, np.float64) + MOMENTUM * var
    return new_mean.reshape(-1), new_var.reshape(-1)
'''),
    "vjp_ref": (("weights", "moments", "affine", "group_sum"), '''
def vjp_ref(x, gamma, dy, mask=None):
    """(dx, dγ, dβ) of the training-mode output for upstream gradient dy, analytically: with x̂ = (x − μ)/s,
    s = √(σ² + eps), w the mask weights, N = Σw and g = γ·dy, dx = (g − c·w/N·Σg − w/N·x̂·Σg·x̂)/s (c = 1 where
    the op centres), summed over each group."""
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    w = weights(x, mask)
    mean, var, count = moments(x, mask)
    s = np.sqrt(var + EPS)
    xhat = (x - mean) / s
    g = dy * affine(x.shape, gamma, None)[0]
    dx = g - w / count * xhat * group_sum(g * xhat)
    if CENTRED:
        dx = dx - w / count * group_sum(g)
    dx = dx / s
    sums = tuple(a for a in range(x.ndim) if a not in PARAM_AXES)
    dgamma = (dy * xhat).sum(axis=sums).reshape(PARAM_SHAPE)
    dbeta = dy.sum(axis=sums).reshape(PARAM_SHAPE)
    return dx, dgamma, dbeta
'''),
    "project": (("group_sum",), '''
def project(u, xhat, s, w, count):
    """P(u) = (u − c·Σwu/N − x̂·Σwx̂u/N)/s: the Jacobian of x̂ applied to u."""
    out = u - xhat * group_sum(w * xhat * u) / count
    if CENTRED:
        out = out - group_sum(w * u) / count
    return out / s
'''),
    "transpose": (("group_sum",), '''
def transpose(u, xhat, s, w, count):
    """Pᵀ(u) = (u − c·w·Σu/N − w·x̂·Σx̂u/N)/s: the Jacobian of x̂ transposed, applied to u."""
    out = u - w / count * xhat * group_sum(u * xhat)
    if CENTRED:
        out = out - w / count * group_sum(u)
    return out / s
'''),
    "jvp_ref": (("weights", "moments", "affine", "project"), '''
def jvp_ref(x, gamma, tx, tgamma=None, tbeta=None, mask=None):
    """Forward-mode derivative of the training-mode output along (tx, tγ, tβ): γ·P(tx) + tγ·x̂ + tβ."""
    x, tx = np.asarray(x, np.float64), np.asarray(tx, np.float64)
    w = weights(x, mask)
    mean, var, count = moments(x, mask)
    s = np.sqrt(var + EPS)
    xhat = (x - mean) / s
    out = affine(x.shape, gamma, None)[0] * project(tx, xhat, s, w, count)
    if tgamma is not None:
        out = out + affine(x.shape, tgamma, None)[0] * xhat
    if tbeta is not None:
        out = out + affine(x.shape, None, tbeta)[1]
    return out
'''),
    "second_order_ref": (("weights", "moments", "affine", "group_sum", "project", "transpose"), '''
def second_order_ref(x, gamma, dy, v, mask=None):
    """Gradients of f = <dx, v> with respect to x and γ, dx the VJP of dy: f = (A − B)/s with A = Σg·v − c·m(v)·Σg
    and B = m(x̂·v)·Σg·x̂ (m the weighted group mean); ∂f/∂x = −(A − B)·w·x̂/(N·s²) − (Pᵀ(w·v)·Σg·x̂/N +
    m(x̂·v)·Pᵀ(g))/s and ∂f/∂γ = Σ dy·P(v) over each parameter's positions."""
    x, dy, v = (np.asarray(a, np.float64) for a in (x, dy, v))
    w = weights(x, mask)
    mean, var, n = moments(x, mask)
    s = np.sqrt(var + EPS)
    xhat = (x - mean) / s
    g = dy * affine(x.shape, gamma, None)[0]
    mv = group_sum(w * v) / n if CENTRED else 0.0
    a = group_sum(g * v) - mv * group_sum(g)
    big_g = group_sum(g * xhat)
    mxv = group_sum(w * xhat * v) / n
    ddx = (-(a - mxv * big_g) * w * xhat / (n * s**2)
           - (transpose(w * v, xhat, s, w, n) * big_g / n + mxv * transpose(g, xhat, s, w, n)) / s)
    sums = tuple(ax for ax in range(x.ndim) if ax not in PARAM_AXES)
    ddgamma = (dy * project(v, xhat, s, w, n)).sum(axis=sums).reshape(PARAM_SHAPE)
    return ddx, ddgamma
'''),
}


def _closure(names: tuple[str, ...]) -> list[str]:
    """``names`` and every function they call, each after the functions it calls."""
    out: list[str] = []

    def visit(name: str) -> None:
        if name not in out:
            for dep in _FUNCTIONS[name][0]:
                visit(dep)
            out.append(name)

    for name in names:
        visit(name)
    return out


def source(spec: NormSpec, shapes: tuple[tuple[int, ...], ...], names: tuple[str, ...]) -> str:
    """The oracle functions ``names`` (with what they call) for inputs of ``shapes``, and their constants."""
    if not names:
        return ""
    ndim = len(shapes[0])
    groups = {shape: spec.stats_view(shape) for shape in shapes}
    constants = [
        "# How x of each shape is viewed so that each normalized group is one index of the view's kept axes, the",
        "# reduced ones varying: shape -> (view, reduced axes); the axes γ, β and running statistics vary along.",
        f"GROUPS = {{{', '.join(f'{py(s)}: ({py(v)}, {py(a)})' for s, (v, a) in groups.items())}}}",
        f"PARAM_AXES = {py(spec.param_axes(ndim))}",
        f"PARAM_SHAPE = {py(spec.param_shape(shapes[0]))}",
        f"EPS = {py(float(spec.eps))}",
        f"CENTRED = {spec.kind.centred}  # {'subtracts' if spec.kind.centred else 'does not subtract'} the mean",
    ]
    if "update_running_ref" in names:
        constants.append(f"MOMENTUM = {py(float(spec.momentum))}  # the weight of the new batch's statistics")
    body = "\n\n\n".join(_FUNCTIONS[n][1].strip("\n") for n in _closure(names))
    return "\n".join(constants) + "\n\n\n" + body + "\n"
