"""Small models the tests share."""

import torch.nn as nn

import dropkit


def seed_network(dropout=dropkit.nn.Dropout):
    # The seed document's example, with only the class changed.
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), dropout(p=0.5),
        nn.Linear(256, 128), nn.ReLU(), dropout(p=0.3),
        nn.Linear(128, 10),
    )  # fmt: skip
