"""The config: what a user asks for, validated once. Imports the engine's registries (names a config gives must
exist) and nothing above.

    schema   the pydantic models of every section, and the JSON Schema editors use
    load     reading the YAML, `KEY=VALUE` overrides, errors that name the file, line and key
"""
