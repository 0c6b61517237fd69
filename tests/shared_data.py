"""The read-only real faces in ../shared/data beside the checkout; tests that need them skip, with the reason,
where they are absent."""
import os

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"))


def path(name: str) -> str:
  """The folder ../shared/data/NAME."""
  return os.path.join(ROOT, name)


def needs(name: str):
  """Marks a test that reads ../shared/data/NAME: skipped with a reason where it is absent."""
  return pytest.mark.skipif(not os.path.isdir(path(name)), reason=f"{path(name)} is not present")
