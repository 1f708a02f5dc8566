"""One error base carrying its HTTP status; the data plane turns any of them into
``{"error": "..."}`` with that status.

Example::

    raise InvalidInput("inputs[0]: shape [2, 3] needs 6 values, got 5")
"""

from __future__ import annotations

__all__ = [
    "ISVCError",
    "InvalidInput",
    "ModelNotFound",
    "ModelNotReady",
    "ServerOverloaded",
    "RequestTimeout",
    "RevisionUnavailable",
    "ColdStartTimeout",
    "UserCodeError",
    "PredictorError",
    "StorageError",
    "SpecError",
    "PayloadTooLarge",
    "NotConfigured",
    "InternalError",
]


class ISVCError(Exception):
    """Base of every error isvc raises on purpose; ``status_code`` is its HTTP status."""

    status_code: int = 500
    row_specific: bool = False
    """Whether a failed batch may be retried row group by row group to find the culprit
    (bad input, a model error); never for back-pressure, timeouts or readiness."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other constructor arguments: rebuild from class, message and
        # attributes so that an error crossing a replica hop keeps its class and status.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[ISVCError], message: str, state: dict[str, object]) -> ISVCError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class InvalidInput(ISVCError):
    """The request body is malformed or does not fit the model (400)."""

    status_code = 400
    row_specific = True


class ModelNotFound(ISVCError):
    """No model is served under this name (404)."""

    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' is not served here")
        self.name = name


class ModelNotReady(ISVCError):
    """The model exists but has not finished loading (503)."""

    status_code = 503

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' is not ready")
        self.name = name


class ServerOverloaded(ISVCError):
    """Back-pressure: too many requests in flight or queued (503), as Ray Serve does."""

    status_code = 503


class RevisionUnavailable(ISVCError):
    """The predictor revision a request was routed to is gone (deleted by a promote or rollback) (503)."""

    status_code = 503


class ColdStartTimeout(ISVCError):
    """A predictor scaled to zero did not get a replica up within the cold-start bound (503)."""

    status_code = 503


class RequestTimeout(ISVCError):
    """The component's ``timeout`` passed before the response was ready (504)."""

    status_code = 504


class UserCodeError(ISVCError):
    """An exception escaped a user hook (``preprocess``, ``postprocess``, ...) (500)."""

    status_code = 500
    row_specific = True

    def __init__(self, hook: str, exc: BaseException) -> None:
        super().__init__(f"{hook} raised {type(exc).__name__}: {exc}")
        self.hook = hook


class PredictorError(ISVCError):
    """The model itself failed on a well-formed request (500)."""

    status_code = 500
    row_specific = True


class StorageError(ISVCError):
    """A storage URI could not be resolved or downloaded."""

    status_code = 500


class SpecError(ISVCError):
    """An InferenceService document is invalid; ``problems`` holds one line per field path."""

    status_code = 400

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid InferenceService:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class PayloadTooLarge(ISVCError):
    """The request body is over the service's body limit (413)."""

    status_code = 413


class NotConfigured(ISVCError):
    """The endpoint exists but this model has no component for it, e.g. no explainer (501)."""

    status_code = 501


class InternalError(ISVCError):
    """An unexpected exception in isvc itself (500); the server keeps serving."""

    status_code = 500
