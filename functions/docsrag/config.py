"""One typed place for every setting.

Values come from environment variables (and a `.env` file in the working directory). Every field's
environment variable is its name in upper case: `openrouter_api_key` is `OPENROUTER_API_KEY`.
Invalid values fail at start with a message that names the variable (see `load_settings`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from docsrag.errors import ConfigError

# Free OpenRouter models. The primary is a plain instruction model: a reasoning model (gpt-oss)
# can spend the whole output budget thinking and return no answer, so it is only the last fallback.
DEFAULT_CHAT_MODEL = "meta-llama/llama-3.3-70b-instruct:free"
DEFAULT_FALLBACK_MODELS = (
    "mistralai/mistral-small-3.2-24b-instruct:free",
    "openai/gpt-oss-20b:free",
)

CommaList = Annotated[list[str], NoDecode]

# What a function keeps after the request time budget ends: the response, logs and metrics.
FUNCTION_TIMEOUT_MARGIN_SECONDS = 2.0

# Characters a URL fragment may carry as they are (RFC 3986 pchar plus "/" and "?").
_FRAGMENT_SAFE = "/?!$&'()*+,;=:@-._~"


def _split_commas(value: object) -> object:
    """Accept `a,b,c` or a JSON list for list settings given as one environment string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _check_http_url(value: str, *, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- Model endpoint (OpenRouter or any OpenAI-compatible API) ---------------------------
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    chat_model: str = DEFAULT_CHAT_MODEL
    fallback_models: CommaList = Field(default_factory=lambda: list(DEFAULT_FALLBACK_MODELS))
    llm_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    llm_max_retries: int = Field(default=1, ge=0, le=10)
    llm_max_output_tokens: int = Field(default=800, ge=64, le=16_000)
    # An OpenAI key for the Agents SDK's tracing exporter; tracing stays off without it.
    openai_tracing_api_key: SecretStr | None = None

    # --- Embeddings ---------------------------------------------------------------------------
    embedding_model: str = "openai/text-embedding-3-small"
    embedding_dimensions: int = Field(default=1536, ge=8, le=8192)
    embedding_batch_size: int = Field(default=64, ge=1, le=2048)
    embedding_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    embedding_max_retries: int = Field(default=5, ge=0, le=20)

    # --- Qdrant ---------------------------------------------------------------------------------
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path = Path(".data/qdrant")
    qdrant_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    collection_name: str = Field(default="docs", pattern=r"^[A-Za-z0-9_-]{1,128}$")

    # --- The documentation site ------------------------------------------------------------------
    # Public URL of the site, including any Docusaurus `baseUrl`, e.g. https://example.org/docs-site
    site_url: str = "http://localhost:3000"
    # Docusaurus `routeBasePath` of the docs plugin: Markdown sources map to /<this>/<slug>.
    docs_route_base_path: str = "docs"
    # Versions, locales and blogs (docs/versions-and-locales.md). The site's default locale:
    # pages without a locale prefix (`/docs/x`, not `/fr/docs/x`) and Markdown outside `i18n/`.
    default_locale: str = Field(default="en", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    # The docs version questions use when neither the page nor the question names one; unset:
    # the version the site serves without a version segment (the latest release).
    default_version: str | None = None
    # Blog posts answer when the docs do not cover a question or it asks about a release; off:
    # never.
    include_blog: bool = True
    # How long a chat container trusts its list of the site's versions and locales (seconds).
    site_catalog_ttl_seconds: float = Field(default=300.0, ge=0, le=86_400)
    # The site's name and summary: MCP tool descriptions and llms.txt say what the docs are.
    site_title: str = Field(default="Documentation", min_length=1, max_length=200)
    site_description: str | None = Field(default=None, max_length=1000)
    # The S3 bucket the site is synced to (reconcile lists it; events name their own bucket).
    docs_bucket: str | None = None
    # Key prefix of the site inside the S3 bucket (e.g. `site/`); keys outside it are ignored.
    key_prefix: str = ""
    cors_origins: CommaList = Field(default_factory=lambda: ["http://localhost:3000"])
    # On AWS the HTTP API answers CORS itself (its allow-list wins); the app's middleware is off.
    cors_via_gateway: bool = False

    # --- Chunking -----------------------------------------------------------------------------
    chunk_target_tokens: int = Field(default=350, ge=50, le=4000)
    chunk_max_tokens: int = Field(default=512, ge=64, le=8000)
    chunk_overlap_tokens: int = Field(default=40, ge=0, le=1000)
    chunk_min_tokens: int = Field(default=40, ge=0, le=1000)

    # --- Ingest ---------------------------------------------------------------------------------
    max_document_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Chunks indexed per page at most; the rest of a longer page is left out (and reported).
    max_chunks_per_page: int = Field(default=500, ge=1, le=100_000)

    # --- Retrieval ------------------------------------------------------------------------------
    retrieval_top_k: int = Field(default=6, ge=1, le=50)
    # Places a hit moves down for each hit of its page already chosen (0: fused order only).
    retrieval_page_diversity: float = Field(default=1.0, ge=0.0, le=10.0)
    # The docs are taken to cover a question when either signal reaches its floor (see
    # docsrag.retrieval). Dense: best cosine similarity of the question to a section; unset, the
    # floor is calibrated on the collection itself (mean + DENSE_FLOOR_SPREAD standard deviations
    # of the cosine between its own sections), so it follows the embedding model's scale.
    # Sparse: share of the question's terms found in the retrieved sections (0..1).
    dense_relevance_floor: float | None = Field(default=None, ge=-1.0, le=1.0)
    dense_floor_spread: float = Field(default=0.25, ge=0.0, le=5.0)
    sparse_relevance_floor: float = Field(default=0.75, ge=0.0, le=1.0)
    # And only when every name the question uses (a product, tool or API written as a name,
    # docsrag.names) occurs in the retrieved sections: "Tailwind in a Vue app" is not covered by
    # docs that never mention Tailwind, however well its other words match.
    require_question_names: bool = True
    history_turns_for_retrieval: int = Field(default=2, ge=0, le=20)

    # Answers link only to the site itself and to the URLs of their cited sources (off: any
    # http(s) link the model writes). Raw HTML, other schemes and outside images are always
    # dropped (docsrag.safety).
    answer_links_site_only: bool = True

    # --- Time budget (docsrag.budget) -------------------------------------------------------------
    # One deadline per chat request, shared by the query embedding, the search and the model:
    # the answer (retrieval-only at worst) is ready and stored before it ends. The default fits
    # API Gateway's 30 s with margin.
    request_time_budget_seconds: float = Field(default=25.0, ge=1.0, le=900.0)
    # The function's own timeout (template.yaml sets it per function); when set, the budget must
    # end FUNCTION_TIMEOUT_MARGIN_SECONDS before it.
    function_timeout_seconds: float | None = Field(default=None, gt=0, le=900.0)

    # --- Chat API -------------------------------------------------------------------------------
    max_message_chars: int = Field(default=4000, ge=1, le=100_000)
    max_history_messages: int = Field(default=20, ge=0, le=200)
    max_history_chars: int = Field(default=16_000, ge=0, le=1_000_000)

    # Per-client-IP limit on `POST /chat` answers (requests per minute; 0 = off); in memory
    # locally, a DynamoDB counter on Lambda (THREADS_TABLE). Only valid requests count.
    chat_rate_limit_per_minute: int = Field(default=20, ge=0, le=100_000)
    # Per-client-IP limit on `POST /session` (new or renewed visitor tokens); 0 = off.
    session_rate_limit_per_minute: int = Field(default=30, ge=0, le=100_000)

    # --- ChatKit ----------------------------------------------------------------------------------
    # DynamoDB table for ChatKit threads (Lambda); unset: a SQLite file at CHATKIT_SQLITE_PATH.
    threads_table: str | None = None
    chatkit_sqlite_path: Path = Path(".data/chatkit.sqlite3")
    chatkit_ttl_days: int = Field(default=30, ge=1, le=3650)
    # Keys (comma-separated, each >= 32 bytes) that sign visitor tokens; the first signs, all
    # verify. Unset locally: a random key per process (tokens die with the process).
    visitor_token_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    visitor_token_ttl_days: int = Field(default=30, ge=1, le=3650)
    # Per-visitor rate limit on ChatKit answer requests: requests per minute; 0 = off.
    visitor_rate_limit_per_minute: int = Field(default=10, ge=0, le=10_000)

    # --- MCP server (`/mcp`) for coding assistants ------------------------------------------------
    mcp_enabled: bool = True
    # Private docs: clients must send `Authorization: Bearer <token>`; unset: open like /chat.
    mcp_bearer_token: SecretStr | None = None
    # Requests per minute per client IP (in memory locally, DynamoDB on Lambda); 0 = off.
    mcp_rate_limit_per_minute: int = Field(default=60, ge=0, le=100_000)
    mcp_max_request_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("fallback_models", "cors_origins", mode="before")
    @classmethod
    def _lists_from_commas(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("visitor_token_keys", mode="before")
    @classmethod
    def _token_keys(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("visitor_token_keys")
    @classmethod
    def _token_key_length(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            if len(key.get_secret_value().encode()) < 32:
                raise ValueError("VISITOR_TOKEN_KEYS: each key must be at least 32 bytes")
        return value

    @field_validator("threads_table", mode="before")
    @classmethod
    def _blank_table(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("openrouter_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_http_url(value, name="OPENROUTER_BASE_URL")

    @field_validator("site_url")
    @classmethod
    def _site_url(cls, value: str) -> str:
        return _check_http_url(value, name="SITE_URL")

    @field_validator("qdrant_url")
    @classmethod
    def _qdrant_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _check_http_url(value.strip(), name="QDRANT_URL")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                raise ValueError("CORS_ORIGINS is an allow-list: name the site origins, not '*'")
            _check_http_url(origin, name="CORS_ORIGINS")
        return [origin.rstrip("/") for origin in value]

    @field_validator("docs_route_base_path", "key_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip().strip("/")

    @field_validator(
        "openrouter_api_key",
        "qdrant_api_key",
        "openai_tracing_api_key",
        "default_version",
        "mcp_bearer_token",
        "site_description",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _chunk_sizes(self) -> Settings:
        if not self.chunk_min_tokens <= self.chunk_target_tokens <= self.chunk_max_tokens:
            raise ValueError(
                "CHUNK_MIN_TOKENS <= CHUNK_TARGET_TOKENS <= CHUNK_MAX_TOKENS must hold, got "
                f"{self.chunk_min_tokens}, {self.chunk_target_tokens}, {self.chunk_max_tokens}"
            )
        if self.chunk_overlap_tokens >= self.chunk_target_tokens:
            raise ValueError("CHUNK_OVERLAP_TOKENS must be smaller than CHUNK_TARGET_TOKENS")
        return self

    @model_validator(mode="after")
    def _budget_fits_function(self) -> Settings:
        timeout = self.function_timeout_seconds
        budget = self.request_time_budget_seconds
        if timeout is not None and budget > timeout - FUNCTION_TIMEOUT_MARGIN_SECONDS:
            raise ValueError(
                f"REQUEST_TIME_BUDGET_SECONDS ({budget:g}) must end at least "
                f"{FUNCTION_TIMEOUT_MARGIN_SECONDS:g} s before FUNCTION_TIMEOUT_SECONDS "
                f"({timeout:g}): lower the budget to {timeout - FUNCTION_TIMEOUT_MARGIN_SECONDS:g} "
                "or less, or raise the function's timeout"
            )
        return self

    @property
    def llm_enabled(self) -> bool:
        """True when a model endpoint key is configured (answers and dense embeddings)."""
        return self.openrouter_api_key is not None

    @cached_property
    def key_prefix_with_slash(self) -> str:
        return f"{self.key_prefix}/" if self.key_prefix else ""

    def public_url(self, path: str, anchor: str | None = None) -> str:
        """The citation link for a page path (`/docs/cli`) and optional heading anchor."""
        path = path if path.startswith("/") else f"/{path}"
        url = self.site_url + quote(path, safe="/!$&'()*+,;=:@-._~")
        return f"{url}#{quote(anchor, safe=_FRAGMENT_SAFE)}" if anchor else url


def load_settings(**overrides: object) -> Settings:
    """Build `Settings`, turning pydantic's report into one `ConfigError` that names variables."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"] if isinstance(part, str)).upper()
            label = name or "settings"
            problems.append(f"{label}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
