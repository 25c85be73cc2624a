import { Transform } from 'class-transformer';
import { IsArray, IsInt, IsNumber, IsOptional, IsString, IsUrl, Max, Min } from 'class-validator';
import { toList } from './config.loader';

/** Knowledge bases (src/knowledge): upload limits, chunking, retrieval and the optional reranker. */
export class KnowledgeConfig {
  /**
   * Largest document accepted, bytes (multipart files, URL downloads and JSON `content`); larger ones
   * get 413 naming this variable (default 10 MiB). JSON bodies are also bounded by BODY_LIMIT_BYTES: send big files as
   * multipart/form-data.
   */
  @IsInt() @Min(1) KNOWLEDGE_MAX_DOCUMENT_BYTES: number = 10_485_760;
  /** Files accepted in one multipart upload; the rest of the request is refused with 413. */
  @IsInt() @Min(1) @Max(1000) KNOWLEDGE_MAX_FILES_PER_UPLOAD: number = 50;
  /**
   * URL prefixes documents may be fetched from (`{url}` uploads), comma-separated, e.g.
   * `https://docs.example.com/manuals/,http://intranet/kb/`. Unset = URL uploads are refused.
   */
  @Transform(toList)
  @IsArray()
  @IsUrl(
    { require_tld: false, require_protocol: true },
    { each: true, message: 'each entry must be an http(s) URL' },
  )
  KNOWLEDGE_URL_ALLOWLIST: string[] = [];
  /** Time allowed to download a `{url}` upload, ms. */
  @IsInt() @Min(100) KNOWLEDGE_URL_TIMEOUT_MS: number = 10_000;
  /**
   * Largest chunk, tokens (cl100k_base, the tokenizer the simulator and most embedding servers are
   * close to). Chunks follow headings and paragraphs and never exceed it.
   */
  @IsInt() @Min(16) @Max(8192) KNOWLEDGE_CHUNK_TOKENS: number = 256;
  /** Tokens a chunk repeats from the end of the previous chunk of the same section. */
  @IsInt() @Min(0) @Max(1024) KNOWLEDGE_CHUNK_OVERLAP_TOKENS: number = 32;
  /**
   * Tokens of a document's lead (its first paragraph: for Markdown, the text under its title) embedded
   * with every chunk, so that a passage deep in a document is found as part of what the document is
   * about (docs/knowledge.md, Chunking). 0 = none. Changing it changes what every chunk embeds, so
   * documents are re-embedded at their next ingestion.
   */
  @IsInt() @Min(0) @Max(512) KNOWLEDGE_LEAD_TOKENS: number = 32;
  /** Passages returned by a search when the request does not say (`k`). */
  @IsInt() @Min(1) @Max(100) KNOWLEDGE_SEARCH_K: number = 5;
  /** Candidates each method (vector, full text) contributes before fusion. */
  @IsInt() @Min(1) @Max(1000) KNOWLEDGE_SEARCH_CANDIDATES: number = 50;
  /**
   * Reciprocal rank fusion constant k: a passage scores sum(1 / (k + rank)) over the methods. 60 is
   * the value of Cormack, Clarke and Büttcher (SIGIR 2009), who found results insensitive to it.
   */
  @IsNumber() @Min(0) KNOWLEDGE_RRF_K: number = 60;
  /**
   * Optional reranker: a cross-encoder behind a rerank endpoint (`POST {model, query, documents}` ->
   * `{results: [{index, relevance_score}]}`, as vLLM's `/v1/rerank`, Jina and Cohere serve it),
   * asked when a search sets `rerank: true`. Unset = no reranking.
   */
  @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true }, { message: 'must be an http(s) URL' })
  KNOWLEDGE_RERANK_URL?: string;
  /** Model name sent to the reranker. */
  @IsOptional() @IsString() KNOWLEDGE_RERANK_MODEL?: string;
  /** Bearer key for the reranker. */
  @IsOptional() @IsString() KNOWLEDGE_RERANK_API_KEY?: string;
  /** Fused passages sent to the reranker (the top ones); the rest keep their fused order after them. */
  @IsInt() @Min(1) @Max(200) KNOWLEDGE_RERANK_CANDIDATES: number = 20;
  /** Time allowed to the reranker, ms; past it the fused order is kept (and the response says so). */
  @IsInt() @Min(50) KNOWLEDGE_RERANK_TIMEOUT_MS: number = 2_000;
}
