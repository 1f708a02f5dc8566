/**
 * The shapes of KServe's V1 and V2 (Open Inference Protocol) bodies, as isvc sends them.
 * Field names are the wire's own (snake_case), so a logged response reads the same.
 */

/** A V2 tensor datatype. */
export type Datatype =
  | "BOOL"
  | "UINT8"
  | "UINT16"
  | "UINT32"
  | "UINT64"
  | "INT8"
  | "INT16"
  | "INT32"
  | "INT64"
  | "FP16"
  | "FP32"
  | "FP64"
  | "BYTES";

/**
 * Tensor data as raw typed memory: sent with the binary tensor data extension, and what a
 * binary output decodes to. `Uint8Array` also carries BOOL (0/1), `Uint16Array` FP16 (the
 * half-precision bits), the 64-bit integer types are `BigInt64Array` / `BigUint64Array`.
 */
export type TypedTensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** Tensor data as JSON: flat row-major values (nested lists are accepted too). */
export type JsonTensorData =
  | readonly number[]
  | readonly string[]
  | readonly boolean[]
  | readonly (readonly unknown[])[];

/** A V2 input sent as JSON `data` (the seed client's shape). */
export interface JsonInferInput {
  name: string;
  shape: readonly number[];
  datatype: Datatype;
  data: JsonTensorData;
  parameters?: Record<string, unknown>;
}

/**
 * A V2 input sent as raw bytes (binary tensor data extension). `datatype` defaults to the
 * array's own (Float32Array → FP32, Float64Array → FP64, Int32Array → INT32,
 * BigInt64Array → INT64, …); give it for BOOL (Uint8Array) or FP16 (Uint16Array).
 */
export interface BinaryInferInput {
  name: string;
  shape: readonly number[];
  datatype?: Datatype;
  data: TypedTensorData;
  parameters?: Record<string, unknown>;
}

export type InferInput = JsonInferInput | BinaryInferInput;

/** An output to ask for by name; `binaryData: true` asks for it as raw bytes. */
export interface RequestedOutput {
  name: string;
  binaryData?: boolean;
  parameters?: Record<string, unknown>;
}

/** What an output's `data` can be: JSON values, or a decoded binary tensor (BYTES → strings). */
export type OutputData = unknown[] | TypedTensorData | string[];

export interface InferOutput<D = OutputData> {
  name: string;
  shape: number[];
  datatype: Datatype;
  data: D;
  parameters?: Record<string, unknown>;
}

export interface InferResponse<D = OutputData> {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, unknown>;
  outputs: InferOutput<D>[];
}

/** Options every call takes. */
export interface CallOptions {
  /** Extra request headers (e.g. authorization), over the client's own. */
  headers?: Record<string, string>;
  /** Abort the request (combined with the client's `timeoutMs`). */
  signal?: AbortSignal;
}

export interface InferOptions extends CallOptions {
  /** The request `id`, echoed in the response. */
  id?: string;
  /** Model version (`/v2/models/{name}/versions/{version}/infer`); default: the served one. */
  version?: string;
  /** Outputs to return (default: all); names or `{name, binaryData}`. */
  outputs?: ReadonlyArray<string | RequestedOutput>;
  /** Every output as raw bytes (`parameters.binary_data_output`), decoded into typed arrays. */
  binaryOutput?: boolean;
  /** Request-level `parameters`. */
  parameters?: Record<string, unknown>;
}

/** {@link InferOptions} that ask for no binary output: every output's `data` is JSON. */
export interface JsonInferOptions extends InferOptions {
  binaryOutput?: false;
  outputs?: ReadonlyArray<string | (RequestedOutput & { binaryData?: false })>;
}

export interface ExplainOptions extends CallOptions {
  /** The explainer's per-request parameters (e.g. Anchor's `threshold`). */
  parameters?: Record<string, unknown>;
}

export interface V1PredictResponse<T = unknown> {
  predictions: T[];
}

/** One explanation, as alibi and isvc's explainers write it. */
export interface Explanation<D = Record<string, unknown>> {
  meta: { name: string; params?: Record<string, unknown>; [key: string]: unknown };
  data: D;
  [key: string]: unknown;
}

/** `data` of an AnchorTabular / AnchorText explanation. */
export interface AnchorData {
  anchor: string[];
  precision: number;
  coverage: number;
  raw?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface ExplainResponse<D = Record<string, unknown>> {
  explanations: Explanation<D>[];
}

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  /** `-1` = any size. */
  shape: number[];
}

/** `GET /v2/models/{name}`. */
export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  [key: string]: unknown;
}

/** `GET /v2`. */
export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/** `GET /v1/models/{name}` (isvc may add fields, e.g. a canary's `traffic`). */
export interface ModelStatusV1 {
  name: string;
  ready: boolean;
  [key: string]: unknown;
}
