/** The client: KServe's V1 and V2 REST routes over the global `fetch`, typed. */

import { HEADER, decodeInferResponse, encodeInferRequest } from "./binary.js";
import type {
  CallOptions,
  ExplainOptions,
  ExplainResponse,
  InferInput,
  InferOptions,
  InferResponse,
  JsonInferOptions,
  ModelMetadata,
  ModelStatusV1,
  ServerMetadata,
  V1PredictResponse,
} from "./types.js";

/**
 * An HTTP error answer from the server: `status` is the HTTP status, `error` the server's
 * message (isvc answers `{"error": "..."}`; for any other body, its text).
 */
export class InferenceError extends Error {
  readonly status: number;
  readonly error: string;
  readonly method: string;
  readonly url: string;
  /** The response body as text. */
  readonly body: string;

  constructor(status: number, error: string, init: { method: string; url: string; body: string }) {
    super(`KServe ${status}: ${error}`);
    this.name = "InferenceError";
    this.status = status;
    this.error = error;
    this.method = init.method;
    this.url = init.url;
    this.body = init.body;
  }
}

export interface ClientOptions {
  /** Where the service listens, e.g. `http://localhost:8000` (a route prefix may follow). */
  baseUrl: string;
  /** Headers sent with every request (e.g. `{authorization: "Bearer …"}`). */
  headers?: Record<string, string>;
  /** Abort any request that takes longer (milliseconds); default: no limit. */
  timeoutMs?: number;
  /** The `fetch` to use; default: the global one. */
  fetch?: typeof fetch;
}

export interface WaitOptions extends CallOptions {
  /** Wait for this model's V2 readiness too (default: the server's). */
  model?: string;
  /** Give up after this long (default 60 000 ms); throws the last error seen. */
  timeoutMs?: number;
  /** Between attempts (default 500 ms). */
  intervalMs?: number;
}

const path = (name: string): string => encodeURIComponent(name);

const v2Model = (name: string, version?: string): string =>
  `/v2/models/${path(name)}` + (version === undefined ? "" : `/versions/${path(version)}`);

/**
 * A KServe V1/V2 client for one service.
 *
 * ```ts
 * const kserve = new KServeClient("http://localhost:8000");
 * const { predictions } = await kserve.predictV1("churn-classifier", [row]);
 * ```
 */
export class KServeClient {
  readonly baseUrl: string;
  private readonly options: Omit<ClientOptions, "baseUrl">;

  constructor(options: string | ClientOptions) {
    const o = typeof options === "string" ? { baseUrl: options } : options;
    this.baseUrl = o.baseUrl.replace(/\/+$/, "");
    this.options = o;
  }

  // ---- V1 ------------------------------------------------------------------------------

  /** `POST /v1/models/{name}:predict` with `{instances}`. */
  async predictV1<T = unknown>(
    modelName: string,
    instances: unknown[],
    options: CallOptions = {},
  ): Promise<V1PredictResponse<T>> {
    return this.json("POST", `/v1/models/${path(modelName)}:predict`, options, { instances });
  }

  /** `POST /v1/models/{name}:explain`: one explanation per instance. */
  async explain<D = Record<string, unknown>>(
    modelName: string,
    instances: unknown[],
    options: ExplainOptions = {},
  ): Promise<ExplainResponse<D>> {
    const body = options.parameters ? { instances, parameters: options.parameters } : { instances };
    return this.json("POST", `/v1/models/${path(modelName)}:explain`, options, body);
  }

  /** `GET /v1/models`: the names of the models served. */
  async listModels(options: CallOptions = {}): Promise<string[]> {
    const { models } = await this.json<{ models: string[] }>("GET", "/v1/models", options);
    return models;
  }

  /** `GET /v1/models/{name}`: `{name, ready}`; an unknown model is a 404 `InferenceError`. */
  async getModelStatusV1(modelName: string, options: CallOptions = {}): Promise<ModelStatusV1> {
    return this.json("GET", `/v1/models/${path(modelName)}`, options);
  }

  // ---- V2 ------------------------------------------------------------------------------

  /**
   * `POST /v2/models/{name}/infer`. Inputs whose `data` is a typed array (`Float32Array`,
   * `Float64Array`, `Int32Array`, `BigInt64Array`, …) go as raw bytes (binary tensor data
   * extension); outputs asked for with `binaryOutput` / `{name, binaryData: true}` come back
   * as typed arrays (BYTES as strings).
   */
  predictV2(
    modelName: string,
    inputs: ReadonlyArray<InferInput>,
    options?: JsonInferOptions,
  ): Promise<InferResponse<unknown[]>>;
  predictV2(modelName: string, inputs: ReadonlyArray<InferInput>, options?: InferOptions): Promise<InferResponse>;
  async predictV2(
    modelName: string,
    inputs: ReadonlyArray<InferInput>,
    options: InferOptions = {},
  ): Promise<InferResponse> {
    const rest: Record<string, unknown> = {};
    if (options.id !== undefined) rest["id"] = options.id;
    const parameters = { ...options.parameters, ...(options.binaryOutput ? { binary_data_output: true } : {}) };
    if (Object.keys(parameters).length) rest["parameters"] = parameters;
    if (options.outputs) {
      rest["outputs"] = options.outputs.map((o) => {
        if (typeof o === "string") return { name: o };
        const params = { ...o.parameters, ...(o.binaryData === undefined ? {} : { binary_data: o.binaryData }) };
        return Object.keys(params).length ? { name: o.name, parameters: params } : { name: o.name };
      });
    }
    const { body, headers } = encodeInferRequest(inputs, rest);
    const url = `${v2Model(modelName, options.version)}/infer`;
    const res = await this.send("POST", url, { ...options, headers: { ...headers, ...options.headers } }, body);
    const length = res.headers.get(HEADER);
    if (length === null) return (await res.json()) as InferResponse;
    return decodeInferResponse(new Uint8Array(await res.arrayBuffer()), Number(length));
  }

  /** `GET /v2/models/{name}[/versions/{v}]`: the tensors the endpoint takes and returns. */
  async getModelMetadata(modelName: string, options: CallOptions & { version?: string } = {}): Promise<ModelMetadata> {
    return this.json("GET", v2Model(modelName, options.version), options);
  }

  /** `GET /v2`: the server's name, version and protocol extensions. */
  async getServerMetadata(options: CallOptions = {}): Promise<ServerMetadata> {
    return this.json("GET", "/v2", options);
  }

  /** `GET /v2/health/live`. */
  async isServerLive(options: CallOptions = {}): Promise<boolean> {
    return this.health("/v2/health/live", options);
  }

  /** `GET /v2/health/ready`: every model ready (200 → true, 503 → false). */
  async isServerReady(options: CallOptions = {}): Promise<boolean> {
    return this.health("/v2/health/ready", options);
  }

  /** `GET /v2/models/{name}[/versions/{v}]/ready` (200 → true, 503 → false; unknown → 404 error). */
  async isModelReady(modelName: string, options: CallOptions & { version?: string } = {}): Promise<boolean> {
    return this.health(`${v2Model(modelName, options.version)}/ready`, options);
  }

  /**
   * Poll until the server (and `model`, if given) is ready; connection errors and 503s are
   * retried. Throws the last error after `timeoutMs`.
   */
  async waitForReady(options: WaitOptions = {}): Promise<void> {
    const { model, timeoutMs = 60_000, intervalMs = 500, ...call } = options;
    const deadline = Date.now() + timeoutMs;
    let last: unknown = new Error("not ready");
    for (;;) {
      try {
        const ready =
          (await this.isServerReady(call)) && (model === undefined || (await this.isModelReady(model, call)));
        if (ready) return;
        last = new Error(`${this.baseUrl}: ${model ?? "server"} not ready`);
      } catch (err) {
        if (err instanceof InferenceError && err.status !== 503) throw err;
        last = err;
      }
      if (Date.now() + intervalMs > deadline) throw last;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  // ---- transport -----------------------------------------------------------------------

  private async health(url: string, options: CallOptions): Promise<boolean> {
    const res = await this.send("GET", url, options, undefined, [503]);
    await res.arrayBuffer(); // release the connection
    return res.ok;
  }

  private async json<T>(method: string, url: string, options: CallOptions, body?: unknown): Promise<T> {
    const headers = body === undefined ? options.headers : { "Content-Type": "application/json", ...options.headers };
    const res = await this.send(
      method,
      url,
      { ...options, headers },
      body === undefined ? undefined : JSON.stringify(body),
    );
    return (await res.json()) as T;
  }

  /** One request; a status outside 2xx (and `allowed`) throws an {@link InferenceError}. */
  private async send(
    method: string,
    url: string,
    options: CallOptions,
    body?: string | Uint8Array,
    allowed: number[] = [],
  ): Promise<Response> {
    const full = this.baseUrl + url;
    const signals = [options.signal, this.options.timeoutMs ? AbortSignal.timeout(this.options.timeoutMs) : undefined];
    const active = signals.filter((s): s is AbortSignal => s !== undefined);
    const doFetch = this.options.fetch ?? fetch;
    const init: RequestInit = { method, headers: { ...this.options.headers, ...options.headers } };
    if (body !== undefined) init.body = body as BodyInit; // a Uint8Array over an ArrayBuffer
    if (active.length) init.signal = active.length === 1 ? active[0]! : AbortSignal.any(active);
    const res = await doFetch(full, init);
    if (res.ok || allowed.includes(res.status)) return res;
    const text = await res.text();
    let error = text;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") {
        error = (parsed as { error: string }).error;
      }
    } catch {
      // not JSON: the text is the message
    }
    throw new InferenceError(res.status, error || res.statusText, { method, url: full, body: text });
  }
}
