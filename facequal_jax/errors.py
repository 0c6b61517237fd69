"""Errors that are the user's to fix: the command prints their message as one line and exits with their status.

`UsageError` (status 2) is a flag or config value that cannot work; `DataError`
(status 1) is something wrong with the data (a missing or unreadable file, NaN
rows, labels that do not match, an empty image folder). Both are `ValueError`s,
so library callers catch them as before; `MissingFile` is also a
`FileNotFoundError`.
"""


class InputError(ValueError):
  """A problem with what the user gave (not a bug): one line names it and the fix."""
  exit_status = 1


class UsageError(InputError):
  """A flag or config value that cannot work (exit status 2)."""
  exit_status = 2


class DataError(InputError):
  """Something wrong with the data (exit status 1)."""
  exit_status = 1


class MissingFile(DataError, FileNotFoundError):
  """An input file or folder that does not exist."""
