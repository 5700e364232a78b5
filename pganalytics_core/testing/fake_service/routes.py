"""The ML service's routes: which endpoint a path names, and the methods it allows."""

from __future__ import annotations

from typing import Final, NamedTuple

#: Endpoint names in the order :meth:`FakeMLService.request_counts` lists them.
ENDPOINT_ORDER: Final = (
    "health",
    "predict",
    "train",
    "training_status",
    "validate",
    "detect_patterns",
    "models",
    "model",
    "models_latest",
    "activate_model",
    "status",
    "unknown",
)
#: Every endpoint name, as used by :meth:`FakeMLService.request_counts` and
#: :attr:`Faults.endpoints`. ``"unknown"`` is any request that matches no route.
ENDPOINT_NAMES: Final[frozenset[str]] = frozenset(ENDPOINT_ORDER)

GET: Final = ("GET", "HEAD", "OPTIONS")
POST: Final = ("OPTIONS", "POST")


class Request(NamedTuple):
    """One parsed request: method, percent-decoded path, header fields, body."""

    method: str
    path: str
    headers: dict[bytes, bytes]  # lowercase names (as h11 gives them)
    body: bytes


class Route(NamedTuple):
    """Where a path leads: the endpoint name, its allowed methods, the path argument."""

    endpoint: str
    allowed: tuple[str, ...]
    arg: str = ""


_STATIC: Final[dict[str, Route]] = {
    "/health": Route("health", GET),
    "/api/predict/query-execution": Route("predict", POST),
    "/api/train/performance-model": Route("train", POST),
    "/api/validate/prediction": Route("validate", POST),
    "/api/detect/patterns": Route("detect_patterns", POST),
    "/api/models": Route("models", GET),
    "/api/models/latest": Route("models_latest", GET),
    "/api/status": Route("status", GET),
}
_UNKNOWN: Final = Route("unknown", ())
_TRAINING_PREFIX: Final = "/api/train/performance-model/"
_MODELS_PREFIX: Final = "/api/models/"


def route(path: str) -> Route:
    """Return the route of a (percent-decoded, query-less) path."""
    found = _STATIC.get(path)
    if found is not None:
        return found
    if path.startswith(_TRAINING_PREFIX):
        job_id = path[len(_TRAINING_PREFIX) :]
        if job_id and "/" not in job_id:
            return Route("training_status", GET, job_id)
    elif path.startswith(_MODELS_PREFIX):
        rest = path[len(_MODELS_PREFIX) :]
        if rest and "/" not in rest:
            return Route("model", GET, rest)
        model_id, _, tail = rest.partition("/")
        if model_id and tail == "activate":
            return Route("activate_model", POST, model_id)
    return _UNKNOWN
