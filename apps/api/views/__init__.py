"""One view per operation: validate input, call a service, shape the answer. A module
per part of the API."""
