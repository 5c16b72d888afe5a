"""The error every failed call raises."""


class SwitchboardError(Exception):
    """A refusal from the server (its `code` and `message`), or a server that could not be reached."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
