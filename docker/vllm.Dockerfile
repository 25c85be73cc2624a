# vLLM's OpenAI server image with the LMCache connector installed (the compose `gpu` profile).
# Versions are build arguments: pick an LMCache release that supports the vLLM release
# (LMCache's installation docs list the pairs), e.g.
#   docker compose -f docker/compose.yaml build --build-arg VLLM_VERSION=v0.10.2 --build-arg LMCACHE_VERSION=0.3.6 vllm-0
ARG VLLM_VERSION=v0.10.2
FROM vllm/vllm-openai:${VLLM_VERSION}
ARG LMCACHE_VERSION=0.3.6
RUN pip install --no-cache-dir "lmcache==${LMCACHE_VERSION}"
