"""Console helpers for the command-line entry points: TensorFlow imported without its
start-up log lines (oneDNN, CPU-feature and absl notices written by C++ straight to
the stderr file descriptor, which TF_CPP_MIN_LOG_LEVEL does not reach in TF 2.21)."""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def _stderr_captured():
    """Point file descriptor 2 at a temporary file for the block; yields a function that
    returns what was written there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.seek(0), sink.read().decode(errors="replace"))[1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly():
    """Import TensorFlow (and Keras) with their start-up notices silenced, and TensorFlow's
    Python warnings below ERROR. If the import fails, what they printed is replayed on
    stderr before the error propagates. On another Keras backend (`KERAS_BACKEND`) only
    Keras is imported, and None returned: TensorFlow need not be installed."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        import keras  # noqa: F401

        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    failure, printed = None, ""
    with _stderr_captured() as captured:
        try:
            import keras  # noqa: F401  (imports TensorFlow, which prints at load time)
            import tensorflow
        except BaseException as error:  # replayed below, once stderr is back
            failure, printed = error, captured()
    if failure is not None:
        sys.stderr.write(printed)
        raise failure
    tensorflow.get_logger().setLevel("ERROR")  # e.g. retracing notices: every sweep compiles its own loop
    return tensorflow


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it stops as after Ctrl-C (finished
    work kept, one line) but exits with 143."""


def stop_on_sigterm():
    """From now on SIGTERM raises `Terminated` in the main thread (as SIGINT raises
    KeyboardInterrupt). Call it in a command-line entry point. A stop that lands where
    Python only reports errors (a garbage-collector callback such as JAX's, a `__del__`)
    is not lost there: `_redeliver_lost_stops`."""
    import signal

    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
    _redeliver_lost_stops()


def _redeliver_lost_stops():
    """Python swallows an exception raised in a garbage-collector callback or a finalizer
    ("Exception ignored in ...", `sys.unraisablehook`), so a Ctrl-C or SIGTERM whose
    handler ran there would be dropped and the program run on. Instead, such a stop is
    sent again as its signal 50 ms later, from a timer thread, so that it lands in
    ordinary code; nothing is printed for it. Other unraisable errors go to the hook
    that was there before."""
    import signal
    import threading

    previous = sys.unraisablehook
    if getattr(previous, "redelivers_stops", False):
        return

    def hook(unraisable):
        if not (isinstance(unraisable.exc_type, type) and issubclass(unraisable.exc_type, KeyboardInterrupt)):
            previous(unraisable)
            return
        signum = signal.SIGTERM if issubclass(unraisable.exc_type, Terminated) else signal.SIGINT
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()

    hook.redelivers_stops = True
    sys.unraisablehook = hook


@contextlib.contextmanager
def stops_surfaced():
    """Within the block, an error raised while a Ctrl-C or SIGTERM was unwinding (a
    progress bar or TensorFlow's graph building failing half-way through its cleanup)
    is replaced by that stop, so that the entry point reports the stop, not the error."""
    try:
        yield
    except Exception as error:
        cause = error.__context__ or error.__cause__
        while cause is not None and not isinstance(cause, KeyboardInterrupt):
            cause = cause.__context__ or cause.__cause__
        if cause is None:
            raise
        raise cause from None


def stop_status(error):
    """The exit status of a stop by `error`: 143 for SIGTERM, 130 for Ctrl-C."""
    return 143 if isinstance(error, Terminated) else 130


def stop_word(error):
    return "terminated" if isinstance(error, Terminated) else "interrupted"
