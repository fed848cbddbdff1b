"""Turning what a client sends into checked values, or a 400, 408, 413, 415 or 422.

- body.py: reading the body (415, 408, 413) and decoding it as a JSON object (400)
- decoding.py: JSON documents with integers beyond 64 bits
- fields.py: field checks, and a whole object checked against them (422)
- cursors.py: page cursors and the digest that binds them to their list
- query.py: path ids and query strings: pages, filters, ids, integers

Import from the module that holds the name.
"""
