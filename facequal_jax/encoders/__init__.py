"""Embedding models behind one interface (`base.Encoder`): uint8 faces → unit float32 embeddings.

`eigenfaces.EigenfaceEncoder` is the dependency-free baseline; `mim.load_encoder`
loads a pretrained masked-image-modelling encoder (it needs flax, so it is
imported only when used).
"""
