// Drive tests/servers/sio_app.py with the official socket.io-client (Node).
//
//   node sio_scenarios.js '<config-json>'
//
// config: { port, transport: "websocket" | "polling", only: [names] (optional) }
// Runs every scenario below one after the other (each with its own sockets, closed when
// it ends) and prints ONE JSON object, the last stdout line:
//   { transport, results: { <scenario>: {...observed values} | { error: "..." } } }
// Every wait is bounded: a wait that runs out rejects, and the scenario reports an error.
// Binary values are reported as { buffer: "<hex>" } (Buffer) or { arraybuffer: "<hex>" }.

const { io } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const base = `http://127.0.0.1:${cfg.port}`;
const WAIT = 8000;

let opened = [];

function options(extra) {
  return { transports: [cfg.transport], forceNew: true, reconnection: false, timeout: WAIT,
           ...extra };
}

// -- bounded waits ----------------------------------------------------------------------

function bounded(promise, what, ms = WAIT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function once(emitter, event, ms = WAIT) {
  return bounded(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))),
                 `"${event}"`, ms);
}

// Resolves when pred() is true, checking each time `emitter` fires `event`.
function until(emitter, event, pred, what, ms = WAIT) {
  return bounded(new Promise((resolve) => {
    const check = () => {
      if (pred()) {
        emitter.off(event, check);
        resolve();
      }
    };
    emitter.on(event, check);
    check();
  }), what, ms);
}

// emit with an ack callback; resolves with ALL the ack arguments
function ack(s, event, ...args) {
  return bounded(new Promise((resolve) => s.emit(event, ...args, (...r) => resolve(r))),
                 `ack of "${event}"`);
}

// A connected socket (rejects on connect_error); the socket is closed after the scenario.
async function connect(nsp = "", extra = {}) {
  const s = io(base + nsp, options(extra));
  opened.push(s);
  await bounded(new Promise((resolve, reject) => {
    s.once("connect", resolve);
    s.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  }), `connect to "${nsp || "/"}"`);
  return s;
}

// A socket whose connection is refused: resolves with the connect_error.
async function refused(nsp = "", extra = {}) {
  const s = io(base + nsp, options(extra));
  opened.push(s);
  const err = await bounded(new Promise((resolve, reject) => {
    s.once("connect", () => reject(new Error("connected although it should be refused")));
    s.once("connect_error", resolve);
  }), `connect_error on "${nsp || "/"}"`);
  return { message: err.message, data: err.data === undefined ? "<undefined>" : err.data,
           connected: s.connected, isError: err instanceof Error };
}

// Records every `event` a socket receives.
function inbox(s, event) {
  const got = [];
  s.on(event, (...args) => got.push(args.map(describe)));
  return got;
}

function describe(v) {
  if (Buffer.isBuffer(v)) return { buffer: v.toString("hex") };
  if (v instanceof ArrayBuffer) return { arraybuffer: Buffer.from(v).toString("hex") };
  if (ArrayBuffer.isView(v)) return { view: Buffer.from(v.buffer).toString("hex") };
  if (Array.isArray(v)) return v.map(describe);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, describe(x)]));
  }
  return v;
}

// -- scenarios --------------------------------------------------------------------------

const scenarios = {
  async connect() {
    const auth = { token: "ok", user: "zoë", nested: { list: [1, "two", null] } };
    const s = await connect("", { auth, query: { q: "hello" } });
    const [hs] = await ack(s, "handshake");
    const [ctx] = await ack(s, "context");
    return { clientId: s.id, handshake: hs, contextId: ctx.id, transport: s.io.engine.transport.name,
             sentAuth: auth };
  },

  async authRooms() {
    const s = await connect("", { auth: { rooms: ["from-auth-1", "from-auth-2"] } });
    const [rooms] = await ack(s, "join", "extra");
    return { id: s.id, rooms };
  },

  async admin() {
    const auth = { user: "admin-user", level: 3 };
    const s = await connect("/admin", { auth });
    const [me] = await ack(s, "whoami");
    return { id: s.id, whoami: me, nsp: s.nsp };
  },

  async dynamic() {
    const s = io(`${base}/dyn-123`, options());
    opened.push(s);
    const welcome = once(s, "welcome");
    await once(s, "connect");
    const [name] = await welcome;
    const other = await refused("/dyn-abc");
    return { welcome: name, connected: s.connected, nonMatching: other };
  },

  async unknownNamespace() {
    return refused("/nope");
  },

  async echo() {
    const s = await connect();
    const args = ["héllo wörld €😀", 42, 2.5, true, null, { a: { b: [1, { c: "ü" }] }, e: [] },
                  ["x", ["y", ["z"]]]];
    const echoed = await ack(s, "echo", ...args);
    const noArgs = await ack(s, "no args", "ignored", { x: 1 }, 3);
    const noArgsBare = await ack(s, "no args");
    const [none] = await ack(s, "echo");
    return { sent: args, echoed, noArgs, noArgsBare, emptyEcho: none === undefined ? "<undefined>" : none };
  },

  async askClient() {
    const s = await connect();
    const questions = [];
    s.on("question", (...args) => {
      const cb = args.pop();
      questions.push(args.map(describe));
      if (args[0] === "binary") cb(Buffer.from([0xca, 0xfe]), { inner: Buffer.from("in") });
      else cb({ answer: args[0] * 2 }, "second");
    });
    const noAnswer = [];
    s.on("no answer", (...args) => noAnswer.push(args.length));
    const answer = await ack(s, "ask client", 21, "more");
    const binaryAnswer = await ack(s, "ask client", "binary");
    const t0 = Date.now();
    const timeout = await ack(s, "ask client timeout");
    return { questions, answer: describe(answer), binaryAnswer: describe(binaryAnswer),
             timeout, timeoutMs: Date.now() - t0, noAnswerCalls: noAnswer };
  },

  async binary() {
    const s = await connect();
    const data = { buf: Buffer.from([1, 2, 3, 0, 255]),
                   list: [Buffer.from("xyz"), { deep: Buffer.from([0]) }, "text"] };
    const [reply] = await ack(s, "binary", data);
    const echoed = await ack(s, "echo", [Buffer.from([9, 8]), { b: Buffer.alloc(0) }], "plain");
    const events = inbox(s, "binary event");
    const [sent] = await ack(s, "send binary", Buffer.from([7]), "tail");
    await until(s, "binary event", () => events.length > 0, '"binary event"');
    return { reply: describe(reply), echoed: describe(echoed), event: events, sent };
  },

  async joinLeave() {
    const s = await connect();
    const [afterJoin] = await ack(s, "join", "room-a");
    const [afterJoin2] = await ack(s, "join", "room-b");
    const [afterLeave] = await ack(s, "leave", "room-a");
    const [leaveUnknown] = await ack(s, "leave", "never-joined");
    return { id: s.id, afterJoin, afterJoin2, afterLeave, leaveUnknown };
  },

  async toRoom() {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    const got = [a, b, c].map((s) => inbox(s, "room message"));
    await ack(a, "join", "tr-room");
    await ack(b, "join", "tr-room");
    // the emit is done when the ack of "to room" arrives; c's later echo round trip
    // proves nothing for c was queued before it
    await ack(c, "to room", "tr-room", "hi", { n: 1 });
    await ack(c, "to room", "tr-room", Buffer.from([1, 2]), { b: [Buffer.from("z")] });
    await until(a, "room message", () => got[0].length > 1, "room messages on a");
    await until(b, "room message", () => got[1].length > 1, "room messages on b");
    await ack(c, "echo", "barrier");
    return { a: got[0], b: got[1], c: got[2] };
  },

  async toRoomExcept() {
    const [a, b, c, d] = [await connect(), await connect(), await connect(), await connect()];
    const got = [a, b, c, d].map((s) => inbox(s, "room message"));
    for (const s of [a, b, c]) await ack(s, "join", "tre-room");
    await ack(b, "join", "tre-excluded");
    await ack(d, "join", "tre-excluded");
    await ack(a, "to room except", "tre-room", "tre-excluded", "payload");
    await until(a, "room message", () => got[0].length > 0, "room message on a");
    await until(c, "room message", () => got[2].length > 0, "room message on c");
    await ack(b, "echo", "barrier");
    await ack(d, "echo", "barrier");
    return { a: got[0], b: got[1], c: got[2], d: got[3] };
  },

  async toOthers() {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    const got = [a, b, c].map((s) => inbox(s, "others message"));
    const ackArgs = await ack(a, "to others", "from a", [1, 2]);
    await until(b, "others message", () => got[1].length > 0, "others message on b");
    await until(c, "others message", () => got[2].length > 0, "others message on c");
    await ack(a, "echo", "barrier");
    return { a: got[0], b: got[1], c: got[2], ackArgs };
  },

  async viewEmit() {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    const got = [a, b, c].map((s) => inbox(s, "from view"));
    await ack(a, "join", "view-room");
    await ack(b, "join", "view-room");
    const res = await bounded(fetch(`${base}/emit/view-room`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hello: "from flask", n: [1, 2] }),
    }), "POST /emit/view-room");
    await until(a, "from view", () => got[0].length > 0, "from view on a");
    await until(b, "from view", () => got[1].length > 0, "from view on b");
    await ack(c, "echo", "barrier");
    return { status: res.status, a: got[0], b: got[1], c: got[2] };
  },

  async fetchSockets() {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    await ack(a, "join", "fetch-room");
    await ack(b, "join", "fetch-room");
    const [ids] = await ack(c, "fetch", "fetch-room");
    const [none] = await ack(c, "fetch", "fetch-empty-room");
    const [own] = await ack(c, "fetch", c.id);
    return { ids, expected: [a.id, b.id].sort(), none, own, c: c.id };
  },

  async roomJoinAll() {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    const got = [a, b, c].map((s) => inbox(s, "room message"));
    await ack(a, "join", "rja-src");
    await ack(b, "join", "rja-src");
    const [moved] = await ack(c, "room join all", "rja-src", "rja-dst");
    const [fetched] = await ack(c, "fetch", "rja-dst");
    const [roomsOfA] = await ack(a, "join", "rja-other");
    await ack(c, "to room", "rja-dst", "after move");
    await until(a, "room message", () => got[0].length > 0, "room message on a");
    await until(b, "room message", () => got[1].length > 0, "room message on b");
    await ack(c, "echo", "barrier");
    return { moved, fetched, expected: [a.id, b.id].sort(), roomsOfA, a: a.id, got };
  },

  async disconnectRoom() {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    await ack(a, "join", "dr-room");
    await ack(b, "join", "dr-room");
    const ids = { a: a.id, b: b.id, c: c.id };
    const reasons = [once(a, "disconnect"), once(b, "disconnect")];
    const ackArgs = await ack(c, "disconnect room", "dr-room");
    const [[ra], [rb]] = await Promise.all(reasons);
    const [stillThere] = await ack(c, "echo", "still here");
    return { ids, reasonA: ra, reasonB: rb, ackArgs, cConnected: c.connected, stillThere,
             aConnected: a.connected, bConnected: b.connected };
  },

  async askRoom() {
    const names = ["ann", "bob", "cid"];
    const sockets = [];
    for (const name of names) {
      const s = await connect();
      s.on("poll", (cb) => cb(`yes-${name}`));
      await ack(s, "join", "ask-room");
      sockets.push(s);
    }
    const outsider = await connect();
    let outsiderPolled = 0;
    outsider.on("poll", (cb) => { outsiderPolled += 1; cb("outsider"); });
    const [answers] = await ack(sockets[0], "ask room", "ask-room");
    const [empty] = await ack(sockets[0], "ask room", "ask-nobody");
    return { answers, empty, outsiderPolled };
  },

  async badToken() {
    return refused("", { auth: { token: "bad" } });
  },

  async raiseToken() {
    return refused("", { auth: { token: "raise" } });
  },

  async forbidden() {
    const s = await connect();
    const errors = inbox(s, "middleware error");
    let acked = 0;
    s.emit("forbidden", "x", () => { acked += 1; });
    await until(s, "middleware error", () => errors.length > 0, '"middleware error"');
    // packets are handled in order: an ack of "forbidden" would arrive before this one
    const echoed = await ack(s, "echo", "allowed");
    return { errors, acked, echoed };
  },

  async clientDisconnect() {
    const s = await connect();
    const id = s.id;
    const reason = once(s, "disconnect");
    s.disconnect();
    const [r] = await reason;
    return { id, reason: r };
  },

  async disconnectMe() {
    const s = await connect();
    const admin = s.io.socket("/admin", { auth: { user: "same-manager" } });
    opened.push(admin);
    await once(admin, "connect");
    const id = s.id;
    const reason = once(s, "disconnect");
    s.emit("disconnect me");
    const [r] = await reason;
    // only the "/" socket left: the connection and the "/admin" socket go on
    const [me] = await ack(admin, "whoami");
    return { id, reason: r, connected: s.connected, adminConnected: admin.connected,
             adminWhoami: me, engineState: s.io.engine.readyState };
  },

  async disconnectMeClose() {
    const s = await connect();
    const admin = s.io.socket("/admin", { auth: { user: "same-manager" } });
    opened.push(admin);
    await once(admin, "connect");
    const ids = { root: s.id, admin: admin.id };
    const all = { root: [], admin: [] };
    s.on("disconnect", (r) => all.root.push(r));
    admin.on("disconnect", (r) => all.admin.push(r));
    const engineClose = once(s.io.engine, "close");
    s.emit("disconnect me", true);
    await until(s, "disconnect", () => all.root.length > 0, '"disconnect" on /');
    await until(admin, "disconnect", () => all.admin.length > 0, '"disconnect" on /admin');
    const [engineReason] = await engineClose;
    return { ids, reason: all.root[0], adminReason: all.admin[0], engineReason,
             connected: s.connected, adminConnected: admin.connected };
  },

  async closeConn() {
    const s = await connect("", { reconnection: true, reconnectionDelay: 50,
                                  reconnectionDelayMax: 200, randomizationFactor: 0 });
    const firstId = s.id;
    const reason = once(s, "disconnect");
    const reconnected = once(s.io, "reconnect", 15000);
    s.emit("close conn");
    const [r] = await reason;
    const [attempt] = await reconnected;
    if (!s.connected) await once(s, "connect");
    const [ctx] = await ack(s, "context");
    return { firstId, reason: r, attempt, secondId: s.id, serverId: ctx.id,
             connected: s.connected };
  },

  async engineClose() {
    const s = await connect();
    const id = s.id;
    const reason = once(s, "disconnect");
    s.io.engine.close();
    const [r] = await reason;
    return { id, reason: r };
  },

  async context() {
    const s = await connect("", { query: { q: "x" } });
    const [first] = await ack(s, "context");
    const [second] = await ack(s, "context");
    const [seen] = await ack(s, "session seen");
    const other = await connect("", { query: { q: "other" } });
    const [third] = await ack(other, "context");
    const [otherSeen] = await ack(other, "session seen");
    return { id: s.id, first, second, seen, otherId: other.id, third, otherSeen };
  },

  async volatile() {
    const s = await connect();
    const got = [];
    s.on("v", (i) => got.push(i));
    const errors = [];
    s.on("connect_error", (e) => errors.push(e.message));
    const [n] = await ack(s, "volatile", 50);
    // the ack was queued after every "v" the server kept: they all arrived before it
    const echoed = await ack(s, "echo", "after volatile");
    return { n, got, echoed, connected: s.connected, errors };
  },
};

// -- runner -----------------------------------------------------------------------------

async function main() {
  const results = {};
  const names = cfg.only || Object.keys(scenarios);
  for (const name of names) {
    opened = [];
    try {
      results[name] = await bounded(scenarios[name](), `scenario ${name}`, 20000);
    } catch (err) {
      results[name] = { error: String((err && err.stack) || err) };
    }
    for (const s of opened) s.disconnect();
  }
  return results;
}

const guard = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "sio_scenarios.js timed out" }) + "\n",
                       () => process.exit(1));
}, cfg.timeout || 100000);

main().then((results) => {
  clearTimeout(guard);
  process.stdout.write(JSON.stringify({ transport: cfg.transport, results }) + "\n",
                       () => process.exit(0));
});
