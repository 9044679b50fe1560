"""The web layer: screens (views/), the REST API (api/) and the URLs. The only workbench code that
may import `sync` (to start runs, read health, receive e-invoices); the domain below never does."""
