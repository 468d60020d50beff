"""The config: what a user asks for, validated once. Imports the engine's registries (names a config gives must
exist) and nothing above.

    schema     the pydantic models of every section, and the JSON Schema editors use
    training   the `training` section; tracking  the `tracking` section (metrics CSV, MLflow)
    load       reading the YAML, `KEY=VALUE` overrides, errors that name the file, line and key
    safe_yaml  YAML 1.2 scalars (`1e-3` is a number) and the limits that refuse hostile files
"""
