"""Flax models: the masked-image-modelling face encoder and its parts."""
