from detectron2_export.config import LazyCall as L

from .coco import dataloader

dataloader.train.dataset.min_keypoints = 1
dataloader.train.dataset.names = "keypoints_coco_2017_train"
dataloader.test.dataset.names = "keypoints_coco_2017_val"

# Training only (see ../README.md): upstream computes the flip indices here, from the metadata of
# the training set; they are recorded as a call to make when the training mapper is built.
dataloader.train.mapper.update(
    use_instance_mask=False,
    use_keypoint=True,
    keypoint_hflip_indices=L("detectron2.data.detection_utils.create_keypoint_hflip_indices")(
        dataset_names="${...dataset.names}"
    ),
)
