/**
 * @isvc/kserve-client: a typed KServe V1/V2 client with no runtime dependencies.
 *
 * The functions below are the seed's `lib/kserve/client.ts` API (`predictV1`, `predictV2`,
 * `getModelMetadata`, same names and call shapes) plus the rest of the protocol, all against
 * `process.env.KSERVE_URL` (read at each call; default the seed's in-cluster URL). For another
 * URL, headers or a timeout, make a {@link KServeClient}.
 */

import { KServeClient } from "./client.js";
import type {
  CallOptions,
  ExplainOptions,
  ExplainResponse,
  InferInput,
  InferOptions,
  InferOutput,
  InferResponse,
  JsonInferOptions,
  ModelMetadata,
  ModelStatusV1,
  OutputData,
  ServerMetadata,
  V1PredictResponse,
} from "./types.js";

export { InferenceError, KServeClient } from "./client.js";
export type { ClientOptions, WaitOptions } from "./client.js";
export {
  HEADER,
  datatypesOf,
  decodeInferResponse,
  decodeTensor,
  encodeBytesTensor,
  encodeInferRequest,
  isTypedTensor,
  tensorBytes,
} from "./binary.js";
export type { EncodedRequest } from "./binary.js";
export type * from "./types.js";

/** The seed client's default: the InferenceService's in-cluster URL. */
export const DEFAULT_URL = "http://churn-classifier.ml-serving.svc.cluster.local";

let cached: KServeClient | undefined;

/** The client the module-level functions use: `KSERVE_URL` (or {@link DEFAULT_URL}) now. */
export function defaultClient(): KServeClient {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const url = (env?.["KSERVE_URL"] ?? DEFAULT_URL).replace(/\/+$/, "");
  if (cached?.baseUrl !== url) cached = new KServeClient(url);
  return cached;
}

/** V1 inference protocol: `POST /v1/models/{name}:predict`. */
export function predictV1<T = unknown>(
  modelName: string,
  instances: unknown[],
  options?: CallOptions,
): Promise<V1PredictResponse<T>> {
  return defaultClient().predictV1<T>(modelName, instances, options);
}

/** V2 inference protocol (Open Inference Protocol): `POST /v2/models/{name}/infer`. */
export function predictV2(
  modelName: string,
  inputs: ReadonlyArray<InferInput>,
  options?: JsonInferOptions,
): Promise<InferResponse<unknown[]>>;
export function predictV2(
  modelName: string,
  inputs: ReadonlyArray<InferInput>,
  options?: InferOptions,
): Promise<InferResponse>;
export function predictV2(
  modelName: string,
  inputs: ReadonlyArray<InferInput>,
  options?: InferOptions,
): Promise<InferResponse> {
  return defaultClient().predictV2(modelName, inputs, options);
}

/** `GET /v2/models/{name}`: the tensors the endpoint takes and returns. */
export function getModelMetadata(
  modelName: string,
  options?: CallOptions & { version?: string },
): Promise<ModelMetadata> {
  return defaultClient().getModelMetadata(modelName, options);
}

/** `POST /v1/models/{name}:explain`. */
export function explain<D = Record<string, unknown>>(
  modelName: string,
  instances: unknown[],
  options?: ExplainOptions,
): Promise<ExplainResponse<D>> {
  return defaultClient().explain<D>(modelName, instances, options);
}

/** `GET /v1/models`: the names of the models served. */
export function listModels(options?: CallOptions): Promise<string[]> {
  return defaultClient().listModels(options);
}

/** `GET /v1/models/{name}`: `{name, ready}`. */
export function getModelStatusV1(modelName: string, options?: CallOptions): Promise<ModelStatusV1> {
  return defaultClient().getModelStatusV1(modelName, options);
}

/** `GET /v2`. */
export function getServerMetadata(options?: CallOptions): Promise<ServerMetadata> {
  return defaultClient().getServerMetadata(options);
}

/** `GET /v2/health/live`. */
export function isServerLive(options?: CallOptions): Promise<boolean> {
  return defaultClient().isServerLive(options);
}

/** `GET /v2/health/ready`. */
export function isServerReady(options?: CallOptions): Promise<boolean> {
  return defaultClient().isServerReady(options);
}

/** `GET /v2/models/{name}/ready`. */
export function isModelReady(modelName: string, options?: CallOptions & { version?: string }): Promise<boolean> {
  return defaultClient().isModelReady(modelName, options);
}

/** The output named `name` of a V2 response; throws if the response has none. */
export function getOutput<D = OutputData>(response: InferResponse<D>, name: string): InferOutput<D> {
  const found = response.outputs.find((o) => o.name === name);
  if (!found) {
    throw new Error(
      `no output ${JSON.stringify(name)}; the response has ${response.outputs.map((o) => o.name).join(", ")}`,
    );
  }
  return found;
}
