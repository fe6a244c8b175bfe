"""Settings, read once from the environment (`SHANZHI_*`) or a `.env` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Defaults that are fine on a laptop and refused anywhere else.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789"
DEV_DATA_KEY = "dev-only-data-key-change-me-0123456789ab"
DEV_WECHAT_APPID = "wx-shanzhi-dev"
DEV_WECHAT_SECRET = "dev-only-wechat-secret"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHANZHI_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Field(
        Environment.development,
        description="development (emulated WeChat, demo data allowed), test, or production.",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("shanzhi")),
        description="Where the embedded PostgreSQL and S3 keep their data.",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool | None = Field(
        None, description="One JSON object per log line; unset: JSON except in development."
    )

    host: str = Field("127.0.0.1", description="Address `shanzhi serve` listens on.")
    port: int = Field(8000, description="Port `shanzhi serve` listens on.")

    database_url: str | None = Field(
        None,
        description="postgresql+asyncpg://user:pass@host:port/db; unset: embedded PostgreSQL.",
    )
    database_pool_size: int = Field(
        10, ge=1, description="Connections kept per process (as many again may be opened)."
    )
    database_pool_timeout_seconds: float = Field(
        2,
        gt=0,
        description="How long a request waits for a free database connection before it "
        "answers 503 `service.database_unavailable`.",
    )
    database_connect_timeout_seconds: float = Field(
        2, gt=0, description="How long opening a database connection may take."
    )
    database_statement_timeout_seconds: float = Field(
        10,
        ge=0,
        description="PostgreSQL's `statement_timeout` for the API's connections (0: none); "
        "a statement cut short answers 503.",
    )
    database_idle_in_transaction_timeout_seconds: float = Field(
        30,
        ge=0,
        description="PostgreSQL's `idle_in_transaction_session_timeout` for the API's and the "
        "worker's connections (0: none): a transaction left waiting that long is ended.",
    )

    s3_endpoint: str | None = Field(
        None, description="host:port of an S3 server (MinIO, SeaweedFS); unset: embedded S3."
    )
    s3_secure: bool = Field(False, description="Use HTTPS to reach the S3 endpoint.")
    s3_access_key: str | None = Field(None, description="S3 access key.")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret key.")
    s3_bucket: str = Field("shanzhi", description="Bucket for uploads (created on start).")
    s3_region: str = Field(
        "us-east-1", description="Region used for signing (presigning needs it explicitly)."
    )
    s3_connect_timeout_seconds: float = Field(
        1, gt=0, description="How long connecting to S3 may take (one retry follows)."
    )
    s3_read_timeout_seconds: float = Field(
        3, gt=0, description="How long S3 may take to answer one request."
    )
    s3_threads: int = Field(
        8, ge=1, le=256, description="Threads (and connections) for S3 calls, per process."
    )
    s3_breaker_seconds: float = Field(
        5,
        ge=0,
        description="Once S3 failed to answer, uploads are refused at once (503 "
        "`upload.storage_unavailable`) for this long before S3 is tried again.",
    )
    s3_public_endpoint: str | None = Field(
        None,
        description="URL phones use to reach S3 (the host is signed); defaults to the endpoint.",
    )

    wechat_appid: str = Field(DEV_WECHAT_APPID, description="Mini-program AppID.")
    wechat_secret: SecretStr = Field(
        SecretStr(DEV_WECHAT_SECRET), description="Mini-program AppSecret."
    )
    wechat_api_base: str | None = Field(
        None,
        description="WeChat server API base; unset in development: the bundled emulator.",
    )
    wechat_timeout_seconds: float = Field(5.0, description="Timeout of one WeChat API call.")
    emulator_port: int = Field(8001, description="Port of the bundled WeChat emulator.")

    redis_url: str | None = Field(
        None,
        description="redis://host:port/db for rate limits shared by replicas; unset: in memory.",
    )
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description="Overrides of the rate limits (per user, or per client address for the "
        'calls without a token), as JSON: {"case_submit": "20/minute", "login_address": '
        '"60/minute"}.',
    )
    case_autoclose_days: int = Field(
        7, description="Days after which a resolved case the resident never rated closes."
    )
    case_reopen_days: int = Field(7, description="Days a resident may reopen a resolved case.")
    upload_ttl_minutes: int = Field(
        15, description="Lifetime of an upload policy; unattached uploads are removed later."
    )
    points_pickup_hours: int = Field(
        72, ge=1, le=24 * 30, description="Hours a reserved reward waits for pickup."
    )
    worker_interval_seconds: float = Field(
        60, gt=0, description="Pause between two runs of `shanzhi worker`'s periodic jobs."
    )
    points_expiry_policy: str = Field(
        "end_of_next_year",
        pattern=r"^(end_of_next_year|end_of_year|never|days:[1-9][0-9]{0,4})$",
        description="When awarded points expire (Asia/Shanghai calendar): `end_of_next_year`, "
        "`end_of_year`, `days:<n>` after the award, or `never`.",
    )

    volunteer_checkin_grace_minutes: int = Field(
        15,
        ge=0,
        le=240,
        description="Check-in opens this many minutes before an activity starts; check-out "
        "is accepted until this many minutes after it ends.",
    )
    volunteer_max_accuracy_m: float = Field(
        100,
        gt=0,
        description="A location reported with a worse accuracy (metres) sends the attendance "
        "to staff review.",
    )
    volunteer_max_speed_mps: float = Field(
        25,
        gt=0,
        description="Moving faster than this (metres per second) between two reported points "
        "of an attendance flags it for staff review.",
    )
    volunteer_cancel_hours: float = Field(
        2,
        ge=0,
        description="A volunteer may cancel an enrolment until this many hours before the "
        "activity starts.",
    )
    mediation_consent_hours: int = Field(
        72,
        ge=1,
        le=24 * 30,
        description="Hours a respondent has to accept a mediation invitation; unanswered, "
        "the case ends as not mediated.",
    )
    mediation_time_limit_days: int = Field(
        30,
        ge=1,
        le=365,
        description="Days a mediation may take from the request; past it, it is escalated to "
        "the admins above.",
    )
    jwt_secret: SecretStr = Field(SecretStr(DEV_JWT_SECRET), description="HS256 signing key.")
    access_token_minutes: int = Field(15, description="Lifetime of an access token.")
    refresh_token_days: int = Field(30, description="Lifetime of a refresh token.")
    data_key: SecretStr = Field(
        SecretStr(DEV_DATA_KEY),
        description="Key for encrypting and hashing personal data (phone numbers).",
    )

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_development(self) -> Settings:
        if self.env is Environment.production:
            weak = [
                name
                for name, value, default in (
                    ("SHANZHI_JWT_SECRET", self.jwt_secret.get_secret_value(), DEV_JWT_SECRET),
                    ("SHANZHI_DATA_KEY", self.data_key.get_secret_value(), DEV_DATA_KEY),
                    (
                        "SHANZHI_WECHAT_SECRET",
                        self.wechat_secret.get_secret_value(),
                        DEV_WECHAT_SECRET,
                    ),
                )
                if value == default or len(value) < 16
            ]
            if weak:
                raise ValueError(f"production needs real secrets: set {', '.join(weak)}")
            missing = [
                name
                for name, value in (
                    ("SHANZHI_DATABASE_URL", self.database_url),
                    ("SHANZHI_S3_ENDPOINT", self.s3_endpoint),
                    ("SHANZHI_WECHAT_API_BASE", self.wechat_api_base),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"production starts nothing embedded: set {', '.join(missing)}")
        return self

    @property
    def json_logs(self) -> bool:
        return (
            self.log_json if self.log_json is not None else self.env is not Environment.development
        )

    @property
    def emulated_wechat(self) -> bool:
        return self.wechat_api_base is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
