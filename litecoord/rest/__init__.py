"""The REST layer: the WSGI app on the console paths, its OpenAPI document and the waitress server."""
