"""Only the chief's own workers may talk to it.

KerasTuner's chief serves its oracle over unauthenticated gRPC: whoever reaches
the port could read the space, take trials and report any score. imgexp's chief
requires a shared token on every call (a gRPC interceptor on the server, one on
each worker's channel) and accepts a trial's updates and its end only from the
worker it handed that trial to, with the values it was handed.

The token is the environment variable IMGEXP_CHIEF_TOKEN where set (both
sides), else the chief writes one into the search folder (`.chief-token`,
readable by the user only) and workers on the shared filesystem read it there.
`search.distributed.insecure=true` turns the check off; the chief says so.
"""

import hmac
import os
import secrets
from pathlib import Path

import grpc

from imgexp import safe_write
from imgexp.errors import UserError

TOKEN_ENV = "IMGEXP_CHIEF_TOKEN"
TOKEN_FILE = ".chief-token"
TOKEN_HEADER = "x-imgexp-token"
TUNER_HEADER = "x-imgexp-tuner-id"


def chief_token(search_dir: Path) -> str:
    """The token this chief requires: the environment's, the search folder's, or a new one written there
    (a chief started again keeps its token, so running workers go on)."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = search_dir / TOKEN_FILE
    if path.is_file() and not path.is_symlink():
        token = path.read_text().strip()
        if len(token) >= 32:
            return token
    token = secrets.token_urlsafe(32)

    def write_private(temp: Path) -> None:
        os.chmod(temp, 0o600)  # before a byte of it is written
        temp.write_text(token + "\n")

    safe_write.write_with(path, write_private, search_dir)
    return token


def worker_token(search_dir: Path) -> str:
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = search_dir / TOKEN_FILE
    try:
        return path.read_text().strip()
    except OSError:
        raise UserError(f"{path}: no chief token; a worker needs the chief's search folder (search.dir, shared) or "
                        f"the token in the environment variable {TOKEN_ENV}") from None


class RequireToken(grpc.ServerInterceptor):
    """Refuses, as UNAUTHENTICATED, every call without the token."""

    def __init__(self, token: str):
        self.token = token.encode()

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "imgexp's chief answers only its workers (no token)")

        self.denied = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, handler_call_details):
        given = dict(handler_call_details.invocation_metadata or ()).get(TOKEN_HEADER, "")
        if hmac.compare_digest(given.encode(), self.token):
            return continuation(handler_call_details)
        return self.denied


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, details, metadata):
        self.method, self.timeout, self.credentials = details.method, details.timeout, details.credentials
        self.wait_for_ready, self.compression = details.wait_for_ready, details.compression
        self.metadata = metadata


class SendToken(grpc.UnaryUnaryClientInterceptor):
    """Adds the token and this worker's tuner id to every call."""

    def __init__(self, token: str, tuner_id: str):
        self.headers = [(TOKEN_HEADER, token), (TUNER_HEADER, tuner_id)]

    def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = [*(client_call_details.metadata or ()), *self.headers]
        return continuation(_CallDetails(client_call_details, metadata), request)


def caller(context) -> str:
    """The tuner id a worker's call came with."""
    return dict(context.invocation_metadata() or ()).get(TUNER_HEADER, "")


def check_holder(oracle, context, trial_id: str, values: dict | None = None) -> None:
    """Abort unless the calling worker holds `trial_id` (and, at its end, reports the values it was handed)."""
    held = oracle.ongoing_trials.get(caller(context))
    if held is None or held.trial_id != trial_id:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, f"trial {trial_id} is not this worker's")
    if values is not None and values != held.hyperparameters.values:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, f"trial {trial_id}: not the values it was handed")
