"""AWS access for promotion: a boto3 session from the standard credential chain, retrying clients, one error
translator.

Credentials come only from boto3's own chain (environment, ``--profile``, SSO, the instance or container role):
this package never reads, asks for or stores a key. Every botocore failure goes through :func:`translate`, so
each problem reads as one :class:`PromoteError` naming it, its fix and what promotion had already done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import PromoteError

if TYPE_CHECKING:
    import boto3

__all__ = ["DEFAULT_ATTEMPTS", "Clients", "check_region", "connect", "default_region", "new_session", "translate"]

DEFAULT_ATTEMPTS = 5  # calls in all (botocore's "standard" mode retries throttling and transient errors with backoff)

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_BAD_KEYS = {"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"}
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
}
_S3_PERMISSION = {"HeadObject": "GetObject", "HeadBucket": "ListBucket", "CreateMultipartUpload": "PutObject",
                  "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject"}  # fmt: skip


_LOADER: Any = None  # botocore's parsed service models, shared by every session this process makes


def new_session(profile: str | None = None, region: str | None = None) -> boto3.Session:
    """A fresh session (credentials resolved anew each time: a renewed SSO login counts) whose service models
    are parsed once per process, not once per promote (they are most of a no-op promote's time)."""
    import boto3
    import botocore.loaders
    import botocore.session

    global _LOADER
    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, profile_name=profile or None, region_name=region)


class Clients:
    """The clients promotion uses, made on first use from one session with the same retry policy."""

    def __init__(self, session: boto3.Session, region: str, *, max_attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.session = session
        self.region = region
        self.max_attempts = max_attempts
        self.profile = session.profile_name if session.profile_name != "default" else None
        self._made: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._made:
            from botocore.config import Config

            config = Config(
                region_name=self.region,
                retries={"mode": "standard", "total_max_attempts": self.max_attempts},  # the first one included
                connect_timeout=10,
                read_timeout=60,
            )
            self._made[service] = self.session.client(service, config=config)  # type: ignore[call-overload]
        return self._made[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def scheduler(self) -> Any:
        return self.client("scheduler")


def check_region(session: boto3.Session, region: str, done: str = "nothing was uploaded or created") -> None:
    """Refuse a region where SageMaker does not run before any call (botocore's endpoint data, every partition)."""
    for partition in session.get_available_partitions():
        if region in session.get_available_regions("sagemaker", partition_name=partition):
            return
    raise PromoteError(
        f"SageMaker is not available in region {region!r} (not in botocore's list of SageMaker regions); {done}.",
        hint="Pick a SageMaker region with --region (e.g. us-east-1, eu-west-1); if the region is new, upgrade "
        "boto3.",
    )


def connect(
    region: str,
    profile: str | None = None,
    *,
    max_attempts: int = DEFAULT_ATTEMPTS,
    done: str = "nothing was uploaded or created",
) -> Clients:
    """A session from the standard chain, checked: the profile exists, the region has SageMaker, credentials
    are found. Nothing is called on AWS yet; ``done`` ends the message of a problem (what was not done)."""
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        session = new_session(profile, region)
    except ProfileNotFound:
        raise _unknown_profile(profile, done) from None
    check_region(session, region, done)
    try:
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise translate(error, action="looking up AWS credentials", done=done) from None
    if credentials is None:
        raise _no_credentials(profile, done)
    return Clients(session, region, max_attempts=max_attempts)


def default_region(profile: str | None = None) -> str:
    """The region the standard chain configures (``AWS_REGION``, the profile's), or "" when none is set."""
    from botocore.exceptions import ProfileNotFound

    try:
        return new_session(profile).region_name or ""
    except ProfileNotFound:
        raise _unknown_profile(profile, "nothing was done") from None


def _unknown_profile(profile: str | None, done: str) -> PromoteError:
    return PromoteError(
        f"the AWS profile {profile!r} is not in your AWS config; {done}.",
        hint="List them with `aws configure list-profiles`; create it with `aws configure --profile NAME` or "
        "`aws configure sso --profile NAME`, or drop --profile to use the environment's credentials.",
    )


def _no_credentials(profile: str | None, done: str) -> PromoteError:
    where = f"profile {profile!r}" if profile else "the environment, ~/.aws, SSO or an instance role"
    return PromoteError(
        f"no AWS credentials were found in {where}; {done}.",
        hint="Sign in with `aws sso login --profile NAME` and pass --profile NAME, or `aws configure`, or set "
        "AWS_PROFILE. Never put keys in the notebook.",
    )


def _permission(error: Any) -> str:
    operation = getattr(error, "operation_name", "") or ""
    service = (getattr(error, "response", None) or {}).get("Error", {}).get("Service") or ""
    if operation in _S3_PERMISSION or operation in ("PutObject", "GetObject", "ListObjectsV2"):
        return f"s3:{_S3_PERMISSION.get(operation, operation)}"
    if operation.endswith("Schedule"):
        return f"scheduler:{operation}"
    return f"{service or 'sagemaker'}:{operation}" if operation else "the call"


def translate(error: BaseException, *, action: str, done: str, profile: str | None = None) -> PromoteError:
    """One clear PromoteError for a botocore failure during ``action``; ``done`` says what already happened."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
        SSOError,
        SSOTokenLoadError,
        TokenRetrievalError,
        UnauthorizedSSOTokenError,
    )

    if isinstance(error, PromoteError):
        return error
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return _no_credentials(profile, done)
    if isinstance(error, ProfileNotFound):
        return _unknown_profile(profile or getattr(error, "kwargs", {}).get("profile"), done)
    if isinstance(error, (TokenRetrievalError, SSOTokenLoadError, UnauthorizedSSOTokenError, SSOError)):
        return PromoteError(
            f"your AWS SSO session has expired or was never started ({action}); {done}.",
            hint=f"Run `aws sso login{f' --profile {profile}' if profile else ''}` and promote again.",
        )
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError)):
        return PromoteError(
            f"cannot reach the AWS endpoint while {action} ({error}); {done}.",
            hint="Check the network, a proxy (HTTPS_PROXY) or AWS_ENDPOINT_URL, then promote again: what was "
            "uploaded is skipped next time.",
        )
    if not isinstance(error, ClientError):
        return PromoteError(f"AWS failed while {action}: {error}; {done}.", hint="Promote again.")
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = str(details.get("Message", "")).strip().rstrip(".")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = getattr(error, "operation_name", "") or "the call"
    if code in _EXPIRED:
        return PromoteError(
            f"your AWS credentials have expired ({operation} while {action}); {done}.",
            hint="Refresh them (`aws sso login`, or a new session from your identity provider) and promote "
            "again: what was uploaded is skipped next time.",
        )
    if code in _BAD_KEYS:
        return PromoteError(
            f"AWS does not recognise your credentials ({code} on {operation} while {action}); {done}.",
            hint="Check AWS_PROFILE / --profile and `aws sts get-caller-identity`; the keys may be deleted or "
            "for another partition.",
        )
    if code in _DENIED or status == 403:
        return PromoteError(
            f"access denied: your AWS identity may not call {operation} ({_permission(error)}) while {action}; "
            f"{done}.",
            hint=f"Ask for the permission {_permission(error)} on the bucket/pipeline, or use a profile that has "
            "it (--profile). `aws sts get-caller-identity` shows who you are.",
        )
    if code == "NoSuchBucket" or (operation == "HeadBucket" and status == 404):
        return PromoteError(
            f"the S3 bucket does not exist ({operation} while {action}); {done}.",
            hint="Create it (`aws s3 mb s3://BUCKET --region REGION`) or pass an existing one with --bucket.",
        )
    if code in _THROTTLED or status == 429:
        return PromoteError(
            f"AWS kept throttling {operation} ({code}) while {action}, still after retries; {done}.",
            hint="Wait a minute and promote again: what was uploaded is skipped next time.",
        )
    if code == "ValidationException" and "role" in message.lower():
        return PromoteError(
            f"SageMaker rejected the role ARN while {action}: {message}; {done}.",
            hint="Use the ARN of an existing IAM role that trusts sagemaker.amazonaws.com "
            "(arn:aws:iam::ACCOUNT:role/NAME) with --role-arn.",
        )
    return PromoteError(
        f"AWS answered {code or status} to {operation} while {action}: {message or 'no message'}; {done}.",
        hint="Fix what AWS names, then promote again: what was uploaded is skipped next time.",
    )
