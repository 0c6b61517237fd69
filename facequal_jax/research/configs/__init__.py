"""The research configs, given by name to the `train/` entry points (`--config=protocol_lfw:smoke`)."""
import os

FOLDER = os.path.dirname(__file__)
