"""The errors ModelBoard raises, each with a message a user can act on.

Entry points (the CLI, the Streamlit shell) translate these into an exit code
or an on-screen message in one place; nothing below them catches them to hide.
"""


class ModelBoardError(Exception):
    """Base class: the message is meant to be shown to the person as is."""


class ConfigurationError(ModelBoardError):
    """A setting (environment variable, file path) is wrong."""


class ValidationError(ModelBoardError):
    """An input (form field, CLI argument, upload) is not acceptable."""


class NotFound(ModelBoardError):
    """The thing asked for does not exist."""


class PermissionDenied(ModelBoardError):
    """The acting user's role does not allow this action."""


class AuthenticationFailed(ModelBoardError):
    """Login failed. The message never says whether the user exists."""


class SessionExpired(ModelBoardError):
    """The session was idle for too long and must log in again."""


class StoreError(ModelBoardError):
    """The governance store (DuckDB or PostgreSQL) cannot be used."""


class StoreCorrupt(StoreError):
    """The governance store file is not a readable DuckDB database."""


class SchemaTooNew(StoreError):
    """The governance store was written by a newer ModelBoard."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for too long."""


class Conflict(StoreError):
    """A write would repeat a row that must be unique (a second signature of the same person, say); whichever
    engine holds the store reports it as this, so no service needs to know a driver's exceptions."""


class RegistryError(ModelBoardError):
    """The MLflow registry cannot be reached or answered unexpectedly."""


class ProcessStopped(ModelBoardError):
    """The process doing the work was told to stop (its parent ended); what it did is recorded as interrupted."""
