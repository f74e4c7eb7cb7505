"""Interval bound propagation (IBP; Gowal et al., 2018) through a small PyTorch network, for L∞ certificates.

Given a box ``[lower, upper]`` of inputs, every layer maps it to a box that contains all its outputs:
affine layers (Linear, Conv, eval-mode BatchNorm) in centre/radius form — ``W·mid + b ± |W|·rad`` — and
order-preserving layers (ReLU and other monotone activations, max/average pooling, flatten) by applying
them to both ends. A sample is certified at ε when the lower bound of its true logit exceeds the upper bound
of every other logit over the whole ε-box.

The network is read as a graph with ``torch.fx``, not as a list of its child modules: a custom ``forward``
(skip connections, a head called twice) is followed exactly as it runs, and any node this module has no rule
for — a layer type, a function, a method — is refused with an ``UnboundableLayerError`` naming it, never
skipped. Bounds are computed in float64 by default, so float32 rounding in the model cannot turn a margin
the network does not have into a certificate (this is not a floating-point-sound verifier; it narrows the gap).

auto_LiRPA (CROWN) was tried first: its last release (0.3) pins torch < 1.13 and imports
``numpy.lib.arraysetops``, removed in numpy 2, so it neither installs against torch 2.13 nor imports.
Imports torch and numpy only, so the GPU benchmark runs it on a bare machine.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlgate.core.errors import GateInputError

SHAPE_ARITHMETIC = (operator.getitem, operator.mul, operator.add, operator.sub, operator.floordiv)


class UnboundableLayerError(GateInputError):
    """The network has a layer, function or method interval propagation has no sound rule for."""


@dataclass(frozen=True)
class Box:
    lower: Any
    upper: Any

    def map(self, fn: Callable[[Any], Any], what: str) -> Box:
        """An order-preserving ``fn`` maps the box's ends to the ends of its image. One that maps an end above
        the other is order-reversing there (a negative divisor, a negative ELU alpha): its inverted box would
        carry a negative radius that cancels true ones downstream, so it is refused."""
        lower, upper = fn(self.lower.clone()), fn(self.upper.clone())
        if (lower > upper).any():
            raise UnboundableLayerError(f"{what} maps a lower end above its upper end: it is not order-preserving, "
                                        "and interval bounds through it would be unsound")
        return Box(lower, upper)

    def affine(self, with_bias: Callable[[Any], Any], abs_no_bias: Callable[[Any], Any]) -> Box:
        """``A·x + b`` over the box: centre through ``with_bias``, radius through ``|A|`` (``abs_no_bias``)."""
        mid, rad = (self.upper + self.lower) / 2, (self.upper - self.lower) / 2
        centre, spread = with_bias(mid), abs_no_bias(rad)
        return Box(centre - spread, centre + spread)


def _cast(tensor: Any, like: Any) -> Any:
    return None if tensor is None else tensor.to(dtype=like.dtype)


def _linear(module: Any, box: Box) -> Box:
    import torch.nn.functional as functional

    weight, bias = _cast(module.weight, box.lower), _cast(module.bias, box.lower)
    return box.affine(lambda t: functional.linear(t, weight, bias), lambda t: functional.linear(t, weight.abs()))


def _conv(module: Any, box: Box) -> Box:
    """Through the module's own padding (zeros, or copies of inputs, whose intervals are those inputs')."""
    weight, bias = _cast(module.weight, box.lower), _cast(module.bias, box.lower)
    return box.affine(lambda t: module._conv_forward(t, weight, bias),
                      lambda t: module._conv_forward(t, weight.abs(), None))


def _batch_norm(module: Any, box: Box) -> Box:
    if module.running_mean is None or module.running_var is None:
        raise UnboundableLayerError(f"{type(module).__name__} without running statistics normalises by the batch; "
                                    "its output depends on the other samples and has no per-sample bound")
    like = box.lower
    scale = 1 / (_cast(module.running_var, like) + module.eps).sqrt()
    if module.weight is not None:
        scale = scale * _cast(module.weight, like)
    shift = -_cast(module.running_mean, like) * scale
    if module.bias is not None:
        shift = shift + _cast(module.bias, like)
    shape = (1, -1, *([1] * (like.dim() - 2)))
    scale, shift = scale.view(shape), shift.view(shape)
    return box.affine(lambda t: t * scale + shift, lambda t: t * scale.abs())


def _monotone(module: Any, box: Box) -> Box:
    if (getattr(module, "divisor_override", None) or 0) < 0:
        raise UnboundableLayerError(f"{type(module).__name__} with divisor_override {module.divisor_override} "
                                    "reverses order")
    return box.map(module, type(module).__name__)


def _leaky_relu(module: Any, box: Box) -> Box:
    if module.negative_slope < 0:
        raise UnboundableLayerError(f"LeakyReLU with negative slope {module.negative_slope} is not monotone")
    return box.map(module, "LeakyReLU")


def _elu(module: Any, box: Box) -> Box:
    """Negative alpha makes ELU decreasing below 0, so a box across 0 would also miss its minimum at 0."""
    if module.alpha < 0:
        raise UnboundableLayerError(f"ELU with negative alpha {module.alpha} is not monotone")
    return box.map(module, "ELU")


def _max_pool(module: Any, box: Box) -> Box:
    if module.return_indices:
        raise UnboundableLayerError(f"{type(module).__name__}(return_indices=True) returns indices, not values")
    return box.map(module, type(module).__name__)


def _module_rules() -> dict[type, Callable[[Any, Box], Box]]:
    from torch import nn

    monotone = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.AvgPool1d, nn.AvgPool2d,
                nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)
    return {nn.Linear: _linear, nn.Conv1d: _conv, nn.Conv2d: _conv, nn.BatchNorm1d: _batch_norm,
            nn.BatchNorm2d: _batch_norm, nn.LeakyReLU: _leaky_relu, nn.ELU: _elu,
            nn.MaxPool1d: _max_pool, nn.MaxPool2d: _max_pool,
            nn.AdaptiveMaxPool1d: _max_pool, nn.AdaptiveMaxPool2d: _max_pool,
            **dict.fromkeys(monotone, _monotone)}


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, Box) and isinstance(b, Box):
        return Box(a.lower + b.lower, a.upper + b.upper)
    box, constant = (a, b) if isinstance(a, Box) else (b, a)
    return Box(box.lower + constant, box.upper + constant)


def _sub(a: Any, b: Any) -> Any:
    if isinstance(a, Box) and isinstance(b, Box):
        return Box(a.lower - b.upper, a.upper - b.lower)
    if isinstance(a, Box):
        return Box(a.lower - b, a.upper - b)
    return Box(a - b.upper, a - b.lower)


def _scale(a: Any, b: Any) -> Any:
    box, factor = (a, b) if isinstance(a, Box) else (b, a)
    if isinstance(factor, Box) or not isinstance(factor, int | float):
        raise UnboundableLayerError("multiplication by anything but a Python number constant")
    ends = (box.lower * factor, box.upper * factor)
    return Box(*ends) if factor >= 0 else Box(*ends[::-1])


def _function_rules() -> dict[Any, Callable[..., Any]]:
    """Functions and tensor methods: elementwise-monotone ones in their first argument, and arithmetic."""
    import torch
    import torch.nn.functional as functional

    monotone = (torch.flatten, torch.relu, functional.relu, torch.sigmoid, torch.tanh, functional.max_pool2d,
                functional.avg_pool2d, functional.adaptive_avg_pool2d, "flatten", "view", "reshape", "relu",
                "sigmoid", "tanh", "contiguous", "squeeze", "unsqueeze")
    rules: dict[Any, Callable[..., Any]] = {name: _apply_monotone(name) for name in monotone}
    rules.update({operator.add: _add, torch.add: _add, "add": _add, operator.sub: _sub, operator.mul: _scale,
                  "size": _shape_query("size"), "dim": _shape_query("dim"),
                  getattr: lambda box, name: getattr(box.lower, name) if name in ("shape", "ndim") else _refuse(name)})
    return rules


def _apply_monotone(target: Any) -> Callable[..., Any]:
    def rule(box: Any, *args: Any, **kwargs: Any) -> Box:
        if not isinstance(box, Box) or any(isinstance(a, Box) for a in (*args, *kwargs.values())):
            raise UnboundableLayerError(f"{_name(target)} on more than one bounded input")
        call = (lambda t: getattr(t, target)(*args, **kwargs)) if isinstance(target, str) \
            else (lambda t: target(t, *args, **kwargs))
        return box.map(call, _name(target))

    return rule


def _shape_query(method: str) -> Callable[..., Any]:
    return lambda box, *args: getattr(box.lower, method)(*args)


def _refuse(name: str) -> Any:
    raise UnboundableLayerError(f"attribute {name!r} of a bounded tensor")


def _name(target: Any) -> str:
    return target if isinstance(target, str) else getattr(target, "__qualname__", repr(target))


CALL_OVERRIDES = ("forward", "_call_impl", "_wrapped_call_impl")


def _refuse_hidden_calls(model: Any) -> None:
    """The trace reads each layer's type and the graph, not what runs when it is called: a forward hook, or a
    ``forward`` replaced on an instance, computes something the bound rules never see — and can agree with the
    bound on the data points themselves (the check of the clean output), diverging only around them."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        raise UnboundableLayerError("global forward hooks are registered in this process; they change every "
                                    "layer's output outside the traced graph")
    for name, sub in model.named_modules():
        where = f"layer {name!r} ({type(sub).__qualname__})" if name else f"the network ({type(sub).__qualname__})"
        if sub._forward_hooks or sub._forward_pre_hooks:
            raise UnboundableLayerError(f"{where} has forward hooks; they change its output outside the traced graph")
        overridden = [attr for attr in CALL_OVERRIDES if attr in vars(sub)]
        if overridden:
            raise UnboundableLayerError(f"{where} has {overridden[0]} replaced on the instance; the traced graph "
                                        "does not follow it")


def trace(model: Any) -> Any:
    """The model as a ``torch.fx`` graph; a network fx cannot follow (data-dependent control flow) is refused,
    and so is one whose layers run hooks or replaced ``forward`` methods the graph does not show."""
    import torch.fx

    _refuse_hidden_calls(model)

    try:
        return torch.fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means no graph to bound
        raise UnboundableLayerError(f"cannot trace {type(model).__name__} with torch.fx ({type(exc).__name__}: "
                                    f"{str(exc)[:200]}); interval bounds need a static graph") from None


def propagate(graph: Any, lower: Any, upper: Any) -> Box:
    """Bounds of the traced network's output over the input box ``[lower, upper]`` (a batch)."""
    from torch.fx.node import map_arg

    modules, module_rules, function_rules = dict(graph.named_modules()), _module_rules(), _function_rules()
    env: dict[Any, Any] = {}
    inputs = [node for node in graph.graph.nodes if node.op == "placeholder"]
    if len(inputs) != 1:
        raise UnboundableLayerError(f"the network takes {len(inputs)} inputs; interval bounds need exactly one")
    for node in graph.graph.nodes:
        args, kwargs = map_arg((node.args, node.kwargs), lambda n: env[n])
        if node.op == "placeholder":
            env[node] = Box(lower, upper)
        elif node.op == "call_module":
            module = modules[node.target]
            rule = module_rules.get(type(module))
            if rule is None:
                raise UnboundableLayerError(f"layer {node.target!r} ({type(module).__module__}."
                                            f"{type(module).__qualname__}) has no interval bound rule")
            if len(args) != 1 or kwargs or not isinstance(args[0], Box):
                raise UnboundableLayerError(f"layer {node.target!r} called with other than one bounded input")
            env[node] = rule(module, args[0])
        elif node.target in SHAPE_ARITHMETIC and not any(isinstance(a, Box) for a in (*args, *kwargs.values())):
            env[node] = node.target(*args, **kwargs)  # sizes and indices of shapes: plain numbers
        elif node.op in ("call_function", "call_method"):
            rule = function_rules.get(node.target)
            if rule is None:
                raise UnboundableLayerError(f"{node.op.replace('_', ' ')} {_name(node.target)!r} (node "
                                            f"{node.name!r}) has no interval bound rule")
            env[node] = rule(*args, **kwargs)
        elif node.op == "get_attr":
            raise UnboundableLayerError(f"tensor {node.target!r} is used by a bare operation, not inside a layer "
                                        "with a bound rule (a functional call, or a torch.export graph: certify "
                                        "those with 'l2')")
        elif node.op == "output":
            if not isinstance(args[0], Box):
                raise UnboundableLayerError("the network's output is not a single tensor of its input")
            return args[0]
        else:
            raise UnboundableLayerError(f"graph node {node.name!r} ({node.op} {node.target!r}) has no bound rule")
    raise UnboundableLayerError("the traced graph has no output")


def worst_margin(box: Box, y: Any) -> Any:
    """Lower bound of the true logit minus the largest upper bound of any other logit, per sample: a sample
    is certified when it is positive."""
    import torch

    rows = torch.arange(len(y), device=y.device)
    others = box.upper.clone()
    others[rows, y] = -torch.inf
    return box.lower[rows, y] - others.amax(dim=1)


def interval_bounds(model: Any, lower: Any, upper: Any, *, dtype: Any = None) -> Box:
    """Output bounds of ``model`` over the input box, in ``dtype`` (default float64)."""
    import torch

    dtype = dtype or torch.float64
    return propagate(trace(model), lower.to(dtype), upper.to(dtype))
