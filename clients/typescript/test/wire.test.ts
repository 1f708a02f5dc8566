/**
 * The wire format without a server: what the client sends (a fake fetch records it) and how it
 * reads what isvc answers (pipelines/protocol/binary.py's layout, built here by hand).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  HEADER,
  InferenceError,
  KServeClient,
  decodeInferResponse,
  decodeTensor,
  encodeBytesTensor,
  encodeInferRequest,
  predictV1,
} from "@isvc/kserve-client";

interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array | string | undefined;
}

/** A client whose fetch records each request and answers `reply`. */
function fake(reply: () => Response): { client: KServeClient; sent: Sent[] } {
  const sent: Sent[] = [];
  const fetchFn = (async (url: string, init: RequestInit) => {
    sent.push({
      url,
      method: init.method ?? "GET",
      headers: { ...(init.headers as Record<string, string>) },
      body: init.body as Uint8Array | string | undefined,
    });
    return reply();
  }) as unknown as typeof fetch;
  return {
    client: new KServeClient({ baseUrl: "http://isvc.test/", headers: { authorization: "x" }, fetch: fetchFn }),
    sent,
  };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** A binary response as isvc writes it: JSON part, then each binary output's bytes. */
function binaryResponse(head: unknown, ...blobs: Uint8Array[]): Response {
  const h = new TextEncoder().encode(JSON.stringify(head));
  const body = new Uint8Array(h.length + blobs.reduce((n, b) => n + b.length, 0));
  body.set(h);
  let pos = h.length;
  for (const b of blobs) {
    body.set(b, pos);
    pos += b.length;
  }
  return new Response(body, { headers: { [HEADER]: String(h.length), "content-type": "application/octet-stream" } });
}

const le = (arr: ArrayLike<number>, width: 4 | 8, float: boolean): Uint8Array => {
  const out = new Uint8Array(arr.length * width);
  const v = new DataView(out.buffer);
  for (let i = 0; i < arr.length; i++) {
    if (float && width === 8) v.setFloat64(i * 8, arr[i]!, true);
    else if (float) v.setFloat32(i * 4, arr[i]!, true);
    else if (width === 8) v.setBigInt64(i * 8, BigInt(arr[i]!), true);
    else v.setInt32(i * 4, arr[i]!, true);
  }
  return out;
};

describe("request encoding", () => {
  test("typed-array inputs go as a JSON header then little-endian bytes", () => {
    const x = Float64Array.from([1.5, -2, 3]);
    const { body, headers } = encodeInferRequest(
      [
        { name: "x", shape: [1, 3], data: x },
        { name: "labels", shape: [2], datatype: "BYTES", data: ["a", "b"] },
        { name: "n", shape: [2], data: Int32Array.from([7, -1]), parameters: { note: 1 } },
      ],
      { id: "r" },
    );
    assert.ok(body instanceof Uint8Array);
    const n = Number(headers[HEADER]);
    assert.equal(headers["Content-Type"], "application/octet-stream");
    const head = JSON.parse(new TextDecoder().decode(body.subarray(0, n)));
    assert.deepEqual(head, {
      id: "r",
      inputs: [
        { name: "x", shape: [1, 3], datatype: "FP64", parameters: { binary_data_size: 24 } },
        { name: "labels", shape: [2], datatype: "BYTES", data: ["a", "b"] },
        { name: "n", shape: [2], datatype: "INT32", parameters: { note: 1, binary_data_size: 8 } },
      ],
    });
    assert.deepEqual(body.subarray(n, n + 24), le(x, 8, true));
    assert.deepEqual(body.subarray(n + 24), le([7, -1], 4, false));
    assert.equal(body.length, n + 32);
  });

  test("a subarray sends only its own elements", () => {
    const whole = Float32Array.from([9, 1, 2, 9]);
    const { body, headers } = encodeInferRequest([{ name: "x", shape: [2], data: whole.subarray(1, 3) }]);
    const n = Number(headers[HEADER]);
    assert.deepEqual((body as Uint8Array).subarray(n), le([1, 2], 4, true));
  });

  test("JSON-only requests stay JSON", () => {
    const { body, headers } = encodeInferRequest([{ name: "x", shape: [1], datatype: "FP32", data: [1] }]);
    assert.equal(typeof body, "string");
    assert.equal(headers[HEADER], undefined);
    assert.equal(headers["Content-Type"], "application/json");
  });

  test("datatype: the array's own by default, BOOL/FP16 on request, a mismatch refused", () => {
    const dt = (data: Uint8Array | Uint16Array | BigInt64Array, datatype?: "BOOL" | "FP16" | "FP64") => {
      const { body, headers } = encodeInferRequest([
        { name: "x", shape: [1], data, ...(datatype ? { datatype } : {}) },
      ]);
      const n = Number(headers[HEADER]);
      return JSON.parse(new TextDecoder().decode((body as Uint8Array).subarray(0, n))).inputs[0].datatype;
    };
    assert.equal(dt(Uint8Array.of(1)), "UINT8");
    assert.equal(dt(Uint8Array.of(1), "BOOL"), "BOOL");
    assert.equal(dt(Uint16Array.of(1), "FP16"), "FP16");
    assert.equal(dt(BigInt64Array.of(1n)), "INT64");
    assert.throws(() => dt(BigInt64Array.of(1n), "FP64"), /BigInt64Array carries INT64, not FP64/);
  });
});

describe("response decoding", () => {
  test("binary outputs become typed arrays, BYTES strings, JSON ones stay", () => {
    const probs = le([0.25, 0.75], 8, true);
    const tiers = encodeBytesTensor(["LOW", "HIGHÉ"]);
    const res = binaryResponse(
      {
        model_name: "m",
        outputs: [
          { name: "p", shape: [2], datatype: "FP64", parameters: { binary_data_size: probs.length } },
          { name: "j", shape: [1], datatype: "INT64", data: [5] },
          { name: "t", shape: [2], datatype: "BYTES", parameters: { binary_data_size: tiers.length } },
        ],
      },
      probs,
      tiers,
    );
    return res.arrayBuffer().then((buf) => {
      const raw = new Uint8Array(buf);
      const out = decodeInferResponse(raw, Number(res.headers.get(HEADER)));
      assert.ok(out.outputs[0]!.data instanceof Float64Array);
      assert.deepEqual(Array.from(out.outputs[0]!.data as Float64Array), [0.25, 0.75]);
      assert.deepEqual(out.outputs[1]!.data, [5]);
      assert.deepEqual(out.outputs[2]!.data, ["LOW", "HIGHÉ"]);
    });
  });

  test("every fixed-size datatype, at any offset", () => {
    const odd = new Uint8Array(1 + 8);
    odd.set(le([-3], 8, false), 1); // misaligned for a BigInt64Array view: decoded by copy
    assert.deepEqual(Array.from(decodeTensor(odd.subarray(1), "INT64") as BigInt64Array), [-3n]);
    assert.deepEqual(Array.from(decodeTensor(le([1.5], 4, true), "FP32") as Float32Array), [1.5]);
    assert.deepEqual(Array.from(decodeTensor(le([-7], 4, false), "INT32") as Int32Array), [-7]);
    assert.deepEqual(Array.from(decodeTensor(Uint8Array.of(1, 0), "BOOL") as Uint8Array), [1, 0]);
    assert.ok(decodeTensor(new Uint8Array(8), "UINT64") instanceof BigUint64Array);
    assert.throws(() => decodeTensor(new Uint8Array(3), "FP32"), /3 bytes is not a whole number of FP32/);
    assert.throws(() => decodeTensor(Uint8Array.of(9, 0, 0, 0, 1), "BYTES"), /runs past the end/);
  });
});

describe("client over a fake fetch", () => {
  test("predictV2 sends binary inputs and reads binary outputs", async () => {
    const { client, sent } = fake(() =>
      binaryResponse(
        {
          model_name: "m",
          outputs: [{ name: "y", shape: [1], datatype: "FP32", parameters: { binary_data_size: 4 } }],
        },
        le([2.5], 4, true),
      ),
    );
    const res = await client.predictV2("m", [{ name: "x", shape: [1, 2], data: Float32Array.of(1, 2) }], {
      binaryOutput: true,
      version: "3",
      outputs: ["y", { name: "z", binaryData: false }],
    });
    assert.ok(res.outputs[0]!.data instanceof Float32Array);
    assert.deepEqual(Array.from(res.outputs[0]!.data), [2.5]);
    const [req] = sent;
    assert.equal(req!.url, "http://isvc.test/v2/models/m/versions/3/infer");
    assert.equal(req!.method, "POST");
    assert.equal(req!.headers["authorization"], "x");
    const body = req!.body as Uint8Array;
    const n = Number(req!.headers[HEADER]);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(body.subarray(0, n))), {
      parameters: { binary_data_output: true },
      outputs: [{ name: "y" }, { name: "z", parameters: { binary_data: false } }],
      inputs: [{ name: "x", shape: [1, 2], datatype: "FP32", parameters: { binary_data_size: 8 } }],
    });
  });

  test("explain sends parameters; list and status unwrap", async () => {
    const { client, sent } = fake(() => json({ explanations: [], models: ["a"], name: "a", ready: false }));
    await client.explain("m", [[1]], { parameters: { threshold: 0.5 } });
    assert.equal(sent[0]!.url, "http://isvc.test/v1/models/m:explain");
    assert.deepEqual(JSON.parse(sent[0]!.body as string), { instances: [[1]], parameters: { threshold: 0.5 } });
    assert.deepEqual(await client.listModels(), ["a"]);
    assert.equal((await client.getModelStatusV1("a")).ready, false);
  });

  test("readiness: 503 is false, other errors throw", async () => {
    let status = 503;
    const { client } = fake(() => json({ ready: false, error: "gone" }, status));
    assert.equal(await client.isServerReady(), false);
    assert.equal(await client.isModelReady("m"), false);
    status = 404;
    await assert.rejects(client.isModelReady("m"), (e: unknown) => e instanceof InferenceError && e.status === 404);
  });

  test("errors carry the status and the server's error text, or the body", async () => {
    let reply = () => json({ error: "instances[0] is missing age" }, 400);
    const { client } = fake(() => reply());
    await assert.rejects(client.predictV1("m", [{}]), {
      name: "InferenceError",
      status: 400,
      error: "instances[0] is missing age",
      message: "KServe 400: instances[0] is missing age",
      url: "http://isvc.test/v1/models/m:predict",
    });
    reply = () => new Response("upstream connect error", { status: 502 });
    await assert.rejects(client.getServerMetadata(), { status: 502, error: "upstream connect error" });
  });

  test("the module functions follow KSERVE_URL at each call", async () => {
    const before = process.env["KSERVE_URL"];
    const seen: string[] = [];
    const real = globalThis.fetch;
    globalThis.fetch = (async (url: string) => {
      seen.push(url);
      return json({ predictions: [1] });
    }) as unknown as typeof fetch;
    try {
      process.env["KSERVE_URL"] = "http://one.test";
      await predictV1("m", [1]);
      process.env["KSERVE_URL"] = "http://two.test/";
      await predictV1("m", [1]);
    } finally {
      globalThis.fetch = real;
      if (before === undefined) delete process.env["KSERVE_URL"];
      else process.env["KSERVE_URL"] = before;
    }
    assert.deepEqual(seen, ["http://one.test/v1/models/m:predict", "http://two.test/v1/models/m:predict"]);
  });
});
