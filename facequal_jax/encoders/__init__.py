"""Embedding models behind one interface (`base.Encoder`): uint8 faces → unit float32 embeddings.

`registry` is the one table of encoders by name (`load_encoder`, what
`encoder.name` accepts): the pretrained face network (`face_resnet`, read by
`dlib_weights`), eigenfaces fitted on the data (`eigenfaces`), and MIM encoders
such as the bundled PaCo-FR one (`mim`).
"""
