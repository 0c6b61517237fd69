"""Ctrl-C that ends a command at once, whatever it is doing.

Python raises KeyboardInterrupt only when the main thread next runs Python
code, which can be many seconds away inside an XLA computation, a face
detection or a join of decoding threads. Here the signal's C handler wakes a
watcher thread through `signal.set_wakeup_fd`; the watcher prints a line and
ends the process. That is safe because every output is written atomically and
every long stage resumes from what it finished (the same guarantee as after a
kill).
"""
import logging
import os
import signal
import socket
import sys
import threading
from typing import Callable

EXIT_STATUS = 130  # 128 + SIGINT, as shells report it
_SOCKETS = []  # the wakeup socket pair stays open for the life of the process


def exit_on_interrupt(message: Callable[[], str]) -> None:
  """From now on SIGINT prints `message()` on stderr and ends the process with status 130.

  Call from the main thread (where signal handlers are set); elsewhere it does nothing.
  """
  if threading.current_thread() is not threading.main_thread():
    return
  receive, send = socket.socketpair()
  send.setblocking(False)
  _SOCKETS.extend((receive, send))
  signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
  signal.signal(signal.SIGINT, lambda signum, frame: None)  # the watcher acts; no KeyboardInterrupt

  def watch() -> None:
    while True:
      received = receive.recv(64)
      if signal.SIGINT in received:
        for handler in logging.getLogger().handlers:
          handler.flush()
        sys.stdout.flush()
        sys.stderr.write(f"\n{message()}\n")
        sys.stderr.flush()
        os._exit(EXIT_STATUS)  # pylint: disable=protected-access

  threading.Thread(target=watch, name="interrupt-watcher", daemon=True).start()
