from __future__ import annotations

from fhir_api.vocabulary import METRIC_CODES, UNCODED_METRICS, metrics_of_token
from monitoring.models import Metric


def test_every_metric_is_either_coded_or_deliberately_not_exposed():
    assert set(Metric.values) <= set(METRIC_CODES) | set(UNCODED_METRICS)
    assert not set(METRIC_CODES) & set(UNCODED_METRICS)


def test_tokens_name_metrics_by_system_and_code():
    assert metrics_of_token("http://loinc.org", "8867-4") == {"heart_rate"}
    assert metrics_of_token("urn:iso:std:iso:11073:10101", "147842") == {"heart_rate"}
    assert metrics_of_token(None, "55283-6") == {"fetal_heart_rate"}
    assert metrics_of_token("", "8867-4") == set()
    assert metrics_of_token("http://loinc.org", "147842") == set()
