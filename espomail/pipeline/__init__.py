"""The import pipeline: small named steps run in order over each delivery of an email."""
