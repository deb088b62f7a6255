"""The server's error: a status and a one-line message, answered as ``{"error": message}``."""


class RequestError(Exception):
    """A problem with the request (4xx), raised anywhere in the serve package."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
