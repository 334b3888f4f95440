"""Every span, attribute and metric name the gateway emits, in one place.

Two generations of the GenAI conventions live here: the v1.41 names (the last
release from the core semantic-conventions repository, the default) and the
next generation from `open-telemetry/semantic-conventions-genai` (chosen with
OTEL_SEMCONV_STABILITY_OPT_IN, see `semconv.py`). Prometheus names in comments
are what both the Python Prometheus exporter and the Collector's exporter produce.
"""

from __future__ import annotations

from typing import Final

# --- gen_ai attributes (semconv v1.41) -------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
# next generation: cache_creation renamed
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_TOKEN_MODALITY: Final = "gen_ai.token.modality"  # next generation's usage counters
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_CONTENT_EVENT: Final = "gen_ai.client.inference.operation.details"

OPENAI_API_TYPE: Final = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"

SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_ROUTE: Final = "http.route"
URL_PATH: Final = "url.path"
URL_SCHEME: Final = "url.scheme"

# --- gateway's own attributes ----------------------------------------------
GATEWAY_REQUEST_ID: Final = "gateway.request.id"
GATEWAY_COST_USD: Final = "gateway.cost.usd"
GATEWAY_COST_UNPRICED: Final = "gateway.cost.unpriced"  # true: the model has no price
GATEWAY_MODEL_REQUESTED: Final = "gateway.model.requested"
GATEWAY_MODEL_SERVED: Final = "gateway.model.served"
GATEWAY_KEY_ALIAS: Final = "gateway.key.alias"
GATEWAY_TEAM: Final = "gateway.team"
# + the tag's name: on spans; a metric label only for tag names the operator allow-lists
GATEWAY_TAGS_PREFIX: Final = "gateway.tags."
USER_ID: Final = "user.id"  # the end user the client named (OTel's general `user.id`)
GATEWAY_FALLBACK_REASON: Final = "gateway.fallback.reason"
GATEWAY_ATTEMPT: Final = "gateway.attempt"
GATEWAY_USAGE_ESTIMATED: Final = "gateway.usage.estimated"
GATEWAY_STREAM_END: Final = "gateway.stream.end"
GATEWAY_OVERHEAD_S: Final = "gateway.overhead"
# span events on the SERVER span (spend control)
EVENT_RUNAWAY: Final = "gateway.runaway"
EVENT_BUDGET_EXCEEDED: Final = "gateway.budget.exceeded"

# metric-only label names for the gateway's own series (Prometheus: dots -> _)
LABEL_STATUS_CLASS: Final = "http.response.status_class"
LABEL_BUDGET: Final = "gateway.budget"
LABEL_BUDGET_SCOPE: Final = "gateway.budget.scope"
LABEL_BUDGET_WINDOW: Final = "gateway.budget.window"
LABEL_RUNAWAY_KIND: Final = "gateway.runaway.kind"
LABEL_ACTION: Final = "gateway.action"
LABEL_FROM_MODEL: Final = "from_model"
LABEL_TO_MODEL: Final = "to_model"
LABEL_REASON: Final = "reason"
LABEL_LIMIT: Final = "gateway.limit"

# --- values ------------------------------------------------------------------
OP_CHAT: Final = "chat"
OP_EMBEDDINGS: Final = "embeddings"
# Token counting (Anthropic's count_tokens): no well-known value of the conventions applies
# (it is no inference), so a custom one, the API's own name, as OpenTelemetry's Go
# instrumentation of the Anthropic SDK and the Gemini instrumentations name it.
OP_COUNT_TOKENS: Final = "count_tokens"
OP_GENERATE_CONTENT: Final = "generate_content"  # Gemini's generateContent
TOKEN_INPUT: Final = "input"
TOKEN_OUTPUT: Final = "output"
MODALITY_TEXT: Final = "text"  # what the OpenAI dialects' usage counts
MODALITY_AUDIO: Final = "audio"  # the audio part of a usage (OpenAI's audio_tokens details)
MODALITY_IMAGE: Final = "image"
MODALITY_UNKNOWN: Final = "unknown"  # an inference that reported no usage
ERROR_OTHER: Final = "_OTHER"
ERROR_TIMEOUT: Final = "timeout"
ERROR_CLIENT_DISCONNECT: Final = "client_disconnect"
ERROR_CANCELLED: Final = "cancelled"
ERROR_TOO_LARGE: Final = "response_too_large"

# --- metric instruments -------------------------------------------------------
# gen_ai_client_operation_duration_seconds
M_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
# gen_ai_client_token_usage
M_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
# gen_ai_client_operation_time_to_first_chunk_seconds
M_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
# gen_ai_client_operation_time_per_output_chunk_seconds
M_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
# next generation (semantic-conventions-genai), for inference operations (chat,
# text_completion); embeddings keep gen_ai.client.operation.duration there too.
# gen_ai_client_inference_duration_seconds
M_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
# gen_ai_client_inference_time_to_first_chunk_seconds
M_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
# gen_ai_client_inference_time_per_output_chunk_seconds
M_INFERENCE_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.inference.time_per_output_chunk"
# gen_ai_client_inference_operation_{input,output}_tokens (histograms per inference,
# what gen_ai.client.token.usage was by gen_ai.token.type)
M_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
M_OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
# gen_ai_client_inference_usage_input_tokens_total (and the four below, counters by
# gen_ai.token.modality; cache_read and cache_write are part of input, reasoning of output)
M_USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
M_USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
M_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
M_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
M_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
# gateway_requests_total
M_REQUESTS: Final = "gateway.requests"
# gateway_cost_usd_total
M_COST: Final = "gateway.cost.usd"
# gateway_unpriced_calls_total (by gen_ai.request.model: calls to a model with no price)
M_UNPRICED_CALLS: Final = "gateway.unpriced_calls"
# gateway_cache_savings_usd_total (what cache reads saved against the full input price)
M_CACHE_SAVINGS: Final = "gateway.cache.savings.usd"
# gateway_tokens_total (by model, provider, token type, key alias, team)
M_TOKENS: Final = "gateway.tokens"
# gateway_overhead_seconds (time spent in the gateway, not waiting on upstream)
M_OVERHEAD: Final = "gateway.overhead"
# gateway_active_requests
M_ACTIVE_REQUESTS: Final = "gateway.active_requests"
# gateway_budget_spend_usd / gateway_budget_limit_usd (gauges per budget)
M_BUDGET_SPEND: Final = "gateway.budget.spend.usd"
M_BUDGET_LIMIT: Final = "gateway.budget.limit.usd"
# gateway_budget_rejections_total
M_BUDGET_REJECTIONS: Final = "gateway.budget.rejections"
# gateway_runaway_events_total
M_RUNAWAY_EVENTS: Final = "gateway.runaway.events"
# gateway_fallbacks_total
M_FALLBACKS: Final = "gateway.fallbacks"
# gateway_retries_total
M_RETRIES: Final = "gateway.retries"
# gateway_circuit_state (0 closed, 1 half-open, 2 open)
M_CIRCUIT_STATE: Final = "gateway.circuit.state"
# gateway_rate_limited_total
M_RATE_LIMITED: Final = "gateway.rate_limited"

DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
TOKEN_BUCKETS: Final[tuple[int, ...]] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
OVERHEAD_BUCKETS: Final[tuple[float, ...]] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)
