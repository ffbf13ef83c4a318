"""Turn a dataset dict into the model's input dict, as detectron2's ``DatasetMapper`` at test time."""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch

from detectron2_export.config.configurable import configurable

from . import detection_utils as utils
from . import transforms as T

__all__ = ["DatasetMapper"]


class DatasetMapper:
    """Read the image in ``image_format``, apply the test augmentations, return the model input.

    The output is the input dict (without "annotations"/"sem_seg_file_name") plus
    ``"image"``: a CHW float32 tensor of the resized image (pixel values as read, 0..255) and
    ``"height"``/``"width"`` of the original image, so the model rescales outputs back to it.
    (Upstream returns the uint8 tensor; the values are identical, the dtype is the one the
    exported models and the C++ examples take.)
    """

    @configurable
    def __init__(self, is_train: bool, *, augmentations: list[T.Augmentation | T.Transform], image_format: str):
        if is_train:
            raise NotImplementedError(
                "DatasetMapper: is_train=True, expected False; detectron2_export is inference-only"
            )
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        logging.getLogger(__name__).info("[DatasetMapper] Augmentations used in inference: %s", augmentations)

    @classmethod
    def from_config(cls, cfg: Any, is_train: bool = True) -> dict[str, Any]:
        return {
            "is_train": is_train,
            "augmentations": utils.build_augmentation(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
        }

    def __call__(self, dataset_dict: dict[str, Any]) -> dict[str, Any]:
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)

        sem_seg_file = dataset_dict.pop("sem_seg_file_name", None)
        sem_seg_gt = utils.read_image(sem_seg_file, "L").squeeze(2) if sem_seg_file else None

        aug_input = T.AugInput(image, sem_seg=sem_seg_gt)
        self.augmentations(aug_input)
        image, sem_seg_gt = aug_input.image, aug_input.sem_seg

        chw = np.ascontiguousarray(image.transpose(2, 0, 1))
        dataset_dict["image"] = torch.as_tensor(chw).to(torch.float32)
        if sem_seg_gt is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(sem_seg_gt.astype("long"))
        dataset_dict.pop("annotations", None)
        return dataset_dict
