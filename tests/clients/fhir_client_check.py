"""Reads and searches the FHIR API with the `fhirpy` client library (a real FHIR client we did not write).

Usage: fhir_client_check.py --base http://127.0.0.1:PORT/fhir/r4 --token TOKEN

Reads Patient/MRN001, searches MRN001's vital-sign Observations two per page with `fetch_all()` (which
follows the Bundle's `next` links), counts patients with `count()`, and prints a JSON summary as the last
line. Exits 1 with the reason when a check fails.
"""

import argparse
import json
import sys

import requests
from fhirpy import SyncFHIRClient


class CountingSession:
    """Counts the GET requests fhirpy sends (one per page it fetches)."""

    def __init__(self):
        self.gets = 0
        self._original = requests.request

    def __call__(self, method, url, **kwargs):
        if method.lower() == "get":
            self.gets += 1
        return self._original(method, url, **kwargs)


def check(condition, message):
    if not condition:
        print(f"check failed: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()

    client = SyncFHIRClient(args.base, authorization=f"Bearer {args.token}")
    patient = client.reference("Patient", "MRN001").to_resource()
    check(patient["resourceType"] == "Patient", f"not a Patient: {patient}")
    check(patient["meta"]["lastUpdated"], "no meta.lastUpdated")

    counter = CountingSession()
    requests.request = counter
    try:
        vitals = (
            client.resources("Observation")
            .search(patient="MRN001", category="vital-signs")
            .limit(2)
            .fetch_all()
        )
    finally:
        requests.request = counter._original
    codes = sorted(obs["code"]["coding"][0]["code"] for obs in vitals)
    check(len(codes) == len(set(codes)), f"a page was fetched twice: {codes}")
    check("8867-4" in codes and "85354-9" in codes, f"missing vital signs: {codes}")

    labs = client.resources("Observation").search(patient="MRN001", category="laboratory").fetch()
    check(all(obs["category"][0]["coding"][0]["code"] == "laboratory" for obs in labs), "not labs")

    count = client.resources("Patient").count()
    found = client.resources("Patient").search(family="Doe").first()
    check(found is not None and found["id"] == "MRN001", f"family=Doe found {found}")

    print(json.dumps({
        "patient": patient["id"],
        "vital_signs": len(vitals),
        "pages_followed": counter.gets,
        "count": count,
    }))


if __name__ == "__main__":
    main()
