"""utils.events: EventStorage against upstream's documented semantics (hand cases); the writers
are training-only names."""

from __future__ import annotations

import pytest
import torch

from detectron2_export.utils import events
from detectron2_export.utils.events import EventStorage, EventStorageError, EventWriter, get_event_storage
from detectron2_export.utils.training_only import TrainingOnlyError


def test_upstream_names_import():
    names = ["get_event_storage", "JSONWriter", "TensorboardXWriter", "CommonMetricPrinter", "EventStorage",
             "EventWriter"]
    assert set(names) <= set(events.__all__) and all(hasattr(events, n) for n in names)


def test_get_event_storage_outside_a_storage_raises():
    with pytest.raises(AssertionError, match=r"has to be called inside a 'with EventStorage\(\.\.\.\)' context"):
        get_event_storage()


def test_nested_storages_and_exit():
    with EventStorage() as outer:
        assert get_event_storage() is outer
        with EventStorage(start_iter=5) as inner:
            assert get_event_storage() is inner and inner.iter == 5
        assert get_event_storage() is outer
    with pytest.raises(EventStorageError):
        get_event_storage()


def test_scalars_history_and_smoothing():
    with EventStorage(start_iter=10) as s:
        for value in [1.0, 5.0, 3.0]:
            s.put_scalar("loss", torch.tensor(value))
            s.put_scalar("lr", value / 10, smoothing_hint=False)
            s.step()
        s.put_scalars(a=1, b=2.5)
        assert s.iter == s.iteration == 13
        assert s.history("loss").values() == [(1.0, 10), (5.0, 11), (3.0, 12)]
        assert s.latest() == {"loss": (3.0, 12), "lr": (0.3, 12), "a": (1.0, 13), "b": (2.5, 13)}
        # median of the last 20 (all three) for smoothed scalars, latest for lr
        assert s.latest_with_smoothing_hint() == {"loss": (3.0, 12), "lr": (0.3, 12), "a": (1.0, 13), "b": (2.5, 13)}
        assert s.latest_with_smoothing_hint(window_size=2)["loss"] == (4.0, 12)  # median(5, 3)
        assert s.smoothing_hints() == {"loss": True, "lr": False, "a": True, "b": True}
        assert set(s.histories()) == {"loss", "lr", "a", "b"}
        with pytest.raises(AssertionError, match="Scalar lr was put with a different smoothing_hint"):
            s.put_scalar("lr", 1.0)
        with pytest.raises(KeyError, match="No history metric available for missing"):
            s.history("missing")
        s.iter = 20.0
        assert s.iter == 20 and isinstance(s.iter, int)


def test_name_scope_prefixes_scalars():
    with EventStorage() as s:
        with s.name_scope("roi_heads/"):
            s.put_scalar("acc", 0.5)
        s.put_scalar("acc", 0.25)
        assert s.latest() == {"roi_heads/acc": (0.5, 0), "acc": (0.25, 0)}


def test_images_and_histograms():
    with EventStorage(start_iter=3) as s:
        image = torch.zeros(3, 2, 2)
        s.put_image("input", image)
        s.put_histogram("w", torch.tensor([0.0, 1.0, 1.0, 4.0]), bins=4)
        assert s._vis_data == [("input", image, 3)]
        (h,) = s._histograms
        # range [0, 4] in 4 bins of width 1: 0 | 1, 1 | - | 4
        assert h["bucket_counts"] == [1.0, 2.0, 0.0, 1.0] and h["bucket_limits"] == [1.0, 2.0, 3.0, 4.0]
        summary = (h["min"], h["max"], h["num"], h["sum"], h["sum_squares"], h["global_step"])
        assert summary == (0.0, 4.0, 4, 6.0, 18.0, 3)
        s.clear_images()
        s.clear_histograms()
        assert s._vis_data == [] and s._histograms == []


@pytest.mark.parametrize("name", ["JSONWriter", "TensorboardXWriter", "CommonMetricPrinter"])
def test_writers_are_training_only(name, tmp_path):
    cls = getattr(events, name)
    assert issubclass(cls, EventWriter)
    with pytest.raises(TrainingOnlyError, match=rf"^detectron2_export\.utils\.events\.{name} is training-only"):
        cls(str(tmp_path / "metrics.json"))


def test_event_writer_base():
    with pytest.raises(NotImplementedError):
        EventWriter().write()
    assert EventWriter().close() is None
