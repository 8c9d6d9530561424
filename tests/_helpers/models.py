"""Small models the tests share."""

import torch
import torch.nn as nn

import dropkit


def seed_network(dropout=dropkit.nn.Dropout):
    # The seed document's example, with only the class changed.
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), dropout(p=0.5),
        nn.Linear(256, 128), nn.ReLU(), dropout(p=0.3),
        nn.Linear(128, 10),
    )  # fmt: skip


def output_and_grads(model, x, seed):
    """model(x) after torch.manual_seed(seed), and the parameter gradients of out.square().sum()."""
    torch.manual_seed(seed)
    out = model(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return out, grads
