"""Caffe2-style workspaces: named blobs (torch tensors) and created nets.

``Workspace`` has the method names of ``caffe2.python.workspace`` (FeedBlob, FetchBlob, RunNetOnce,
CreateNet, RunNet, ...). The module also keeps a set of named workspaces with a current one and
module-level functions acting on it, plus ``ScopedWS`` (detectron2's helper) to switch temporarily.
Blobs hold torch tensors; numpy is accepted and returned at the API edge as in upstream Caffe2.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ..errors import OperatorInputError
from .executor import Net
from .proto import caffe2_pb2

NetOrName = caffe2_pb2.NetDef | str


def to_blob(value: Any, device_option: caffe2_pb2.DeviceOption | None = None) -> Any:
    """A fed value as a blob: tensors detached, numpy and numbers converted, strings kept."""
    if isinstance(value, torch.Tensor):
        blob = value.detach()
    elif isinstance(value, (str, bytes)) or (isinstance(value, np.ndarray) and value.dtype == object):
        return value
    else:
        blob = torch.from_numpy(np.array(value))
    if device_option is not None and device_option.device_type == caffe2_pb2.PROTO_CUDA and torch.cuda.is_available():
        blob = blob.to(f"cuda:{device_option.device_id}")
    return blob


class Workspace:
    """Named blobs plus the nets created in them."""

    def __init__(self, name: str = "default"):
        self.name = name
        self.blobs: dict[str, Any] = {}
        self._nets: dict[str, Net] = {}

    def __repr__(self) -> str:
        return f"Workspace({self.name!r}, blobs={len(self.blobs)}, nets={sorted(self._nets)})"

    # Blobs
    def FeedBlob(self, name: str, arr: Any, device_option: caffe2_pb2.DeviceOption | None = None) -> bool:
        """Store a tensor (numpy arrays and numbers are converted; strings are kept as they are)."""
        self.blobs[name] = to_blob(arr, device_option)
        return True

    def CreateBlob(self, name: str) -> None:
        """Create an empty blob (one that an op may not read before it is fed or computed)."""
        self.blobs.setdefault(name, None)

    def _get(self, name: str) -> Any:
        if name not in self.blobs:
            raise OperatorInputError(f"Workspace {self.name!r}: blob {name!r} does not exist; blobs: {sorted(self.blobs)}")
        return self.blobs[name]

    def FetchBlob(self, name: str) -> Any:
        """The blob as numpy (a copy) like upstream; non-tensor blobs as stored, empty blobs as None."""
        blob = self._get(name)
        if isinstance(blob, torch.Tensor):
            return blob.detach().cpu().numpy().copy()
        return blob

    def fetch_tensor(self, name: str) -> Any:
        """The blob as stored: a torch tensor for tensor blobs (no copy)."""
        return self._get(name)

    def HasBlob(self, name: str) -> bool:
        return name in self.blobs

    def Blobs(self) -> list[str]:
        return list(self.blobs)

    def RemoveBlob(self, name: str) -> None:
        self._get(name)
        del self.blobs[name]

    def ResetWorkspace(self) -> bool:
        """Drop every blob and net."""
        self.blobs.clear()
        self._nets.clear()
        return True

    # Nets
    def RunNetOnce(self, net: caffe2_pb2.NetDef) -> bool:
        Net(net, self.blobs).run(self.blobs)
        return True

    def CreateNet(
        self,
        net: caffe2_pb2.NetDef,
        overwrite: bool = False,
        input_blobs: Iterable[str] | None = None,
        *,
        inplace: bool = False,
    ) -> bool:
        """Bind the net's ops once; later ``RunNet(net.name)`` calls only execute them.

        ``inplace``: element-wise ops may overwrite intermediate blobs no later op reads (for callers
        that fetch only the external outputs; see ``executor.Net``)."""
        if net.name in self._nets and not overwrite:
            raise ValueError(f"Workspace {self.name!r}: net {net.name!r} already exists, pass overwrite=True to replace it")
        for blob in input_blobs or ():
            self.CreateBlob(blob)
        created = Net(net, self.blobs, inplace=inplace)
        for op in created.ops:  # as Caffe2: every output blob exists (empty) once the net is created
            for blob in op.outputs:
                self.CreateBlob(blob)
        self._nets[net.name] = created
        return True

    def RunNet(self, name: NetOrName, num_iter: int = 1) -> bool:
        net = self.net(name.name if isinstance(name, caffe2_pb2.NetDef) else name)
        for _ in range(num_iter):
            net.run(self.blobs)
        return True

    def Nets(self) -> list[str]:
        return list(self._nets)

    def net(self, name: str) -> Net:
        """The created ``Net`` (to run it over another blob dict, e.g. a per-call one)."""
        created = self._nets.get(name)
        if created is None:
            raise KeyError(f"Workspace {self.name!r}: net {name!r} was not created; nets: {sorted(self._nets)}")
        return created

    def RunOperatorOnce(self, op: caffe2_pb2.OperatorDef) -> bool:
        return self.RunNetOnce(caffe2_pb2.NetDef(op=[op]))


_workspaces: dict[str, Workspace] = {"default": Workspace("default")}
_current = "default"


def CurrentWorkspace() -> str:
    return _current


def current_workspace() -> Workspace:
    """The current ``Workspace`` object."""
    return _workspaces[_current]


def SwitchWorkspace(name: str, create_if_missing: bool = False) -> None:
    global _current
    if name not in _workspaces:
        if not create_if_missing:
            raise KeyError(f"workspace {name!r} does not exist; workspaces: {sorted(_workspaces)}")
        _workspaces[name] = Workspace(name)
    _current = name


def Workspaces() -> list[str]:
    return list(_workspaces)


def FeedBlob(name: str, arr: Any, device_option: caffe2_pb2.DeviceOption | None = None) -> bool:
    return current_workspace().FeedBlob(name, arr, device_option)


def FetchBlob(name: str) -> Any:
    return current_workspace().FetchBlob(name)


def CreateBlob(name: str) -> None:
    current_workspace().CreateBlob(name)


def HasBlob(name: str) -> bool:
    return current_workspace().HasBlob(name)


def Blobs() -> list[str]:
    return current_workspace().Blobs()


def ResetWorkspace() -> bool:
    return current_workspace().ResetWorkspace()


def RunNetOnce(net: caffe2_pb2.NetDef) -> bool:
    return current_workspace().RunNetOnce(net)


def CreateNet(net: caffe2_pb2.NetDef, overwrite: bool = False, input_blobs: Iterable[str] | None = None) -> bool:
    return current_workspace().CreateNet(net, overwrite, input_blobs)


def RunNet(name: NetOrName, num_iter: int = 1) -> bool:
    return current_workspace().RunNet(name, num_iter)


def RunOperatorOnce(op: caffe2_pb2.OperatorDef) -> bool:
    return current_workspace().RunOperatorOnce(op)


class ScopedWS:
    """Switch to workspace ``ws_name`` (created if missing) for a ``with`` block, like detectron2's.

    ``is_reset`` clears it on entry, ``is_cleanup`` on exit; ``ws_name=None`` stays in the current one.
    The ``with`` target is the ``Workspace`` object, which has the module's functions as methods.
    """

    def __init__(self, ws_name: str | None, is_reset: bool, is_cleanup: bool = False):
        self.ws_name = ws_name
        self.is_reset = is_reset
        self.is_cleanup = is_cleanup
        self.org_ws = ""

    def __enter__(self) -> Workspace:
        self.org_ws = CurrentWorkspace()
        if self.ws_name is not None:
            SwitchWorkspace(self.ws_name, True)
        if self.is_reset:
            ResetWorkspace()
        return current_workspace()

    def __exit__(self, *exc: object) -> None:
        if self.is_cleanup:
            ResetWorkspace()
        if self.ws_name is not None:
            SwitchWorkspace(self.org_ws)
