"""The proposal-generator registry and ``build_proposal_generator``, as in detectron2."""

from detectron2_export.utils.registry import Registry

__all__ = ["PROPOSAL_GENERATOR_REGISTRY", "build_proposal_generator"]

PROPOSAL_GENERATOR_REGISTRY = Registry("PROPOSAL_GENERATOR")
PROPOSAL_GENERATOR_REGISTRY.__doc__ = """
Registry for proposal generator, which produces object proposals from feature maps.

The registered object will be called with `obj(cfg, input_shape)`.
The call should return a `nn.Module` object.
"""


def build_proposal_generator(cfg, input_shape):
    """Build the proposal generator named by ``cfg.MODEL.PROPOSAL_GENERATOR.NAME``.

    ``"PrecomputedProposals"`` means the dataset supplies proposals, so no module is built (None).
    """
    name = cfg.MODEL.PROPOSAL_GENERATOR.NAME
    if name == "PrecomputedProposals":
        return None
    return PROPOSAL_GENERATOR_REGISTRY.get(name)(cfg, input_shape)
