"""The training step of a linear probe (frozen mode's head) without autograd, bit for bit the autograd step.

A frozen-mode cycle trains ``FeatureHead`` = [FastDropout(p) ->] Linear(D, C) on cached features with
cross-entropy and Adam, ~3,150 steps of a [128, 1280] batch per run. Autograd's graph, the optimizer's
wrappers and the dropout module cost more than the arithmetic at that size. :class:`LinearHeadStep` computes
the same step from the same ATen kernels, in the same order, with the same scalars:

- dropout: the head's own ``FastDropout`` forward (one seed from torch's default generator, PCG64's mask),
  outside autograd;
- forward: logits = ``F.linear(h, W, b)``, log-probabilities = ``log_softmax``, per-sample loss =
  ``nll_loss(reduction="none")`` (what ``F.cross_entropy`` runs), loss = mean;
- backward (as autograd's formulas): d per-sample = 1 / B (``MeanBackward``), ``nll_loss_backward``,
  ``_log_softmax_backward_data``; dW = dlogits^T @ h (``mm_mat2_backward`` for W.t(), column-major), db =
  dlogits summed over the batch (``sum_to``);
- ``torch.optim.Adam``'s single-tensor update (the CPU default) on the optimizer's own state (step, exp_avg,
  exp_avg_sq, created as Adam creates them), reading lr / betas / eps / weight_decay from each parameter's
  group at every step; ``param.grad`` is left holding the step's gradient, as after ``backward``.

:func:`unsupported` names what the step does not reproduce (anything but that model, loss and optimizer on
CPU in float32: clipping, an auxiliary loss, a scheduler, other optimizers or options, CUDA); the fit loop
(:func:`al_bench.plain_fit.plain_fit`) then takes autograd's step. ``tests/core/test_linear_step.py`` checks
the weights, optimizer state, losses and logits against autograd's bit for bit; ``scripts/bench_head_step.py``
times both side by side.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from al_bench.models.fast_dropout import FastDropout
from al_bench.models.feature_head import FeatureHead
from al_bench.module import ALModule

_REDUCTION_NONE = 0  # ATen's Reduction::None
_IGNORE_INDEX = -100  # F.cross_entropy's default
_ADAM_OFF = (
    "amsgrad",
    "maximize",
    "capturable",
    "differentiable",
    "decoupled_weight_decay",
    "foreach",
    "fused",
)


def unsupported(
    module: ALModule, optimizer: torch.optim.Optimizer, scheduler: Any, device: torch.device
) -> str:
    """Why :class:`LinearHeadStep` cannot take ``module``'s steps ("" when it can)."""
    net = getattr(module, "net", None)
    if type(module) is not ALModule or module.aux is not None:
        return "the module adds an auxiliary loss or is not ALModule"
    if module.gradient_clip_val:
        return "gradient clipping"
    if scheduler is not None:
        return "a learning-rate scheduler"
    if device.type != "cpu":
        return f"device {device.type} (the step reproduces the CPU kernels)"
    if type(net) is not FeatureHead or not isinstance(net.first, nn.Identity):
        return "the model is not a linear FeatureHead"
    if type(net.rest) not in (nn.Identity, FastDropout) or type(net.head) is not nn.Linear:
        return "the head's layers are not [FastDropout ->] nn.Linear"
    if net.head.bias is None or net.head.weight.dtype != torch.float32:
        return "the head has no bias or is not float32"
    if any(m._forward_hooks or m._forward_pre_hooks for m in net.modules()):
        return "the model has forward hooks"
    if type(optimizer) is not torch.optim.Adam:
        return f"optimizer {type(optimizer).__name__} (the step reproduces torch.optim.Adam)"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    head = [net.head.weight, net.head.bias]
    if len(params) != 2 or {id(p) for p in params} != {id(p) for p in head}:
        return "the optimizer's parameters are not exactly the head's weight and bias"
    for group in optimizer.param_groups:
        on = [k for k in _ADAM_OFF if group.get(k)]
        if on:
            return f"Adam option(s) {', '.join(on)}"
        values = (group["lr"], *group["betas"], group["eps"], group["weight_decay"])
        if any(isinstance(v, torch.Tensor) for v in values):
            return "tensor-valued Adam hyperparameters"
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return "the optimizer has step hooks"
    return ""


class LinearHeadStep:
    """``step(batch) -> (loss [], per-sample loss [B], logits [B, C])``: one training step of ``module``'s
    linear :class:`FeatureHead` with ``optimizer`` (Adam), equal bit for bit to autograd's
    ``loss_and_logits`` + ``zero_grad(set_to_none=True)`` + ``backward`` + ``optimizer.step()``.

    Build it only when :func:`unsupported` returns "". Batches are ``(x [B, D] float32, y [B], index [B])``.
    """

    def __init__(self, module: ALModule, optimizer: torch.optim.Optimizer) -> None:
        self.net: FeatureHead = module.net
        self.optimizer = optimizer
        self.weight, self.bias = self.net.head.weight, self.net.head.bias
        self.groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}

    def __call__(
        self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, _ = batch
        with torch.no_grad():
            weight, bias = self.weight.detach(), self.bias.detach()
            h = self.net.tail_features(self.net.trunk(x))  # [B, D] through the head's dropout, if any
            logits = F.linear(h, weight, bias)
            log_probs = torch.log_softmax(logits, 1)
            per_sample = F.nll_loss(log_probs, y, reduction="none")
            loss = per_sample.mean()
            # autograd's chain: MeanBackward -> NllLossBackward -> LogSoftmaxBackward -> AddmmBackward
            d_per_sample = torch.ones((), dtype=loss.dtype).expand(len(y)) / len(y)
            total_weight = torch.zeros((), dtype=log_probs.dtype)  # unused without reduction
            d_log_probs = torch.ops.aten.nll_loss_backward(
                d_per_sample, log_probs, y, None, _REDUCTION_NONE, _IGNORE_INDEX, total_weight
            )
            d_logits = torch.ops.aten._log_softmax_backward_data(d_log_probs, log_probs, 1, log_probs.dtype)
            d_weight = d_logits.t().mm(h)
            d_bias = d_logits.sum(0)
            self.weight.grad, self.bias.grad = d_weight, d_bias
            self._adam(self.weight, d_weight)
            self._adam(self.bias, d_bias)
        return loss, per_sample, logits

    def _adam(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """``torch.optim.adam._single_tensor_adam`` for one parameter (no amsgrad, maximize, capturable)."""
        group = self.groups[id(param)]
        state = self.optimizer.state[param]
        if len(state) == 0:  # as Adam._init_group
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        lr, (beta1, beta2), eps, weight_decay = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        param = param.detach()
        step_t += 1
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = step_t.item()
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-step_size)
