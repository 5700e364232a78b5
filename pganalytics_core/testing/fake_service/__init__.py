"""A fake pganalytics ML service: real HTTP/1.1 on loopback, with fault injection.

:class:`FakeMLService` serves every endpoint of the ML service's HTTP contract
(``/work/shared/ml-service-api.md``) with the real service's validation, status codes and
quirks, so a client can be tested over a real socket::

    with FakeMLService(seed=7) as service:
        httpx.post(f"{service.url}/api/predict/query-execution", json={"query_hash": 4001})
        service.update_faults(error_rate=0.2, endpoints=frozenset({"predict"}))
        service.fail_next(3, status=503, retry_after_s=1.0)

The parts, each its own module:

* :mod:`.service`: :class:`FakeMLService`, its lifecycle (bind, serve in daemon threads,
  stop), the request counters and the public fault API.
* :mod:`.connection`: one connection: requests framed by h11, answers written in one
  ``sendall``, and the faults that break the connection (delay, reset, truncation).
* :mod:`.faults`: :class:`Faults`, the seeded :class:`~.faults.FaultInjector` and the
  answers spoiled on purpose.
* :mod:`.routes`: paths to endpoint names; :mod:`.handlers`: the contract's endpoints;
  :mod:`.responses`: answers as data.
* :mod:`.process`: :class:`FakeServiceProcess`, the service in a child process.

Design notes:

* Locks are held for bookkeeping only: never while sleeping, never while reading or
  writing a socket. Injected delays wait on a ``threading.Event`` that
  :meth:`FakeMLService.stop` sets, so stopping never waits for a delay to run out.
* Randomness comes from the service's own ``random.Random(seed)``, drawn under the
  injector's lock, so a sequence of requests sees a reproducible sequence of faults.
* Nothing is logged per request; bodies that do not change are serialized once.

Quirks of the real service (a Flask application) reproduced on purpose:

* validation by truthiness: ``0`` counts as missing, ``true`` is accepted as a query hash
  (and echoed back as ``true``), ``4001.0`` is rejected;
* a body that is not JSON, or a wrong ``Content-Type``, gets **500** (not 400 or 415)
  from the predict, train, validate (and pattern detection) handlers, as does a JSON body
  that is not an object; an empty object gets 400 ``Request body required``;
* a failed training job is reported with **400** and the job's body;
* an unknown route gets the framework's JSON 404
  ``{"error": "Not found", "message": "Endpoint not found"}``; a known route with the
  wrong method gets the framework's **HTML** 405 page with an ``Allow`` header;
* ``model_id`` is an integer in ``/api/models`` and a string in ``/api/models/latest``;
* timestamps are ISO 8601 without a time zone (naive UTC).
"""

from pganalytics_core.testing.fake_service.faults import FAULT_MODES, FaultChanges, Faults
from pganalytics_core.testing.fake_service.process import FakeServiceProcess
from pganalytics_core.testing.fake_service.routes import ENDPOINT_NAMES
from pganalytics_core.testing.fake_service.service import FakeMLService

__all__ = [
    "ENDPOINT_NAMES",
    "FAULT_MODES",
    "FakeMLService",
    "FakeServiceProcess",
    "FaultChanges",
    "Faults",
]
