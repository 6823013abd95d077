"""SageMaker framework images: ``--framework NAME:VERSION`` to the region's ECR image URI.

A table kept in the package (from the SageMaker Python SDK's ``image_uri_config``) rather than a call to AWS, so an
export works offline and is deterministic. A framework image has one URI for jobs (processing, training) and one
for serving (model, register, transform); for scikit-learn and XGBoost they are the same image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ExportError

__all__ = ["DEFAULT_FRAMEWORK", "FRAMEWORKS", "REGIONS", "Use", "known_frameworks", "resolve_image"]

Use = Literal["job", "serving"]
DEFAULT_FRAMEWORK = "sklearn:1.2-1"

# The first-party framework images (scikit-learn, XGBoost) live in one account per region ...
_FIRST_PARTY = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-central-1": "492215442770",
    "eu-north-1": "662702820516",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-south-1": "720646828776",
    "ca-central-1": "341280168497",
    "sa-east-1": "737474898029",
}
# ... the deep learning containers (PyTorch) in one account for all of these regions.
_DLC = {region: "763104351884" for region in _FIRST_PARTY}
REGIONS: tuple[str, ...] = tuple(sorted(_FIRST_PARTY))


@dataclass(frozen=True)
class _Image:
    accounts: dict[str, str]
    job: str  # repository:tag
    serving: str


FRAMEWORKS: dict[str, dict[str, _Image]] = {
    "sklearn": {
        version: _Image(_FIRST_PARTY, *[f"sagemaker-scikit-learn:{version}-cpu-py3"] * 2)
        for version in ("1.0-1", "1.2-1")
    },
    "xgboost": {
        version: _Image(_FIRST_PARTY, *[f"sagemaker-xgboost:{version}"] * 2)
        for version in ("1.5-1", "1.7-1")
    },
    "pytorch": {
        version: _Image(_DLC, f"pytorch-training:{version}", f"pytorch-inference:{version}")
        for version in ("2.0.1-cpu-py310", "2.1.0-cpu-py310")
    },
}  # fmt: skip


def known_frameworks() -> str:
    """``sklearn:1.0-1, sklearn:1.2-1, ...``: what an error message lists."""
    return ", ".join(f"{name}:{version}" for name, versions in FRAMEWORKS.items() for version in versions)


def resolve_image(framework: str, region: str, use: Use, *, where: str | None = None) -> str:
    """The ECR URI of ``NAME:VERSION`` in ``region`` for jobs or serving; ExportError naming what is known."""
    name, _, version = framework.partition(":")
    versions = FRAMEWORKS.get(name)
    if versions is None:
        raise ExportError(
            f"--framework {framework}: unknown framework {name!r}.",
            where=where,
            hint=f"Known: {known_frameworks()}; or give the image itself with --image URI.",
        )
    image = versions.get(version)
    if image is None:
        raise ExportError(
            f"--framework {framework}: unknown {name} version {version!r}.",
            where=where,
            hint=f"Known {name} versions: {', '.join(versions)}; or give the image itself with --image URI.",
        )
    account = image.accounts.get(region)
    if account is None:
        raise ExportError(
            f"--framework {framework}: no image is known in region {region!r}.",
            where=where,
            hint=f"Known regions: {', '.join(sorted(image.accounts))}; or give the image with --image URI.",
        )
    repository = image.job if use == "job" else image.serving
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}"
