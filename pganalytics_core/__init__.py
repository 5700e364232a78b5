"""pganalytics_core: the resilience core of pganalytics' ML-service call path."""

from pganalytics_core.breaker import (
    BreakerConfig,
    BreakerMetrics,
    CircuitBreaker,
    State,
    StateListener,
)
from pganalytics_core.cache import CacheStats, PredictionCache
from pganalytics_core.client import AsyncMLClient, MLClient
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
    TrainingTimeoutError,
)
from pganalytics_core.models import (
    ConfidenceInterval,
    Pattern,
    PatternDetection,
    Prediction,
    PredictionOutcome,
    PredictionRequest,
    TrainingJob,
    TrainingState,
    TrainingStatus,
    ValidationResult,
)
from pganalytics_core.retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AsyncMLClient",
    "BadRequestError",
    "BreakerConfig",
    "BreakerMetrics",
    "CacheStats",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfidenceInterval",
    "ConfigError",
    "MLClient",
    "MLServiceError",
    "MalformedResponseError",
    "NotFoundError",
    "Pattern",
    "PatternDetection",
    "PgAnalyticsError",
    "Prediction",
    "PredictionCache",
    "PredictionOutcome",
    "PredictionRequest",
    "RateLimitedError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "ServiceConnectionError",
    "ServiceStatusError",
    "ServiceTimeoutError",
    "State",
    "StateListener",
    "TrainingJob",
    "TrainingJobFailedError",
    "TrainingState",
    "TrainingStatus",
    "TrainingTimeoutError",
    "ValidationResult",
    "__version__",
]
