"""The child's side of supervision: a process the supervisor started dumps its stacks when asked
(so a hang says where it hung) and stops itself if the supervisor disappears."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time

PARENT = "NORMBENCH_PARENT_PID"  # set in a child's environment: the supervisor's process id
GRACE_S = 5.0  # between asking a process to stop (SIGINT, SIGTERM) and SIGKILL


def dump_stacks_on_request() -> None:
    """SIGUSR1 writes every thread's stack to stderr: the supervisor sends it to a process past
    its timeout before stopping it, so the error record can say where it hung. A copy of the
    stderr descriptor, because pytest redirects descriptor 2 while tests run."""
    faulthandler.register(signal.SIGUSR1, file=os.dup(sys.stderr.fileno()), all_threads=True)


def stop_with_parent() -> None:
    """A process the supervisor started (in a session of its own, so a terminal's Ctrl-C does
    not reach it) interrupts itself if that parent disappears without stopping it.

    Its SIGINT is the supervisor's request to stop, so it must raise KeyboardInterrupt even where the
    supervisor was started with SIGINT ignored, as a non-interactive shell starts a command put in the
    background (``normbench run &`` in a CI script): every child would inherit the ignore and be killed
    after the grace period instead of stopping cleanly."""
    parent = os.environ.get(PARENT)
    if not parent or not parent.isdigit():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)  # pytest stops after the current test
        time.sleep(GRACE_S)
        os._exit(130)

    threading.Thread(target=watch, name="normbench-parent-watch", daemon=True).start()
