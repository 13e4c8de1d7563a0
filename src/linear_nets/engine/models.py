"""Linear models, each in two forms: written by hand and built from ``torch.nn``.

All four start from the tutorials' initialisation, weights ~ N(0, 0.01) and zero bias,
drawn from a seeded generator in the same order, so a ``scratch`` model and its
``linear`` twin built with the same seed hold identical values.
"""

from __future__ import annotations

import torch
from torch import nn

INIT_STD = 0.01


def _normal(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.normal(0.0, INIT_STD, shape, generator=generator)


class LinearRegressionScratch(nn.Module):
    """y = X w + b with hand-made parameters ``w`` (d, 1) and ``b`` (1,)."""

    scratch = True

    def __init__(self, n_features: int, seed: int = 0) -> None:
        super().__init__()
        self.w = nn.Parameter(_normal((n_features,), seed).reshape(n_features, 1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return (X @ self.w + self.b).squeeze(-1)

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights as a (d,) tensor and the bias as a scalar tensor."""
        return self.w.detach().squeeze(-1), self.b.detach().squeeze()


class LinearRegression(nn.Module):
    """The same model through ``nn.Linear(d, 1)``."""

    scratch = False

    def __init__(self, n_features: int, seed: int = 0) -> None:
        super().__init__()
        self.net = nn.Linear(n_features, 1)
        with torch.no_grad():
            self.net.weight.copy_(_normal((n_features,), seed).reshape(1, n_features))
            self.net.bias.zero_()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X).squeeze(-1)

    def affine(self) -> nn.Linear:
        """The layer this model is: its outputs are the layer's on the inputs as rows."""
        return self.net

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights as a (d,) tensor and the bias as a scalar tensor."""
        return self.net.weight.detach().squeeze(0), self.net.bias.detach().squeeze()


class SoftmaxRegressionScratch(nn.Module):
    """Logits X W + b with hand-made ``W`` (d, k) and ``b`` (k,); inputs are flattened."""

    scratch = True

    def __init__(self, n_features: int, n_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.W = nn.Parameter(
            _normal((n_features * n_classes,), seed).reshape(n_classes, n_features).T.contiguous()
        )
        self.b = nn.Parameter(torch.zeros(n_classes))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X.reshape(X.shape[0], -1) @ self.W + self.b

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights as a (d, k) tensor and the biases as a (k,) tensor."""
        return self.W.detach(), self.b.detach()


class SoftmaxRegression(nn.Module):
    """``nn.Flatten`` + ``nn.Linear(d, k)``; pair it with ``CrossEntropyLoss`` on the logits."""

    scratch = False

    def __init__(self, n_features: int, n_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_features, n_classes))
        linear = self.net[1]
        with torch.no_grad():
            linear.weight.copy_(
                _normal((n_features * n_classes,), seed).reshape(n_classes, n_features)
            )
            linear.bias.zero_()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)

    def affine(self) -> nn.Linear:
        """The layer this model is: its outputs are the layer's on the inputs as rows."""
        return self.net[1]

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights as a (d, k) tensor and the biases as a (k,) tensor."""
        linear = self.net[1]
        return linear.weight.detach().T, linear.bias.detach()


MODELS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "scratch": (LinearRegressionScratch, SoftmaxRegressionScratch),
    "linear": (LinearRegression, SoftmaxRegression),
}
"""The one list of model kinds, each as (regression class, softmax classifier class);
``ModelConfig.kind`` reads its names."""


def build_model(
    kind: str, n_features: int, n_outputs: int | None = None, seed: int = 0
) -> nn.Module:
    """Build a regression model (``n_outputs`` None) or a softmax classifier.

    Args:
        kind: ``scratch`` (hand-made tensors) or ``linear`` (``torch.nn`` modules).
        n_features: number of input features (pixels for images).
        n_outputs: number of classes, or None for a single regression output.
        seed: seed of the N(0, 0.01) weight initialisation.
    """
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}: expected one of {sorted(MODELS)}")
    regression, softmax = MODELS[kind]
    if n_outputs is None:
        return regression(n_features, seed=seed)
    return softmax(n_features, n_outputs, seed=seed)


def _shape_of(state_dict: dict[str, torch.Tensor]) -> tuple[str, int, int | None]:
    """The kind, the number of features and of classes (None: regression) a state_dict holds."""
    keys = state_dict.keys()
    if {"w", "b"} <= keys:  # LinearRegressionScratch: w (d, 1), b (1,)
        return "scratch", state_dict["w"].shape[0], None
    if {"W", "b"} <= keys:  # SoftmaxRegressionScratch: W (d, k)
        d, k = state_dict["W"].shape
        return "scratch", d, k
    if {"net.weight", "net.bias"} <= keys:  # LinearRegression: nn.Linear(d, 1)
        return "linear", state_dict["net.weight"].shape[1], None
    if {"net.1.weight", "net.1.bias"} <= keys:  # SoftmaxRegression: Flatten, Linear(d, k)
        k, d = state_dict["net.1.weight"].shape
        return "linear", d, k
    raise ValueError(
        f"not a linear regression state_dict nor a softmax regression one: keys "
        f"{sorted(keys)}; expected w, b or W, b (scratch), net.weight, net.bias or "
        "net.1.weight, net.1.bias (linear)"
    )


def model_from_state_dict(state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Rebuild the model a ``state_dict`` came from (regression or softmax), in eval mode.

    The keys tell the kind apart, the weight's shape gives the features and classes and its
    dtype the model's (float64 from ``lstsq`` and ``lbfgs``, float32 otherwise), so
    this is the one way every pipeline and the serving code turn saved parameters into a model.
    """
    kind, n_features, n_classes = _shape_of(state_dict)
    model = build_model(kind, n_features, n_outputs=n_classes)
    dtype = next(iter(state_dict.values())).dtype  # float64 from the exact solvers: kept
    model.to(dtype).load_state_dict(state_dict)
    return model.eval()
