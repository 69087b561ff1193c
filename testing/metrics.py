"""Reading metric values in tests: this process's registry, or a scraped exposition."""

from __future__ import annotations

import urllib.request

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families


def metric_value(name: str, **labels: str) -> float:
    """A sample of this process's registry (0 while it was never set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scraped_value(text: str, name: str, **labels: str) -> float | None:
    return scraped_samples(text).get((name, frozenset(labels.items())))


def scrape(url: str, headers: dict[str, str] | None = None, timeout: float = 5) -> str:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode()
