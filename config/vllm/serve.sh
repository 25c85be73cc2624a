#!/usr/bin/env sh
# One vLLM replica the way kvchat expects it: automatic prefix caching with a collision-safe hash,
# cached-token counts in usage, and LMCache (config/lmcache.yaml) as the KV connector.
# Every flag is explained, with what it trades, in docs/kv-cache.md.
#
#   MODEL=meta-llama/Llama-3.1-8B-Instruct PORT=8000 LMCACHE_CONFIG_FILE=config/lmcache.yaml config/vllm/serve.sh
#
# kvchat then needs INFERENCE_ENDPOINTS=http://<host>:8000/v1,... and INFERENCE_BLOCK_SIZE equal to --block-size.
set -eu

export LMCACHE_CONFIG_FILE="${LMCACHE_CONFIG_FILE:-/config/lmcache.yaml}"

# KV_CACHES=off starts the `cache_off` baseline of the benchmarks (docs/tutorial.md): the same replica
# without automatic prefix caching and without LMCache, so every prompt token is prefilled.
if [ "${KV_CACHES:-on}" = off ]; then
  exec vllm serve "${MODEL:-meta-llama/Llama-3.1-8B-Instruct}" \
    --host 0.0.0.0 \
    --port "${PORT:-8000}" \
    --max-model-len "${MAX_MODEL_LEN:-32768}" \
    --gpu-memory-utilization "${GPU_MEMORY_UTILIZATION:-0.9}" \
    --block-size 16 \
    --no-enable-prefix-caching \
    --enable-prompt-tokens-details \
    ${VLLM_API_KEY:+--api-key "$VLLM_API_KEY"} \
    "$@"
fi

exec vllm serve "${MODEL:-meta-llama/Llama-3.1-8B-Instruct}" \
  --host 0.0.0.0 \
  --port "${PORT:-8000}" \
  --max-model-len "${MAX_MODEL_LEN:-32768}" \
  --gpu-memory-utilization "${GPU_MEMORY_UTILIZATION:-0.9}" \
  --block-size 16 \
  --enable-prefix-caching \
  --prefix-caching-hash-algo sha256 \
  --enable-prompt-tokens-details \
  --kv-transfer-config '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}' \
  ${VLLM_API_KEY:+--api-key "$VLLM_API_KEY"} \
  "$@"
