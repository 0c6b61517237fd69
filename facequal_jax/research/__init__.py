"""The research around the product: does IQ predict training, and what pretraining buys.

`experiment` (the validation experiment: proxies trained on variants of a data
set, their verification accuracy against IQ), `pretraining_study` (proxies
from scratch and from PaCo-FR encoders with few and many labels), `training/`
(the one resumable loop, MIM pretraining, the ArcFace proxy), `backbone` (the
proxy's networks), `verification` and `statistics` (held-out pairs, accuracy,
correlations with bootstrap intervals), `configs/` (their configs, given by
name to the `train/` entry points). Research may import the product; the
product never imports research.
"""
