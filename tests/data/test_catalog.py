import pytest

from detectron2_export.data import DatasetCatalog, Metadata, MetadataCatalog
from detectron2_export.errors import DatasetError


@pytest.fixture
def name():
    n = "test_catalog_dataset"
    yield n
    if n in DatasetCatalog:
        DatasetCatalog.remove(n)
    if n in MetadataCatalog:
        MetadataCatalog.remove(n)


def test_register_get_list_remove(name):
    calls = []
    DatasetCatalog.register(name, lambda: calls.append(1) or [{"file_name": "a.jpg"}])
    assert calls == []  # registration does not load
    assert name in DatasetCatalog.list()
    assert DatasetCatalog.get(name) == [{"file_name": "a.jpg"}]
    assert calls == [1]
    DatasetCatalog.remove(name)
    assert name not in DatasetCatalog.list()


def test_register_twice_or_not_callable(name):
    DatasetCatalog.register(name, list)
    with pytest.raises(DatasetError, match=f"'{name}' is already registered"):
        DatasetCatalog.register(name, list)
    with pytest.raises(DatasetError, match="expected a callable"):
        DatasetCatalog.register(name + "_x", [1, 2])


def test_get_unregistered_lists_available_names():
    with pytest.raises(KeyError) as info:
        DatasetCatalog.get("no_such_dataset")
    assert isinstance(info.value, DatasetError)
    message = str(info.value)
    assert message.startswith("DatasetCatalog: dataset 'no_such_dataset' is not registered!")
    assert "shapes_val" in message and "coco_2017_val" in message


def test_metadata_attributes(name):
    meta = MetadataCatalog.get(name)
    assert MetadataCatalog.get(name) is meta  # created once
    assert meta.name == name
    meta.set(thing_classes=["a", "b"], evaluator_type="coco")
    assert meta.thing_classes == ["a", "b"]
    assert meta.get("evaluator_type") == "coco"
    assert meta.get("json_file", "default") == "default"
    meta.thing_classes = ["a", "b"]  # the same value again is fine
    with pytest.raises(DatasetError, match="thing_classes=\\['b'\\], expected the value already set"):
        meta.thing_classes = ["b"]
    with pytest.raises(AttributeError, match="Available keys are .*thing_classes"):
        meta.json_file
    assert meta.as_dict()["evaluator_type"] == "coco"


def test_metadata_renamed_and_empty(name):
    meta = MetadataCatalog.get(name)
    with pytest.raises(AttributeError, match="metadata is empty"):
        meta.thing_classes
    meta.class_names = ["x"]  # renamed upstream: stored as thing_classes
    assert meta.thing_classes == ["x"]
    assert isinstance(meta, Metadata)
    with pytest.raises(DatasetError, match="non-empty"):
        MetadataCatalog.get("")
