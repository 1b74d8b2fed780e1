"""HTTP API views, one module per resource."""
