"""The adapter contract: one class per framework API path, one layer object per built norm.

An adapter wraps the layer API users call and takes numpy arrays plus a NormSpec.
Conversions to native tensors happen in the layer, outside anything a benchmark times.
Behaviour is passed through unchanged: a framework that stores unbiased running variance,
returns float32 for float16 input or raises on a batch of one does so here too.
"""

from __future__ import annotations

import copy
import functools
import importlib
import importlib.metadata
import importlib.util
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import __version__
from ..numerics.reference import Grads
from ..ops.dtypes import DTYPES, resolve
from ..ops.spec import LAYOUTS, NormSpec
from . import threads

# What a layer can do beyond a training-mode forward pass: inference, running statistics, reverse-mode
# gradients, a mask, forward-mode derivatives (JVP) and second-order gradients (gradients of gradients).
FEATURES = ("eval", "running_stats", "grad", "mask", "jvp", "second_order")


@functools.cache
def _dist_version(dist: str) -> str:
    """Installed version of a distribution; cached, since every record carries it."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Mode:
    """One way users run an adapter's layers: eager, under a compiler, at an optimization level.

    An adapter's first mode is its default (what it ran before modes existed; records of it name
    the adapter alone). Any other mode is the adapter ``<name>+<mode>``: its own process, its own
    rows in every report, its own known divergences, judged by the float64 oracle like the default.
    ``how`` is the exact setting as a user writes it; ``lacks`` the adapter's features the mode cannot
    run, each with why (a compiler that refuses double backward); ``executables`` what must be on
    PATH (Inductor's C++ compiler), each with the package that installs it."""

    name: str
    how: str
    compiled: bool = False  # what `--modes compiled` selects
    # `normbench run` adds a compiled mode by default, on the short matrix; False for one that costs the
    # run minutes even there (a variant of another compiled mode, or a compiler slow on small graphs)
    in_run: bool = True
    lacks: tuple[tuple[str, str], ...] = ()  # (feature, why the mode cannot run it)
    executables: tuple[tuple[tuple[str, ...], str], ...] = ()  # ((any of these commands), install hint)

    def missing(self) -> str | None:
        """Why the mode cannot run on this machine (a skip naming the package), or None."""
        for names, hint in self.executables:
            if not any(shutil.which(n) for n in names):
                return f"needs {' or '.join(names)} on PATH: {hint}"
        return None


DEFAULT_MODE = Mode("default", "the adapter's default")


class Unsupported(Exception):
    """This adapter cannot run this combination; the message says why (a skip, not a failure)."""


class NotInstalled(Unsupported):
    """The framework behind an adapter is missing; the message carries the install hint."""


class ImportFailed(RuntimeError):
    """The framework is installed but importing it raised: an error, not a skip."""


# What a benchmark times: "forward" of an op without running statistics; "train" / "eval" forward
# of one with them; any op's training-mode "forward_backward" (dx, dγ, dβ for a fixed upstream gradient).
MODES = ("forward", "train", "eval", "forward_backward")


@dataclass
class Timed:
    """One prepared call for a benchmark: inputs are already native tensors, and ``call``
    runs the framework once and returns only when the result is computed."""

    call: Callable[[], object]
    sync: str  # how ``call`` waits for the result, for the record
    traces: Callable[[], int] | None = None  # traces/compiles so far, where the framework counts them


class Layer:
    """One norm layer built by an adapter, holding the framework's native objects.

    The defaults keep γ, β and running statistics as numpy arrays, which is all a
    pure-numpy implementation needs; framework layers override them to read and write
    their own variables.
    """

    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str,
                 native: Callable[[NormSpec, tuple[int, ...], str], Any] | None = None,
                 mode: Mode | None = None) -> None:
        self.spec, self.shape, self.dtype = spec, tuple(shape), dtype
        self.native = native  # the op's builder of the framework object, for layers shared by several ops
        self.mode = mode  # None: the adapter's default mode (a layer is only given a mode it declares)
        pshape = spec.param_shape(self.shape)
        np_dtype = resolve(dtype)
        # Without affine parameters the layer behaves as γ = 1, β = 0.
        self.gamma = np.ones(pshape, np_dtype)
        self.beta = np.zeros(pshape, np_dtype)
        self.running_mean = np.zeros(pshape, np_dtype)
        self.running_var = np.ones(pshape, np_dtype)

    def set_params(self, gamma: np.ndarray, beta: np.ndarray | None) -> None:
        """Load γ and β (shape ``spec.param_shape``); only called when spec.affine. β is None
        for an op without one (RMSNorm)."""
        self.gamma = gamma
        if beta is not None:
            self.beta = beta

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        """Load running statistics as the framework stores them (ops that keep them)."""
        self.running_mean, self.running_var = mean, var

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        """Running (mean, var) exactly as the framework stores them."""
        return self.running_mean, self.running_var

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        """Output of one call. A training-mode call updates running statistics where the layer keeps them."""
        raise NotImplementedError

    def timed(self, x: np.ndarray, mode: str, dy: np.ndarray | None = None) -> Timed:
        """A benchmark call of ``mode`` (see MODES) on ``x`` (and upstream gradient ``dy`` for
        forward_backward), converted to native tensors here, outside anything timed. One
        layer keeps its compiled functions across calls, so a new shape's retrace shows in
        ``traces``."""
        raise Unsupported(f"{type(self).__name__} has no benchmark path")

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        """(dx, dγ, dβ) of the training-mode output for upstream gradient dy.

        Running statistics afterwards are whatever the framework leaves; build a fresh
        layer before checking them.
        """
        raise NotImplementedError

    def jvp(self, x: np.ndarray, tx: np.ndarray, tgamma: np.ndarray | None, tbeta: np.ndarray | None,
            mask: np.ndarray | None = None) -> np.ndarray:
        """Forward-mode derivative of the training-mode output along the tangents of x, γ and β
        (tγ, tβ are None where the layer has no such parameter), by the framework's own
        forward-mode AD."""
        raise Unsupported(f"{type(self).__name__} has no forward-mode derivative")

    def second_order(self, x: np.ndarray, dy: np.ndarray, v: np.ndarray,
                     mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradients of ⟨dx, v⟩ with respect to x and γ, where dx is the layer's own VJP of dy
        (a gradient penalty, a Hessian-vector product): differentiate through the framework's
        backward pass, as users do (create_graph, grad of grad, nested tapes). γ's is None
        without affine parameters."""
        raise Unsupported(f"{type(self).__name__} has no second-order gradients")


Builder = Callable[[NormSpec, tuple[int, ...], str], Layer]


@dataclass(frozen=True)
class MixedPath:
    """A framework's mixed-precision path for one op: how users ask for it, and the dtype its
    documentation says the op's statistics and normalization are computed in (what the
    tolerance is derived for; the output may be rounded to the half-precision input's dtype)."""

    how: str  # e.g. "torch.autocast('cpu', dtype=torch.bfloat16)"
    compute: str  # "float32", or the half dtype where the path computes in it
    link: str  # where the path documents that


@dataclass
class ReplicaJob:
    """A synchronized BatchNorm to run across data-parallel replicas, as numpy arrays: replica r
    holds ``shards[r]`` (shards may differ in size along axis 0). Every replica starts from the
    same γ, β and running statistics; each of ``steps`` training steps is a forward and a
    backward pass on the same shards, and the job ends with an inference pass."""

    spec: NormSpec
    dtype: str
    shards: list[np.ndarray]
    dys: list[np.ndarray]  # upstream gradient of each replica's output
    masks: list[np.ndarray] | None  # per-replica position masks, where the case is masked
    gamma: np.ndarray | None
    beta: np.ndarray | None
    running_mean: np.ndarray
    running_var: np.ndarray
    steps: int = 3
    # Devices to split a host into, where a framework fixes their number once per process: the most
    # replicas any case of the run uses (0: this job's own), so a later, larger job still finds them.
    host_devices: int = 0

    @property
    def replicas(self) -> int:
        return len(self.shards)


@dataclass
class ReplicaRun:
    """What a synchronized BatchNorm did across its replicas, as numpy arrays."""

    y: list[np.ndarray]  # training-mode output of the first step, per replica
    dx: list[np.ndarray] | None  # gradient of Σ_r ⟨y_r, dy_r⟩ (first step), per replica
    dgamma: np.ndarray | None  # summed over replicas by the framework's own reduction
    dbeta: np.ndarray | None
    running_mean: np.ndarray  # after every step, as replica 0 stores it
    running_var: np.ndarray
    y_eval: list[np.ndarray] | None  # inference after the steps, per replica
    facts: dict[str, Any]  # how it ran: the engine, its devices, how uneven shards were passed


class Refused(Unsupported):
    """The framework refuses synchronized BatchNorm here (a measured behaviour, not a gap of the
    adapter); ``facts`` holds what was measured around the refusal, ``fallbacks`` the documented
    fallbacks checked (name -> held)."""

    def __init__(self, message: str, facts: dict[str, Any] | None = None,
                 fallbacks: dict[str, bool] | None = None) -> None:
        super().__init__(message)
        self.facts, self.fallbacks = facts or {}, fallbacks or {}


def builder(layer: type[Layer], native: Callable[[NormSpec, tuple[int, ...], str], Any]) -> Builder:
    """A builder of ``layer`` around the framework object ``native(spec, shape, dtype)`` makes:
    one Layer class can serve every op whose framework objects are called alike."""
    return functools.partial(layer, native=native)


class Adapter:
    """Describes one framework API path and builds its layers.

    ``builders`` maps each op the adapter wraps to what builds its layer (a Layer subclass, or
    ``builder(Layer, native)``); an adapter's ops *are* those keys, so an op it does not wrap is
    a skip with the reason, never a layer of another op. The framework itself is imported only
    inside the layer, so importing an adapter module is free.
    """

    name: ClassVar[str]
    builders: ClassVar[Mapping[str, Builder]] = {}
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules the layer needs
    extra: ClassVar[str | None] = None  # pip extra that installs them
    dtypes: ClassVar[frozenset[str]] = frozenset(DTYPES)
    layouts: ClassVar[frozenset[str]] = frozenset(LAYOUTS)
    features: ClassVar[frozenset[str]] = frozenset(FEATURES)
    version_of: ClassVar[str | None] = None  # distribution whose version is reported
    # How the framework's own momentum reads: "new" = weight of the batch statistic (torch),
    # "old" = weight of the running value (Keras, Flax, ONNX). The train_eval suite measures it.
    momentum_convention: ClassVar[str] = "new"
    # Which running variance the layer stores: "biased" (population), "unbiased" (Bessel-corrected,
    # torch), or None (not declared: only measured). A declaration is a promise the checks hold
    # the layer to: storing the other one is a failure.
    running_var: ClassVar[str | None] = None
    ref: str | None = None  # the name or module:Class it was selected by (set by the registry)
    # `normbench run` starts one process per group (default: the adapter's own name), so a
    # framework that crashes or hangs takes only its group down; ``environment`` is set in
    # that process before anything is imported (e.g. KERAS_BACKEND).
    group: ClassVar[str | None] = None
    environment: ClassVar[dict[str, str]] = {}
    # The BatchNorm layout its users run (benchmarks time that one): torch and ONNX are
    # channels-first, Keras and Flax channels-last.
    preferred_layout: ClassVar[str] = "channels_first"
    # How users run its layers: the first is the default; see Mode. An adapter in another mode is
    # a copy named ``<name>+<mode>`` (``in_mode``), whose layers are built with that mode.
    modes: ClassVar[tuple[Mode, ...]] = (DEFAULT_MODE,)
    mode: Mode | None = None  # set on a copy by ``in_mode``; None is the default mode
    # Specifications the adapter implements, as ``SEMANTICS`` names them (``("onnx",)``: it runs ONNX
    # operators as their spec defines them): a known divergence of a spec applies to every adapter that
    # declares it, within the same envelope. Records carry the declaration.
    semantics: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def every_mode(cls) -> tuple[str, ...]:
        """The adapter's name in each of its modes, the default first: what a known divergence of its layer
        code names where every mode runs that code."""
        return tuple(cls.name if i == 0 else f"{cls.name}+{m.name}" for i, m in enumerate(cls.modes))

    @property
    def base_name(self) -> str:
        """The adapter's own name, without its mode."""
        return type(self).name if self.mode is not None else self.name

    def mode_named(self, name: str) -> Mode:
        """The mode called ``name``; an unknown one is refused naming the adapter's modes."""
        for mode in self.modes:
            if mode.name == name:
                return mode
        raise LookupError(f"{self.base_name} has no mode {name!r}; its modes: "
                          f"{', '.join(m.name for m in self.modes)} (the first is its default)")

    def in_mode(self, name: str) -> Adapter:
        """This adapter in mode ``name``: itself for the default mode, else a copy named ``<name>+<mode>``."""
        mode = self.mode_named(name)
        if mode is self.modes[0]:
            return self
        moded = copy.copy(self)
        moded.mode, moded.name = mode, f"{self.base_name}+{mode.name}"
        moded.ref = f"{self.ref or self.base_name}+{mode.name}"
        moded.group = f"{self.group or self.base_name}+{mode.name}"
        return moded

    def install_hint(self) -> str:
        if self.extra:
            return f"pip install 'normbench[{self.extra}]'"
        return f"pip install {' '.join(self.requires)}"

    def missing(self) -> list[str]:
        """Required modules that are not importable, found without importing them."""
        out = []
        for mod in self.requires:
            try:
                if importlib.util.find_spec(mod) is None:
                    out.append(mod)
            except (ImportError, ValueError):
                out.append(mod)
        return out

    def ensure_available(self) -> None:
        """Import the framework; raise NotInstalled with the install hint if it is missing."""
        missing = self.missing()
        if missing:
            raise NotInstalled(f"{self.name}: not installed ({', '.join(missing)}): {self.install_hint()}")
        for mod in self.requires:
            try:
                importlib.import_module(mod)
            except Exception as exc:  # installed but broken: every check of this adapter errors
                raise ImportFailed(f"{self.name}: {mod} is installed but importing it failed "
                                   f"({type(exc).__name__}: {exc})") from exc
        threads.apply()

    def version(self) -> str:
        dist = self.version_of or (self.requires[0] if self.requires else None)
        if dist is None:
            return __version__
        return _dist_version(dist)

    @property
    def ops(self) -> frozenset[str]:
        return frozenset(self.builders)

    def defaults(self, op: str) -> dict[str, Any]:
        """What a default-constructed layer of ``op`` does: eps, momentum in the native
        convention where it keeps running statistics, and facts such as whether it is affine."""
        raise Unsupported(f"{self.name} does not report its defaults")

    def unsupported(
        self, spec: NormSpec, shape: tuple[int, ...], dtype: str, features: tuple[str, ...] = ()
    ) -> str | None:
        """Why this adapter cannot run the combination (with ``features``), or None if it can."""
        if spec.op not in self.builders:
            wraps = ", ".join(sorted(self.builders)) or "no op"
            return f"{self.name} does not build {spec.op} (it builds {wraps})"
        if dtype not in self.dtypes:
            return f"{self.name} does not support {dtype} (supports {', '.join(sorted(self.dtypes))})"
        if spec.layout_of(shape) not in (None, *self.layouts):
            return f"{self.name} does not support the {spec.layout} layout"
        for feature in features:
            if feature not in self.features:
                return f"{self.name} does not support {feature}"
            why = dict(self.mode.lacks).get(feature) if self.mode is not None else None
            if why:
                return f"{self.name} does not support {feature}: {why}"
        if self.mode is not None and (why := self.mode.missing()):
            return f"{self.name}: {self.mode.how} {why}"
        if spec.precision == "mixed" and self.mixed_precision(spec, dtype) is None:
            return f"{self.name} has no mixed-precision path for {spec.op} on {dtype} inputs"
        return None

    def mixed_precision(self, spec: NormSpec, dtype: str) -> MixedPath | None:
        """The framework's mixed-precision path for ``spec.op`` on ``dtype`` (half-precision) inputs
        with float32 parameters, or None where it has none. Layers built for a spec with
        ``precision="mixed"`` run on it."""
        return None

    def replicated(self, job: ReplicaJob) -> ReplicaRun:
        """Run ``job`` on the framework's own data-parallel engine (its devices, its collectives,
        its gradient reduction: never an all-reduce of ours standing in for theirs). Adapters
        whose framework has synchronized BatchNorm override ``replicate``."""
        spec = job.spec
        if spec.op != "batch_norm":
            raise Unsupported(f"synchronized statistics are BatchNorm's; {spec.op} never mixes samples")
        shape = (sum(len(x) for x in job.shards), *np.shape(job.shards[0])[1:])
        reason = self.unsupported(spec, shape, job.dtype, ("mask",) if job.masks is not None else ())
        if reason:
            raise Unsupported(reason)
        if self.mode is not None:
            raise Unsupported(f"{self.name}: synchronized BatchNorm runs on {self.base_name}'s own engine, in its "
                              "default mode")
        self.ensure_available()
        return self.replicate(job)

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        raise Unsupported(f"{self.name} has no synchronized BatchNorm")

    def build(
        self, spec: NormSpec, shape: tuple[int, ...], dtype: str, features: tuple[str, ...] = ()
    ) -> Layer:
        """A fresh layer of ``spec.op`` from its builder, with default parameters (γ=1, β=0,
        running mean 0, var 1).

        Raises Unsupported (a skip) for combinations the adapter declares it cannot run,
        NotInstalled if its framework is missing, ValueError for an invalid shape or dtype.
        """
        resolve(dtype)
        spec.check_shape(shape)
        reason = self.unsupported(spec, shape, dtype, tuple(features))
        if reason:
            raise Unsupported(reason)
        self.ensure_available()
        if self.mode is None:  # a third party's Layer need not take a mode it never declared
            return self.builders[spec.op](spec, tuple(shape), dtype)
        return self.builders[spec.op](spec, tuple(shape), dtype, mode=self.mode)
