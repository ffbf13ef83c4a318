import pytest
import torch
from torch import nn

from detectron2_export.evaluation import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset


class Recorder(DatasetEvaluator):
    def __init__(self, key="n"):
        self.key = key
        self.seen = ["stale"]

    def reset(self):
        self.seen = []

    def process(self, inputs, outputs):
        self.seen.append((inputs, outputs))

    def evaluate(self):
        return {self.key: len(self.seen)}


class Doubler(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2.0))
        self.modes = []

    def forward(self, batch):
        self.modes.append((self.training, torch.is_grad_enabled()))
        return [self.w * x for x in batch]


def test_inference_on_dataset_runs_eval_mode_without_grad():
    model = Doubler().train()
    evaluator = Recorder()
    calls = []
    names = ("on_start", "before_inference", "after_inference", "on_end")
    callbacks = {k: (lambda k=k: calls.append(k)) for k in names}
    loader = [[torch.tensor(float(i))] for i in range(8)]
    results = inference_on_dataset(model, loader, evaluator, callbacks, progress=False)
    assert results == {"n": 8}
    assert model.modes == [(False, False)] * 8 and model.training  # restored
    assert evaluator.seen[3][1][0].item() == 6.0
    assert calls[0] == "on_start" and calls[-1] == "on_end" and calls.count("before_inference") == 8


def test_evaluator_lists_and_none():
    loader = [[1], [2]]
    assert inference_on_dataset(lambda b: b, loader, [Recorder("a"), Recorder("b")], progress=False) == {"a": 2, "b": 2}
    assert inference_on_dataset(lambda b: b, loader, None, progress=False) == {}
    with pytest.raises(ValueError, match="same key 'a'"):
        DatasetEvaluators([Recorder("a"), Recorder("a")]).evaluate()


def test_inference_context_restores_mode_on_error():
    model = nn.Linear(1, 1).train()
    with pytest.raises(RuntimeError):
        with inference_context(model):
            assert not model.training
            raise RuntimeError
    assert model.training
