"""A small model and writers for the checkpoint formats the tests load."""

import pickle

import numpy as np
import torch
from torch import nn


class Small(nn.Module):
    """conv + BN (buffers) + linear head: keys conv.weight/bias, bn.*, head.0.weight/bias."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Linear(4, 2))


def distinct_state(model, offset=1000.0):
    """A numpy state dict for ``model`` whose every value differs from the model's initial ones."""
    state = {}
    for i, (k, v) in enumerate(model.state_dict().items()):
        state[k] = (np.arange(v.numel(), dtype=np.float64) + offset + 100 * i).reshape(tuple(v.shape)).astype(
            v.numpy().dtype)
    return state


def write_pickle(path, obj, protocol=pickle.HIGHEST_PROTOCOL):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return str(path)


def assert_state_equals(model, state, keys=None):
    actual = model.state_dict()
    for k in keys if keys is not None else state:
        expected = np.asarray(state[k])
        expected = expected.astype(expected.dtype.newbyteorder("="))  # torch wants native byte order
        torch.testing.assert_close(actual[k], torch.as_tensor(expected), rtol=0, atol=0)
