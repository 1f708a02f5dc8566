/**
 * Against a live isvc churn service (configs/churn.yaml: transformer, sklearn predictor,
 * AnchorTabular explainer) at KSERVE_URL; skipped without it. tests/integration/
 * test_1b_typescript_client.py deploys the service on the session's Ray cluster and runs these.
 */

import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import {
  type AnchorData,
  InferenceError,
  KServeClient,
  explain,
  getModelMetadata,
  getModelStatusV1,
  getOutput,
  getServerMetadata,
  isModelReady,
  isServerLive,
  isServerReady,
  listModels,
  predictV1,
  predictV2,
  type TypedTensorData,
} from "@isvc/kserve-client";

const URL = process.env["KSERVE_URL"];
const MODEL = "churn-classifier";
const HIGH = { age: 41, tenure_days: 30, monthly_spend: 120.5, support_tickets: 6, last_login_days: 21 };
const LOW = { age: 25, tenure_days: 2000, monthly_spend: 20.0, support_tickets: 0, last_login_days: 1 };
const ROWS = [Object.values(HIGH), Object.values(LOW)];
const FLAT = ROWS.flat();

type Prediction = { churn_probability: number; risk_tier: string };

/** An InferenceError with this status whose server message matches. */
function rejectsWith(status: number, message: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof InferenceError, `expected an InferenceError, got ${String(err)}`);
    assert.ok(err instanceof Error);
    assert.equal(err.status, status, err.message);
    assert.match(err.error, message);
    assert.equal(err.message, `KServe ${status}: ${err.error}`);
    return true;
  };
}

describe("live churn service", { skip: URL ? false : "KSERVE_URL is not set" }, () => {
  let jsonProbs: number[]; // churn_probability of ROWS, from a JSON V2 request

  before(async () => {
    await new KServeClient(URL!).waitForReady({ model: MODEL, timeoutMs: 60_000 });
    const res = await predictV2(MODEL, [{ name: "features", shape: [2, 5], datatype: "FP64", data: FLAT }]);
    jsonProbs = getOutput(res, "churn_probability").data as number[];
  });

  test("readiness, server metadata, model list", async () => {
    assert.equal(await isServerLive(), true);
    assert.equal(await isServerReady(), true);
    assert.equal(await isModelReady(MODEL), true);
    assert.equal(await isModelReady(MODEL, { version: "1" }), true);
    const status = await getModelStatusV1(MODEL);
    assert.deepEqual([status.name, status.ready], [MODEL, true]);
    assert.deepEqual(await listModels(), [MODEL, `${MODEL}-explainer`]);
    const server = await getServerMetadata();
    assert.equal(server.name, "isvc");
    assert.ok(server.extensions.includes("binary_tensor_data"), JSON.stringify(server));
    await assert.rejects(isModelReady("no-such-model"), rejectsWith(404, /no-such-model/));
    await assert.rejects(isModelReady(MODEL, { version: "9" }), rejectsWith(404, /versions\/9/));
    await assert.rejects(getModelStatusV1("no-such-model"), rejectsWith(404, /no-such-model/));
  });

  test("getModelMetadata lists the tensors", async () => {
    const meta = await getModelMetadata(MODEL);
    assert.equal(meta.name, MODEL);
    assert.deepEqual(meta.versions, ["1"]);
    assert.deepEqual(meta.inputs, [{ name: "features", datatype: "FP64", shape: [-1, 5] }]);
    assert.deepEqual(
      meta.outputs.map((o) => [o.name, o.datatype, o.shape]),
      [
        ["churn_probability", "FP64", [-1]],
        ["risk_tier", "BYTES", [-1]],
      ],
    );
  });

  test("predictV1 returns probabilities (the seed's call)", async () => {
    const { predictions } = await predictV1<Prediction>(MODEL, [HIGH, LOW]);
    assert.equal(predictions.length, 2);
    for (const p of predictions) {
      assert.ok(p.churn_probability > 0 && p.churn_probability < 1, JSON.stringify(p));
      assert.ok(["HIGH", "MEDIUM", "LOW"].includes(p.risk_tier));
    }
    assert.ok(predictions[0]!.churn_probability > predictions[1]!.churn_probability);
    assert.equal(predictions[0]!.risk_tier, "HIGH");
    const rows = await predictV1<Prediction>(MODEL, ROWS); // instances as lists, in feature order
    assert.deepEqual(rows.predictions, predictions);
  });

  test("predictV2 with JSON data (the seed's call)", async () => {
    const res = await predictV2(MODEL, [{ name: "features", shape: [2, 5], datatype: "FP64", data: FLAT }]);
    assert.equal(res.model_name, MODEL);
    const probs = getOutput(res, "churn_probability");
    assert.deepEqual(probs.shape, [2]);
    assert.ok(Array.isArray(probs.data));
    assert.deepEqual(probs.data, jsonProbs);
    const { predictions } = await predictV1<Prediction>(MODEL, [HIGH, LOW]); // V1 rounds to 4 places
    predictions.forEach((p, i) => assert.ok(Math.abs(p.churn_probability - jsonProbs[i]!) <= 1e-4));
    assert.deepEqual(getOutput(res, "risk_tier").data, ["HIGH", "LOW"]);
    const withId = await predictV2(MODEL, [{ name: "features", shape: [2, 5], datatype: "FP64", data: FLAT }], {
      id: "ts-1",
      version: "1",
    });
    assert.equal(withId.id, "ts-1");
    assert.equal(withId.model_version, "1");
  });

  const typed: Array<[string, TypedTensorData]> = [
    ["Float64Array", Float64Array.from(FLAT)],
    ["Float32Array", Float32Array.from(FLAT)], // 120.5 and the rest are exact in FP32
    ["Int32Array", Int32Array.from([41, 30, 120, 6, 21, 25, 2000, 20, 0, 1])],
    ["BigInt64Array", BigInt64Array.from([41n, 30n, 120n, 6n, 21n, 25n, 2000n, 20n, 0n, 1n])],
  ];
  for (const [kind, data] of typed) {
    test(`predictV2 with a binary ${kind} input`, async () => {
      const res = await predictV2(MODEL, [{ name: "features", shape: [2, 5], data }]);
      const probs = getOutput(res, "churn_probability").data as number[];
      assert.ok(Array.isArray(probs), "JSON outputs unless binary ones are asked for");
      if (kind.startsWith("Float")) {
        assert.deepEqual(
          probs.map((p) => p.toFixed(9)),
          jsonProbs.map((p) => p.toFixed(9)),
        );
      } else {
        // monthly_spend 120 instead of 120.5: close, not equal; the order holds
        assert.ok(probs[0]! > probs[1]!);
        const json = await predictV2(MODEL, [
          {
            name: "features",
            shape: [2, 5],
            datatype: "INT64",
            data: Array.from(data as Int32Array | BigInt64Array, Number),
          },
        ]);
        assert.deepEqual(probs, getOutput(json, "churn_probability").data);
      }
    });
  }

  test("binary outputs decode into typed arrays; JSON and binary inputs agree", async () => {
    const res = await predictV2(MODEL, [{ name: "features", shape: [2, 5], data: Float64Array.from(FLAT) }], {
      binaryOutput: true,
    });
    const probs = getOutput(res, "churn_probability");
    assert.ok(probs.data instanceof Float64Array, String(probs.data));
    assert.equal(probs.parameters?.["binary_data_size"], 16);
    assert.deepEqual(Array.from(probs.data), jsonProbs);
    assert.deepEqual(getOutput(res, "risk_tier").data, ["HIGH", "LOW"]);

    // one output as bytes, the other JSON, from a JSON request
    const mixed = await predictV2(MODEL, [{ name: "features", shape: [2, 5], datatype: "FP64", data: FLAT }], {
      outputs: [{ name: "risk_tier", binaryData: true }, "churn_probability"],
    });
    assert.deepEqual(
      mixed.outputs.map((o) => o.name),
      ["risk_tier", "churn_probability"],
    );
    assert.deepEqual(getOutput(mixed, "risk_tier").data, ["HIGH", "LOW"]);
    assert.equal(getOutput(mixed, "risk_tier").parameters?.["binary_data_size"], 4 + 4 + 4 + 3);
    assert.deepEqual(getOutput(mixed, "churn_probability").data, jsonProbs);
  });

  test("explain: an Anchor per instance", async () => {
    const high = { age: 30, tenure_days: 20, monthly_spend: 150.0, support_tickets: 9, last_login_days: 40 };
    const { explanations } = await explain<AnchorData>(MODEL, [high]);
    assert.equal(explanations.length, 1);
    const [e] = explanations;
    assert.equal(e!.meta.name, "AnchorTabular");
    assert.ok(e!.data.anchor.length > 0, JSON.stringify(e!.data));
    assert.ok(e!.data.anchor.every((clause) => Object.keys(high).includes(clause.split(" ")[0]!)));
    assert.ok(e!.data.precision > 0.5 && e!.data.coverage > 0 && e!.data.coverage <= 1);
  });

  test("errors: a 400 with the server's message, 404 for an unknown model", async () => {
    await assert.rejects(predictV1(MODEL, [{ age: 3 }]), rejectsWith(400, /missing tenure_days/));
    await assert.rejects(
      predictV2(MODEL, [{ name: "features", shape: [2, 5], datatype: "FP64", data: [1, 2, 3] }]),
      rejectsWith(400, /shape|data/),
    );
    await assert.rejects(
      predictV2(MODEL, [{ name: "features", shape: [2, 5], data: new Float64Array(3) }]), // 24 bytes for 10 values
      rejectsWith(400, /./),
    );
    await assert.rejects(explain(MODEL, [[1, 2, 3]]), rejectsWith(400, /./));
    await assert.rejects(predictV1("no-such-model", [HIGH]), rejectsWith(404, /no-such-model/));
    await assert.rejects(getModelMetadata("no-such-model"), rejectsWith(404, /no-such-model/));
    await assert.rejects(
      predictV2("no-such-model", [{ name: "features", shape: [1, 5], data: new Float64Array(5) }]),
      rejectsWith(404, /no-such-model/),
    );
    // the server keeps serving
    assert.equal((await predictV1<Prediction>(MODEL, [HIGH])).predictions[0]!.risk_tier, "HIGH");
  });

  test("a KServeClient with its own URL, headers and timeout", async () => {
    const client = new KServeClient({ baseUrl: `${URL!}/`, headers: { "x-request-id": "ts" }, timeoutMs: 30_000 });
    const res = await client.predictV1<Prediction>(MODEL, [HIGH]);
    assert.equal(res.predictions[0]!.risk_tier, "HIGH");
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(client.predictV1(MODEL, [HIGH], { signal: aborted.signal }), { name: "AbortError" });
  });
});
