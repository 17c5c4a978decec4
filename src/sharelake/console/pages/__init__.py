"""One module per console section: thin handlers that parse a form, call a service and render."""
