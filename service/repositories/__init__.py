"""Data access: one module per aggregate, each running named queries from `sql/`.

Functions take the connection first and keyword-only arguments after it; the
caller owns the transaction. Constraint violations become domain errors.
"""
