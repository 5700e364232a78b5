"""A Locust file for the Locust integration test (run by Locust in a subprocess)."""

from __future__ import annotations

import os

from locust import task

from pganalytics_core.load.locust_support import ml_user_class, record_samples

record_samples(os.environ["PGANALYTICS_SAMPLES_DIR"], name="locust-predictions")
MLUser = ml_user_class()


class Predictions(MLUser):  # type: ignore[misc,valid-type]
    @task
    def predict(self) -> None:
        self.timed("predict", lambda: self.ml.predict(4001))
