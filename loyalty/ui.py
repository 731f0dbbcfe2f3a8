"""What the loyalty app adds to the shared pages (core.registry)."""


def register() -> None:
    pass
