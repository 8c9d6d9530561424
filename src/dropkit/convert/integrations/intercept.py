"""torch's dropout functions, called while a converted model runs, go through dropkit.

`install(model)` (done by dropkit.replace_dropout) puts a forward pre-hook and a
forward hook on every submodule. They keep the stack of modules whose forward is
running; the outermost one enters an `Interceptor`, a TorchFunctionMode that sends
`F.dropout`, `F.dropout1d/2d/3d`, `F.alpha_dropout`, `F.feature_alpha_dropout`,
`torch.dropout` (and its siblings) and `F.scaled_dot_product_attention` to
dropkit.functional with the same rate and `training` semantics. A checkpointed
module's recompute enters it again, so the recompute draws the masks the forward
drew. Every other torch call passes straight through.

Each call has an address: the qualified name of the innermost module whose forward
is running and the call's index within that forward. `trace` runs one training
forward and records each address as a `Site`: its rate and the attribute it reads
the rate from, found by giving each candidate attribute (a number equal to the
rate, on the module, its children's `.p` or its config) a distinct value in a
second forward. set_dropout sets those attributes (or the rate of a site that has
none); inside dropkit.mc_dropout a call runs at its site's training rate, also
where the model passes 0 outside training.

Example:
    >>> import torch
    >>> class Net(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin, self.rate = torch.nn.Linear(4, 4), 0.25
    ...     def forward(self, x):
    ...         return torch.nn.functional.dropout(self.lin(x), self.rate, self.training)
    >>> net = Net()
    >>> it = install(net)
    >>> trace(net, torch.ones(2, 4))
    [Site(name='', index=0, op='dropout', kind='functional', rate=0.25, holder='rate')]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Iterator
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

from ... import _mode
from ... import functional as DF

__all__ = ["Site", "Interceptor", "Example", "install", "interceptor", "remove", "trace", "call_rate"]

# What trace runs the model on: one input, a tuple of positional arguments or a dict of keyword arguments.
Example = Tensor | tuple[Any, ...] | dict[str, Any]

# The interceptors whose mode is entered, innermost last; dropkit's own attention glue reads the top one.
_RUNNING: list[Interceptor] = []


@dataclasses.dataclass
class Site:
    """One dropout call site of a model: where it is, what it calls, its training rate and where it keeps it.

    Attributes:
        name: qualified name of the module whose forward makes the call ("" for the root).
        index: the call's index among the dropout calls of that forward.
        op: the torch function called ("dropout", "scaled_dot_product_attention", ...), or
            "attention" for the attention function dropkit's glue runs.
        kind: "functional" or "attention".
        rate: the rate the call had in the traced training forward.
        holder: the attribute the rate is read from, relative to the module ("attention_dropout",
            "dropout.p", "config.attention_dropout"), or None where the trace found none.
    """

    name: str
    index: int
    op: str
    kind: str
    rate: float
    holder: str | None = None


class Interceptor(TorchFunctionMode):
    """The mode that runs torch's dropout calls on dropkit, and what it knows of the model's call sites.

    Attributes:
        sites: the sites `trace` recorded, by (module name, call index).
        overrides: rates set_dropout gave sites that read their rate from no attribute.
    """

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[list[Any]] = []  # [name, calls so far, module] per running forward
        self.sites: dict[tuple[str, int], Site] = {}
        self.holders: dict[tuple[str, int], tuple[object, str]] = {}
        self.overrides: dict[tuple[str, int], float] = {}
        self.recording: dict[tuple[str, int], tuple[str, str, float]] | None = None
        self.ran: set[str] = set()  # the modules whose forward ran while recording
        self.torch: dict[str, str] = {}  # dropout the traced forward saw stay torch's: {module name: why}
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def enter_module(self, name: str, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        # Entered in training and inside mc_dropout only: in eval every dropout is the identity
        # anyway, and torch's fused eval fast paths (nn.MultiheadAttention) stay on.
        if not self.frames and (module.training or _mode.mc_active()):
            self.__enter__()  # type: ignore[no-untyped-call]  # torch leaves TorchFunctionMode.__enter__ unannotated
            _RUNNING.append(self)
        self.frames.append([name, 0, module])
        if self.recording is not None:
            self.ran.add(name)

    def exit_module(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.frames.pop()
        if not self.frames and _RUNNING and _RUNNING[-1] is self:
            _RUNNING.pop()
            self.__exit__(None, None, None)  # type: ignore[no-untyped-call]  # unannotated in torch too

    def call(self, op: str, kind: str, p: float, training: bool) -> float:
        """Address the current call and return the rate it runs at (see the module docstring)."""
        frame = self.frames[-1]
        key = (frame[0], frame[1])
        frame[1] += 1
        if self.recording is not None:
            self.recording.setdefault(key, (op, kind, p))
        if _mode.mc_active():
            return self.site_rate(key, p)
        if training and key in self.overrides:
            return self.overrides[key]
        return p

    def site_rate(self, key: tuple[str, int], p: float) -> float:
        """The training rate of site `key`: its holder's value now, else its override or traced rate, else `p`."""
        if key in self.holders:
            obj, attr = self.holders[key]
            return float(getattr(obj, attr))
        if key in self.overrides:
            return self.overrides[key]
        site = self.sites.get(key)
        return p if site is None else site.rate

    def set_rate(self, p: float) -> list[str]:
        """Give every traced site rate `p` (its holder, or an override); returns what was set."""
        changed = []
        for key, site in self.sites.items():
            if key in self.holders:
                obj, attr = self.holders[key]
                setattr(obj, attr, p)
                changed.append(_join(site.name, site.holder))
            else:
                self.overrides[key] = p
                changed.append(f"{_join(site.name, site.op)}[{site.index}]")
        return list(dict.fromkeys(changed))

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        route = _ROUTES.get(func)
        if route is not None:
            return route(self, *args, **kwargs)
        return func(*args, **kwargs)


def _join(name: str, attr: str | None) -> str:
    return f"{name}.{attr}" if name else str(attr)


def _dropout(it: Interceptor, input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return DF.dropout(input, it.call("dropout", "functional", p, training), training, inplace)


def _channel(
    fn: Callable[..., Tensor],
    op: str,
    it: Interceptor,
    input: Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
) -> Tensor:
    return fn(input, it.call(op, "functional", p, training), training, inplace)


def _alpha(
    fn: Callable[..., Tensor],
    op: str,
    it: Interceptor,
    input: Tensor,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    return fn(input, it.call(op, "functional", p, training), training, inplace)


def _torch_dropout(
    fn: Callable[..., Tensor], op: str, inplace: bool, it: Interceptor, input: Tensor, p: float, train: bool
) -> Tensor:
    return fn(input, it.call(op, "functional", p, train), train, inplace)


_FEATURE = {3: DF.dropout1d, 4: DF.dropout2d, 5: DF.dropout3d}


def _feature_dropout(inplace: bool, it: Interceptor, input: Tensor, p: float, train: bool) -> Tensor:
    # torch.feature_dropout is what F.dropout1d/2d/3d call on (N, C, ...) input: one draw per (sample, channel).
    fn = _FEATURE.get(input.dim())
    if fn is None:
        raise ValueError(
            f"torch.feature_dropout under dropkit takes 3-D to 5-D input (N, C, ...), got shape {tuple(input.shape)}"
        )
    return fn(input, it.call("feature_dropout", "functional", p, train), train, inplace)


def _sdpa(
    it: Interceptor,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    # torch's SDPA drops whenever dropout_p > 0; models pass 0 outside training, so the module's mode is the training flag.
    p = it.call("scaled_dot_product_attention", "attention", dropout_p, it.frames[-1][2].training)
    if p == 0.0:
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask, 0.0, is_causal, scale=scale, enable_gqa=enable_gqa
        )
    return DF.scaled_dot_product_attention(query, key, value, attn_mask, p, is_causal, scale, enable_gqa, training=True)


def _seen(
    why: Callable[[tuple[Any, ...], dict[str, Any], Any], bool],
    func: Callable[..., Any],
    it: Interceptor,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Run torch's `func`; while tracing, note the module that called it where it drops in a way dropkit cannot run."""
    out = func(*args, **kwargs)
    if it.recording is not None and why(args, kwargs, out):
        it.torch.setdefault(it.frames[-1][0], f"calls torch.{func.__name__}: {why.__doc__}")
    return out


def _mask_draw(args: tuple[Any, ...], kwargs: dict[str, Any], out: object) -> bool:
    """draws its own random mask (a dropout dropkit does not know)"""
    return isinstance(out, Tensor) and out.numel() > 1  # torch.rand([]) is LayerDrop's coin, not a mask


def _mha_dropout(args: tuple[Any, ...], kwargs: dict[str, Any], out: object) -> bool:
    """the attention dropout inside torch's multi_head_attention_forward, which the mode sees only as a whole"""
    p = args[10] if len(args) > 10 else kwargs.get("dropout_p", 0.0)
    # p and training are torch's float dropout_p and bool training arguments
    return cast(bool, p > 0 and (args[13] if len(args) > 13 else kwargs.get("training", True)))


_ROUTES: dict[Callable[..., Any], Callable[..., Any]] = {
    torch.rand: functools.partial(_seen, _mask_draw, torch.rand),
    torch.rand_like: functools.partial(_seen, _mask_draw, torch.rand_like),
    torch.bernoulli: functools.partial(_seen, _mask_draw, torch.bernoulli),
    Tensor.bernoulli_: functools.partial(_seen, _mask_draw, Tensor.bernoulli_),
    F.multi_head_attention_forward: functools.partial(_seen, _mha_dropout, F.multi_head_attention_forward),
    F.dropout: _dropout,
    F.dropout1d: functools.partial(_channel, DF.dropout1d, "dropout1d"),
    F.dropout2d: functools.partial(_channel, DF.dropout2d, "dropout2d"),
    F.dropout3d: functools.partial(_channel, DF.dropout3d, "dropout3d"),
    F.alpha_dropout: functools.partial(_alpha, DF.alpha_dropout, "alpha_dropout"),
    F.feature_alpha_dropout: functools.partial(_alpha, DF.feature_alpha_dropout, "feature_alpha_dropout"),
    torch.dropout: functools.partial(_torch_dropout, DF.dropout, "dropout", False),
    torch.dropout_: functools.partial(_torch_dropout, DF.dropout, "dropout", True),
    torch.alpha_dropout: functools.partial(_torch_dropout, DF.alpha_dropout, "alpha_dropout", False),
    torch.alpha_dropout_: functools.partial(_torch_dropout, DF.alpha_dropout, "alpha_dropout", True),
    torch.feature_alpha_dropout: functools.partial(
        _torch_dropout, DF.feature_alpha_dropout, "feature_alpha_dropout", False
    ),
    torch.feature_alpha_dropout_: functools.partial(
        _torch_dropout, DF.feature_alpha_dropout, "feature_alpha_dropout", True
    ),
    torch.feature_dropout: functools.partial(_feature_dropout, False),
    torch.feature_dropout_: functools.partial(_feature_dropout, True),
    F.scaled_dot_product_attention: _sdpa,
}


def call_rate(p: float, training: bool, op: str = "attention") -> float:
    """The rate a dropout call of dropkit's own glue runs at: addressed as a site of the running converted model.

    Outside a converted model's forward this is `p`.

    Examples:
        >>> call_rate(0.1, True)
        0.1
    """
    return _RUNNING[-1].call(op, "attention", p, training) if _RUNNING else p


def install(model: torch.nn.Module) -> Interceptor:
    """Intercept torch's dropout calls in every forward of `model`'s modules (idempotent); returns the interceptor."""
    existing = interceptor(model)
    if existing is not None:
        return existing
    it = Interceptor()
    for name, module in model.named_modules():
        it.handles.append(module.register_forward_pre_hook(functools.partial(it.enter_module, name)))
        it.handles.append(module.register_forward_hook(it.exit_module, always_call=True))
    model._dropkit_interceptor = it  # type: ignore[assignment]  # not a Module attribute torch knows of
    return it


def remove(model: torch.nn.Module) -> None:
    """Undo install(): torch's dropout calls in `model` run torch's again.

    Examples:
        >>> net = torch.nn.Linear(2, 2)
        >>> _ = install(net)
        >>> remove(net); interceptor(net) is None
        True
    """
    it = model.__dict__.pop("_dropkit_interceptor", None)
    for handle in [] if it is None else it.handles:
        handle.remove()


def interceptor(model: torch.nn.Module) -> Interceptor | None:
    """The interceptor install() put on `model`, or None."""
    return model.__dict__.get("_dropkit_interceptor")


def _run(model: torch.nn.Module, example: Example) -> None:
    if isinstance(example, dict):
        model(**example)
    elif isinstance(example, tuple):
        model(*example)
    else:
        model(example)


def _record(model: torch.nn.Module, it: Interceptor, example: Example) -> dict[tuple[str, int], tuple[str, str, float]]:
    """The calls of one training forward, with no gradient and no lasting effect on RNG, modes or buffers."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.clone()) for b in model.buffers()]
    it.recording = {}
    try:
        with torch.random.fork_rng(), torch.no_grad():
            model.train()
            _run(model, example)
        return it.recording
    finally:
        it.recording = None
        for m, training in modes:
            m.training = training
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


def _candidates(module: torch.nn.Module, rate: float) -> Iterator[tuple[object, str, str]]:
    """(object, attribute, path) of every float equal to `rate` that `module`'s forward could read it from."""
    places = [(module, "")] + [(child, f"{n}.") for n, child in module.named_children()]
    config = getattr(module, "config", None)
    if config is not None and not isinstance(config, torch.nn.Module):
        places.append((config, "config."))
    for obj, prefix in places:
        for attr, value in list(vars(obj).items()):
            if obj is not module and prefix != "config." and attr != "p":
                continue
            if type(value) is float and value == rate:
                yield obj, attr, prefix + attr


def trace(model: torch.nn.Module, example: Example) -> list[Site]:
    """Record `model`'s dropout sites from two training forwards on `example` (Tensor, tuple of args or dict of kwargs).

    Returns the sites, in call order; nothing of the model (modes, buffers, RNG) changes.
    """
    it = install(model)
    it.torch.clear()
    calls = _record(model, it, example)
    torch_kept = dict(it.torch)  # what the marked forward adds is an artefact of its marks
    modules = dict(model.named_modules())
    found: dict[tuple[str, int], list[tuple[object, str, str]]] = {
        key: list(_candidates(modules[key[0]], rate)) for key, (_, _, rate) in calls.items()
    }
    unique = {(id(obj), attr): (obj, attr) for cands in found.values() for obj, attr, _ in cands}
    saved = {k: getattr(obj, attr) for k, (obj, attr) in unique.items()}
    # A distinct value per candidate: what the call then receives names the attribute it reads.
    marks = {k: saved[k] + (i + 1) * 2**-24 * (1 if saved[k] < 0.5 else -1) for i, k in enumerate(unique)}
    try:
        for k, (obj, attr) in unique.items():
            setattr(obj, attr, marks[k])
        marked = _record(model, it, example) if unique else {}
    finally:
        for k, (obj, attr) in unique.items():
            setattr(obj, attr, saved[k])
        it.torch = torch_kept
    it.sites.clear()
    it.holders.clear()
    for key, (op, kind, rate) in calls.items():
        seen = marked.get(key, (None, None, None))[2]
        holder = next(((obj, attr, path) for obj, attr, path in found[key] if marks[(id(obj), attr)] == seen), None)
        it.sites[key] = Site(key[0], key[1], op, kind, float(rate), None if holder is None else holder[2])
        if holder is not None:
            it.holders[key] = holder[:2]
    return list(it.sites.values())
