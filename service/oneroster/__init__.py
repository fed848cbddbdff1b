"""The OneRoster 1.2 rostering provider: the service's records read through the binding (docs/oneroster.md)."""

# Every path of the provider starts with this.
PREFIX = "/ims/oneroster/rostering/v1p2"
