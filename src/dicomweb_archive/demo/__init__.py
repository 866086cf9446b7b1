"""The demo and its sample data: outside the core, which never imports them."""
