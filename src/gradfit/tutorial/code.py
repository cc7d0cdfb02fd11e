"""The plain PyTorch program of a tutorial run, in the tutorial's own style.

:func:`pytorch_program` writes the program that ``gradfit demo --show-code`` prints and the
playground's code panel shows: the tutorial's data (``init.uniform_``, ``init.normal_``), points the
learner added or moved, ``nn.Linear(1, 1)``, the loss, ``torch.optim``'s optimizer and the
``zero_grad / backward / step`` loop. Run as it is, it prints the ``w, b`` that gradfit's solver
reached on the same settings (``tests/test_playground_engine.py`` runs it and compares).
"""
from __future__ import annotations

from dataclasses import dataclass, field

LOSS_CODE = {
    "l1": "loss_func = nn.L1Loss()",
    "l2": "loss_func = nn.MSELoss()",
    "huber": "loss_func = nn.HuberLoss(delta={delta!r})",
    "quantile": ("def loss_func(output, target):  # the quantile (pinball) loss at tau = {tau!r}\n"
                 "    r = target - output\n"
                 "    return torch.mean(torch.maximum({tau!r} * r, ({tau!r} - 1) * r))"),
}
OPTIMIZER_CODE = {
    "sgd": "optim.SGD(model.parameters(), lr={lr!r})",
    "gd": "optim.SGD(model.parameters(), lr={lr!r})",
    "momentum": "optim.SGD(model.parameters(), lr={lr!r}, momentum=0.9)",
    "nesterov": "optim.SGD(model.parameters(), lr={lr!r}, momentum=0.9, nesterov=True)",
    "adam": "optim.Adam(model.parameters(), lr={lr!r})",
}
LOSSES = tuple(LOSS_CODE)
OPTIMIZERS = tuple(OPTIMIZER_CODE)


@dataclass
class RunSettings:
    """One tutorial run: the data (``n`` points, ``noise``, random ``seed``, then ``moved`` and
    ``added`` points), the model's start (None: nn.Linear's initialisation) and the training."""

    n: int = 1000
    noise: float = 1.0
    seed: int = 0
    loss: str = "l1"
    optimizer: str = "sgd"
    lr: float = 0.001
    epochs: int = 500
    batch_size: int | None = None
    standardize: bool = False
    start: tuple[float, float] | None = None
    delta: float = 1.0
    tau: float = 0.5
    added: list[tuple[float, float]] = field(default_factory=list)
    moved: dict[int, tuple[float, float]] = field(default_factory=dict)
    upload: str | None = None      # an uploaded CSV (the playground) instead of the generated data
    upload_name: str = "data.csv"
    upload_header: bool = True


def pytorch_program(s: RunSettings) -> str:
    """The program, as text; it ends by printing ``w`` and ``b``."""
    lines = ["import torch", "import torch.nn as nn", "import torch.optim as optim", "import torch.nn.init as init"]
    if s.upload:
        lines += ["import numpy as np", "", "# 1. the data: the first two columns of your file",
                  f"xy = np.loadtxt({s.upload_name!r}, delimiter=\",\", skiprows={int(s.upload_header)}, usecols=(0, 1), "
                  "dtype=np.float32, ndmin=2)",
                  "x, y_noise = torch.from_numpy(xy[:, :1].copy()), torch.from_numpy(xy[:, 1:2].copy())",
                  f"torch.manual_seed({s.seed})"]
    else:
        lines += ["", "# 1. the data: y = 2(x + noise) + 3", f"torch.manual_seed({s.seed})",
                  f"x = init.uniform_(torch.Tensor({s.n}, 1), -10, 10)",
                  f"noise = init.normal_(torch.Tensor({s.n}, 1), std={float(s.noise)!r})",
                  "y_noise = 2 * (x + noise) + 3"]
    for i, (px, py) in sorted(s.moved.items()):
        lines.append(f"x[{i}, 0], y_noise[{i}, 0] = {px!r}, {py!r}  # a point you moved")
    if s.added:
        pts = ", ".join(f"[{px!r}]" for px, _ in s.added)
        ys = ", ".join(f"[{py!r}]" for _, py in s.added)
        lines += [f"x = torch.cat([x, torch.tensor([{pts}])])  # points you added",
                  f"y_noise = torch.cat([y_noise, torch.tensor([{ys}])])"]
    lines += ["", "# 2. the model y = w*x + b and where it starts", "model = nn.Linear(in_features=1, out_features=1)"]
    if s.start is not None:
        lines += ["with torch.no_grad():", f"    model.weight.fill_({float(s.start[0])!r})",
                  f"    model.bias.fill_({float(s.start[1])!r})"]
    inputs = "x"
    if s.standardize:
        lines += ["", "# standardized x: the model sees (x - mean) / std; w and b are converted back at the end",
                  "mean, std = x.double().mean().float(), x.double().std(unbiased=False).float()",
                  "x_in = (x - mean) / std", "with torch.no_grad():",
                  "    model.bias += model.weight[0, 0] * mean", "    model.weight *= std"]
        inputs = "x_in"
    lines += ["", "# 3. the loss function and the optimizer",
              LOSS_CODE[s.loss].format(delta=float(s.delta), tau=float(s.tau)),
              f"optimizer = {OPTIMIZER_CODE[s.optimizer].format(lr=float(s.lr))}", "",
              f"# 4. training: {s.epochs} epochs"]
    lines += _loop(s, inputs)
    lines += ["", "w, b = model.weight.item(), model.bias.item()"]
    if s.standardize:
        lines += ["w, b = w / std.item(), b - mean.item() * w / std.item()"]
    lines += ['print(f"w = {w:.6f}, b = {b:.6f}")']
    return "\n".join(lines) + "\n"


def _loop(s: RunSettings, inputs: str) -> list[str]:
    full = s.batch_size is None or s.optimizer == "gd"
    if s.optimizer == "gd":  # gradfit's gd keeps the best point it evaluated
        return ["best = (float('inf'), None)", f"for epoch in range({s.epochs}):", "    optimizer.zero_grad()",
                f"    loss = loss_func(model({inputs}), y_noise)",
                "    if loss.item() < best[0]:  # gd returns the best point it saw",
                "        best = (loss.item(), [p.detach().clone() for p in model.parameters()])",
                "    loss.backward()", "    optimizer.step()", "with torch.no_grad():",
                "    for p, kept in zip(model.parameters(), best[1]):", "        p.copy_(kept)"]
    if full:
        return [f"for epoch in range({s.epochs}):", "    optimizer.zero_grad()",
                f"    output = model({inputs})", "    loss = loss_func(output, y_noise)", "    loss.backward()",
                "    optimizer.step()", "    if epoch % 100 == 0:", "        print(epoch, loss.item())"]
    return [f"gen = torch.Generator().manual_seed({s.seed})  # mini-batches of {s.batch_size} rows, shuffled each epoch",
            f"for epoch in range({s.epochs}):", "    perm = torch.randperm(len(x), generator=gen)",
            f"    for i in range(0, len(x), {s.batch_size}):", f"        idx = perm[i:i + {s.batch_size}]",
            "        optimizer.zero_grad()", f"        loss = loss_func(model({inputs}[idx]), y_noise[idx])",
            "        loss.backward()", "        optimizer.step()"]
