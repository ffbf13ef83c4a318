"""Metadata of the builtin datasets: COCO category ids and names, person keypoints, shapes.

The COCO ids are those of the official annotation files (1..90 with gaps for things, 92..200 for
panoptic stuff); models predict contiguous ids, 0..79 for things in the order of the dataset ids.
"""

from __future__ import annotations

from typing import Any

from detectron2_export.errors import DatasetError

__all__ = [
    "COCO_CATEGORIES",
    "COCO_PERSON_KEYPOINT_NAMES",
    "COCO_PERSON_KEYPOINT_FLIP_MAP",
    "SHAPES_CATEGORIES",
    "get_builtin_metadata",
]

# fmt: off
_COCO_THINGS = [
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"),
    (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"),
    (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"), (32, "tie"),
    (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"), (37, "sports ball"),
    (38, "kite"), (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"),
    (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"),
    (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"),
    (54, "sandwich"), (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"),
    (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"), (63, "couch"), (64, "potted plant"),
    (65, "bed"), (67, "dining table"), (70, "toilet"), (72, "tv"), (73, "laptop"), (74, "mouse"),
    (75, "remote"), (76, "keyboard"), (77, "cell phone"), (78, "microwave"), (79, "oven"),
    (80, "toaster"), (81, "sink"), (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"),
    (87, "scissors"), (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
]
_COCO_PANOPTIC_STUFF = [
    (92, "banner"), (93, "blanket"), (95, "bridge"), (100, "cardboard"), (107, "counter"),
    (109, "curtain"), (112, "door-stuff"), (118, "floor-wood"), (119, "flower"), (122, "fruit"),
    (125, "gravel"), (128, "house"), (130, "light"), (133, "mirror-stuff"), (138, "net"),
    (141, "pillow"), (144, "platform"), (145, "playingfield"), (147, "railroad"), (148, "river"),
    (149, "road"), (151, "roof"), (154, "sand"), (155, "sea"), (156, "shelf"), (159, "snow"),
    (161, "stairs"), (166, "tent"), (168, "towel"), (171, "wall-brick"), (175, "wall-stone"),
    (176, "wall-tile"), (177, "wall-wood"), (178, "water-other"), (180, "window-blind"),
    (181, "window-other"), (184, "tree-merged"), (185, "fence-merged"), (186, "ceiling-merged"),
    (187, "sky-other-merged"), (188, "cabinet-merged"), (189, "table-merged"),
    (190, "floor-other-merged"), (191, "pavement-merged"), (192, "mountain-merged"),
    (193, "grass-merged"), (194, "dirt-merged"), (195, "paper-merged"), (196, "food-other-merged"),
    (197, "building-other-merged"), (198, "rock-merged"), (199, "wall-other-merged"),
    (200, "rug-merged"),
]

COCO_PERSON_KEYPOINT_NAMES = (
    "nose",
    "left_eye", "right_eye",
    "left_ear", "right_ear",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
)
# fmt: on

# Pairs exchanged by a horizontal flip
COCO_PERSON_KEYPOINT_FLIP_MAP = tuple(
    (f"left_{part}", f"right_{part}") for part in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
)

COCO_CATEGORIES = [{"id": i, "name": n, "isthing": 1} for i, n in _COCO_THINGS] + [
    {"id": i, "name": n, "isthing": 0} for i, n in _COCO_PANOPTIC_STUFF
]

# The bundled synthetic set (datasets/shapes/val.json)
SHAPES_CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}, {"id": 3, "name": "triangle"}]


def _things_meta(categories: list[dict]) -> dict[str, Any]:
    thing_ids = [c["id"] for c in categories if c.get("isthing", 1)]
    return {
        "thing_dataset_id_to_contiguous_id": {k: i for i, k in enumerate(thing_ids)},
        "thing_classes": [c["name"] for c in categories if c.get("isthing", 1)],
    }


def _coco_panoptic_separated_meta() -> dict[str, Any]:
    """Stuff ids map to 1..53; 0 is the extra "things" class of the semantic branch."""
    stuff = [c for c in COCO_CATEGORIES if c["isthing"] == 0]
    stuff_id_map = {c["id"]: i + 1 for i, c in enumerate(stuff)}
    stuff_id_map[0] = 0
    stuff_classes = ["things"] + [c["name"].replace("-other", "").replace("-merged", "") for c in stuff]
    return {
        "stuff_dataset_id_to_contiguous_id": stuff_id_map,
        "stuff_classes": stuff_classes,
        **_things_meta(COCO_CATEGORIES),
    }


def get_builtin_metadata(dataset_name: str) -> dict[str, Any]:
    """Metadata for one family of builtin datasets: "coco", "coco_person",
    "coco_panoptic_separated" or "shapes"."""
    if dataset_name == "coco":
        return _things_meta(COCO_CATEGORIES)
    if dataset_name == "coco_person":
        return {
            "thing_classes": ["person"],
            "keypoint_names": COCO_PERSON_KEYPOINT_NAMES,
            "keypoint_flip_map": COCO_PERSON_KEYPOINT_FLIP_MAP,
        }
    if dataset_name == "coco_panoptic_separated":
        return _coco_panoptic_separated_meta()
    if dataset_name == "shapes":
        return _things_meta(SHAPES_CATEGORIES)
    raise DatasetError(f"get_builtin_metadata: dataset_name={dataset_name!r}, expected one of "
                   "'coco', 'coco_person', 'coco_panoptic_separated', 'shapes'")
