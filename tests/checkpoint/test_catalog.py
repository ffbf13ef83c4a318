"""detectron2:// names -> URL -> cache file; downloads and the offline error."""

import io
import logging
import os
import urllib.error
import urllib.request

import pytest
import torch

from detectron2_export.checkpoint import DetectionCheckpointer
from detectron2_export.checkpoint.catalog import cached_path, get_cache_dir, get_local_path, resolve_url
from detectron2_export.errors import CheckpointError

from .helpers import Small, assert_state_equals, distinct_state, write_pickle

ZOO_NAME = "detectron2://COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/137849600/model_final_f10217.pkl"
ZOO_URL = ("https://dl.fbaipublicfiles.com/detectron2/"
           "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/137849600/model_final_f10217.pkl")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_EXPORT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def offline(monkeypatch):
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def test_resolve_url():
    assert resolve_url(ZOO_NAME) == ZOO_URL
    assert resolve_url("https://example.com/a/b.pth") == "https://example.com/a/b.pth"
    assert resolve_url("models/local.pkl") is None


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("DETECTRON2_EXPORT_CACHE", raising=False)
    monkeypatch.delenv("FVCORE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_cache_dir() == os.path.join(str(tmp_path), ".torch", "iopath_cache")
    monkeypatch.setenv("FVCORE_CACHE", "/fv")
    assert get_cache_dir() == "/fv"
    monkeypatch.setenv("DETECTRON2_EXPORT_CACHE", "/d2e")
    assert get_cache_dir() == "/d2e"


def test_cache_layout_is_iopaths(cache):
    expected = cache / "detectron2" / "COCO-InstanceSegmentation" / "mask_rcnn_R_50_FPN_3x" / "137849600"
    assert cached_path(ZOO_URL) == str(expected / "model_final_f10217.pkl")
    assert cached_path("https://host/x/y.pth?dl=1") == str(cache / "x" / "y.pth")


def test_offline_error_says_where_to_put_the_file(cache, offline):
    with pytest.raises(CheckpointError) as info:
        DetectionCheckpointer(Small()).load(ZOO_NAME)
    message = str(info.value)
    assert cached_path(ZOO_URL) in message and ZOO_URL in message
    assert offline == [ZOO_URL]
    assert not os.path.exists(cached_path(ZOO_URL))


def test_cached_file_is_used_without_network(cache, offline):
    model = Small()
    state = distinct_state(model)
    local = cached_path(ZOO_URL)
    os.makedirs(os.path.dirname(local))
    write_pickle(local, {"model": state, "__author__": "Detectron2 Model Zoo"})
    DetectionCheckpointer(model).load(ZOO_NAME)
    assert_state_equals(model, state)
    assert offline == []


def test_download_goes_to_cache_atomically(cache, monkeypatch, tmp_path, caplog):
    model = Small()
    state = {k: torch.from_numpy(v) for k, v in distinct_state(model).items()}
    payload = io.BytesIO()
    torch.save(state, payload)
    served = []

    def serve(url, timeout=None):
        served.append(url)
        return io.BytesIO(payload.getvalue())

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    url = "https://example.com/zoo/weights.pth"
    with caplog.at_level(logging.INFO, logger="detectron2_export.checkpoint"):
        DetectionCheckpointer(model).load(url)
    assert served == [url]
    assert_state_equals(model, state)
    assert os.listdir(cache / "zoo") == ["weights.pth"]  # no temporary file left behind
    assert get_local_path(url) == str(cache / "zoo" / "weights.pth")
    assert served == [url]  # second lookup hits the cache


def test_local_paths_pass_through():
    assert get_local_path("some/where.pkl") == "some/where.pkl"
