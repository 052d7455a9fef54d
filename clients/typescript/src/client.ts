// A small typed client of the cronjobs API, type-checked against the types openapi-typescript
// generates from the served openapi.json (generated/api.ts), then run against a live stack:
// creates one job of each type, lists, patches with If-Match, runs one now and reads its runs.
// Environment: API (base URL ending in /api/cron), USER_TOKEN, ADMIN_TOKEN.
import type { components } from "../generated/api.js";

type Schemas = components["schemas"];
type JobCreate = Schemas["JobCreate"];
type JobOut = Schemas["JobOut"];
type JobPage = Schemas["JobPage"];
type JobPatch = Schemas["JobPatch"];
type RunNowOut = Schemas["RunNowOut"];
type RunPage = Schemas["RunPage"];
type Problem = Schemas["Problem"];

interface Answer<T> {
  status: number;
  etag: string | null;
  body: T;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const api = required("API");
const userToken = required("USER_TOKEN");
const adminToken = required("ADMIN_TOKEN");
const runTimeoutMs = Number(process.env.RUN_TIMEOUT_MS ?? "30000");

async function call<T>(
  method: string,
  path: string,
  token: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    etag: response.headers.get("ETag"),
    body: (text ? JSON.parse(text) : null) as T,
  };
}

function expect(condition: boolean, message: string): void {
  if (!condition) {
    throw new Error(message);
  }
}

// One job per type: the payload type follows `type` (a discriminated union).
const stamp = Date.now().toString(36);
const userJobs: JobCreate[] = [
  {
    name: `ts mail ${stamp}`,
    type: "sendEmail",
    cron: "0 8 * * 1-5",
    timezone: "Europe/Berlin",
    payload: {
      to: ["alice@example.com"],
      subject: "Stand-up",
      template: "reminder",
      params: { title: "Stand-up at 9:00" },
    },
  },
  {
    name: `ts call ${stamp}`,
    type: "httpRequest",
    cron: "0 * * * *",
    payload: { url: "/hooks/hourly", method: "GET" },
  },
  {
    name: `ts report ${stamp}`,
    type: "generateReport",
    cron: "0 6 L * *",
    payload: { type: "jobRuns", period: "monthly" },
  },
  {
    // An interval schedule instead of a cron: `cron` is left out (it is null in the answer).
    name: `ts interval ${stamp}`,
    type: "httpRequest",
    every: "PT90M",
    payload: { url: "/hooks/every-90-minutes", method: "GET" },
  },
];
const adminJobs: JobCreate[] = [
  { name: `ts purge ${stamp}`, type: "purgeSessions", cron: "0 3 * * *", payload: { inactiveDays: 30 } },
  { name: `ts canary ${stamp}`, type: "noop", cron: "0 0 1 1 *", payload: {} },
];

// The generated types refuse a payload that does not fit its type:
const refused: JobCreate = {
  name: "never sent",
  type: "sendEmail",
  cron: "0 8 * * *",
  // @ts-expect-error a sendEmail payload needs `to`, `subject` and `template`
  payload: { inactiveDays: 30 },
};
void refused;

async function create(job: JobCreate, token: string): Promise<JobOut> {
  const created = await call<JobOut | Problem>("POST", "/jobs", token, job);
  expect(created.status === 201, `create ${job.type}: ${created.status} ${JSON.stringify(created.body)}`);
  const out = created.body as JobOut;
  expect(out.type === job.type, `created ${out.type}, asked for ${job.type}`);
  return out;
}

async function main(): Promise<void> {
  const created: JobOut[] = [];
  for (const job of userJobs) created.push(await create(job, userToken));
  for (const job of adminJobs) created.push(await create(job, adminToken));

  const page = await call<JobPage>("GET", "/jobs?limit=200", userToken);
  expect(page.status === 200, `list: ${page.status}`);
  const listed = new Set(page.body.items.map((job) => job.id));
  for (const job of created.slice(0, userJobs.length)) {
    expect(listed.has(job.id), `job ${job.id} missing from the list`);
  }

  const interval = created[3]!;
  const anchor: string | null | undefined = interval.anchorAt;
  expect(
    interval.every === "PT90M" && interval.cron === null && typeof anchor === "string",
    `interval job: every ${interval.every}, cron ${interval.cron}, anchorAt ${anchor}`,
  );

  const mail = created[0]!;
  if (mail.type === "sendEmail") {
    // Narrowed by the discriminator: the payload is typed.
    expect(mail.payload.template === "reminder", "the payload came back typed and intact");
  }
  const read = await call<JobOut>("GET", `/jobs/${mail.id}`, userToken);
  const tag = read.etag ?? "";
  const pause: JobPatch = { enabled: false };
  const paused = await call<JobOut>("PATCH", `/jobs/${mail.id}`, userToken, pause, { "If-Match": tag });
  expect(paused.status === 200 && paused.body.status === "paused", `patch: ${paused.status}`);
  const stale = await call<Problem>("PATCH", `/jobs/${mail.id}`, userToken, { enabled: true }, { "If-Match": tag });
  expect(stale.status === 412, `stale If-Match answered ${stale.status}`);
  const unchanged = await call<JobOut>("GET", `/jobs/${mail.id}`, userToken, undefined, {
    "If-None-Match": paused.etag ?? "",
  });
  expect(unchanged.status === 304, `If-None-Match answered ${unchanged.status}`);

  const canary = created[created.length - 1]!;
  const queued = await call<RunNowOut>("POST", `/jobs/${canary.id}/run-now`, adminToken);
  expect(queued.status === 202, `run-now: ${queued.status}`);
  const deadline = Date.now() + runTimeoutMs;
  let status = "pending";
  while (Date.now() < deadline) {
    const runs = await call<RunPage>("GET", `/jobs/${canary.id}/runs?trigger=manual`, adminToken);
    const run = runs.body.items.find((item) => item.id === queued.body.runId);
    status = run?.status ?? "missing";
    if (status === "succeeded") break;
    // Once a second: the run list counts against the owner's rate limit (60/minute by default).
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  expect(status === "succeeded", `the manual run ended ${status}`);
  for (const job of created) {
    const token = job.ownerId === created[0]!.ownerId ? userToken : adminToken;
    const deleted = await call<null>("DELETE", `/jobs/${job.id}`, token);
    expect(deleted.status === 204, `delete: ${deleted.status}`);
  }
  console.log(JSON.stringify({ created: created.map((job) => job.type), run: status }));
}

main().catch((error: unknown) => {
  console.error(`client: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
