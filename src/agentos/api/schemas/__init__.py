"""Request and response models of the REST API, one module per resource (pure Pydantic,
shared by the routes and the SDK)."""
