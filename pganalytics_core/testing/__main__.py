"""Run the fake ML service from the command line.

    python -m pganalytics_core.testing --port 8081 [--host 127.0.0.1] [--latency-ms N]
        [--jitter-ms N] [--error-rate X] [--error-status N] [--seed N] [--training-step-s S]

(or ``pganalytics-fake-ml ...``). Prints ``listening on http://HOST:PORT`` once it
accepts connections (``--port 0`` picks a free port), serves until Ctrl-C or SIGTERM,
then stops cleanly and exits with status 0. Bad arguments exit with status 2 and an
argparse message; an address that cannot be bound exits with status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from pganalytics_core.testing.fake_service import FakeMLService, Faults

__all__ = ["build_parser", "main"]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {port}")
    return port


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``pganalytics-fake-ml`` command."""
    parser = argparse.ArgumentParser(
        prog="pganalytics-fake-ml",
        description="Serve a fake pganalytics ML service (with optional fault injection).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=8081, help="TCP port; 0 picks a free one (8081)"
    )
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, help="delay before each answer, ms"
    )
    parser.add_argument(
        "--jitter-ms", type=_non_negative, default=0.0, help="extra random delay up to N ms"
    )
    parser.add_argument(
        "--error-rate", type=_fraction, default=0.0, help="fraction of requests that fail (0..1)"
    )
    parser.add_argument(
        "--error-status", type=int, default=500, help="status of failed requests (500)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault randomness (0)")
    parser.add_argument(
        "--training-step-s",
        type=_non_negative,
        default=0.05,
        help="seconds a training job stays queued, then training (0.05)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status.

    Args:
        argv: the arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 after a clean stop, 1 when the address cannot be bound (2, from argparse's
        ``SystemExit``, for bad arguments).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults(
            latency_s=args.latency_ms / 1000.0,
            jitter_s=args.jitter_ms / 1000.0,
            error_rate=args.error_rate,
            error_status=args.error_status,
        )
    except ValueError as exc:
        parser.error(str(exc))
    service = FakeMLService(
        host=args.host,
        port=args.port,
        seed=args.seed,
        training_step_s=args.training_step_s,
        faults=faults,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            service.start()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(
                f"{parser.prog}: error: cannot listen on {args.host}:{args.port}: {reason}",
                file=sys.stderr,
            )
            return 1
        print(f"listening on {service.url}", flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
