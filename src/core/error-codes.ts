// The one catalogue of tensorcast error codes: each code's category and whether a retry can help.
// docs/errors.md lists the same codes; a test keeps the two in step.

/** Broad kinds of failure; each maps to one error subclass. */
export type ErrorCategory =
  'InvalidArgument' | 'Format' | 'NotFound' | 'Conflict' | 'Auth' | 'Timeout' | 'Closed' | 'Protocol' | 'Backend' | 'DataLoss' | 'Internal';

/** What the catalogue records for one code. */
export interface ErrorCodeInfo {
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly summary: string;
}

function code(category: ErrorCategory, summary: string, retryable = false): ErrorCodeInfo {
  return { category, retryable, summary };
}

/** Every stable error code. Callers match on these strings; never rename one. */
export const ERROR_CODES = {
  TC_ERR_INVALID_ARGUMENT: code('InvalidArgument', 'an argument or option is malformed or out of range'),
  TC_ERR_NOT_FOUND: code('NotFound', 'a file, tensor, key or other named thing does not exist'),
  TC_ERR_IO: code('Backend', 'an operating-system I/O call failed', true),
  TC_ERR_INTERNAL: code('Internal', 'an invariant of tensorcast itself was broken (a bug)'),
  TC_ERR_ABORTED: code('Closed', 'the caller aborted the operation'),
  TC_ERR_CONFIG: code('InvalidArgument', 'the daemon configuration is invalid'),
  TC_ERR_AUTH: code('Auth', 'a request carried no token or a wrong one'),
  TC_ERR_FORBIDDEN: code('Auth', 'the operation is not allowed (e.g. an import path outside the import roots)'),
  TC_ERR_CONFLICT: code('Conflict', 'a compare-and-swap lost: the key changed since it was read'),
  TC_ERR_TIMEOUT: code('Timeout', "the caller's deadline ran out", true),
  TC_ERR_UNAVAILABLE: code('Backend', 'the daemon cannot be reached, or the connection broke mid-transfer', true),
  TC_ERR_SHUTTING_DOWN: code('Closed', 'the daemon is draining and accepts no new work', true),
  TC_ERR_PROTOCOL: code('Protocol', 'a peer sent a malformed, oversized or unexpected frame'),
  TC_ERR_CHECKSUM: code('DataLoss', 'a data frame failed its checksum; its bytes were not delivered', true),
  TC_ERR_BUDGET: code('Backend', 'the memory budget cannot hold the replica right now', true),
  TC_ERR_LEASE_NOT_FOUND: code('NotFound', 'a shared-memory lease is unknown or expired'),
  TC_ERR_BACKEND: code('Backend', 'a storage backend (catalog, filesystem) failed', true),
  TC_ERR_NO_SPACE: code('Backend', 'the disk (or its quota) is full: free space and retry (HTTP 507)', true),
  TC_ERR_DATA_DIR_LOCKED: code('InvalidArgument', 'another daemon holds the data directory; stop it or choose another --data-dir'),
  TC_ERR_ADDRESS_IN_USE: code('InvalidArgument', 'a listen address is taken by another process; choose another port'),
  TC_ERR_EXPORT_UNAVAILABLE: code('Backend', 'the source cannot serve this derived-view export now; details.reason says why', true),

  TC_ERR_FORMAT_HEADER_TOO_SMALL: code('Format', 'safetensors file shorter than its 8-byte length prefix (R1)'),
  TC_ERR_FORMAT_HEADER_TOO_LARGE: code('Format', 'safetensors header length above 100,000,000 bytes (R2)'),
  TC_ERR_FORMAT_INVALID_HEADER_LENGTH: code('Format', 'safetensors header extends past the end of the file (R3)'),
  TC_ERR_FORMAT_INVALID_UTF8: code('Format', 'safetensors header is not valid UTF-8 (R4)'),
  TC_ERR_FORMAT_INVALID_JSON: code('Format', 'header or index is not well-formed JSON (R5)'),
  TC_ERR_FORMAT_INVALID_ENTRY: code('Format', 'a header entry has a missing, extra or mistyped field (R5)'),
  TC_ERR_FORMAT_UNKNOWN_DTYPE: code('Format', 'a tensor declares a dtype safetensors does not define (R5)'),
  TC_ERR_FORMAT_UNSAFE_INTEGER: code('Format', 'an integer is above 2^53-1 and cannot be held exactly'),
  TC_ERR_FORMAT_DUPLICATE_NAME: code('Format', 'two tensors (or two index entries) share a name'),
  TC_ERR_FORMAT_INVALID_OFFSET: code('Format', 'tensor data offsets leave a gap, overlap or run backwards (R7)'),
  TC_ERR_FORMAT_OVERFLOW: code('Format', 'a tensor size overflows 64 bits (R8)'),
  TC_ERR_FORMAT_MISALIGNED: code('Format', 'a tensor of a sub-byte dtype does not fill whole bytes (R9)'),
  TC_ERR_FORMAT_SIZE_MISMATCH: code('Format', 'data_offsets span differs from shape x dtype size (R10)'),
  TC_ERR_FORMAT_INCOMPLETE_BUFFER: code('Format', 'file length differs from header + tensor data (R11)'),
  TC_ERR_FORMAT_INDEX_INVALID: code('Format', 'model.safetensors.index.json is malformed or too large'),
  TC_ERR_FORMAT_SHARD_MISMATCH: code('Format', 'the shards disagree with the index (missing, extra or doubled tensors)'),

  TC_ERR_VIEW_INVALID: code('InvalidArgument', 'a view specification is malformed'),
  TC_ERR_VIEW_UNKNOWN_TENSOR: code('NotFound', 'a view or selection names a tensor the artifact lacks'),
  TC_ERR_VIEW_RANK_MISMATCH: code('InvalidArgument', 'a view gives more dimensions than the tensor has'),
  TC_ERR_VIEW_OUT_OF_RANGE: code('InvalidArgument', 'a view range falls outside its dimension'),
  TC_ERR_VIEW_MISALIGNED: code('InvalidArgument', 'a view of a sub-byte dtype does not start and end on bytes'),

  TC_ERR_LAYOUT_INVALID_RULES: code('InvalidArgument', 'a TP rule set is malformed'),
  TC_ERR_LAYOUT_NO_RULE: code('InvalidArgument', 'no TP rule matches a tensor'),
  TC_ERR_LAYOUT_NOT_DIVISIBLE: code('InvalidArgument', 'a tensor does not split evenly across the TP ranks'),
  TC_ERR_LAYOUT_CONFIG: code('InvalidArgument', 'the model config lacks a value a TP rule needs'),
  TC_ERR_LAYOUT_INVALID_RANK: code('InvalidArgument', 'tp size or tp rank is out of range'),

  TC_ERR_SHORT_READ: code('DataLoss', 'a source returned fewer bytes than the range it holds'),
  TC_ERR_SOURCE_CHANGED: code('DataLoss', 'a remote object changed between stat and read (etag mismatch): nothing was delivered', true),
  TC_ERR_SOURCE_RANGE: code('InvalidArgument', 'a read falls outside the source'),
  TC_ERR_DESTINATION_SIZE: code('InvalidArgument', 'the destination buffer does not match the output size'),

  TC_ERR_BACKPRESSURE: code('Backend', "a store's resident-bytes limit is reached: wait for consumers to release, then retry", true),
  TC_ERR_INCOMPATIBLE: code(
    'Conflict',
    "a peer's compatibility hash differs from the one expected: the payload was not decoded (HTTP 409; details name both hashes)",
  ),
  TC_ERR_MALFORMED: code('Protocol', 'a request or payload body is not well-formed (msgpack, JSON) or breaks its schema (HTTP 400)'),
  TC_ERR_TOO_LARGE: code('InvalidArgument', 'a body or payload is above its size cap (HTTP 413; details give the cap)'),
  TC_ERR_EXPIRED: code('NotFound', 'the entry existed but its publisher stopped renewing it and its TTL ran out (HTTP 410)'),
  TC_ERR_OBJECT_LOST: code(
    'DataLoss',
    'an object was committed in memory and its daemon stopped before it reached disk: its bytes are gone',
  ),
} as const satisfies Record<string, ErrorCodeInfo>;

/** A stable error code string. */
export type ErrorCode = keyof typeof ERROR_CODES;
