"""A slow, obviously-correct deformable convolution, written from the DCN papers.

Output (n, o, y, x) sums, over the input channels of o's group and the kernel positions (i, j),
``weight * mask * bilinear`` of the input at ``(y * stride - pad + i * dilation + dy,
x * stride - pad + j * dilation + dx)``, with the (dy, dx) of the channel's deformable group; a
bilinear sample takes only the corners that lie inside the image (zero padding) and is 0 when the
point is one pixel or more outside.
"""

import math

import torch


def _bilinear(img: torch.Tensor, y: float, x: float) -> float:
    """Sample a (H, W) image at (y, x); corners outside the image count as 0."""
    h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * float(img[yy, xx])
    return total


def naive_deform_conv(x, offset, weight, bias, stride, padding, dilation, groups, mask=None):
    """The slow, obviously-correct loop (float64 accumulation)."""
    n, c, _, _ = x.shape
    o, c_per_group, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    deform_groups = offset.shape[1] // (2 * kh * kw)
    channels_per_deform_group = c // deform_groups
    out = torch.zeros(n, o, ho, wo, dtype=torch.float64)
    for b in range(n):
        for oc in range(o):
            g = oc // (o // groups)
            for oy in range(ho):
                for ox in range(wo):
                    acc = 0.0 if bias is None else float(bias[oc])
                    for ci in range(c_per_group):
                        ic = g * c_per_group + ci
                        dg = ic // channels_per_deform_group
                        for i in range(kh):
                            for j in range(kw):
                                k = i * kw + j
                                dy = float(offset[b, dg * 2 * kh * kw + 2 * k, oy, ox])
                                dx = float(offset[b, dg * 2 * kh * kw + 2 * k + 1, oy, ox])
                                py = oy * stride - padding + i * dilation + dy
                                px = ox * stride - padding + j * dilation + dx
                                m = 1.0 if mask is None else float(mask[b, dg * kh * kw + k, oy, ox])
                                acc += float(weight[oc, ci, i, j]) * m * _bilinear(x[b, ic], py, px)
                    out[b, oc, oy, ox] = acc
    return out.float()
