"""A per-bin Python loop of ROIAlign / ROIAlignRotated written from SPEC 5.4, shared by the tests of
``detectron2_export.layers`` and of the ``_caffe2::RoIAlign{,Rotated}`` ops."""

import math

import torch


def bilinear(v, y, x):
    """SPEC 5.4's bilinear sample of a (H, W) nested list at (y, x), in Python floats."""
    height, width = len(v), len(v[0])
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * v[y0][x0]
        + (1 - ly) * lx * v[y0][x1]
        + ly * (1 - lx) * v[y1][x0]
        + ly * lx * v[y1][x1]
    )


def naive_roi_align(x, rois, pooled, spatial_scale, sampling_ratio, aligned, rotated=False):
    """(R, C, *pooled) float32: upright rois ``(b, x1, y1, x2, y2)`` or, with ``rotated``,
    ``(b, cx, cy, w, h, angle_degrees)``; ``sampling_ratio <= 0`` is the adaptive grid."""
    ph_n, pw_n = pooled
    out = torch.zeros(rois.shape[0], x.shape[1], ph_n, pw_n, dtype=torch.float64)
    off = 0.5 if aligned else 0.0
    for r, roi in enumerate(rois.tolist()):
        batch = int(roi[0])
        if rotated:
            cx, cy = roi[1] * spatial_scale - off, roi[2] * spatial_scale - off
            roi_w, roi_h = roi[3] * spatial_scale, roi[4] * spatial_scale
            theta = roi[5] * math.pi / 180
        else:
            x1, y1, x2, y2 = (c * spatial_scale - off for c in roi[1:])
            roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        if rotated:  # sample in the roi's frame, centred on (0, 0), then rotate about (cx, cy)
            x1, y1 = -roi_w / 2, -roi_h / 2
        bin_w, bin_h = roi_w / pw_n, roi_h / ph_n
        g_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / ph_n)
        g_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pw_n)
        count = max(g_h * g_w, 1)
        for c in range(x.shape[1]):
            v = x[batch, c].tolist()
            for ph in range(ph_n):
                for pw in range(pw_n):
                    total = 0.0
                    for iy in range(g_h):
                        yy = y1 + ph * bin_h + (iy + 0.5) * bin_h / g_h
                        for ix in range(g_w):
                            xx = x1 + pw * bin_w + (ix + 0.5) * bin_w / g_w
                            if rotated:
                                yy_r = yy * math.cos(theta) - xx * math.sin(theta) + cy
                                xx_r = yy * math.sin(theta) + xx * math.cos(theta) + cx
                                total += bilinear(v, yy_r, xx_r)
                            else:
                                total += bilinear(v, yy, xx)
                    out[r, c, ph, pw] = total / count
    return out.float()
