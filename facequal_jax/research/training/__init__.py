"""Training the models: one resumable loop (`loop`, `checkpoints`) and its tasks, MIM pretraining (`mim`) and
the ArcFace proxy (`proxy`)."""
