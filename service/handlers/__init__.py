"""HTTP handlers: parse and validate, call a repository, render."""
