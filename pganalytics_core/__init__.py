"""pganalytics_core: the resilience core of pganalytics' ML-service call path."""

from pganalytics_core.breaker import (
    BreakerConfig,
    BreakerMetrics,
    CircuitBreaker,
    State,
    StateListener,
)
from pganalytics_core.errors import (
    BadRequestError,
    CircuitOpenError,
    ConfigError,
    MalformedResponseError,
    MLServiceError,
    NotFoundError,
    PgAnalyticsError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    ServiceConnectionError,
    ServiceStatusError,
    ServiceTimeoutError,
    TrainingJobFailedError,
)

__version__ = "0.1.0"

__all__ = [
    "BadRequestError",
    "BreakerConfig",
    "BreakerMetrics",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "MLServiceError",
    "MalformedResponseError",
    "NotFoundError",
    "PgAnalyticsError",
    "RateLimitedError",
    "ResponseTooLargeError",
    "ServerError",
    "ServiceConnectionError",
    "ServiceStatusError",
    "ServiceTimeoutError",
    "State",
    "StateListener",
    "TrainingJobFailedError",
    "__version__",
]
