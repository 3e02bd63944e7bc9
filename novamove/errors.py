"""Errors with documented exit codes.

Every error novamove raises on purpose is a NovamoveError whose str() is one line that an
operator can act on; the CLI prints it and exits with ``exit_code``.
"""

from __future__ import annotations

from typing import Optional

# Documented exit codes (docs/cli.md "Exit codes", and `novamove --help`).
EXIT_OK = 0
EXIT_FAILED = 1          # the move was attempted and did not land (rolled back, error, aborted)
EXIT_USAGE = 2           # bad arguments (click's own usage errors use 2 too)
EXIT_NOT_FOUND = 3       # unknown or ambiguous server / host
EXIT_PRECONDITION = 4    # wrong state, same host, disabled/down target, no capacity
EXIT_AUTH = 5            # missing credentials / unknown cloud / 403
EXIT_UNREACHABLE = 6     # API unreachable
EXIT_TIMEOUT = 7         # gave up waiting
EXIT_INCOMPLETE = 8      # a drain ended with servers still on the host (listed in the report)
EXIT_INTERRUPTED = 130   # Ctrl-C


class NovamoveError(Exception):
    exit_code = EXIT_FAILED
    # The cloud's x-openstack-request-id of the failed mutating request, when there was an
    # answer (the message then ends with " (request ID req-...)", to grep the cloud's logs).
    request_id: Optional[str] = None

    def __init__(self, message: str, request_id: Optional[str] = None):
        # One line, always: multi-line API messages are folded.
        text = " ".join(str(message).split())
        if request_id:
            text += f" (request ID {request_id})"
        super().__init__(text)
        self.request_id = request_id


class UsageError(NovamoveError):
    exit_code = EXIT_USAGE


class NotFound(NovamoveError):
    exit_code = EXIT_NOT_FOUND


class Ambiguous(NotFound):
    pass


class PreconditionFailed(NovamoveError):
    exit_code = EXIT_PRECONDITION


class NoCapacity(PreconditionFailed):
    pass


class AuthError(NovamoveError):
    exit_code = EXIT_AUTH


class Forbidden(AuthError):
    pass


class Unreachable(NovamoveError):
    exit_code = EXIT_UNREACHABLE
    transient = True            # worth trying again in a moment (retry.patiently does)


class Untrusted(Unreachable):
    """The API's TLS certificate is not trusted (no --os-cacert): no retry changes that."""
    transient = False


class NoEndpoint(Unreachable):
    """The catalog has no endpoint for this service, interface or region: unreachable, and no
    retry changes that (a configuration to fix)."""
    transient = False


class MoveFailed(NovamoveError):
    exit_code = EXIT_FAILED


class Timeout(NovamoveError):
    exit_code = EXIT_TIMEOUT


class Interrupted(NovamoveError):
    exit_code = EXIT_INTERRUPTED


def is_ambiguous(exc: BaseException) -> bool:
    """Whether a failed mutating call may still have been applied by the cloud: a timeout or
    lost connection (Unreachable), or a 5xx/unexpected answer (a bare NovamoveError). Refusals
    (4xx: PreconditionFailed, NotFound, AuthError) and interrupts are not ambiguous."""
    return type(exc) in (NovamoveError, Unreachable)


# Asked to put a server where it already is. The library reports it as a success (changed:
# False, for automation); the command line says so with its own code, unless --if-needed.
EXIT_ALREADY_THERE = 9


class AlreadyThere(PreconditionFailed):
    exit_code = EXIT_ALREADY_THERE


# `novamove doctor` found drift it did not (or could not) repair: the findings are listed.
EXIT_FINDINGS = 10
