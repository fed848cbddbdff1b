"""OneRoster conformance: the client the tests read the provider with, and its driver."""
