"""Our overrides of Django's locale formats (settings.FORMAT_MODULE_PATH)."""
